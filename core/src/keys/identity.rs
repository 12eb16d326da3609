//! Identity keys: a device's long-term Curve25519 key pair.

use rand_core::{CryptoRng, RngCore};

use super::curve::{KeyPair, PrivateKey, PublicKey};
use crate::error::KeyError;

/// A device's public identity key (33-byte serialized form).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct IdentityKey(PublicKey);

impl IdentityKey {
    /// Wrap a public key.
    pub fn new(key: PublicKey) -> Self {
        IdentityKey(key)
    }
    /// Parse the 33-byte form.
    pub fn from_bytes(b: &[u8]) -> Result<Self, KeyError> {
        PublicKey::from_bytes(b).map(IdentityKey)
    }
    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.0
    }
    /// The 33-byte form.
    pub fn serialize(&self) -> [u8; 33] {
        self.0.serialize()
    }
}

/// A device's identity key pair.
#[derive(Clone)]
pub struct IdentityKeyPair {
    identity: IdentityKey,
    private: PrivateKey,
}

impl IdentityKeyPair {
    /// Generate a new identity.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let kp = KeyPair::generate(rng);
        IdentityKeyPair {
            identity: IdentityKey(kp.public),
            private: kp.private,
        }
    }
    /// Build from a private key.
    pub fn from_private(private: PrivateKey) -> Self {
        IdentityKeyPair {
            identity: IdentityKey(private.public_key()),
            private,
        }
    }
    /// The public identity key.
    pub fn identity_key(&self) -> &IdentityKey {
        &self.identity
    }
    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.identity.0
    }
    /// The private key.
    pub fn private_key(&self) -> &PrivateKey {
        &self.private
    }
}

impl std::fmt::Debug for IdentityKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let IdentityKeyPair {
            identity,
            private: _,
        } = self;
        f.debug_struct("IdentityKeyPair")
            .field("identity", identity)
            .finish_non_exhaustive()
    }
}
