//! The session-file parser: any bytes on disk either parse into a record that round-trips, or
//! are refused with an error. Never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_server::store::{SessionRecord, StoreError};

fuzz_target!(|bytes: &[u8]| {
    let Ok(record) = SessionRecord::from_bytes(bytes) else {
        return;
    };
    // What a store would do next: hand the state to actix-session, get it back, write it.
    let state = record.state();
    let now = record.created_at;
    let ttl = time::Duration::seconds(i64::try_from(record.ttl_seconds.min(1 << 40)).unwrap_or(0));
    // A lifetime that puts the end past the calendar is refused, typed, never a panic.
    let again = match SessionRecord::new(&state, now, now, &ttl) {
        Ok(r) => r,
        Err(StoreError::Deadline { .. }) => return,
        Err(e) => panic!("loaded values are JSON: {e}"),
    };
    assert_eq!(again.data, record.data, "data survives a load and a save");
    if let Ok(written) = again.to_bytes(1 << 20) {
        let back = SessionRecord::from_bytes(&written).expect("what we write, we read");
        assert_eq!(back.data, record.data);
    }
});
