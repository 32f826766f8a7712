//! The Tunnel's protobuf record format (the SDK's record writer and reader):
//! tagged fields per record, a CRC32C per record, and a trailer with the
//! record count and a CRC over the record CRCs.

use crate::error::OdpsError;
use crate::odps_type::OdpsType;
use crate::value::Value;

/// Field number that ends a record; its value is the record's CRC.
const END_RECORD: u32 = 33_553_408;
/// Field number of the metrics JSON some servers send before the trailer.
const END_METRICS: u32 = 33_554_176;
/// Field number of the record count in the trailer.
const META_COUNT: u32 = 33_554_430;
/// Field number of the CRC over record CRCs in the trailer.
const META_CHECKSUM: u32 = 33_554_431;

const WT_VARINT: u32 = 0;
const WT_FIXED64: u32 = 1;
const WT_LEN: u32 = 2;
const WT_FIXED32: u32 = 5;

fn bad(message: impl Into<String>) -> OdpsError {
    OdpsError::new(
        400,
        "MalformedDataStream",
        format!("ODPS-0420061: Malformed record data - {}", message.into()),
    )
}

/// Decodes a whole upload body into rows of values (data columns only).
pub fn decode(body: &[u8], columns: &[OdpsType]) -> Result<Vec<Vec<Value>>, OdpsError> {
    let mut r = Reader {
        buf: body,
        pos: 0,
        crc: 0,
    };
    let mut rows = Vec::new();
    let mut row = vec![Value::Null; columns.len()];
    let mut crc_of_crcs = 0u32;
    let mut count_seen = None;
    while r.pos < body.len() {
        let tag = r.varint()?;
        let field = u32::try_from(tag >> 3).map_err(|_| bad("field number out of range"))?;
        let wire_type = (tag & 7) as u32;
        match field {
            END_RECORD => {
                let sent = r.varint()? as u32;
                if sent != r.crc {
                    return Err(bad(format!("record {} checksum mismatch", rows.len())));
                }
                crc_of_crcs = crc32c::crc32c_append(crc_of_crcs, &sent.to_le_bytes());
                r.crc = 0;
                rows.push(std::mem::replace(
                    &mut row,
                    vec![Value::Null; columns.len()],
                ));
            }
            META_COUNT => count_seen = Some(unzigzag(r.varint()?)),
            META_CHECKSUM => {
                let sent = r.varint()? as u32;
                if sent != crc_of_crcs {
                    return Err(bad("stream checksum mismatch"));
                }
                if count_seen != Some(rows.len() as i64) {
                    return Err(bad(format!(
                        "record count {count_seen:?} does not match {} records",
                        rows.len()
                    )));
                }
                if r.pos != body.len() {
                    return Err(bad("data after the stream trailer"));
                }
                return Ok(rows);
            }
            END_METRICS => {
                let len = r.len()?;
                r.take(len)?;
            }
            _ => {
                let index = (field as usize)
                    .checked_sub(1)
                    .filter(|i| *i < columns.len())
                    .ok_or_else(|| bad(format!("field {field} is not a column")))?;
                let ty = &columns[index];
                let expected = wire_type_of(ty);
                if wire_type != expected {
                    return Err(bad(format!(
                        "field {field} has wire type {wire_type}, expected {expected}"
                    )));
                }
                r.crc = crc32c::crc32c_append(r.crc, &(field as i32).to_le_bytes());
                row[index] = r.value(ty)?;
            }
        }
    }
    Err(bad("stream ended without its trailer"))
}

/// Encodes rows (data columns only) with the trailer, as a download body.
pub fn encode(rows: &[Vec<Value>], columns: &[OdpsType]) -> Result<Vec<u8>, OdpsError> {
    let mut w = Writer {
        out: Vec::new(),
        crc: 0,
    };
    let mut crc_of_crcs = 0u32;
    for row in rows {
        for (i, (ty, v)) in columns.iter().zip(row).enumerate() {
            if *v == Value::Null {
                continue;
            }
            let field = u32::try_from(i + 1).map_err(|_| bad("too many columns"))?;
            w.crc = crc32c::crc32c_append(w.crc, &(field as i32).to_le_bytes());
            w.tag(field, wire_type_of(ty));
            w.value(ty, v)?;
        }
        let crc = w.crc;
        w.tag(END_RECORD, WT_VARINT);
        w.varint(u64::from(crc));
        crc_of_crcs = crc32c::crc32c_append(crc_of_crcs, &crc.to_le_bytes());
        w.crc = 0;
    }
    w.tag(META_COUNT, WT_VARINT);
    w.varint(zigzag(rows.len() as i64));
    w.tag(META_CHECKSUM, WT_VARINT);
    w.varint(u64::from(crc_of_crcs));
    Ok(w.out)
}

fn wire_type_of(ty: &OdpsType) -> u32 {
    match ty {
        OdpsType::Boolean
        | OdpsType::TinyInt
        | OdpsType::SmallInt
        | OdpsType::Int
        | OdpsType::BigInt
        | OdpsType::Date
        | OdpsType::DateTime => WT_VARINT,
        OdpsType::Float => WT_FIXED32,
        OdpsType::Double => WT_FIXED64,
        _ => WT_LEN,
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    crc: u32,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, OdpsError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or_else(|| bad("truncated varint"))?;
            self.pos += 1;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(bad("varint too long"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], OdpsError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| bad("truncated field"))?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn len(&mut self) -> Result<usize, OdpsError> {
        usize::try_from(self.varint()?).map_err(|_| bad("length out of range"))
    }

    fn long(&mut self) -> Result<i64, OdpsError> {
        let v = unzigzag(self.varint()?);
        self.crc = crc32c::crc32c_append(self.crc, &v.to_le_bytes());
        Ok(v)
    }

    fn flag(&mut self) -> Result<bool, OdpsError> {
        Ok(self.varint()? != 0)
    }

    fn value(&mut self, ty: &OdpsType) -> Result<Value, OdpsError> {
        Ok(match ty {
            OdpsType::Boolean => {
                let v = self.flag()?;
                self.crc = crc32c::crc32c_append(self.crc, &[u8::from(v)]);
                Value::Bool(v)
            }
            OdpsType::TinyInt | OdpsType::SmallInt | OdpsType::Int | OdpsType::BigInt => {
                Value::Int(self.long()?)
            }
            OdpsType::Date => Value::Date(self.long()?),
            OdpsType::DateTime => Value::DateTime(self.long()?),
            OdpsType::Float => {
                let b = self.take(4)?;
                self.crc = crc32c::crc32c_append(self.crc, b);
                Value::Float(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            OdpsType::Double => {
                let b = self.take(8)?;
                self.crc = crc32c::crc32c_append(self.crc, b);
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Value::Double(f64::from_le_bytes(a))
            }
            OdpsType::Timestamp | OdpsType::TimestampNtz => {
                let sec = self.long()?;
                let nanos = i32::try_from(unzigzag(self.varint()?))
                    .map_err(|_| bad("nanoseconds out of range"))?;
                self.crc = crc32c::crc32c_append(self.crc, &nanos.to_le_bytes());
                Value::Timestamp(sec, nanos)
            }
            OdpsType::Decimal(_) => {
                let n = self.len()?;
                let b = self.take(n)?;
                self.crc = crc32c::crc32c_append(self.crc, b);
                Value::Decimal(
                    String::from_utf8(b.to_vec()).map_err(|_| bad("decimal is not text"))?,
                )
            }
            OdpsType::String
            | OdpsType::Varchar(_)
            | OdpsType::Char(_)
            | OdpsType::Json
            | OdpsType::Binary => {
                let n = self.len()?;
                let b = self.take(n)?;
                self.crc = crc32c::crc32c_append(self.crc, b);
                Value::Bytes(b.to_vec())
            }
            OdpsType::Array(item) => Value::Array(self.list(item)?),
            OdpsType::Map(k, v) => {
                let keys = self.list(k)?;
                let values = self.list(v)?;
                if keys.len() != values.len() {
                    return Err(bad("map with different key and value counts"));
                }
                Value::Map(keys.into_iter().zip(values).collect())
            }
            OdpsType::Struct(fields) => Value::Struct(
                fields
                    .iter()
                    .map(|(_, ft)| {
                        if self.flag()? {
                            Ok(Value::Null)
                        } else {
                            self.value(ft)
                        }
                    })
                    .collect::<Result<_, _>>()?,
            ),
        })
    }

    fn list(&mut self, item: &OdpsType) -> Result<Vec<Value>, OdpsError> {
        let n = self.len()?;
        if n > self.buf.len() - self.pos {
            return Err(bad("array longer than the data"));
        }
        (0..n)
            .map(|_| {
                if self.flag()? {
                    Ok(Value::Null)
                } else {
                    self.value(item)
                }
            })
            .collect()
    }
}

struct Writer {
    out: Vec<u8>,
    crc: u32,
}

impl Writer {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    fn tag(&mut self, field: u32, wire_type: u32) {
        self.varint(u64::from((field << 3) | wire_type));
    }

    fn long(&mut self, v: i64) {
        self.crc = crc32c::crc32c_append(self.crc, &v.to_le_bytes());
        self.varint(zigzag(v));
    }

    fn bytes(&mut self, b: &[u8]) {
        self.crc = crc32c::crc32c_append(self.crc, b);
        self.varint(b.len() as u64);
        self.out.extend_from_slice(b);
    }

    fn value(&mut self, ty: &OdpsType, v: &Value) -> Result<(), OdpsError> {
        let mismatch =
            || OdpsError::internal(format!("stored value {v:?} does not match type {ty}"));
        match (ty, v) {
            (OdpsType::Boolean, Value::Bool(b)) => {
                self.crc = crc32c::crc32c_append(self.crc, &[u8::from(*b)]);
                self.varint(u64::from(*b));
            }
            (_, Value::Int(i) | Value::Date(i) | Value::DateTime(i)) => self.long(*i),
            (OdpsType::Float, Value::Float(f)) => {
                self.crc = crc32c::crc32c_append(self.crc, &f.to_le_bytes());
                self.out.extend_from_slice(&f.to_le_bytes());
            }
            (OdpsType::Double, Value::Double(f)) => {
                self.crc = crc32c::crc32c_append(self.crc, &f.to_le_bytes());
                self.out.extend_from_slice(&f.to_le_bytes());
            }
            (_, Value::Timestamp(sec, nanos)) => {
                self.long(*sec);
                self.crc = crc32c::crc32c_append(self.crc, &nanos.to_le_bytes());
                self.varint(zigzag(i64::from(*nanos)));
            }
            (_, Value::Decimal(text)) => self.bytes(text.as_bytes()),
            (_, Value::Bytes(b)) => self.bytes(b),
            (OdpsType::Array(item), Value::Array(items)) => self.list(item, items.iter())?,
            (OdpsType::Map(kt, vt), Value::Map(entries)) => {
                self.list(kt, entries.iter().map(|(k, _)| k))?;
                self.list(vt, entries.iter().map(|(_, v)| v))?;
            }
            (OdpsType::Struct(fields), Value::Struct(items)) => {
                for ((_, ft), x) in fields.iter().zip(items) {
                    self.varint(u64::from(*x == Value::Null));
                    if *x != Value::Null {
                        self.value(ft, x)?;
                    }
                }
            }
            _ => return Err(mismatch()),
        }
        Ok(())
    }

    fn list<'v>(
        &mut self,
        item: &OdpsType,
        items: impl ExactSizeIterator<Item = &'v Value>,
    ) -> Result<(), OdpsError> {
        self.varint(items.len() as u64);
        for x in items {
            self.varint(u64::from(*x == Value::Null));
            if *x != Value::Null {
                self.value(item, x)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_with_checksums() {
        let columns: Vec<OdpsType> = [
            "bigint",
            "string",
            "timestamp",
            "array<double>",
            "struct<a:boolean,b:date>",
            "map<string,float>",
        ]
        .iter()
        .map(|t| OdpsType::parse(t).unwrap())
        .collect();
        let rows = vec![
            vec![
                Value::Int(-5),
                Value::Bytes(b"hi".to_vec()),
                Value::Timestamp(1_700_000_000, 123_456_789),
                Value::Array(vec![Value::Double(1.5), Value::Null]),
                Value::Struct(vec![Value::Bool(true), Value::Null]),
                Value::Map(vec![(Value::Bytes(b"k".to_vec()), Value::Float(2.5))]),
            ],
            vec![Value::Null; 6],
        ];
        let bytes = encode(&rows, &columns).unwrap();
        assert_eq!(decode(&bytes, &columns).unwrap(), rows);
        let mut corrupt = bytes.clone();
        corrupt[3] ^= 1;
        assert!(decode(&corrupt, &columns).is_err());
        assert!(decode(&bytes[..bytes.len() - 1], &columns).is_err());
    }
}
