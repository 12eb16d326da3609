//! Persistence of a [`CollectionState`] (protobuf, Pawl's own layout, format 1).
//!
//! The state holds decrypted values, so it is stored like the rest of the client's data
//! (in the encrypted database). Decoding is strict and re-derives the LTHash from the
//! records' value MACs, so a corrupt or truncated record fails here rather than at the
//! next patch.

use prost::Message;

use super::keys::value_mac_of;
use super::lthash::{LtHash, LT_HASH_LEN};
use super::proto::SyncActionValue;
use super::state::{CollectionState, Record};
use crate::error::DecodeError;

/// Storage format version written by this code.
const FORMAT: u32 = 1;

#[derive(Clone, PartialEq, Message)]
struct CollectionStateP {
    #[prost(uint32, tag = "1")]
    format: u32,
    #[prost(string, tag = "2")]
    name: String,
    #[prost(uint64, tag = "3")]
    version: u64,
    #[prost(bytes = "vec", tag = "4")]
    hash: Vec<u8>,
    #[prost(message, repeated, tag = "5")]
    records: Vec<RecordP>,
}

#[derive(Clone, PartialEq, Message)]
struct RecordP {
    #[prost(bytes = "vec", tag = "1")]
    index_mac: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    key_id: Vec<u8>,
    #[prost(string, repeated, tag = "4")]
    index: Vec<String>,
    #[prost(message, optional, tag = "5")]
    action: Option<SyncActionValue>,
}

impl CollectionState {
    /// The state's storage encoding (deterministic: equal states, equal bytes).
    pub fn encode(&self) -> Vec<u8> {
        CollectionStateP {
            format: FORMAT,
            name: self.name.clone(),
            version: self.version,
            hash: self.hash.as_bytes().to_vec(),
            records: self
                .records
                .iter()
                .map(|(mac, r)| RecordP {
                    index_mac: mac.to_vec(),
                    value: r.value.clone(),
                    key_id: r.key_id.clone(),
                    index: r.index.clone(),
                    action: Some(r.action.clone()),
                })
                .collect(),
        }
        .encode_to_vec()
    }

    /// Decodes [`CollectionState::encode`]'s bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let p =
            CollectionStateP::decode(bytes).map_err(|e| DecodeError::Protobuf(e.to_string()))?;
        if p.format != FORMAT {
            return Err(DecodeError::InvalidField("format"));
        }
        let hash: [u8; LT_HASH_LEN] = p
            .hash
            .as_slice()
            .try_into()
            .map_err(|_| DecodeError::InvalidField("hash"))?;
        let mut state = CollectionState::new(p.name);
        state.version = p.version;
        for r in p.records {
            let index_mac: [u8; 32] = r
                .index_mac
                .as_slice()
                .try_into()
                .map_err(|_| DecodeError::InvalidField("index_mac"))?;
            let value_mac =
                value_mac_of(&r.value).map_err(|_| DecodeError::InvalidField("value"))?;
            if r.index.is_empty() {
                return Err(DecodeError::InvalidField("index"));
            }
            let record = Record {
                value: r.value,
                key_id: r.key_id,
                value_mac,
                index: r.index,
                action: r.action.unwrap_or_default(),
            };
            if state.insert(index_mac, record).is_some() {
                return Err(DecodeError::InvalidField("records (duplicate index)"));
            }
            state.hash.add(&value_mac);
        }
        if state.hash != LtHash::from_bytes(hash) {
            return Err(DecodeError::InvalidField("hash"));
        }
        Ok(state)
    }
}

#[cfg(test)]
pub(super) fn by_index_is_consistent(s: &CollectionState) -> bool {
    let linked: usize = s.by_index.values().map(|m| m.len()).sum();
    linked == s.records.len()
        && s.by_index.iter().all(|(i, macs)| {
            !macs.is_empty()
                && macs
                    .iter()
                    .all(|m| s.records.get(m).is_some_and(|r| &r.index == i))
        })
}
