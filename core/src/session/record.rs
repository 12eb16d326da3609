//! A session record: the current session state with a peer device and up to 40
//! previous ones. Decryption tries the current state, then the previous ones, and
//! promotes the one that works; this is how simultaneous initiation converges.

use std::collections::VecDeque;

use rand_core::{CryptoRng, RngCore};

use super::state::SessionState;
use crate::error::{DecodeError, SessionError};
use crate::keys::{IdentityKey, PublicKey};
use crate::wire::{CiphertextMessage, PreKeySignalMessage, SignalMessage};

/// Previous session states kept per peer device.
pub const ARCHIVED_STATES_MAX_LENGTH: usize = 40;

/// All session states with one peer device.
#[derive(Clone, Default)]
pub struct SessionRecord {
    pub(crate) current: Option<SessionState>,
    /// Most recent first.
    pub(crate) previous: VecDeque<SessionState>,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("current", &self.current)
            .field("previous", &self.previous.len())
            .finish()
    }
}

impl SessionRecord {
    /// An empty record (no session).
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether there is a current session to encrypt with.
    pub fn has_current_session(&self) -> bool {
        self.current.is_some()
    }

    /// Number of previous (archived) states.
    pub fn previous_session_count(&self) -> usize {
        self.previous.len()
    }

    /// Protocol version of the current session.
    pub fn session_version(&self) -> Option<u8> {
        self.current.as_ref().map(|s| s.version)
    }

    /// The peer's identity key in the current session.
    pub fn remote_identity(&self) -> Option<&IdentityKey> {
        self.current.as_ref().map(|s| &s.remote_identity)
    }

    /// The peer's registration id in the current session.
    pub fn remote_registration_id(&self) -> Option<u32> {
        self.current.as_ref().map(|s| s.remote_registration_id)
    }

    /// Whether the current session still waits for the peer's first reply (its messages
    /// are `PreKeySignalMessage`s).
    pub fn has_unacknowledged_prekey(&self) -> bool {
        self.current
            .as_ref()
            .is_some_and(|s| s.pending_prekey.is_some())
    }

    /// Make `state` current, archiving the current one (the oldest beyond 40 is dropped).
    pub(crate) fn promote_state(&mut self, state: SessionState) {
        if let Some(old) = self.current.replace(state) {
            self.previous.push_front(old);
            self.previous.truncate(ARCHIVED_STATES_MAX_LENGTH);
        }
    }

    /// Archive the current state: the next send needs a new session.
    pub fn archive_current_state(&mut self) {
        if let Some(old) = self.current.take() {
            self.previous.push_front(old);
            self.previous.truncate(ARCHIVED_STATES_MAX_LENGTH);
        }
    }

    /// The peer identities of all states (current first).
    #[cfg(feature = "sqlite")]
    pub(crate) fn remote_identities(&self) -> impl Iterator<Item = &IdentityKey> {
        self.current
            .iter()
            .chain(self.previous.iter())
            .map(|s| &s.remote_identity)
    }

    pub(crate) fn has_state_with_base_key(&self, base_key: &PublicKey) -> bool {
        self.current
            .iter()
            .chain(self.previous.iter())
            .any(|s| s.base_key == *base_key)
    }

    /// Encrypt with the current state. While the peer has not answered, the message is
    /// a `PreKeySignalMessage` carrying the X3DH values.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<CiphertextMessage, SessionError> {
        let state = self
            .current
            .as_mut()
            .ok_or_else(|| SessionError::NoSession("record".into()))?;
        let msg = state.encrypt(plaintext);
        Ok(match &state.pending_prekey {
            None => CiphertextMessage::Signal(msg),
            Some(p) => CiphertextMessage::PreKey(PreKeySignalMessage::new(
                state.local_registration_id,
                p.pre_key_id,
                p.signed_pre_key_id,
                p.base_key,
                state.local_identity,
                msg,
            )),
        })
    }

    /// Decrypt a `SignalMessage`: current state first, then previous states; the state
    /// that decrypts becomes current. On failure the record is unchanged.
    pub fn decrypt<R: RngCore + CryptoRng>(
        &mut self,
        msg: &SignalMessage,
        rng: &mut R,
    ) -> Result<Vec<u8>, SessionError> {
        let first_err = match self.current.as_mut() {
            Some(s) => match s.decrypt(msg, rng) {
                Ok(pt) => return Ok(pt),
                Err(e @ SessionError::DuplicateMessage { .. }) => return Err(e),
                Err(e) => Some(e),
            },
            None => None,
        };
        let mut dup = None;
        for i in 0..self.previous.len() {
            match self.previous[i].decrypt(msg, rng) {
                Ok(pt) => {
                    if let Some(s) = self.previous.remove(i) {
                        self.promote_state(s);
                    }
                    return Ok(pt);
                }
                Err(e @ SessionError::DuplicateMessage { .. }) => dup = dup.or(Some(e)),
                Err(_) => {}
            }
        }
        Err(match (dup, first_err) {
            (Some(d), _) => d,
            (None, Some(e)) => e,
            (None, None) => SessionError::NoSession("record".into()),
        })
    }

    /// Serialize for storage (protobuf, versioned).
    pub fn serialize(&self) -> Vec<u8> {
        crate::wire::storage::encode_record(self)
    }

    /// Parse a stored record.
    pub fn deserialize(bytes: &[u8]) -> Result<Self, DecodeError> {
        crate::wire::storage::decode_record(bytes)
    }

    /// Known-answer support: the current sending chain key. Test use only.
    #[doc(hidden)]
    pub fn kat_sender_chain_key(&self) -> Option<[u8; 32]> {
        self.current.as_ref().map(|s| *s.sender_chain.chain_key.key)
    }

    /// Known-answer support: the receiving chain key for `ratchet_key`. Test use only.
    #[doc(hidden)]
    pub fn kat_receiver_chain_key(&self, ratchet_key: &PublicKey) -> Option<[u8; 32]> {
        self.current.as_ref().and_then(|s| {
            s.receiver_chains
                .iter()
                .find(|c| c.ratchet_key == *ratchet_key)
                .map(|c| *c.chain_key.key)
        })
    }
}
