//! What the client tells the app: the [`Event`] stream.

use crate::address::ProtocolAddress;
use crate::sqlite::messages::StoredMessage;

/// What happened, for the app.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Connected and authenticated.
    Connected,
    /// The connection dropped; the client reconnects by itself.
    Disconnected {
        /// Why.
        reason: String,
    },
    /// A new message, already committed to the store.
    Message(StoredMessage),
    /// The relay accepted our message (it is queued for every device). A group
    /// message is one relay send per member: this comes once for each.
    Sent {
        /// Message id in the store.
        message_id: i64,
    },
    /// One device of the recipient received our message.
    Delivered {
        /// Message id in the store.
        message_id: i64,
        /// The device.
        device: ProtocolAddress,
    },
    /// The recipient read our message (end-to-end encrypted receipt).
    Read {
        /// Message id in the store.
        message_id: i64,
        /// The reader's device.
        by: ProtocolAddress,
    },
    /// A contact started or stopped typing (never stored).
    Typing {
        /// Their device.
        from: ProtocolAddress,
        /// Started (true) or stopped.
        started: bool,
    },
    /// A contact came online or went offline (never stored).
    Presence {
        /// Their device.
        from: ProtocolAddress,
        /// Online or not.
        online: bool,
    },
    /// A message could not be sent (unknown recipient, too large).
    Failed {
        /// Message id in the store, if it was a stored message.
        message_id: Option<i64>,
        /// Why.
        reason: String,
    },
    /// A message could not be decrypted; it was dropped (acknowledged).
    DecryptFailed {
        /// The sender device.
        from: ProtocolAddress,
        /// Why.
        error: String,
    },
    /// One-time prekeys were uploaded.
    PreKeysUploaded {
        /// How many.
        count: u32,
    },
    /// The primary linked a companion device (on the primary).
    DeviceLinked {
        /// Its device id.
        device_id: u32,
    },
    /// A device list, or devices on it, failed the checks: nothing is encrypted to
    /// those devices (a relay that lists a device the primary did not sign, or
    /// replays an old list).
    DeviceListRejected {
        /// Whose list.
        user: String,
        /// Why.
        reason: String,
    },
    /// History from the primary was imported (on a new companion).
    HistorySynced {
        /// Chunks imported so far.
        chunks_done: u32,
        /// Chunks in all.
        chunks: u32,
        /// Messages imported by this chunk.
        messages: u32,
    },
    /// A patch from the relay did not verify or did not follow the last one
    /// (tampered, dropped, reordered or replayed); the collection is rebuilt from the
    /// snapshot (an `AppStateChanged` follows if that worked).
    AppStateRejected {
        /// The collection.
        collection: String,
        /// Why.
        reason: String,
    },
    /// A group was created, changed (members, admins, name) or this account was
    /// removed from it, by a message from an admin (or a member leaving); already
    /// stored. Read it with `Client::group`.
    GroupUpdated {
        /// The group's id.
        group_id: Vec<u8>,
        /// Its chat.
        chat_id: i64,
    },
    /// Synced app state changed (read marker, archive, mute, pin, contact name,
    /// setting) from another device of this account, or after recovery.
    AppStateChanged {
        /// The collection.
        collection: String,
    },
}
