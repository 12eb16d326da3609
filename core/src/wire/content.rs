//! What the client puts inside a Signal message: the plaintext of every 1:1 message
//! the relay client sends is one [`Content`] (protobuf). The relay never sees it.
//!
//! Messages are named by their sender's timestamp (milliseconds, unique per sending
//! device, as in Signal): a read receipt lists the timestamps of the messages read.
#![allow(missing_docs)] // prost messages; each documented at the type

use prost::Message as _;

use crate::error::DecodeError;

/// One message's content.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Content {
    #[prost(oneof = "Body", tags = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10")]
    pub body: Option<Body>,
    /// The version of the sender's account's signed device list as the sender knows
    /// it (in-chat device consistency: a newer one makes the receiver re-read the list
    /// soon).
    #[prost(uint64, tag = "15")]
    pub device_list_version: u64,
}

/// The kinds of content.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Body {
    /// A text message (stored, shown).
    #[prost(message, tag = "1")]
    Text(Text),
    /// Read receipts for messages the recipient sent (end-to-end encrypted).
    #[prost(message, tag = "2")]
    Receipt(ReceiptContent),
    /// A typing indicator (ephemeral: never stored, by the relay or the client).
    #[prost(message, tag = "3")]
    Typing(Typing),
    /// Online / offline (ephemeral, like typing).
    #[prost(message, tag = "4")]
    Presence(Presence),
    #[prost(message, tag = "5")]
    Media(MediaContent),
    /// To the sender's own other devices: a copy of what it sent to `destination`.
    #[prost(message, tag = "6")]
    Sent(SentTranscript),
    /// To the account's own devices: app-state sync keys.
    #[prost(message, tag = "7")]
    KeyShare(AppStateKeyShare),
    /// From the primary to a new companion: a chunk of history to download.
    #[prost(message, tag = "8")]
    History(HistoryNotice),
    /// To every device of every member (old and new): a group's new membership and
    /// name. Pairwise-encrypted like any message, so the sender is authenticated.
    #[prost(message, tag = "9")]
    GroupUpdate(GroupUpdate),
    /// A sender key for a group; travels pairwise-encrypted inside a
    /// [`GroupEnvelope`] to the member devices that lack it.
    #[prost(message, tag = "10")]
    SenderKey(SenderKeyShare),
}

/// Length of a group id (random, chosen by the creator).
pub const GROUP_ID_LEN: usize = 16;

/// A group's state as of `version`; an update replaces the whole state (members and
/// admins are user names). Accepted only from an admin of the state it replaces (or
/// from a member leaving), with a higher version.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct GroupUpdate {
    /// 16 random bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub group_id: Vec<u8>,
    /// 1 at creation, +1 per change.
    #[prost(uint64, tag = "2")]
    pub version: u64,
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(string, repeated, tag = "4")]
    pub members: Vec<String>,
    /// Who may change membership and name (a subset of `members`).
    #[prost(string, repeated, tag = "5")]
    pub admins: Vec<String>,
}

/// A sender-key distribution message for `group_id`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SenderKeyShare {
    #[prost(bytes = "vec", tag = "1")]
    pub group_id: Vec<u8>,
    /// A serialized `SenderKeyDistributionMessage`.
    #[prost(bytes = "vec", tag = "2")]
    pub distribution: Vec<u8>,
}

/// Relay envelope type for group messages (Signal's `SenderKey` ciphertext type).
pub const GROUP_MESSAGE_TYPE: u8 = 7;

/// What a relay envelope of type [`GROUP_MESSAGE_TYPE`] carries: one sender-key
/// message (the same bytes for every member device) and, for a device that does not
/// have the sender's current key yet, a pairwise Signal message (type 2 or 3) whose
/// plaintext is a [`Content`] with a [`SenderKeyShare`]: key and message in one send.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GroupEnvelope {
    #[prost(bytes = "vec", tag = "1")]
    pub group_id: Vec<u8>,
    /// A serialized `SenderKeyMessage` whose plaintext is a [`Content`].
    #[prost(bytes = "vec", tag = "2")]
    pub message: Vec<u8>,
    /// 0 (no key), 2 or 3.
    #[prost(uint32, tag = "3")]
    pub key_type: u32,
    #[prost(bytes = "vec", tag = "4")]
    pub key: Vec<u8>,
}

impl GroupEnvelope {
    /// Serialize.
    pub fn encode(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    /// Parse (a typed error, never a panic).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        <Self as prost::Message>::decode(bytes).map_err(|e| DecodeError::Protobuf(e.to_string()))
    }
}

/// What one device of an account sent, for the account's other devices.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SentTranscript {
    /// The user it went to.
    #[prost(string, tag = "1")]
    pub destination: String,
    /// The encoded [`Content`] that went to them.
    #[prost(bytes = "vec", tag = "2")]
    pub content: Vec<u8>,
}

/// One app-state sync key.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AppStateKey {
    /// Key id (6 bytes: device id, epoch).
    #[prost(bytes = "vec", tag = "1")]
    pub id: Vec<u8>,
    /// The 32-byte key.
    #[prost(bytes = "vec", tag = "2")]
    pub data: Vec<u8>,
}

/// App-state keys for the account's devices; `current` names the one to write with.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AppStateKeyShare {
    #[prost(message, repeated, tag = "1")]
    pub keys: Vec<AppStateKey>,
    #[prost(bytes = "vec", tag = "2")]
    pub current: Vec<u8>,
    /// Keys with an epoch up to this one are expired (a device was removed).
    #[prost(uint32, tag = "3")]
    pub expired_epoch: u32,
}

/// A history-sync chunk: an encrypted blob (media-style, `MediaKind::History`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct HistoryNotice {
    #[prost(bytes = "vec", tag = "1")]
    pub blob_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub media_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub file_sha256: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    pub file_enc_sha256: Vec<u8>,
    #[prost(uint64, tag = "5")]
    pub file_length: u64,
    /// 0, 1, 2, ... in the order they were made.
    #[prost(uint32, tag = "6")]
    pub chunk_order: u32,
    /// How many chunks in all.
    #[prost(uint32, tag = "7")]
    pub chunks: u32,
}

/// A media message: where the encrypted attachment is and how to check and decrypt it
/// (`crate::media`), what it is, and an optional caption and thumbnail.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MediaContent {
    /// `MediaKind::code` (selects the key expansion).
    #[prost(uint32, tag = "1")]
    pub kind: u32,
    #[prost(bytes = "vec", tag = "2")]
    pub blob_id: Vec<u8>,
    /// 32 bytes.
    #[prost(bytes = "vec", tag = "3")]
    pub media_key: Vec<u8>,
    /// SHA-256 of the plaintext (32 bytes).
    #[prost(bytes = "vec", tag = "4")]
    pub file_sha256: Vec<u8>,
    /// SHA-256 of the uploaded blob (32 bytes).
    #[prost(bytes = "vec", tag = "5")]
    pub file_enc_sha256: Vec<u8>,
    #[prost(uint64, tag = "6")]
    pub file_length: u64,
    #[prost(string, tag = "7")]
    pub mime_type: String,
    #[prost(string, tag = "8")]
    pub file_name: String,
    #[prost(string, tag = "9")]
    pub caption: String,
    /// A small preview image (JPEG or PNG), shown before the download.
    #[prost(bytes = "vec", tag = "10")]
    pub thumbnail: Vec<u8>,
    #[prost(uint32, tag = "11")]
    pub width: u32,
    #[prost(uint32, tag = "12")]
    pub height: u32,
    #[prost(uint64, tag = "13")]
    pub sent_at: u64,
}

/// Online or not.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Presence {
    #[prost(bool, tag = "1")]
    pub online: bool,
}

/// A text message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Text {
    #[prost(string, tag = "1")]
    pub body: String,
    /// The sender's timestamp: the message's name for receipts.
    #[prost(uint64, tag = "2")]
    pub sent_at: u64,
}

/// Receipt kinds.
pub const RECEIPT_READ: u32 = 1;

/// "I read your messages sent at these timestamps."
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReceiptContent {
    #[prost(uint32, tag = "1")]
    pub kind: u32,
    #[prost(uint64, repeated, tag = "2")]
    pub sent_at: Vec<u64>,
}

/// Typing started or stopped.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Typing {
    #[prost(bool, tag = "1")]
    pub started: bool,
}

impl Content {
    /// A text message.
    pub fn text(body: &str, sent_at: u64) -> Self {
        Self::of(Body::Text(Text {
            body: body.to_string(),
            sent_at,
        }))
    }

    /// Content with this body.
    pub fn of(body: Body) -> Self {
        Content {
            body: Some(body),
            device_list_version: 0,
        }
    }

    /// Read receipts for `sent_at`.
    pub fn read(sent_at: Vec<u64>) -> Self {
        Self::of(Body::Receipt(ReceiptContent {
            kind: RECEIPT_READ,
            sent_at,
        }))
    }

    /// A typing indicator.
    pub fn typing(started: bool) -> Self {
        Self::of(Body::Typing(Typing { started }))
    }

    /// A presence update.
    pub fn presence(online: bool) -> Self {
        Self::of(Body::Presence(Presence { online }))
    }

    /// A media message.
    pub fn media(m: MediaContent) -> Self {
        Self::of(Body::Media(m))
    }

    /// Serialize.
    pub fn encode(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    /// Parse (a typed error, never a panic).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        <Self as prost::Message>::decode(bytes).map_err(|e| DecodeError::Protobuf(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let c = Content::text("hé", 42);
        assert_eq!(Content::decode(&c.encode()).unwrap(), c);
        assert!(Content::decode(&[0x0a, 0xff]).is_err());
    }
}
