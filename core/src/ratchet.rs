//! Double Ratchet key schedule as libsignal v3 runs it:
//! root step `HKDF(salt = RK, ikm = DH, "WhisperRatchet") → RK' ‖ CK`,
//! chain step `seed = HMAC(CK, 0x01)`, `CK' = HMAC(CK, 0x02)`,
//! message keys `HKDF(seed, "WhisperMessageKeys", 80) → cipher ‖ mac ‖ iv`.

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::{hkdf_sha256, HmacKey};
use crate::error::KeyError;
use crate::keys::{PrivateKey, PublicKey};

const MESSAGE_KEY_SEED: u8 = 0x01;
const CHAIN_KEY_SEED: u8 = 0x02;

/// Forward jump limit inside one chain (libsignal's MAX_FORWARD_JUMPS).
pub const MAX_FORWARD_JUMPS: u32 = 25_000;
/// Skipped message keys kept per receiver chain; the oldest are evicted.
pub const MAX_MESSAGE_KEYS: usize = 2000;
/// Receiver chains kept per session state; the oldest is dropped.
pub const MAX_RECEIVER_CHAINS: usize = 5;

/// X3DH output: `HKDF(0xFF*32 ‖ DH1 ‖ DH2 ‖ DH3 [‖ DH4], "WhisperText", 64)`.
pub(crate) fn derive_initial(secrets: &[u8]) -> (RootKey, ChainKey) {
    let mut out = [0u8; 64];
    hkdf_sha256(None, secrets, &[b"WhisperText"], &mut out);
    let r = split(&out);
    out.zeroize();
    r
}

fn split(out: &[u8; 64]) -> (RootKey, ChainKey) {
    let mut rk = Box::new([0u8; 32]);
    let mut ck = Box::new([0u8; 32]);
    rk.copy_from_slice(&out[..32]);
    ck.copy_from_slice(&out[32..]);
    (RootKey(rk), ChainKey { key: ck, index: 0 })
}

/// The 32-byte root key.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct RootKey(pub(crate) Box<[u8; 32]>);

impl RootKey {
    /// One DH ratchet step.
    pub(crate) fn create_chain(
        &self,
        their: &PublicKey,
        ours: &PrivateKey,
    ) -> Result<(RootKey, ChainKey), KeyError> {
        let mut shared = ours.agree(their)?;
        let mut out = [0u8; 64];
        hkdf_sha256(Some(&self.0[..]), &shared, &[b"WhisperRatchet"], &mut out);
        shared.zeroize();
        let r = split(&out);
        out.zeroize();
        Ok(r)
    }
}

/// A chain key and its index.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct ChainKey {
    pub(crate) key: Box<[u8; 32]>,
    #[zeroize(skip)]
    pub(crate) index: u32,
}

impl ChainKey {
    /// `(message key seed, next chain key)` with one HMAC key schedule.
    pub(crate) fn step(&self) -> (MessageKeySeed, ChainKey) {
        let h = HmacKey::new(&self.key[..]);
        let seed = h.mac(&[&[MESSAGE_KEY_SEED]]);
        let next = h.mac(&[&[CHAIN_KEY_SEED]]);
        (
            MessageKeySeed {
                seed,
                counter: self.index,
            },
            ChainKey {
                key: Box::new(next),
                index: self.index.wrapping_add(1),
            },
        )
    }
    /// Advance in place, returning the seed for the current index.
    pub(crate) fn advance(&mut self) -> MessageKeySeed {
        let (seed, next) = self.step();
        *self = next;
        seed
    }
}

/// The 32-byte seed from which a message's keys expand; skipped keys are kept as seeds.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct MessageKeySeed {
    pub(crate) seed: [u8; 32],
    #[zeroize(skip)]
    pub(crate) counter: u32,
}

impl MessageKeySeed {
    pub(crate) fn expand(&self) -> MessageKeys {
        let mut out = [0u8; 80];
        hkdf_sha256(None, &self.seed, &[b"WhisperMessageKeys"], &mut out);
        let mut k = MessageKeys {
            cipher_key: [0; 32],
            mac_key: [0; 32],
            iv: [0; 16],
            counter: self.counter,
        };
        k.cipher_key.copy_from_slice(&out[..32]);
        k.mac_key.copy_from_slice(&out[32..64]);
        k.iv.copy_from_slice(&out[64..]);
        out.zeroize();
        k
    }
}

/// Keys for one message.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct MessageKeys {
    pub(crate) cipher_key: [u8; 32],
    pub(crate) mac_key: [u8; 32],
    pub(crate) iv: [u8; 16],
    #[zeroize(skip)]
    pub(crate) counter: u32,
}

/// Public access to the chain-key derivation for known-answer tests and other
/// implementations: returns `(cipher_key, mac_key, iv, next_chain_key)`.
pub fn chain_key_vector(chain_key: &[u8; 32]) -> ([u8; 32], [u8; 32], [u8; 16], [u8; 32]) {
    let ck = ChainKey {
        key: Box::new(*chain_key),
        index: 0,
    };
    let (seed, next) = ck.step();
    let mk = seed.expand();
    (mk.cipher_key, mk.mac_key, mk.iv, *next.key)
}
