//! X3DH session setup (Signal v3, no PQ KEM): `SK = HKDF(0xFF*32 ‖ DH1 ‖ DH2 ‖ DH3
//! [‖ DH4], "WhisperText")` with `DH1 = DH(IK_A, SPK_B)`, `DH2 = DH(EK_A, IK_B)`,
//! `DH3 = DH(EK_A, SPK_B)`, `DH4 = DH(EK_A, OPK_B)`.

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroize;

use super::record::SessionRecord;
use super::state::{SenderChain, SessionState};
use crate::error::SessionError;
use crate::keys::{IdentityKey, IdentityKeyPair, KeyPair, PublicKey};
use crate::ratchet::derive_initial;

/// The initiator's ("Alice's") inputs.
pub struct AliceParameters<'a> {
    /// Our identity.
    pub our_identity: &'a IdentityKeyPair,
    /// Our ephemeral base key.
    pub our_base_key: &'a KeyPair,
    /// Their identity key.
    pub their_identity: IdentityKey,
    /// Their signed prekey.
    pub their_signed_prekey: PublicKey,
    /// Their one-time prekey, if the bundle had one.
    pub their_one_time_prekey: Option<PublicKey>,
    /// Their first ratchet key (in real sessions, the signed prekey).
    pub their_ratchet_key: PublicKey,
}

/// The responder's ("Bob's") inputs.
pub struct BobParameters<'a> {
    /// Our identity.
    pub our_identity: &'a IdentityKeyPair,
    /// Our signed prekey.
    pub our_signed_prekey: &'a KeyPair,
    /// Our one-time prekey, if the initiator used one.
    pub our_one_time_prekey: Option<&'a KeyPair>,
    /// Our first ratchet key (in real sessions, the signed prekey).
    pub our_ratchet_key: &'a KeyPair,
    /// Their identity key.
    pub their_identity: IdentityKey,
    /// Their base key.
    pub their_base_key: PublicKey,
}

const DISCONTINUITY: [u8; 32] = [0xff; 32];

pub(crate) fn alice_state<R: RngCore + CryptoRng>(
    p: &AliceParameters<'_>,
    rng: &mut R,
) -> Result<SessionState, SessionError> {
    let mut secrets = Vec::with_capacity(32 * 5);
    secrets.extend_from_slice(&DISCONTINUITY);
    secrets.extend_from_slice(&p.our_identity.private_key().agree(&p.their_signed_prekey)?);
    secrets.extend_from_slice(
        &p.our_base_key
            .private
            .agree(p.their_identity.public_key())?,
    );
    secrets.extend_from_slice(&p.our_base_key.private.agree(&p.their_signed_prekey)?);
    if let Some(otk) = &p.their_one_time_prekey {
        secrets.extend_from_slice(&p.our_base_key.private.agree(otk)?);
    }
    let (root, chain) = derive_initial(&secrets);
    secrets.zeroize();
    let sending_ratchet = KeyPair::generate(rng);
    let (root, send_chain) = root.create_chain(&p.their_ratchet_key, &sending_ratchet.private)?;
    Ok(SessionState::new(
        *p.our_identity.identity_key(),
        p.their_identity,
        root,
        SenderChain {
            ratchet_key: sending_ratchet,
            chain_key: send_chain,
        },
        Some((p.their_ratchet_key, chain)),
        p.our_base_key.public,
        0,
        0,
    ))
}

pub(crate) fn bob_state(p: &BobParameters<'_>) -> Result<SessionState, SessionError> {
    let mut secrets = Vec::with_capacity(32 * 5);
    secrets.extend_from_slice(&DISCONTINUITY);
    secrets.extend_from_slice(
        &p.our_signed_prekey
            .private
            .agree(p.their_identity.public_key())?,
    );
    secrets.extend_from_slice(&p.our_identity.private_key().agree(&p.their_base_key)?);
    secrets.extend_from_slice(&p.our_signed_prekey.private.agree(&p.their_base_key)?);
    if let Some(otk) = p.our_one_time_prekey {
        secrets.extend_from_slice(&otk.private.agree(&p.their_base_key)?);
    }
    let (root, chain) = derive_initial(&secrets);
    secrets.zeroize();
    Ok(SessionState::new(
        *p.our_identity.identity_key(),
        p.their_identity,
        root,
        SenderChain {
            ratchet_key: p.our_ratchet_key.clone(),
            chain_key: chain,
        },
        None,
        p.their_base_key,
        0,
        0,
    ))
}

/// Low-level: a fresh record holding Alice's side of a new session. Most apps call
/// [`crate::process_prekey_bundle`] instead.
pub fn initialize_alice_session<R: RngCore + CryptoRng>(
    p: &AliceParameters<'_>,
    rng: &mut R,
) -> Result<SessionRecord, SessionError> {
    let mut r = SessionRecord::new();
    r.promote_state(alice_state(p, rng)?);
    Ok(r)
}

/// Low-level: a fresh record holding Bob's side of a new session.
pub fn initialize_bob_session(p: &BobParameters<'_>) -> Result<SessionRecord, SessionError> {
    let mut r = SessionRecord::new();
    r.promote_state(bob_state(p)?);
    Ok(r)
}
