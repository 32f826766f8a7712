//! The character sets of MySQL text columns.
//!
//! A binlog row image carries a character column's bytes in the column's
//! own character set (the snapshot's connection, by contrast, receives them
//! converted to UTF-8 by the server). They are decoded here, strictly: a
//! byte sequence that is not valid in its character set is an error, never
//! a replacement character, so a wrong schema cannot turn into quietly
//! altered text.
//!
//! ```
//! use sync_core::charset::TextDecoding;
//! let latin1 = TextDecoding::for_charset("latin1");
//! assert_eq!(latin1.decode(b"caf\xe9 \x80").unwrap(), "café €");
//! let gbk = TextDecoding::for_charset("gbk");
//! assert_eq!(gbk.decode(b"\xd6\xd0\xce\xc4").unwrap(), "中文");
//! assert!(TextDecoding::for_charset("utf8mb4").decode(b"\xff").is_err());
//! ```

use encoding_rs::Encoding;
use std::borrow::Cow;

/// How the bytes of one text column become UTF-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextDecoding {
    /// `utf8mb4`, `utf8mb3` / `utf8`, `ascii`: checked, not copied.
    Utf8,
    /// A character set `encoding_rs` decodes (latin1 is windows-1252, as in
    /// MySQL; gbk, gb18030, big5, sjis, euckr, the cp125x and ISO 8859
    /// families, koi8, utf16 and ucs2, …).
    Encoding(&'static Encoding),
    /// `utf32`: four big-endian bytes per character.
    Utf32,
    /// A character set without a decoder here (dec8, hp8, swe7, …): ASCII
    /// text passes, anything else is an error naming it.
    Unsupported(&'static str),
}

impl TextDecoding {
    /// The decoding of MySQL character set `charset` (case-insensitive).
    pub fn for_charset(charset: &str) -> Self {
        let cs = charset.to_ascii_lowercase();
        let encoding = match cs.as_str() {
            "utf8mb4" | "utf8mb3" | "utf8" | "ascii" => return Self::Utf8,
            "utf32" => return Self::Utf32,
            "latin1" => encoding_rs::WINDOWS_1252,
            "latin2" => encoding_rs::ISO_8859_2,
            // ISO 8859-9, of which windows-1254 is a superset.
            "latin5" => encoding_rs::WINDOWS_1254,
            "latin7" => encoding_rs::ISO_8859_13,
            "greek" => encoding_rs::ISO_8859_7,
            "hebrew" => encoding_rs::ISO_8859_8,
            "cp1250" => encoding_rs::WINDOWS_1250,
            "cp1251" => encoding_rs::WINDOWS_1251,
            "cp1256" => encoding_rs::WINDOWS_1256,
            "cp1257" => encoding_rs::WINDOWS_1257,
            "cp866" => encoding_rs::IBM866,
            "koi8r" => encoding_rs::KOI8_R,
            "koi8u" => encoding_rs::KOI8_U,
            "macroman" => encoding_rs::MACINTOSH,
            "tis620" => encoding_rs::WINDOWS_874,
            // The WHATWG GBK decoder reads all of GB18030, so GB2312 and
            // GBK text too.
            "gbk" | "gb2312" => encoding_rs::GBK,
            "gb18030" => encoding_rs::GB18030,
            "big5" => encoding_rs::BIG5,
            "sjis" | "cp932" => encoding_rs::SHIFT_JIS,
            "ujis" | "eucjpms" => encoding_rs::EUC_JP,
            "euckr" => encoding_rs::EUC_KR,
            "ucs2" | "utf16" => encoding_rs::UTF_16BE,
            "utf16le" => encoding_rs::UTF_16LE,
            _ => return Self::Unsupported(unsupported_name(&cs)),
        };
        Self::Encoding(encoding)
    }

    /// `bytes` as text.
    ///
    /// # Errors
    /// A message when `bytes` are not valid in the character set.
    pub fn decode<'a>(&self, bytes: &'a [u8]) -> Result<Cow<'a, str>, String> {
        match self {
            Self::Utf8 => std::str::from_utf8(bytes)
                .map(Cow::Borrowed)
                .map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to())),
            Self::Encoding(enc) => enc
                .decode_without_bom_handling_and_without_replacement(bytes)
                .ok_or_else(|| format!("bytes that are not valid {}", enc.name())),
            Self::Utf32 => {
                if !bytes.len().is_multiple_of(4) {
                    return Err("a UTF-32 value whose length is not a multiple of 4".into());
                }
                bytes
                    .chunks_exact(4)
                    .map(|c| {
                        let code = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
                        char::from_u32(code).ok_or_else(|| format!("U+{code:X} is not a character"))
                    })
                    .collect::<Result<String, String>>()
                    .map(Cow::Owned)
            }
            Self::Unsupported(name) => match std::str::from_utf8(bytes) {
                Ok(s) if s.is_ascii() => Ok(Cow::Borrowed(s)),
                _ => Err(format!(
                    "non-ASCII text in character set {name}, which the binlog decoder does not \
                     support; convert the column to utf8mb4"
                )),
            },
        }
    }
}

/// MySQL's remaining character sets, by name, for messages.
fn unsupported_name(cs: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "dec8", "cp850", "hp8", "swe7", "armscii8", "keybcs2", "macce", "cp852", "geostd8",
    ];
    KNOWN
        .iter()
        .find(|k| **k == cs)
        .copied()
        .unwrap_or("(unknown)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_character_sets_decode_to_the_text_the_server_shows() {
        let cases: [(&str, &[u8], &str); 10] = [
            ("latin1", b"\xe7\xe9\x31\x81", "çé1\u{81}"),
            ("LATIN1", b"\x80", "€"),
            ("latin2", b"\xb1", "ą"),
            ("cp1251", b"\xcf\xf0\xe8", "При"),
            ("gb18030", b"\x81\x30\x81\x30", "\u{80}"),
            ("big5", b"\xa4\xa4", "中"),
            ("sjis", b"\x82\xa0", "あ"),
            ("euckr", b"\xc7\xd1", "한"),
            ("ucs2", b"\x00\x41\x20\xac", "A€"),
            ("utf32", b"\x00\x01\xf6\x00", "😀"),
        ];
        for (cs, bytes, text) in cases {
            assert_eq!(
                TextDecoding::for_charset(cs).decode(bytes).as_deref(),
                Ok(text),
                "{cs}"
            );
        }
    }

    #[test]
    fn invalid_bytes_and_unsupported_sets_are_errors_not_replacements() {
        assert!(
            TextDecoding::for_charset("utf8mb4")
                .decode(b"a\xc3")
                .is_err()
        );
        assert!(TextDecoding::for_charset("gbk").decode(b"\xd6").is_err());
        assert!(
            TextDecoding::for_charset("utf32")
                .decode(b"\x00\x11\x00\x00")
                .is_err()
        );
        let swe7 = TextDecoding::for_charset("swe7");
        assert_eq!(swe7.decode(b"plain").as_deref(), Ok("plain"));
        let err = swe7.decode(b"\x7b\xe9").expect_err("non-ASCII");
        assert!(err.contains("swe7") && err.contains("utf8mb4"), "{err}");
        assert!(matches!(
            TextDecoding::for_charset("utf8mb3").decode(b"ok"),
            Ok(Cow::Borrowed("ok"))
        ));
    }
}
