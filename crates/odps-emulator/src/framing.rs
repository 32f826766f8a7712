//! The Arrow tunnel's body framing: a big-endian chunk size, then chunks of
//! that size each followed by its CRC32C, a last partial chunk, and a CRC32C
//! over all payload bytes.

use crate::error::OdpsError;

/// Chunk size the emulator writes (the SDK's default).
pub const CHUNK_SIZE: usize = 65_536;

fn bad(message: &str) -> OdpsError {
    OdpsError::new(
        400,
        "MalformedDataStream",
        format!("ODPS-0420061: Malformed arrow data - {message}"),
    )
}

/// Strips the framing and checks every checksum; returns the payload.
pub fn unframe(body: &[u8]) -> Result<Vec<u8>, OdpsError> {
    if body.len() == 4 {
        // A writer that saw no data may send only the global CRC (of nothing).
        return if body == [0, 0, 0, 0] {
            Ok(Vec::new())
        } else {
            Err(bad("checksum of an empty body is not 0"))
        };
    }
    let size_bytes = body
        .get(..4)
        .ok_or_else(|| bad("body shorter than its chunk size header"))?;
    let chunk =
        u32::from_be_bytes([size_bytes[0], size_bytes[1], size_bytes[2], size_bytes[3]]) as usize;
    if chunk == 0 {
        return Err(bad("chunk size 0"));
    }
    let mut rest = &body[4..];
    let mut payload = Vec::with_capacity(rest.len());
    let mut global = 0u32;
    loop {
        if rest.len() < chunk + 4 {
            // Final piece: partial chunk, then the global checksum.
            let split = rest
                .len()
                .checked_sub(4)
                .ok_or_else(|| bad("missing final checksum"))?;
            let (data, crc) = rest.split_at(split);
            global = crc32c::crc32c_append(global, data);
            payload.extend_from_slice(data);
            if u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]) != global {
                return Err(bad("global checksum mismatch"));
            }
            return Ok(payload);
        }
        let (data, tail) = rest.split_at(chunk);
        let (crc, tail) = tail.split_at(4);
        if u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]) != crc32c::crc32c(data) {
            return Err(bad("chunk checksum mismatch"));
        }
        global = crc32c::crc32c_append(global, data);
        payload.extend_from_slice(data);
        rest = tail;
    }
}

/// Frames a payload for a download body.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload.len() / CHUNK_SIZE * 4 + 8);
    out.extend_from_slice(&(CHUNK_SIZE as u32).to_be_bytes());
    let mut chunks = payload.chunks_exact(CHUNK_SIZE);
    for c in &mut chunks {
        out.extend_from_slice(c);
        out.extend_from_slice(&crc32c::crc32c(c).to_be_bytes());
    }
    out.extend_from_slice(chunks.remainder());
    out.extend_from_slice(&crc32c::crc32c(payload).to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_at_chunk_boundaries() {
        for len in [
            0,
            1,
            CHUNK_SIZE - 1,
            CHUNK_SIZE,
            CHUNK_SIZE + 1,
            3 * CHUNK_SIZE,
        ] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let framed = frame(&payload);
            assert_eq!(unframe(&framed).unwrap(), payload, "len {len}");
            if len > 0 {
                let mut corrupt = framed.clone();
                corrupt[4] ^= 0x55;
                assert!(unframe(&corrupt).is_err());
            }
        }
        assert_eq!(unframe(&[0, 0, 0, 0]).unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn crc32c_is_castagnoli() {
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
    }
}
