//! One collection's state and the patches and snapshots that move it.

use std::collections::{BTreeMap, BTreeSet};

use prost::Message as _;
use rand_core::{CryptoRng, RngCore};

use super::index::{collection_for, encode_index, parse_index};
use super::keys::{value_mac_of, MutationKeys, SyncKey};
use super::lthash::LtHash;
use super::proto::{
    Operation, SyncActionData, SyncActionValue, SyncdMutation, SyncdPatch, SyncdRecord,
    SyncdSnapshot,
};
use super::{mac_eq, protobuf_error, AppStateError};
use crate::error::DecodeError;

/// The `SyncActionData.version` Pawl writes.
const ACTION_VERSION: i32 = 1;

/// One change a client wants to make.
#[derive(Clone, Debug, PartialEq)]
pub struct Mutation {
    /// SET or REMOVE.
    pub op: Operation,
    /// The record's index (for example [`super::archive_index`]).
    pub index: Vec<String>,
    /// The value (encrypted into the record; for a REMOVE, carried but not kept).
    pub value: SyncActionValue,
}

impl Mutation {
    /// Sets `index` to `value`.
    pub fn set(index: Vec<String>, value: SyncActionValue) -> Self {
        Mutation {
            op: Operation::Set,
            index,
            value,
        }
    }

    /// Removes `index`.
    pub fn remove(index: Vec<String>) -> Self {
        Mutation {
            op: Operation::Remove,
            index,
            value: SyncActionValue::default(),
        }
    }
}

/// A verified mutation, as applied.
#[derive(Clone, Debug, PartialEq)]
pub struct AppliedMutation {
    /// SET or REMOVE.
    pub op: Operation,
    /// The decrypted index.
    pub index: Vec<String>,
    /// The decrypted value.
    pub value: SyncActionValue,
}

/// A record of a collection: the encrypted form the relay holds, and its decrypted
/// index and value.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub(super) value: Vec<u8>,
    pub(super) key_id: Vec<u8>,
    pub(super) value_mac: [u8; 32],
    pub(super) index: Vec<String>,
    pub(super) action: SyncActionValue,
}

impl Record {
    /// `IV ‖ ciphertext ‖ value MAC`, as on the wire.
    pub fn value_blob(&self) -> &[u8] {
        &self.value
    }
    /// The sync key the record is encrypted under.
    pub fn key_id(&self) -> &[u8] {
        &self.key_id
    }
    /// The value MAC (the record's LTHash item).
    pub fn value_mac(&self) -> &[u8; 32] {
        &self.value_mac
    }
    /// The decrypted index.
    pub fn index(&self) -> &[String] {
        &self.index
    }
    /// The decrypted value.
    pub fn value(&self) -> &SyncActionValue {
        &self.action
    }
}

/// A collection at one version: its LTHash, its records by index MAC, and their
/// decrypted values by index.
///
/// One index normally has one record. After a key rotation it can have one per key
/// (the index MAC depends on the key); its value is then the record with the latest
/// `timestamp` (ties: the greater index MAC), a choice that depends only on the set of
/// records, so every device and a snapshot agree.
#[derive(Clone, Debug, PartialEq)]
pub struct CollectionState {
    pub(super) name: String,
    pub(super) version: u64,
    pub(super) hash: LtHash,
    pub(super) records: BTreeMap<[u8; 32], Record>,
    /// Index -> the index MACs of its records (derived; not persisted).
    pub(super) by_index: BTreeMap<Vec<String>, BTreeSet<[u8; 32]>>,
}

/// A patch ready to send, and the state it leads to (see [`PreparedPatch::commit`]).
#[derive(Clone, Debug)]
pub struct PreparedPatch {
    bytes: Vec<u8>,
    base_version: u64,
    base_hash: LtHash,
    state: CollectionState,
}

impl PreparedPatch {
    /// The encoded `SyncdPatch` to send to the relay.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The patch's version (the base state's + 1).
    pub fn version(&self) -> u64 {
        self.state.version
    }

    /// The state after the patch.
    pub fn state(&self) -> &CollectionState {
        &self.state
    }

    /// Replaces `state` with the patched state, once the relay has accepted the patch.
    /// `state` must still be the one the patch was prepared from ([`AppStateError::StaleBase`]
    /// otherwise, and nothing changes).
    pub fn commit(self, state: &mut CollectionState) -> Result<(), AppStateError> {
        if state.name != self.state.name
            || state.version != self.base_version
            || state.hash != self.base_hash
        {
            return Err(AppStateError::StaleBase);
        }
        *state = self.state;
        Ok(())
    }
}

/// A mutation with its record, ready to fold into a state.
struct Pending {
    op: Operation,
    index_mac: [u8; 32],
    record: Record,
}

impl CollectionState {
    /// An empty collection at version 0.
    pub fn new(name: impl Into<String>) -> Self {
        CollectionState {
            name: name.into(),
            version: 0,
            hash: LtHash::ZERO,
            records: BTreeMap::new(),
            by_index: BTreeMap::new(),
        }
    }

    /// The collection's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The version of the last patch applied (0 when empty).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The LTHash of the records.
    pub fn hash(&self) -> &LtHash {
        &self.hash
    }

    /// The records by index MAC.
    pub fn records(&self) -> impl Iterator<Item = (&[u8; 32], &Record)> {
        self.records.iter()
    }

    /// The number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The current value at an index.
    pub fn get(&self, index: &[String]) -> Option<&SyncActionValue> {
        self.current(self.by_index.get(index)?)
    }

    /// Every index and its current value, in index order.
    pub fn values(&self) -> impl Iterator<Item = (&[String], &SyncActionValue)> {
        self.by_index
            .iter()
            .filter_map(|(i, macs)| Some((i.as_slice(), self.current(macs)?)))
    }

    fn current(&self, macs: &BTreeSet<[u8; 32]>) -> Option<&SyncActionValue> {
        macs.iter()
            .filter_map(|m| self.records.get(m))
            .max_by_key(|r| r.action.timestamp)
            .map(|r| &r.action)
    }

    /// Encrypts `mutations` under `key` into the patch for version `self.version + 1`.
    /// Nothing changes until the relay accepts it and the caller calls
    /// [`PreparedPatch::commit`]; on a conflict, apply the accepted patch and prepare
    /// again from the new state.
    pub fn prepare_patch(
        &self,
        mutations: &[Mutation],
        key: &SyncKey,
        device_index: u32,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<PreparedPatch, AppStateError> {
        if mutations.is_empty() {
            return Err(AppStateError::InvalidArgument("a patch needs a mutation"));
        }
        let version = self.next_version()?;
        let keys = key.expand();
        let mut pending = Vec::with_capacity(mutations.len());
        for m in mutations {
            if m.index.is_empty() {
                return Err(AppStateError::InvalidArgument("empty index"));
            }
            if collection_for(&m.index).is_some_and(|c| c != self.name) {
                return Err(AppStateError::InvalidArgument(
                    "index of another collection",
                ));
            }
            let json = encode_index(&m.index);
            let index_mac = keys.index_mac(json.as_bytes());
            let data = SyncActionData {
                index: json,
                value: Some(m.value.clone()),
                padding: Vec::new(),
                version: ACTION_VERSION,
            };
            let mut iv = [0u8; 16];
            rng.fill_bytes(&mut iv);
            let value = keys.seal_value(m.op, key.id(), &iv, &data.encode_to_vec());
            let value_mac = value_mac_of(&value)?;
            let record = Record {
                value,
                key_id: key.id().to_vec(),
                value_mac,
                index: m.index.clone(),
                action: m.value.clone(),
            };
            pending.push(Pending {
                op: m.op,
                index_mac,
                record,
            });
        }
        let state = self.with_mutations(version, &pending)?;
        let snapshot_mac = keys.snapshot_mac(&state.hash, version, &self.name);
        let value_macs = pending.iter().map(|p| &p.record.value_mac);
        let patch_mac = keys.patch_mac(&snapshot_mac, value_macs, version, &self.name);
        let patch = SyncdPatch {
            version,
            mutations: pending
                .iter()
                .map(|p| SyncdMutation {
                    operation: p.op.into(),
                    record: Some(SyncdRecord {
                        index: p.index_mac.to_vec(),
                        value: p.record.value.clone(),
                        key_id: p.record.key_id.clone(),
                    }),
                })
                .collect(),
            snapshot_mac: snapshot_mac.to_vec(),
            patch_mac: patch_mac.to_vec(),
            key_id: key.id().to_vec(),
            device_index,
        };
        Ok(PreparedPatch {
            bytes: patch.encode_to_vec(),
            base_version: self.version,
            base_hash: self.hash,
            state,
        })
    }

    /// Verifies a patch from the relay and returns the state after it, with its
    /// mutations decrypted. The patch must be for version `self.version + 1`
    /// ([`AppStateError::VersionGap`] otherwise). Every value MAC, index MAC, the new
    /// LTHash (through the snapshot MAC) and the patch MAC are checked; on any failure
    /// `self` is untouched and nothing is returned but the error.
    pub fn apply_patch(
        &self,
        bytes: &[u8],
        keys: impl Fn(&[u8]) -> Option<SyncKey>,
    ) -> Result<(CollectionState, Vec<AppliedMutation>), AppStateError> {
        let patch = SyncdPatch::decode(bytes).map_err(protobuf_error)?;
        let expected = self.next_version()?;
        if patch.version != expected {
            return Err(AppStateError::VersionGap {
                expected,
                got: patch.version,
            });
        }
        let mut cache = KeyCache::new(&keys);
        let mut pending = Vec::with_capacity(patch.mutations.len());
        for m in &patch.mutations {
            let op = Operation::try_from(m.operation)
                .map_err(|_| DecodeError::InvalidField("operation"))?;
            let record = m
                .record
                .as_ref()
                .ok_or(DecodeError::MissingField("record"))?;
            pending.push(open_record(cache.get(&record.key_id)?, op, record)?);
        }
        let state = self.with_mutations(patch.version, &pending)?;
        let keys = cache.get(&patch.key_id)?;
        let snapshot_mac = keys.snapshot_mac(&state.hash, patch.version, &self.name);
        if !mac_eq(&snapshot_mac, &patch.snapshot_mac) {
            return Err(AppStateError::BadSnapshotMac);
        }
        let value_macs = pending.iter().map(|p| &p.record.value_mac);
        let patch_mac = keys.patch_mac(&snapshot_mac, value_macs, patch.version, &self.name);
        if !mac_eq(&patch_mac, &patch.patch_mac) {
            return Err(AppStateError::BadPatchMac);
        }
        Ok((state, applied(pending)))
    }

    /// Every record at the current version, MACed under `key` (an encoded `SyncdSnapshot`).
    pub fn snapshot(&self, key: &SyncKey) -> Vec<u8> {
        let mac = key
            .expand()
            .snapshot_mac(&self.hash, self.version, &self.name);
        SyncdSnapshot {
            version: self.version,
            records: self
                .records
                .iter()
                .map(|(index_mac, r)| SyncdRecord {
                    index: index_mac.to_vec(),
                    value: r.value.clone(),
                    key_id: r.key_id.clone(),
                })
                .collect(),
            mac: mac.to_vec(),
            key_id: key.id().to_vec(),
        }
        .encode_to_vec()
    }

    /// Rebuilds a collection from a snapshot (the recovery path): every record is
    /// verified and decrypted, the LTHash recomputed from zero, and the snapshot MAC
    /// checked against it. Returns the state and its records as SETs.
    pub fn from_snapshot(
        name: impl Into<String>,
        bytes: &[u8],
        keys: impl Fn(&[u8]) -> Option<SyncKey>,
    ) -> Result<(CollectionState, Vec<AppliedMutation>), AppStateError> {
        let snapshot = SyncdSnapshot::decode(bytes).map_err(protobuf_error)?;
        let mut cache = KeyCache::new(&keys);
        let mut pending = Vec::with_capacity(snapshot.records.len());
        for record in &snapshot.records {
            pending.push(open_record(
                cache.get(&record.key_id)?,
                Operation::Set,
                record,
            )?);
        }
        let mut state = CollectionState::new(name);
        for p in &pending {
            if state.records.contains_key(&p.index_mac) {
                return Err(DecodeError::InvalidField("records (duplicate index)").into());
            }
            state.insert(p.index_mac, p.record.clone());
            state.hash.add(&p.record.value_mac);
        }
        state.version = snapshot.version;
        let mac =
            cache
                .get(&snapshot.key_id)?
                .snapshot_mac(&state.hash, state.version, &state.name);
        if !mac_eq(&mac, &snapshot.mac) {
            return Err(AppStateError::BadSnapshotMac);
        }
        Ok((state, applied(pending)))
    }

    fn next_version(&self) -> Result<u64, AppStateError> {
        self.version
            .checked_add(1)
            .ok_or(AppStateError::InvalidArgument("version overflow"))
    }

    /// The state after `pending`, in order: a SET replaces (and un-hashes) any record
    /// at its index MAC and hashes the new one; a REMOVE un-hashes the record it removes.
    fn with_mutations(
        &self,
        version: u64,
        pending: &[Pending],
    ) -> Result<CollectionState, AppStateError> {
        let mut next = self.clone();
        next.version = version;
        for p in pending {
            let old = match p.op {
                Operation::Set => {
                    next.hash.add(&p.record.value_mac);
                    next.insert(p.index_mac, p.record.clone())
                }
                Operation::Remove => Some(
                    next.remove(&p.index_mac)
                        .ok_or(AppStateError::UnknownIndex)?,
                ),
            };
            if let Some(old) = old {
                next.hash.remove(&old.value_mac);
            }
        }
        Ok(next)
    }

    /// Inserts a record, returning the one it replaces.
    pub(super) fn insert(&mut self, index_mac: [u8; 32], record: Record) -> Option<Record> {
        self.by_index
            .entry(record.index.clone())
            .or_default()
            .insert(index_mac);
        let old = self.records.insert(index_mac, record)?;
        if self
            .records
            .get(&index_mac)
            .is_some_and(|r| r.index != old.index)
        {
            self.unlink(&old.index, &index_mac);
        }
        Some(old)
    }

    fn remove(&mut self, index_mac: &[u8; 32]) -> Option<Record> {
        let old = self.records.remove(index_mac)?;
        self.unlink(&old.index, index_mac);
        Some(old)
    }

    fn unlink(&mut self, index: &[String], index_mac: &[u8; 32]) {
        if let Some(macs) = self.by_index.get_mut(index) {
            macs.remove(index_mac);
            if macs.is_empty() {
                self.by_index.remove(index);
            }
        }
    }
}

/// Verifies a record's value MAC, decrypts it, and checks its index MAC.
fn open_record(
    keys: &MutationKeys,
    op: Operation,
    record: &SyncdRecord,
) -> Result<Pending, AppStateError> {
    let index_mac: [u8; 32] = record
        .index
        .as_slice()
        .try_into()
        .map_err(|_| DecodeError::InvalidField("index"))?;
    let plaintext = keys.open_value(op, &record.key_id, &record.value)?;
    let data = SyncActionData::decode(plaintext.as_slice()).map_err(protobuf_error)?;
    if !mac_eq(&keys.index_mac(data.index.as_bytes()), &index_mac) {
        return Err(AppStateError::BadIndexMac);
    }
    let index = parse_index(&data.index)?;
    Ok(Pending {
        op,
        index_mac,
        record: Record {
            value: record.value.clone(),
            key_id: record.key_id.clone(),
            value_mac: value_mac_of(&record.value)?,
            index,
            action: data.value.unwrap_or_default(),
        },
    })
}

fn applied(pending: Vec<Pending>) -> Vec<AppliedMutation> {
    pending
        .into_iter()
        .map(|p| AppliedMutation {
            op: p.op,
            index: p.record.index,
            value: p.record.action,
        })
        .collect()
}

/// Expanded keys by id, looked up once each per patch or snapshot.
struct KeyCache<'a, F> {
    lookup: &'a F,
    keys: Vec<(Vec<u8>, MutationKeys)>,
}

impl<'a, F: Fn(&[u8]) -> Option<SyncKey>> KeyCache<'a, F> {
    fn new(lookup: &'a F) -> Self {
        KeyCache {
            lookup,
            keys: Vec::new(),
        }
    }

    fn get(&mut self, id: &[u8]) -> Result<&MutationKeys, AppStateError> {
        let at = match self.keys.iter().position(|(i, _)| i == id) {
            Some(at) => at,
            None => {
                let key =
                    (self.lookup)(id).ok_or_else(|| AppStateError::UnknownKey(id.to_vec()))?;
                self.keys.push((id.to_vec(), key.expand()));
                self.keys.len() - 1
            }
        };
        Ok(&self.keys[at].1)
    }
}
