//! Table schemas from `information_schema`: columns with their types,
//! signedness, charsets, generated and invisible columns, primary and
//! unique keys, as typed values `sync-core` maps to destination types.
//! They serialize (serde) so that a task can persist the schema in force at
//! a binlog position.

use crate::conn::RawConn;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// The MySQL type of a column, with the parameters that matter for mapping.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
#[non_exhaustive]
pub enum ColumnType {
    /// TINYINT (1 byte).
    TinyInt,
    /// SMALLINT (2 bytes).
    SmallInt,
    /// MEDIUMINT (3 bytes).
    MediumInt,
    /// INT (4 bytes).
    Int,
    /// BIGINT (8 bytes).
    BigInt,
    /// DECIMAL(precision, scale).
    Decimal {
        /// Total digits.
        precision: u8,
        /// Digits after the point.
        scale: u8,
    },
    /// FLOAT.
    Float,
    /// DOUBLE.
    Double,
    /// BIT(width).
    Bit {
        /// Bits, 1–64.
        width: u8,
    },
    /// YEAR.
    Year,
    /// DATE.
    Date,
    /// TIME(fsp).
    Time {
        /// Fractional digits 0–6.
        fsp: u8,
    },
    /// DATETIME(fsp): a wall-clock time.
    DateTime {
        /// Fractional digits 0–6.
        fsp: u8,
    },
    /// TIMESTAMP(fsp): an instant (UTC).
    Timestamp {
        /// Fractional digits 0–6.
        fsp: u8,
    },
    /// CHAR(len) (characters).
    Char {
        /// Length in characters.
        len: u32,
    },
    /// VARCHAR(len) (characters).
    VarChar {
        /// Maximum length in characters.
        len: u32,
    },
    /// BINARY(len) (bytes).
    Binary {
        /// Length in bytes.
        len: u32,
    },
    /// VARBINARY(len) (bytes).
    VarBinary {
        /// Maximum length in bytes.
        len: u32,
    },
    /// TINYTEXT … LONGTEXT.
    Text {
        /// Maximum length in bytes.
        max_bytes: u64,
    },
    /// TINYBLOB … LONGBLOB.
    Blob {
        /// Maximum length in bytes.
        max_bytes: u64,
    },
    /// ENUM with its members in order (index 1 = first).
    Enum(Vec<String>),
    /// SET with its members in bit order.
    Set(Vec<String>),
    /// JSON (MySQL's binary JSON; on MariaDB an alias of LONGTEXT and reported as text).
    Json,
    /// GEOMETRY and its subtypes (`POINT`, `POLYGON`, …).
    Geometry(String),
    /// Anything else, with `DATA_TYPE` as given (e.g. MariaDB `inet6`, `uuid`, MySQL `vector`).
    Other(String),
}

impl ColumnType {
    /// True for the integer types.
    pub fn is_integer(&self) -> bool {
        matches!(
            self,
            Self::TinyInt | Self::SmallInt | Self::MediumInt | Self::Int | Self::BigInt
        )
    }
}

/// A generated column.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct Generated {
    /// The expression.
    pub expression: String,
    /// STORED (true) or VIRTUAL (false).
    pub stored: bool,
}

/// One column.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct ColumnSchema {
    /// Column name.
    pub name: String,
    /// 1-based position in the table (the order of binlog row images).
    pub ordinal: u32,
    /// The type.
    pub column_type: ColumnType,
    /// `COLUMN_TYPE` as the server prints it, e.g. `int(10) unsigned`.
    pub column_type_text: String,
    /// UNSIGNED numeric column.
    pub unsigned: bool,
    /// NULL allowed.
    pub nullable: bool,
    /// Character set of character columns (`None` for others and binary strings).
    pub charset: Option<String>,
    /// Collation of character columns.
    pub collation: Option<String>,
    /// Default value as text, if any.
    pub default: Option<String>,
    /// AUTO_INCREMENT.
    pub auto_increment: bool,
    /// Set for generated columns.
    pub generated: Option<Generated>,
    /// INVISIBLE column (not in `SELECT *`).
    pub invisible: bool,
    /// Column comment.
    pub comment: String,
}

/// A unique index.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct UniqueKey {
    /// Index name.
    pub name: String,
    /// Its columns in index order.
    pub columns: Vec<String>,
    /// True when every column is NOT NULL (only then are rows really unique).
    pub not_null: bool,
}

/// A table's schema.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct TableSchema {
    /// Database.
    pub database: String,
    /// Table.
    pub table: String,
    /// Columns in ordinal order.
    pub columns: Vec<ColumnSchema>,
    /// Primary key columns in index order (empty without a primary key).
    pub primary_key: Vec<String>,
    /// Unique keys other than the primary key.
    pub unique_keys: Vec<UniqueKey>,
    /// Storage engine.
    pub engine: String,
}

impl TableSchema {
    /// The key the snapshot chunks on and `sync-core` merges on: the
    /// primary key, else the first unique key whose columns are all NOT
    /// NULL; `None` when the table has neither.
    pub fn row_key(&self) -> Option<&[String]> {
        if !self.primary_key.is_empty() {
            return Some(&self.primary_key);
        }
        self.unique_keys
            .iter()
            .find(|k| k.not_null)
            .map(|k| k.columns.as_slice())
    }

    /// Looks up a column by name (case-insensitive, as MySQL compares them).
    pub fn column(&self, name: &str) -> Option<&ColumnSchema> {
        self.columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }
}

/// Quotes an identifier with backticks.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Quotes a string literal (for connections with the default `sql_mode`,
/// where backslash escapes are active; the snapshot sets that mode).
pub fn quote_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Reads the schema of `database.table`.
///
/// # Errors
/// [`Error::Snapshot`] when the table does not exist; query errors.
pub async fn read_table(conn: &mut RawConn, database: &str, table: &str) -> Result<TableSchema> {
    let db = quote_str(database);
    let tb = quote_str(table);
    let engine = conn
        .query_strings(&format!(
            "SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = {db} AND TABLE_NAME = {tb}"
        ))
        .await?;
    let Some(engine_row) = engine.first() else {
        return Err(Error::Snapshot {
            table: format!("{database}.{table}"),
            message: "no such table".into(),
        });
    };
    let engine = engine_row.first().cloned().flatten().unwrap_or_default();
    let rows = conn
        .query_strings(&format!(
            "SELECT COLUMN_NAME, ORDINAL_POSITION, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, \
             CHARACTER_MAXIMUM_LENGTH, NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION, \
             CHARACTER_SET_NAME, COLLATION_NAME, COLUMN_DEFAULT, EXTRA, GENERATION_EXPRESSION, COLUMN_COMMENT \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {db} AND TABLE_NAME = {tb} \
             ORDER BY ORDINAL_POSITION"
        ))
        .await?;
    let mut columns = Vec::with_capacity(rows.len());
    for r in rows {
        let get = |i: usize| r.get(i).cloned().flatten();
        let num = |i: usize| get(i).and_then(|v| v.parse::<u64>().ok());
        let name = get(0).unwrap_or_default();
        let data_type = get(2).unwrap_or_default().to_ascii_lowercase();
        let column_type_text = get(3).unwrap_or_default();
        let extra = get(12).unwrap_or_default().to_ascii_uppercase();
        let ct = column_type(
            &data_type,
            &column_type_text,
            num(5),
            num(6),
            num(7),
            num(8),
        );
        let generated = if extra.contains("GENERATED")
            || extra.contains("VIRTUAL")
            || extra.contains("PERSISTENT")
        {
            Some(Generated {
                expression: get(13).unwrap_or_default(),
                stored: extra.contains("STORED") || extra.contains("PERSISTENT"),
            })
        } else {
            None
        };
        columns.push(ColumnSchema {
            ordinal: num(1).and_then(|v| u32::try_from(v).ok()).unwrap_or(0),
            unsigned: column_type_text.to_ascii_lowercase().contains("unsigned"),
            nullable: get(4).as_deref() == Some("YES"),
            charset: get(9),
            collation: get(10),
            default: get(11),
            auto_increment: extra.contains("AUTO_INCREMENT"),
            invisible: extra.contains("INVISIBLE"),
            comment: get(14).unwrap_or_default(),
            generated,
            column_type: ct,
            column_type_text,
            name,
        });
    }
    let stats = conn
        .query_strings(&format!(
            "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = {db} AND TABLE_NAME = {tb} AND NON_UNIQUE = 0 \
             ORDER BY INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX"
        ))
        .await?;
    let mut primary_key = Vec::new();
    let mut unique_keys: Vec<UniqueKey> = Vec::new();
    for r in stats {
        let (Some(index), Some(col)) = (r.first().cloned().flatten(), r.get(1).cloned().flatten())
        else {
            // Functional key parts have no column: such a key cannot chunk.
            continue;
        };
        if index == "PRIMARY" {
            primary_key.push(col);
            continue;
        }
        let nullable = columns
            .iter()
            .find(|c| c.name == col)
            .is_none_or(|c| c.nullable);
        match unique_keys.last_mut() {
            Some(k) if k.name == index => {
                k.columns.push(col);
                k.not_null &= !nullable;
            }
            _ => unique_keys.push(UniqueKey {
                name: index,
                columns: vec![col],
                not_null: !nullable,
            }),
        }
    }
    Ok(TableSchema {
        database: database.to_owned(),
        table: table.to_owned(),
        columns,
        primary_key,
        unique_keys,
        engine,
    })
}

/// Maps `DATA_TYPE`/`COLUMN_TYPE` to a [`ColumnType`].
fn column_type(
    data_type: &str,
    column_type: &str,
    char_len: Option<u64>,
    precision: Option<u64>,
    scale: Option<u64>,
    dt_precision: Option<u64>,
) -> ColumnType {
    let fsp = dt_precision.unwrap_or(0).min(6) as u8;
    let len32 = char_len.unwrap_or(0).min(u64::from(u32::MAX)) as u32;
    match data_type {
        "tinyint" => ColumnType::TinyInt,
        "smallint" => ColumnType::SmallInt,
        "mediumint" => ColumnType::MediumInt,
        "int" | "integer" => ColumnType::Int,
        "bigint" => ColumnType::BigInt,
        "decimal" | "numeric" => ColumnType::Decimal {
            precision: precision.unwrap_or(10).min(65) as u8,
            scale: scale.unwrap_or(0).min(38) as u8,
        },
        "float" => ColumnType::Float,
        "double" | "real" => ColumnType::Double,
        "bit" => ColumnType::Bit {
            width: precision.unwrap_or(1).clamp(1, 64) as u8,
        },
        "year" => ColumnType::Year,
        "date" => ColumnType::Date,
        "time" => ColumnType::Time { fsp },
        "datetime" => ColumnType::DateTime { fsp },
        "timestamp" => ColumnType::Timestamp { fsp },
        "char" => ColumnType::Char { len: len32 },
        "varchar" => ColumnType::VarChar { len: len32 },
        "binary" => ColumnType::Binary { len: len32 },
        "varbinary" => ColumnType::VarBinary { len: len32 },
        "tinytext" | "text" | "mediumtext" | "longtext" => ColumnType::Text {
            max_bytes: char_len.unwrap_or(0),
        },
        "tinyblob" | "blob" | "mediumblob" | "longblob" => ColumnType::Blob {
            max_bytes: char_len.unwrap_or(0),
        },
        "enum" => ColumnType::Enum(members(column_type)),
        "set" => ColumnType::Set(members(column_type)),
        "json" => ColumnType::Json,
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" | "geomcollection" => {
            ColumnType::Geometry(data_type.to_owned())
        }
        other => ColumnType::Other(other.to_owned()),
    }
}

/// The members of `enum('a','b''c')` / `set(...)`.
fn members(column_type: &str) -> Vec<String> {
    let Some(start) = column_type.find('(') else {
        return Vec::new();
    };
    let inner = column_type[start + 1..].trim_end().trim_end_matches(')');
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_str = false;
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, in_str) {
            ('\'', false) => in_str = true,
            ('\'', true) if chars.peek() == Some(&'\'') => {
                cur.push('\'');
                chars.next();
            }
            ('\'', true) => {
                in_str = false;
                out.push(std::mem::take(&mut cur));
            }
            ('\\', true) => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (c, true) => cur.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_members_with_quotes_and_commas() {
        assert_eq!(members("enum('a','b''c','d,e')"), vec!["a", "b'c", "d,e"]);
        assert_eq!(members("set('x')"), vec!["x"]);
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a`b"), "`a``b`");
        assert_eq!(quote_str("it's \\ ok"), "'it''s \\\\ ok'");
    }
}
