//! A wide table of many MySQL column types whose every value is a function of
//! its key, filled server-side by MariaDB's `seq` engine: fast to generate at
//! a million rows, for benches and large tests.

/// A wide table of 22 columns of most MySQL types, keyed by `id`.
pub const WIDE_DDL: &str = "(
    id BIGINT NOT NULL PRIMARY KEY,
    ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, mi MEDIUMINT, iu INT UNSIGNED,
    bi BIGINT, bu BIGINT UNSIGNED, de DECIMAL(20,6), f FLOAT, d DOUBLE, y YEAR,
    dt DATE, tm TIME(3), dtt DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL,
    c CHAR(10), vc VARCHAR(100), vb VARBINARY(50), tx TEXT, e ENUM('red','green','blue'), st SET('a','b','c')
)";

/// A `SELECT` of rows for [`WIDE_DDL`] from a derived table `from` with an
/// integer column `seq` (the key); every value is a function of `seq`.
pub fn wide_select(from: &str) -> String {
    format!(
        "SELECT seq, seq % 256 - 128, seq % 256, seq % 65536 - 32768, seq * 97 % 16777216 - 8388608,
        seq * 104729 % 4294967296, seq * 1000003 - 2500000000, 18446744073709551615 - seq,
        (seq * 7919 % 100000000) / 1000000 - 50, seq / 8.0, seq * 1.25e10, 1901 + seq % 255,
        DATE('1000-01-01') + INTERVAL (seq % 700000) DAY, SEC_TO_TIME(seq % 3000000 - 1000000),
        TIMESTAMP('1969-07-20 20:17:40') + INTERVAL (seq * 777) SECOND + INTERVAL seq MICROSECOND,
        IF(seq % 7 = 0, NULL, FROM_UNIXTIME(1000000000 + seq * 31) + INTERVAL seq MICROSECOND),
        CONCAT('c', seq % 1000), CONCAT('value ', seq, ' ', REPEAT('v', seq % 40)), UNHEX(REPEAT(HEX(seq % 256), seq % 20)),
        REPEAT('text ', seq % 20), ELT(1 + seq % 3, 'red', 'green', 'blue'), MAKE_SET(seq % 8, 'a', 'b', 'c')
        FROM {from}"
    )
}

/// `INSERT … SELECT` statements that fill `table` (of [`WIDE_DDL`]) with the
/// keys `first..=last`, 100,000 rows per statement (MariaDB's `seq` engine).
pub fn wide_fill(table: &str, first: u64, last: u64) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = first;
    while start <= last {
        let end = (start + 99_999).min(last);
        let from = format!("(SELECT CAST(seq AS SIGNED) AS seq FROM mysql.seq_{start}_to_{end}) s");
        out.push(format!("INSERT INTO {table} {}", wide_select(&from)));
        start = end + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_fill_covers_the_range_in_statements_of_100k() {
        let s = wide_fill("db.t", 1, 250_000);
        assert_eq!(s.len(), 3);
        assert!(s[0].contains("seq_1_to_100000") && s[2].contains("seq_200001_to_250000"));
        assert!(s[0].starts_with("INSERT INTO db.t SELECT seq,"));
    }
}
