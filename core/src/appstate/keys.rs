//! Sync keys and the five keys expanded from each: index MACs, value encryption and
//! MACs, snapshot and patch MACs.

use core::fmt;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use rand_core::{CryptoRng, RngCore};
use sha2::Sha512;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::lthash::LtHash;
use super::proto::Operation;
use super::{mac_eq, AppStateError};
use crate::crypto::{aes256_cbc_decrypt, aes256_cbc_encrypt, hkdf_sha256, HmacKey};
use crate::error::DecodeError;

const MUTATION_KEYS_INFO: &[u8] = b"WhatsApp Mutation Keys";
const IV_LEN: usize = 16;
const MAC_LEN: usize = 32;

/// A 32-byte app-state sync key and its id, shared by the primary device with its
/// companions (end to end). Zeroized on drop; `Debug` shows only the id.
///
/// WhatsApp's key ids are 6 bytes, a 2-byte device id and a 4-byte epoch; the design
/// notes leave their order open. Pawl's choice is device id (big-endian) then epoch
/// (big-endian): [`SyncKey::key_id`]. Any id bytes are accepted, as ids are opaque in
/// every MAC.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SyncKey {
    id: Vec<u8>,
    data: [u8; 32],
}

impl SyncKey {
    /// A key from its id and 32 bytes.
    pub fn new(id: impl Into<Vec<u8>>, data: [u8; 32]) -> Self {
        SyncKey {
            id: id.into(),
            data,
        }
    }

    /// A fresh random key for a device and epoch.
    pub fn generate(device_id: u16, epoch: u32, rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut data = [0u8; 32];
        rng.fill_bytes(&mut data);
        let key = SyncKey::new(SyncKey::key_id(device_id, epoch), data);
        data.zeroize();
        key
    }

    /// Pawl's 6-byte key id: `u16_BE(device_id) ‖ u32_BE(epoch)`.
    pub fn key_id(device_id: u16, epoch: u32) -> [u8; 6] {
        let mut id = [0u8; 6];
        id[..2].copy_from_slice(&device_id.to_be_bytes());
        id[2..].copy_from_slice(&epoch.to_be_bytes());
        id
    }

    /// The key id.
    pub fn id(&self) -> &[u8] {
        &self.id
    }

    /// The device id of a 6-byte id (`None` for other lengths).
    pub fn device_id(&self) -> Option<u16> {
        let b: [u8; 6] = self.id.as_slice().try_into().ok()?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }

    /// The epoch of a 6-byte id (`None` for other lengths).
    pub fn epoch(&self) -> Option<u32> {
        let b: [u8; 6] = self.id.as_slice().try_into().ok()?;
        Some(u32::from_be_bytes([b[2], b[3], b[4], b[5]]))
    }

    /// The 32 secret bytes (to share with a companion or persist).
    pub fn data(&self) -> &[u8; 32] {
        &self.data
    }

    /// The five keys expanded from this one.
    pub fn expand(&self) -> MutationKeys {
        MutationKeys::from_key(&self.data)
    }
}

impl fmt::Debug for SyncKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncKey")
            .field("id", &format_args!("{:02x?}", self.id))
            .field("data", &"<redacted>")
            .finish()
    }
}

/// `HKDF-SHA256(syncKey, no salt, "WhatsApp Mutation Keys", 160)` split into five
/// 32-byte keys, in this order. Zeroized on drop; `Debug` prints nothing secret.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MutationKeys {
    pub(super) index: [u8; 32],
    pub(super) value_encryption: [u8; 32],
    pub(super) value_mac: [u8; 32],
    pub(super) snapshot_mac: [u8; 32],
    pub(super) patch_mac: [u8; 32],
}

impl MutationKeys {
    /// Expands a 32-byte sync key.
    pub fn from_key(key: &[u8; 32]) -> Self {
        let mut okm = [0u8; 160];
        hkdf_sha256(None, key, &[MUTATION_KEYS_INFO], &mut okm);
        let mut keys = MutationKeys {
            index: [0; 32],
            value_encryption: [0; 32],
            value_mac: [0; 32],
            snapshot_mac: [0; 32],
            patch_mac: [0; 32],
        };
        for (dst, src) in [
            &mut keys.index,
            &mut keys.value_encryption,
            &mut keys.value_mac,
            &mut keys.snapshot_mac,
            &mut keys.patch_mac,
        ]
        .into_iter()
        .zip(okm.chunks_exact(32))
        {
            dst.copy_from_slice(src);
        }
        okm.zeroize();
        keys
    }

    /// `HMAC-SHA256(indexKey, indexJSON)`: the record's address.
    pub fn index_mac(&self, index_json: &[u8]) -> [u8; 32] {
        HmacKey::new(&self.index).mac(&[index_json])
    }

    /// `HMAC-SHA512(valueMacKey, [op+1] ‖ keyID ‖ IV‖ciphertext ‖ u64_BE(len(keyID)+1))[..32]`.
    pub fn value_mac(&self, op: Operation, key_id: &[u8], iv_and_ciphertext: &[u8]) -> [u8; 32] {
        // HMAC pads a key shorter than the block with zeros: a 32-byte key zero-padded to
        // SHA-512's 128-byte block is the same key, and the fixed-size constructor is
        // infallible.
        let mut block = [0u8; 128];
        block[..32].copy_from_slice(&self.value_mac);
        let mut m = <Hmac<Sha512> as KeyInit>::new(&block.into());
        block.zeroize();
        m.update(&[op.mac_byte()]);
        m.update(key_id);
        m.update(iv_and_ciphertext);
        m.update(&(key_id.len() as u64 + 1).to_be_bytes());
        let full = m.finalize().into_bytes();
        let mut out = [0u8; 32];
        out.copy_from_slice(&full[..32]);
        out
    }

    /// `HMAC-SHA256(snapshotMacKey, ltHash ‖ u64_BE(version) ‖ collection)`.
    pub fn snapshot_mac(&self, hash: &LtHash, version: u64, collection: &str) -> [u8; 32] {
        HmacKey::new(&self.snapshot_mac).mac(&[
            hash.as_bytes(),
            &version.to_be_bytes(),
            collection.as_bytes(),
        ])
    }

    /// `HMAC-SHA256(patchMacKey, snapshotMAC ‖ valueMAC_1 ‖ … ‖ valueMAC_n ‖
    /// u64_BE(version) ‖ collection)`.
    pub fn patch_mac<'a>(
        &self,
        snapshot_mac: &[u8],
        value_macs: impl IntoIterator<Item = &'a [u8; 32]>,
        version: u64,
        collection: &str,
    ) -> [u8; 32] {
        let mut m = HmacKey::new(&self.patch_mac).start();
        m.update(snapshot_mac);
        for v in value_macs {
            m.update(v);
        }
        m.update(&version.to_be_bytes());
        m.update(collection.as_bytes());
        m.finalize().into_bytes().into()
    }

    /// `IV ‖ AES-256-CBC(valueEncryptionKey, IV, plaintext) ‖ valueMAC`.
    pub(crate) fn seal_value(
        &self,
        op: Operation,
        key_id: &[u8],
        iv: &[u8; IV_LEN],
        plaintext: &[u8],
    ) -> Vec<u8> {
        let ct = aes256_cbc_encrypt(&self.value_encryption, iv, plaintext);
        let mut blob = Vec::with_capacity(IV_LEN + ct.len() + MAC_LEN);
        blob.extend_from_slice(iv);
        blob.extend_from_slice(&ct);
        let mac = self.value_mac(op, key_id, &blob);
        blob.extend_from_slice(&mac);
        blob
    }

    /// Checks the value MAC (constant time), then decrypts.
    pub(crate) fn open_value(
        &self,
        op: Operation,
        key_id: &[u8],
        blob: &[u8],
    ) -> Result<Vec<u8>, AppStateError> {
        let (body, mac) = split_value(blob)?;
        if !mac_eq(&self.value_mac(op, key_id, body), mac) {
            return Err(AppStateError::BadValueMac);
        }
        let (iv, ct) = body.split_at(IV_LEN);
        let iv: &[u8; IV_LEN] = iv
            .try_into()
            .map_err(|_| DecodeError::InvalidField("value"))?;
        aes256_cbc_decrypt(&self.value_encryption, iv, ct).ok_or(AppStateError::BadCiphertext)
    }
}

impl fmt::Debug for MutationKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MutationKeys(<redacted>)")
    }
}

/// Splits a value blob into `IV‖ciphertext` and the value MAC, checking its shape
/// (16-byte IV, a non-empty whole number of blocks, 32-byte MAC).
pub(crate) fn split_value(blob: &[u8]) -> Result<(&[u8], &[u8]), AppStateError> {
    let bad = AppStateError::Decode(DecodeError::InvalidField("value"));
    let body_len = blob.len().checked_sub(MAC_LEN).ok_or(bad.clone())?;
    let ct_len = body_len.checked_sub(IV_LEN).ok_or(bad.clone())?;
    if ct_len == 0 || !ct_len.is_multiple_of(16) {
        return Err(bad);
    }
    Ok(blob.split_at(body_len))
}

/// The value MAC at the end of a well-formed blob.
pub(crate) fn value_mac_of(blob: &[u8]) -> Result<[u8; 32], AppStateError> {
    let (_, mac) = split_value(blob)?;
    mac.try_into()
        .map_err(|_| AppStateError::Decode(DecodeError::InvalidField("value")))
}
