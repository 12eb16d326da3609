//! LtHash: the summation hash of a collection's value MACs.
//!
//! 128 bytes read as 64 little-endian `u16` lanes, starting at zero. An item (a value
//! MAC) is expanded with `HKDF-SHA256(item, no salt, "WhatsApp Patch Integrity", 128)`
//! and added or subtracted lane-wise modulo 2^16, so the hash of a set does not depend on
//! the order items were added, and removing an item undoes adding it.

use core::fmt;

use crate::crypto::hkdf_sha256;

/// Length of an [`LtHash`] in bytes.
pub const LT_HASH_LEN: usize = 128;

const INFO: &[u8] = b"WhatsApp Patch Integrity";

/// The LTHash of a collection (not secret: it is authenticated, never a key).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LtHash([u8; LT_HASH_LEN]);

impl LtHash {
    /// The hash of the empty set (all zeros).
    pub const ZERO: LtHash = LtHash([0; LT_HASH_LEN]);

    /// A hash from its 128 bytes.
    pub fn from_bytes(bytes: [u8; LT_HASH_LEN]) -> Self {
        LtHash(bytes)
    }

    /// The 128 bytes.
    pub fn as_bytes(&self) -> &[u8; LT_HASH_LEN] {
        &self.0
    }

    /// Adds an item (a value MAC) to the set.
    pub fn add(&mut self, item: &[u8]) {
        self.combine(item, u16::wrapping_add);
    }

    /// Removes an item previously added.
    pub fn remove(&mut self, item: &[u8]) {
        self.combine(item, u16::wrapping_sub);
    }

    fn combine(&mut self, item: &[u8], op: fn(u16, u16) -> u16) {
        let mut expanded = [0u8; LT_HASH_LEN];
        hkdf_sha256(None, item, &[INFO], &mut expanded);
        for (lane, delta) in self.0.chunks_exact_mut(2).zip(expanded.chunks_exact(2)) {
            let a = u16::from_le_bytes([lane[0], lane[1]]);
            let b = u16::from_le_bytes([delta[0], delta[1]]);
            lane.copy_from_slice(&op(a, b).to_le_bytes());
        }
    }
}

impl Default for LtHash {
    fn default() -> Self {
        LtHash::ZERO
    }
}

impl fmt::Debug for LtHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LtHash(")?;
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        f.write_str("…)")
    }
}
