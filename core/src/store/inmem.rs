//! In-memory stores: for tests, for apps that persist elsewhere, and as the reference
//! semantics the SQLite store is checked against.

use std::collections::HashMap;

use super::traits::*;
use crate::address::ProtocolAddress;
use crate::error::StoreError;
use crate::group::SenderKeyRecord;
use crate::keys::{IdentityKey, IdentityKeyPair, PreKeyRecord, SignedPreKeyRecord};
use crate::session::SessionRecord;

/// In-memory identity store.
#[derive(Clone, Debug)]
pub struct InMemIdentityKeyStore {
    key_pair: IdentityKeyPair,
    registration_id: u32,
    known: HashMap<ProtocolAddress, IdentityKey>,
    trust_on_first_use: bool,
}

impl InMemIdentityKeyStore {
    /// A store for the device with this identity and registration id.
    pub fn new(key_pair: IdentityKeyPair, registration_id: u32) -> Self {
        InMemIdentityKeyStore {
            key_pair,
            registration_id,
            known: HashMap::new(),
            trust_on_first_use: true,
        }
    }
    /// Whether an address with no stored identity is trusted (default: true). With
    /// `false`, every peer identity must be saved explicitly before use.
    pub fn set_trust_on_first_use(&mut self, on: bool) {
        self.trust_on_first_use = on;
    }
    /// See [`Self::set_trust_on_first_use`].
    pub fn trust_on_first_use(&self) -> bool {
        self.trust_on_first_use
    }
    /// All stored peer identities.
    pub fn known_identities(&self) -> impl Iterator<Item = (&ProtocolAddress, &IdentityKey)> {
        self.known.iter()
    }
}

impl IdentityKeyStore for InMemIdentityKeyStore {
    fn identity_key_pair(&self) -> Result<IdentityKeyPair, StoreError> {
        Ok(self.key_pair.clone())
    }
    fn local_registration_id(&self) -> Result<u32, StoreError> {
        Ok(self.registration_id)
    }
    fn save_identity(
        &mut self,
        a: &ProtocolAddress,
        id: &IdentityKey,
    ) -> Result<IdentityChange, StoreError> {
        Ok(match self.known.insert(a.clone(), *id) {
            Some(old) if old != *id => IdentityChange::ReplacedExisting,
            _ => IdentityChange::NewOrUnchanged,
        })
    }
    fn forget_identity(&mut self, a: &ProtocolAddress) -> Result<(), StoreError> {
        self.known.remove(a);
        Ok(())
    }
    fn is_trusted_identity(
        &self,
        a: &ProtocolAddress,
        id: &IdentityKey,
        _d: Direction,
    ) -> Result<bool, StoreError> {
        Ok(trust_decision(
            self.known.get(a),
            id,
            self.trust_on_first_use,
        ))
    }
    fn get_identity(&self, a: &ProtocolAddress) -> Result<Option<IdentityKey>, StoreError> {
        Ok(self.known.get(a).copied())
    }
}

fn sorted_ids<V>(m: &HashMap<u32, V>) -> Vec<u32> {
    let mut v: Vec<u32> = m.keys().copied().collect();
    v.sort_unstable();
    v
}

/// In-memory one-time prekeys.
#[derive(Clone, Debug, Default)]
pub struct InMemPreKeyStore(HashMap<u32, PreKeyRecord>);

impl InMemPreKeyStore {
    /// Ids present, ascending.
    pub fn ids(&self) -> Vec<u32> {
        sorted_ids(&self.0)
    }
}

impl PreKeyStore for InMemPreKeyStore {
    fn get_pre_key(&self, id: u32) -> Result<Option<PreKeyRecord>, StoreError> {
        Ok(self.0.get(&id).cloned())
    }
    fn save_pre_key(&mut self, r: &PreKeyRecord) -> Result<(), StoreError> {
        self.0.insert(r.id, r.clone());
        Ok(())
    }
    fn remove_pre_key(&mut self, id: u32) -> Result<(), StoreError> {
        self.0.remove(&id);
        Ok(())
    }
}

/// In-memory signed prekeys.
#[derive(Clone, Debug, Default)]
pub struct InMemSignedPreKeyStore(HashMap<u32, SignedPreKeyRecord>);

impl InMemSignedPreKeyStore {
    /// Ids present, ascending.
    pub fn ids(&self) -> Vec<u32> {
        sorted_ids(&self.0)
    }
}

impl SignedPreKeyStore for InMemSignedPreKeyStore {
    fn get_signed_pre_key(&self, id: u32) -> Result<Option<SignedPreKeyRecord>, StoreError> {
        Ok(self.0.get(&id).cloned())
    }
    fn save_signed_pre_key(&mut self, r: &SignedPreKeyRecord) -> Result<(), StoreError> {
        self.0.insert(r.id, r.clone());
        Ok(())
    }
}

/// In-memory sessions.
#[derive(Clone, Debug, Default)]
pub struct InMemSessionStore(HashMap<ProtocolAddress, SessionRecord>);

impl InMemSessionStore {
    /// Addresses with a record.
    pub fn addresses(&self) -> impl Iterator<Item = &ProtocolAddress> {
        self.0.keys()
    }
}

impl SessionStore for InMemSessionStore {
    fn load_session(&self, a: &ProtocolAddress) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.0.get(a).cloned())
    }
    fn store_session(&mut self, a: &ProtocolAddress, r: &SessionRecord) -> Result<(), StoreError> {
        self.0.insert(a.clone(), r.clone());
        Ok(())
    }
}

/// In-memory sender keys.
#[derive(Clone, Debug, Default)]
pub struct InMemSenderKeyStore(HashMap<(ProtocolAddress, Vec<u8>), SenderKeyRecord>);

impl SenderKeyStore for InMemSenderKeyStore {
    fn load_sender_key(
        &self,
        s: &ProtocolAddress,
        d: &[u8],
    ) -> Result<Option<SenderKeyRecord>, StoreError> {
        Ok(self.0.get(&(s.clone(), d.to_vec())).cloned())
    }
    fn store_sender_key(
        &mut self,
        s: &ProtocolAddress,
        d: &[u8],
        r: &SenderKeyRecord,
    ) -> Result<(), StoreError> {
        self.0.insert((s.clone(), d.to_vec()), r.clone());
        Ok(())
    }
}

/// All in-memory stores of one device together.
#[derive(Clone, Debug)]
pub struct InMemProtocolStore {
    /// Identities.
    pub identities: InMemIdentityKeyStore,
    /// One-time prekeys.
    pub pre_keys: InMemPreKeyStore,
    /// Signed prekeys.
    pub signed_pre_keys: InMemSignedPreKeyStore,
    /// Sessions.
    pub sessions: InMemSessionStore,
    /// Sender keys.
    pub sender_keys: InMemSenderKeyStore,
}

impl InMemProtocolStore {
    /// Empty stores for the device with this identity and registration id.
    pub fn new(key_pair: IdentityKeyPair, registration_id: u32) -> Self {
        InMemProtocolStore {
            identities: InMemIdentityKeyStore::new(key_pair, registration_id),
            pre_keys: InMemPreKeyStore::default(),
            signed_pre_keys: InMemSignedPreKeyStore::default(),
            sessions: InMemSessionStore::default(),
            sender_keys: InMemSenderKeyStore::default(),
        }
    }
}

impl IdentityKeyStore for InMemProtocolStore {
    fn identity_key_pair(&self) -> Result<IdentityKeyPair, StoreError> {
        self.identities.identity_key_pair()
    }
    fn local_registration_id(&self) -> Result<u32, StoreError> {
        self.identities.local_registration_id()
    }
    fn save_identity(
        &mut self,
        a: &ProtocolAddress,
        id: &IdentityKey,
    ) -> Result<IdentityChange, StoreError> {
        self.identities.save_identity(a, id)
    }
    fn forget_identity(&mut self, a: &ProtocolAddress) -> Result<(), StoreError> {
        self.identities.forget_identity(a)
    }
    fn is_trusted_identity(
        &self,
        a: &ProtocolAddress,
        id: &IdentityKey,
        d: Direction,
    ) -> Result<bool, StoreError> {
        self.identities.is_trusted_identity(a, id, d)
    }
    fn get_identity(&self, a: &ProtocolAddress) -> Result<Option<IdentityKey>, StoreError> {
        self.identities.get_identity(a)
    }
}

impl PreKeyStore for InMemProtocolStore {
    fn get_pre_key(&self, id: u32) -> Result<Option<PreKeyRecord>, StoreError> {
        self.pre_keys.get_pre_key(id)
    }
    fn save_pre_key(&mut self, r: &PreKeyRecord) -> Result<(), StoreError> {
        self.pre_keys.save_pre_key(r)
    }
    fn remove_pre_key(&mut self, id: u32) -> Result<(), StoreError> {
        self.pre_keys.remove_pre_key(id)
    }
}

impl SignedPreKeyStore for InMemProtocolStore {
    fn get_signed_pre_key(&self, id: u32) -> Result<Option<SignedPreKeyRecord>, StoreError> {
        self.signed_pre_keys.get_signed_pre_key(id)
    }
    fn save_signed_pre_key(&mut self, r: &SignedPreKeyRecord) -> Result<(), StoreError> {
        self.signed_pre_keys.save_signed_pre_key(r)
    }
}

impl SessionStore for InMemProtocolStore {
    fn load_session(&self, a: &ProtocolAddress) -> Result<Option<SessionRecord>, StoreError> {
        self.sessions.load_session(a)
    }
    fn store_session(&mut self, a: &ProtocolAddress, r: &SessionRecord) -> Result<(), StoreError> {
        self.sessions.store_session(a, r)
    }
}

impl SenderKeyStore for InMemProtocolStore {
    fn load_sender_key(
        &self,
        s: &ProtocolAddress,
        d: &[u8],
    ) -> Result<Option<SenderKeyRecord>, StoreError> {
        self.sender_keys.load_sender_key(s, d)
    }
    fn store_sender_key(
        &mut self,
        s: &ProtocolAddress,
        d: &[u8],
        r: &SenderKeyRecord,
    ) -> Result<(), StoreError> {
        self.sender_keys.store_sender_key(s, d, r)
    }
}
