//! The SQL subset the emulator runs: `CREATE TABLE`, `ALTER TABLE … ADD
//! COLUMNS`, `ALTER TABLE … ADD|DROP PARTITION`, `ALTER TABLE … SET
//! COMMENT`, `DROP TABLE` and
//! `SELECT COUNT(*) FROM t [WHERE k='v' AND …]`, and `SELECT * FROM t
//! [WHERE k='v' AND …]` (run for primary-key Delta tables only). `CREATE
//! TABLE` takes `PRIMARY KEY (…)` in the column list and `TBLPROPERTIES`.
//! Anything else is refused
//! with MaxCompute's parse-error format.

use crate::catalog::Column;
use odps_tunnel::types::OdpsType;

/// A parsed statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Statement {
    /// `CREATE TABLE`
    CreateTable {
        /// `IF NOT EXISTS` was given.
        if_not_exists: bool,
        /// Table name (lower-case, project prefix dropped).
        table: String,
        /// Data columns.
        columns: Vec<Column>,
        /// Partition keys.
        partition_keys: Vec<Column>,
        /// Table comment.
        comment: String,
        /// `LIFECYCLE n`.
        lifecycle: Option<i64>,
        /// `PRIMARY KEY (a, b)` inside the column list (lower-case names).
        primary_key: Vec<String>,
        /// `TBLPROPERTIES ('k'='v', …)`, keys lower-case.
        properties: Vec<(String, String)>,
    },
    /// `ALTER TABLE t ADD COLUMNS (...)`
    AddColumns {
        /// Table name.
        table: String,
        /// New columns.
        columns: Vec<Column>,
    },
    /// `ALTER TABLE t SET COMMENT 'text'`
    SetComment {
        /// Table name.
        table: String,
        /// The new table comment.
        comment: String,
    },
    /// `ALTER TABLE t ADD [IF NOT EXISTS] PARTITION (...) [PARTITION (...)]`
    AddPartitions {
        /// Table name.
        table: String,
        /// `IF NOT EXISTS` was given.
        if_not_exists: bool,
        /// The partition specs.
        partitions: Vec<Vec<(String, String)>>,
    },
    /// `ALTER TABLE t DROP [IF EXISTS] PARTITION (...)`
    DropPartitions {
        /// Table name.
        table: String,
        /// `IF EXISTS` was given.
        if_exists: bool,
        /// The partition specs.
        partitions: Vec<Vec<(String, String)>>,
    },
    /// `DROP TABLE [IF EXISTS] t`
    DropTable {
        /// `IF EXISTS` was given.
        if_exists: bool,
        /// Table name.
        table: String,
    },
    /// `SELECT * FROM t [WHERE k = 'v' AND ...]` (the read path of
    /// primary-key Delta tables)
    SelectAll {
        /// Table name.
        table: String,
        /// Equality filters on partition keys.
        filter: Vec<(String, String)>,
    },
    /// `SELECT COUNT(*) FROM t [WHERE k = 'v' AND ...]`
    SelectCount {
        /// Table name.
        table: String,
        /// Equality filters on partition keys.
        filter: Vec<(String, String)>,
    },
}

/// Why a statement was refused; the text is MaxCompute-style.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("ODPS-0130161:[{line},{col}] Parse exception - {message}")]
pub struct SqlError {
    /// 1-based line of the offending token.
    pub line: usize,
    /// 1-based column of the offending token.
    pub col: usize,
    /// What went wrong.
    pub message: String,
}

/// Splits a script on `;` (outside quotes) and parses each statement.
pub fn parse_script(sql: &str) -> Result<Vec<Statement>, SqlError> {
    let tokens = tokenize(sql)?;
    let mut statements = Vec::new();
    let mut parser = Parser {
        tokens: &tokens,
        pos: 0,
    };
    loop {
        while parser.eat_punct(';') {}
        if parser.at_end() {
            break;
        }
        // `SET key=value;` lines are session settings; they change nothing here.
        if parser.peek_kw("set") {
            while !parser.at_end() && !parser.eat_punct(';') {
                parser.pos += 1;
            }
            continue;
        }
        statements.push(parser.statement()?);
        if !parser.at_end() && !parser.eat_punct(';') {
            return Err(parser.error("expected ';' or end of statement"));
        }
    }
    if statements.is_empty() {
        return Err(SqlError {
            line: 1,
            col: 1,
            message: "empty statement".into(),
        });
    }
    Ok(statements)
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
    Str(String),
    Num(String),
    Punct(char),
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    line: usize,
    col: usize,
}

fn tokenize(sql: &str) -> Result<Vec<Token>, SqlError> {
    let chars: Vec<char> = sql.chars().collect();
    let mut tokens = Vec::new();
    let (mut i, mut line, mut line_start) = (0, 1, 0);
    while i < chars.len() {
        let c = chars[i];
        let col = i - line_start + 1;
        let err = |message: &str| SqlError {
            line,
            col,
            message: message.into(),
        };
        if c == '\n' {
            line += 1;
            line_start = i + 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '\'' || c == '"' || c == '`' {
            let mut text = String::new();
            i += 1;
            loop {
                let Some(&d) = chars.get(i) else {
                    return Err(err("unterminated quote"));
                };
                i += 1;
                if d == '\\' && c != '`' {
                    let Some(&e) = chars.get(i) else {
                        return Err(err("unterminated quote"));
                    };
                    i += 1;
                    text.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        '0' => '\0',
                        other => other,
                    });
                } else if d == c {
                    break;
                } else {
                    text.push(d);
                }
            }
            let tok = if c == '`' {
                Tok::Quoted(text)
            } else {
                Tok::Str(text)
            };
            tokens.push(Token { tok, line, col });
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            tokens.push(Token {
                tok: Tok::Num(chars[start..i].iter().collect()),
                line,
                col,
            });
        } else if c.is_alphanumeric() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            tokens.push(Token {
                tok: Tok::Word(chars[start..i].iter().collect()),
                line,
                col,
            });
        } else if "(),<>:;=.*".contains(c) {
            tokens.push(Token {
                tok: Tok::Punct(c),
                line,
                col,
            });
            i += 1;
        } else {
            return Err(err(&format!("unexpected character '{c}'")));
        }
    }
    Ok(tokens)
}

struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
}

impl Parser<'_> {
    fn at_end(&self) -> bool {
        self.pos >= self.tokens.len()
    }

    fn error(&self, message: &str) -> SqlError {
        let (line, col) = self
            .tokens
            .get(self.pos)
            .or(self.tokens.last())
            .map_or((1, 1), |t| (t.line, t.col));
        let found = match self.tokens.get(self.pos).map(|t| &t.tok) {
            Some(Tok::Word(w) | Tok::Num(w)) => format!(" near '{w}'"),
            Some(Tok::Quoted(w)) => format!(" near '`{w}`'"),
            Some(Tok::Str(w)) => format!(" near ''{w}''"),
            Some(Tok::Punct(p)) => format!(" near '{p}'"),
            None => " at end of statement".to_owned(),
        };
        SqlError {
            line,
            col,
            message: format!("{message}{found}"),
        }
    }

    fn peek_kw(&self, kw: &str) -> bool {
        matches!(self.tokens.get(self.pos).map(|t| &t.tok), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let hit = self.peek_kw(kw);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), SqlError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.error(&format!("expected {}", kw.to_ascii_uppercase())))
        }
    }

    fn eat_punct(&mut self, p: char) -> bool {
        let hit =
            matches!(self.tokens.get(self.pos).map(|t| &t.tok), Some(Tok::Punct(c)) if *c == p);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn expect_punct(&mut self, p: char) -> Result<(), SqlError> {
        if self.eat_punct(p) {
            Ok(())
        } else {
            Err(self.error(&format!("expected '{p}'")))
        }
    }

    fn ident(&mut self) -> Result<String, SqlError> {
        match self.tokens.get(self.pos).map(|t| &t.tok) {
            Some(Tok::Word(w) | Tok::Quoted(w)) => {
                self.pos += 1;
                Ok(w.clone())
            }
            _ => Err(self.error("expected an identifier")),
        }
    }

    fn string(&mut self) -> Result<String, SqlError> {
        match self.tokens.get(self.pos).map(|t| &t.tok) {
            Some(Tok::Str(s) | Tok::Num(s)) => {
                self.pos += 1;
                Ok(s.clone())
            }
            _ => Err(self.error("expected a string literal")),
        }
    }

    fn number(&mut self) -> Result<i64, SqlError> {
        match self.tokens.get(self.pos).map(|t| &t.tok) {
            Some(Tok::Num(n)) => {
                let v = n.parse().map_err(|_| self.error("expected an integer"))?;
                self.pos += 1;
                Ok(v)
            }
            _ => Err(self.error("expected an integer")),
        }
    }

    /// `[project.][schema.]name`: only the table name matters, the project is
    /// the one the request was sent to.
    fn table_name(&mut self) -> Result<String, SqlError> {
        let mut name = self.ident()?;
        while self.eat_punct('.') {
            name = self.ident()?;
        }
        Ok(name.to_ascii_lowercase())
    }

    fn statement(&mut self) -> Result<Statement, SqlError> {
        if self.eat_kw("create") {
            self.expect_kw("table")?;
            self.create_table()
        } else if self.eat_kw("alter") {
            self.expect_kw("table")?;
            self.alter_table()
        } else if self.eat_kw("drop") {
            self.expect_kw("table")?;
            let if_exists = self.eat_kw("if");
            if if_exists {
                self.expect_kw("exists")?;
            }
            Ok(Statement::DropTable {
                if_exists,
                table: self.table_name()?,
            })
        } else if self.eat_kw("select") {
            self.select_count()
        } else {
            Err(self.error("the MaxCompute emulator supports only CREATE TABLE, ALTER TABLE, DROP TABLE and SELECT COUNT(*); unsupported statement"))
        }
    }

    fn create_table(&mut self) -> Result<Statement, SqlError> {
        let if_not_exists = self.eat_kw("if");
        if if_not_exists {
            self.expect_kw("not")?;
            self.expect_kw("exists")?;
        }
        let table = self.table_name()?;
        let (columns, primary_key) = self.column_list_with_key()?;
        let mut comment = String::new();
        let mut partition_keys = Vec::new();
        let mut lifecycle = None;
        let mut properties = Vec::new();
        while !self.at_end() && !self.peek_punct(';') {
            if self.eat_kw("comment") {
                comment = self.string()?;
            } else if self.eat_kw("partitioned") {
                self.expect_kw("by")?;
                partition_keys = self.column_list()?;
            } else if self.eat_kw("lifecycle") {
                lifecycle = Some(self.number()?);
            } else if self.eat_kw("tblproperties") {
                self.expect_punct('(')?;
                loop {
                    let key = self.string()?.to_ascii_lowercase();
                    self.expect_punct('=')?;
                    properties.push((key, self.string()?));
                    if !self.eat_punct(',') {
                        break;
                    }
                }
                self.expect_punct(')')?;
            } else {
                return Err(self.error("unsupported CREATE TABLE clause"));
            }
        }
        if columns.is_empty() {
            return Err(self.error("a table needs at least one column"));
        }
        Ok(Statement::CreateTable {
            if_not_exists,
            table,
            columns,
            partition_keys,
            comment,
            lifecycle,
            primary_key,
            properties,
        })
    }

    fn peek_punct(&self, p: char) -> bool {
        matches!(self.tokens.get(self.pos).map(|t| &t.tok), Some(Tok::Punct(c)) if *c == p)
    }

    fn alter_table(&mut self) -> Result<Statement, SqlError> {
        let table = self.table_name()?;
        if self.eat_kw("add") {
            if self.eat_kw("columns") {
                return Ok(Statement::AddColumns {
                    table,
                    columns: self.column_list()?,
                });
            }
            let if_not_exists = self.eat_kw("if");
            if if_not_exists {
                self.expect_kw("not")?;
                self.expect_kw("exists")?;
            }
            let partitions = self.partition_specs()?;
            Ok(Statement::AddPartitions {
                table,
                if_not_exists,
                partitions,
            })
        } else if self.eat_kw("drop") {
            let if_exists = self.eat_kw("if");
            if if_exists {
                self.expect_kw("exists")?;
            }
            let partitions = self.partition_specs()?;
            Ok(Statement::DropPartitions {
                table,
                if_exists,
                partitions,
            })
        } else if self.eat_kw("set") {
            self.expect_kw("comment")?;
            Ok(Statement::SetComment {
                table,
                comment: self.string()?,
            })
        } else {
            Err(self.error("the MaxCompute emulator supports only ADD COLUMNS, ADD PARTITION, DROP PARTITION and SET COMMENT in ALTER TABLE; unsupported clause"))
        }
    }

    fn partition_specs(&mut self) -> Result<Vec<Vec<(String, String)>>, SqlError> {
        let mut specs = Vec::new();
        while self.eat_kw("partition") {
            self.expect_punct('(')?;
            let mut spec = Vec::new();
            loop {
                let key = self.ident()?.to_ascii_lowercase();
                self.expect_punct('=')?;
                spec.push((key, self.string()?));
                if !self.eat_punct(',') {
                    break;
                }
            }
            self.expect_punct(')')?;
            specs.push(spec);
            self.eat_punct(',');
        }
        if specs.is_empty() {
            return Err(self.error("expected PARTITION"));
        }
        Ok(specs)
    }

    fn column_list(&mut self) -> Result<Vec<Column>, SqlError> {
        let start = self.pos;
        let (columns, key) = self.column_list_with_key()?;
        if !key.is_empty() {
            self.pos = start;
            return Err(self.error("PRIMARY KEY is only allowed among a table's columns"));
        }
        Ok(columns)
    }

    /// A column list that may hold `PRIMARY KEY (a, b)` as an entry.
    fn column_list_with_key(&mut self) -> Result<(Vec<Column>, Vec<String>), SqlError> {
        self.expect_punct('(')?;
        let mut columns = Vec::new();
        let mut key = Vec::new();
        loop {
            if self.peek_kw("primary") {
                self.pos += 1;
                self.expect_kw("key")?;
                if !key.is_empty() {
                    return Err(self.error("a table has one PRIMARY KEY"));
                }
                self.expect_punct('(')?;
                loop {
                    key.push(self.ident()?.to_ascii_lowercase());
                    if !self.eat_punct(',') {
                        break;
                    }
                }
                self.expect_punct(')')?;
                if !self.eat_punct(',') {
                    break;
                }
                continue;
            }
            let name = self.ident()?.to_ascii_lowercase();
            let type_name = self.type_name()?;
            let mut nullable = true;
            let mut comment = String::new();
            loop {
                if self.eat_kw("not") {
                    self.expect_kw("null")?;
                    nullable = false;
                } else if self.eat_kw("null") {
                } else if self.eat_kw("comment") {
                    comment = self.string()?;
                } else {
                    break;
                }
            }
            columns.push(Column {
                name,
                type_name,
                comment,
                nullable,
            });
            if !self.eat_punct(',') {
                break;
            }
        }
        self.expect_punct(')')?;
        Ok((columns, key))
    }

    /// Collects a type's tokens up to the `,`/`)` that ends the column and
    /// lets the type parser judge them.
    fn type_name(&mut self) -> Result<String, SqlError> {
        let start = self.pos;
        let mut text = String::new();
        let mut depth = 0i32;
        while let Some(token) = self.tokens.get(self.pos) {
            match &token.tok {
                Tok::Punct('<' | '(') => depth += 1,
                Tok::Punct('>') => depth -= 1,
                Tok::Punct(')') if depth == 0 => break,
                Tok::Punct(')') => depth -= 1,
                Tok::Punct(',') if depth == 0 => break,
                Tok::Word(w)
                    if depth == 0
                        && self.pos > start
                        && (w.eq_ignore_ascii_case("comment")
                            || w.eq_ignore_ascii_case("not")
                            || w.eq_ignore_ascii_case("null")) =>
                {
                    break;
                }
                _ => {}
            }
            match &token.tok {
                Tok::Word(w) | Tok::Num(w) => text.push_str(w),
                Tok::Quoted(w) => {
                    text.push('`');
                    text.push_str(w);
                    text.push('`');
                }
                Tok::Str(s) => {
                    text.push('\'');
                    text.push_str(s);
                    text.push('\'');
                }
                Tok::Punct(p) => text.push(*p),
            }
            text.push(' ');
            self.pos += 1;
        }
        match text.parse::<OdpsType>() {
            Ok(t) => Ok(t.to_string()),
            Err(_) => {
                self.pos = start;
                Err(self.error("invalid or unsupported column type"))
            }
        }
    }

    fn select_count(&mut self) -> Result<Statement, SqlError> {
        let unsupported = "the MaxCompute emulator supports only SELECT COUNT(*) FROM table [WHERE partition_key = 'value' AND ...] (and SELECT * on primary-key Delta tables)";
        if self.eat_punct('*') {
            self.expect_kw("from")?;
            let table = self.table_name()?;
            let filter = self.partition_filter(unsupported)?;
            return Ok(Statement::SelectAll { table, filter });
        }
        if !self.eat_kw("count") {
            return Err(self.error(unsupported));
        }
        self.expect_punct('(')?;
        if !(self.eat_punct('*') || self.number().is_ok()) {
            return Err(self.error(unsupported));
        }
        self.expect_punct(')')?;
        if self.eat_kw("as") {
            self.ident()?;
        }
        self.expect_kw("from")?;
        let table = self.table_name()?;
        let filter = self.partition_filter(unsupported)?;
        Ok(Statement::SelectCount { table, filter })
    }

    /// `[WHERE k = 'v' AND ...]` up to the end of the statement.
    fn partition_filter(&mut self, unsupported: &str) -> Result<Vec<(String, String)>, SqlError> {
        let mut filter = Vec::new();
        if self.eat_kw("where") {
            loop {
                let key = self.ident()?.to_ascii_lowercase();
                if !self.eat_punct('=') {
                    return Err(self.error(unsupported));
                }
                filter.push((key, self.string()?));
                if !self.eat_kw("and") {
                    break;
                }
            }
        }
        if !self.at_end() && !self.peek_punct(';') {
            return Err(self.error(unsupported));
        }
        Ok(filter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_sdks_create_table() {
        let sql = "CREATE TABLE IF NOT EXISTS proj.`t1` (\n  `id` BIGINT COMMENT 'the id',\n  `d` DECIMAL(10,2),\n  `m` MAP<STRING,ARRAY<INT>>,\n  `s` STRUCT<`a`:INT,`b`:STRING>\n)\nCOMMENT 'tbl'\nPARTITIONED BY (\n  `pt` STRING\n)\nLIFECYCLE 7;";
        let stmts = parse_script(sql).unwrap();
        let Statement::CreateTable {
            if_not_exists,
            table,
            columns,
            partition_keys,
            comment,
            lifecycle,
            ..
        } = &stmts[0]
        else {
            panic!("not a create: {stmts:?}");
        };
        assert!(if_not_exists);
        assert_eq!(table, "t1");
        let types: Vec<_> = columns.iter().map(|c| c.type_name.as_str()).collect();
        assert_eq!(
            types,
            [
                "bigint",
                "decimal(10,2)",
                "map<string,array<int>>",
                "struct<a:int,b:string>"
            ]
        );
        assert_eq!(columns[0].comment, "the id");
        assert_eq!(partition_keys[0].name, "pt");
        assert_eq!(comment, "tbl");
        assert_eq!(*lifecycle, Some(7));
    }

    #[test]
    fn parses_alter_drop_and_count() {
        assert_eq!(
            parse_script("alter table t add if not exists partition (pt='1', r=\"x\") partition (pt='2', r='y')").unwrap(),
            vec![Statement::AddPartitions {
                table: "t".into(),
                if_not_exists: true,
                partitions: vec![
                    vec![("pt".into(), "1".into()), ("r".into(), "x".into())],
                    vec![("pt".into(), "2".into()), ("r".into(), "y".into())]
                ],
            }]
        );
        assert!(matches!(
            &parse_script("ALTER TABLE t ADD COLUMNS (c2 STRING COMMENT 'x')").unwrap()[0],
            Statement::AddColumns { columns, .. } if columns[0].name == "c2"
        ));
        assert_eq!(
            parse_script("ALTER TABLE `t` SET COMMENT 'it\\'s [x]'").unwrap(),
            vec![Statement::SetComment {
                table: "t".into(),
                comment: "it's [x]".into()
            }]
        );
        assert_eq!(
            parse_script("DROP TABLE IF EXISTS p.T;").unwrap(),
            vec![Statement::DropTable {
                if_exists: true,
                table: "t".into()
            }]
        );
        assert_eq!(
            parse_script("select count(*) from t where pt = '1' and r='x';").unwrap(),
            vec![Statement::SelectCount {
                table: "t".into(),
                filter: vec![("pt".into(), "1".into()), ("r".into(), "x".into())]
            }]
        );
    }

    #[test]
    fn parses_delta_tables_and_select_all() {
        let sql = "CREATE TABLE IF NOT EXISTS `d` (\n  `id` BIGINT NOT NULL,\n  `k2` STRING,\n  `v` DECIMAL(10,2),\n  PRIMARY KEY (`id`, k2)\n)\nPARTITIONED BY (pt STRING)\nTBLPROPERTIES (\n  'transactional' = 'true',\n  'write.bucket.num' = '4'\n);";
        let Statement::CreateTable {
            primary_key,
            properties,
            partition_keys,
            columns,
            ..
        } = &parse_script(sql).unwrap()[0]
        else {
            panic!("not a create");
        };
        assert_eq!(primary_key, &["id", "k2"]);
        assert_eq!(columns.len(), 3);
        assert_eq!(partition_keys.len(), 1);
        assert_eq!(
            properties,
            &[
                ("transactional".to_owned(), "true".to_owned()),
                ("write.bucket.num".to_owned(), "4".to_owned())
            ]
        );
        assert!(
            parse_script("CREATE TABLE t (a BIGINT) PARTITIONED BY (b STRING, PRIMARY KEY (b))")
                .is_err()
        );
        assert_eq!(
            parse_script("SELECT * FROM p.d WHERE pt='x'").unwrap(),
            vec![Statement::SelectAll {
                table: "d".into(),
                filter: vec![("pt".into(), "x".into())]
            }]
        );
    }

    #[test]
    fn refuses_what_it_does_not_run() {
        let err = parse_script("SELECT a FROM t").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("ODPS-0130161:[1,8] Parse exception"),
            "{err}"
        );
        assert!(parse_script("INSERT INTO t VALUES (1)").is_err());
        assert!(parse_script("CREATE TABLE t (a BLOB)").is_err());
        assert!(parse_script("").is_err());
    }
}
