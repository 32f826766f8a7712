//! MySQL binary JSON, decoded lazily: [`Json`] wraps the bytes of a value,
//! [`Json::value`] looks at the top level without copying, and
//! [`Json::to_json_text`] renders the whole document (this allocates).
//! [`JsonDiff`] is the partial-update form with [`JsonDiff::apply`].

use std::fmt::Write as _;

use crate::decimal::{Decimal, decimal_size};
use crate::temporal::{DateTime, Time};

const MAX_DEPTH: usize = 100;

/// A MySQL binary JSON document (type byte + value). Empty = JSON null.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Json<'a> {
    data: &'a [u8],
}

/// One JSON node, borrowing from the document.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum JsonValue<'a> {
    /// null
    Null,
    /// true / false
    Bool(bool),
    /// Signed integer.
    Int(i64),
    /// Unsigned integer.
    UInt(u64),
    /// Double.
    Double(f64),
    /// UTF-8 string bytes.
    String(&'a [u8]),
    /// Object.
    Object(JsonContainer<'a>),
    /// Array.
    Array(JsonContainer<'a>),
    /// Opaque MySQL value: `(mysql field type, bytes)`.
    Opaque(u8, &'a [u8]),
}

/// An object or array inside a binary JSON document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonContainer<'a> {
    body: &'a [u8],
    large: bool,
    count: usize,
}

/// Error for malformed binary JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed binary JSON: {0}")]
pub struct JsonError(pub &'static str);

type JResult<T> = Result<T, JsonError>;

fn rd(b: &[u8], pos: usize, n: usize) -> JResult<u64> {
    let s = b
        .get(pos..pos.checked_add(n).ok_or(JsonError("offset overflow"))?)
        .ok_or(JsonError("offset outside the document"))?;
    Ok(s.iter().rev().fold(0u64, |a, &x| a << 8 | u64::from(x)))
}

fn varlen_len(b: &[u8], pos: usize) -> JResult<(usize, usize)> {
    let mut len = 0usize;
    for k in 0..5 {
        let byte = *b
            .get(pos + k)
            .ok_or(JsonError("string length past the end"))?;
        len |= usize::from(byte & 0x7f) << (7 * k);
        if byte & 0x80 == 0 {
            return Ok((len, k + 1));
        }
    }
    Err(JsonError("string length longer than 5 bytes"))
}

/// Parses the value of `type_code` stored at `b[pos..]` (`b` = container body
/// or scalar bytes).
fn parse_at(type_code: u8, b: &[u8], pos: usize) -> JResult<JsonValue<'_>> {
    Ok(match type_code {
        0..=3 => {
            let large = type_code & 1 == 1;
            let w = if large { 4 } else { 2 };
            let body = b
                .get(pos..)
                .ok_or(JsonError("container offset past the end"))?;
            let count = rd(body, 0, w)? as usize;
            let size = rd(body, w, w)? as usize;
            if size > body.len() || size < 2 * w {
                return Err(JsonError("container size exceeds the document"));
            }
            let body = &body[..size];
            let c = JsonContainer { body, large, count };
            // every entry needs at least its header bytes
            let per = if type_code < 2 { w + 2 + 1 + w } else { 1 + w };
            if count.saturating_mul(per) > size {
                return Err(JsonError("element count exceeds the container"));
            }
            if type_code < 2 {
                JsonValue::Object(c)
            } else {
                JsonValue::Array(c)
            }
        }
        4 => match b.get(pos) {
            Some(0) => JsonValue::Null,
            Some(1) => JsonValue::Bool(true),
            Some(2) => JsonValue::Bool(false),
            _ => return Err(JsonError("bad literal")),
        },
        5 => JsonValue::Int(i64::from(rd(b, pos, 2)? as u16 as i16)),
        6 => JsonValue::UInt(rd(b, pos, 2)?),
        7 => JsonValue::Int(i64::from(rd(b, pos, 4)? as u32 as i32)),
        8 => JsonValue::UInt(rd(b, pos, 4)?),
        9 => JsonValue::Int(rd(b, pos, 8)? as i64),
        10 => JsonValue::UInt(rd(b, pos, 8)?),
        11 => JsonValue::Double(f64::from_bits(rd(b, pos, 8)?)),
        12 => {
            let (len, n) = varlen_len(b, pos)?;
            let s = b
                .get(pos + n..pos + n + len)
                .ok_or(JsonError("string past the end"))?;
            JsonValue::String(s)
        }
        15 => {
            let t = *b.get(pos).ok_or(JsonError("opaque past the end"))?;
            let (len, n) = varlen_len(b, pos + 1)?;
            let s = b
                .get(pos + 1 + n..pos + 1 + n + len)
                .ok_or(JsonError("opaque past the end"))?;
            JsonValue::Opaque(t, s)
        }
        _ => return Err(JsonError("unknown value type")),
    })
}

impl<'a> JsonContainer<'a> {
    fn w(&self) -> usize {
        if self.large { 4 } else { 2 }
    }

    /// Number of members / elements.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn is_object(&self, obj: bool) -> usize {
        if obj { self.count * (self.w() + 2) } else { 0 }
    }

    /// Key `i` of an object.
    pub fn key(&self, i: usize) -> JResult<&'a [u8]> {
        let w = self.w();
        let e = 2 * w + i * (w + 2);
        let off = rd(self.body, e, w)? as usize;
        let len = rd(self.body, e + w, 2)? as usize;
        self.body
            .get(off..off + len)
            .ok_or(JsonError("key past the end"))
    }

    /// Element / member value `i` (`object` says which kind this is).
    pub fn value(&self, i: usize, object: bool) -> JResult<JsonValue<'a>> {
        let w = self.w();
        let e = 2 * w + self.is_object(object) + i * (1 + w);
        let t = *self.body.get(e).ok_or(JsonError("entry past the end"))?;
        let inlined = matches!(t, 4..=6) || (self.large && matches!(t, 7 | 8));
        if inlined {
            parse_at(t, self.body, e + 1)
        } else {
            let off = rd(self.body, e + 1, w)? as usize;
            parse_at(t, self.body, off)
        }
    }
}

impl<'a> Json<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Json { data }
    }

    /// Wraps raw binary JSON bytes (type byte first).
    pub fn from_bytes(data: &'a [u8]) -> Self {
        Json { data }
    }

    /// The raw binary document.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.data
    }

    /// The top-level node.
    ///
    /// # Errors
    /// [`JsonError`] if the type byte or the top-level header is malformed.
    pub fn value(&self) -> JResult<JsonValue<'a>> {
        match self.data.split_first() {
            None => Ok(JsonValue::Null),
            Some((&t, rest)) => parse_at(t, rest, 0),
        }
    }

    /// Renders the document as JSON text the way MySQL prints it
    /// (`{"a": 1, "b": [true, null]}`).
    ///
    /// # Errors
    /// [`JsonError`] if any part of the document is malformed.
    pub fn to_json_text(&self) -> JResult<String> {
        let mut out = String::with_capacity(self.data.len() * 2);
        let mut budget = self.data.len() + 1;
        write_value(&mut out, self.value()?, 0, &mut budget)?;
        Ok(out)
    }
}

fn write_str(out: &mut String, s: &[u8]) {
    out.push('"');
    for ch in String::from_utf8_lossy(s).chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(out: &mut String, data: &[u8]) {
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
}

fn write_opaque(out: &mut String, t: u8, data: &[u8]) -> JResult<()> {
    let packed = || -> JResult<i64> {
        let b: [u8; 8] = data
            .get(..8)
            .and_then(|s| s.try_into().ok())
            .ok_or(JsonError("short packed temporal"))?;
        Ok(i64::from_le_bytes(b))
    };
    match t {
        246 => {
            let (&p, rest) = data.split_first().ok_or(JsonError("short decimal"))?;
            let (&s, bytes) = rest.split_first().ok_or(JsonError("short decimal"))?;
            if bytes.len() < decimal_size(p, s) || p == 0 || s > p {
                return Err(JsonError("short decimal"));
            }
            let _ = write!(
                out,
                "{}",
                Decimal {
                    precision: p,
                    scale: s,
                    bytes
                }
            );
        }
        10 | 14 => {
            let dt = datetime_from_packed(packed()?);
            let _ = write!(out, "\"{:04}-{:02}-{:02}\"", dt.year, dt.month, dt.day);
        }
        7 | 12 | 17 | 18 => {
            let dt = datetime_from_packed(packed()?);
            let _ = write!(
                out,
                "\"{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}\"",
                dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, dt.micros
            );
        }
        11 | 19 => {
            let p = packed()?;
            let neg = p < 0;
            let a = p.unsigned_abs();
            let hms = a >> 24;
            let t = Time {
                negative: neg,
                hours: ((hms >> 12) % (1 << 10)) as u16,
                minutes: ((hms >> 6) % 64) as u8,
                seconds: (hms % 64) as u8,
                micros: (a % (1 << 24)) as u32,
            };
            let _ = write!(
                out,
                "\"{}{:02}:{:02}:{:02}.{:06}\"",
                if t.negative { "-" } else { "" },
                t.hours,
                t.minutes,
                t.seconds,
                t.micros
            );
        }
        _ => {
            let _ = write!(out, "\"base64:type{t}:");
            base64(out, data);
            out.push('"');
        }
    }
    Ok(())
}

fn datetime_from_packed(p: i64) -> DateTime {
    let a = p.unsigned_abs();
    let ymdhms = a >> 24;
    let ymd = ymdhms >> 17;
    let ym = ymd >> 5;
    let hms = ymdhms % (1 << 17);
    DateTime {
        year: (ym / 13) as u16,
        month: (ym % 13) as u8,
        day: (ymd % 32) as u8,
        hour: (hms >> 12) as u8,
        minute: ((hms >> 6) % 64) as u8,
        second: (hms % 64) as u8,
        micros: (a % (1 << 24)) as u32,
    }
}

fn write_double(out: &mut String, d: f64) {
    if d.is_finite() && d == d.trunc() && d.abs() < 1e15 {
        let _ = write!(out, "{d:.1}");
    } else {
        let _ = write!(out, "{d}");
    }
}

/// `budget` = nodes left to visit. A real document stores every node in at
/// least one byte, so more nodes than bytes means entries share offsets (a
/// corrupt or hostile document that would render exponentially).
fn write_value(
    out: &mut String,
    v: JsonValue<'_>,
    depth: usize,
    budget: &mut usize,
) -> JResult<()> {
    if depth > MAX_DEPTH {
        return Err(JsonError("nesting deeper than 100"));
    }
    *budget = budget
        .checked_sub(1)
        .ok_or(JsonError("more nodes than the document has bytes"))?;
    match v {
        JsonValue::Null => out.push_str("null"),
        JsonValue::Bool(b) => out.push_str(if b { "true" } else { "false" }),
        JsonValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        JsonValue::UInt(u) => {
            let _ = write!(out, "{u}");
        }
        JsonValue::Double(d) => write_double(out, d),
        JsonValue::String(s) => write_str(out, s),
        JsonValue::Opaque(t, d) => write_opaque(out, t, d)?,
        JsonValue::Object(c) => {
            out.push('{');
            for i in 0..c.len() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str(out, c.key(i)?);
                out.push_str(": ");
                write_value(out, c.value(i, true)?, depth + 1, budget)?;
            }
            out.push('}');
        }
        JsonValue::Array(c) => {
            out.push('[');
            for i in 0..c.len() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, c.value(i, false)?, depth + 1, budget)?;
            }
            out.push(']');
        }
    }
    Ok(())
}

// ---- partial updates -------------------------------------------------------

/// Operation of one JSON diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonDiffOp {
    /// Replace the value at the path.
    Replace,
    /// Insert a value at the path.
    Insert,
    /// Remove the value at the path.
    Remove,
}

/// One diff: operation, JSON path text (`$.a[1]`) and the new value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonDiffEntry<'a> {
    /// Operation.
    pub op: JsonDiffOp,
    /// Path in MySQL JSON path syntax.
    pub path: &'a [u8],
    /// New value (not for Remove).
    pub value: Option<Json<'a>>,
}

/// A partial JSON update: a list of diffs to apply to the previous document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonDiff<'a> {
    data: &'a [u8],
}

fn packed_len(b: &[u8], pos: &mut usize) -> JResult<usize> {
    let first = *b.get(*pos).ok_or(JsonError("diff past the end"))?;
    *pos += 1;
    let n = match first {
        0..=250 => return Ok(usize::from(first)),
        0xfc => 2,
        0xfd => 3,
        0xfe => 8,
        _ => return Err(JsonError("bad packed length in diff")),
    };
    let v = rd(b, *pos, n)?;
    *pos += n;
    usize::try_from(v).map_err(|_| JsonError("length overflow"))
}

impl<'a> JsonDiff<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        JsonDiff { data }
    }

    /// Raw diff bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.data
    }

    /// Iterates the diffs.
    pub fn entries(&self) -> impl Iterator<Item = JResult<JsonDiffEntry<'a>>> + 'a {
        let data = self.data;
        let mut pos = 0usize;
        let mut failed = false;
        std::iter::from_fn(move || {
            if failed || pos >= data.len() {
                return None;
            }
            let r = (|| {
                let op = match data[pos] {
                    0 => JsonDiffOp::Replace,
                    1 => JsonDiffOp::Insert,
                    2 => JsonDiffOp::Remove,
                    _ => return Err(JsonError("unknown diff operation")),
                };
                pos += 1;
                let plen = packed_len(data, &mut pos)?;
                // checked: a hostile length must not overflow the end.
                let path = pos
                    .checked_add(plen)
                    .and_then(|end| data.get(pos..end))
                    .ok_or(JsonError("path past the end"))?;
                pos += plen;
                let value = if op == JsonDiffOp::Remove {
                    None
                } else {
                    let vlen = packed_len(data, &mut pos)?;
                    let v = pos
                        .checked_add(vlen)
                        .and_then(|end| data.get(pos..end))
                        .ok_or(JsonError("value past the end"))?;
                    pos += vlen;
                    Some(Json::new(v))
                };
                Ok(JsonDiffEntry { op, path, value })
            })();
            failed = r.is_err();
            Some(r)
        })
    }

    /// Applies the diffs to `before` and renders the resulting document as
    /// JSON text (the after image).
    ///
    /// # Errors
    /// [`JsonError`] if a document, diff or path is malformed or a path does
    /// not exist in the document.
    pub fn apply(&self, before: &Json<'_>) -> JResult<String> {
        let mut doc = Node::from_value(before.value()?, 0, &mut (before.as_bytes().len() + 1))?;
        for e in self.entries() {
            let e = e?;
            let path = parse_path(e.path)?;
            let new = match e.value {
                Some(v) => Some(Node::from_value(
                    v.value()?,
                    0,
                    &mut (v.as_bytes().len() + 1),
                )?),
                None => None,
            };
            doc.apply(&path, e.op, new)?;
        }
        let mut out = String::new();
        doc.write(&mut out);
        Ok(out)
    }
}

/// Owned JSON tree used only to apply diffs.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
enum Leg {
    Key(String),
    Index(usize),
}

fn parse_path(p: &[u8]) -> JResult<Vec<Leg>> {
    let s = std::str::from_utf8(p).map_err(|_| JsonError("path is not UTF-8"))?;
    let s = s.trim();
    let mut rest = s
        .strip_prefix('$')
        .ok_or(JsonError("path does not start with $"))?;
    let mut legs = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            if let Some(r2) = r.strip_prefix('"') {
                let mut key = String::new();
                let mut chars = r2.char_indices();
                let mut end = None;
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, n)) = chars.next() {
                                key.push(n);
                            }
                        }
                        '"' => {
                            end = Some(i);
                            break;
                        }
                        c => key.push(c),
                    }
                }
                let end = end.ok_or(JsonError("unterminated quoted key in path"))?;
                legs.push(Leg::Key(key));
                rest = &r2[end + 1..];
            } else {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                legs.push(Leg::Key(r[..end].to_owned()));
                rest = &r[end..];
            }
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or(JsonError("unterminated [ in path"))?;
            let idx = r[..end]
                .trim()
                .parse::<usize>()
                .map_err(|_| JsonError("bad array index in path"))?;
            legs.push(Leg::Index(idx));
            rest = &r[end + 1..];
        } else {
            return Err(JsonError("bad path syntax"));
        }
    }
    Ok(legs)
}

impl Node {
    fn from_value(v: JsonValue<'_>, depth: usize, budget: &mut usize) -> JResult<Node> {
        if depth > MAX_DEPTH {
            return Err(JsonError("nesting deeper than 100"));
        }
        *budget = budget
            .checked_sub(1)
            .ok_or(JsonError("more nodes than the document has bytes"))?;
        Ok(match v {
            JsonValue::Object(c) => {
                let mut m = Vec::with_capacity(c.len());
                for i in 0..c.len() {
                    let k = String::from_utf8_lossy(c.key(i)?).into_owned();
                    m.push((k, Node::from_value(c.value(i, true)?, depth + 1, budget)?));
                }
                Node::Object(m)
            }
            JsonValue::Array(c) => {
                let mut a = Vec::with_capacity(c.len());
                for i in 0..c.len() {
                    a.push(Node::from_value(c.value(i, false)?, depth + 1, budget)?);
                }
                Node::Array(a)
            }
            scalar => {
                let mut s = String::new();
                write_value(&mut s, scalar, depth, &mut 1)?;
                Node::Text(s)
            }
        })
    }

    fn apply(&mut self, path: &[Leg], op: JsonDiffOp, new: Option<Node>) -> JResult<()> {
        let Some((last, parents)) = path.split_last() else {
            // The whole document.
            return match (op, new) {
                (JsonDiffOp::Replace, Some(n)) => {
                    *self = n;
                    Ok(())
                }
                _ => Err(JsonError("cannot insert or remove the root")),
            };
        };
        let mut node = self;
        for leg in parents {
            node = match (node, leg) {
                (Node::Object(m), Leg::Key(k)) => m
                    .iter_mut()
                    .find(|(kk, _)| kk == k)
                    .map(|(_, v)| v)
                    .ok_or(JsonError("path not found in document"))?,
                (Node::Array(a), Leg::Index(i)) => a
                    .get_mut(*i)
                    .ok_or(JsonError("path not found in document"))?,
                _ => return Err(JsonError("path not found in document")),
            };
        }
        match (node, last, op) {
            (Node::Object(m), Leg::Key(k), JsonDiffOp::Remove) => {
                m.retain(|(kk, _)| kk != k);
            }
            (Node::Object(m), Leg::Key(k), _) => {
                let n = new.ok_or(JsonError("diff without value"))?;
                if let Some(slot) = m.iter_mut().find(|(kk, _)| kk == k) {
                    slot.1 = n;
                } else {
                    m.push((k.clone(), n));
                    // MySQL keeps keys sorted by length, then bytes.
                    m.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then_with(|| a.0.cmp(&b.0)));
                }
            }
            (Node::Array(a), Leg::Index(i), JsonDiffOp::Remove) => {
                if *i < a.len() {
                    a.remove(*i);
                }
            }
            (Node::Array(a), Leg::Index(i), JsonDiffOp::Insert) => {
                let n = new.ok_or(JsonError("diff without value"))?;
                let at = (*i).min(a.len());
                a.insert(at, n);
            }
            (Node::Array(a), Leg::Index(i), JsonDiffOp::Replace) => {
                let n = new.ok_or(JsonError("diff without value"))?;
                *a.get_mut(*i)
                    .ok_or(JsonError("path not found in document"))? = n;
            }
            _ => return Err(JsonError("path does not match the document")),
        }
        Ok(())
    }

    fn write(&self, out: &mut String) {
        match self {
            Node::Text(s) => out.push_str(s),
            Node::Array(a) => {
                out.push('[');
                for (i, n) in a.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    n.write(out);
                }
                out.push(']');
            }
            Node::Object(m) => {
                out.push('{');
                for (i, (k, n)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_str(out, k.as_bytes());
                    out.push_str(": ");
                    n.write(out);
                }
                out.push('}');
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn small_object() {
        // {"a": 1} : type 0, count 1, size, key entry, value entry (int16 inline), key
        let body: Vec<u8> = vec![
            1, 0, // count
            12, 0, // size
            11, 0, 1, 0, // key offset 11, len 1
            5, 1, 0, // int16 = 1 inlined
            b'a',
        ];
        let mut doc = vec![0u8];
        doc.extend_from_slice(&body);
        assert_eq!(Json::new(&doc).to_json_text().unwrap(), "{\"a\": 1}");
    }

    #[test]
    fn paths() {
        assert_eq!(
            parse_path(b"$.a[2].\"b c\"").unwrap(),
            vec![Leg::Key("a".into()), Leg::Index(2), Leg::Key("b c".into())]
        );
    }
}
