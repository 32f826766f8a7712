//! Event type codes (byte 4 of the v4 common header): the vocabulary that
//! errors, the nom bridge and the header all name, so it depends on nothing.
//! Its public path is [`header::EventType`](crate::header::EventType).

macro_rules! event_types {
    ($($(#[$doc:meta])* $name:ident = $code:literal,)*) => {
        /// Event type code (byte 4 of the common header).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum EventType {
            $($(#[$doc])* $name,)*
            /// A code this crate does not know; the event is passed through raw.
            Unknown(u8),
        }

        impl EventType {
            /// The type for a header's type byte.
            pub const fn from_code(code: u8) -> Self {
                match code {
                    $($code => EventType::$name,)*
                    other => EventType::Unknown(other),
                }
            }

            /// The header's type byte.
            pub const fn code(self) -> u8 {
                match self {
                    $(EventType::$name => $code,)*
                    EventType::Unknown(c) => c,
                }
            }

            /// Name of the type, e.g. `WriteRowsV1`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(EventType::$name => stringify!($name),)*
                    EventType::Unknown(_) => "UNKNOWN",
                }
            }
        }
    };
}

event_types! {
    /// Start event of binlog v1/v3 (out of scope).
    StartV3 = 1,
    /// Statement, BEGIN, COMMIT or DDL.
    Query = 2,
    /// Server shutdown.
    Stop = 3,
    /// Next binlog file.
    Rotate = 4,
    /// Statement-based helper: LAST_INSERT_ID / INSERT_ID.
    Intvar = 5,
    /// LOAD DATA (pre-5.0).
    Load = 6,
    /// Obsolete.
    Slave = 7,
    /// LOAD DATA (pre-5.0).
    CreateFile = 8,
    /// LOAD DATA block.
    AppendBlock = 9,
    /// LOAD DATA (pre-5.0).
    ExecLoad = 10,
    /// LOAD DATA cleanup.
    DeleteFile = 11,
    /// LOAD DATA (pre-5.0).
    NewLoad = 12,
    /// Statement-based helper: RAND() seeds.
    Rand = 13,
    /// Statement-based helper: user variable.
    UserVar = 14,
    /// Format description (binlog version, server version, post-header lengths, checksum).
    FormatDescription = 15,
    /// Commit of an XA-capable transaction.
    Xid = 16,
    /// LOAD DATA first block.
    BeginLoadQuery = 17,
    /// LOAD DATA statement.
    ExecuteLoadQuery = 18,
    /// Table definition for the following rows events.
    TableMap = 19,
    /// Pre-GA write rows (5.1.0–5.1.15).
    PreGaWriteRows = 20,
    /// Pre-GA update rows.
    PreGaUpdateRows = 21,
    /// Pre-GA delete rows.
    PreGaDeleteRows = 22,
    /// WRITE_ROWS v1 (MariaDB, MySQL ≤ 5.6.5).
    WriteRowsV1 = 23,
    /// UPDATE_ROWS v1.
    UpdateRowsV1 = 24,
    /// DELETE_ROWS v1.
    DeleteRowsV1 = 25,
    /// Incident (e.g. lost events).
    Incident = 26,
    /// Stream keep-alive.
    Heartbeat = 27,
    /// Ignorable event.
    Ignorable = 28,
    /// Original statement of the following rows events.
    RowsQuery = 29,
    /// WRITE_ROWS v2.
    WriteRows = 30,
    /// UPDATE_ROWS v2.
    UpdateRows = 31,
    /// DELETE_ROWS v2.
    DeleteRows = 32,
    /// MySQL GTID.
    Gtid = 33,
    /// MySQL anonymous GTID.
    AnonymousGtid = 34,
    /// MySQL GTID set of previous files.
    PreviousGtids = 35,
    /// Group replication transaction context.
    TransactionContext = 36,
    /// Group replication view change.
    ViewChange = 37,
    /// XA PREPARE.
    XaPrepare = 38,
    /// UPDATE_ROWS with partial JSON.
    PartialUpdateRows = 39,
    /// Compressed transaction (zstd).
    TransactionPayload = 40,
    /// Stream keep-alive, v2.
    HeartbeatV2 = 41,
    /// MySQL 8.3+ tagged GTID.
    GtidTagged = 42,
    /// MariaDB: statement behind the following rows events.
    AnnotateRows = 160,
    /// MariaDB: binlog checkpoint.
    BinlogCheckpoint = 161,
    /// MariaDB GTID.
    MariadbGtid = 162,
    /// MariaDB GTID list.
    MariadbGtidList = 163,
    /// MariaDB: start of encryption.
    StartEncryption = 164,
    /// MariaDB compressed QUERY.
    QueryCompressed = 165,
    /// MariaDB compressed WRITE_ROWS v1.
    WriteRowsCompressedV1 = 166,
    /// MariaDB compressed UPDATE_ROWS v1.
    UpdateRowsCompressedV1 = 167,
    /// MariaDB compressed DELETE_ROWS v1.
    DeleteRowsCompressedV1 = 168,
    /// MariaDB compressed WRITE_ROWS v2.
    WriteRowsCompressed = 169,
    /// MariaDB compressed UPDATE_ROWS v2.
    UpdateRowsCompressed = 170,
    /// MariaDB compressed DELETE_ROWS v2.
    DeleteRowsCompressed = 171,
}
