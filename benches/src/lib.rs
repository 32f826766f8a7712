//! Shared setup of the workspace benches (inputs built from the sandbox,
//! peers to measure against). The benches themselves live in `benches/`.
#![deny(missing_docs)]
