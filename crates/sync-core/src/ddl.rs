//! The DDL statements the incremental phase must understand, parsed from a
//! binlog QUERY event's text.
//!
//! A small parser of the subset that changes what a synced table's rows look
//! like or whether it exists: `ALTER TABLE` (each alteration classified),
//! `RENAME TABLE`, `DROP TABLE`, `TRUNCATE`, `CREATE TABLE`, `CREATE`/`DROP
//! INDEX` and `DROP DATABASE`. Every other statement is `None`. It takes
//! backquoted and (with `ANSI_QUOTES`) double-quoted identifiers, `db.table`
//! names (unqualified ones belong to the event's default database),
//! comments (`/* */`, `-- `, `#`; the executable `/*! */` and `/*M! */`
//! are read as code), `IF [NOT] EXISTS`, and MariaDB's `ONLINE`, `IGNORE`,
//! `WAIT n` and `NOWAIT`.
//!
//! Column definitions become [`ColumnSchema`]s the way `information_schema`
//! would describe them (type, signedness, charset, nullability, default);
//! an alteration the parser cannot read becomes [`AlterSpec::Unparsed`]
//! rather than a guess.
//!
//! ```
//! use sync_core::ddl::{parse, AlterSpec, ParseOptions, Statement};
//! let sql = "ALTER TABLE `shop`.orders ADD COLUMN note VARCHAR(10) DEFAULT 'x' AFTER id";
//! let Some(Statement::AlterTable { table, specs }) = parse(sql, "other", ParseOptions::default())? else {
//!     panic!("an ALTER TABLE");
//! };
//! assert_eq!((table.database.as_str(), table.table.as_str()), ("shop", "orders"));
//! let AlterSpec::AddColumns { columns, .. } = &specs[0] else { panic!() };
//! assert_eq!(columns[0].column.column_type_text, "varchar(10)");
//! # Ok::<(), sync_core::ddl::DdlError>(())
//! ```

use mysql_source::schema::{ColumnSchema, ColumnType, Generated, TableSchema, UniqueKey};

mod dml;
pub use dml::{DmlKind, DmlStatement, parse_dml};

/// How the statement was written (from the QUERY event's `sql_mode`).
#[derive(Clone, Copy, Debug, Default)]
pub struct ParseOptions {
    /// `ANSI_QUOTES`: `"x"` is an identifier, not a string.
    pub ansi_quotes: bool,
    /// `NO_BACKSLASH_ESCAPES`: `\` is an ordinary character in strings.
    pub no_backslash_escapes: bool,
}

impl ParseOptions {
    /// The options a QUERY event's `sql_mode` bits imply.
    pub fn from_sql_mode(mode: u64) -> Self {
        Self {
            ansi_quotes: mode & SQL_MODE_ANSI_QUOTES != 0,
            no_backslash_escapes: mode & SQL_MODE_NO_BACKSLASH_ESCAPES != 0,
        }
    }
}

/// `MODE_ANSI_QUOTES` in the server's `sql_mode` bits.
const SQL_MODE_ANSI_QUOTES: u64 = 1 << 2;
/// `MODE_NO_BACKSLASH_ESCAPES`.
const SQL_MODE_NO_BACKSLASH_ESCAPES: u64 = 1 << 21;

/// A statement that could not be read.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
#[error("{message} (at byte {offset})")]
pub struct DdlError {
    /// What is wrong.
    pub message: String,
    /// Byte offset in the statement.
    pub offset: usize,
}

/// A table, qualified.
#[derive(Clone, Debug, Eq, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TableName {
    /// Database.
    pub database: String,
    /// Table.
    pub table: String,
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.database, self.table)
    }
}

/// Where `ADD`/`MODIFY`/`CHANGE` puts a column.
#[derive(Clone, Debug, Eq, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum ColumnPosition {
    /// `FIRST`.
    First,
    /// `AFTER name`.
    After(String),
}

/// An index or constraint kind.
#[derive(Clone, Copy, Debug, Eq, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum KeyKind {
    /// `PRIMARY KEY`.
    Primary,
    /// `UNIQUE`.
    Unique,
    /// A plain, full-text or spatial index.
    Plain,
    /// `FOREIGN KEY`.
    Foreign,
    /// `CHECK`.
    Check,
}

/// A column definition.
#[derive(Clone, Debug, Eq, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ColumnDef {
    /// The column as `information_schema` would show it (ordinal 0: the
    /// caller places it). A character column without `CHARACTER SET` or
    /// `COLLATE` has `charset: None`: the table's default applies.
    pub column: ColumnSchema,
    /// `PRIMARY KEY` or `UNIQUE` in the definition itself.
    pub key: Option<KeyKind>,
    /// Its `DEFAULT` when that is a literal (a string or a number, as its
    /// value), not an expression such as `CURRENT_TIMESTAMP`.
    pub literal_default: Option<String>,
}

/// One alteration of an `ALTER TABLE`.
#[derive(Clone, Debug, Eq, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum AlterSpec {
    /// `ADD [COLUMN] [IF NOT EXISTS] def [FIRST | AFTER c]` or `ADD (def, ...)`.
    AddColumns {
        /// The columns, in order.
        columns: Vec<ColumnDef>,
        /// Where the (single) column goes; `None`: at the end.
        position: Option<ColumnPosition>,
        /// `IF NOT EXISTS`.
        if_not_exists: bool,
    },
    /// `DROP [COLUMN] [IF EXISTS] c`.
    DropColumn {
        /// The column.
        name: String,
        /// `IF EXISTS`.
        if_exists: bool,
    },
    /// `MODIFY` (`old` = the new definition's name) or `CHANGE old def`.
    ChangeColumn {
        /// The column's name before.
        old: String,
        /// Its new definition.
        column: Box<ColumnDef>,
        /// Where it moves.
        position: Option<ColumnPosition>,
        /// `IF EXISTS`.
        if_exists: bool,
    },
    /// `RENAME COLUMN a TO b`.
    RenameColumn {
        /// Old name.
        from: String,
        /// New name.
        to: String,
    },
    /// `RENAME [TO | AS] t`.
    RenameTable(TableName),
    /// `ADD [CONSTRAINT [n]] PRIMARY KEY | UNIQUE | INDEX | FOREIGN KEY | CHECK …`.
    AddKey {
        /// What is added.
        kind: KeyKind,
        /// Its name, when given.
        name: Option<String>,
    },
    /// `DROP PRIMARY KEY`.
    DropPrimaryKey,
    /// `DROP INDEX | KEY | CONSTRAINT n`.
    DropKey(String),
    /// `CONVERT TO CHARACTER SET cs`.
    ConvertCharset(String),
    /// An operation that removes or replaces rows without row events:
    /// `DROP`/`TRUNCATE`/`EXCHANGE PARTITION`, `DISCARD`/`IMPORT TABLESPACE`.
    RowsRemoved(String),
    /// `ADD`/`DROP SYSTEM VERSIONING` (adds or removes hidden columns).
    SystemVersioning,
    /// No effect on the rows: table options, `ALGORITHM`, defaults, plain
    /// indexes, `ADD PARTITION`, …
    NoRowEffect,
    /// An alteration the parser cannot read.
    Unparsed {
        /// Its text.
        text: String,
        /// Why.
        reason: String,
    },
}

/// A statement that matters to the synced tables.
#[derive(Clone, Debug, PartialEq)]
pub enum Statement {
    /// `ALTER TABLE t spec, spec, …`.
    AlterTable {
        /// The table.
        table: TableName,
        /// Its alterations, in order.
        specs: Vec<AlterSpec>,
    },
    /// `RENAME TABLE a TO b, c TO d`.
    RenameTables(Vec<(TableName, TableName)>),
    /// `DROP TABLE a, b` (not `TEMPORARY`).
    DropTables(Vec<TableName>),
    /// `TRUNCATE [TABLE] t`.
    Truncate(TableName),
    /// `CREATE [OR REPLACE] TABLE [IF NOT EXISTS] t …` (not `TEMPORARY`).
    CreateTable {
        /// The table.
        table: TableName,
        /// `IF NOT EXISTS`.
        if_not_exists: bool,
        /// `OR REPLACE`.
        or_replace: bool,
        /// What the statement says the table's columns are.
        definition: TableDefinition,
    },
    /// `CREATE [UNIQUE | …] INDEX n ON t`.
    CreateIndex {
        /// The table.
        table: TableName,
        /// The index kind.
        kind: KeyKind,
    },
    /// `DROP INDEX n ON t`.
    DropIndex {
        /// The table.
        table: TableName,
        /// The index.
        name: String,
    },
    /// `DROP DATABASE | SCHEMA d`.
    DropDatabase(String),
}

/// The columns of a table a `CREATE TABLE` makes.
#[derive(Clone, Debug, PartialEq)]
pub enum TableDefinition {
    /// A column list, read into the schema `information_schema` would show
    /// (ordinals from 1). A character column given no character set, by
    /// itself or by the table options, has `charset: None`: the database's
    /// default applies.
    Columns(TableSchema),
    /// `LIKE other`: the other table's columns.
    Like(TableName),
    /// No column list to read (e.g. `CREATE TABLE t SELECT …` logged as a
    /// statement).
    Unknown,
}

/// Parses `sql`; unqualified table names belong to `default_db` (the QUERY
/// event's current database). `Ok(None)`: not a statement this module
/// cares about (DML, `GRANT`, views, temporary tables, …).
///
/// # Errors
/// [`DdlError`] when the statement is one of the kinds above but its table
/// names cannot be read (alterations that cannot be read are
/// [`AlterSpec::Unparsed`] instead).
pub fn parse(
    sql: &str,
    default_db: &str,
    opts: ParseOptions,
) -> Result<Option<Statement>, DdlError> {
    Parser::over(sql, default_db, opts)?.statement()
}

// ---------------------------------------------------------------- lexer

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    /// An identifier or keyword; `quoted` for backquoted ones.
    Word { text: String, quoted: bool },
    /// A string literal, unescaped.
    Str(String),
    /// A number (or `0x..`): its text.
    Num(String),
    /// Any other character.
    Punct(char),
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    start: usize,
    end: usize,
}

fn lex(sql: &str, opts: ParseOptions) -> Result<Vec<Token>, DdlError> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    // Depth of executable comments (`/*! … */`) being read as code.
    let mut exec = 0usize;
    let err = |message: &str, offset| DdlError {
        message: message.to_owned(),
        offset,
    };
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'#'
            || (c == b'-'
                && b.get(i + 1) == Some(&b'-')
                && b.get(i + 2)
                    .is_none_or(|n| n.is_ascii_whitespace() || n.is_ascii_control()))
        {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let marker = if b.get(i + 2) == Some(&b'!') {
                Some(3)
            } else if b.get(i + 2) == Some(&b'M') && b.get(i + 3) == Some(&b'!') {
                Some(4)
            } else {
                None
            };
            if let Some(len) = marker {
                i += len;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                exec += 1;
                continue;
            }
            match sql[i + 2..].find("*/") {
                Some(end) => i = i + 2 + end + 2,
                None => return Err(err("unterminated comment", i)),
            }
            continue;
        }
        if exec > 0 && c == b'*' && b.get(i + 1) == Some(&b'/') {
            exec -= 1;
            i += 2;
            continue;
        }
        let start = i;
        let tok = match c {
            b'`' => {
                let (text, next) = quoted(sql, i, '`', false)
                    .ok_or_else(|| err("unterminated backquoted identifier", i))?;
                i = next;
                Tok::Word { text, quoted: true }
            }
            b'"' if opts.ansi_quotes => {
                let (text, next) = quoted(sql, i, '"', false)
                    .ok_or_else(|| err("unterminated quoted identifier", i))?;
                i = next;
                Tok::Word { text, quoted: true }
            }
            b'\'' | b'"' => {
                let (text, next) = quoted(sql, i, c as char, !opts.no_backslash_escapes)
                    .ok_or_else(|| err("unterminated string", i))?;
                i = next;
                Tok::Str(text)
            }
            b'0'..=b'9' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_')
                {
                    // An exponent's sign belongs to the number.
                    if (b[i] == b'e' || b[i] == b'E')
                        && matches!(b.get(i + 1), Some(b'+' | b'-'))
                        && !sql[start..i].starts_with("0x")
                    {
                        i += 1;
                    }
                    i += 1;
                }
                let text = &sql[start..i];
                if text.bytes().all(|c| c.is_ascii_digit() || c == b'.')
                    || text.starts_with("0x")
                    || text.starts_with("0b")
                    || text.contains(['e', 'E'])
                {
                    Tok::Num(text.to_owned())
                } else {
                    // MySQL lets identifiers start with digits (`1st`).
                    Tok::Word {
                        text: text.to_owned(),
                        quoted: false,
                    }
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b'$' || c >= 0x80 => {
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric()
                        || b[i] == b'_'
                        || b[i] == b'$'
                        || b[i] >= 0x80)
                {
                    i += 1;
                }
                Tok::Word {
                    text: sql[start..i].to_owned(),
                    quoted: false,
                }
            }
            _ => {
                let ch = sql[i..].chars().next().unwrap_or(' ');
                i += ch.len_utf8();
                Tok::Punct(ch)
            }
        };
        out.push(Token { tok, start, end: i });
    }
    Ok(out)
}

/// A quoted run starting at `at` (the quote): its unescaped text and the
/// offset after the closing quote. A doubled quote is one quote.
fn quoted(sql: &str, at: usize, q: char, backslash: bool) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = sql[at + 1..].char_indices().peekable();
    while let Some((off, c)) = chars.next() {
        if c == q {
            if chars.peek().map(|&(_, n)| n) == Some(q) {
                out.push(q);
                chars.next();
                continue;
            }
            return Some((out, at + 1 + off + 1));
        }
        if backslash && c == '\\' {
            let (_, n) = chars.next()?;
            match n {
                '0' => out.push('\0'),
                'b' => out.push('\u{8}'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'Z' => out.push('\u{1a}'),
                // LIKE's wildcards keep their backslash.
                '%' | '_' => {
                    out.push('\\');
                    out.push(n);
                }
                other => out.push(other),
            }
            continue;
        }
        out.push(c);
    }
    None
}

// ---------------------------------------------------------------- parser

struct Parser<'a> {
    sql: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    default_db: &'a str,
}

impl<'a> Parser<'a> {
    /// A parser at the start of `sql`, past MariaDB's `SET STATEMENT … FOR`
    /// prefix (the binlog keeps it; it changes nothing we read).
    fn over(sql: &'a str, default_db: &'a str, opts: ParseOptions) -> Result<Self, DdlError> {
        let mut p = Parser {
            sql,
            tokens: lex(sql, opts)?,
            pos: 0,
            default_db,
        };
        p.skip_set_statement();
        Ok(p)
    }
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|t| &t.tok)
    }

    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.tokens.get(self.pos + n).map(|t| &t.tok)
    }

    fn offset(&self) -> usize {
        self.tokens
            .get(self.pos)
            .map_or(self.sql.len(), |t| t.start)
    }

    fn error(&self, message: impl Into<String>) -> DdlError {
        DdlError {
            message: message.into(),
            offset: self.offset(),
        }
    }

    fn at_end(&self) -> bool {
        matches!(self.peek(), None | Some(Tok::Punct(';')))
    }

    /// Whether the next token is the keyword `kw` (unquoted, any case).
    fn is_kw(&self, kw: &str) -> bool {
        self.is_kw_at(0, kw)
    }

    fn is_kw_at(&self, n: usize, kw: &str) -> bool {
        matches!(self.peek_at(n), Some(Tok::Word { text, quoted: false }) if text.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let yes = self.is_kw(kw);
        if yes {
            self.pos += 1;
        }
        yes
    }

    /// Eats the keywords in order when all are next.
    fn eat_kws(&mut self, kws: &[&str]) -> bool {
        if kws.iter().enumerate().all(|(n, k)| self.is_kw_at(n, k)) {
            self.pos += kws.len();
            true
        } else {
            false
        }
    }

    fn is_punct(&self, c: char) -> bool {
        matches!(self.peek(), Some(Tok::Punct(p)) if *p == c)
    }

    fn eat_punct(&mut self, c: char) -> bool {
        let yes = self.is_punct(c);
        if yes {
            self.pos += 1;
        }
        yes
    }

    fn expect_punct(&mut self, c: char) -> Result<(), DdlError> {
        if self.eat_punct(c) {
            Ok(())
        } else {
            Err(self.error(format!("expected `{c}`")))
        }
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), DdlError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.error(format!("expected {}", kw.to_uppercase())))
        }
    }

    /// An identifier (quoted or not).
    fn ident(&mut self) -> Result<String, DdlError> {
        match self.peek() {
            Some(Tok::Word { text, .. }) => {
                let t = text.clone();
                self.pos += 1;
                Ok(t)
            }
            _ => Err(self.error("expected a name")),
        }
    }

    /// A word, string or number as text (option values, charset names).
    fn value_text(&mut self) -> Result<String, DdlError> {
        match self.peek() {
            Some(Tok::Word { text, .. } | Tok::Str(text) | Tok::Num(text)) => {
                let t = text.clone();
                self.pos += 1;
                Ok(t)
            }
            _ => Err(self.error("expected a value")),
        }
    }

    fn table_name(&mut self) -> Result<TableName, DdlError> {
        let first = self.ident()?;
        if self.eat_punct('.') {
            let table = self.ident()?;
            return Ok(TableName {
                database: first,
                table,
            });
        }
        if self.default_db.is_empty() {
            return Err(self.error(format!(
                "table `{first}` is not qualified and the statement has no current database"
            )));
        }
        Ok(TableName {
            database: self.default_db.to_owned(),
            table: first,
        })
    }

    fn if_exists(&mut self) -> bool {
        self.eat_kws(&["if", "exists"])
    }

    fn if_not_exists(&mut self) -> bool {
        self.eat_kws(&["if", "not", "exists"])
    }

    /// MariaDB's `WAIT n` / `NOWAIT` after a table name.
    fn wait_option(&mut self) {
        if self.eat_kw("nowait") {
            return;
        }
        if self.is_kw("wait") && matches!(self.peek_at(1), Some(Tok::Num(_))) {
            self.pos += 2;
        }
    }

    /// Skips one token, or a whole parenthesised group.
    fn skip_one(&mut self) {
        if self.is_punct('(') {
            self.skip_group();
        } else {
            self.pos += 1;
        }
    }

    /// Skips MariaDB's `SET STATEMENT var = value, … FOR` before a
    /// statement (the binlog keeps it); leaves the position alone when the
    /// text does not start with one.
    fn skip_set_statement(&mut self) {
        if !(self.is_kw("set") && self.is_kw_at(1, "statement")) {
            return;
        }
        let start = self.pos;
        self.pos += 2;
        while !self.at_end() {
            if self.eat_kw("for") {
                return;
            }
            self.skip_one();
        }
        self.pos = start;
    }

    /// Skips `( … )`, nested groups included.
    fn skip_group(&mut self) {
        let mut depth = 0usize;
        while let Some(t) = self.peek() {
            match t {
                Tok::Punct('(') => depth += 1,
                Tok::Punct(')') => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        self.pos += 1;
                        return;
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
    }

    /// Skips to the next `,` or `)` at this nesting level, or the end.
    fn skip_to_separator(&mut self) {
        while !self.at_end() && !self.is_punct(',') && !self.is_punct(')') {
            self.skip_one();
        }
    }

    fn text_from(&self, start_tok: usize) -> String {
        let start = self
            .tokens
            .get(start_tok)
            .map_or(self.sql.len(), |t| t.start);
        let end = if self.pos > start_tok {
            self.tokens.get(self.pos - 1).map_or(start, |t| t.end)
        } else {
            start
        };
        self.sql[start..end.max(start)].to_owned()
    }

    fn statement(&mut self) -> Result<Option<Statement>, DdlError> {
        if self.eat_kw("alter") {
            self.eat_kw("online");
            self.eat_kw("ignore");
            if !self.eat_kw("table") {
                return Ok(None);
            }
            self.if_exists();
            let table = self.table_name()?;
            self.wait_option();
            let specs = self.alter_specs();
            return Ok(Some(Statement::AlterTable { table, specs }));
        }
        if self.eat_kw("rename") {
            if !(self.eat_kw("table") || self.eat_kw("tables")) {
                return Ok(None);
            }
            self.if_exists();
            let mut pairs = Vec::new();
            loop {
                let from = self.table_name()?;
                self.wait_option();
                self.expect_kw("to")?;
                let to = self.table_name()?;
                pairs.push((from, to));
                if !self.eat_punct(',') {
                    break;
                }
            }
            return Ok(Some(Statement::RenameTables(pairs)));
        }
        if self.eat_kw("drop") {
            if self.eat_kw("temporary") {
                return Ok(None);
            }
            if self.eat_kw("table") || self.eat_kw("tables") {
                self.if_exists();
                let mut tables = vec![self.table_name()?];
                while self.eat_punct(',') {
                    tables.push(self.table_name()?);
                }
                return Ok(Some(Statement::DropTables(tables)));
            }
            if self.eat_kw("database") || self.eat_kw("schema") {
                self.if_exists();
                return Ok(Some(Statement::DropDatabase(self.ident()?)));
            }
            if self.eat_kw("index") {
                self.if_exists();
                let name = self.ident()?;
                self.expect_kw("on")?;
                let table = self.table_name()?;
                return Ok(Some(Statement::DropIndex { table, name }));
            }
            return Ok(None);
        }
        if self.eat_kw("truncate") {
            self.eat_kw("table");
            return Ok(Some(Statement::Truncate(self.table_name()?)));
        }
        if self.eat_kw("create") {
            let or_replace = self.eat_kws(&["or", "replace"]);
            if self.eat_kw("temporary") {
                return Ok(None);
            }
            if self.eat_kw("table") {
                let if_not_exists = self.if_not_exists();
                let table = self.table_name()?;
                let definition = self.table_definition(&table)?;
                return Ok(Some(Statement::CreateTable {
                    table,
                    if_not_exists,
                    or_replace,
                    definition,
                }));
            }
            self.eat_kw("online");
            self.eat_kw("offline");
            let kind = if self.eat_kw("unique") {
                KeyKind::Unique
            } else {
                let _ = self.eat_kw("fulltext") || self.eat_kw("spatial");
                KeyKind::Plain
            };
            if self.eat_kw("index") {
                self.if_not_exists();
                self.ident()?;
                if self.eat_kw("using") {
                    self.ident()?;
                }
                self.expect_kw("on")?;
                let table = self.table_name()?;
                return Ok(Some(Statement::CreateIndex { table, kind }));
            }
            return Ok(None);
        }
        Ok(None)
    }

    /// After `CREATE TABLE t`: its column list and keys, or `LIKE other`.
    fn table_definition(&mut self, table: &TableName) -> Result<TableDefinition, DdlError> {
        if self.eat_kw("like") {
            return Ok(TableDefinition::Like(self.table_name()?));
        }
        if self.is_punct('(') && self.is_kw_at(1, "like") {
            self.pos += 2;
            return Ok(TableDefinition::Like(self.table_name()?));
        }
        if !self.eat_punct('(') {
            return Ok(TableDefinition::Unknown);
        }
        let mut columns: Vec<ColumnSchema> = Vec::new();
        let mut primary_key = Vec::new();
        let mut unique: Vec<(String, Vec<String>)> = Vec::new();
        loop {
            let mut constraint = None;
            if self.eat_kw("constraint")
                && !["primary", "unique", "foreign", "check"]
                    .iter()
                    .any(|k| self.is_kw(k))
            {
                constraint = Some(self.ident()?);
            }
            if self.eat_kws(&["primary", "key"]) {
                primary_key = self.key_columns()?;
            } else if self.eat_kw("unique") {
                let _ = self.eat_kw("key") || self.eat_kw("index");
                let mut name = constraint;
                if matches!(self.peek(), Some(Tok::Word { .. })) && !self.is_kw("using") {
                    name = Some(self.ident()?);
                }
                let cols = self.key_columns()?;
                let name = name.or_else(|| cols.first().cloned()).unwrap_or_default();
                unique.push((name, cols));
            } else if [
                "key", "index", "fulltext", "spatial", "foreign", "check", "period",
            ]
            .iter()
            .any(|k| self.is_kw(k))
            {
                self.skip_to_separator();
            } else {
                let def = self.column_def()?;
                let name = def.column.name.clone();
                match def.key {
                    Some(KeyKind::Primary) => primary_key = vec![name.clone()],
                    Some(KeyKind::Unique) => unique.push((name.clone(), vec![name])),
                    _ => {}
                }
                columns.push(def.column);
            }
            self.skip_to_separator();
            if self.eat_punct(',') {
                continue;
            }
            if self.eat_punct(')') {
                break;
            }
            return Err(self.error(format!("expected , or ) in the columns of {table}")));
        }
        let (mut charset, mut collation, mut engine) = (None, None, String::new());
        while !self.at_end() && !self.is_kw("partition") && !self.is_kw("select") {
            self.eat_kw("default");
            if self.eat_kws(&["character", "set"]) || self.eat_kw("charset") {
                self.eat_punct('=');
                charset = Some(self.value_text()?.to_ascii_lowercase());
            } else if self.eat_kw("collate") {
                self.eat_punct('=');
                collation = Some(self.value_text()?.to_ascii_lowercase());
            } else if self.eat_kw("engine") {
                self.eat_punct('=');
                engine = self.value_text()?;
            } else {
                self.skip_one();
            }
        }
        // The table's collation implies its character set, as the server reads it.
        let charset = charset.or_else(|| {
            collation
                .as_deref()
                .and_then(|c| c.split('_').next())
                .map(str::to_owned)
        });
        for (i, c) in columns.iter_mut().enumerate() {
            c.ordinal = u32::try_from(i + 1).unwrap_or(u32::MAX);
            if primary_key.iter().any(|k| k.eq_ignore_ascii_case(&c.name)) {
                c.nullable = false;
            }
            let character = matches!(
                c.column_type,
                ColumnType::Char { .. } | ColumnType::VarChar { .. } | ColumnType::Text { .. }
            );
            if character && c.charset.is_none() {
                c.charset.clone_from(&charset);
                if c.collation.is_none() {
                    c.collation.clone_from(&collation);
                }
            }
        }
        let unique_keys = unique
            .into_iter()
            .map(|(name, cols)| UniqueKey {
                not_null: cols.iter().all(|k| {
                    columns
                        .iter()
                        .any(|c| c.name.eq_ignore_ascii_case(k) && !c.nullable)
                }),
                name,
                columns: cols,
            })
            .collect();
        Ok(TableDefinition::Columns(TableSchema {
            database: table.database.clone(),
            table: table.table.clone(),
            columns,
            primary_key,
            unique_keys,
            engine,
        }))
    }

    /// `[USING t] (a, b(10) DESC, …)`: the key's column names.
    fn key_columns(&mut self) -> Result<Vec<String>, DdlError> {
        if self.eat_kw("using") {
            self.ident()?;
        }
        self.expect_punct('(')?;
        let mut cols = Vec::new();
        loop {
            cols.push(self.ident()?);
            self.skip_to_separator();
            if self.eat_punct(',') {
                continue;
            }
            self.expect_punct(')')?;
            return Ok(cols);
        }
    }

    fn alter_specs(&mut self) -> Vec<AlterSpec> {
        let mut specs = Vec::new();
        while !self.at_end() {
            // Partitioning options follow the alterations without a comma.
            if self.is_kw("partition") && self.is_kw_at(1, "by") {
                specs.push(AlterSpec::NoRowEffect);
                break;
            }
            let start = self.pos;
            let spec = match self.alter_spec() {
                Ok(spec) => {
                    // Trailing words this parser does not know (`RESTRICT`, …).
                    self.skip_to_separator();
                    spec
                }
                Err(e) => {
                    self.pos = start;
                    self.skip_to_separator();
                    AlterSpec::Unparsed {
                        text: self.text_from(start),
                        reason: e.message,
                    }
                }
            };
            specs.push(spec);
            if !self.eat_punct(',') {
                if self.is_punct(')') {
                    // A stray `)`: nothing after it can be trusted.
                    let start = self.pos;
                    self.pos = self.tokens.len();
                    specs.push(AlterSpec::Unparsed {
                        text: self.text_from(start),
                        reason: "unbalanced `)`".into(),
                    });
                }
                break;
            }
        }
        specs
    }

    fn position(&mut self) -> Result<Option<ColumnPosition>, DdlError> {
        if self.eat_kw("first") {
            return Ok(Some(ColumnPosition::First));
        }
        if self.eat_kw("after") {
            return Ok(Some(ColumnPosition::After(self.ident()?)));
        }
        Ok(None)
    }

    fn alter_spec(&mut self) -> Result<AlterSpec, DdlError> {
        if self.eat_kw("add") {
            return self.add_spec();
        }
        if self.eat_kw("drop") {
            return self.drop_spec();
        }
        if self.eat_kw("modify") {
            self.eat_kw("column");
            let if_exists = self.if_exists();
            let column = self.column_def()?;
            let position = self.position()?;
            return Ok(AlterSpec::ChangeColumn {
                old: column.column.name.clone(),
                column: Box::new(column),
                position,
                if_exists,
            });
        }
        if self.eat_kw("change") {
            self.eat_kw("column");
            let if_exists = self.if_exists();
            let old = self.ident()?;
            let column = Box::new(self.column_def()?);
            let position = self.position()?;
            return Ok(AlterSpec::ChangeColumn {
                old,
                column,
                position,
                if_exists,
            });
        }
        if self.eat_kw("rename") {
            if self.eat_kw("column") {
                let from = self.ident()?;
                self.expect_kw("to")?;
                let to = self.ident()?;
                return Ok(AlterSpec::RenameColumn { from, to });
            }
            if self.eat_kw("index") || self.eat_kw("key") {
                return Ok(AlterSpec::NoRowEffect);
            }
            let _ = self.eat_kw("to") || self.eat_kw("as") || self.eat_punct('=');
            return Ok(AlterSpec::RenameTable(self.table_name()?));
        }
        if self.eat_kw("convert") {
            self.expect_kw("to")?;
            if !(self.eat_kws(&["character", "set"]) || self.eat_kw("charset")) {
                return Err(self.error("expected CHARACTER SET"));
            }
            let charset = self.value_text()?.to_ascii_lowercase();
            return Ok(AlterSpec::ConvertCharset(charset));
        }
        for what in ["truncate", "exchange", "discard", "import"] {
            if self.is_kw(what) {
                let start = self.pos;
                self.pos += 1;
                if self.is_kw("partition") || self.is_kw("tablespace") {
                    self.skip_to_separator();
                    return Ok(AlterSpec::RowsRemoved(self.text_from(start)));
                }
                self.pos = start;
            }
        }
        // ALTER [COLUMN] c SET|DROP DEFAULT, ALTER INDEX …, table options,
        // ALGORITHM=, LOCK=, FORCE, ORDER BY, ENABLE KEYS, COALESCE/REORGANIZE/
        // ANALYZE/… PARTITION, REMOVE PARTITIONING: the rows stay as they are.
        if NO_ROW_EFFECT.iter().any(|w| self.is_kw(w)) {
            self.skip_to_separator();
            return Ok(AlterSpec::NoRowEffect);
        }
        Err(self.error("unknown alteration"))
    }

    fn add_spec(&mut self) -> Result<AlterSpec, DdlError> {
        if self.eat_kw("constraint") {
            let name = if self.is_kw("primary")
                || self.is_kw("unique")
                || self.is_kw("foreign")
                || self.is_kw("check")
            {
                None
            } else {
                self.if_not_exists();
                Some(self.ident()?)
            };
            return self.add_key(name);
        }
        if self.is_kw("primary")
            || self.is_kw("unique")
            || self.is_kw("foreign")
            || self.is_kw("check")
            || self.is_kw("index")
            || self.is_kw("key")
            || self.is_kw("fulltext")
            || self.is_kw("spatial")
        {
            return self.add_key(None);
        }
        if self.is_kw("partition") || self.is_kw("period") {
            self.skip_to_separator();
            return Ok(AlterSpec::NoRowEffect);
        }
        if self.eat_kws(&["system", "versioning"]) {
            return Ok(AlterSpec::SystemVersioning);
        }
        self.eat_kw("column");
        let if_not_exists = self.if_not_exists();
        if self.eat_punct('(') {
            let mut columns = vec![self.column_def()?];
            while self.eat_punct(',') {
                columns.push(self.column_def()?);
            }
            self.expect_punct(')')?;
            return Ok(AlterSpec::AddColumns {
                columns,
                position: None,
                if_not_exists,
            });
        }
        let column = self.column_def()?;
        let position = self.position()?;
        Ok(AlterSpec::AddColumns {
            columns: vec![column],
            position,
            if_not_exists,
        })
    }

    /// After `ADD [CONSTRAINT [n]]`: the key's kind; the rest is skipped.
    fn add_key(&mut self, mut name: Option<String>) -> Result<AlterSpec, DdlError> {
        let kind = if self.eat_kw("primary") {
            self.expect_kw("key")?;
            KeyKind::Primary
        } else if self.eat_kw("unique") {
            let _ = self.eat_kw("index") || self.eat_kw("key");
            KeyKind::Unique
        } else if self.eat_kw("foreign") {
            KeyKind::Foreign
        } else if self.eat_kw("check") {
            KeyKind::Check
        } else {
            let _ = self.eat_kw("fulltext") || self.eat_kw("spatial");
            let _ = self.eat_kw("index") || self.eat_kw("key");
            KeyKind::Plain
        };
        if kind == KeyKind::Unique || kind == KeyKind::Plain {
            self.if_not_exists();
            if name.is_none()
                && matches!(self.peek(), Some(Tok::Word { .. }))
                && !self.is_kw("using")
            {
                name = Some(self.ident()?);
            }
        }
        self.skip_to_separator();
        Ok(AlterSpec::AddKey { kind, name })
    }

    fn drop_spec(&mut self) -> Result<AlterSpec, DdlError> {
        if self.eat_kws(&["primary", "key"]) {
            return Ok(AlterSpec::DropPrimaryKey);
        }
        if self.eat_kw("index") || self.eat_kw("key") || self.eat_kw("constraint") {
            self.if_exists();
            return Ok(AlterSpec::DropKey(self.ident()?));
        }
        if self.eat_kw("foreign") || self.eat_kw("check") || self.eat_kw("period") {
            self.skip_to_separator();
            return Ok(AlterSpec::NoRowEffect);
        }
        if self.is_kw("partition") {
            let start = self.pos;
            self.skip_to_separator();
            return Ok(AlterSpec::RowsRemoved(format!(
                "DROP {}",
                self.text_from(start)
            )));
        }
        if self.eat_kws(&["system", "versioning"]) {
            return Ok(AlterSpec::SystemVersioning);
        }
        self.eat_kw("column");
        let if_exists = self.if_exists();
        let name = self.ident()?;
        Ok(AlterSpec::DropColumn { name, if_exists })
    }

    /// `name type [attributes]`.
    fn column_def(&mut self) -> Result<ColumnDef, DdlError> {
        let name = self.ident()?;
        let mut t = self.data_type()?;
        let mut key = t.key;
        let mut literal_default = None;
        let mut col = ColumnSchema {
            name,
            ordinal: 0,
            column_type: t.column_type.clone(),
            column_type_text: String::new(),
            unsigned: t.unsigned,
            nullable: !t.not_null,
            charset: None,
            collation: None,
            default: None,
            auto_increment: t.auto_increment,
            generated: None,
            invisible: false,
            comment: String::new(),
        };
        loop {
            if self.at_end()
                || self.is_punct(',')
                || self.is_punct(')')
                || self.is_kw("first")
                || self.is_kw("after")
            {
                break;
            }
            if self.eat_kws(&["not", "null"]) {
                col.nullable = false;
            } else if self.eat_kw("null") {
                col.nullable = true;
            } else if self.eat_kw("default") {
                let start = self.pos;
                col.default = if self.eat_kw("null") {
                    None
                } else {
                    Some(self.expression()?)
                };
                // One string or number token (after a sign): a literal.
                let sign = matches!(self.tokens[start].tok, Tok::Punct('-' | '+'));
                let literal = self.pos == start + 1 + usize::from(sign)
                    && matches!(self.tokens[self.pos - 1].tok, Tok::Str(_) | Tok::Num(_))
                    && !(sign && matches!(self.tokens[self.pos - 1].tok, Tok::Str(_)));
                literal_default = if literal {
                    match &self.tokens[self.pos - 1].tok {
                        Tok::Str(v) => Some(v.clone()),
                        _ => col
                            .default
                            .as_deref()
                            .map(|d| d.chars().filter(|c| !c.is_whitespace()).collect::<String>())
                            .filter(|d| d.parse::<f64>().is_ok()),
                    }
                } else {
                    None
                };
            } else if self.eat_kws(&["on", "update"]) {
                self.expression()?;
            } else if self.eat_kw("auto_increment") {
                col.auto_increment = true;
            } else if self.eat_kw("unique") {
                self.eat_kw("key");
                key = Some(KeyKind::Unique);
            } else if self.eat_kws(&["primary", "key"]) || self.eat_kw("key") {
                key = Some(KeyKind::Primary);
            } else if self.eat_kw("comment") {
                col.comment = self.value_text()?;
            } else if self.charset_clause(&mut t)? {
            } else if self.eat_kws(&["generated", "always"]) || self.is_kw("as") {
                self.expect_kw("as")?;
                let start = self.pos;
                if !self.is_punct('(') {
                    return Err(self.error("expected ( after AS"));
                }
                self.skip_group();
                let expression = self.text_from(start);
                let stored = self.eat_kw("stored") || self.eat_kw("persistent");
                self.eat_kw("virtual");
                col.generated = Some(Generated { expression, stored });
            } else if self.eat_kw("invisible") {
                col.invisible = true;
            } else if self.eat_kw("visible") {
            } else if self.eat_kw("references") {
                // The rest of the definition is the reference's.
                self.skip_to_separator();
            } else if self.eat_kw("constraint") {
                if !self.is_kw("check") {
                    self.ident()?;
                }
            } else if self.eat_kw("check") {
                self.skip_group();
            } else if self.is_kw("column_format")
                || self.is_kw("storage")
                || self.is_kw("srid")
                || self.is_kw("compressed")
                || self.is_kw("engine_attribute")
                || self.is_kw("secondary_engine_attribute")
            {
                self.pos += 1;
                self.eat_punct('=');
                if !self.at_end() && !self.is_punct(',') && !self.is_punct(')') {
                    self.skip_one();
                }
            } else if self.eat_kws(&["with", "system", "versioning"])
                || self.eat_kws(&["without", "system", "versioning"])
            {
            } else if self.eat_kws(&["serial", "default", "value"]) {
                col.auto_increment = true;
                col.nullable = false;
                key = Some(KeyKind::Unique);
            } else {
                return Err(self.error(format!(
                    "unknown attribute in the definition of column `{}`",
                    col.name
                )));
            }
        }
        col.charset = t.charset.clone();
        col.collation = t.collation.clone();
        col.column_type_text = t.text.clone();
        if col.auto_increment && key.is_none() && t.serial {
            key = Some(KeyKind::Unique);
        }
        Ok(ColumnDef {
            column: col,
            key,
            literal_default,
        })
    }

    /// `CHARACTER SET x`, `CHARSET x`, `COLLATE x`: true when one was read.
    fn charset_clause(&mut self, t: &mut DataType) -> Result<bool, DdlError> {
        if self.eat_kws(&["character", "set"])
            || self.eat_kws(&["char", "set"])
            || self.eat_kw("charset")
        {
            let cs = self.value_text()?.to_ascii_lowercase();
            t.set_charset(cs);
            return Ok(true);
        }
        if self.eat_kw("collate") {
            let coll = self.value_text()?.to_ascii_lowercase();
            if t.charset.is_none() {
                let cs = if coll == "binary" {
                    "binary".to_owned()
                } else {
                    coll.split('_').next().unwrap_or_default().to_owned()
                };
                t.set_charset(cs);
            }
            t.collation = Some(coll);
            return Ok(true);
        }
        Ok(false)
    }

    /// A DEFAULT / ON UPDATE value: its text as written.
    fn expression(&mut self) -> Result<String, DdlError> {
        let start = self.pos;
        match self.peek() {
            Some(Tok::Punct('(')) => self.skip_group(),
            Some(Tok::Punct('-' | '+')) => {
                self.pos += 1;
                self.skip_one();
            }
            Some(Tok::Str(_) | Tok::Num(_)) => self.pos += 1,
            Some(Tok::Word { .. }) => {
                self.pos += 1;
                // A function call, or a string after an introducer
                // (`_utf8mb4'x'`, `x'00'`, `b'1'`).
                if self.is_punct('(') {
                    self.skip_group();
                } else if matches!(self.peek(), Some(Tok::Str(_))) {
                    self.pos += 1;
                }
            }
            _ => return Err(self.error("expected a default value")),
        }
        Ok(match &self.tokens[start].tok {
            Tok::Str(s) if self.pos == start + 1 => s.clone(),
            _ => self.text_from(start),
        })
    }

    /// Numbers in `( … )`: precision and scale, lengths, fsp.
    fn number_args(&mut self) -> Result<Vec<u64>, DdlError> {
        let mut out = Vec::new();
        if !self.eat_punct('(') {
            return Ok(out);
        }
        loop {
            match self.peek() {
                Some(Tok::Num(n)) => {
                    let v = n
                        .parse::<u64>()
                        .map_err(|_| self.error(format!("`{n}` is not a length")))?;
                    out.push(v);
                    self.pos += 1;
                }
                _ => return Err(self.error("expected a number")),
            }
            if self.eat_punct(')') {
                return Ok(out);
            }
            self.expect_punct(',')?;
        }
    }

    /// `('a', 'b', …)` of ENUM and SET.
    fn members(&mut self) -> Result<Vec<String>, DdlError> {
        self.expect_punct('(')?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                Some(Tok::Str(s)) => {
                    out.push(s.clone());
                    self.pos += 1;
                }
                _ => return Err(self.error("expected a quoted member")),
            }
            if self.eat_punct(')') {
                return Ok(out);
            }
            self.expect_punct(',')?;
        }
    }

    fn data_type(&mut self) -> Result<DataType, DdlError> {
        let word = match self.peek() {
            Some(Tok::Word {
                text,
                quoted: false,
            }) => text.to_ascii_lowercase(),
            _ => return Err(self.error("expected a column type")),
        };
        self.pos += 1;
        let mut t = DataType::default();
        let int = |ct: ColumnType, name: &str, t: &mut DataType| {
            t.column_type = ct;
            t.text = name.to_owned();
        };
        match word.as_str() {
            "tinyint" | "int1" => int(ColumnType::TinyInt, "tinyint", &mut t),
            "bool" | "boolean" => int(ColumnType::TinyInt, "tinyint(1)", &mut t),
            "smallint" | "int2" => int(ColumnType::SmallInt, "smallint", &mut t),
            "mediumint" | "int3" | "middleint" => int(ColumnType::MediumInt, "mediumint", &mut t),
            "int" | "integer" | "int4" => int(ColumnType::Int, "int", &mut t),
            "bigint" | "int8" => int(ColumnType::BigInt, "bigint", &mut t),
            "serial" => {
                int(ColumnType::BigInt, "bigint", &mut t);
                t.unsigned = true;
                t.not_null = true;
                t.auto_increment = true;
                t.serial = true;
                t.key = Some(KeyKind::Unique);
            }
            "decimal" | "dec" | "numeric" | "fixed" => {
                let args = self.number_args()?;
                let precision = args.first().copied().unwrap_or(10).min(65) as u8;
                let scale = args.get(1).copied().unwrap_or(0).min(38) as u8;
                t.column_type = ColumnType::Decimal { precision, scale };
                t.text = format!("decimal({precision},{scale})");
            }
            "float" | "float4" => {
                let args = self.number_args()?;
                if args.len() == 1 && args[0] > 24 {
                    t.column_type = ColumnType::Double;
                    t.text = "double".into();
                } else {
                    t.column_type = ColumnType::Float;
                    t.text = "float".into();
                }
            }
            "double" | "real" | "float8" => {
                self.eat_kw("precision");
                self.number_args()?;
                t.column_type = ColumnType::Double;
                t.text = "double".into();
            }
            "bit" => {
                let width = self
                    .number_args()?
                    .first()
                    .copied()
                    .unwrap_or(1)
                    .clamp(1, 64) as u8;
                t.column_type = ColumnType::Bit { width };
                t.text = format!("bit({width})");
            }
            "year" => {
                self.number_args()?;
                t.column_type = ColumnType::Year;
                t.text = "year(4)".into();
            }
            "date" => {
                t.column_type = ColumnType::Date;
                t.text = "date".into();
            }
            "time" | "datetime" | "timestamp" => {
                let fsp = self.number_args()?.first().copied().unwrap_or(0).min(6) as u8;
                t.column_type = match word.as_str() {
                    "time" => ColumnType::Time { fsp },
                    "datetime" => ColumnType::DateTime { fsp },
                    _ => ColumnType::Timestamp { fsp },
                };
                t.text = if fsp > 0 {
                    format!("{word}({fsp})")
                } else {
                    word.clone()
                };
            }
            "char" | "character" | "nchar" | "national" | "varchar" | "nvarchar"
            | "varcharacter" => {
                let national = matches!(word.as_str(), "nchar" | "nvarchar" | "national");
                let mut varying = matches!(word.as_str(), "varchar" | "nvarchar" | "varcharacter");
                if word == "national" {
                    if self.eat_kw("varchar") {
                        varying = true;
                    } else if !(self.eat_kw("char") || self.eat_kw("character")) {
                        return Err(self.error("expected CHAR or VARCHAR after NATIONAL"));
                    }
                }
                varying |= self.eat_kw("varying");
                let len = self.number_args()?.first().copied();
                let len = len
                    .unwrap_or(if varying { 0 } else { 1 })
                    .min(u64::from(u32::MAX)) as u32;
                t.column_type = if varying {
                    ColumnType::VarChar { len }
                } else {
                    ColumnType::Char { len }
                };
                t.text = format!("{}({len})", if varying { "varchar" } else { "char" });
                if national {
                    t.charset = Some("utf8mb3".into());
                }
                self.char_modifiers(&mut t)?;
            }
            "binary" | "varbinary" => {
                let len = self.number_args()?.first().copied();
                let varying = word == "varbinary";
                let len = len
                    .unwrap_or(if varying { 0 } else { 1 })
                    .min(u64::from(u32::MAX)) as u32;
                t.column_type = if varying {
                    ColumnType::VarBinary { len }
                } else {
                    ColumnType::Binary { len }
                };
                t.text = format!("{word}({len})");
            }
            "tinytext" | "text" | "mediumtext" | "longtext" | "long" => {
                let mut name = word.clone();
                if word == "long" {
                    if self.eat_kw("varbinary") {
                        t.column_type = ColumnType::Blob {
                            max_bytes: 16_777_215,
                        };
                        t.text = "mediumblob".into();
                        return Ok(t);
                    }
                    self.eat_kw("varchar");
                    name = "mediumtext".into();
                }
                let args = self.number_args()?;
                if word == "text" {
                    // TEXT(n) picks the smallest type holding n characters.
                    if let Some(&n) = args.first() {
                        name = text_for(n.saturating_mul(4)).to_owned();
                    }
                }
                t.column_type = ColumnType::Text {
                    max_bytes: max_bytes(&name),
                };
                t.text = name;
                self.char_modifiers(&mut t)?;
            }
            "tinyblob" | "blob" | "mediumblob" | "longblob" => {
                let args = self.number_args()?;
                let mut name = word.clone();
                if word == "blob"
                    && let Some(&n) = args.first()
                {
                    name = text_for(n).replace("text", "blob");
                }
                t.column_type = ColumnType::Blob {
                    max_bytes: max_bytes(&name),
                };
                t.text = name;
            }
            "enum" | "set" => {
                let members = self.members()?;
                t.text = format!(
                    "{word}({})",
                    members
                        .iter()
                        .map(|m| format!("'{}'", m.replace('\'', "''")))
                        .collect::<Vec<_>>()
                        .join(",")
                );
                t.column_type = if word == "enum" {
                    ColumnType::Enum(members)
                } else {
                    ColumnType::Set(members)
                };
                self.char_modifiers(&mut t)?;
            }
            "json" => {
                t.column_type = ColumnType::Json;
                t.text = "json".into();
            }
            "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
            | "multipolygon" | "geometrycollection" | "geomcollection" => {
                t.column_type = ColumnType::Geometry(word.clone());
                t.text = word.clone();
            }
            "inet4" | "inet6" | "uuid" | "vector" | "xmltype" => {
                self.number_args()?;
                t.column_type = ColumnType::Other(word.clone());
                t.text = word.clone();
            }
            other => return Err(self.error(format!("unknown column type `{other}`"))),
        }
        if t.column_type.is_integer() {
            // A display width: no effect on the values.
            self.number_args()?;
        }
        loop {
            if self.eat_kw("unsigned") || self.eat_kw("zerofill") {
                t.unsigned = true;
            } else if !self.eat_kw("signed") {
                break;
            }
        }
        if t.unsigned
            && matches!(
                t.column_type,
                ColumnType::TinyInt
                    | ColumnType::SmallInt
                    | ColumnType::MediumInt
                    | ColumnType::Int
                    | ColumnType::BigInt
                    | ColumnType::Decimal { .. }
                    | ColumnType::Float
                    | ColumnType::Double
            )
        {
            t.text.push_str(" unsigned");
        }
        Ok(t)
    }

    /// `BINARY`, `ASCII`, `UNICODE`, `BYTE`, `CHARACTER SET`, `COLLATE` after a character type.
    fn char_modifiers(&mut self, t: &mut DataType) -> Result<(), DdlError> {
        loop {
            if self.eat_kw("binary") {
                // A binary collation of the character set: still text.
                continue;
            }
            if self.eat_kw("ascii") {
                t.set_charset("latin1".into());
                continue;
            }
            if self.eat_kw("unicode") {
                t.set_charset("ucs2".into());
                continue;
            }
            if self.eat_kw("byte") {
                t.set_charset("binary".into());
                continue;
            }
            if !self.charset_clause(t)? {
                return Ok(());
            }
        }
    }
}

/// Words that start an alteration leaving the rows as they are: `ALTER
/// [COLUMN] c SET|DROP DEFAULT`, `ALTER INDEX`, table options, `ALGORITHM=`,
/// `LOCK=`, `FORCE`, `ORDER BY`, `ENABLE KEYS`, partition maintenance
/// (`COALESCE`, `REORGANIZE`, `ANALYZE`, …), `REMOVE PARTITIONING`.
const NO_ROW_EFFECT: &[&str] = &[
    "alter",
    "algorithm",
    "lock",
    "force",
    "order",
    "enable",
    "disable",
    "engine",
    "auto_increment",
    "comment",
    "default",
    "character",
    "charset",
    "collate",
    "row_format",
    "key_block_size",
    "stats_persistent",
    "stats_auto_recalc",
    "stats_sample_pages",
    "pack_keys",
    "checksum",
    "page_checksum",
    "page_compressed",
    "page_compression_level",
    "encrypted",
    "encryption_key_id",
    "transactional",
    "min_rows",
    "max_rows",
    "avg_row_length",
    "delay_key_write",
    "insert_method",
    "data",
    "index",
    "tablespace",
    "storage",
    "union",
    "with",
    "without",
    "coalesce",
    "reorganize",
    "analyze",
    "check",
    "optimize",
    "rebuild",
    "repair",
    "remove",
    "secondary_engine",
    "secondary_engine_attribute",
    "engine_attribute",
    "autoextend_size",
    "compression",
    "connection",
    "password",
    "start",
];

/// What [`Parser::data_type`] read.
#[derive(Clone, Debug)]
struct DataType {
    column_type: ColumnType,
    text: String,
    unsigned: bool,
    charset: Option<String>,
    collation: Option<String>,
    not_null: bool,
    auto_increment: bool,
    serial: bool,
    key: Option<KeyKind>,
}

impl Default for DataType {
    fn default() -> Self {
        Self {
            column_type: ColumnType::Int,
            text: String::new(),
            unsigned: false,
            charset: None,
            collation: None,
            not_null: false,
            auto_increment: false,
            serial: false,
            key: None,
        }
    }
}

impl DataType {
    /// A character set given to a character type; `binary` turns CHAR,
    /// VARCHAR and TEXT into BINARY, VARBINARY and BLOB, as the server does.
    fn set_charset(&mut self, cs: String) {
        if cs == "binary" {
            let (ct, text) = match &self.column_type {
                ColumnType::Char { len } => {
                    (ColumnType::Binary { len: *len }, format!("binary({len})"))
                }
                ColumnType::VarChar { len } => (
                    ColumnType::VarBinary { len: *len },
                    format!("varbinary({len})"),
                ),
                ColumnType::Text { max_bytes } => (
                    ColumnType::Blob {
                        max_bytes: *max_bytes,
                    },
                    self.text.replace("text", "blob"),
                ),
                _ => {
                    self.charset = Some(cs);
                    return;
                }
            };
            self.column_type = ct;
            self.text = text;
            self.charset = None;
            return;
        }
        self.charset = Some(cs);
    }
}

/// The smallest TEXT type holding `bytes`.
fn text_for(bytes: u64) -> &'static str {
    match bytes {
        0..=255 => "tinytext",
        256..=65_535 => "text",
        65_536..=16_777_215 => "mediumtext",
        _ => "longtext",
    }
}

fn max_bytes(name: &str) -> u64 {
    match name {
        "tinytext" | "tinyblob" => 255,
        "text" | "blob" => 65_535,
        "mediumtext" | "mediumblob" => 16_777_215,
        _ => 4_294_967_295,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alter(sql: &str) -> (TableName, Vec<AlterSpec>) {
        match parse(sql, "shop", ParseOptions::default()).expect("parses") {
            Some(Statement::AlterTable { table, specs }) => (table, specs),
            other => panic!("{sql}: {other:?}"),
        }
    }

    fn added(spec: &AlterSpec) -> (Vec<&ColumnSchema>, Option<&ColumnPosition>) {
        match spec {
            AlterSpec::AddColumns {
                columns, position, ..
            } => (
                columns.iter().map(|c| &c.column).collect(),
                position.as_ref(),
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn add_column_forms_positions_defaults_and_types() {
        let (t, specs) = alter(
            "ALTER TABLE `orders` ADD COLUMN a INT, ADD COLUMN b VARCHAR(10) DEFAULT 'x' AFTER id, \
             ADD c DECIMAL(12,3) UNSIGNED NOT NULL FIRST",
        );
        assert_eq!(t.to_string(), "shop.orders");
        assert_eq!(specs.len(), 3);
        let (a, pos) = added(&specs[0]);
        assert_eq!(
            (a[0].name.as_str(), &a[0].column_type, pos),
            ("a", &ColumnType::Int, None)
        );
        assert!(a[0].nullable && a[0].default.is_none());
        let (b, pos) = added(&specs[1]);
        assert_eq!(b[0].column_type, ColumnType::VarChar { len: 10 });
        assert_eq!(b[0].default.as_deref(), Some("x"));
        assert_eq!(b[0].charset, None, "the table's default applies");
        assert_eq!(pos, Some(&ColumnPosition::After("id".into())));
        let (c, pos) = added(&specs[2]);
        assert_eq!(
            (
                &c[0].column_type,
                c[0].unsigned,
                c[0].nullable,
                c[0].column_type_text.as_str()
            ),
            (
                &ColumnType::Decimal {
                    precision: 12,
                    scale: 3
                },
                true,
                false,
                "decimal(12,3) unsigned"
            )
        );
        assert_eq!(pos, Some(&ColumnPosition::First));

        let (_, specs) = alter(
            "alter table shop.t add (x int, y datetime(3) null, z enum('a','b''c') default 'a')",
        );
        let (cols, pos) = added(&specs[0]);
        assert_eq!(pos, None);
        assert_eq!(cols.len(), 3);
        assert_eq!(cols[1].column_type, ColumnType::DateTime { fsp: 3 });
        assert_eq!(cols[1].column_type_text, "datetime(3)");
        assert_eq!(
            cols[2].column_type,
            ColumnType::Enum(vec!["a".into(), "b'c".into()])
        );
        assert_eq!(cols[2].column_type_text, "enum('a','b''c')");
    }

    #[test]
    fn names_comments_quotes_and_mariadb_options() {
        let (t, specs) = alter(
            "/* tool */ ALTER ONLINE IGNORE TABLE IF EXISTS `my db`.`we``ird` WAIT 5 \
             -- a comment\n ADD COLUMN IF NOT EXISTS `select` BIGINT(20) UNSIGNED ZEROFILL COMMENT 'c' # x\n",
        );
        assert_eq!((t.database.as_str(), t.table.as_str()), ("my db", "we`ird"));
        let AlterSpec::AddColumns {
            columns,
            if_not_exists,
            ..
        } = &specs[0]
        else {
            panic!("{specs:?}")
        };
        assert!(*if_not_exists);
        assert_eq!(columns[0].column.name, "select");
        assert_eq!(columns[0].column.comment, "c");
        assert_eq!(columns[0].column.column_type_text, "bigint unsigned");
        // Executable comments are code; ANSI_QUOTES makes "x" a name.
        let sql = "ALTER TABLE \"t\" /*!50100 ADD COLUMN n TEXT CHARACTER SET latin1 */";
        let opts = ParseOptions::from_sql_mode(1 << 2);
        let Some(Statement::AlterTable { table, specs }) = parse(sql, "d", opts).expect("parse")
        else {
            panic!()
        };
        assert_eq!(table.table, "t");
        let (cols, _) = added(&specs[0]);
        assert_eq!(
            (&cols[0].column_type, cols[0].charset.as_deref()),
            (&ColumnType::Text { max_bytes: 65_535 }, Some("latin1"))
        );
        let err = parse("ALTER TABLE t ADD x INT", "", ParseOptions::default()).expect_err("no db");
        assert!(err.message.contains("not qualified"), "{err}");
    }

    #[test]
    fn every_other_alteration_is_classified() {
        let (_, specs) = alter(
            "ALTER TABLE t DROP COLUMN a, DROP b, MODIFY c BIGINT, CHANGE d e VARCHAR(3) CHARSET binary AFTER c, \
             RENAME COLUMN f TO g, RENAME TO t2, ADD PRIMARY KEY (id), ADD UNIQUE KEY uk (x), ADD INDEX (y), \
             DROP PRIMARY KEY, DROP INDEX uk, ALTER COLUMN h SET DEFAULT 3, ALGORITHM=INPLACE, LOCK=NONE, \
             CONVERT TO CHARACTER SET utf8mb4, TRUNCATE PARTITION p1, ENGINE=InnoDB, ADD FOREIGN KEY (z) REFERENCES o(id), \
             ADD CONSTRAINT pk PRIMARY KEY (id)",
        );
        assert_eq!(
            specs[0],
            AlterSpec::DropColumn {
                name: "a".into(),
                if_exists: false
            }
        );
        assert_eq!(
            specs[1],
            AlterSpec::DropColumn {
                name: "b".into(),
                if_exists: false
            }
        );
        let AlterSpec::ChangeColumn { old, column, .. } = &specs[2] else {
            panic!()
        };
        assert_eq!(
            (old.as_str(), &column.column.column_type),
            ("c", &ColumnType::BigInt)
        );
        let AlterSpec::ChangeColumn {
            old,
            column,
            position,
            ..
        } = &specs[3]
        else {
            panic!()
        };
        assert_eq!((old.as_str(), column.column.name.as_str()), ("d", "e"));
        assert_eq!(
            column.column.column_type,
            ColumnType::VarBinary { len: 3 },
            "CHARSET binary"
        );
        assert_eq!(position, &Some(ColumnPosition::After("c".into())));
        assert_eq!(
            specs[4],
            AlterSpec::RenameColumn {
                from: "f".into(),
                to: "g".into()
            }
        );
        assert_eq!(
            specs[5],
            AlterSpec::RenameTable(TableName {
                database: "shop".into(),
                table: "t2".into()
            })
        );
        assert_eq!(
            specs[6],
            AlterSpec::AddKey {
                kind: KeyKind::Primary,
                name: None
            }
        );
        assert_eq!(
            specs[7],
            AlterSpec::AddKey {
                kind: KeyKind::Unique,
                name: Some("uk".into())
            }
        );
        assert_eq!(
            specs[8],
            AlterSpec::AddKey {
                kind: KeyKind::Plain,
                name: None
            }
        );
        assert_eq!(specs[9], AlterSpec::DropPrimaryKey);
        assert_eq!(specs[10], AlterSpec::DropKey("uk".into()));
        assert_eq!(
            specs[11..14],
            [
                AlterSpec::NoRowEffect,
                AlterSpec::NoRowEffect,
                AlterSpec::NoRowEffect
            ]
        );
        assert_eq!(specs[14], AlterSpec::ConvertCharset("utf8mb4".into()));
        assert!(matches!(&specs[15], AlterSpec::RowsRemoved(w) if w.contains("PARTITION")));
        assert_eq!(specs[16], AlterSpec::NoRowEffect);
        assert_eq!(
            specs[17],
            AlterSpec::AddKey {
                kind: KeyKind::Foreign,
                name: None
            }
        );
        assert_eq!(
            specs[18],
            AlterSpec::AddKey {
                kind: KeyKind::Primary,
                name: Some("pk".into())
            }
        );
        assert_eq!(specs.len(), 19);
    }

    #[test]
    fn what_cannot_be_read_is_unparsed_never_guessed() {
        let (_, specs) =
            alter("ALTER TABLE t ADD COLUMN a FANCYTYPE, ADD COLUMN b INT, FROBNICATE x");
        assert!(
            matches!(&specs[0], AlterSpec::Unparsed { text, reason } if text == "ADD COLUMN a FANCYTYPE" && reason.contains("fancytype")),
            "{specs:?}"
        );
        assert!(matches!(&specs[1], AlterSpec::AddColumns { .. }));
        assert!(matches!(&specs[2], AlterSpec::Unparsed { .. }));
        let (_, specs) = alter("ALTER TABLE t ADD COLUMN a INT WEIRDATTR");
        assert!(matches!(&specs[0], AlterSpec::Unparsed { .. }), "{specs:?}");
    }

    #[test]
    fn column_attributes_and_type_aliases() {
        let (_, specs) = alter(
            "ALTER TABLE t ADD a SERIAL, ADD b BOOL DEFAULT TRUE, ADD c TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6), \
             ADD d INT AS (a + 1) VIRTUAL, ADD e CHAR(4) COLLATE utf8mb4_bin, ADD f DOUBLE PRECISION DEFAULT -1.5e3, \
             ADD g NATIONAL VARCHAR(5), ADD h BINARY, ADD i VARCHAR(8) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci INVISIBLE, \
             ADD j BIT(7) DEFAULT b'101', ADD k JSON, ADD l FLOAT(30), ADD m TEXT(1000), ADD n INT PRIMARY KEY, \
             ADD o INT UNIQUE, ADD p MEDIUMBLOB, ADD q YEAR, ADD r TIME(2), ADD s SET('x','y') DEFAULT 'x,y', \
             ADD u INT REFERENCES x (id) ON DELETE CASCADE",
        );
        let cols: Vec<&ColumnDef> = specs
            .iter()
            .map(|s| match s {
                AlterSpec::AddColumns { columns, .. } => &columns[0],
                other => panic!("{other:?}"),
            })
            .collect();
        let a = &cols[0].column;
        assert_eq!(
            (&a.column_type, a.unsigned, a.nullable, a.auto_increment),
            (&ColumnType::BigInt, true, false, true)
        );
        assert_eq!(cols[0].key, Some(KeyKind::Unique));
        assert_eq!(
            (
                cols[1].column.column_type_text.as_str(),
                cols[1].column.default.as_deref()
            ),
            ("tinyint(1)", Some("TRUE"))
        );
        assert_eq!(cols[2].column.column_type, ColumnType::Timestamp { fsp: 6 });
        assert_eq!(
            cols[2].column.default.as_deref(),
            Some("CURRENT_TIMESTAMP(6)")
        );
        assert!(!cols[2].column.nullable);
        assert_eq!(
            cols[3]
                .column
                .generated
                .as_ref()
                .map(|g| (g.expression.as_str(), g.stored)),
            Some(("(a + 1)", false))
        );
        assert_eq!(
            (
                cols[4].column.charset.as_deref(),
                cols[4].column.collation.as_deref()
            ),
            (Some("utf8mb4"), Some("utf8mb4_bin"))
        );
        assert_eq!(
            (
                &cols[5].column.column_type,
                cols[5].column.default.as_deref()
            ),
            (&ColumnType::Double, Some("-1.5e3"))
        );
        assert_eq!(
            (
                &cols[6].column.column_type,
                cols[6].column.charset.as_deref()
            ),
            (&ColumnType::VarChar { len: 5 }, Some("utf8mb3"))
        );
        assert_eq!(cols[7].column.column_type, ColumnType::Binary { len: 1 });
        assert!(cols[8].column.invisible);
        assert_eq!(
            cols[8].column.collation.as_deref(),
            Some("utf8mb4_unicode_ci")
        );
        assert_eq!(
            (
                &cols[9].column.column_type,
                cols[9].column.default.as_deref()
            ),
            (&ColumnType::Bit { width: 7 }, Some("b'101'"))
        );
        assert_eq!(cols[10].column.column_type, ColumnType::Json);
        assert_eq!(
            cols[11].column.column_type,
            ColumnType::Double,
            "FLOAT(p > 24)"
        );
        assert_eq!(
            cols[12].column.column_type_text, "text",
            "TEXT(1000) holds 4000 bytes"
        );
        assert_eq!(cols[13].key, Some(KeyKind::Primary));
        assert_eq!(cols[14].key, Some(KeyKind::Unique));
        assert_eq!(
            cols[15].column.column_type,
            ColumnType::Blob {
                max_bytes: 16_777_215
            }
        );
        assert_eq!(cols[16].column.column_type, ColumnType::Year);
        assert_eq!(cols[17].column.column_type_text, "time(2)");
        assert_eq!(cols[18].column.default.as_deref(), Some("x,y"));
        assert_eq!(cols[19].column.column_type, ColumnType::Int);
    }

    #[test]
    fn create_table_reads_columns_keys_and_the_table_character_set() {
        let p = |sql: &str| parse(sql, "shop", ParseOptions::default()).expect(sql);
        let sql = "CREATE TABLE `shop`.`fresh` (\n\
                   `id` bigint(20) unsigned NOT NULL AUTO_INCREMENT,\n\
                   code char(3) COLLATE latin1_bin NOT NULL,\n\
                   `name` varchar(40) DEFAULT 'x, y',\n\
                   price decimal(10,2) NOT NULL DEFAULT 0.00,\n\
                   note text CHARACTER SET utf8mb4,\n\
                   made datetime(3) DEFAULT current_timestamp(3),\n\
                   CONSTRAINT pk PRIMARY KEY USING BTREE (`id`),\n\
                   UNIQUE KEY `by_code` (code, `name`(10) DESC),\n\
                   KEY by_made (made),\n\
                   CONSTRAINT fk FOREIGN KEY (code) REFERENCES other (c) ON DELETE CASCADE,\n\
                   CHECK (price >= 0)\n\
                   ) ENGINE=InnoDB DEFAULT CHARSET=latin1 COMMENT='new'";
        let Some(Statement::CreateTable {
            definition: TableDefinition::Columns(s),
            ..
        }) = p(sql)
        else {
            panic!("create table");
        };
        let names: Vec<&str> = s.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["id", "code", "name", "price", "note", "made"]);
        let ordinals: Vec<u32> = s.columns.iter().map(|c| c.ordinal).collect();
        assert_eq!(ordinals, [1, 2, 3, 4, 5, 6]);
        assert_eq!(s.primary_key, ["id"]);
        assert_eq!(s.unique_keys.len(), 1);
        assert_eq!(s.unique_keys[0].name, "by_code");
        assert_eq!(s.unique_keys[0].columns, ["code", "name"]);
        assert!(!s.unique_keys[0].not_null, "name is nullable");
        assert_eq!(s.engine, "InnoDB");
        let charsets: Vec<Option<&str>> = s.columns.iter().map(|c| c.charset.as_deref()).collect();
        assert_eq!(
            charsets,
            [
                None,
                Some("latin1"),
                Some("latin1"),
                None,
                Some("utf8mb4"),
                None
            ]
        );
        assert!(s.columns[0].unsigned && s.columns[0].auto_increment && !s.columns[0].nullable);
        assert_eq!(s.columns[2].default.as_deref(), Some("x, y"));
        let Some(Statement::CreateTable {
            definition: TableDefinition::Columns(s),
            ..
        }) = p(
            "create table t (a varchar(5), b int not null, unique (b)) collate utf8mb3_general_ci",
        )
        else {
            panic!("create table");
        };
        assert_eq!(s.columns[0].charset.as_deref(), Some("utf8mb3"));
        assert_eq!(s.unique_keys[0].columns, ["b"]);
        assert!(s.unique_keys[0].not_null);
        assert!(s.primary_key.is_empty());
    }

    #[test]
    fn table_statements() {
        let p = |sql: &str| parse(sql, "shop", ParseOptions::default()).expect(sql);
        let t = |d: &str, n: &str| TableName {
            database: d.into(),
            table: n.into(),
        };
        assert_eq!(
            p("RENAME TABLE a TO b, other.c TO `shop`.d"),
            Some(Statement::RenameTables(vec![
                (t("shop", "a"), t("shop", "b")),
                (t("other", "c"), t("shop", "d"))
            ]))
        );
        assert_eq!(
            p("DROP TABLE IF EXISTS `a`, x.b /* generated by server */"),
            Some(Statement::DropTables(vec![t("shop", "a"), t("x", "b")]))
        );
        assert_eq!(p("DROP TEMPORARY TABLE IF EXISTS a"), None);
        assert_eq!(p("truncate a"), Some(Statement::Truncate(t("shop", "a"))));
        assert_eq!(
            p("SET STATEMENT lock_wait_timeout = 5, max_statement_time = (1 + 1) FOR truncate a"),
            Some(Statement::Truncate(t("shop", "a")))
        );
        assert_eq!(p("SET STATEMENT x = 1"), None);
        let Some(Statement::CreateTable {
            table,
            if_not_exists: true,
            or_replace: false,
            definition: TableDefinition::Columns(n),
        }) = p("CREATE TABLE IF NOT EXISTS n (id INT PRIMARY KEY)")
        else {
            panic!("create table");
        };
        assert_eq!((table, n.primary_key), (t("shop", "n"), vec!["id".into()]));
        assert_eq!(
            p("create or replace table n like m"),
            Some(Statement::CreateTable {
                table: t("shop", "n"),
                if_not_exists: false,
                or_replace: true,
                definition: TableDefinition::Like(t("shop", "m")),
            })
        );
        assert!(matches!(
            p("create table n (like x.m)"),
            Some(Statement::CreateTable {
                definition: TableDefinition::Like(m),
                ..
            }) if m == t("x", "m")
        ));
        assert!(matches!(
            p("create table n select * from m"),
            Some(Statement::CreateTable {
                definition: TableDefinition::Unknown,
                ..
            })
        ));
        assert_eq!(p("CREATE TEMPORARY TABLE tmp (a int)"), None);
        assert_eq!(
            p("CREATE UNIQUE INDEX u ON a (x)"),
            Some(Statement::CreateIndex {
                table: t("shop", "a"),
                kind: KeyKind::Unique
            })
        );
        assert_eq!(
            p("DROP INDEX `u` ON a"),
            Some(Statement::DropIndex {
                table: t("shop", "a"),
                name: "u".into()
            })
        );
        assert_eq!(
            p("DROP DATABASE IF EXISTS shop"),
            Some(Statement::DropDatabase("shop".into()))
        );
        for other in [
            "BEGIN",
            "COMMIT",
            "INSERT INTO a VALUES (1)",
            "GRANT SELECT ON *.* TO u",
            "CREATE VIEW v AS SELECT 1",
            "ALTER DATABASE shop CHARACTER SET utf8mb4",
            "CREATE DEFINER=`root`@`%` TRIGGER x BEFORE INSERT ON a FOR EACH ROW SET @a = 1",
            "FLUSH TABLES",
        ] {
            assert_eq!(p(other), None, "{other}");
        }
    }

    #[test]
    fn strings_unescape_as_the_server_reads_them() {
        let (_, specs) = alter(r"ALTER TABLE t ADD a VARCHAR(9) DEFAULT 'it''s \'ok\'\n'");
        let (cols, _) = added(&specs[0]);
        assert_eq!(cols[0].default.as_deref(), Some("it's 'ok'\n"));
        let opts = ParseOptions::from_sql_mode(1 << 21);
        let Some(Statement::AlterTable { specs, .. }) =
            parse(r"ALTER TABLE t ADD a VARCHAR(9) DEFAULT 'a\b'", "d", opts).expect("parse")
        else {
            panic!()
        };
        let (cols, _) = added(&specs[0]);
        assert_eq!(cols[0].default.as_deref(), Some(r"a\b"));
    }
}
