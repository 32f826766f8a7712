//! Client for Alibaba MaxCompute (ODPS): the REST control plane and the
//! Tunnel data plane.
//!
//! # Module plan
//!
//! | module | job |
//! |---|---|
//! | `error` | typed errors, including MaxCompute's own error code and message |
//! | `auth` | request signing (canonical string, HMAC-SHA1), STS tokens; secrets never printed |
//! | `rest` | SQL instances, table schemas and partitions, tunnel endpoint discovery |
//! | `session` | upload and download session JSON |
//! | `encode` | no-I/O block codecs: chunked Arrow IPC with CRC32C, protobuf records |
//! | `writer` | async block writer: blocks in flight, retry by block id, resumable sessions |
//! | `types` | the MaxCompute 2.0 type system and its Arrow mapping |
//!
//! The codec modules are shared with `odps-emulator`, so client and server
//! cannot drift apart. They land with the odps-tunnel issue; until then this
//! crate exposes nothing.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
