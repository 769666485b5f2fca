//! Store operations (load, save, update, update_ttl, delete) with 1k, 100k and 1M session files
//! already in the folder, for the file store on the repo's disk and the memory store as the
//! baseline. `cargo bench --bench store`; `STORE_BENCH_SIZES=1000,100000` to pick sizes.
//!
//! Populated folders are kept under `target/bench-sessions/<n>/` and reused by later runs.

use std::path::PathBuf;
use std::time::Duration;

use actix_session::storage::{SessionKey, SessionStore};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use session_server::engines::filesystem::CACHE_BYTES;
use session_server::engines::filesystem::{FileSessionStore, FileStoreOptions};
use session_server::engines::memory::MemorySessionStore;
use session_server::store::{CachingStore, SessionState, Store};

fn state(visits: u64) -> SessionState {
    [
        ("user_id".to_owned(), "\"alice\"".to_owned()),
        ("visits".to_owned(), visits.to_string()),
        (
            "csrf_token".to_owned(),
            "\"mK3sQ0bq1t4dYy8Yc2k8d3bWfA2m5W2mHq8n0r3T1pE\"".to_owned(),
        ),
    ]
    .into()
}

fn key(s: &str) -> SessionKey {
    SessionKey::try_from(s.to_owned()).expect("valid key")
}

/// A folder holding `n` live sessions, made once and reused; returns it and some of its ids.
fn populated(n: usize) -> (PathBuf, Vec<String>) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/bench-sessions")
        .join(n.to_string());
    let keys_file = root.join("keys.txt");
    if !keys_file.exists() {
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("mkdir");
        let status = std::process::Command::new(env!("CARGO"))
            .args(["run", "--release", "--quiet", "--example", "populate", "--"])
            .arg(root.join("sessions"))
            .arg(n.to_string())
            .arg("0")
            .arg(&keys_file)
            .status()
            .expect("run populate");
        assert!(status.success(), "populate failed");
    }
    let keys = std::fs::read_to_string(&keys_file)
        .expect("keys")
        .lines()
        .map(str::to_owned)
        .collect();
    (root.join("sessions"), keys)
}

fn bench_store<S: SessionStore>(c: &mut Criterion, name: &str, store: &S, keys: &[String]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let ttl = time::Duration::hours(1);
    let mut group = c.benchmark_group(name);
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let mut i = 0usize;
    let mut next_key = || {
        i = (i + 1) % keys.len();
        key(&keys[i])
    };
    group.bench_function("load", |b| {
        b.iter(|| rt.block_on(store.load(&next_key())).expect("load"))
    });
    // New sessions are deleted again outside the timing, so the folder stays at its size.
    group.bench_function("save", |b| {
        b.iter_custom(|iters| {
            let start = std::time::Instant::now();
            let made: Vec<SessionKey> = (0..iters)
                .map(|_| rt.block_on(store.save(state(1), &ttl)).expect("save"))
                .collect();
            let elapsed = start.elapsed();
            for k in made {
                rt.block_on(store.delete(&k)).expect("delete");
            }
            elapsed
        })
    });
    group.bench_function("update", |b| {
        b.iter(|| {
            rt.block_on(store.update(next_key(), state(2), &ttl))
                .expect("update")
        })
    });
    group.bench_function("update_ttl/unchanged", |b| {
        b.iter(|| {
            rt.block_on(store.update_ttl(&next_key(), &ttl))
                .expect("update_ttl")
        })
    });
    let mut longer = ttl;
    group.bench_function("update_ttl/moved", |b| {
        b.iter(|| {
            longer += time::Duration::seconds(1);
            rt.block_on(store.update_ttl(&next_key(), &longer))
                .expect("update_ttl")
        })
    });
    group.bench_function("delete", |b| {
        b.iter_batched(
            || rt.block_on(store.save(state(1), &ttl)).expect("save"),
            |k| rt.block_on(store.delete(&k)).expect("delete"),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn stores(c: &mut Criterion) {
    let sizes: Vec<usize> = std::env::var("STORE_BENCH_SIZES")
        .unwrap_or_else(|_| "1000,100000,1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    for n in sizes {
        let (dir, keys) = populated(n);
        let files = FileSessionStore::open(FileStoreOptions::new(&dir)).expect("open");
        let store = Store::new(CachingStore::new(files, CACHE_BYTES));
        bench_store(c, &format!("file/{n}"), &store, &keys);

        let memory = MemorySessionStore::new();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let mem_keys: Vec<String> = (0..n)
            .map(|_| {
                rt.block_on(memory.save(state(1), &time::Duration::hours(1)))
                    .expect("save")
                    .as_ref()
                    .to_owned()
            })
            .collect();
        bench_store(
            c,
            &format!("memory/{n}"),
            &memory,
            &mem_keys[..mem_keys.len().min(1000)],
        );
    }
}

criterion_group!(benches, stores);
criterion_main!(benches);
