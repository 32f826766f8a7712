//! TABLE_MAP_EVENT (19): the definition (types, metadata, nullability and,
//! with `binlog_row_metadata`, names, signedness, charsets, ENUM/SET strings…)
//! of the table the following rows events change.

use crate::error::{Error, Result};
use crate::events::format_description::FormatDescription;
use crate::header::EventType;
use crate::parse::{PResult, fail, packed, packed_bytes, run, take, u8_, u16_, u32_, u48_};

/// Column type as MySQL's `enum_field_types`, after the STRING real-type trick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ColumnType {
    /// 0: pre-5.0 ASCII DECIMAL.
    Decimal,
    /// 1: TINYINT.
    Tiny,
    /// 2: SMALLINT.
    Short,
    /// 3: INT.
    Long,
    /// 4: FLOAT.
    Float,
    /// 5: DOUBLE.
    Double,
    /// 6: NULL type.
    Null,
    /// 7: old TIMESTAMP.
    Timestamp,
    /// 8: BIGINT.
    LongLong,
    /// 9: MEDIUMINT.
    Int24,
    /// 10: DATE.
    Date,
    /// 11: old TIME.
    Time,
    /// 12: old DATETIME.
    DateTime,
    /// 13: YEAR.
    Year,
    /// 14: NEWDATE (never in binlogs).
    NewDate,
    /// 15: VARCHAR / VARBINARY.
    VarChar,
    /// 16: BIT.
    Bit,
    /// 17: TIMESTAMP with fractional seconds.
    Timestamp2,
    /// 18: DATETIME with fractional seconds.
    DateTime2,
    /// 19: TIME with fractional seconds.
    Time2,
    /// 20: typed array (multi-valued indexes).
    TypedArray,
    /// 242: VECTOR (MySQL 9).
    Vector,
    /// 245: JSON (MySQL binary JSON).
    Json,
    /// 246: DECIMAL.
    NewDecimal,
    /// 247: ENUM.
    Enum,
    /// 248: SET.
    Set,
    /// 249: TINYBLOB (never in binlogs: BLOB with meta 1).
    TinyBlob,
    /// 250: MEDIUMBLOB.
    MediumBlob,
    /// 251: LONGBLOB.
    LongBlob,
    /// 252: BLOB / TEXT (all sizes).
    Blob,
    /// 253: VAR_STRING.
    VarString,
    /// 254: CHAR / BINARY.
    String,
    /// 255: GEOMETRY.
    Geometry,
    /// MariaDB 140: compressed BLOB/TEXT.
    BlobCompressed,
    /// MariaDB 141: compressed VARCHAR.
    VarCharCompressed,
    /// Any other code.
    Unknown(u8),
}

impl ColumnType {
    /// Type for a table-map type byte.
    pub fn from_code(c: u8) -> Self {
        use ColumnType::*;
        match c {
            0 => Decimal,
            1 => Tiny,
            2 => Short,
            3 => Long,
            4 => Float,
            5 => Double,
            6 => Null,
            7 => Timestamp,
            8 => LongLong,
            9 => Int24,
            10 => Date,
            11 => Time,
            12 => DateTime,
            13 => Year,
            14 => NewDate,
            15 => VarChar,
            16 => Bit,
            17 => Timestamp2,
            18 => DateTime2,
            19 => Time2,
            20 => TypedArray,
            242 => Vector,
            245 => Json,
            246 => NewDecimal,
            247 => Enum,
            248 => Set,
            249 => TinyBlob,
            250 => MediumBlob,
            251 => LongBlob,
            252 => Blob,
            253 => VarString,
            254 => String,
            255 => Geometry,
            140 => BlobCompressed,
            141 => VarCharCompressed,
            o => Unknown(o),
        }
    }

    /// Whether the SIGNEDNESS metadata has a bit for this type (YEAR included).
    pub fn is_numeric(self) -> bool {
        use ColumnType::*;
        matches!(
            self,
            Tiny | Short | Int24 | Long | LongLong | Float | Double | NewDecimal | Decimal | Year
        )
    }

    fn metadata_len(code: u8) -> usize {
        match code {
            4 | 5 | 17 | 18 | 19 | 242 | 245 | 252 | 255 | 140 => 1,
            15 | 16 | 246 | 253 | 254 | 247 | 248 | 141 => 2,
            _ => 0,
        }
    }
}

/// A decoded TABLE_MAP event, borrowing from the event bytes. The context
/// turns it into an owned [`TableMap`] used to decode rows events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableMapEvent<'a> {
    /// Table id the rows events refer to.
    pub table_id: u64,
    /// Flags (unused by servers).
    pub flags: u16,
    /// Schema name.
    pub schema: &'a [u8],
    /// Table name.
    pub table: &'a [u8],
    /// One type byte per column.
    pub column_types: &'a [u8],
    /// Per-type metadata block.
    pub metadata: &'a [u8],
    /// Nullability bitmap, LSB-first.
    pub null_bits: &'a [u8],
    /// Optional metadata TLVs (`binlog_row_metadata`).
    pub optional_metadata: &'a [u8],
    /// The whole event body (used to skip rebuilding an unchanged map).
    pub body: &'a [u8],
}

fn nul_terminated(i: &[u8]) -> PResult<'_, &[u8]> {
    let (i, s) = packed_bytes(i)?;
    let (i, nul) = u8_(i)?;
    if nul != 0 {
        return fail(i, "name not followed by NUL");
    }
    Ok((i, s))
}

impl<'a> TableMapEvent<'a> {
    pub(crate) fn parse(body: &'a [u8], body_start: usize, fd: &FormatDescription) -> Result<Self> {
        let id_len = if fd.post_header_len(EventType::TableMap) == 6 {
            4
        } else {
            6
        };
        run(EventType::TableMap, body, body_start, |i| {
            let (i, table_id) = if id_len == 4 {
                let (i, v) = u32_(i)?;
                (i, u64::from(v))
            } else {
                u48_(i)?
            };
            let (i, flags) = u16_(i)?;
            let (i, schema) = nul_terminated(i)?;
            let (i, table) = nul_terminated(i)?;
            let (i, ncols) = packed(i)?;
            if ncols > i.len() as u64 {
                return fail(i, "column count runs past the event");
            }
            let (i, column_types) = take(ncols as usize)(i)?;
            let (i, metadata, null_bits) = if i.is_empty() {
                (i, &i[..0], &i[..0])
            } else {
                let (i, metadata) = packed_bytes(i)?;
                let (i, null_bits) = take(column_types.len().div_ceil(8))(i)?;
                (i, metadata, null_bits)
            };
            Ok((
                &i[i.len()..],
                TableMapEvent {
                    table_id,
                    flags,
                    schema,
                    table,
                    column_types,
                    metadata,
                    null_bits,
                    optional_metadata: i,
                    body,
                },
            ))
        })
    }

    /// Number of columns.
    pub fn column_count(&self) -> usize {
        self.column_types.len()
    }

    /// Optional metadata fields as `(type, value)` pairs.
    pub fn optional_fields(&self) -> OptionalFields<'a> {
        OptionalFields {
            rest: self.optional_metadata,
        }
    }
}

/// Iterator over optional metadata TLVs; stops (with `Err`) at a malformed one.
#[derive(Debug, Clone)]
pub struct OptionalFields<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for OptionalFields<'a> {
    type Item = std::result::Result<(u8, &'a [u8]), &'static str>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let r: PResult<'a, (u8, &'a [u8])> = (|i: &'a [u8]| {
            let (i, t) = u8_(i)?;
            let (i, v) = packed_bytes(i)?;
            Ok((i, (t, v)))
        })(self.rest);
        match r {
            Ok((rest, item)) => {
                self.rest = rest;
                Some(Ok(item))
            }
            Err(_) => {
                self.rest = &[];
                Some(Err("malformed optional metadata field"))
            }
        }
    }
}

/// Optional metadata field types.
pub mod optional_field {
    /// Signedness bitmap of numeric columns.
    pub const SIGNEDNESS: u8 = 1;
    /// Default charset plus exceptions, over character columns.
    pub const DEFAULT_CHARSET: u8 = 2;
    /// Charset of each character column.
    pub const COLUMN_CHARSET: u8 = 3;
    /// Column names.
    pub const COLUMN_NAME: u8 = 4;
    /// SET member strings.
    pub const SET_STR_VALUE: u8 = 5;
    /// ENUM member strings.
    pub const ENUM_STR_VALUE: u8 = 6;
    /// Geometry subtype per geometry column.
    pub const GEOMETRY_TYPE: u8 = 7;
    /// Primary key column indexes.
    pub const SIMPLE_PRIMARY_KEY: u8 = 8;
    /// Primary key columns with prefix lengths.
    pub const PRIMARY_KEY_WITH_PREFIX: u8 = 9;
    /// Default charset over ENUM/SET columns.
    pub const ENUM_AND_SET_DEFAULT_CHARSET: u8 = 10;
    /// Charset per ENUM/SET column.
    pub const ENUM_AND_SET_COLUMN_CHARSET: u8 = 11;
    /// Visibility bitmap (1 = visible).
    pub const COLUMN_VISIBILITY: u8 = 12;
    /// Dimension per VECTOR column.
    pub const VECTOR_DIMENSIONALITY: u8 = 13;
}

/// One column of a [`TableMap`], with everything needed to decode its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Type byte as written in the table map.
    pub type_code: u8,
    /// Real type (after the STRING trick: ENUM, SET or CHAR).
    pub kind: ColumnType,
    /// Raw metadata (two bytes at most; TYPED_ARRAY keeps its first two).
    pub meta: [u8; 2],
    /// Whether the column may be NULL.
    pub nullable: bool,
    /// Whether the column is unsigned (SIGNEDNESS metadata, or set by the caller).
    pub unsigned: bool,
    /// Collation id (63 = binary), from DEFAULT/COLUMN_CHARSET metadata.
    pub charset: Option<u32>,
    /// Column name, from COLUMN_NAME metadata.
    pub name: Option<String>,
    /// ENUM or SET member strings.
    pub members: Vec<Vec<u8>>,
    /// Geometry subtype.
    pub geometry_type: Option<u32>,
    /// Vector dimension.
    pub vector_dimension: Option<u32>,
    /// Visibility (false = invisible column), if logged.
    pub visible: Option<bool>,
    /// Position among the table's JSON columns (for partial updates).
    pub json_ordinal: Option<usize>,
    /// Bytes of a length prefix (strings, blobs), or of the value (ENUM/SET).
    pub(crate) len_bytes: u8,
    /// Max byte length (strings), precision (decimal), bit count (BIT), fsp.
    pub(crate) param: u32,
    /// Scale (decimal).
    pub(crate) scale: u8,
}

impl Column {
    fn new(type_code: u8, meta: [u8; 2], nullable: bool) -> Self {
        let mut kind = ColumnType::from_code(type_code);
        let mut len_bytes = 0u8;
        let mut param = 0u32;
        let mut scale = 0u8;
        match kind {
            ColumnType::String | ColumnType::Enum | ColumnType::Set => {
                let (b0, b1) = (meta[0], meta[1]);
                let (real, max_len) = if b0 != 0 && b0 & 0x30 != 0x30 {
                    (
                        b0 | 0x30,
                        u32::from(b1) | (u32::from((b0 & 0x30) ^ 0x30) << 4),
                    )
                } else {
                    (b0, u32::from(b1))
                };
                match real {
                    247 => {
                        kind = ColumnType::Enum;
                        len_bytes = b1;
                    }
                    248 => {
                        kind = ColumnType::Set;
                        len_bytes = b1;
                    }
                    _ => {
                        kind = ColumnType::String;
                        param = max_len;
                        len_bytes = if max_len > 255 { 2 } else { 1 };
                    }
                }
            }
            ColumnType::VarChar | ColumnType::VarString | ColumnType::VarCharCompressed => {
                param = u32::from(u16::from_le_bytes(meta));
                len_bytes = if param > 255 { 2 } else { 1 };
            }
            ColumnType::Blob
            | ColumnType::Geometry
            | ColumnType::Json
            | ColumnType::Vector
            | ColumnType::BlobCompressed => len_bytes = meta[0],
            ColumnType::TinyBlob => len_bytes = 1,
            ColumnType::MediumBlob => len_bytes = 3,
            ColumnType::LongBlob => len_bytes = 4,
            ColumnType::NewDecimal => {
                param = u32::from(meta[0]);
                scale = meta[1];
            }
            ColumnType::Bit => param = u32::from(meta[1]) * 8 + u32::from(meta[0]),
            ColumnType::Timestamp2 | ColumnType::DateTime2 | ColumnType::Time2 => {
                param = u32::from(meta[0])
            }
            ColumnType::Float | ColumnType::Double => param = u32::from(meta[0]),
            _ => {}
        }
        Column {
            type_code,
            kind,
            meta,
            nullable,
            unsigned: false,
            charset: None,
            name: None,
            members: Vec::new(),
            geometry_type: None,
            vector_dimension: None,
            visible: None,
            json_ordinal: None,
            len_bytes,
            param,
            scale,
        }
    }

    /// Fractional-second digits of TIME2/DATETIME2/TIMESTAMP2.
    pub fn fsp(&self) -> u8 {
        match self.kind {
            ColumnType::Timestamp2 | ColumnType::DateTime2 | ColumnType::Time2 => self.param as u8,
            _ => 0,
        }
    }

    /// `(precision, scale)` of a DECIMAL.
    pub fn decimal_precision_scale(&self) -> Option<(u8, u8)> {
        (self.kind == ColumnType::NewDecimal).then_some((self.param as u8, self.scale))
    }

    /// Maximum byte length of CHAR/VARCHAR.
    pub fn max_byte_len(&self) -> Option<u32> {
        matches!(
            self.kind,
            ColumnType::String
                | ColumnType::VarChar
                | ColumnType::VarString
                | ColumnType::VarCharCompressed
        )
        .then_some(self.param)
    }

    /// For BINARY(n) columns: n. The server strips trailing `0x00` bytes
    /// from BINARY values in row images (and trailing spaces from CHAR);
    /// a caller that needs the stored value pads it back to this length.
    pub fn fixed_binary_len(&self) -> Option<u32> {
        (self.kind == ColumnType::String && self.charset == Some(63)).then_some(self.param)
    }

    /// Bit width of a BIT column.
    pub fn bit_width(&self) -> Option<u32> {
        (self.kind == ColumnType::Bit).then_some(self.param)
    }

    /// Whether values of this column are text (a non-binary charset is known).
    pub fn is_text(&self) -> bool {
        matches!(self.charset, Some(c) if c != 63)
    }

    /// Counted by the character-set metadata fields.
    fn is_character(&self, mariadb: bool) -> bool {
        match self.kind {
            ColumnType::String
            | ColumnType::VarString
            | ColumnType::VarChar
            | ColumnType::Blob
            | ColumnType::TinyBlob
            | ColumnType::MediumBlob
            | ColumnType::LongBlob
            | ColumnType::BlobCompressed
            | ColumnType::VarCharCompressed => true,
            ColumnType::Geometry => mariadb,
            ColumnType::Vector => !mariadb,
            _ => false,
        }
    }
}

/// Owned table definition kept by the [`DecodeContext`](crate::DecodeContext)
/// between a TABLE_MAP and the rows events that use it.
#[derive(Debug, Clone, PartialEq)]
pub struct TableMap {
    /// Table id.
    pub table_id: u64,
    /// Schema name.
    pub schema: String,
    /// Table name.
    pub table: String,
    /// Columns in table order.
    pub columns: Vec<Column>,
    /// Primary key `(column index, prefix length)`; prefix 0 = whole column.
    pub primary_key: Vec<(usize, usize)>,
    /// Number of JSON columns (partial-update bitmaps have one bit each).
    pub json_columns: usize,
    /// Event body the map was built from.
    pub(crate) raw: Vec<u8>,
}

/// A map with no columns, for empty rows events without a table map.
pub(crate) static EMPTY_TABLE: TableMap = TableMap {
    table_id: 0,
    schema: String::new(),
    table: String::new(),
    columns: Vec::new(),
    primary_key: Vec::new(),
    json_columns: 0,
    raw: Vec::new(),
};

impl TableMap {
    /// Builds the owned map from a TABLE_MAP event, decoding all metadata.
    /// `mariadb` selects MariaDB's rule for which columns carry a charset.
    ///
    /// # Errors
    /// [`Error::Malformed`] if the metadata block or a TLV is inconsistent
    /// with the column types.
    pub fn from_event(ev: &TableMapEvent<'_>, mariadb: bool) -> Result<Self> {
        let malformed = |reason| Error::Malformed {
            offset: 0,
            event_type: EventType::TableMap,
            at: 0,
            reason,
        };
        let n = ev.column_types.len();
        if ev.metadata.len() > 4 * n.max(1) + 1 && !ev.column_types.contains(&20) {
            return Err(malformed("metadata block longer than 4 bytes per column"));
        }
        let mut columns = Vec::with_capacity(n);
        let mut meta = ev.metadata;
        let mut json_columns = 0;
        for (idx, &code) in ev.column_types.iter().enumerate() {
            let mlen = if code == 20 {
                // TYPED_ARRAY: element type, then that type's metadata.
                1 + meta
                    .first()
                    .map(|&t| ColumnType::metadata_len(t))
                    .unwrap_or(0)
            } else {
                ColumnType::metadata_len(code)
            };
            if meta.len() < mlen && !ev.metadata.is_empty() {
                return Err(malformed(
                    "metadata block shorter than the column types need",
                ));
            }
            let mut m = [0u8; 2];
            let take_n = mlen.min(meta.len());
            for (k, b) in meta[..take_n].iter().take(2).enumerate() {
                m[k] = *b;
            }
            meta = &meta[take_n..];
            let nullable = ev
                .null_bits
                .get(idx / 8)
                .is_some_and(|b| b & (1 << (idx % 8)) != 0);
            let mut col = Column::new(code, m, nullable);
            if col.kind == ColumnType::Json {
                col.json_ordinal = Some(json_columns);
                json_columns += 1;
            }
            columns.push(col);
        }
        let mut map = TableMap {
            table_id: ev.table_id,
            schema: String::from_utf8_lossy(ev.schema).into_owned(),
            table: String::from_utf8_lossy(ev.table).into_owned(),
            columns,
            primary_key: Vec::new(),
            json_columns,
            raw: ev.body.to_vec(),
        };
        for field in ev.optional_fields() {
            let (t, v) = field.map_err(malformed)?;
            map.apply_optional(t, v, mariadb)
                .map_err(|_| malformed("malformed optional metadata value"))?;
        }
        Ok(map)
    }

    fn apply_optional(&mut self, t: u8, v: &[u8], mariadb: bool) -> std::result::Result<(), ()> {
        use optional_field::*;
        let err = |_| ();
        match t {
            SIGNEDNESS => {
                for (k, c) in self
                    .columns
                    .iter_mut()
                    .filter(|c| c.kind.is_numeric())
                    .enumerate()
                {
                    let bit = v.get(k / 8).map(|b| b & (0x80 >> (k % 8)) != 0).ok_or(())?;
                    c.unsigned = bit;
                }
            }
            DEFAULT_CHARSET | ENUM_AND_SET_DEFAULT_CHARSET => {
                let enum_set = t == ENUM_AND_SET_DEFAULT_CHARSET;
                let (mut i, default) = packed(v).map_err(err)?;
                let mut cols: Vec<&mut Column> = self
                    .columns
                    .iter_mut()
                    .filter(|c| {
                        if enum_set {
                            matches!(c.kind, ColumnType::Enum | ColumnType::Set)
                        } else {
                            c.is_character(mariadb)
                        }
                    })
                    .collect();
                for c in cols.iter_mut() {
                    c.charset = Some(default as u32);
                }
                while !i.is_empty() {
                    let (r, idx) = packed(i).map_err(err)?;
                    let (r, coll) = packed(r).map_err(err)?;
                    if let Some(c) = cols.get_mut(idx as usize) {
                        c.charset = Some(coll as u32);
                    }
                    i = r;
                }
            }
            COLUMN_CHARSET | ENUM_AND_SET_COLUMN_CHARSET => {
                let enum_set = t == ENUM_AND_SET_COLUMN_CHARSET;
                let mut i = v;
                for c in self.columns.iter_mut().filter(|c| {
                    if enum_set {
                        matches!(c.kind, ColumnType::Enum | ColumnType::Set)
                    } else {
                        c.is_character(mariadb)
                    }
                }) {
                    if i.is_empty() {
                        break;
                    }
                    let (r, coll) = packed(i).map_err(err)?;
                    c.charset = Some(coll as u32);
                    i = r;
                }
            }
            COLUMN_NAME => {
                let mut i = v;
                for c in self.columns.iter_mut() {
                    if i.is_empty() {
                        break;
                    }
                    let (r, name) = packed_bytes(i).map_err(err)?;
                    c.name = Some(String::from_utf8_lossy(name).into_owned());
                    i = r;
                }
            }
            SET_STR_VALUE | ENUM_STR_VALUE => {
                let kind = if t == SET_STR_VALUE {
                    ColumnType::Set
                } else {
                    ColumnType::Enum
                };
                let mut i = v;
                for c in self.columns.iter_mut().filter(|c| c.kind == kind) {
                    if i.is_empty() {
                        break;
                    }
                    let (r, count) = packed(i).map_err(err)?;
                    if count > r.len() as u64 {
                        return Err(());
                    }
                    let mut r = r;
                    c.members = Vec::with_capacity(count as usize);
                    for _ in 0..count {
                        let (rr, s) = packed_bytes(r).map_err(err)?;
                        c.members.push(s.to_vec());
                        r = rr;
                    }
                    i = r;
                }
            }
            GEOMETRY_TYPE => {
                let mut i = v;
                for c in self
                    .columns
                    .iter_mut()
                    .filter(|c| c.kind == ColumnType::Geometry)
                {
                    if i.is_empty() {
                        break;
                    }
                    let (r, g) = packed(i).map_err(err)?;
                    c.geometry_type = Some(g as u32);
                    i = r;
                }
            }
            SIMPLE_PRIMARY_KEY => {
                let mut i = v;
                while !i.is_empty() {
                    let (r, idx) = packed(i).map_err(err)?;
                    self.primary_key.push((idx as usize, 0));
                    i = r;
                }
            }
            PRIMARY_KEY_WITH_PREFIX => {
                let mut i = v;
                while !i.is_empty() {
                    let (r, idx) = packed(i).map_err(err)?;
                    let (r, prefix) = packed(r).map_err(err)?;
                    self.primary_key.push((idx as usize, prefix as usize));
                    i = r;
                }
            }
            COLUMN_VISIBILITY => {
                for (k, c) in self.columns.iter_mut().enumerate() {
                    let Some(b) = v.get(k / 8) else { break };
                    c.visible = Some(b & (0x80 >> (k % 8)) != 0);
                }
            }
            VECTOR_DIMENSIONALITY => {
                let mut i = v;
                for c in self
                    .columns
                    .iter_mut()
                    .filter(|c| c.kind == ColumnType::Vector)
                {
                    if i.is_empty() {
                        break;
                    }
                    let (r, d) = packed(i).map_err(err)?;
                    c.vector_dimension = Some(d as u32);
                    i = r;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Column by name (needs COLUMN_NAME metadata).
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name.as_deref() == Some(name))
    }

    /// Overrides signedness from the caller's schema (servers without
    /// SIGNEDNESS metadata). Index out of range is ignored.
    pub fn set_unsigned(&mut self, column: usize, unsigned: bool) {
        if let Some(c) = self.columns.get_mut(column) {
            c.unsigned = unsigned;
        }
    }

    /// Overrides the collation from the caller's schema (63 = binary).
    pub fn set_charset(&mut self, column: usize, collation: u32) {
        if let Some(c) = self.columns.get_mut(column) {
            c.charset = Some(collation);
        }
    }
}
