//! Integration tests of binlog-parser, in one binary: the real binlog
//! corpus, the fuzz corpus replayed, and every column type against a live
//! MariaDB. `zero_alloc` stays a binary of its own (a counting global
//! allocator).

mod corpus;
mod fuzz_replay;
mod live_mariadb;
