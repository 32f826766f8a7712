//! Row filters: the `filter = "…"` condition of `[objects.tables."db.t"]`.
//!
//! A condition is a small SQL `WHERE` expression over the table's synced
//! columns (source names): comparisons (`= <> != < <= > >=`) of a column
//! with a literal, `IS [NOT] NULL`, `[NOT] IN (…)`, `[NOT] BETWEEN … AND …`,
//! `[NOT] LIKE '…'`, joined by `AND`, `OR`, `NOT` and parentheses.
//!
//! The same evaluator runs over the snapshot's rows and over binlog row
//! images, so both phases agree on every row by construction (a filter pushed
//! into the snapshot's SQL would follow the column's collation, and binlog
//! rows would not). Hence two differences from MySQL: strings compare
//! byte-wise (case-sensitive, as under a `_bin` collation), and datetime
//! literals are read as UTC. As in SQL, a comparison with NULL is unknown
//! and an unknown condition drops the row.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, DurationMicrosecondType, Float32Type, Float64Type, Int8Type,
    Int16Type, Int32Type, Int64Type, TimestampMicrosecondType, UInt8Type, UInt16Type, UInt32Type,
    UInt64Type,
};
use arrow_array::{Array, BooleanArray, RecordBatch};
use arrow_schema::{DataType, Schema, TimeUnit};
use std::cmp::Ordering;

/// A compiled row filter, bound to the columns of one table.
#[derive(Clone, Debug)]
pub struct RowFilter {
    text: String,
    expr: Expr,
}

impl RowFilter {
    /// Compiles `text` against `schema`, the table's synced columns under
    /// their destination names; `column_index` maps a source column name
    /// (as written in the condition) to its index in `schema`.
    ///
    /// # Errors
    /// A message naming the problem: a syntax error with its offset, an
    /// unknown or unsynced column, a literal that does not fit the column's
    /// type, or a column type filters do not support.
    pub fn compile(
        text: &str,
        schema: &Schema,
        column_index: impl Fn(&str) -> Option<usize>,
    ) -> Result<Self, String> {
        let tokens = lex(text)?;
        let mut p = Parser {
            tokens,
            at: 0,
            schema,
            column_index: &column_index,
        };
        let expr = p.or()?;
        if let Some(t) = p.tokens.get(p.at) {
            return Err(format!("unexpected {} at offset {}", t.tok, t.offset));
        }
        Ok(Self {
            text: text.to_owned(),
            expr,
        })
    }

    /// The condition as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Which rows of `batch` (the columns the filter was compiled against)
    /// pass: true only where the condition is true (not false, not unknown).
    pub fn evaluate(&self, batch: &RecordBatch) -> BooleanArray {
        (0..batch.num_rows())
            .map(|row| Some(self.expr.eval(batch, row) == Some(true)))
            .collect()
    }
}

/// A literal or a cell, in a form comparisons can order.
#[derive(Clone, Debug, PartialEq)]
enum Val {
    /// An exact number: mantissa × 10^-scale.
    Num(i128, u32),
    Float(f64),
    Bytes(Vec<u8>),
    /// Days, microseconds, booleans as 0/1: compared as integers.
    Int(i64),
}

/// What kind of values a column holds.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Exact,
    Float,
    Text,
    Date,
    Micros,
    Time,
    Bool,
}

fn kind_of(dt: &DataType) -> Option<Kind> {
    Some(match dt {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Decimal128(..) => Kind::Exact,
        DataType::Float32 | DataType::Float64 => Kind::Float,
        DataType::Utf8 | DataType::Binary => Kind::Text,
        DataType::Date32 => Kind::Date,
        DataType::Timestamp(TimeUnit::Microsecond, _) => Kind::Micros,
        DataType::Duration(TimeUnit::Microsecond) => Kind::Time,
        DataType::Boolean => Kind::Bool,
        _ => return None,
    })
}

#[derive(Clone, Debug)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp(usize, CmpOp, Val),
    IsNull(usize, bool),
    In(usize, Vec<Val>, bool),
    Like(usize, Vec<u8>, bool),
}

#[derive(Clone, Copy, Debug)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn holds(self, o: Ordering) -> bool {
        match self {
            Self::Eq => o == Ordering::Equal,
            Self::Ne => o != Ordering::Equal,
            Self::Lt => o == Ordering::Less,
            Self::Le => o != Ordering::Greater,
            Self::Gt => o == Ordering::Greater,
            Self::Ge => o != Ordering::Less,
        }
    }

    fn flipped(self) -> Self {
        match self {
            Self::Lt => Self::Gt,
            Self::Le => Self::Ge,
            Self::Gt => Self::Lt,
            Self::Ge => Self::Le,
            other => other,
        }
    }
}

impl Expr {
    /// SQL's three-valued logic: `None` is unknown.
    fn eval(&self, batch: &RecordBatch, row: usize) -> Option<bool> {
        match self {
            Self::And(a, b) => match (a.eval(batch, row), b.eval(batch, row)) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            },
            Self::Or(a, b) => match (a.eval(batch, row), b.eval(batch, row)) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            },
            Self::Not(a) => a.eval(batch, row).map(|v| !v),
            Self::Cmp(col, op, lit) => {
                let v = cell(batch.column(*col).as_ref(), row)?;
                compare(&v, lit).map(|o| op.holds(o))
            }
            Self::IsNull(col, negated) => Some(batch.column(*col).is_null(row) != *negated),
            Self::In(col, list, negated) => {
                let v = cell(batch.column(*col).as_ref(), row)?;
                let found = list.iter().any(|l| compare(&v, l) == Some(Ordering::Equal));
                Some(found != *negated)
            }
            Self::Like(col, pattern, negated) => {
                let Val::Bytes(v) = cell(batch.column(*col).as_ref(), row)? else {
                    return None;
                };
                Some(like(&v, pattern) != *negated)
            }
        }
    }
}

fn compare(a: &Val, b: &Val) -> Option<Ordering> {
    match (a, b) {
        (Val::Num(x, sx), Val::Num(y, sy)) => Some(compare_exact(*x, *sx, *y, *sy)),
        (Val::Float(x), Val::Float(y)) => x.partial_cmp(y),
        (Val::Float(x), Val::Num(m, s)) => x.partial_cmp(&to_f64(*m, *s)),
        (Val::Num(m, s), Val::Float(y)) => to_f64(*m, *s).partial_cmp(y),
        (Val::Bytes(x), Val::Bytes(y)) => Some(x.cmp(y)),
        (Val::Int(x), Val::Int(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn to_f64(m: i128, scale: u32) -> f64 {
    m as f64 / 10f64.powi(scale as i32)
}

fn compare_exact(x: i128, sx: u32, y: i128, sy: u32) -> Ordering {
    let scale = sx.max(sy);
    let up = |m: i128, s: u32| 10i128.checked_pow(scale - s).and_then(|f| m.checked_mul(f));
    match (up(x, sx), up(y, sy)) {
        (Some(a), Some(b)) => a.cmp(&b),
        // Beyond 38 digits only a float comparison is left.
        _ => to_f64(x, sx)
            .partial_cmp(&to_f64(y, sy))
            .unwrap_or(Ordering::Equal),
    }
}

/// The value at `row` of `array`; `None` for NULL (or a type filters reject
/// at compile time, so never in practice).
fn cell(array: &dyn Array, row: usize) -> Option<Val> {
    if array.is_null(row) {
        return None;
    }
    Some(match array.data_type() {
        DataType::Int8 => Val::Num(array.as_primitive::<Int8Type>().value(row).into(), 0),
        DataType::Int16 => Val::Num(array.as_primitive::<Int16Type>().value(row).into(), 0),
        DataType::Int32 => Val::Num(array.as_primitive::<Int32Type>().value(row).into(), 0),
        DataType::Int64 => Val::Num(array.as_primitive::<Int64Type>().value(row).into(), 0),
        DataType::UInt8 => Val::Num(array.as_primitive::<UInt8Type>().value(row).into(), 0),
        DataType::UInt16 => Val::Num(array.as_primitive::<UInt16Type>().value(row).into(), 0),
        DataType::UInt32 => Val::Num(array.as_primitive::<UInt32Type>().value(row).into(), 0),
        DataType::UInt64 => Val::Num(array.as_primitive::<UInt64Type>().value(row).into(), 0),
        DataType::Decimal128(_, s) => Val::Num(
            array.as_primitive::<Decimal128Type>().value(row),
            u32::try_from(*s).ok()?,
        ),
        DataType::Float32 => Val::Float(array.as_primitive::<Float32Type>().value(row).into()),
        DataType::Float64 => Val::Float(array.as_primitive::<Float64Type>().value(row)),
        DataType::Utf8 => Val::Bytes(array.as_string::<i32>().value(row).as_bytes().to_vec()),
        DataType::Binary => Val::Bytes(array.as_binary::<i32>().value(row).to_vec()),
        DataType::Date32 => Val::Int(array.as_primitive::<Date32Type>().value(row).into()),
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            Val::Int(array.as_primitive::<TimestampMicrosecondType>().value(row))
        }
        DataType::Duration(TimeUnit::Microsecond) => {
            Val::Int(array.as_primitive::<DurationMicrosecondType>().value(row))
        }
        DataType::Boolean => Val::Int(i64::from(array.as_boolean().value(row))),
        _ => return None,
    })
}

/// SQL LIKE: `%` any run, `_` one character (of UTF-8 text), `\` escapes.
fn like(value: &[u8], pattern: &[u8]) -> bool {
    let text = String::from_utf8_lossy(value);
    let pat = String::from_utf8_lossy(pattern);
    let v: Vec<char> = text.chars().collect();
    let p: Vec<char> = pat.chars().collect();
    // Iterative matcher with backtracking to the last `%`.
    let (mut vi, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        match p.get(pi) {
            Some('%') => {
                star = Some((pi, vi));
                pi += 1;
                continue;
            }
            Some('_') => {
                vi += 1;
                pi += 1;
                continue;
            }
            Some('\\') if p.get(pi + 1) == Some(&v[vi]) => {
                vi += 1;
                pi += 2;
                continue;
            }
            Some(&c) if c != '\\' && c == v[vi] => {
                vi += 1;
                pi += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((sp, sv)) => {
                pi = sp + 1;
                vi = sv + 1;
                star = Some((sp, sv + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '%')
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Number(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

impl std::fmt::Display for Tok {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ident(s) => write!(f, "`{s}`"),
            Self::Str(s) => write!(f, "'{s}'"),
            Self::Number(s) => write!(f, "{s}"),
            Self::Op(s) => write!(f, "`{s}`"),
            Self::LParen => write!(f, "`(`"),
            Self::RParen => write!(f, "`)`"),
            Self::Comma => write!(f, "`,`"),
        }
    }
}

#[derive(Debug)]
struct Token {
    tok: Tok,
    offset: usize,
    /// A backquoted identifier: a column, never a keyword.
    quoted: bool,
}

fn lex(text: &str) -> Result<Vec<Token>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let push = |out: &mut Vec<Token>, tok, quoted| {
            out.push(Token {
                tok,
                offset: start,
                quoted,
            })
        };
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                push(&mut out, Tok::LParen, false);
                i += 1;
            }
            b')' => {
                push(&mut out, Tok::RParen, false);
                i += 1;
            }
            b',' => {
                push(&mut out, Tok::Comma, false);
                i += 1;
            }
            b'\'' | b'"' => {
                let (s, end) = quoted_string(text, i, c)?;
                push(&mut out, Tok::Str(s), false);
                i = end;
            }
            b'`' => {
                let close = text[i + 1..]
                    .find('`')
                    .ok_or_else(|| format!("unclosed ` at offset {i}"))?;
                push(
                    &mut out,
                    Tok::Ident(text[i + 1..i + 1 + close].to_owned()),
                    true,
                );
                i += close + 2;
            }
            b'<' | b'>' | b'=' | b'!' => {
                let two = text.get(i..i + 2).unwrap_or("");
                let op = match two {
                    "<=" => "<=",
                    ">=" => ">=",
                    "<>" => "<>",
                    "!=" => "!=",
                    _ => match c {
                        b'<' => "<",
                        b'>' => ">",
                        b'=' => "=",
                        _ => return Err(format!("unexpected `!` at offset {i}")),
                    },
                };
                push(&mut out, Tok::Op(op), false);
                i += op.len();
            }
            b'0'..=b'9' | b'-' | b'+' | b'.' => {
                let mut end = i + 1;
                while end < bytes.len()
                    && (bytes[end].is_ascii_digit()
                        || bytes[end] == b'.'
                        || bytes[end] == b'e'
                        || bytes[end] == b'E'
                        || ((bytes[end] == b'-' || bytes[end] == b'+')
                            && matches!(bytes[end - 1], b'e' | b'E')))
                {
                    end += 1;
                }
                push(&mut out, Tok::Number(text[i..end].to_owned()), false);
                i = end;
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                let mut end = i;
                while end < bytes.len()
                    && (bytes[end].is_ascii_alphanumeric()
                        || bytes[end] == b'_'
                        || bytes[end] == b'$'
                        || bytes[end] >= 0x80)
                {
                    end += 1;
                }
                push(&mut out, Tok::Ident(text[i..end].to_owned()), false);
                i = end;
            }
            _ => {
                return Err(format!(
                    "unexpected character {:?} at offset {i}",
                    text[i..].chars().next().unwrap_or('?')
                ));
            }
        }
    }
    Ok(out)
}

/// A quoted string starting at `start` (doubled quotes and backslash
/// escapes as MySQL reads them); its text and the offset after it.
fn quoted_string(text: &str, start: usize, quote: u8) -> Result<(String, usize), String> {
    let mut out = String::new();
    let mut chars = text[start + 1..].char_indices();
    while let Some((k, c)) = chars.next() {
        let at = start + 1 + k;
        if c as u32 == u32::from(quote) {
            if text.as_bytes().get(at + 1) == Some(&quote) {
                out.push(c);
                chars.next();
                continue;
            }
            return Ok((out, at + 1));
        }
        if c == '\\' {
            match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, '0')) => out.push('\0'),
                // `\%` and `\_` keep their backslash: LIKE reads them.
                Some((_, e @ ('%' | '_'))) => {
                    out.push('\\');
                    out.push(e);
                }
                Some((_, e)) => out.push(e),
                None => break,
            }
            continue;
        }
        out.push(c);
    }
    Err(format!("unclosed string starting at offset {start}"))
}

struct Parser<'s, F> {
    tokens: Vec<Token>,
    at: usize,
    schema: &'s Schema,
    column_index: &'s F,
}

impl<F: Fn(&str) -> Option<usize>> Parser<'_, F> {
    fn peek_keyword(&self, kw: &str) -> bool {
        matches!(self.tokens.get(self.at), Some(Token { tok: Tok::Ident(s), quoted: false, .. }) if s.eq_ignore_ascii_case(kw))
    }

    fn eat_keyword(&mut self, kw: &str) -> bool {
        let hit = self.peek_keyword(kw);
        if hit {
            self.at += 1;
        }
        hit
    }

    fn expect_keyword(&mut self, kw: &str) -> Result<(), String> {
        if self.eat_keyword(kw) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("`{kw}`")))
        }
    }

    fn unexpected(&self, wanted: &str) -> String {
        match self.tokens.get(self.at) {
            Some(t) => format!("expected {wanted}, found {} at offset {}", t.tok, t.offset),
            None => format!("expected {wanted}, found the end of the condition"),
        }
    }

    fn next_is(&self, tok: &Tok) -> bool {
        self.tokens.get(self.at).is_some_and(|t| &t.tok == tok)
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.eat_keyword("or") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.not()?;
        while self.eat_keyword("and") {
            left = Expr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, String> {
        if self.eat_keyword("not") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        if self.next_is(&Tok::LParen) {
            self.at += 1;
            let inner = self.or()?;
            if !self.next_is(&Tok::RParen) {
                return Err(self.unexpected("`)`"));
            }
            self.at += 1;
            return Ok(inner);
        }
        self.predicate()
    }

    /// `column …` or `literal op column`.
    fn predicate(&mut self) -> Result<Expr, String> {
        let Some(first) = self.tokens.get(self.at) else {
            return Err(self.unexpected("a column"));
        };
        if !matches!(first.tok, Tok::Ident(_)) || self.is_literal_keyword(first) {
            // `5 < amount`: a literal first, then the operator, then the column.
            let lit_at = self.at;
            self.at += 1;
            let op = self
                .cmp_op()
                .ok_or_else(|| self.unexpected("a comparison"))?;
            let col = self.column()?;
            let saved = self.at;
            self.at = lit_at;
            let lit = self.literal(col)?;
            self.at = saved;
            return Ok(Expr::Cmp(col, op.flipped(), lit));
        }
        let col = self.column()?;
        if self.eat_keyword("is") {
            let negated = self.eat_keyword("not");
            self.expect_keyword("null")?;
            return Ok(Expr::IsNull(col, negated));
        }
        let negated = self.eat_keyword("not");
        if self.eat_keyword("in") {
            if !self.next_is(&Tok::LParen) {
                return Err(self.unexpected("`(`"));
            }
            self.at += 1;
            let mut list = vec![self.literal(col)?];
            while self.next_is(&Tok::Comma) {
                self.at += 1;
                list.push(self.literal(col)?);
            }
            if !self.next_is(&Tok::RParen) {
                return Err(self.unexpected("`,` or `)`"));
            }
            self.at += 1;
            return Ok(Expr::In(col, list, negated));
        }
        if self.eat_keyword("between") {
            let low = self.literal(col)?;
            self.expect_keyword("and")?;
            let high = self.literal(col)?;
            let range = Expr::And(
                Box::new(Expr::Cmp(col, CmpOp::Ge, low)),
                Box::new(Expr::Cmp(col, CmpOp::Le, high)),
            );
            return Ok(if negated {
                Expr::Not(Box::new(range))
            } else {
                range
            });
        }
        if self.eat_keyword("like") {
            if kind_of(self.schema.field(col).data_type()) != Some(Kind::Text) {
                return Err(format!(
                    "LIKE needs a text column; `{}` is not one",
                    self.schema.field(col).name()
                ));
            }
            let Some(Token {
                tok: Tok::Str(p), ..
            }) = self.tokens.get(self.at)
            else {
                return Err(self.unexpected("a quoted LIKE pattern"));
            };
            let p = p.clone().into_bytes();
            self.at += 1;
            return Ok(Expr::Like(col, p, negated));
        }
        if negated {
            return Err(self.unexpected("IN, BETWEEN or LIKE after NOT"));
        }
        let op = self
            .cmp_op()
            .ok_or_else(|| self.unexpected("a comparison, IS, IN, BETWEEN or LIKE"))?;
        let lit = self.literal(col)?;
        Ok(Expr::Cmp(col, op, lit))
    }

    fn is_literal_keyword(&self, t: &Token) -> bool {
        matches!(&t.tok, Tok::Ident(s) if !t.quoted && (s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false")))
    }

    fn cmp_op(&mut self) -> Option<CmpOp> {
        let Some(Token {
            tok: Tok::Op(op), ..
        }) = self.tokens.get(self.at)
        else {
            return None;
        };
        let op = match *op {
            "=" => CmpOp::Eq,
            "<>" | "!=" => CmpOp::Ne,
            "<" => CmpOp::Lt,
            "<=" => CmpOp::Le,
            ">" => CmpOp::Gt,
            _ => CmpOp::Ge,
        };
        self.at += 1;
        Some(op)
    }

    fn column(&mut self) -> Result<usize, String> {
        let Some(Token {
            tok: Tok::Ident(name),
            ..
        }) = self.tokens.get(self.at)
        else {
            return Err(self.unexpected("a column"));
        };
        let name = name.clone();
        let index = (self.column_index)(&name).ok_or_else(|| {
            format!(
                "`{name}` is not a synced column of the table (filters see the synced columns only)"
            )
        })?;
        let field = self.schema.field(index);
        if kind_of(field.data_type()).is_none() {
            return Err(format!(
                "`{name}` has a type filters do not support ({})",
                field.data_type()
            ));
        }
        self.at += 1;
        Ok(index)
    }

    /// A literal, read as a value of column `col`'s kind.
    fn literal(&mut self, col: usize) -> Result<Val, String> {
        let field = self.schema.field(col);
        let kind = kind_of(field.data_type()).ok_or("unsupported column type")?;
        let Some(token) = self.tokens.get(self.at) else {
            return Err(self.unexpected("a literal"));
        };
        let bad = |what: &str| {
            format!(
                "{what} {} at offset {} does not fit column `{}` ({})",
                token.tok,
                token.offset,
                field.name(),
                field.data_type()
            )
        };
        let val = match (&token.tok, kind) {
            (Tok::Number(n), Kind::Exact | Kind::Float) => {
                parse_number(n).ok_or_else(|| bad("number"))?
            }
            (Tok::Number(n), Kind::Bool) => match n.as_str() {
                "0" => Val::Int(0),
                "1" => Val::Int(1),
                _ => return Err(bad("number")),
            },
            (Tok::Ident(s), Kind::Bool) if !token.quoted && s.eq_ignore_ascii_case("true") => {
                Val::Int(1)
            }
            (Tok::Ident(s), Kind::Bool) if !token.quoted && s.eq_ignore_ascii_case("false") => {
                Val::Int(0)
            }
            (Tok::Str(s), Kind::Text) => Val::Bytes(s.clone().into_bytes()),
            (Tok::Str(s), Kind::Exact | Kind::Float) => {
                parse_number(s.trim()).ok_or_else(|| bad("string"))?
            }
            (Tok::Str(s), Kind::Date) => Val::Int(parse_date(s).ok_or_else(|| bad("date"))?),
            (Tok::Str(s), Kind::Micros) => {
                Val::Int(parse_datetime(s).ok_or_else(|| bad("datetime"))?)
            }
            (Tok::Str(s), Kind::Time) => Val::Int(parse_time(s).ok_or_else(|| bad("time"))?),
            (Tok::Ident(s), _) if s.eq_ignore_ascii_case("null") && !token.quoted => {
                return Err(format!(
                    "a comparison with NULL at offset {} is never true: use IS NULL / IS NOT NULL",
                    token.offset
                ));
            }
            _ => return Err(bad("literal")),
        };
        self.at += 1;
        Ok(val)
    }
}

fn parse_number(n: &str) -> Option<Val> {
    if n.contains(['e', 'E']) {
        return n
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Val::Float);
    }
    let (neg, digits) = match n.as_bytes().first()? {
        b'-' => (true, &n[1..]),
        b'+' => (false, &n[1..]),
        _ => (false, n),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mantissa: i128 = format!("{int}{frac}").parse().ok()?;
    let scale = u32::try_from(frac.len()).ok()?;
    Some(Val::Num(if neg { -mantissa } else { mantissa }, scale))
}

/// `YYYY-MM-DD` as days since 1970-01-01.
fn parse_date(s: &str) -> Option<i64> {
    let d = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    Some((d - epoch).num_days())
}

/// `YYYY-MM-DD[ HH:MM:SS[.ffffff]]`, read as UTC, in microseconds since the epoch.
fn parse_datetime(s: &str) -> Option<i64> {
    let s = s.trim();
    let dt = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()?
                .and_hms_opt(0, 0, 0)
        })?;
    Some(dt.and_utc().timestamp_micros())
}

/// `[-]HH:MM:SS[.ffffff]` (hours may exceed 24, as TIME allows) in microseconds.
fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, s) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
    let mut parts = s.splitn(3, ':');
    let h: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let sec = parts.next()?;
    let (whole, frac) = sec.split_once('.').unwrap_or((sec, ""));
    let secs: i64 = whole.parse().ok()?;
    if m > 59 || secs > 59 || frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let micros: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}").parse().ok()?
    };
    let total = ((h * 60 + m) * 60 + secs) * 1_000_000 + micros;
    Some(if neg { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{
        ArrayRef, Date32Array, Decimal128Array, Float64Array, Int32Array, StringArray,
        TimestampMicrosecondArray,
    };
    use arrow_schema::Field;
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int32, false),
            Field::new("country", DataType::Utf8, true),
            Field::new("amount", DataType::Decimal128(10, 2), true),
            Field::new("score", DataType::Float64, true),
            Field::new("day", DataType::Date32, true),
            Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        ]);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(vec![1, 2, 3, 4])),
            Arc::new(StringArray::from(vec![
                Some("DE"),
                Some("de"),
                None,
                Some("it's"),
            ])),
            Arc::new(
                Decimal128Array::from(vec![Some(10050), Some(100), None, Some(-5)])
                    .with_precision_and_scale(10, 2)
                    .expect("decimal"),
            ),
            Arc::new(Float64Array::from(vec![0.5, 1.5, 2.5, f64::NAN])),
            Arc::new(Date32Array::from(vec![0, 19723, 19724, 1])),
            Arc::new(TimestampMicrosecondArray::from(vec![
                0,
                1_704_067_200_000_000,
                1_704_067_200_000_001,
                -1,
            ])),
        ];
        RecordBatch::try_new(Arc::new(schema), columns).expect("batch")
    }

    fn rows(text: &str) -> Vec<i32> {
        let b = batch();
        let schema = b.schema();
        let f = RowFilter::compile(text, &schema, |n| {
            schema
                .fields()
                .iter()
                .position(|f| f.name().eq_ignore_ascii_case(n))
        })
        .unwrap_or_else(|e| panic!("{text}: {e}"));
        let mask = f.evaluate(&b);
        let ids = b.column(0).as_primitive::<Int32Type>();
        (0..b.num_rows())
            .filter(|&i| mask.value(i))
            .map(|i| ids.value(i))
            .collect()
    }

    fn error(text: &str) -> String {
        let b = batch();
        let schema = b.schema();
        RowFilter::compile(text, &schema, |n| {
            schema.fields().iter().position(|f| f.name() == n)
        })
        .expect_err(text)
    }

    #[test]
    fn comparisons_follow_sql_with_exact_decimals() {
        assert_eq!(rows("amount > 1"), vec![1]);
        assert_eq!(rows("amount >= 1.00"), vec![1, 2]);
        assert_eq!(rows("amount = 1"), vec![2]);
        assert_eq!(rows("1 < amount"), vec![1]);
        assert_eq!(rows("amount <> 1"), vec![1, 4], "NULL is never unequal");
        assert_eq!(rows("amount < -0.04"), vec![4]);
        assert_eq!(rows("id between 2 and 3"), vec![2, 3]);
        assert_eq!(rows("id not between 2 and 3"), vec![1, 4]);
        assert_eq!(rows("score > 1e0"), vec![2, 3], "NaN compares to nothing");
        assert_eq!(rows("id >= 2.5"), vec![3, 4]);
    }

    #[test]
    fn strings_compare_bytewise_and_like_matches() {
        assert_eq!(rows("country = 'DE'"), vec![1]);
        assert_eq!(rows("country in ('de', 'FR')"), vec![2]);
        assert_eq!(rows("country not in ('de')"), vec![1, 4]);
        assert_eq!(rows("country like 'd%'"), vec![2]);
        assert_eq!(rows("country like '_E'"), vec![1]);
        assert_eq!(rows("country like 'it''s'"), vec![4]);
        assert_eq!(rows("country not like '%e%'"), vec![1, 4]);
        assert_eq!(rows(r"country like 'it\'s'"), vec![4]);
        assert!(like(b"50%", br"50\%"));
        assert!(!like(b"500", br"50\%"));
        assert!(like(b"abcabd", b"%ab_"));
        assert!(like("ünï".as_bytes(), "_n_".as_bytes()));
    }

    #[test]
    fn null_logic_is_three_valued() {
        assert_eq!(rows("country is null"), vec![3]);
        assert_eq!(
            rows("country is not null and amount is not null"),
            vec![1, 2, 4]
        );
        assert_eq!(
            rows("not (country = 'DE')"),
            vec![2, 4],
            "NOT unknown is unknown"
        );
        assert_eq!(rows("country = 'DE' or id = 3"), vec![1, 3]);
        assert_eq!(
            rows("(country = 'xx' or amount > 0) and id < 4"),
            vec![1, 2]
        );
    }

    #[test]
    fn dates_and_datetimes_read_as_utc() {
        assert_eq!(rows("day >= '2024-01-01'"), vec![2, 3]);
        assert_eq!(rows("at = '2024-01-01 00:00:00'"), vec![2]);
        assert_eq!(rows("at > '2024-01-01'"), vec![3]);
        assert_eq!(rows("at < '1970-01-01 00:00:00.000001'"), vec![1, 4]);
        assert_eq!(parse_time("-838:59:59.5"), Some(-3_020_399_500_000));
    }

    #[test]
    fn mistakes_are_named() {
        assert!(
            error("nope = 1").contains("`nope` is not a synced column"),
            "{}",
            error("nope = 1")
        );
        assert!(error("id = 'x'").contains("does not fit column `id`"));
        assert!(error("id = NULL").contains("use IS NULL"));
        assert!(error("id = 1 and").contains("found the end"));
        assert!(error("id = 1 id").contains("unexpected `id` at offset 7"));
        assert!(error("country like 5").contains("quoted LIKE pattern"));
        assert!(error("id like 'a'").contains("LIKE needs a text column"));
        assert!(error("country = 'open").contains("unclosed string"));
        assert!(error("id ! 1").contains("unexpected `!`"));
        assert!(error("day = '2024-13-01'").contains("does not fit column `day`"));
    }
}
