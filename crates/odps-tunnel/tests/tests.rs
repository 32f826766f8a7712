//! Integration tests of odps-tunnel: reference vectors made by pyodps, and
//! (when the emulator is available) round trips through `odps-emulator`.
#![allow(clippy::unwrap_used)]

mod emulator;
mod pyodps_cross;
mod pyodps_vectors;
mod tls;
