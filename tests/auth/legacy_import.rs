//! The legacy import seen from outside: a users.json with entries a registration would refuse
//! still lets the server start; the good entries log in over HTTP, the others are named in the
//! log, quoted, so that an id cannot forge log lines.

use super::*;

#[actix_web::test]
async fn refused_legacy_entries_are_named_quoted_in_the_log_and_the_server_starts() {
    let hash = bcrypt::hash("legacy password", 4).expect("hash");
    let legacy = serde_json::json!({
        "version": 1,
        "users": {
            "imported-ok": {"name": "Fine", "password_hash": hash,
                            "created_at": "2024-05-01T10:00:00Z"},
            "skipped\nINFO forged line": {"name": "Forger", "password_hash": hash,
                                           "created_at": "2024-05-01T10:00:00Z"},
            "skipped-md5": {"name": "Md5", "password_hash": "$1$salt$abcdefghijklmnopqrstuv",
                            "created_at": "2024-05-01T10:00:00Z"},
        }
    })
    .to_string();
    let logs = logs();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("users.json"), &legacy).expect("write legacy");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "[session]\nlifetime = 60\n[auth]\nbcrypt_cost = 4\n",
    )
    .expect("write config");
    let site = Site::in_folder(dir).expect("starts despite the refused entries");
    let app = start(&site).await;
    assert_eq!(
        Browser::new()
            .login(&app, "imported-ok", "legacy password")
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let text = String::from_utf8_lossy(&logs.lock()).into_owned();
    assert!(
        text.contains(r#"user_id="skipped\nINFO forged line""#),
        "the id, quoted: {text}"
    );
    assert!(!text.contains("\nINFO forged line"), "no forged line");
    assert!(text.contains(r#"user_id="skipped-md5""#), "{text}");
    assert!(site.dir.path().join("users.json.imported").exists());
}
