// Corpus files whose table maps the row-decoding target decodes against.
// Also included by `crates/binlog-parser/tests/fuzz_replay.rs`.
const ROW_FILES: [&[u8]; 8] = [
    include_bytes!("../../crates/binlog-parser/testdata/binlogs/json.binlog.000001"),
    include_bytes!("../../crates/binlog-parser/testdata/binlogs/json-opaque.binlog"),
    include_bytes!("../../crates/binlog-parser/testdata/binlogs/mysql-enum-string-set.000001"),
    include_bytes!("../../crates/binlog-parser/testdata/binlogs/mariadb-bin.000001"),
    include_bytes!("../../crates/binlog-parser/testdata/binlogs/vector.binlog"),
    include_bytes!("../../crates/binlog-parser/testdata/binlogs/binlog-invisible-columns.000001"),
    include_bytes!("../../crates/binlog-parser/testdata/binlogs/time_issue.000001"),
    include_bytes!("../../crates/binlog-parser/testdata/binlogs/mysql_type_bit.000001"),
];
