//! Records and enums that cross the boundary, converted from `pawl-core`'s types.

use pawl_core::client::Event;
use pawl_core::sqlite::messages::{MessageDirection, MessageStatus as CoreStatus, StoredMessage};
use pawl_core::ProtocolAddress;

/// One device of a user: the user's name (phone number) and the device id.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Address {
    /// The user (E.164 phone number).
    pub name: String,
    /// The device id (1 = primary).
    pub device_id: u32,
}

impl From<&ProtocolAddress> for Address {
    fn from(a: &ProtocolAddress) -> Self {
        Address {
            name: a.name.clone(),
            device_id: a.device_id,
        }
    }
}

/// Delivery state of a message; only moves forward (Pending → Sent → Delivered → Read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum MessageStatus {
    /// Stored, not yet accepted by the relay.
    Pending,
    /// Accepted by the relay.
    Sent,
    /// Delivered to a device of the recipient.
    Delivered,
    /// Read by the recipient (incoming messages: read by us).
    Read,
    /// Could not be sent.
    Failed,
}

impl From<CoreStatus> for MessageStatus {
    fn from(s: CoreStatus) -> Self {
        match s {
            CoreStatus::Pending => MessageStatus::Pending,
            CoreStatus::Sent => MessageStatus::Sent,
            CoreStatus::Delivered => MessageStatus::Delivered,
            CoreStatus::Read => MessageStatus::Read,
            CoreStatus::Failed => MessageStatus::Failed,
        }
    }
}

/// A stored message (sent or received).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ChatMessage {
    /// Id in the store (increases with insertion).
    pub id: i64,
    /// The chat it belongs to.
    pub chat_id: i64,
    /// The sender's user name (ours for outgoing messages).
    pub sender: String,
    /// The sender's device.
    pub sender_device: u32,
    /// Sent by this device (true) or received.
    pub outgoing: bool,
    /// The body as text; `None` if it is not UTF-8 (see `body`).
    pub text: Option<String>,
    /// The body, byte for byte.
    pub body: Vec<u8>,
    /// The sender's timestamp, ms since the Unix epoch.
    pub sent_at: i64,
    /// When this device received it (incoming only), ms since the Unix epoch.
    pub received_at: Option<i64>,
    /// Delivery state.
    pub status: MessageStatus,
}

impl From<StoredMessage> for ChatMessage {
    fn from(m: StoredMessage) -> Self {
        ChatMessage {
            text: m.text().map(str::to_owned),
            id: m.id,
            chat_id: m.chat_id,
            sender: m.sender,
            sender_device: m.sender_device,
            outgoing: m.direction == MessageDirection::Outgoing,
            body: m.body,
            sent_at: m.sent_at,
            received_at: m.received_at,
            status: m.status.into(),
        }
    }
}

/// The safety number with a peer and its QR code.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SafetyNumber {
    /// The 60 digits, identical on both sides (show them in 12 groups of 5).
    pub digits: String,
    /// The payload of the QR code the peer scans (pass what you scan from the peer to
    /// `compare_scanned`).
    pub scannable: Vec<u8>,
    /// The QR code as a PNG image (8-bit greyscale, with quiet zone).
    pub qr_png: Vec<u8>,
    /// The QR code as an SVG document.
    pub qr_svg: String,
}

/// What happened, for the app (mirrors `pawl_core::client::Event`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ClientEvent {
    /// Connected to the relay and authenticated.
    Connected,
    /// The connection dropped; the client reconnects by itself.
    Disconnected {
        /// Why.
        reason: String,
    },
    /// A new message, already committed to the store.
    Message {
        /// The message.
        message: ChatMessage,
    },
    /// The relay accepted our message.
    Sent {
        /// Message id.
        message_id: i64,
    },
    /// A device of the recipient received our message.
    Delivered {
        /// Message id.
        message_id: i64,
        /// The device.
        device: Address,
    },
    /// The recipient read our message.
    Read {
        /// Message id.
        message_id: i64,
        /// The reader's device.
        by: Address,
    },
    /// A contact started or stopped typing.
    Typing {
        /// Their device.
        peer: Address,
        /// Started (true) or stopped.
        started: bool,
    },
    /// A contact came online or went offline.
    Presence {
        /// Their device.
        peer: Address,
        /// Online or not.
        online: bool,
    },
    /// A message could not be sent.
    Failed {
        /// Message id, if it was a stored message.
        message_id: Option<i64>,
        /// Why.
        reason: String,
    },
    /// A received message could not be decrypted and was dropped.
    DecryptFailed {
        /// The sender device.
        peer: Address,
        /// Why.
        error: String,
    },
    /// One-time prekeys were uploaded to the relay.
    PreKeysUploaded {
        /// How many.
        count: u32,
    },
}

impl ClientEvent {
    /// The FFI form of a core event; `None` for kinds this layer does not know yet
    /// (`Event` is non-exhaustive).
    pub(crate) fn from_core(e: Event) -> Option<Self> {
        Some(match e {
            Event::Connected => ClientEvent::Connected,
            Event::Disconnected { reason } => ClientEvent::Disconnected { reason },
            Event::Message(m) => ClientEvent::Message { message: m.into() },
            Event::Sent { message_id } => ClientEvent::Sent { message_id },
            Event::Delivered { message_id, device } => ClientEvent::Delivered {
                message_id,
                device: (&device).into(),
            },
            Event::Read { message_id, by } => ClientEvent::Read {
                message_id,
                by: (&by).into(),
            },
            Event::Typing { from, started } => ClientEvent::Typing {
                peer: (&from).into(),
                started,
            },
            Event::Presence { from, online } => ClientEvent::Presence {
                peer: (&from).into(),
                online,
            },
            Event::Failed { message_id, reason } => ClientEvent::Failed { message_id, reason },
            Event::DecryptFailed { from, error } => ClientEvent::DecryptFailed {
                peer: (&from).into(),
                error,
            },
            Event::PreKeysUploaded { count } => ClientEvent::PreKeysUploaded { count },
            _ => return None,
        })
    }
}
