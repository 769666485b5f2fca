//! The key files: made, read, rotated, retired; in parallel too.

use super::*;

#[test]
fn created_once_with_mode_0600_then_reused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("secret.key");
    let a = load_or_create(&path, None).expect("created");
    let meta = std::fs::metadata(&path).expect("exists");
    assert_eq!(meta.len(), 64);
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );
    let b = load_or_create(&path, None).expect("read");
    assert_eq!(a.master(), b.master());
}

#[test]
fn derived_keys_differ_by_purpose_and_are_stable() {
    let master = Key::generate();
    let a = derive_key(&master, "session");
    assert_eq!(a.master(), derive_key(&master, "session").master());
    assert_ne!(a.master(), derive_key(&master, "csrf").master());
    assert_ne!(a.master(), master.master());
}

#[test]
fn short_keys_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("secret.key");
    std::fs::write(&path, b"short").expect("write");
    let e = load_or_create(&path, None)
        .err()
        .expect("too short")
        .to_string();
    assert!(e.contains("5 bytes") && e.contains("64"), "{e}");
    let e = load_or_create(&path, Some("c2hvcnQ="))
        .err()
        .expect("too short")
        .to_string();
    assert!(e.starts_with(ENV_VAR), "{e}");
}

fn no_env() -> EnvKeys {
    EnvKeys::default()
}

fn masters(ring: &Keyring) -> Vec<Vec<u8>> {
    ring.older().map(|k| k.master().to_vec()).collect()
}

#[test]
fn a_rotation_keeps_the_old_key_beside_the_new_one_and_retire_drops_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("secret.key");
    let first = Keyring::load_or_create(&file, &[], &no_env()).expect("made");
    assert_eq!(first.older().len(), 0);

    let rotated = rotate(&file, &no_env()).expect("rotate");
    assert_eq!(rotated.kept, dir.path().join("secret.key.1"));
    assert!(!rotated.from_prepared);
    let second = Keyring::load_or_create(&file, &[], &no_env()).expect("read");
    assert_ne!(second.current().master(), first.current().master());
    assert_eq!(masters(&second), vec![first.current().master().to_vec()]);

    rotate(&file, &no_env()).expect("rotate again");
    let third = Keyring::load_or_create(&file, &[], &no_env()).expect("read");
    // The newest kept key is tried first.
    assert_eq!(
        masters(&third),
        vec![
            second.current().master().to_vec(),
            first.current().master().to_vec()
        ]
    );
    assert!(
        third.describe().contains("secret.key.2, "),
        "{}",
        third.describe()
    );

    let removed = retire(&file, &no_env(), 1).expect("retire");
    assert_eq!(removed, vec![dir.path().join("secret.key.1")]);
    let fourth = Keyring::load_or_create(&file, &[], &no_env()).expect("read");
    assert_eq!(masters(&fourth), vec![second.current().master().to_vec()]);
    assert_eq!(retire(&file, &no_env(), 0).expect("retire").len(), 1);
    assert_eq!(retire(&file, &no_env(), 0).expect("retire").len(), 0);
}

#[test]
fn a_prepared_key_is_accepted_first_then_becomes_the_current_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("secret.key");
    assert!(matches!(
        prepare(&file, &no_env()),
        Err(SecretError::NoKey { .. })
    ));
    let first = Keyring::load_or_create(&file, &[], &no_env()).expect("made");
    let (prepared, made) = prepare(&file, &no_env()).expect("prepare");
    assert!(made);
    assert_eq!(
        prepare(&file, &no_env()).expect("again"),
        (prepared.clone(), false)
    );
    let next = std::fs::read(&prepared).expect("prepared");
    let accepting = Keyring::load_or_create(&file, &[], &no_env()).expect("read");
    assert_eq!(accepting.current().master(), first.current().master());
    assert_eq!(accepting.older().len(), 1);

    let rotated = rotate(&file, &no_env()).expect("rotate");
    assert!(rotated.from_prepared);
    assert!(!prepared.exists());
    assert_eq!(std::fs::read(&file).expect("current"), next);
    let after = Keyring::load_or_create(&file, &[], &no_env()).expect("read");
    assert_eq!(masters(&after), vec![first.current().master().to_vec()]);
}

#[test]
fn fallbacks_come_from_files_and_the_environment_once_each() {
    use base64::Engine;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("secret.key");
    let current = Keyring::load_or_create(&file, &[], &no_env()).expect("made");
    let listed = dir.path().join("old.key");
    std::fs::write(&listed, [7u8; 64]).expect("write");
    let b64 = base64::engine::general_purpose::STANDARD;
    let env = EnvKeys {
        key: None,
        // The listed file's key again, the current key, and one more: each is tried once, and
        // the current key is never an older one.
        fallbacks: Some(format!(
            "{}, {}\n{}",
            b64.encode([7u8; 64]),
            b64.encode(std::fs::read(&file).expect("current")),
            b64.encode([9u8; 80])
        )),
    };
    let ring = Keyring::load_or_create(&file, std::slice::from_ref(&listed), &env).expect("read");
    assert_eq!(ring.current().master(), current.current().master());
    assert_eq!(ring.older().len(), 2);
    assert!(
        ring.describe().contains("old.key") && ring.describe().contains(FALLBACKS_ENV_VAR),
        "{}",
        ring.describe()
    );

    let missing = dir.path().join("gone.key");
    let e = Keyring::load_or_create(&file, &[missing], &no_env())
        .err()
        .expect("a missing fallback is an error");
    assert!(matches!(e, SecretError::Fallback { .. }), "{e}");
    std::fs::write(&listed, b"short").expect("write");
    let e = Keyring::load_or_create(&file, &[listed], &no_env())
        .err()
        .expect("a short fallback is an error");
    assert!(matches!(e, SecretError::TooShort { .. }), "{e}");
    let bad = EnvKeys {
        key: None,
        fallbacks: Some("not base64!".into()),
    };
    let e = Keyring::load_or_create(&file, &[], &bad)
        .err()
        .expect("bad");
    assert!(
        matches!(e, SecretError::NotBase64 { var, .. } if var == FALLBACKS_ENV_VAR),
        "{e}"
    );
}

#[test]
fn with_the_key_in_the_environment_the_files_beside_are_ignored_and_rotate_refuses() {
    use base64::Engine;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("secret.key");
    Keyring::load_or_create(&file, &[], &no_env()).expect("made");
    rotate(&file, &no_env()).expect("rotate");
    let env = EnvKeys {
        key: Some(base64::engine::general_purpose::STANDARD.encode([3u8; 64])),
        fallbacks: None,
    };
    let ring = Keyring::load_or_create(&file, &[], &env).expect("read");
    assert_eq!(ring.older().len(), 0);
    assert!(matches!(
        rotate(&file, &env),
        Err(SecretError::FromEnvironment)
    ));
    assert!(matches!(
        retire(&file, &env, 0),
        Err(SecretError::FromEnvironment)
    ));
}

/// Two rotations at once take turns: each keeps a different key under a different number, and
/// no key is lost.
#[test]
fn rotations_in_parallel_keep_every_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("secret.key");
    let first = Keyring::load_or_create(&file, &[], &no_env()).expect("made");
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let file = file.clone();
            std::thread::spawn(move || rotate(&file, &EnvKeys::default()).expect("rotate"))
        })
        .collect();
    let mut kept: Vec<_> = threads
        .into_iter()
        .map(|t| t.join().expect("thread").kept)
        .collect();
    kept.sort();
    kept.dedup();
    assert_eq!(kept.len(), 6);
    let ring = Keyring::load_or_create(&file, &[], &no_env()).expect("read");
    let mut all = masters(&ring);
    all.push(ring.current().master().to_vec());
    all.sort();
    all.dedup();
    // Six rotations: the first key and five made by them are kept, the sixth is current.
    assert_eq!(all.len(), 7);
    assert!(all.contains(&first.current().master().to_vec()));
}

/// The commands' lock: a second command waits at most its bound, then says who holds it.
#[test]
fn a_held_lock_is_waited_for_within_its_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("secret.key");
    let held = rotate::lock_within(&file, std::time::Duration::ZERO).expect("lock");
    let started = std::time::Instant::now();
    let wait = std::time::Duration::from_millis(200);
    let e = rotate::lock_within(&file, wait).expect_err("busy");
    assert!(matches!(e, SecretError::Busy { .. }), "{e}");
    assert!(started.elapsed() >= wait);
    drop(held);
    rotate::lock_within(&file, wait).expect("free again");
}

/// A `.next` that is already the current key (copied from the instance that rotated) is no new
/// key: `rotate` makes a real one, `prepare` replaces it.
#[test]
fn a_prepared_key_equal_to_the_current_one_never_stands_for_a_new_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("secret.key");
    let first = Keyring::load_or_create(&file, &[], &no_env()).expect("made");
    let next = dir.path().join("secret.key.next");
    std::fs::copy(&file, &next).expect("copy");
    let (prepared, made) = prepare(&file, &no_env()).expect("prepare");
    assert!(made, "the stale copy is replaced");
    assert_ne!(
        std::fs::read(&prepared).expect("next"),
        std::fs::read(&file).expect("key")
    );
    std::fs::copy(&file, &next).expect("copy");
    let rotated = rotate(&file, &no_env()).expect("rotate");
    assert!(!rotated.from_prepared);
    assert!(!next.exists());
    let after = Keyring::load_or_create(&file, &[], &no_env()).expect("read");
    assert_ne!(after.current().master(), first.current().master());
    // Names `secret rotate` never writes are not kept keys.
    std::fs::write(dir.path().join("secret.key.01"), [5u8; 64]).expect("write");
    let again = Keyring::load_or_create(&file, &[], &no_env()).expect("read");
    assert_eq!(again.older().len(), 1);
}
