//! Unit tests of the redis store.
