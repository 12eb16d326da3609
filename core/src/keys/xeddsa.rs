//! XEdDSA signatures over Curve25519 keys, in libsignal's variant: the Edwards public
//! key's sign bit travels in the top bit of signature byte 63, and the signer does not
//! negate its scalar. Signatures are 64 bytes. See signal.org/docs/specifications/xeddsa.

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::Scalar;
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use super::curve::{PrivateKey, PublicKey};
use crate::error::KeyError;

/// A 64-byte XEdDSA signature.
pub type Signature = [u8; 64];

const HASH1_PREFIX: [u8; 32] = {
    let mut p = [0xffu8; 32];
    p[0] = 0xfe;
    p
};

/// The signing half of a key with its Edwards public key computed once.
#[derive(Clone)]
pub(crate) struct SigningKey {
    scalar: Scalar,
    raw: PrivateKey,
    ed_public: [u8; 32],
}

impl SigningKey {
    pub(crate) fn new(private: &PrivateKey) -> Self {
        let scalar = Scalar::from_bytes_mod_order(*private.as_bytes());
        let ed_public = EdwardsPoint::mul_base(&scalar).compress().to_bytes();
        SigningKey {
            scalar,
            raw: private.clone(),
            ed_public,
        }
    }

    /// Sign the concatenation of `message` parts with 64 bytes of fresh randomness.
    pub(crate) fn sign<R: RngCore + CryptoRng>(&self, message: &[&[u8]], rng: &mut R) -> Signature {
        let mut z = [0u8; 64];
        rng.fill_bytes(&mut z);
        let mut h = Sha512::new();
        h.update(HASH1_PREFIX);
        h.update(self.raw.as_bytes());
        for m in message {
            h.update(m);
        }
        h.update(z);
        let r = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
        z.zeroize();
        let cap_r = EdwardsPoint::mul_base(&r).compress();
        let mut h = Sha512::new();
        h.update(cap_r.as_bytes());
        h.update(self.ed_public);
        for m in message {
            h.update(m);
        }
        let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
        let s = k * self.scalar + r;
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(cap_r.as_bytes());
        sig[32..].copy_from_slice(s.as_bytes());
        sig[63] &= 0x7f;
        sig[63] |= self.ed_public[31] & 0x80;
        sig
    }
}

impl Drop for SigningKey {
    fn drop(&mut self) {
        self.scalar.zeroize();
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

/// A Curve25519 public key prepared for repeated XEdDSA verification: the Edwards point
/// is computed once per sign bit and kept.
#[derive(Clone, Debug)]
pub struct VerifyingKey {
    key: PublicKey,
    cached: Option<(u8, EdwardsPoint, CompressedEdwardsY)>,
}

impl VerifyingKey {
    /// Prepare `key` for verification.
    pub fn new(key: PublicKey) -> Self {
        VerifyingKey { key, cached: None }
    }
    /// The Curve25519 key.
    pub fn public_key(&self) -> &PublicKey {
        &self.key
    }

    fn edwards(&mut self, sign: u8) -> Option<(EdwardsPoint, CompressedEdwardsY)> {
        if let Some((s, p, c)) = &self.cached {
            if *s == sign {
                return Some((*p, *c));
            }
        }
        let a = MontgomeryPoint(*self.key.u_bytes()).to_edwards(sign)?;
        let minus_a = -a;
        let c = a.compress();
        self.cached = Some((sign, minus_a, c));
        Some((minus_a, c))
    }

    /// Verify `sig` over the concatenation of `message` parts.
    pub fn verify(&mut self, message: &[&[u8]], sig: &Signature) -> Result<(), KeyError> {
        let sign = (sig[63] & 0x80) >> 7;
        let mut s_bytes = [0u8; 32];
        s_bytes.copy_from_slice(&sig[32..]);
        s_bytes[31] &= 0x7f;
        // Reject non-canonical s (libsignal rejects the top three bits; we require s < l).
        let s: Option<Scalar> = Scalar::from_canonical_bytes(s_bytes).into();
        let s = s.ok_or(KeyError::BadSignature)?;
        let (minus_a, cap_a) = self.edwards(sign).ok_or(KeyError::BadSignature)?;
        let mut h = Sha512::new();
        h.update(&sig[..32]);
        h.update(cap_a.as_bytes());
        for m in message {
            h.update(m);
        }
        let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
        let check = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &minus_a, &s).compress();
        if bool::from(check.as_bytes().ct_eq(&sig[..32])) {
            Ok(())
        } else {
            Err(KeyError::BadSignature)
        }
    }
}

impl PrivateKey {
    /// XEdDSA-sign `message` (fresh 64-byte randomness from `rng`).
    pub fn sign<R: RngCore + CryptoRng>(&self, message: &[u8], rng: &mut R) -> Signature {
        SigningKey::new(self).sign(&[message], rng)
    }
}

impl PublicKey {
    /// Verify an XEdDSA signature made by this key over `message`.
    pub fn verify_signature(&self, message: &[u8], sig: &[u8]) -> Result<(), KeyError> {
        let sig: &Signature = sig.try_into().map_err(|_| KeyError::BadSignature)?;
        VerifyingKey::new(*self).verify(&[message], sig)
    }
}

#[cfg(test)]
mod tests {

    use crate::keys::KeyPair;
    #[test]
    fn sign_verify_roundtrip_and_tamper() {
        let mut rng = rand_core::OsRng;
        for _ in 0..20 {
            let kp = KeyPair::generate(&mut rng);
            let sig = kp.private.sign(b"hello world", &mut rng);
            kp.public.verify_signature(b"hello world", &sig).unwrap();
            assert!(kp.public.verify_signature(b"hello worle", &sig).is_err());
            let mut bad = sig;
            bad[10] ^= 4;
            assert!(kp.public.verify_signature(b"hello world", &bad).is_err());
            let mut bad = sig;
            bad[63] ^= 0x80;
            assert!(kp.public.verify_signature(b"hello world", &bad).is_err());
            assert!(kp
                .public
                .verify_signature(b"hello world", &sig[..63])
                .is_err());
        }
    }
}
