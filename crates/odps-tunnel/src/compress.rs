//! Whole-body compression of block uploads, as the Tunnel allows it.
//!
//! A compressed block is its usual body (Arrow framing or protobuf records,
//! checksums included) compressed as a whole and sent with a
//! `Content-Encoding` header: `deflate` (a zlib stream) or `zstd`. Both
//! formats take it alike. pyodps writes the same encodings (its `ZLIB` and
//! `ZSTD` options, level 1 by default); MaxCompute's Java SDK writes
//! `deflate` for Arrow too, so it is the most widely accepted choice.
//!
//! # Example
//!
//! ```
//! use odps_tunnel::compress::Compression;
//!
//! let c: Compression = "zstd:3".parse()?;
//! assert_eq!(c.content_encoding(), Some("zstd"));
//! let body = b"a block body ".repeat(100);
//! let packed = c.compress(&body)?;
//! assert!(packed.len() < body.len());
//! assert_eq!(Compression::None.compress(&body)?, body);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::io::Write as _;
use std::str::FromStr;

/// How block bodies are compressed on the wire.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
#[non_exhaustive]
pub enum Compression {
    /// Sent as is (no `Content-Encoding`).
    #[default]
    None,
    /// zlib (`Content-Encoding: deflate`), level 0..=9.
    Deflate {
        /// Compression level.
        level: u32,
    },
    /// Zstandard (`Content-Encoding: zstd`), level 1..=22.
    Zstd {
        /// Compression level.
        level: i32,
    },
}

/// A compression setting that does not parse.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
#[error(
    "invalid tunnel compression {0:?}: expected none, deflate[:0-9] or zstd[:1-22] (e.g. \"deflate:1\")"
)]
pub struct CompressionError(pub String);

impl Compression {
    /// zlib at level 1, pyodps's default.
    pub const DEFLATE: Self = Self::Deflate { level: 1 };
    /// Zstandard at level 1.
    pub const ZSTD: Self = Self::Zstd { level: 1 };

    /// The `Content-Encoding` header value, `None` for no compression.
    pub fn content_encoding(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::Deflate { .. } => Some("deflate"),
            Self::Zstd { .. } => Some("zstd"),
        }
    }

    /// Compresses a whole block body.
    ///
    /// # Errors
    ///
    /// An I/O error from the compressor (a level it refuses).
    pub fn compress(self, body: &[u8]) -> std::io::Result<Vec<u8>> {
        match self {
            Self::None => Ok(body.to_vec()),
            Self::Deflate { level } => {
                let mut out = flate2::write::ZlibEncoder::new(
                    Vec::with_capacity(body.len() / 2),
                    flate2::Compression::new(level.min(9)),
                );
                out.write_all(body)?;
                out.finish()
            }
            Self::Zstd { level } => zstd::bulk::compress(body, level),
        }
    }
}

impl FromStr for Compression {
    type Err = CompressionError;

    /// `none` (or `raw`), `deflate` (or `zlib`), `zstd`, each but `none`
    /// optionally with `:level`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || CompressionError(s.to_owned());
        let text = s.trim().to_ascii_lowercase();
        let (name, level) = match text.split_once(':') {
            Some((n, l)) => (n.trim().to_owned(), Some(l.trim().to_owned())),
            None => (text, None),
        };
        match (name.as_str(), level) {
            ("none" | "raw" | "", None) => Ok(Self::None),
            ("deflate" | "zlib", None) => Ok(Self::DEFLATE),
            ("deflate" | "zlib", Some(l)) => match l.parse() {
                Ok(level @ 0..=9) => Ok(Self::Deflate { level }),
                _ => Err(bad()),
            },
            ("zstd", None) => Ok(Self::ZSTD),
            ("zstd", Some(l)) => match l.parse() {
                Ok(level @ 1..=22) => Ok(Self::Zstd { level }),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("none"),
            Self::Deflate { level } => write!(f, "deflate:{level}"),
            Self::Zstd { level } => write!(f, "zstd:{level}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    #[test]
    fn settings_parse_and_print() {
        assert_eq!("none".parse::<Compression>().unwrap(), Compression::None);
        assert_eq!("ZLIB".parse::<Compression>().unwrap(), Compression::DEFLATE);
        assert_eq!(
            "deflate:6".parse::<Compression>().unwrap(),
            Compression::Deflate { level: 6 }
        );
        assert_eq!(
            " zstd : 19 ".parse::<Compression>().unwrap(),
            Compression::Zstd { level: 19 }
        );
        for bad in ["lz4", "deflate:10", "zstd:0", "zstd:x", "none:1"] {
            let err = bad.parse::<Compression>().unwrap_err();
            assert!(err.to_string().contains("deflate"), "{err}");
        }
        for c in [Compression::None, Compression::DEFLATE, Compression::ZSTD] {
            assert_eq!(c.to_string().parse::<Compression>().unwrap(), c);
        }
    }

    #[test]
    fn bodies_decompress_to_the_original() {
        let body: Vec<u8> = (0..50_000u32)
            .flat_map(|i| (i % 251).to_be_bytes())
            .collect();
        let deflated = Compression::DEFLATE.compress(&body).unwrap();
        let mut back = Vec::new();
        flate2::read::ZlibDecoder::new(&deflated[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, body);
        let zstd = Compression::ZSTD.compress(&body).unwrap();
        assert_eq!(zstd::stream::decode_all(&zstd[..]).unwrap(), body);
        assert!(deflated.len() < body.len() && zstd.len() < body.len());
    }
}
