//! One-time prekeys, signed prekeys, prekey bundles and registration ids.

use rand_core::{CryptoRng, RngCore};

use super::curve::{KeyPair, PublicKey};
use super::identity::{IdentityKey, IdentityKeyPair};
use crate::error::KeyError;

/// A random registration id in 1..=16380, as Signal clients generate them.
pub fn generate_registration_id<R: RngCore + CryptoRng>(rng: &mut R) -> u32 {
    (rng.next_u32() % 16380) + 1
}

/// A one-time prekey: consumed by the first session that uses it.
#[derive(Clone, Debug)]
pub struct PreKeyRecord {
    /// The prekey id (24-bit in practice; any u32 is accepted).
    pub id: u32,
    /// The key pair.
    pub key_pair: KeyPair,
}

impl PreKeyRecord {
    /// Generate a prekey with `id`.
    pub fn generate<R: RngCore + CryptoRng>(id: u32, rng: &mut R) -> Self {
        PreKeyRecord {
            id,
            key_pair: KeyPair::generate(rng),
        }
    }
}

/// A signed prekey: medium-term, signed by the identity key over its 33-byte encoding.
#[derive(Clone, Debug)]
pub struct SignedPreKeyRecord {
    /// The signed prekey id.
    pub id: u32,
    /// Creation time, milliseconds since the Unix epoch (supplied by the caller).
    pub timestamp: u64,
    /// The key pair.
    pub key_pair: KeyPair,
    /// XEdDSA signature by the identity key over `key_pair.public.serialize()`.
    pub signature: [u8; 64],
}

impl SignedPreKeyRecord {
    /// Generate and sign a new signed prekey.
    pub fn generate<R: RngCore + CryptoRng>(
        id: u32,
        timestamp: u64,
        identity: &IdentityKeyPair,
        rng: &mut R,
    ) -> Self {
        let key_pair = KeyPair::generate(rng);
        let signature = identity
            .private_key()
            .sign(&key_pair.public.serialize(), rng);
        SignedPreKeyRecord {
            id,
            timestamp,
            key_pair,
            signature,
        }
    }
}

/// What a device publishes so that others can start a session with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreKeyBundle {
    /// The device's registration id.
    pub registration_id: u32,
    /// The device id.
    pub device_id: u32,
    /// The one-time prekey, if one is left.
    pub prekey: Option<(u32, PublicKey)>,
    /// Signed prekey id.
    pub signed_prekey_id: u32,
    /// Signed prekey public key.
    pub signed_prekey: PublicKey,
    /// Signature over the signed prekey's 33-byte form.
    pub signed_prekey_signature: Vec<u8>,
    /// The device's identity key.
    pub identity_key: IdentityKey,
}

impl PreKeyBundle {
    /// The bundle a device publishes, built from its own records.
    pub fn from_records(
        registration_id: u32,
        device_id: u32,
        identity_key: IdentityKey,
        signed: &SignedPreKeyRecord,
        one_time: Option<&PreKeyRecord>,
    ) -> Self {
        PreKeyBundle {
            registration_id,
            device_id,
            prekey: one_time.map(|p| (p.id, p.key_pair.public)),
            signed_prekey_id: signed.id,
            signed_prekey: signed.key_pair.public,
            signed_prekey_signature: signed.signature.to_vec(),
            identity_key,
        }
    }

    /// Check the signed prekey's signature against the identity key.
    pub fn verify_signature(&self) -> Result<(), KeyError> {
        self.identity_key.public_key().verify_signature(
            &self.signed_prekey.serialize(),
            &self.signed_prekey_signature,
        )
    }
}
