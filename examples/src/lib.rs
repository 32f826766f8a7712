//! Runnable examples of embedding the toolkit: see the `*.rs` files beside
//! this crate's manifest and run them with `cargo run -p sync-examples --example NAME`.
#![deny(missing_docs)]
