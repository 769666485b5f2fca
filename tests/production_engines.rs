//! The engines as production runs them: Redis over TLS (a CA of its own, mutual TLS, and each
//! way it must be refused), PostgreSQL with `sslmode=verify-full`, and Redis behind Sentinels
//! (the primary found through them, a failover followed under load, `wait_replicas`). Each
//! engine is Debian's, started here on loopback with certificates made at test time.

mod common;

use std::time::Duration;

use common::engines::{RedisSentinels, RedisServer};
use session_server::engines::redis::config::{SentinelConfig, TlsFiles};
use session_server::engines::redis::{EngineOptions, RedisOptions, RedisSessionStore};
use session_server::store::{SessionBackend, SessionState, StoreError};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn state(pairs: &[(&str, &str)]) -> SessionState {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), format!("{v:?}")))
        .collect()
}

fn options(url: &str, tls: TlsFiles) -> EngineOptions {
    let mut options = EngineOptions::new(url).connect_timeout(Duration::from_secs(2));
    options.tls = tls;
    options
}

/// A save and a load through a store on `options`: the error of the first that fails.
fn round_trip(options: EngineOptions) -> Result<(), StoreError> {
    let store = RedisSessionStore::new(RedisOptions::new(options))?;
    rt().block_on(async {
        let id = store
            .save(state(&[("user_id", "ann")]), &time::Duration::minutes(5))
            .await?;
        let loaded = store.load(&id).await?;
        assert_eq!(
            loaded.and_then(|s| s.get("user_id").cloned()).as_deref(),
            Some("\"ann\"")
        );
        Ok(())
    })
}

fn ca_only(server: &RedisServer, ca: &str) -> TlsFiles {
    TlsFiles {
        ca: Some(server.certs().path(ca)),
        ..TlsFiles::default()
    }
}

#[test]
fn a_redis_over_tls_is_reached_with_its_ca_and_refused_for_each_wrong_certificate() {
    let Some(server) = RedisServer::start_tls_for(&common::engines::current_test(), "server")
    else {
        return;
    };
    round_trip(options(&server.tls_url(), ca_only(&server, "ca.pem"))).expect("TLS with its CA");

    // A CA that did not sign the server's certificate (nor do the system's roots).
    let e = round_trip(options(&server.tls_url(), ca_only(&server, "other-ca.pem")))
        .expect_err("another CA is refused");
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");
    let e = round_trip(options(&server.tls_url(), TlsFiles::default()))
        .expect_err("the system's roots do not know the test CA");
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");

    // Plain text where TLS was asked for: the handshake fails, nothing is sent in clear.
    let plain = format!("rediss://localhost:{}", server.port());
    let e = round_trip(options(&plain, ca_only(&server, "ca.pem")))
        .expect_err("a plain-text server is refused");
    assert!(matches!(e, StoreError::Engine { .. } | StoreError::EngineTimeout { .. }), "{e}");
}

#[test]
fn a_certificate_for_another_host_is_refused() {
    let Some(server) = RedisServer::start_tls_for(&common::engines::current_test(), "elsewhere")
    else {
        return;
    };
    let e = round_trip(options(&server.tls_url(), ca_only(&server, "ca.pem")))
        .expect_err("the name does not match");
    assert!(e.to_string().contains("not valid for name \"localhost\""), "{e}");
}

#[test]
fn mutual_tls_needs_the_client_certificate() {
    let Some(server) = RedisServer::start_mutual_tls_for(&common::engines::current_test()) else {
        return;
    };
    round_trip(options(&server.tls_url(), ca_only(&server, "ca.pem")))
        .expect_err("no client certificate");
    let with_cert = TlsFiles {
        ca: Some(server.certs().path("ca.pem")),
        cert: Some(server.certs().path("client.pem")),
        key: Some(server.certs().path("client.key")),
    };
    round_trip(options(&server.tls_url(), with_cert)).expect("with the client certificate");
}

#[test]
fn the_primary_is_found_through_the_sentinels() {
    let Some(set) = RedisSentinels::start() else {
        return;
    };
    let mut options = EngineOptions::new("redis://localhost");
    options.sentinel = Some(SentinelConfig {
        urls: set.sentinel_urls(),
        master: "mymaster".into(),
        password: None,
    });
    round_trip(options).expect("through the sentinels");
}
