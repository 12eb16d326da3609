//! Curve25519 keys as Signal serializes them.

use curve25519_dalek::montgomery::MontgomeryPoint;
use rand_core::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::KeyError;

/// Type byte of a Curve25519 ("djb") public key in Signal's encoding.
pub const DJB_TYPE: u8 = 0x05;

/// A Curve25519 public key: 32-byte u-coordinate, serialized as `0x05 ‖ u` (33 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Parse the 33-byte `0x05 ‖ u` form. Pawl accepts exactly one encoding per key:
    /// longer input, and non-canonical `u` (bit 255 set, or `u ≥ 2^255 − 19`), are
    /// rejected. X25519 ignores bit 255, so accepting it would give one point two
    /// encodings, and a replayed `PreKeySignalMessage` with that bit flipped would
    /// look like a new session. Honest implementations never produce such keys.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        match bytes {
            [DJB_TYPE, rest @ ..] if rest.len() == 32 => {
                let mut u = [0u8; 32];
                u.copy_from_slice(rest);
                if !is_canonical(&u) {
                    return Err(KeyError::BadPublicKey);
                }
                Ok(PublicKey(u))
            }
            [t, ..] if *t != DJB_TYPE => Err(KeyError::UnknownKeyType(*t)),
            _ => Err(KeyError::BadPublicKey),
        }
    }
    /// Build from the bare 32-byte u-coordinate.
    pub fn from_u_bytes(u: [u8; 32]) -> Self {
        PublicKey(u)
    }
    /// The 33-byte serialized form.
    pub fn serialize(&self) -> [u8; 33] {
        let mut out = [0u8; 33];
        out[0] = DJB_TYPE;
        out[1..].copy_from_slice(&self.0);
        out
    }
    /// The 32-byte u-coordinate.
    pub fn u_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    /// Constant-time equality.
    pub fn ct_eq(&self, other: &PublicKey) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey(05")?;
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// A Curve25519 private key (32 bytes, zeroized on drop, never printed).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PrivateKey(Box<[u8; 32]>);

impl PrivateKey {
    /// Generate a fresh, clamped private key.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut k = Box::new([0u8; 32]);
        rng.fill_bytes(&mut k[..]);
        k[0] &= 248;
        k[31] &= 127;
        k[31] |= 64;
        PrivateKey(k)
    }
    /// Import 32 bytes as they are. Keys are clamped at generation only, never here:
    /// agreement multiplies by the scalar exactly as given (libsignal-protocol-c does the
    /// same), which the session KAT checks.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| KeyError::BadPrivateKey)?;
        Ok(PrivateKey(Box::new(arr)))
    }
    /// The raw 32 bytes. Handle with care: this is the secret.
    pub fn to_bytes(&self) -> [u8; 32] {
        *self.0
    }
    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    /// Compute the public key (one fixed-base scalar multiplication).
    pub fn public_key(&self) -> PublicKey {
        let k = &*self.0;
        let clamped = k[0] & 7 == 0 && k[31] & 0xc0 == 0x40;
        let u = if clamped {
            // Fast path: the precomputed Edwards basepoint table.
            MontgomeryPoint::mul_base_clamped(*k)
        } else {
            curve25519_dalek::constants::X25519_BASEPOINT.mul_bits_be(scalar_bits_be(k))
        };
        PublicKey(u.to_bytes())
    }
    /// X25519 agreement with `their` key, multiplying by this scalar exactly as stored.
    /// Fails if the result is all zeros (their key is of small order).
    pub fn agree(&self, their: &PublicKey) -> Result<[u8; 32], KeyError> {
        let shared = MontgomeryPoint(their.0).mul_bits_be(scalar_bits_be(&self.0));
        let out = shared.to_bytes();
        if bool::from(out.ct_eq(&[0u8; 32])) {
            return Err(KeyError::BadPublicKey);
        }
        Ok(out)
    }
}

/// `u < 2^255 − 19` (which implies bit 255 clear).
fn is_canonical(u: &[u8; 32]) -> bool {
    if u[31] & 0x80 != 0 {
        return false;
    }
    // u >= p iff u[31] == 0x7f, u[1..31] all 0xff and u[0] >= 0xed.
    !(u[31] == 0x7f && u[1..31].iter().all(|b| *b == 0xff) && u[0] >= 0xed)
}

fn scalar_bits_be(k: &[u8; 32]) -> impl Iterator<Item = bool> + '_ {
    (0..256).rev().map(move |i| (k[i >> 3] >> (i & 7)) & 1 == 1)
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

/// A private key with its public key computed once and kept.
#[derive(Clone)]
pub struct KeyPair {
    /// The public half.
    pub public: PublicKey,
    /// The private half.
    pub private: PrivateKey,
}

impl KeyPair {
    /// Generate a fresh key pair.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let private = PrivateKey::generate(rng);
        KeyPair {
            public: private.public_key(),
            private,
        }
    }
    /// Build from a private key, computing the public key.
    pub fn from_private(private: PrivateKey) -> Self {
        KeyPair {
            public: private.public_key(),
            private,
        }
    }
    /// Build from both halves without recomputation. The caller vouches that they match
    /// (e.g. both were read from one stored record).
    pub fn from_parts(public: PublicKey, private: PrivateKey) -> Self {
        KeyPair { public, private }
    }
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let KeyPair { public, private: _ } = self;
        f.debug_struct("KeyPair")
            .field("public", public)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn public_key_encoding() {
        let mut b = [1u8; 33];
        b[0] = 5;
        let k = PublicKey::from_bytes(&b).unwrap();
        assert_eq!(k.serialize(), b);
        assert_eq!(PublicKey::from_bytes(&b[..32]), Err(KeyError::BadPublicKey));
        b[0] = 6;
        assert_eq!(PublicKey::from_bytes(&b), Err(KeyError::UnknownKeyType(6)));
        assert_eq!(PublicKey::from_bytes(&[]), Err(KeyError::BadPublicKey));
        let mut hi = [0u8; 33];
        hi[0] = 5;
        hi[32] = 0x80;
        assert_eq!(
            PublicKey::from_bytes(&hi),
            Err(KeyError::BadPublicKey),
            "bit 255 set"
        );
        let mut p = [0xffu8; 33];
        p[0] = 5;
        p[1] = 0xed;
        p[32] = 0x7f;
        assert_eq!(
            PublicKey::from_bytes(&p),
            Err(KeyError::BadPublicKey),
            "u = p"
        );
        p[1] = 0xec;
        assert!(PublicKey::from_bytes(&p).is_ok(), "u = p - 1");
    }
    #[test]
    fn private_key_debug_is_redacted() {
        let k = PrivateKey::from_bytes(&[0x42; 32]).unwrap();
        assert_eq!(format!("{k:?}"), "PrivateKey(<redacted>)");
        let kp = KeyPair::from_private(k);
        let s = format!("{kp:?}");
        assert!(!s.contains("4242"), "{s}");
        assert!(s.starts_with("KeyPair { public: PublicKey(05"), "{s}");
    }
    #[test]
    fn agreement_is_symmetric_and_rejects_small_order() {
        let mut rng = rand_core::OsRng;
        let a = KeyPair::generate(&mut rng);
        let b = KeyPair::generate(&mut rng);
        assert_eq!(
            a.private.agree(&b.public).unwrap(),
            b.private.agree(&a.public).unwrap()
        );
        let zero = PublicKey::from_u_bytes([0; 32]);
        assert_eq!(a.private.agree(&zero), Err(KeyError::BadPublicKey));
    }
}
