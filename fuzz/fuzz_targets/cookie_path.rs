//! The cookie-value-to-path check: whatever a (validly signed) cookie holds, either it is refused
//! before any path is made, or the path is `<dir>/<64 hex>.json`, inside the session folder.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use session_server::store::id;

fuzz_target!(|bytes: &[u8]| {
    let Ok(value) = std::str::from_utf8(bytes) else {
        return;
    };
    if !id::is_well_formed(value) {
        return;
    }
    assert_eq!(value.len(), id::ID_LEN);
    assert!(value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    let name = format!("{}.json", id::stem(&id::digest(value)));
    let dir = Path::new("/srv/sessions");
    let path = dir.join(&name);
    assert_eq!(path.parent(), Some(dir), "stays in the session folder");
    assert_eq!(name.len(), 69);
    assert!(name[..64]
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
});
