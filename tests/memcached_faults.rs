//! memcached going away under a running server, in process over HTTP: the scenarios every
//! engine shares (`common::faults`, module `shared`) run here against memcached, which comes back
//! empty after a kill; the accounts live in SQLite (memcached may evict), so they survive while
//! the sessions do not. A server started while memcached is down is also tried over memcached's
//! unix socket (`servers = ["unix:/path"]`). memcached has no scenario of its own.

mod common;

engine_fault_suite!(
    MemcachedServer;
    a_server_started_while_the_engine_is_down_over_its_unix_socket_recovers
);
