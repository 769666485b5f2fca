//! PostgreSQL going away under a running server, in process over HTTP: the scenarios every
//! engine shares (`common::faults`, module `shared`) run here against PostgreSQL. Unlike a Redis
//! without persistence, the database keeps what it had acknowledged: the sessions and accounts
//! from before a crash are still there. PostgreSQL has no scenario of its own.

mod common;

engine_fault_suite!(PostgresServer);
