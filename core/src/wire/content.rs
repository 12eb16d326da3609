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
    #[prost(oneof = "Body", tags = "1, 2, 3, 4, 5")]
    pub body: Option<Body>,
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
        Content {
            body: Some(Body::Text(Text {
                body: body.to_string(),
                sent_at,
            })),
        }
    }

    /// Read receipts for `sent_at`.
    pub fn read(sent_at: Vec<u64>) -> Self {
        Content {
            body: Some(Body::Receipt(ReceiptContent {
                kind: RECEIPT_READ,
                sent_at,
            })),
        }
    }

    /// A typing indicator.
    pub fn typing(started: bool) -> Self {
        Content {
            body: Some(Body::Typing(Typing { started })),
        }
    }

    /// A presence update.
    pub fn presence(online: bool) -> Self {
        Content {
            body: Some(Body::Presence(Presence { online })),
        }
    }

    /// Serialize.
    pub fn media(m: MediaContent) -> Self {
        Content {
            body: Some(Body::Media(m)),
        }
    }

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
