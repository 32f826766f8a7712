//! Integration tests of mysql-source, in one binary: connections (auth
//! plugins, TLS modes, errors), server facts, replication, snapshots, the
//! Sakila schema, and a private server of the test's own.

mod connection;
mod private_server;
mod replication;
mod sakila;
mod sandbox_server;
mod snapshot;
