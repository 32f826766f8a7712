//! Data changes written as statement text.
//!
//! A session that sets `binlog_format = STATEMENT` (or `MIXED` logging a
//! safe statement) puts its writes into the binlog as QUERY events with the
//! SQL text and no rows events: the task cannot turn them into row changes.
//! In row-based logging a QUERY event never carries DML (MariaDB writes
//! `BEGIN`, `COMMIT` and DDL only), so any DML text there is a change the
//! destination would miss. [`parse_dml`] tells which tables such a statement
//! writes, so that the task stops at it (or skips it knowingly) when one of
//! them is synced.
//!
//! It reads `INSERT`/`REPLACE` (with `… SELECT`), `UPDATE` and `DELETE`
//! (single and multi-table, aliases resolved), `LOAD DATA`/`LOAD XML`, and
//! `CREATE TABLE … [AS] SELECT`, behind an optional `SET STATEMENT … FOR`
//! and `WITH` clause. Where
//! the text does not say which of several tables changes (an `UPDATE` whose
//! `SET` names a column without its table), every table it names counts:
//! a false stop is better than a lost change. A `SELECT` reaches the binlog
//! only when it calls a stored function that writes (`SELECT f(1)`, also
//! `DO f(1)`, logged once per call as ``SELECT `db`.`f`(1)``): the tables
//! the function writes are not in the text, so its tables are an error and
//! [`DmlStatement::routine`] names the function.

use super::{DdlError, ParseOptions, Parser, TableName, Tok, lex};

/// What kind of data change a statement is.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum DmlKind {
    /// `INSERT` (also `INSERT … SELECT`).
    Insert,
    /// `REPLACE`.
    Replace,
    /// `UPDATE`.
    Update,
    /// `DELETE`.
    Delete,
    /// `LOAD DATA` / `LOAD XML`.
    Load,
    /// `CREATE TABLE … SELECT`.
    CreateSelect,
    /// A `SELECT` (or `DO`) calling a stored function that writes.
    Function,
}

impl DmlKind {
    /// The statement's name, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Insert => "INSERT",
            Self::Replace => "REPLACE",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
            Self::Load => "LOAD DATA",
            Self::CreateSelect => "CREATE TABLE … SELECT",
            Self::Function => "stored function call",
        }
    }
}

/// A data change statement and the tables it writes.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct DmlStatement {
    /// The kind.
    pub kind: DmlKind,
    /// The tables it may write, in the order named, without repeats;
    /// unqualified names belong to the event's default database. An error
    /// when they cannot be read (the statement is still a data change).
    pub tables: Result<Vec<TableName>, DdlError>,
    /// For [`DmlKind::Function`], the stored function called (`db.f`), if
    /// the text names one.
    pub routine: Option<TableName>,
}

/// Reads `sql` as a data change; unqualified table names belong to
/// `default_db`. `Ok(None)`: not a data change (DDL, `BEGIN`, `SET`, a
/// temporary table's `CREATE … SELECT`, …).
///
/// # Errors
/// [`DdlError`] when the text cannot be split into tokens (an unterminated
/// quote or comment). A data change whose tables cannot be read is
/// `Ok(Some(_))` with [`DmlStatement::tables`] an error.
pub fn parse_dml(
    sql: &str,
    default_db: &str,
    opts: ParseOptions,
) -> Result<Option<DmlStatement>, DdlError> {
    let tokens = lex(sql, opts)?;
    let mut p = Parser {
        sql,
        tokens,
        pos: 0,
        default_db,
    };
    p.skip_set_statement();
    if p.skip_with().is_err() {
        // Only a data change may follow a WITH clause here.
        return Ok(Some(DmlStatement {
            kind: DmlKind::Update,
            tables: Err(p.error("a WITH clause that cannot be read")),
            routine: None,
        }));
    }
    let kind = if p.eat_kw("insert") {
        DmlKind::Insert
    } else if p.eat_kw("replace") {
        DmlKind::Replace
    } else if p.eat_kw("update") {
        DmlKind::Update
    } else if p.eat_kw("delete") {
        DmlKind::Delete
    } else if p.is_kw("load") && (p.is_kw_at(1, "data") || p.is_kw_at(1, "xml")) {
        p.pos += 2;
        DmlKind::Load
    } else if p.eat_kw("create") {
        // A CREATE whose name cannot be read is the DDL parser's to report.
        return Ok(p.create_select().ok().flatten());
    } else if p.eat_kw("select") || p.eat_kw("do") {
        let tables = Err(p.error("the tables a stored function writes are not in its call"));
        let routine = p.named().ok().filter(|_| p.is_punct('(')).map(|n| n.table);
        return Ok(Some(DmlStatement {
            kind: DmlKind::Function,
            tables,
            routine,
        }));
    } else {
        return Ok(None);
    };
    let tables = p.targets(kind).map(|tables| {
        let mut unique: Vec<TableName> = Vec::new();
        for t in tables {
            if !unique.contains(&t) {
                unique.push(t);
            }
        }
        unique
    });
    Ok(Some(DmlStatement {
        kind,
        tables,
        routine: None,
    }))
}

/// Words that end a table reference list or cannot be an alias.
const NOT_ALIAS: &[&str] = &[
    "as",
    "cross",
    "for",
    "force",
    "from",
    "ignore",
    "inner",
    "join",
    "left",
    "limit",
    "natural",
    "on",
    "order",
    "outer",
    "partition",
    "returning",
    "right",
    "set",
    "straight_join",
    "use",
    "using",
    "where",
    "window",
];

/// A table named in a statement, with how it was written.
#[derive(Clone, Debug)]
struct Named {
    /// `db.t` written (or resolved through the default database).
    table: TableName,
    /// Written without a database (so it may be an alias).
    bare: bool,
}

impl Parser<'_> {
    /// After the statement's verb: the tables a `kind` statement writes.
    fn targets(&mut self, kind: DmlKind) -> Result<Vec<TableName>, DdlError> {
        match kind {
            DmlKind::Insert | DmlKind::Replace => {
                self.eat_modifiers(&["low_priority", "delayed", "high_priority", "ignore"]);
                self.eat_kw("into");
                Ok(vec![self.table_name()?])
            }
            DmlKind::Load => {
                while !(self.at_end() || self.is_kw("into") && self.is_kw_at(1, "table")) {
                    self.skip_one();
                }
                if !self.eat_kws(&["into", "table"]) {
                    return Err(self.error("expected INTO TABLE"));
                }
                Ok(vec![self.table_name()?])
            }
            DmlKind::Update => self.update(),
            DmlKind::Delete => self.delete(),
            DmlKind::CreateSelect | DmlKind::Function => Ok(Vec::new()),
        }
    }

    /// Eats any of `words`, in any order.
    fn eat_modifiers(&mut self, words: &[&str]) {
        while words.iter().any(|w| self.eat_kw(w)) {}
    }

    /// Skips `WITH [RECURSIVE] name [(cols)] AS (query), …` before a statement.
    fn skip_with(&mut self) -> Result<(), DdlError> {
        if !self.eat_kw("with") {
            return Ok(());
        }
        self.eat_kw("recursive");
        loop {
            self.ident()?;
            if self.is_punct('(') {
                self.skip_group();
            }
            self.expect_kw("as")?;
            if !self.is_punct('(') {
                return Err(self.error("expected ( after AS in WITH"));
            }
            self.skip_group();
            if !self.eat_punct(',') {
                return Ok(());
            }
        }
    }

    /// After `CREATE`: a `CREATE TABLE … SELECT` (not `TEMPORARY`).
    fn create_select(&mut self) -> Result<Option<DmlStatement>, DdlError> {
        self.eat_kws(&["or", "replace"]);
        if !self.eat_kw("table") {
            return Ok(None);
        }
        self.if_not_exists();
        let table = self.table_name()?;
        // A column named `select` is quoted; an unquoted SELECT after the
        // name is the query filling the table (`AS SELECT`, `(SELECT …)`,
        // `(cols) IGNORE SELECT`).
        let fills = self.tokens[self.pos..].iter().any(
            |t| matches!(&t.tok, Tok::Word { text, quoted: false } if text.eq_ignore_ascii_case("select")),
        );
        Ok(fills.then(|| DmlStatement {
            kind: DmlKind::CreateSelect,
            tables: Ok(vec![table]),
            routine: None,
        }))
    }

    /// A table name as a target (`t`, `db.t`, `t.*`).
    fn named(&mut self) -> Result<Named, DdlError> {
        let first = self.ident()?;
        let named = if self.is_punct('.') && matches!(self.peek_at(1), Some(Tok::Word { .. })) {
            self.pos += 1;
            Named {
                table: TableName {
                    database: first,
                    table: self.ident()?,
                },
                bare: false,
            }
        } else {
            Named {
                table: TableName {
                    database: self.default_db.to_owned(),
                    table: first,
                },
                bare: true,
            }
        };
        if self.is_punct('.') && matches!(self.peek_at(1), Some(Tok::Punct('*'))) {
            self.pos += 2;
        }
        if named.bare && self.default_db.is_empty() {
            return Err(self.error(format!(
                "table `{}` is not qualified and the statement has no current database",
                named.table.table
            )));
        }
        Ok(named)
    }

    /// Table references (`a JOIN b ON …, c AS x`) up to one of `until` at
    /// their own nesting level: each table with its alias. Derived tables
    /// (`(SELECT …) d`) are only read from, so they are left out.
    fn table_refs(&mut self, until: &[&str]) -> Result<Vec<(TableName, Option<String>)>, DdlError> {
        let mut out = Vec::new();
        let mut want_table = true;
        let mut depth = 0usize;
        loop {
            if self.peek().is_none()
                || (depth == 0 && (self.is_punct(';') || until.iter().any(|k| self.is_kw(k))))
            {
                return Ok(out);
            }
            if self.is_punct('(') {
                if want_table && !(self.is_kw_at(1, "select") || self.is_kw_at(1, "with")) {
                    // A parenthesised join: its tables follow.
                    self.pos += 1;
                    depth += 1;
                } else {
                    // A derived table, or an ON/USING/index hint list.
                    self.skip_group();
                    want_table = false;
                }
                continue;
            }
            if self.eat_punct(')') {
                depth = depth.saturating_sub(1);
                want_table = false;
                continue;
            }
            if self.eat_punct(',') || self.eat_kw("join") || self.eat_kw("straight_join") {
                want_table = true;
                continue;
            }
            if want_table && matches!(self.peek(), Some(Tok::Word { .. })) {
                let table = self.named()?.table;
                if self.is_kw("partition") && matches!(self.peek_at(1), Some(Tok::Punct('('))) {
                    self.pos += 1;
                    self.skip_group();
                }
                let alias = self.alias()?;
                out.push((table, alias));
                want_table = false;
                continue;
            }
            self.skip_one();
        }
    }

    /// `[AS] alias` after a table, if there.
    fn alias(&mut self) -> Result<Option<String>, DdlError> {
        if self.eat_kw("as") {
            return self.ident().map(Some);
        }
        match self.peek() {
            Some(Tok::Word { text, quoted })
                if *quoted || !NOT_ALIAS.iter().any(|k| text.eq_ignore_ascii_case(k)) =>
            {
                self.ident().map(Some)
            }
            _ => Ok(None),
        }
    }

    /// After `UPDATE`: the tables its `SET` list changes.
    fn update(&mut self) -> Result<Vec<TableName>, DdlError> {
        self.eat_modifiers(&["low_priority", "ignore"]);
        let refs = self.table_refs(&["set"])?;
        if !self.eat_kw("set") {
            return Err(self.error("expected SET"));
        }
        // `alias.col = …` names the table it changes; a bare column could
        // be any of them.
        let mut changed = Vec::new();
        loop {
            let first = self.ident()?;
            let mut owner = None;
            if self.eat_punct('.') {
                let second = self.ident()?;
                if self.eat_punct('.') {
                    self.ident()?;
                    owner = Some(Named {
                        table: TableName {
                            database: first,
                            table: second,
                        },
                        bare: false,
                    });
                } else {
                    owner = Some(Named {
                        table: TableName {
                            database: self.default_db.to_owned(),
                            table: first,
                        },
                        bare: true,
                    });
                }
            }
            match owner {
                Some(n) => changed.push(resolve(&n, &refs)),
                None => return Ok(refs.into_iter().map(|(t, _)| t).collect()),
            }
            let mut depth = 0usize;
            while let Some(t) = self.peek() {
                match t {
                    Tok::Punct('(') => depth += 1,
                    Tok::Punct(')') => depth = depth.saturating_sub(1),
                    Tok::Punct(',' | ';') if depth == 0 => break,
                    Tok::Word {
                        text,
                        quoted: false,
                    } if depth == 0
                        && ["where", "order", "limit", "returning"]
                            .iter()
                            .any(|k| text.eq_ignore_ascii_case(k)) =>
                    {
                        break;
                    }
                    _ => {}
                }
                self.pos += 1;
            }
            if !self.eat_punct(',') {
                return Ok(changed);
            }
        }
    }

    /// After `DELETE`: the tables rows are deleted from.
    fn delete(&mut self) -> Result<Vec<TableName>, DdlError> {
        const END: &[&str] = &["where", "order", "limit", "returning"];
        self.eat_modifiers(&["low_priority", "quick", "ignore"]);
        let (targets, refs) = if self.eat_kw("from") {
            // `DELETE FROM t …` or `DELETE FROM a, b USING refs`.
            let mut targets = vec![self.named()?];
            while self.eat_punct(',') {
                targets.push(self.named()?);
            }
            if self.eat_kw("using") {
                (targets, self.table_refs(END)?)
            } else {
                return Ok(targets.into_iter().map(|n| n.table).collect());
            }
        } else {
            // `DELETE a, b FROM refs`.
            let mut targets = vec![self.named()?];
            while self.eat_punct(',') {
                targets.push(self.named()?);
            }
            self.expect_kw("from")?;
            (targets, self.table_refs(END)?)
        };
        Ok(targets.iter().map(|n| resolve(n, &refs)).collect())
    }
}

/// The table a target names: an alias of a reference, else the table itself.
fn resolve(n: &Named, refs: &[(TableName, Option<String>)]) -> TableName {
    if n.bare {
        let by_alias = refs.iter().find(|(_, a)| {
            a.as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(&n.table.table))
        });
        let by_name = || {
            refs.iter()
                .find(|(t, a)| a.is_none() && t.table.eq_ignore_ascii_case(&n.table.table))
        };
        if let Some((t, _)) = by_alias.or_else(by_name) {
            return t.clone();
        }
    }
    n.table.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(sql: &str) -> Vec<String> {
        parse_dml(sql, "shop", ParseOptions::default())
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .unwrap_or_else(|| panic!("{sql}: not read as a data change"))
            .tables
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn kind(sql: &str) -> Option<DmlKind> {
        parse_dml(sql, "shop", ParseOptions::default())
            .expect(sql)
            .map(|d| d.kind)
    }

    #[test]
    fn inserts_and_replaces_name_their_target() {
        assert_eq!(tables("INSERT INTO t VALUES (1)"), ["shop.t"]);
        assert_eq!(tables("insert into t values (1)"), ["shop.t"]);
        assert_eq!(
            tables("INSERT IGNORE INTO other.t (a) VALUES (1)"),
            ["other.t"]
        );
        assert_eq!(tables("INSERT LOW_PRIORITY INTO t SET a = 1"), ["shop.t"]);
        assert_eq!(tables("insert t values (1)"), ["shop.t"]);
        assert_eq!(
            tables("INSERT INTO t SELECT * FROM src.s JOIN src.u"),
            ["shop.t"]
        );
        assert_eq!(tables("REPLACE DELAYED INTO `x`.`y` VALUES (1)"), ["x.y"]);
        assert_eq!(kind("replace into t values (1)"), Some(DmlKind::Replace));
        assert_eq!(
            tables("/* app=checkout */ INSERT INTO t VALUES (1)"),
            ["shop.t"]
        );
        assert_eq!(
            tables("SET STATEMENT max_statement_time = 10 FOR INSERT INTO t VALUES (1)"),
            ["shop.t"]
        );
        assert_eq!(
            tables("WITH c AS (SELECT 1) INSERT INTO t SELECT * FROM c"),
            ["shop.t"]
        );
    }

    #[test]
    fn quoted_names_keep_dots_and_backquotes() {
        assert_eq!(
            parse_dml(
                "INSERT INTO `a.b`.`c``d` VALUES (1)",
                "",
                ParseOptions::default()
            )
            .expect("parse")
            .expect("dml")
            .tables,
            Ok(vec![TableName {
                database: "a.b".into(),
                table: "c`d".into()
            }])
        );
        let ansi = ParseOptions {
            ansi_quotes: true,
            ..ParseOptions::default()
        };
        assert_eq!(
            parse_dml("UPDATE \"s\".\"t.x\" SET a = 1", "", ansi)
                .expect("parse")
                .expect("dml")
                .tables
                .expect("tables")[0]
                .table,
            "t.x"
        );
    }

    #[test]
    fn updates_name_the_tables_their_set_list_changes() {
        assert_eq!(tables("UPDATE t SET a = 1 WHERE id = 2"), ["shop.t"]);
        assert_eq!(
            tables("UPDATE LOW_PRIORITY IGNORE a JOIN b ON a.id = b.id SET a.x = b.x"),
            ["shop.a"]
        );
        assert_eq!(
            tables("UPDATE a JOIN other.b ON a.id = b.id SET x = 1"),
            ["shop.a", "other.b"]
        );
        assert_eq!(
            tables(
                "update a AS p, other.b q set q.n = p.n, p.m = (select max(z) from c) where p.id = q.id"
            ),
            ["other.b", "shop.a"]
        );
        assert_eq!(
            tables(
                "UPDATE (a JOIN b USING (id)) LEFT JOIN c ON (c.id = a.id) SET c.v = 1, b.v = 2"
            ),
            ["shop.c", "shop.b"]
        );
        assert_eq!(
            tables("UPDATE a, (SELECT id FROM b) d SET a.v = 1 WHERE a.id = d.id"),
            ["shop.a"]
        );
        assert_eq!(tables("UPDATE s.t SET s.t.v = 1"), ["s.t"]);
    }

    #[test]
    fn deletes_name_the_tables_rows_leave() {
        assert_eq!(tables("DELETE FROM t WHERE id = 1"), ["shop.t"]);
        assert_eq!(
            tables("DELETE LOW_PRIORITY QUICK IGNORE FROM x.t LIMIT 3"),
            ["x.t"]
        );
        assert_eq!(
            tables("DELETE FROM a USING a JOIN b ON a.id = b.id WHERE b.gone"),
            ["shop.a"]
        );
        assert_eq!(
            tables("DELETE p, q FROM other.a AS p JOIN b q ON p.id = q.id"),
            ["other.a", "shop.b"]
        );
        assert_eq!(
            tables("DELETE a.* FROM a INNER JOIN b WHERE a.id = b.id"),
            ["shop.a"]
        );
    }

    #[test]
    fn load_data_and_create_select_name_their_table() {
        assert_eq!(
            tables(
                "LOAD DATA LOCAL INFILE '/tmp/x into table y' REPLACE INTO TABLE t FIELDS TERMINATED BY ','"
            ),
            ["shop.t"]
        );
        assert_eq!(tables("load xml infile 'f' into table d.t"), ["d.t"]);
        assert_eq!(
            kind("LOAD DATA INFILE 'f' INTO TABLE t"),
            Some(DmlKind::Load)
        );
        assert_eq!(tables("CREATE TABLE n SELECT * FROM m"), ["shop.n"]);
        assert_eq!(
            tables("create table if not exists x.n as select 1"),
            ["x.n"]
        );
        assert_eq!(
            tables("CREATE OR REPLACE TABLE n (id INT PRIMARY KEY) IGNORE SELECT id FROM m"),
            ["shop.n"]
        );
        assert_eq!(tables("CREATE TABLE n (SELECT 1 AS a)"), ["shop.n"]);
        assert_eq!(kind("CREATE TABLE n (`select` INT)"), None);
        assert_eq!(kind("CREATE TABLE n (id INT) COMMENT 'select'"), None);
        assert_eq!(kind("CREATE TEMPORARY TABLE n SELECT 1"), None);
    }

    #[test]
    fn other_statements_are_not_data_changes() {
        for sql in [
            "BEGIN",
            "COMMIT",
            "XA START 'x'",
            "SAVEPOINT a",
            "SET @a = 1",
            "ALTER TABLE t ADD c INT",
            "CREATE VIEW v AS SELECT 1",
            "LOAD INDEX INTO CACHE t",
            "TRUNCATE t",
            "/* INSERT INTO t VALUES (1) */ SET @a = 1",
        ] {
            assert_eq!(kind(sql), None, "{sql}");
        }
    }

    #[test]
    fn a_logged_select_is_a_stored_function_whose_tables_are_unknown() {
        for (sql, routine) in [
            ("SELECT `other`.`f`(10)", Some("other.f")),
            ("select f(1)", Some("shop.f")),
            ("DO f(2)", Some("shop.f")),
            ("SELECT 1 + f(2)", None),
        ] {
            let d = parse_dml(sql, "shop", ParseOptions::default())
                .expect(sql)
                .expect(sql);
            assert_eq!(d.kind, DmlKind::Function, "{sql}");
            assert_eq!(
                d.routine.as_ref().map(ToString::to_string).as_deref(),
                routine,
                "{sql}"
            );
            assert!(
                d.tables
                    .as_ref()
                    .is_err_and(|e| e.message.contains("a stored function writes")),
                "{sql}: {d:?}"
            );
        }
    }

    #[test]
    fn unreadable_targets_are_errors_of_a_data_change() {
        for sql in [
            "INSERT INTO t VALUES (1)",
            "INSERT INTO",
            "UPDATE t WHERE 1",
            "DELETE",
        ] {
            let d = parse_dml(sql, "", ParseOptions::default())
                .expect(sql)
                .expect(sql);
            assert!(d.tables.is_err(), "{sql}: {d:?}");
        }
        assert!(parse_dml("INSERT INTO t VALUES ('x", "d", ParseOptions::default()).is_err());
        assert_eq!(
            parse_dml("CREATE TABLE SELECT", "d", ParseOptions::default()).expect("lexes"),
            None
        );
    }
}
