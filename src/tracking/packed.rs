//! Answers as they are kept: in process memory (built answers, the local cache, Redis's
//! client-side copies) and in Redis. A tracking answer is JSON with the same field names repeated
//! for every event, so LZ4 keeps it in a fraction of its size, and unpacking a 5 KB answer takes
//! microseconds, far less than serving it.
//!
//! A packed answer starts with [`MAGIC`], which no JSON text can start with; anything else is
//! taken as an answer stored unpacked (by an earlier version of shipgate), as it is.

use bytes::Bytes;

/// The tag in front of a packed answer, then its unpacked size (`u32`, little-endian), then the
/// LZ4 block.
const MAGIC: &[u8] = b"\0lz4";

/// No answer unpacks larger than this (a stored size beyond it means the value is not ours).
const MAX_UNPACKED: usize = 16 * 1024 * 1024;

/// The answer packed for keeping.
pub fn pack(body: &[u8]) -> Bytes {
    let block = lz4_flex::block::compress_prepend_size(body);
    let mut out = Vec::with_capacity(MAGIC.len() + block.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&block);
    Bytes::from(out)
}

/// The answer to send: unpacked, or as stored when it was stored unpacked; `None` when the
/// value is damaged (it is then treated as absent).
pub fn unpack(stored: Bytes) -> Option<Bytes> {
    let Some(block) = stored.strip_prefix(MAGIC) else {
        return Some(stored);
    };
    let size = u32::from_le_bytes(block.get(..4)?.try_into().ok()?);
    if usize::try_from(size).ok()? > MAX_UNPACKED {
        return None;
    }
    lz4_flex::block::decompress_size_prepended(block)
        .ok()
        .map(Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_come_back_as_they_went_in_and_smaller() {
        let body = br#"{"status":1,"events":[{"code":"IN_TRANSIT","at":"2026-12-02T10:00:00Z"},{"code":"IN_TRANSIT","at":"2026-12-02T11:00:00Z"},{"code":"IN_TRANSIT","at":"2026-12-02T12:00:00Z"}]}"#;
        let packed = pack(body);
        assert!(packed.len() < body.len());
        assert_eq!(unpack(packed).unwrap(), &body[..]);
        assert_eq!(unpack(pack(b"")).unwrap(), &b""[..]);
    }

    #[test]
    fn unpacked_values_pass_and_damaged_ones_are_refused() {
        let plain = Bytes::from_static(br#"{"status":1}"#);
        assert_eq!(unpack(plain.clone()).unwrap(), plain);
        let mut packed = pack(b"some answer, some answer, some answer").to_vec();
        packed.truncate(packed.len() - 3);
        assert!(unpack(Bytes::from(packed)).is_none());
        // A size claiming more than any answer is refused before anything is allocated.
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(unpack(Bytes::from(huge)).is_none());
        assert!(unpack(Bytes::from_static(b"\0lz4\x01")).is_none());
    }
}
