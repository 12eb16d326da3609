//! App-state sync ("syncd"): settings shared by a user's own devices (mark read,
//! archive, mute, pin, contacts, settings), stored on the relay end-to-end encrypted.
//!
//! The construction is WhatsApp's (`shared/design/protocol-facts.md` §1.8): each
//! collection is a set of records addressed by an HMAC of their index (the relay sees
//! only opaque 32-byte ids); values are AES-256-CBC encrypted and MACed under keys
//! expanded from a 32-byte [`SyncKey`]; the whole set is summarised by an [`LtHash`]
//! that every patch and snapshot authenticates, so a dropped, added or altered record is
//! detected.
//!
//! The protobufs ([`proto`]) are Pawl's own with WhatsApp's field numbers, but flattened:
//! WhatsApp wraps the version, key id, index and value in one-field messages
//! (`SyncdVersion`, `KeyId`, `SyncdIndex`, `SyncdValue`); Pawl stores them directly, so
//! the bytes are not WhatsApp-compatible while every MAC input is.
//!
//! # Order and concurrent edits
//!
//! The relay defines the order: each collection has linear versions and the relay
//! accepts patch `N+1` only on top of `N`. A client prepares a patch
//! ([`CollectionState::prepare_patch`]), sends it, and commits it
//! ([`PreparedPatch::commit`]) only when the relay accepts. When two devices prepare
//! version `N+1` at once, the relay accepts one; the other is told of a conflict,
//! fetches and applies the accepted patch ([`CollectionState::apply_patch`]), and
//! prepares its mutations again on top (re-encrypted, new MACs, version `N+2`). Both
//! devices then hold identical states; for an index both edited, the later version wins.
//! A patch applied out of order fails with [`AppStateError::VersionGap`], which is how a
//! dropped, reordered or replayed patch is noticed; recovery is a fresh snapshot
//! ([`CollectionState::from_snapshot`]).
//!
//! Everything here is sans-I/O: bytes in, bytes and states out; randomness (IVs) comes
//! from the caller's RNG. A failed apply returns an error and leaves the state untouched
//! (every method that changes state returns a new one).

mod index;
#[cfg(test)]
mod kat;
mod keys;
mod lthash;
pub mod proto;
mod state;
mod storage;
#[cfg(test)]
mod tests;

use thiserror::Error;

use crate::error::{DecodeError, Fault};

pub use index::{
    archive_index, collection_for, contact_index, encode_index, mark_read_index, mute_index,
    parse_index, pin_index, setting_index, COLLECTIONS, CRITICAL_BLOCK, CRITICAL_UNBLOCK_LOW,
    REGULAR, REGULAR_HIGH, REGULAR_LOW,
};
pub use keys::{MutationKeys, SyncKey};
pub use lthash::{LtHash, LT_HASH_LEN};
pub use proto::{Operation, SyncActionValue};
pub use state::{AppliedMutation, CollectionState, Mutation, PreparedPatch, Record};

/// Errors from app-state sync.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AppStateError {
    /// A patch, snapshot, record or stored state does not parse.
    #[error("malformed app-state data: {0}")]
    Decode(#[from] DecodeError),
    /// The patch's version is not the state's version + 1: a patch was dropped,
    /// reordered or replayed.
    #[error("patch version {got} does not follow the state (expected {expected})")]
    VersionGap {
        /// The version the state can apply next.
        expected: u64,
        /// The version in the patch.
        got: u64,
    },
    /// No sync key with this id is known (request it from the primary device).
    #[error("unknown sync key id {0:02x?}")]
    UnknownKey(Vec<u8>),
    /// A record's value MAC does not verify (tampered, or a different key).
    #[error("value MAC does not verify")]
    BadValueMac,
    /// A record's index MAC does not match the index inside its value.
    #[error("index MAC does not match the record's index")]
    BadIndexMac,
    /// A value's MAC verifies but it does not decrypt (bad padding).
    #[error("value does not decrypt")]
    BadCiphertext,
    /// An index is not a JSON array of strings.
    #[error("malformed index: {0}")]
    BadIndex(&'static str),
    /// The snapshot MAC does not verify: the resulting LTHash differs from the writer's.
    #[error("snapshot MAC does not verify (LTHash mismatch)")]
    BadSnapshotMac,
    /// The patch MAC does not verify.
    #[error("patch MAC does not verify")]
    BadPatchMac,
    /// A REMOVE names an index that is not in the collection.
    #[error("REMOVE of an index that is not in the collection")]
    UnknownIndex,
    /// The state changed since the patch was prepared: apply what the relay has and
    /// prepare again.
    #[error("the state changed since the patch was prepared")]
    StaleBase,
    /// The caller passed an invalid argument.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
}

impl AppStateError {
    /// Whose fault the error is.
    pub fn fault(&self) -> Fault {
        match self {
            AppStateError::UnknownKey(_)
            | AppStateError::StaleBase
            | AppStateError::InvalidArgument(_) => Fault::Caller,
            _ => Fault::Peer,
        }
    }
}

/// Constant-time equality of two MACs (lengths are public).
fn mac_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

fn protobuf_error(e: prost::DecodeError) -> AppStateError {
    AppStateError::Decode(DecodeError::Protobuf(e.to_string()))
}
