//! Attachment encryption, the WhatsApp way (protocol-facts.md §3; whatsmeow
//! `download.go` / `upload.go`, Baileys `messages-media.ts`).
//!
//! A random 32-byte [`MediaKey`] is expanded with HKDF-SHA256 (no salt, a per-kind info
//! string such as `"WhatsApp Image Keys"`, 112 bytes) into IV `[0..16]`, cipher key
//! `[16..48]`, MAC key `[48..80]` (and a ref key `[80..112]`, unused for files). The
//! uploaded blob is `AES-256-CBC(PKCS#7(plaintext)) ‖ HMAC-SHA256(macKey, IV ‖ ciphertext)[..10]`;
//! the message carries the key, `fileSHA256` (of the plaintext), `fileEncSHA256` (of the
//! blob) and the length. The receiver checks the blob hash and the MAC, decrypts, and
//! checks the plaintext hash.
//!
//! Both directions stream with constant memory ([`MediaEncryptor`], [`MediaDecryptor`];
//! [`encrypt_stream`] / [`decrypt_stream`] over `Read`/`Write`), so a 1 GiB file never
//! sits in memory. A streaming decrypt necessarily writes plaintext before the last
//! check: write it where the app cannot see it (a temporary file) and publish it only
//! when [`MediaDecryptor::finish`] returns `Ok` — [`decrypt`] (in memory) and the
//! client's download do exactly that.
//!
//! ```
//! use pawl_core::media::{decrypt, encrypt, MediaKey, MediaKind};
//! let key = MediaKey::generate(&mut rand_core::OsRng);
//! let (blob, digest) = encrypt(&key, MediaKind::Image, b"\x89PNG...");
//! let plain = decrypt(&key, MediaKind::Image, &blob, &digest.expected()).unwrap();
//! assert_eq!(plain, b"\x89PNG...");
//! ```

use std::io::{Read, Write};

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of the truncated HMAC appended to the ciphertext.
pub const MEDIA_MAC_LEN: usize = 10;
const BLOCK: usize = 16;

/// What the bytes are: selects the HKDF info string (the keys differ per kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MediaKind {
    /// Images, stickers.
    Image,
    /// Video, GIFs.
    Video,
    /// Audio, voice notes.
    Audio,
    /// Any other file.
    Document,
    /// A history-sync blob (multi-device).
    History,
    /// An app-state sync blob (multi-device).
    AppState,
    /// A thumbnail of an image.
    ImageThumbnail,
    /// A thumbnail of a video.
    VideoThumbnail,
    /// A link preview's thumbnail.
    LinkThumbnail,
}

impl MediaKind {
    /// The stable number that names the kind in a media message.
    pub fn code(self) -> u32 {
        match self {
            MediaKind::Image => 1,
            MediaKind::Video => 2,
            MediaKind::Audio => 3,
            MediaKind::Document => 4,
            MediaKind::History => 5,
            MediaKind::AppState => 6,
            MediaKind::ImageThumbnail => 7,
            MediaKind::VideoThumbnail => 8,
            MediaKind::LinkThumbnail => 9,
        }
    }

    /// The kind with this number, if known.
    pub fn from_code(code: u32) -> Option<Self> {
        Some(match code {
            1 => MediaKind::Image,
            2 => MediaKind::Video,
            3 => MediaKind::Audio,
            4 => MediaKind::Document,
            5 => MediaKind::History,
            6 => MediaKind::AppState,
            7 => MediaKind::ImageThumbnail,
            8 => MediaKind::VideoThumbnail,
            9 => MediaKind::LinkThumbnail,
            _ => return None,
        })
    }

    /// The HKDF info string (WhatsApp's, for interoperability of the construction).
    pub fn info(self) -> &'static str {
        match self {
            MediaKind::Image => "WhatsApp Image Keys",
            MediaKind::Video => "WhatsApp Video Keys",
            MediaKind::Audio => "WhatsApp Audio Keys",
            MediaKind::Document => "WhatsApp Document Keys",
            MediaKind::History => "WhatsApp History Keys",
            MediaKind::AppState => "WhatsApp App State Keys",
            MediaKind::ImageThumbnail => "WhatsApp Image Thumbnail Keys",
            MediaKind::VideoThumbnail => "WhatsApp Video Thumbnail Keys",
            MediaKind::LinkThumbnail => "WhatsApp Link Thumbnail Keys",
        }
    }
}

/// The 32-byte media key (sent inside the end-to-end encrypted message). Zeroized on
/// drop; `Debug` does not print it; compared in constant time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MediaKey([u8; 32]);

impl MediaKey {
    /// A fresh random key.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut k = [0u8; 32];
        rng.fill_bytes(&mut k);
        MediaKey(k)
    }

    /// The key received in a message; `None` unless exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(MediaKey)
    }

    /// The key's bytes (to put in the message).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for MediaKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for MediaKey {}

impl std::fmt::Debug for MediaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MediaKey(<redacted>)")
    }
}

/// The keys expanded from a media key for one kind.
#[derive(Zeroize, ZeroizeOnDrop)]
struct Expanded {
    iv: [u8; 16],
    cipher_key: [u8; 32],
    mac_key: [u8; 32],
}

impl Expanded {
    fn new(key: &MediaKey, kind: MediaKind) -> Self {
        let mut okm = crate::crypto::hkdf(None, &key.0, kind.info().as_bytes(), 112);
        let mut e = Expanded {
            iv: [0; 16],
            cipher_key: [0; 32],
            mac_key: [0; 32],
        };
        e.iv.copy_from_slice(&okm[..16]);
        e.cipher_key.copy_from_slice(&okm[16..48]);
        e.mac_key.copy_from_slice(&okm[48..80]);
        okm.zeroize();
        e
    }

    fn mac(&self) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.mac_key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(&self.iv);
        mac
    }
}

/// What the sender puts in the message next to the key, and what the receiver checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDigest {
    /// SHA-256 of the plaintext (`fileSHA256`).
    pub file_sha256: [u8; 32],
    /// SHA-256 of the uploaded blob, MAC included (`fileEncSHA256`).
    pub file_enc_sha256: [u8; 32],
    /// Length of the plaintext (`fileLength`).
    pub file_length: u64,
    /// Length of the uploaded blob.
    pub blob_length: u64,
}

impl MediaDigest {
    /// What a receiver of these values checks.
    pub fn expected(&self) -> MediaExpected {
        MediaExpected {
            file_sha256: self.file_sha256,
            file_enc_sha256: self.file_enc_sha256,
            file_length: Some(self.file_length),
        }
    }
}

/// The values from the message the receiver checks the download against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaExpected {
    /// SHA-256 of the plaintext.
    pub file_sha256: [u8; 32],
    /// SHA-256 of the blob.
    pub file_enc_sha256: [u8; 32],
    /// The plaintext's length, when the message states it.
    pub file_length: Option<u64>,
}

/// Why a download was refused. Nothing of it may be shown to the user.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// Shorter than one cipher block and the MAC, or not whole blocks.
    #[error("the blob is truncated or not a whole number of blocks ({0} bytes)")]
    BadLength(u64),
    /// The blob's SHA-256 is not the one in the message (corrupt or swapped upload).
    #[error("the blob's SHA-256 does not match the message")]
    BlobHashMismatch,
    /// The MAC does not verify (tampered, or the wrong key or kind).
    #[error("the blob's MAC does not verify")]
    BadMac,
    /// The padding is invalid (cannot happen with a valid MAC unless the sender is broken).
    #[error("invalid padding")]
    BadPadding,
    /// The plaintext's SHA-256 or length is not the one in the message.
    #[error("the plaintext's SHA-256 or length does not match the message")]
    FileHashMismatch,
    /// Reading or writing failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

/// Streaming encryption: feed plaintext with [`update`](Self::update), get the blob's
/// bytes appended to `out`; [`finish`](Self::finish) appends the last block and the MAC.
pub struct MediaEncryptor {
    cipher: Aes256CbcEnc,
    mac: Hmac<Sha256>,
    plain_hash: Sha256,
    blob_hash: Sha256,
    pending: [u8; BLOCK],
    pending_len: usize,
    file_length: u64,
    blob_length: u64,
}

impl std::fmt::Debug for MediaEncryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaEncryptor")
            .field("file_length", &self.file_length)
            .finish_non_exhaustive()
    }
}

impl MediaEncryptor {
    /// Start encrypting with `key` for `kind`.
    pub fn new(key: &MediaKey, kind: MediaKind) -> Self {
        let k = Expanded::new(key, kind);
        MediaEncryptor {
            cipher: Aes256CbcEnc::new(&k.cipher_key.into(), &k.iv.into()),
            mac: k.mac(),
            plain_hash: Sha256::new(),
            blob_hash: Sha256::new(),
            pending: [0; BLOCK],
            pending_len: 0,
            file_length: 0,
            blob_length: 0,
        }
    }

    fn emit(&mut self, block: &mut [u8; BLOCK], out: &mut Vec<u8>) {
        self.cipher
            .encrypt_block_mut(GenericArray::from_mut_slice(&mut block[..]));
        self.mac.update(&block[..]);
        self.blob_hash.update(&block[..]);
        self.blob_length += BLOCK as u64;
        out.extend_from_slice(&block[..]);
    }

    /// Encrypt the next plaintext bytes; the complete blocks' ciphertext is appended.
    pub fn update(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        self.plain_hash.update(input);
        self.file_length += input.len() as u64;
        out.reserve(input.len() + BLOCK);
        if self.pending_len > 0 {
            let take = (BLOCK - self.pending_len).min(input.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&input[..take]);
            self.pending_len += take;
            input = &input[take..];
            if self.pending_len < BLOCK {
                return;
            }
            let mut block = self.pending;
            self.emit(&mut block, out);
            self.pending_len = 0;
        }
        let mut chunks = input.chunks_exact(BLOCK);
        for chunk in &mut chunks {
            let mut block = [0u8; BLOCK];
            block.copy_from_slice(chunk);
            self.emit(&mut block, out);
        }
        let rest = chunks.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.pending_len = rest.len();
    }

    /// Pad, encrypt the last block, append the MAC; the digest for the message.
    pub fn finish(mut self, out: &mut Vec<u8>) -> MediaDigest {
        let pad = (BLOCK - self.pending_len) as u8;
        let mut block = self.pending;
        block[self.pending_len..].fill(pad);
        self.emit(&mut block, out);
        let tag = self.mac.clone().finalize().into_bytes();
        let tag = &tag[..MEDIA_MAC_LEN];
        self.blob_hash.update(tag);
        self.blob_length += MEDIA_MAC_LEN as u64;
        out.extend_from_slice(tag);
        self.pending.zeroize();
        MediaDigest {
            file_sha256: self.plain_hash.clone().finalize().into(),
            file_enc_sha256: self.blob_hash.clone().finalize().into(),
            file_length: self.file_length,
            blob_length: self.blob_length,
        }
    }
}

/// Streaming decryption: feed the blob with [`update`](Self::update); plaintext of the
/// blocks that are certainly not the last is appended to `out` (unverified until
/// [`finish`](Self::finish) returns `Ok`: keep it from the user until then).
pub struct MediaDecryptor {
    cipher: Aes256CbcDec,
    mac: Hmac<Sha256>,
    plain_hash: Sha256,
    blob_hash: Sha256,
    /// Bytes not yet decrypted: always the last `BLOCK + MEDIA_MAC_LEN` at least,
    /// once that many have come (the final block needs unpadding; the MAC is last).
    tail: Vec<u8>,
    file_length: u64,
    blob_length: u64,
}

impl std::fmt::Debug for MediaDecryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaDecryptor")
            .field("blob_length", &self.blob_length)
            .finish_non_exhaustive()
    }
}

const HOLD: usize = BLOCK + MEDIA_MAC_LEN;

impl MediaDecryptor {
    /// Start decrypting a blob encrypted with `key` for `kind`.
    pub fn new(key: &MediaKey, kind: MediaKind) -> Self {
        let k = Expanded::new(key, kind);
        MediaDecryptor {
            cipher: Aes256CbcDec::new(&k.cipher_key.into(), &k.iv.into()),
            mac: k.mac(),
            plain_hash: Sha256::new(),
            blob_hash: Sha256::new(),
            tail: Vec::new(),
            file_length: 0,
            blob_length: 0,
        }
    }

    fn decrypt_blocks(&mut self, bytes: &mut [u8], out: &mut Vec<u8>) {
        self.mac.update(bytes);
        for block in bytes.chunks_exact_mut(BLOCK) {
            self.cipher
                .decrypt_block_mut(GenericArray::from_mut_slice(block));
        }
        self.plain_hash.update(&*bytes);
        self.file_length += bytes.len() as u64;
        out.extend_from_slice(bytes);
        bytes.zeroize();
    }

    /// Take the next bytes of the blob; decrypted plaintext (unverified) is appended.
    pub fn update(&mut self, input: &[u8], out: &mut Vec<u8>) {
        self.blob_hash.update(input);
        self.blob_length += input.len() as u64;
        self.tail.extend_from_slice(input);
        let ready = self.tail.len().saturating_sub(HOLD) / BLOCK * BLOCK;
        if ready > 0 {
            let mut head: Vec<u8> = self.tail.drain(..ready).collect();
            self.decrypt_blocks(&mut head, out);
        }
    }

    /// Check the blob hash and the MAC, decrypt and unpad the last block (appended to
    /// `out`), check the plaintext hash and length. Only `Ok` makes the output usable.
    pub fn finish(
        mut self,
        expected: &MediaExpected,
        out: &mut Vec<u8>,
    ) -> Result<MediaDigest, MediaError> {
        let blob_length = self.blob_length;
        let blob_hash: [u8; 32] = self.blob_hash.clone().finalize().into();
        if !bool::from(blob_hash.ct_eq(&expected.file_enc_sha256)) {
            return Err(MediaError::BlobHashMismatch);
        }
        let n = self.tail.len();
        if n < HOLD || !(n - MEDIA_MAC_LEN).is_multiple_of(BLOCK) {
            return Err(MediaError::BadLength(blob_length));
        }
        let mut tail = std::mem::take(&mut self.tail);
        let (body, tag) = tail.split_at_mut(n - MEDIA_MAC_LEN);
        let mut mac = self.mac.clone();
        mac.update(body);
        let full = mac.finalize().into_bytes();
        if !bool::from(full[..MEDIA_MAC_LEN].ct_eq(tag)) {
            return Err(MediaError::BadMac);
        }
        // The MAC now covers everything: decrypt the held-back blocks and unpad.
        for block in body.chunks_exact_mut(BLOCK) {
            self.cipher
                .decrypt_block_mut(GenericArray::from_mut_slice(block));
        }
        let pad = usize::from(body[body.len() - 1]);
        let valid = (1..=BLOCK).contains(&pad)
            && body[body.len() - pad..]
                .iter()
                .all(|&b| usize::from(b) == pad);
        if !valid {
            tail.zeroize();
            return Err(MediaError::BadPadding);
        }
        let plain = &body[..body.len() - pad];
        self.plain_hash.update(plain);
        self.file_length += plain.len() as u64;
        out.extend_from_slice(plain);
        tail.zeroize();
        let file_sha256: [u8; 32] = self.plain_hash.clone().finalize().into();
        let length_ok = expected.file_length.is_none_or(|l| l == self.file_length);
        if !bool::from(file_sha256.ct_eq(&expected.file_sha256)) || !length_ok {
            return Err(MediaError::FileHashMismatch);
        }
        Ok(MediaDigest {
            file_sha256,
            file_enc_sha256: blob_hash,
            file_length: self.file_length,
            blob_length,
        })
    }
}

/// Encrypt a whole plaintext in memory: the blob to upload and the message's digest.
pub fn encrypt(key: &MediaKey, kind: MediaKind, plaintext: &[u8]) -> (Vec<u8>, MediaDigest) {
    let mut e = MediaEncryptor::new(key, kind);
    let mut out = Vec::with_capacity(plaintext.len() + BLOCK + MEDIA_MAC_LEN);
    e.update(plaintext, &mut out);
    let digest = e.finish(&mut out);
    (out, digest)
}

/// Check and decrypt a whole blob in memory; the plaintext only if every check passes
/// (on failure the partial plaintext is zeroed and dropped).
pub fn decrypt(
    key: &MediaKey,
    kind: MediaKind,
    blob: &[u8],
    expected: &MediaExpected,
) -> Result<Vec<u8>, MediaError> {
    let mut d = MediaDecryptor::new(key, kind);
    let mut out = Vec::with_capacity(blob.len());
    d.update(blob, &mut out);
    match d.finish(expected, &mut out) {
        Ok(_) => Ok(out),
        Err(e) => {
            out.zeroize();
            Err(e)
        }
    }
}

/// `reader.read`, retried when interrupted; 0 at the end of the input.
pub(crate) fn read_some<R: Read>(reader: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// Chunk size of the streaming helpers.
const CHUNK: usize = 64 * 1024;

/// Encrypt from `reader` to `writer` in 64 KiB chunks (constant memory), calling
/// `progress` with the plaintext bytes done so far.
pub fn encrypt_stream<R: Read, W: Write>(
    key: &MediaKey,
    kind: MediaKind,
    mut reader: R,
    mut writer: W,
    mut progress: impl FnMut(u64),
) -> Result<MediaDigest, MediaError> {
    let mut e = MediaEncryptor::new(key, kind);
    let mut buf = vec![0u8; CHUNK];
    let mut out = Vec::with_capacity(CHUNK + BLOCK + MEDIA_MAC_LEN);
    let mut done = 0u64;
    loop {
        let n = read_some(&mut reader, &mut buf)?;
        if n == 0 {
            break;
        }
        e.update(&buf[..n], &mut out);
        writer.write_all(&out)?;
        out.clear();
        done += n as u64;
        progress(done);
    }
    let digest = e.finish(&mut out);
    writer.write_all(&out)?;
    writer.flush()?;
    buf.zeroize();
    Ok(digest)
}

/// Decrypt from `reader` to `writer` in 64 KiB chunks (constant memory), calling
/// `progress` with the blob bytes done so far. The plaintext written is unverified
/// until this returns `Ok`: write to a temporary file and publish it only then.
pub fn decrypt_stream<R: Read, W: Write>(
    key: &MediaKey,
    kind: MediaKind,
    mut reader: R,
    mut writer: W,
    expected: &MediaExpected,
    mut progress: impl FnMut(u64),
) -> Result<MediaDigest, MediaError> {
    let mut d = MediaDecryptor::new(key, kind);
    let mut buf = vec![0u8; CHUNK];
    let mut out = Vec::with_capacity(CHUNK + HOLD);
    let mut done = 0u64;
    loop {
        let n = read_some(&mut reader, &mut buf)?;
        if n == 0 {
            break;
        }
        d.update(&buf[..n], &mut out);
        writer.write_all(&out)?;
        out.zeroize();
        out.clear();
        done += n as u64;
        progress(done);
    }
    let digest = d.finish(expected, &mut out)?;
    writer.write_all(&out)?;
    writer.flush()?;
    out.zeroize();
    Ok(digest)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn key() -> MediaKey {
        MediaKey::from_slice(&[0x42; 32]).unwrap()
    }

    #[test]
    fn every_length_round_trips_in_memory_and_in_chunks() {
        for len in [0usize, 1, 15, 16, 17, 31, 32, 33, 100, 1000, 4096 + 7] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let (blob, digest) = encrypt(&key(), MediaKind::Document, &plain);
            assert_eq!(blob.len(), (len / 16 + 1) * 16 + MEDIA_MAC_LEN, "len {len}");
            assert_eq!(digest.blob_length, blob.len() as u64);
            assert_eq!(digest.file_length, len as u64);
            assert_eq!(digest.file_sha256, <[u8; 32]>::from(Sha256::digest(&plain)));
            assert_eq!(
                digest.file_enc_sha256,
                <[u8; 32]>::from(Sha256::digest(&blob))
            );
            let exp = digest.expected();
            assert_eq!(
                decrypt(&key(), MediaKind::Document, &blob, &exp).unwrap(),
                plain
            );
            // Fed in odd chunk sizes both ways: the same bytes.
            for step in [1usize, 5, 16, 26, 27, 333] {
                let mut e = MediaEncryptor::new(&key(), MediaKind::Document);
                let mut chunked = Vec::new();
                for c in plain.chunks(step) {
                    e.update(c, &mut chunked);
                }
                assert_eq!(e.finish(&mut chunked), digest);
                assert_eq!(chunked, blob);
                let mut d = MediaDecryptor::new(&key(), MediaKind::Document);
                let mut out = Vec::new();
                for c in blob.chunks(step) {
                    d.update(c, &mut out);
                }
                assert_eq!(d.finish(&exp, &mut out).unwrap(), digest);
                assert_eq!(out, plain);
            }
        }
    }

    #[test]
    fn any_change_is_caught_before_plaintext_is_handed_over() {
        let plain = vec![9u8; 300];
        let (blob, digest) = encrypt(&key(), MediaKind::Image, &plain);
        let exp = digest.expected();
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x01;
            let e = decrypt(&key(), MediaKind::Image, &bad, &exp).unwrap_err();
            assert!(matches!(e, MediaError::BlobHashMismatch), "byte {i}: {e}");
            // With the message's hash updated too (a sender-side forgery), the MAC catches it.
            let forged = MediaExpected {
                file_enc_sha256: Sha256::digest(&bad).into(),
                ..exp.clone()
            };
            let e = decrypt(&key(), MediaKind::Image, &bad, &forged).unwrap_err();
            assert!(matches!(e, MediaError::BadMac), "byte {i}: {e}");
        }
        // Truncated (also to a whole number of blocks), wrong kind, wrong key.
        for cut in [0, 1, 10, 25, blob.len() - 16, blob.len() - 1] {
            let short = &blob[..cut];
            let forged = MediaExpected {
                file_enc_sha256: Sha256::digest(short).into(),
                ..exp.clone()
            };
            let e = decrypt(&key(), MediaKind::Image, short, &forged).unwrap_err();
            assert!(
                matches!(e, MediaError::BadLength(_) | MediaError::BadMac),
                "cut {cut}: {e}"
            );
        }
        assert!(matches!(
            decrypt(&key(), MediaKind::Video, &blob, &exp),
            Err(MediaError::BadMac)
        ));
        let other = MediaKey::from_slice(&[1; 32]).unwrap();
        assert!(matches!(
            decrypt(&other, MediaKind::Image, &blob, &exp),
            Err(MediaError::BadMac)
        ));
        // The right blob, but the message claims another plaintext hash or length.
        let lie = MediaExpected {
            file_sha256: [0; 32],
            ..exp.clone()
        };
        assert!(matches!(
            decrypt(&key(), MediaKind::Image, &blob, &lie),
            Err(MediaError::FileHashMismatch)
        ));
        let lie = MediaExpected {
            file_length: Some(299),
            ..exp
        };
        assert!(matches!(
            decrypt(&key(), MediaKind::Image, &blob, &lie),
            Err(MediaError::FileHashMismatch)
        ));
    }

    #[test]
    fn streams_report_progress_and_match_memory() {
        let plain: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut blob = Vec::new();
        let mut seen = Vec::new();
        let digest = encrypt_stream(&key(), MediaKind::Video, &plain[..], &mut blob, |n| {
            seen.push(n)
        })
        .unwrap();
        assert_eq!(seen.last(), Some(&200_000));
        assert!(seen.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            encrypt(&key(), MediaKind::Video, &plain),
            (blob.clone(), digest.clone())
        );
        let mut back = Vec::new();
        let d = decrypt_stream(
            &key(),
            MediaKind::Video,
            &blob[..],
            &mut back,
            &digest.expected(),
            |_| {},
        )
        .unwrap();
        assert_eq!(d, digest);
        assert_eq!(back, plain);
    }

    #[test]
    fn kind_codes_round_trip() {
        for code in 0..12 {
            if let Some(k) = MediaKind::from_code(code) {
                assert_eq!(k.code(), code);
            }
        }
        assert_eq!(MediaKind::from_code(1), Some(MediaKind::Image));
        assert_eq!(MediaKind::from_code(0), None);
        assert_eq!(MediaKind::from_code(10), None);
    }

    #[test]
    fn keys_are_redacted_and_compared_whole() {
        let k = key();
        assert_eq!(format!("{k:?}"), "MediaKey(<redacted>)");
        assert_eq!(k, key());
        assert_ne!(k, MediaKey::from_slice(&[0x43; 32]).unwrap());
        assert!(MediaKey::from_slice(&[0; 31]).is_none());
    }
}
