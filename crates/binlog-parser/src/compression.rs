//! Decompression helpers: MariaDB's zlib regions (compressed QUERY/ROWS
//! events and COMPRESSED columns) and MySQL's zstd transaction payloads.

use std::io::Read;

/// Upper bound for any decompressed region: a server never writes an event
/// (or value) above 1 GiB, so a larger announced size is corrupt input.
const MAX_UNCOMPRESSED: u64 = 1 << 30;

/// Decompresses a MariaDB compressed region: `0x80 | alg<<4 | lenlen`, the
/// original length big-endian in `lenlen` bytes, then a zlib stream.
pub(crate) fn mariadb_uncompress(region: &[u8]) -> Result<Vec<u8>, String> {
    let (&hdr, rest) = region
        .split_first()
        .ok_or_else(|| "empty compressed region".to_owned())?;
    if hdr & 0x80 == 0 {
        return Err(format!("bad compression header byte {hdr:#04x}"));
    }
    let alg = (hdr >> 4) & 0x07;
    if alg != 0 {
        return Err(format!("unknown compression algorithm {alg}"));
    }
    let lenlen = usize::from(hdr & 0x07);
    if lenlen == 0 || lenlen > 4 || rest.len() < lenlen {
        return Err(format!("bad length-of-length {lenlen}"));
    }
    let len = rest[..lenlen]
        .iter()
        .fold(0u64, |acc, &b| acc << 8 | u64::from(b));
    zlib_exact(&rest[lenlen..], len, true)
}

/// Inflates a zlib (or raw deflate) stream that must give exactly `len` bytes.
pub(crate) fn zlib_exact(data: &[u8], len: u64, zlib_header: bool) -> Result<Vec<u8>, String> {
    if len > MAX_UNCOMPRESSED {
        return Err(format!("announced size {len} exceeds 1 GiB"));
    }
    let mut out = Vec::with_capacity(len.min(data.len() as u64 * 16) as usize);
    let res = if zlib_header {
        flate2::read::ZlibDecoder::new(data)
            .take(len + 1)
            .read_to_end(&mut out)
    } else {
        flate2::read::DeflateDecoder::new(data)
            .take(len + 1)
            .read_to_end(&mut out)
    };
    res.map_err(|e| e.to_string())?;
    if out.len() as u64 != len {
        return Err(format!(
            "decompressed {} bytes, the header announced {len}",
            out.len()
        ));
    }
    Ok(out)
}

/// Decompresses a zstd frame into one buffer. The writer announces the
/// uncompressed size: more output than that (or than 1 GiB) is refused, so a
/// corrupt or hostile payload cannot balloon.
pub(crate) fn zstd_all(data: &[u8], announced: u64) -> Result<Vec<u8>, String> {
    let limit = if announced == 0 {
        MAX_UNCOMPRESSED
    } else {
        announced.min(MAX_UNCOMPRESSED)
    };
    let mut out = Vec::with_capacity(limit.min(data.len() as u64 * 32) as usize);
    let decoder = zstd::stream::read::Decoder::new(data).map_err(|e| e.to_string())?;
    decoder
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    if out.len() as u64 > limit {
        return Err(format!(
            "payload decompresses to more than the announced {limit} bytes"
        ));
    }
    Ok(out)
}
