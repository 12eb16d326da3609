//! Storage encoding of records (protobuf, Pawl's own layout, format version 1).
//! Decoding is strict: wrong lengths, bad keys or limits exceeded are `DecodeError`s.

use std::collections::VecDeque;

use prost::Message;
use zeroize::Zeroize;

use crate::error::DecodeError;
use crate::group::{
    SenderChainKey, SenderKeyRecord, SenderKeyState, SenderMessageSeed, MAX_SENDER_KEY_STATES,
};
use crate::keys::{IdentityKey, KeyPair, PreKeyRecord, PrivateKey, PublicKey, SignedPreKeyRecord};
use crate::ratchet::{ChainKey, MessageKeySeed, RootKey, MAX_MESSAGE_KEYS, MAX_RECEIVER_CHAINS};
use crate::session::state::{PendingPreKey, ReceiverChain, SenderChain, SessionState};
use crate::session::{SessionRecord, ARCHIVED_STATES_MAX_LENGTH};

/// Storage format version written by this code.
pub(crate) const FORMAT_VERSION: u32 = 1;

#[derive(Clone, PartialEq, Message)]
struct ChainKeyP {
    #[prost(uint32, tag = "1")]
    index: u32,
    #[prost(bytes = "vec", tag = "2")]
    key: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct MessageKeyP {
    #[prost(uint32, tag = "1")]
    index: u32,
    #[prost(bytes = "vec", tag = "5")]
    seed: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct ChainP {
    #[prost(bytes = "vec", tag = "1")]
    ratchet_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    ratchet_key_private: Vec<u8>,
    #[prost(message, optional, tag = "3")]
    chain_key: Option<ChainKeyP>,
    #[prost(message, repeated, tag = "4")]
    message_keys: Vec<MessageKeyP>,
}

#[derive(Clone, PartialEq, Message)]
struct PendingPreKeyP {
    #[prost(uint32, optional, tag = "1")]
    pre_key_id: Option<u32>,
    #[prost(bytes = "vec", tag = "2")]
    base_key: Vec<u8>,
    #[prost(uint32, tag = "3")]
    signed_pre_key_id: u32,
}

#[derive(Clone, PartialEq, Message)]
struct SessionP {
    #[prost(uint32, tag = "1")]
    session_version: u32,
    #[prost(bytes = "vec", tag = "2")]
    local_identity: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    remote_identity: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    root_key: Vec<u8>,
    #[prost(uint32, tag = "5")]
    previous_counter: u32,
    #[prost(message, optional, tag = "6")]
    sender_chain: Option<ChainP>,
    #[prost(message, repeated, tag = "7")]
    receiver_chains: Vec<ChainP>,
    #[prost(message, optional, tag = "9")]
    pending_prekey: Option<PendingPreKeyP>,
    #[prost(uint32, tag = "10")]
    remote_registration_id: u32,
    #[prost(uint32, tag = "11")]
    local_registration_id: u32,
    #[prost(bytes = "vec", tag = "13")]
    base_key: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct RecordP {
    #[prost(message, optional, tag = "1")]
    current: Option<SessionP>,
    #[prost(message, repeated, tag = "2")]
    previous: Vec<SessionP>,
    #[prost(uint32, tag = "15")]
    format: u32,
}

fn key32(b: &[u8], field: &'static str) -> Result<[u8; 32], DecodeError> {
    b.try_into().map_err(|_| DecodeError::InvalidField(field))
}
fn pubkey(b: &[u8], field: &'static str) -> Result<PublicKey, DecodeError> {
    PublicKey::from_bytes(b).map_err(|_| DecodeError::InvalidField(field))
}
fn privkey(b: &[u8], field: &'static str) -> Result<PrivateKey, DecodeError> {
    PrivateKey::from_bytes(b).map_err(|_| DecodeError::InvalidField(field))
}
fn perr(e: prost::DecodeError) -> DecodeError {
    DecodeError::Protobuf(e.to_string())
}

fn enc_chain_key(c: &ChainKey) -> ChainKeyP {
    ChainKeyP {
        index: c.index,
        key: c.key.to_vec(),
    }
}
fn dec_chain_key(c: &Option<ChainKeyP>) -> Result<ChainKey, DecodeError> {
    let c = c.as_ref().ok_or(DecodeError::MissingField("chain_key"))?;
    Ok(ChainKey {
        key: Box::new(key32(&c.key, "chain_key")?),
        index: c.index,
    })
}

fn enc_state(s: &SessionState) -> SessionP {
    SessionP {
        session_version: u32::from(s.version),
        local_identity: s.local_identity.serialize().to_vec(),
        remote_identity: s.remote_identity.serialize().to_vec(),
        root_key: s.root_key.0.to_vec(),
        previous_counter: s.previous_counter,
        sender_chain: Some(ChainP {
            ratchet_key: s.sender_chain.ratchet_key.public.serialize().to_vec(),
            ratchet_key_private: s.sender_chain.ratchet_key.private.to_bytes().to_vec(),
            chain_key: Some(enc_chain_key(&s.sender_chain.chain_key)),
            message_keys: vec![],
        }),
        receiver_chains: s
            .receiver_chains
            .iter()
            .map(|c| ChainP {
                ratchet_key: c.ratchet_key.serialize().to_vec(),
                ratchet_key_private: vec![],
                chain_key: Some(enc_chain_key(&c.chain_key)),
                message_keys: c
                    .skipped
                    .iter()
                    .map(|k| MessageKeyP {
                        index: k.counter,
                        seed: k.seed.to_vec(),
                    })
                    .collect(),
            })
            .collect(),
        pending_prekey: s.pending_prekey.as_ref().map(|p| PendingPreKeyP {
            pre_key_id: p.pre_key_id,
            base_key: p.base_key.serialize().to_vec(),
            signed_pre_key_id: p.signed_pre_key_id,
        }),
        remote_registration_id: s.remote_registration_id,
        local_registration_id: s.local_registration_id,
        base_key: s.base_key.serialize().to_vec(),
    }
}

fn dec_state(p: &SessionP) -> Result<SessionState, DecodeError> {
    if p.session_version != 3 {
        return Err(DecodeError::InvalidField("session_version"));
    }
    let sc = p
        .sender_chain
        .as_ref()
        .ok_or(DecodeError::MissingField("sender_chain"))?;
    let sender_chain = SenderChain {
        ratchet_key: KeyPair::from_parts(
            pubkey(&sc.ratchet_key, "sender_ratchet_key")?,
            privkey(&sc.ratchet_key_private, "sender_ratchet_key_private")?,
        ),
        chain_key: dec_chain_key(&sc.chain_key)?,
    };
    if p.receiver_chains.len() > MAX_RECEIVER_CHAINS {
        return Err(DecodeError::InvalidField("receiver_chains"));
    }
    let mut s = SessionState::new(
        IdentityKey::new(pubkey(&p.local_identity, "local_identity")?),
        IdentityKey::new(pubkey(&p.remote_identity, "remote_identity")?),
        RootKey(Box::new(key32(&p.root_key, "root_key")?)),
        sender_chain,
        None,
        pubkey(&p.base_key, "base_key")?,
        p.local_registration_id,
        p.remote_registration_id,
    );
    s.previous_counter = p.previous_counter;
    for c in &p.receiver_chains {
        if c.message_keys.len() > MAX_MESSAGE_KEYS {
            return Err(DecodeError::InvalidField("message_keys"));
        }
        let skipped = c
            .message_keys
            .iter()
            .map(|k| {
                Ok(MessageKeySeed {
                    seed: key32(&k.seed, "message_key")?,
                    counter: k.index,
                })
            })
            .collect::<Result<VecDeque<_>, DecodeError>>()?;
        s.receiver_chains.push(ReceiverChain {
            ratchet_key: pubkey(&c.ratchet_key, "receiver_ratchet_key")?,
            chain_key: dec_chain_key(&c.chain_key)?,
            skipped,
        });
    }
    if let Some(pp) = &p.pending_prekey {
        s.pending_prekey = Some(PendingPreKey {
            pre_key_id: pp.pre_key_id,
            signed_pre_key_id: pp.signed_pre_key_id,
            base_key: pubkey(&pp.base_key, "pending_base_key")?,
        });
    }
    Ok(s)
}

fn wipe_state(p: &mut SessionP) {
    p.root_key.zeroize();
    for c in p
        .sender_chain
        .iter_mut()
        .chain(p.receiver_chains.iter_mut())
    {
        c.ratchet_key_private.zeroize();
        if let Some(k) = c.chain_key.as_mut() {
            k.key.zeroize();
        }
        for m in &mut c.message_keys {
            m.seed.zeroize();
        }
    }
}

pub(crate) fn encode_record(r: &SessionRecord) -> Vec<u8> {
    let mut p = RecordP {
        current: r.current.as_ref().map(enc_state),
        previous: r.previous.iter().map(enc_state).collect(),
        format: FORMAT_VERSION,
    };
    let out = p.encode_to_vec();
    p.current
        .iter_mut()
        .chain(p.previous.iter_mut())
        .for_each(wipe_state);
    out
}

pub(crate) fn decode_record(bytes: &[u8]) -> Result<SessionRecord, DecodeError> {
    let mut p = RecordP::decode(bytes).map_err(perr)?;
    let r = (|| {
        if p.format != FORMAT_VERSION {
            return Err(DecodeError::InvalidField("format"));
        }
        if p.previous.len() > ARCHIVED_STATES_MAX_LENGTH {
            return Err(DecodeError::InvalidField("previous"));
        }
        Ok(SessionRecord {
            current: p.current.as_ref().map(dec_state).transpose()?,
            previous: p.previous.iter().map(dec_state).collect::<Result<_, _>>()?,
        })
    })();
    p.current
        .iter_mut()
        .chain(p.previous.iter_mut())
        .for_each(wipe_state);
    r
}

// ---- sender keys ----

#[derive(Clone, PartialEq, Message)]
struct SenderKeyStateP {
    #[prost(uint32, tag = "1")]
    chain_id: u32,
    #[prost(message, optional, tag = "2")]
    chain_key: Option<ChainKeyP>,
    #[prost(bytes = "vec", tag = "3")]
    signing_public: Vec<u8>,
    #[prost(bytes = "vec", optional, tag = "4")]
    signing_private: Option<Vec<u8>>,
    #[prost(message, repeated, tag = "5")]
    message_keys: Vec<MessageKeyP>,
}

#[derive(Clone, PartialEq, Message)]
struct SenderKeyRecordP {
    #[prost(message, repeated, tag = "1")]
    states: Vec<SenderKeyStateP>,
    #[prost(uint32, tag = "15")]
    format: u32,
}

pub(crate) fn encode_sender_key_record(r: &SenderKeyRecord) -> Vec<u8> {
    let mut p = SenderKeyRecordP {
        states: r
            .states
            .iter()
            .map(|s| SenderKeyStateP {
                chain_id: s.chain_id,
                chain_key: Some(ChainKeyP {
                    index: s.chain_key.iteration,
                    key: s.chain_key.key.to_vec(),
                }),
                signing_public: s.signing_public().serialize().to_vec(),
                signing_private: s.signing.as_ref().map(|(k, _)| k.to_bytes().to_vec()),
                message_keys: s
                    .skipped
                    .iter()
                    .map(|k| MessageKeyP {
                        index: k.iteration,
                        seed: k.seed.to_vec(),
                    })
                    .collect(),
            })
            .collect(),
        format: FORMAT_VERSION,
    };
    let out = p.encode_to_vec();
    wipe_sk(&mut p);
    out
}

fn wipe_sk(p: &mut SenderKeyRecordP) {
    for s in &mut p.states {
        if let Some(k) = s.chain_key.as_mut() {
            k.key.zeroize();
        }
        if let Some(k) = s.signing_private.as_mut() {
            k.zeroize();
        }
        for m in &mut s.message_keys {
            m.seed.zeroize();
        }
    }
}

pub(crate) fn decode_sender_key_record(bytes: &[u8]) -> Result<SenderKeyRecord, DecodeError> {
    let mut p = SenderKeyRecordP::decode(bytes).map_err(perr)?;
    let r = (|| {
        if p.format != FORMAT_VERSION {
            return Err(DecodeError::InvalidField("format"));
        }
        if p.states.len() > MAX_SENDER_KEY_STATES {
            return Err(DecodeError::InvalidField("states"));
        }
        let mut states = VecDeque::new();
        for s in &p.states {
            let ck = s
                .chain_key
                .as_ref()
                .ok_or(DecodeError::MissingField("chain_key"))?;
            if s.message_keys.len() > MAX_MESSAGE_KEYS {
                return Err(DecodeError::InvalidField("message_keys"));
            }
            let mut st = SenderKeyState::new(
                s.chain_id,
                ck.index,
                key32(&ck.key, "chain_key")?,
                pubkey(&s.signing_public, "signing_public")?,
                s.signing_private
                    .as_ref()
                    .map(|k| privkey(k, "signing_private"))
                    .transpose()?,
            );
            st.chain_key = SenderChainKey {
                iteration: ck.index,
                key: key32(&ck.key, "chain_key")?,
            };
            for m in &s.message_keys {
                st.skipped.push_back(SenderMessageSeed {
                    iteration: m.index,
                    seed: key32(&m.seed, "message_key")?,
                });
            }
            states.push_back(st);
        }
        Ok(SenderKeyRecord { states })
    })();
    wipe_sk(&mut p);
    r
}

// ---- prekeys ----

#[derive(Clone, PartialEq, Message)]
struct PreKeyP {
    #[prost(uint32, tag = "1")]
    id: u32,
    #[prost(bytes = "vec", tag = "2")]
    public: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    private: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    signature: Vec<u8>,
    #[prost(uint64, tag = "5")]
    timestamp: u64,
}

fn encode_prekey(id: u32, kp: &KeyPair, signature: &[u8], timestamp: u64) -> Vec<u8> {
    let mut p = PreKeyP {
        id,
        public: kp.public.serialize().to_vec(),
        private: kp.private.to_bytes().to_vec(),
        signature: signature.to_vec(),
        timestamp,
    };
    let out = p.encode_to_vec();
    p.private.zeroize();
    out
}

/// Decode a (signed) prekey record: `(id, key pair, signature, timestamp)`.
fn decode_prekey(bytes: &[u8]) -> Result<(u32, KeyPair, Vec<u8>, u64), DecodeError> {
    let mut p = PreKeyP::decode(bytes).map_err(perr)?;
    let kp = (|| {
        Ok(KeyPair::from_parts(
            pubkey(&p.public, "public")?,
            privkey(&p.private, "private")?,
        ))
    })();
    p.private.zeroize();
    Ok((p.id, kp?, std::mem::take(&mut p.signature), p.timestamp))
}

impl PreKeyRecord {
    /// Serialize for storage.
    pub fn serialize(&self) -> Vec<u8> {
        encode_prekey(self.id, &self.key_pair, &[], 0)
    }
    /// Parse a stored record.
    pub fn deserialize(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (id, key_pair, _, _) = decode_prekey(bytes)?;
        Ok(PreKeyRecord { id, key_pair })
    }
}

impl SignedPreKeyRecord {
    /// Serialize for storage.
    pub fn serialize(&self) -> Vec<u8> {
        encode_prekey(self.id, &self.key_pair, &self.signature, self.timestamp)
    }
    /// Parse a stored record.
    pub fn deserialize(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (id, key_pair, signature, timestamp) = decode_prekey(bytes)?;
        let signature = signature
            .as_slice()
            .try_into()
            .map_err(|_| DecodeError::InvalidField("signature"))?;
        Ok(SignedPreKeyRecord {
            id,
            timestamp,
            key_pair,
            signature,
        })
    }
}
