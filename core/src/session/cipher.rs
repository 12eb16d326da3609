//! Store-level session API: set up a session from a bundle, encrypt, decrypt.
//!
//! Each function reads what it needs, computes, and writes only after success: a
//! failed decrypt (bad MAC, replay, unknown prekey, untrusted identity) writes nothing.

use rand_core::{CryptoRng, RngCore};

use super::record::SessionRecord;
use super::state::PendingPreKey;
use super::x3dh::{alice_state, bob_state, AliceParameters, BobParameters};
use crate::address::ProtocolAddress;
use crate::error::SessionError;
use crate::keys::{KeyPair, PreKeyBundle};
use crate::store::{Direction, ProtocolStore};
use crate::wire::{CiphertextMessage, PreKeySignalMessage, SignalMessage};

fn untrusted(a: &ProtocolAddress) -> SessionError {
    SessionError::UntrustedIdentity(a.to_string())
}

/// Start a session with `remote` from its published bundle (X3DH as initiator).
/// Checks trust and the signed prekey's signature first.
pub fn process_prekey_bundle<S: ProtocolStore, R: RngCore + CryptoRng>(
    store: &mut S,
    remote: &ProtocolAddress,
    bundle: &PreKeyBundle,
    rng: &mut R,
) -> Result<(), SessionError> {
    if !store.is_trusted_identity(remote, &bundle.identity_key, Direction::Sending)? {
        return Err(untrusted(remote));
    }
    bundle.verify_signature()?;
    let our_identity = store.identity_key_pair()?;
    let base = KeyPair::generate(rng);
    let mut state = alice_state(
        &AliceParameters {
            our_identity: &our_identity,
            our_base_key: &base,
            their_identity: bundle.identity_key,
            their_signed_prekey: bundle.signed_prekey,
            their_one_time_prekey: bundle.prekey.map(|(_, k)| k),
            their_ratchet_key: bundle.signed_prekey,
        },
        rng,
    )?;
    state.pending_prekey = Some(PendingPreKey {
        pre_key_id: bundle.prekey.map(|(id, _)| id),
        signed_pre_key_id: bundle.signed_prekey_id,
        base_key: base.public,
    });
    state.local_registration_id = store.local_registration_id()?;
    state.remote_registration_id = bundle.registration_id;
    let mut record = store.load_session(remote)?.unwrap_or_default();
    record.promote_state(state);
    store.save_identity(remote, &bundle.identity_key)?;
    store.store_session(remote, &record)?;
    Ok(())
}

/// Encrypt `plaintext` for `remote` with the current session.
pub fn message_encrypt<S: ProtocolStore>(
    store: &mut S,
    remote: &ProtocolAddress,
    plaintext: &[u8],
) -> Result<CiphertextMessage, SessionError> {
    let mut record = store
        .load_session(remote)?
        .ok_or_else(|| SessionError::NoSession(remote.to_string()))?;
    let their = *record
        .remote_identity()
        .ok_or_else(|| SessionError::NoSession(remote.to_string()))?;
    if !store.is_trusted_identity(remote, &their, Direction::Sending)? {
        return Err(untrusted(remote));
    }
    let msg = record.encrypt(plaintext)?;
    store.store_session(remote, &record)?;
    Ok(msg)
}

/// Decrypt a `SignalMessage` from `remote`.
pub fn message_decrypt_signal<S: ProtocolStore, R: RngCore + CryptoRng>(
    store: &mut S,
    remote: &ProtocolAddress,
    msg: &SignalMessage,
    rng: &mut R,
) -> Result<Vec<u8>, SessionError> {
    let mut record = store
        .load_session(remote)?
        .ok_or_else(|| SessionError::NoSession(remote.to_string()))?;
    let pt = record.decrypt(msg, rng)?;
    let their = *record
        .remote_identity()
        .ok_or_else(|| SessionError::NoSession(remote.to_string()))?;
    if !store.is_trusted_identity(remote, &their, Direction::Receiving)? {
        return Err(untrusted(remote));
    }
    store.save_identity(remote, &their)?;
    store.store_session(remote, &record)?;
    Ok(pt)
}

/// Decrypt a `PreKeySignalMessage` from `remote` (X3DH as responder unless this base
/// key's session already exists). The one-time prekey is removed after success.
pub fn message_decrypt_prekey<S: ProtocolStore, R: RngCore + CryptoRng>(
    store: &mut S,
    remote: &ProtocolAddress,
    msg: &PreKeySignalMessage,
    rng: &mut R,
) -> Result<Vec<u8>, SessionError> {
    if !store.is_trusted_identity(remote, &msg.identity_key, Direction::Receiving)? {
        return Err(untrusted(remote));
    }
    let mut record = store.load_session(remote)?.unwrap_or_default();
    let mut used_prekey = None;
    if !record.has_state_with_base_key(&msg.base_key) {
        let spk = store
            .get_signed_pre_key(msg.signed_pre_key_id)?
            .ok_or(SessionError::InvalidKeyId(msg.signed_pre_key_id))?;
        let opk = match msg.pre_key_id {
            Some(id) => Some(
                store
                    .get_pre_key(id)?
                    .ok_or(SessionError::InvalidKeyId(id))?,
            ),
            None => None,
        };
        let our_identity = store.identity_key_pair()?;
        let mut state = bob_state(&BobParameters {
            our_identity: &our_identity,
            our_signed_prekey: &spk.key_pair,
            our_one_time_prekey: opk.as_ref().map(|p| &p.key_pair),
            our_ratchet_key: &spk.key_pair,
            their_identity: msg.identity_key,
            their_base_key: msg.base_key,
        })?;
        state.local_registration_id = store.local_registration_id()?;
        state.remote_registration_id = msg.registration_id;
        record.promote_state(state);
        used_prekey = msg.pre_key_id;
    }
    let pt = record.decrypt(&msg.message, rng)?;
    store.save_identity(remote, &msg.identity_key)?;
    store.store_session(remote, &record)?;
    if let Some(id) = used_prekey {
        store.remove_pre_key(id)?;
    }
    Ok(pt)
}

/// Decrypt either message type.
pub fn message_decrypt<S: ProtocolStore, R: RngCore + CryptoRng>(
    store: &mut S,
    remote: &ProtocolAddress,
    msg: &CiphertextMessage,
    rng: &mut R,
) -> Result<Vec<u8>, SessionError> {
    match msg {
        CiphertextMessage::Signal(m) => message_decrypt_signal(store, remote, m, rng),
        CiphertextMessage::PreKey(m) => message_decrypt_prekey(store, remote, m, rng),
    }
}

impl SessionRecord {
    /// Parse and decrypt a serialized message of type 2 or 3 against this record alone
    /// (no store): for apps that manage records themselves. PreKey messages must have
    /// been set up with [`message_decrypt_prekey`] first.
    pub fn decrypt_bytes<R: RngCore + CryptoRng>(
        &mut self,
        message_type: u8,
        bytes: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>, SessionError> {
        match message_type {
            2 => self.decrypt(&SignalMessage::parse(bytes)?, rng),
            3 => self.decrypt(&PreKeySignalMessage::parse(bytes)?.message, rng),
            t => Err(SessionError::InvalidArgument(format!(
                "unknown message type {t}"
            ))),
        }
    }
}
