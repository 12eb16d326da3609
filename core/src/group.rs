//! Sender keys for groups (Signal v3 / libsignal-protocol-c layout).
//!
//! Each sender has, per distribution (group), a chain: `seed = HMAC(CK, 0x01)`,
//! `CK' = HMAC(CK, 0x02)`, `HKDF(seed, "WhisperGroup", 48) → IV(16) ‖ key(32)`,
//! AES-256-CBC, and an XEdDSA signature by the chain's signing key over every message.
//! Receivers keep up to 5 states (chains) per sender and distribution.

use std::collections::VecDeque;

use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::address::ProtocolAddress;
use crate::crypto::{aes256_cbc_decrypt, aes256_cbc_encrypt, hkdf_sha256, HmacKey};
use crate::error::{DecodeError, GroupError};
use crate::keys::xeddsa::SigningKey;
use crate::keys::{KeyPair, PrivateKey, PublicKey, VerifyingKey};
use crate::ratchet::{MAX_FORWARD_JUMPS, MAX_MESSAGE_KEYS};
use crate::store::SenderKeyStore;
use crate::wire::{SenderKeyDistributionMessage, SenderKeyMessage, CIPHERTEXT_VERSION};

/// Sender-key states kept per sender and distribution.
pub const MAX_SENDER_KEY_STATES: usize = 5;

#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct SenderChainKey {
    #[zeroize(skip)]
    pub(crate) iteration: u32,
    pub(crate) key: [u8; 32],
}

#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct SenderMessageSeed {
    #[zeroize(skip)]
    pub(crate) iteration: u32,
    pub(crate) seed: [u8; 32],
}

impl SenderChainKey {
    fn step(&self) -> (SenderMessageSeed, SenderChainKey) {
        let h = HmacKey::new(&self.key);
        (
            SenderMessageSeed {
                iteration: self.iteration,
                seed: h.mac(&[&[0x01]]),
            },
            SenderChainKey {
                iteration: self.iteration.wrapping_add(1),
                key: h.mac(&[&[0x02]]),
            },
        )
    }
}

impl SenderMessageSeed {
    /// `(iv, cipher_key)`.
    fn expand(&self) -> ([u8; 16], [u8; 32]) {
        let mut out = [0u8; 48];
        hkdf_sha256(None, &self.seed, &[b"WhisperGroup"], &mut out);
        let mut iv = [0u8; 16];
        let mut key = [0u8; 32];
        iv.copy_from_slice(&out[..16]);
        key.copy_from_slice(&out[16..]);
        out.zeroize();
        (iv, key)
    }
}

/// One sender chain.
#[derive(Clone)]
pub(crate) struct SenderKeyState {
    pub(crate) chain_id: u32,
    pub(crate) chain_key: SenderChainKey,
    pub(crate) verifying: VerifyingKey,
    pub(crate) signing: Option<(PrivateKey, SigningKey)>,
    pub(crate) skipped: VecDeque<SenderMessageSeed>,
}

impl SenderKeyState {
    pub(crate) fn new(
        chain_id: u32,
        iteration: u32,
        chain_key: [u8; 32],
        signing_public: PublicKey,
        signing_private: Option<PrivateKey>,
    ) -> Self {
        SenderKeyState {
            chain_id,
            chain_key: SenderChainKey {
                iteration,
                key: chain_key,
            },
            verifying: VerifyingKey::new(signing_public),
            signing: signing_private.map(|p| {
                let s = SigningKey::new(&p);
                (p, s)
            }),
            skipped: VecDeque::new(),
        }
    }
    pub(crate) fn signing_public(&self) -> &PublicKey {
        self.verifying.public_key()
    }
}

/// All sender-key states for one sender and distribution (newest first).
#[derive(Clone, Default)]
pub struct SenderKeyRecord {
    pub(crate) states: VecDeque<SenderKeyState>,
}

impl std::fmt::Debug for SenderKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderKeyRecord")
            .field(
                "chain_ids",
                &self.states.iter().map(|s| s.chain_id).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl SenderKeyRecord {
    /// An empty record.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of states (chains) held.
    pub fn state_count(&self) -> usize {
        self.states.len()
    }

    fn add_state(&mut self, s: SenderKeyState) {
        self.states.retain(|x| x.chain_id != s.chain_id);
        self.states.push_front(s);
        self.states.truncate(MAX_SENDER_KEY_STATES);
    }

    /// Start a new sending chain (fresh chain id, chain key and signing key), making it
    /// the one used for sending. Call when a member leaves.
    pub fn rotate<R: RngCore + CryptoRng>(&mut self, rng: &mut R) -> SenderKeyDistributionMessage {
        let chain_id = rng.next_u32() >> 1;
        let mut ck = [0u8; 32];
        rng.fill_bytes(&mut ck);
        let signing = KeyPair::generate(rng);
        self.add_state(SenderKeyState::new(
            chain_id,
            0,
            ck,
            signing.public,
            Some(signing.private),
        ));
        SenderKeyDistributionMessage::new(chain_id, 0, ck, signing.public)
    }

    /// The distribution message for our current sending chain (at its current iteration).
    pub fn distribution_message(&self) -> Result<SenderKeyDistributionMessage, GroupError> {
        let s = self
            .states
            .front()
            .filter(|s| s.signing.is_some())
            .ok_or(GroupError::NoLocalSenderKey)?;
        Ok(SenderKeyDistributionMessage::new(
            s.chain_id,
            s.chain_key.iteration,
            s.chain_key.key,
            *s.signing_public(),
        ))
    }

    /// Take in a sender's distribution message (an existing chain id is replaced).
    pub fn process_distribution(
        &mut self,
        m: &SenderKeyDistributionMessage,
    ) -> Result<(), GroupError> {
        if m.message_version != CIPHERTEXT_VERSION {
            return Err(GroupError::InvalidVersion(m.message_version));
        }
        if let Some(s) = self.states.iter().find(|s| s.chain_id == m.chain_id) {
            if s.signing_public() == &m.signing_key {
                // Already known: never rewind a chain (a replayed distribution message
                // would otherwise reopen used iterations).
                return Ok(());
            }
        }
        self.add_state(SenderKeyState::new(
            m.chain_id,
            m.iteration,
            m.chain_key,
            m.signing_key,
            None,
        ));
        Ok(())
    }

    /// Encrypt with our newest sending chain.
    pub fn encrypt<R: RngCore + CryptoRng>(
        &mut self,
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<SenderKeyMessage, GroupError> {
        let s = self
            .states
            .front_mut()
            .ok_or(GroupError::NoLocalSenderKey)?;
        let (_, signer) = s.signing.as_ref().ok_or(GroupError::NoLocalSenderKey)?;
        let (seed, next) = s.chain_key.step();
        let (iv, key) = seed.expand();
        let ct = aes256_cbc_encrypt(&key, &iv, plaintext);
        let msg = SenderKeyMessage::new(s.chain_id, seed.iteration, ct, |b| signer.sign(&[b], rng));
        s.chain_key = next;
        Ok(msg)
    }

    /// Verify and decrypt a group message. On failure the record is unchanged.
    pub fn decrypt(&mut self, bytes: &[u8]) -> Result<Vec<u8>, GroupError> {
        let msg = SenderKeyMessage::parse(bytes).map_err(|e| match e {
            crate::error::SessionError::LegacyMessage(v)
            | crate::error::SessionError::InvalidVersion(v) => GroupError::InvalidVersion(v),
            crate::error::SessionError::Decode(d) => GroupError::Decode(d),
            crate::error::SessionError::InvalidKey(k) => GroupError::InvalidKey(k),
            _ => GroupError::Decode(DecodeError::InvalidField("message")),
        })?;
        let s = self
            .states
            .iter_mut()
            .find(|s| s.chain_id == msg.chain_id)
            .ok_or(GroupError::NoSenderKeyState(msg.chain_id))?;
        s.verifying
            .verify(&[msg.signed_part()], msg.signature())
            .map_err(|_| GroupError::BadSignature)?;
        let it = msg.iteration;
        let cur = s.chain_key.iteration;
        if it < cur {
            let pos = s
                .skipped
                .iter()
                .position(|k| k.iteration == it)
                .ok_or(GroupError::DuplicateMessage(it))?;
            let (iv, key) = s.skipped[pos].expand();
            let pt =
                aes256_cbc_decrypt(&key, &iv, &msg.ciphertext).ok_or(GroupError::BadCiphertext)?;
            s.skipped.remove(pos);
            return Ok(pt);
        }
        if it - cur > MAX_FORWARD_JUMPS {
            return Err(GroupError::TooFarAhead {
                iteration: it,
                current: cur,
            });
        }
        let mut ck = s.chain_key.clone();
        let mut skipped = Vec::new();
        while ck.iteration < it {
            let (seed, next) = ck.step();
            skipped.push(seed);
            ck = next;
        }
        let (seed, next) = ck.step();
        let (iv, key) = seed.expand();
        let pt = aes256_cbc_decrypt(&key, &iv, &msg.ciphertext).ok_or(GroupError::BadCiphertext)?;
        s.skipped.extend(skipped);
        while s.skipped.len() > MAX_MESSAGE_KEYS {
            s.skipped.pop_front();
        }
        s.chain_key = next;
        Ok(pt)
    }

    /// Serialize for storage.
    pub fn serialize(&self) -> Vec<u8> {
        crate::wire::storage::encode_sender_key_record(self)
    }

    /// Parse a stored record.
    pub fn deserialize(bytes: &[u8]) -> Result<Self, DecodeError> {
        crate::wire::storage::decode_sender_key_record(bytes)
    }
}

/// Create (or return the existing) distribution message for our own sending chain in
/// `distribution_id`. Send it to every member device over its pairwise session.
pub fn create_sender_key_distribution_message<S: SenderKeyStore, R: RngCore + CryptoRng>(
    store: &mut S,
    own_address: &ProtocolAddress,
    distribution_id: &[u8],
    rng: &mut R,
) -> Result<SenderKeyDistributionMessage, GroupError> {
    let mut record = store
        .load_sender_key(own_address, distribution_id)?
        .unwrap_or_default();
    if let Ok(m) = record.distribution_message() {
        return Ok(m);
    }
    let m = record.rotate(rng);
    store.store_sender_key(own_address, distribution_id, &record)?;
    Ok(m)
}

/// Store a distribution message received from `sender` for `distribution_id`.
pub fn process_sender_key_distribution_message<S: SenderKeyStore>(
    store: &mut S,
    sender: &ProtocolAddress,
    distribution_id: &[u8],
    message: &SenderKeyDistributionMessage,
) -> Result<(), GroupError> {
    let mut record = store
        .load_sender_key(sender, distribution_id)?
        .unwrap_or_default();
    record.process_distribution(message)?;
    store.store_sender_key(sender, distribution_id, &record)?;
    Ok(())
}

/// Encrypt a group message with our sending chain in `distribution_id`.
pub fn group_encrypt<S: SenderKeyStore, R: RngCore + CryptoRng>(
    store: &mut S,
    own_address: &ProtocolAddress,
    distribution_id: &[u8],
    plaintext: &[u8],
    rng: &mut R,
) -> Result<SenderKeyMessage, GroupError> {
    let mut record = store
        .load_sender_key(own_address, distribution_id)?
        .ok_or(GroupError::NoLocalSenderKey)?;
    let m = record.encrypt(plaintext, rng)?;
    store.store_sender_key(own_address, distribution_id, &record)?;
    Ok(m)
}

/// Verify and decrypt a group message from `sender`.
pub fn group_decrypt<S: SenderKeyStore>(
    store: &mut S,
    sender: &ProtocolAddress,
    distribution_id: &[u8],
    bytes: &[u8],
) -> Result<Vec<u8>, GroupError> {
    let mut record = store
        .load_sender_key(sender, distribution_id)?
        .ok_or(GroupError::NoSenderKeyState(0))?;
    let pt = record.decrypt(bytes)?;
    store.store_sender_key(sender, distribution_id, &record)?;
    Ok(pt)
}
