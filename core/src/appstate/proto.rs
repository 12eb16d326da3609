//! Wire messages of app-state sync (prost, no build script).
//!
//! Field numbers are WhatsApp's (`waServerSync`, `waSyncAction`); the one-field wrapper
//! messages WhatsApp uses for versions, key ids, indexes and values are flattened into
//! plain fields. [`SyncActionValue`] holds only the actions Pawl uses.
#![allow(missing_docs)] // prost derives public accessors; each message is documented

/// A mutation's operation. The value MAC starts with `op + 1` (0x01 SET, 0x02 REMOVE).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Operation {
    /// Insert or overwrite the record at an index.
    Set = 0,
    /// Delete the record at an index.
    Remove = 1,
}

impl Operation {
    /// The first byte of the value-MAC input.
    pub(crate) fn mac_byte(self) -> u8 {
        match self {
            Operation::Set => 1,
            Operation::Remove => 2,
        }
    }
}

/// One patch: the mutations that take a collection from `version - 1` to `version`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SyncdPatch {
    #[prost(uint64, tag = "1")]
    pub version: u64,
    #[prost(message, repeated, tag = "2")]
    pub mutations: Vec<SyncdMutation>,
    /// `HMAC-SHA256(snapshotMacKey, ltHash ‖ u64_BE(version) ‖ collection)` after the patch.
    #[prost(bytes = "vec", tag = "4")]
    pub snapshot_mac: Vec<u8>,
    /// `HMAC-SHA256(patchMacKey, snapshotMAC ‖ valueMACs ‖ u64_BE(version) ‖ collection)`.
    #[prost(bytes = "vec", tag = "5")]
    pub patch_mac: Vec<u8>,
    /// The sync key of the two MACs above.
    #[prost(bytes = "vec", tag = "6")]
    pub key_id: Vec<u8>,
    /// The writing device (informational: not covered by any MAC, as in WhatsApp).
    #[prost(uint32, tag = "8")]
    pub device_index: u32,
}

/// One SET or REMOVE.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SyncdMutation {
    #[prost(enumeration = "Operation", tag = "1")]
    pub operation: i32,
    #[prost(message, optional, tag = "2")]
    pub record: Option<SyncdRecord>,
}

/// An encrypted record.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SyncdRecord {
    /// The index MAC (32 bytes).
    #[prost(bytes = "vec", tag = "1")]
    pub index: Vec<u8>,
    /// `IV(16) ‖ AES-256-CBC(SyncActionData) ‖ valueMAC(32)`.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
    /// The sync key this record is encrypted under.
    #[prost(bytes = "vec", tag = "3")]
    pub key_id: Vec<u8>,
}

/// Every record of a collection at one version (the recovery path).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SyncdSnapshot {
    #[prost(uint64, tag = "1")]
    pub version: u64,
    #[prost(message, repeated, tag = "2")]
    pub records: Vec<SyncdRecord>,
    /// The snapshot MAC of the collection's LTHash at `version`.
    #[prost(bytes = "vec", tag = "3")]
    pub mac: Vec<u8>,
    /// The sync key of `mac`.
    #[prost(bytes = "vec", tag = "4")]
    pub key_id: Vec<u8>,
}

/// The plaintext of a record's value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SyncActionData {
    /// The index as a JSON array of strings (its HMAC is the record's index MAC).
    #[prost(string, tag = "1")]
    pub index: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<SyncActionValue>,
    #[prost(bytes = "vec", tag = "3")]
    pub padding: Vec<u8>,
    /// The action's version (Pawl writes 1).
    #[prost(int32, tag = "4")]
    pub version: i32,
}

/// The value of an action (one sub-action set, by the index's kind).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SyncActionValue {
    /// When the action was taken (ms since the Unix epoch, the writer's clock).
    #[prost(int64, optional, tag = "1")]
    pub timestamp: Option<i64>,
    #[prost(message, optional, tag = "2")]
    pub mark_read: Option<MarkReadAction>,
    #[prost(message, optional, tag = "3")]
    pub archive: Option<ArchiveAction>,
    #[prost(message, optional, tag = "4")]
    pub mute: Option<MuteAction>,
    #[prost(message, optional, tag = "5")]
    pub pin: Option<PinAction>,
    #[prost(message, optional, tag = "6")]
    pub contact: Option<ContactAction>,
    #[prost(message, optional, tag = "7")]
    pub setting: Option<SettingAction>,
}

/// A chat marked read or unread (index `["markChatAsRead", chat]`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct MarkReadAction {
    #[prost(bool, optional, tag = "1")]
    pub read: Option<bool>,
}

/// A chat archived or not (index `["archive", chat]`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ArchiveAction {
    #[prost(bool, optional, tag = "1")]
    pub archived: Option<bool>,
}

/// A chat muted, possibly until a time (index `["mute", chat]`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct MuteAction {
    #[prost(bool, optional, tag = "1")]
    pub muted: Option<bool>,
    /// End of the mute (ms since the Unix epoch); absent means indefinitely.
    #[prost(int64, optional, tag = "2")]
    pub until_ms: Option<i64>,
}

/// A chat pinned or not (index `["pin_v1", chat]`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct PinAction {
    #[prost(bool, optional, tag = "1")]
    pub pinned: Option<bool>,
}

/// A contact's name as the user saved it (index `["contact", user]`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ContactAction {
    #[prost(string, optional, tag = "1")]
    pub full_name: Option<String>,
}

/// A named setting (index `["setting", name]`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SettingAction {
    #[prost(string, optional, tag = "1")]
    pub value: Option<String>,
}
