//! The store traits.

use crate::address::ProtocolAddress;
use crate::error::StoreError;
use crate::group::SenderKeyRecord;
use crate::keys::{IdentityKey, IdentityKeyPair, PreKeyRecord, SignedPreKeyRecord};
use crate::session::SessionRecord;

/// Whether an identity is checked for sending to or receiving from a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// We are about to encrypt to the peer.
    Sending,
    /// We received a message from the peer.
    Receiving,
}

/// What `save_identity` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentityChange {
    /// First identity seen for this address (trust on first use) or the same as before.
    NewOrUnchanged,
    /// A different identity replaced the stored one.
    ReplacedExisting,
}

/// The trust rule every identity store applies: an address with no stored identity is
/// trusted if trust on first use is on; otherwise the presented key must equal the
/// stored one (compared in constant time).
pub fn trust_decision(
    stored: Option<&IdentityKey>,
    presented: &IdentityKey,
    trust_on_first_use: bool,
) -> bool {
    match stored {
        None => trust_on_first_use,
        Some(k) => k.public_key().ct_eq(presented.public_key()),
    }
}

/// Our identity and the identities of peers.
///
/// Semantics (trust on first use): an address with no stored identity is trusted; an
/// address whose stored identity equals the presented one is trusted; any other
/// identity is untrusted until the app calls [`IdentityKeyStore::save_identity`]
/// with it (after the user accepted the new safety number) — the protocol functions
/// then fail with `SessionError::UntrustedIdentity`.
pub trait IdentityKeyStore {
    /// Our identity key pair.
    fn identity_key_pair(&self) -> Result<IdentityKeyPair, StoreError>;
    /// Our registration id.
    fn local_registration_id(&self) -> Result<u32, StoreError>;
    /// Store `identity` for `address`, replacing any previous one.
    fn save_identity(
        &mut self,
        address: &ProtocolAddress,
        identity: &IdentityKey,
    ) -> Result<IdentityChange, StoreError>;
    /// Forget the stored identity for `address` (the next one is trusted on first use).
    fn forget_identity(&mut self, address: &ProtocolAddress) -> Result<(), StoreError>;
    /// Whether `identity` is trusted for `address` (see the trait docs).
    fn is_trusted_identity(
        &self,
        address: &ProtocolAddress,
        identity: &IdentityKey,
        direction: Direction,
    ) -> Result<bool, StoreError>;
    /// The stored identity for `address`.
    fn get_identity(&self, address: &ProtocolAddress) -> Result<Option<IdentityKey>, StoreError>;
}

/// One-time prekeys. A prekey is removed once a session used it.
pub trait PreKeyStore {
    /// Load a prekey; `None` if unknown (never existed or already consumed).
    fn get_pre_key(&self, id: u32) -> Result<Option<PreKeyRecord>, StoreError>;
    /// Store (or replace) a prekey.
    fn save_pre_key(&mut self, record: &PreKeyRecord) -> Result<(), StoreError>;
    /// Remove a prekey; removing an unknown id is not an error.
    fn remove_pre_key(&mut self, id: u32) -> Result<(), StoreError>;
}

/// Signed prekeys. Old ones are kept for a while after rotation so that late
/// `PreKeySignalMessage`s still decrypt; deleting them is the app's policy.
pub trait SignedPreKeyStore {
    /// Load a signed prekey; `None` if unknown.
    fn get_signed_pre_key(&self, id: u32) -> Result<Option<SignedPreKeyRecord>, StoreError>;
    /// Store (or replace) a signed prekey.
    fn save_signed_pre_key(&mut self, record: &SignedPreKeyRecord) -> Result<(), StoreError>;
}

/// Session records, one per peer device.
pub trait SessionStore {
    /// Load the record for `address`; `None` if there is none.
    fn load_session(&self, address: &ProtocolAddress) -> Result<Option<SessionRecord>, StoreError>;
    /// Store the record for `address`, replacing the previous one atomically.
    fn store_session(
        &mut self,
        address: &ProtocolAddress,
        record: &SessionRecord,
    ) -> Result<(), StoreError>;
}

/// Sender-key records, one per (sender device, distribution id).
pub trait SenderKeyStore {
    /// Load the record; `None` if there is none.
    fn load_sender_key(
        &self,
        sender: &ProtocolAddress,
        distribution_id: &[u8],
    ) -> Result<Option<SenderKeyRecord>, StoreError>;
    /// Store (or replace) the record.
    fn store_sender_key(
        &mut self,
        sender: &ProtocolAddress,
        distribution_id: &[u8],
        record: &SenderKeyRecord,
    ) -> Result<(), StoreError>;
}

/// Everything a 1:1 session needs.
pub trait ProtocolStore: IdentityKeyStore + PreKeyStore + SignedPreKeyStore + SessionStore {}
impl<T: IdentityKeyStore + PreKeyStore + SignedPreKeyStore + SessionStore> ProtocolStore for T {}
