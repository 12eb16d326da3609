//! Key material: Curve25519 key pairs in Signal's 33-byte public form, XEdDSA
//! signatures, identity keys, prekeys and signed prekeys.

mod curve;
mod identity;
mod prekeys;
pub(crate) mod xeddsa;

pub use curve::{KeyPair, PrivateKey, PublicKey, DJB_TYPE};
pub use identity::{IdentityKey, IdentityKeyPair};
pub use prekeys::{generate_registration_id, PreKeyBundle, PreKeyRecord, SignedPreKeyRecord};
pub use xeddsa::{Signature, VerifyingKey};
