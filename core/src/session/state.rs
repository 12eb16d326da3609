//! One Double Ratchet session state (one X3DH run) and its encrypt/decrypt.
//!
//! Decryption plans first and commits last: the keys for a message are derived into
//! temporaries, the MAC and the padding are checked, and only then is the state
//! changed. A forged, replayed or corrupt message leaves the state exactly as it was,
//! without cloning the state for every message.

use std::collections::VecDeque;

use rand_core::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;

use crate::crypto::{aes256_cbc_decrypt, aes256_cbc_encrypt, HmacKey};
use crate::error::SessionError;
use crate::keys::{IdentityKey, KeyPair, PublicKey};
use crate::ratchet::{
    ChainKey, MessageKeySeed, MessageKeys, RootKey, MAX_FORWARD_JUMPS, MAX_MESSAGE_KEYS,
    MAX_RECEIVER_CHAINS,
};
use crate::wire::{SignalMessage, CIPHERTEXT_VERSION, MAC_LEN};

/// X3DH values an initiator repeats in every message until the peer answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PendingPreKey {
    pub(crate) pre_key_id: Option<u32>,
    pub(crate) signed_pre_key_id: u32,
    pub(crate) base_key: PublicKey,
}

#[derive(Clone)]
pub(crate) struct SenderChain {
    pub(crate) ratchet_key: KeyPair,
    pub(crate) chain_key: ChainKey,
}

#[derive(Clone)]
pub(crate) struct ReceiverChain {
    pub(crate) ratchet_key: PublicKey,
    pub(crate) chain_key: ChainKey,
    /// Skipped message-key seeds, oldest first.
    pub(crate) skipped: VecDeque<MessageKeySeed>,
}

/// One session state.
#[derive(Clone)]
pub(crate) struct SessionState {
    pub(crate) version: u8,
    pub(crate) local_identity: IdentityKey,
    pub(crate) remote_identity: IdentityKey,
    pub(crate) root_key: RootKey,
    pub(crate) previous_counter: u32,
    pub(crate) sender_chain: SenderChain,
    /// Newest last.
    pub(crate) receiver_chains: Vec<ReceiverChain>,
    pub(crate) pending_prekey: Option<PendingPreKey>,
    pub(crate) local_registration_id: u32,
    pub(crate) remote_registration_id: u32,
    /// The initiator's base key: identifies the X3DH run (for duplicate PreKey messages).
    pub(crate) base_key: PublicKey,
    /// HMAC key schedule is per message; the identity prefix of the MAC input is fixed.
    mac_prefix_sending: [u8; 66],
}

impl std::fmt::Debug for SessionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionState")
            .field("version", &self.version)
            .field("remote_identity", &self.remote_identity)
            .field("sender_index", &self.sender_chain.chain_key.index)
            .field("receiver_chains", &self.receiver_chains.len())
            .field("pending_prekey", &self.pending_prekey.is_some())
            .finish_non_exhaustive()
    }
}

/// What a successful decrypt will change, computed before anything is changed.
enum Plan {
    /// Use (and remove) a stored skipped key of chain `chain`.
    Skipped { chain: usize, pos: usize },
    /// Advance existing chain `chain` to `next`, storing `skipped` seeds.
    Advance {
        chain: usize,
        skipped: Vec<MessageKeySeed>,
        next: ChainKey,
    },
    /// A new DH ratchet step: new receiver chain and the keys for the next sending chain.
    NewChain {
        root: RootKey,
        chain: ReceiverChain,
        new_ratchet: KeyPair,
    },
}

impl SessionState {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        local_identity: IdentityKey,
        remote_identity: IdentityKey,
        root_key: RootKey,
        sender_chain: SenderChain,
        receiver_chain: Option<(PublicKey, ChainKey)>,
        base_key: PublicKey,
        local_registration_id: u32,
        remote_registration_id: u32,
    ) -> Self {
        let mut s = SessionState {
            version: CIPHERTEXT_VERSION,
            local_identity,
            remote_identity,
            root_key,
            previous_counter: 0,
            sender_chain,
            receiver_chains: Vec::new(),
            pending_prekey: None,
            local_registration_id,
            remote_registration_id,
            base_key,
            mac_prefix_sending: [0; 66],
        };
        s.refresh_cache();
        if let Some((k, ck)) = receiver_chain {
            s.receiver_chains.push(ReceiverChain {
                ratchet_key: k,
                chain_key: ck,
                skipped: VecDeque::new(),
            });
        }
        s
    }

    pub(crate) fn refresh_cache(&mut self) {
        self.mac_prefix_sending[..33].copy_from_slice(&self.local_identity.serialize());
        self.mac_prefix_sending[33..].copy_from_slice(&self.remote_identity.serialize());
    }

    /// Encrypt the next message of the sending chain.
    pub(crate) fn encrypt(&mut self, plaintext: &[u8]) -> SignalMessage {
        let keys = self.sender_chain.chain_key.advance().expand();
        let ct = aes256_cbc_encrypt(&keys.cipher_key, &keys.iv, plaintext);
        let mac = HmacKey::new(&keys.mac_key);
        let prefix = &self.mac_prefix_sending;
        SignalMessage::new(
            self.sender_chain.ratchet_key.public,
            keys.counter,
            self.previous_counter,
            ct,
            |body| mac.mac(&[prefix, body]),
        )
    }

    fn find_chain(&self, key: &PublicKey) -> Option<usize> {
        self.receiver_chains
            .iter()
            .position(|c| c.ratchet_key == *key)
    }

    /// Decrypt `msg` with this state; on success the state has advanced.
    pub(crate) fn decrypt<R: RngCore + CryptoRng>(
        &mut self,
        msg: &SignalMessage,
        rng: &mut R,
    ) -> Result<Vec<u8>, SessionError> {
        if msg.message_version != self.version {
            return Err(SessionError::InvalidMessage(format!(
                "message version {} does not match session version {}",
                msg.message_version, self.version
            )));
        }
        let counter = msg.counter;
        let (plan, keys) = match self.find_chain(&msg.ratchet_key) {
            Some(ci) => self.plan_existing(ci, counter)?,
            None => {
                let (root, ck) = self
                    .root_key
                    .create_chain(&msg.ratchet_key, &self.sender_chain.ratchet_key.private)?;
                let mut chain = ReceiverChain {
                    ratchet_key: msg.ratchet_key,
                    chain_key: ck,
                    skipped: VecDeque::new(),
                };
                let keys = plan_forward(&mut chain, counter)?;
                let new_ratchet = KeyPair::generate(rng);
                (
                    Plan::NewChain {
                        root,
                        chain,
                        new_ratchet,
                    },
                    keys,
                )
            }
        };
        self.verify_mac(msg, &keys)?;
        let pt =
            aes256_cbc_decrypt(&keys.cipher_key, &keys.iv, &msg.ciphertext).ok_or_else(|| {
                SessionError::InvalidMessage("ciphertext does not decrypt (bad padding)".into())
            })?;
        self.commit(plan)?;
        self.pending_prekey = None;
        Ok(pt)
    }

    fn plan_existing(&self, ci: usize, counter: u32) -> Result<(Plan, MessageKeys), SessionError> {
        let chain = &self.receiver_chains[ci];
        let index = chain.chain_key.index;
        if counter < index {
            return match chain.skipped.iter().position(|s| s.counter == counter) {
                Some(pos) => Ok((
                    Plan::Skipped { chain: ci, pos },
                    chain.skipped[pos].expand(),
                )),
                None => Err(SessionError::DuplicateMessage { counter }),
            };
        }
        check_jump(counter, index)?;
        let mut skipped = Vec::new();
        let mut ck = chain.chain_key.clone();
        while ck.index < counter {
            skipped.push(ck.advance());
        }
        let (seed, next) = ck.step();
        Ok((
            Plan::Advance {
                chain: ci,
                skipped,
                next,
            },
            seed.expand(),
        ))
    }

    fn verify_mac(&self, msg: &SignalMessage, keys: &MessageKeys) -> Result<(), SessionError> {
        // MAC input: sender identity ‖ receiver identity ‖ message without MAC.
        let mac = HmacKey::new(&keys.mac_key).mac(&[
            &self.remote_identity.serialize(),
            &self.local_identity.serialize(),
            msg.mac_input(),
        ]);
        if bool::from(mac[..MAC_LEN].ct_eq(msg.mac())) {
            Ok(())
        } else {
            Err(SessionError::InvalidMac)
        }
    }

    fn commit(&mut self, plan: Plan) -> Result<(), SessionError> {
        match plan {
            Plan::Skipped { chain, pos } => {
                self.receiver_chains[chain].skipped.remove(pos);
            }
            Plan::Advance {
                chain,
                skipped,
                next,
            } => {
                let c = &mut self.receiver_chains[chain];
                push_skipped(&mut c.skipped, skipped);
                c.chain_key = next;
            }
            Plan::NewChain {
                root,
                chain,
                new_ratchet,
            } => {
                let their = chain.ratchet_key;
                let (root2, send_ck) = root.create_chain(&their, &new_ratchet.private)?;
                self.receiver_chains.push(chain);
                if self.receiver_chains.len() > MAX_RECEIVER_CHAINS {
                    self.receiver_chains.remove(0);
                }
                self.root_key = root2;
                self.previous_counter = self.sender_chain.chain_key.index.saturating_sub(1);
                self.sender_chain = SenderChain {
                    ratchet_key: new_ratchet,
                    chain_key: send_ck,
                };
            }
        }
        Ok(())
    }
}

fn check_jump(counter: u32, index: u32) -> Result<(), SessionError> {
    if counter - index > MAX_FORWARD_JUMPS {
        return Err(SessionError::TooFarAhead {
            counter,
            current: index,
            limit: MAX_FORWARD_JUMPS,
        });
    }
    Ok(())
}

/// Advance a brand-new chain to `counter`, keeping skipped seeds in it; return the keys.
fn plan_forward(chain: &mut ReceiverChain, counter: u32) -> Result<MessageKeys, SessionError> {
    check_jump(counter, chain.chain_key.index)?;
    let mut skipped = Vec::new();
    while chain.chain_key.index < counter {
        skipped.push(chain.chain_key.advance());
    }
    push_skipped(&mut chain.skipped, skipped);
    Ok(chain.chain_key.advance().expand())
}

fn push_skipped(dst: &mut VecDeque<MessageKeySeed>, src: Vec<MessageKeySeed>) {
    dst.extend(src);
    while dst.len() > MAX_MESSAGE_KEYS {
        dst.pop_front();
    }
}
