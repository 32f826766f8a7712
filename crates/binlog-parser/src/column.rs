//! Table columns as a TABLE_MAP describes them: the type codes and, per
//! column, everything needed to decode its values. Row values decode by
//! these and the table map builds them, so they depend on nothing. Their
//! public path is [`events::table_map`](crate::events::table_map).

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

    /// Bytes of table-map metadata a column of type `code` carries.
    pub(crate) fn metadata_len(code: u8) -> usize {
        match code {
            4 | 5 | 17 | 18 | 19 | 242 | 245 | 252 | 255 | 140 => 1,
            15 | 16 | 246 | 253 | 254 | 247 | 248 | 141 => 2,
            _ => 0,
        }
    }
}

/// One column of a [`TableMap`](crate::TableMap), with everything needed to decode its values.
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
    /// A column of table-map type `type_code` with its raw metadata.
    pub(crate) fn new(type_code: u8, meta: [u8; 2], nullable: bool) -> Self {
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
    pub(crate) fn is_character(&self, mariadb: bool) -> bool {
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
