//! History sync, sans-I/O: the primary packs recent chats into chunks (protobuf,
//! zlib-compressed, then encrypted like media with `MediaKind::History`); a new
//! companion checks, decrypts, decompresses (bounded) and imports them.
//!
//! ```
//! use pawl_core::history::{pack, unpack, HistoryMessage, HistoryChunk};
//! let chunk = HistoryChunk {
//!     chunk_order: 0,
//!     messages: vec![HistoryMessage { peer: "+49151".into(), sender: "+49151".into(),
//!         sender_device: 1, outgoing: false, body: b"hi".to_vec(), sent_at: 5,
//!         received_at: 6, status: 2 }],
//! };
//! let key = pawl_core::media::MediaKey::generate(&mut rand_core::OsRng);
//! let (blob, digest) = pack(&chunk, &key)?;
//! assert_eq!(unpack(&blob, &key, &digest.expected())?, chunk);
//! # Ok::<(), pawl_core::history::HistoryError>(())
//! ```

use std::io::{Read, Write};

use prost::Message as _;

use crate::media::{self, MediaDigest, MediaExpected, MediaKey, MediaKind};

/// Largest decompressed chunk accepted (a zip bomb stops here).
pub const MAX_CHUNK_BYTES: u64 = 64 * 1024 * 1024;

/// One message of the history.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct HistoryMessage {
    /// The chat (the other user).
    #[prost(string, tag = "1")]
    pub peer: String,
    /// Who sent it (user).
    #[prost(string, tag = "2")]
    pub sender: String,
    /// The sender's device.
    #[prost(uint32, tag = "3")]
    pub sender_device: u32,
    /// Sent by this account.
    #[prost(bool, tag = "4")]
    pub outgoing: bool,
    /// The text (a media message's caption).
    #[prost(bytes = "vec", tag = "5")]
    pub body: Vec<u8>,
    /// The sender's timestamp (names the message in read receipts).
    #[prost(int64, tag = "6")]
    pub sent_at: i64,
    /// When it was received (incoming).
    #[prost(int64, tag = "7")]
    pub received_at: i64,
    /// Delivery state code (0 pending .. 4 failed).
    #[prost(uint32, tag = "8")]
    pub status: u32,
}

/// One chunk of history.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct HistoryChunk {
    /// 0, 1, 2, ...
    #[prost(uint32, tag = "1")]
    pub chunk_order: u32,
    /// The messages, oldest first.
    #[prost(message, repeated, tag = "2")]
    pub messages: Vec<HistoryMessage>,
}

/// Why a history chunk was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// The blob failed its hash or MAC checks (see [`media::MediaError`]).
    #[error(transparent)]
    Media(#[from] media::MediaError),
    /// It does not decompress, is too large, or does not parse.
    #[error("history chunk: {0}")]
    Malformed(String),
}

/// Compress and encrypt a chunk: the blob to upload and what the notice carries.
pub fn pack(chunk: &HistoryChunk, key: &MediaKey) -> Result<(Vec<u8>, MediaDigest), HistoryError> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&chunk.encode_to_vec())
        .and_then(|_| z.finish())
        .map_err(|e| HistoryError::Malformed(e.to_string()))
        .map(|compressed| media::encrypt(key, MediaKind::History, &compressed))
}

/// Check, decrypt, decompress (at most [`MAX_CHUNK_BYTES`]) and parse a chunk.
pub fn unpack(
    blob: &[u8],
    key: &MediaKey,
    expected: &MediaExpected,
) -> Result<HistoryChunk, HistoryError> {
    let compressed = media::decrypt(key, MediaKind::History, blob, expected)?;
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(compressed.as_slice())
        .take(MAX_CHUNK_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| HistoryError::Malformed(e.to_string()))?;
    if out.len() as u64 > MAX_CHUNK_BYTES {
        return Err(HistoryError::Malformed("larger than the limit".into()));
    }
    HistoryChunk::decode(out.as_slice()).map_err(|e| HistoryError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand_core::OsRng;

    #[test]
    fn round_trip_tamper_and_bomb() {
        let chunk = HistoryChunk {
            chunk_order: 3,
            messages: (0..500)
                .map(|i| HistoryMessage {
                    peer: "+2".into(),
                    sender: "+1".into(),
                    sender_device: 1,
                    outgoing: i % 2 == 0,
                    body: format!("message {i}").into_bytes(),
                    sent_at: i,
                    received_at: i,
                    status: 2,
                })
                .collect(),
        };
        let key = MediaKey::generate(&mut OsRng);
        let (blob, d) = pack(&chunk, &key).unwrap();
        assert!(blob.len() < chunk.encode_to_vec().len(), "compressed");
        assert_eq!(unpack(&blob, &key, &d.expected()).unwrap(), chunk);
        let mut bad = blob.clone();
        bad[10] ^= 1;
        assert!(unpack(&bad, &key, &d.expected()).is_err());
        let other = MediaKey::generate(&mut OsRng);
        assert!(unpack(&blob, &other, &d.expected()).is_err());
        // 100 MiB of zeros compresses to ~100 KiB: refused after the limit.
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..100 {
            z.write_all(&zeros).unwrap();
        }
        let (blob, d) = media::encrypt(&key, MediaKind::History, &z.finish().unwrap());
        assert!(matches!(
            unpack(&blob, &key, &d.expected()),
            Err(HistoryError::Malformed(_))
        ));
    }
}
