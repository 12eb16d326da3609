//! Records and enums that cross the boundary, converted from `pawl-core`'s types.

use pawl_core::client::{Event, MediaMessage as CoreMedia};
use pawl_core::media::MediaKind as CoreKind;
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
    /// For a media message: the attachment and its description (`text` is the
    /// caption); `None` for text messages.
    pub media: Option<MediaMessage>,
}

/// What an attachment is (selects its key expansion).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum MediaKind {
    /// Images, stickers.
    Image,
    /// Video, GIFs.
    Video,
    /// Audio, voice notes.
    Audio,
    /// Any other file.
    Document,
}

impl From<MediaKind> for CoreKind {
    fn from(k: MediaKind) -> Self {
        match k {
            MediaKind::Image => CoreKind::Image,
            MediaKind::Video => CoreKind::Video,
            MediaKind::Audio => CoreKind::Audio,
            MediaKind::Document => CoreKind::Document,
        }
    }
}

impl MediaKind {
    fn from_core(k: CoreKind) -> Option<Self> {
        Some(match k {
            CoreKind::Image => MediaKind::Image,
            CoreKind::Video => MediaKind::Video,
            CoreKind::Audio => MediaKind::Audio,
            CoreKind::Document => MediaKind::Document,
            _ => return None,
        })
    }
}

/// An encrypted file in the relay's blob store and what is needed to fetch, check and
/// decrypt it (from `PawlClient.upload_attachment`; carried by media messages).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Attachment {
    /// What it is.
    pub kind: MediaKind,
    /// The blob's id at the relay.
    pub blob_id: Vec<u8>,
    /// The 32-byte media key.
    pub media_key: Vec<u8>,
    /// SHA-256 of the file.
    pub file_sha256: Vec<u8>,
    /// SHA-256 of the encrypted blob.
    pub file_enc_sha256: Vec<u8>,
    /// The file's length in bytes.
    pub file_length: u64,
}

/// A media message: the attachment and what the app shows before downloading it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct MediaMessage {
    /// The file.
    pub attachment: Attachment,
    /// MIME type, e.g. `image/png`.
    pub mime_type: String,
    /// The file's name.
    pub file_name: String,
    /// A caption (stored as the message text: searchable).
    pub caption: String,
    /// A small preview image (JPEG/PNG, at most 64 KiB), shown before the download.
    pub thumbnail: Vec<u8>,
    /// Pixel width of an image or video (0 if unknown).
    pub width: u32,
    /// Pixel height of an image or video (0 if unknown).
    pub height: u32,
}

impl MediaMessage {
    pub(crate) fn from_core(m: CoreMedia) -> Option<Self> {
        Some(MediaMessage {
            attachment: Attachment::from_core(m.attachment)?,
            mime_type: m.mime_type,
            file_name: m.file_name,
            caption: m.caption,
            thumbnail: m.thumbnail,
            width: m.width,
            height: m.height,
        })
    }
}

impl Attachment {
    /// `None` for kinds this layer does not offer (history, app state, thumbnails).
    pub(crate) fn from_core(a: pawl_core::client::Attachment) -> Option<Self> {
        Some(Attachment {
            kind: MediaKind::from_core(a.kind)?,
            media_key: a.media_key.as_bytes().to_vec(),
            blob_id: a.blob_id,
            file_sha256: a.file_sha256.to_vec(),
            file_enc_sha256: a.file_enc_sha256.to_vec(),
            file_length: a.file_length,
        })
    }

    pub(crate) fn to_core(&self) -> Result<pawl_core::client::Attachment, crate::PawlError> {
        let bad = |what: &str| {
            crate::PawlError::invalid_argument(format!("the attachment's {what} is not 32 bytes"))
        };
        Ok(pawl_core::client::Attachment {
            kind: self.kind.into(),
            blob_id: self.blob_id.clone(),
            media_key: pawl_core::media::MediaKey::from_slice(&self.media_key)
                .ok_or_else(|| bad("media key"))?,
            file_sha256: self
                .file_sha256
                .as_slice()
                .try_into()
                .map_err(|_| bad("file SHA-256"))?,
            file_enc_sha256: self
                .file_enc_sha256
                .as_slice()
                .try_into()
                .map_err(|_| bad("blob SHA-256"))?,
            file_length: self.file_length,
        })
    }
}

impl MediaMessage {
    pub(crate) fn to_core(&self) -> Result<CoreMedia, crate::PawlError> {
        Ok(CoreMedia {
            attachment: self.attachment.to_core()?,
            mime_type: self.mime_type.clone(),
            file_name: self.file_name.clone(),
            caption: self.caption.clone(),
            thumbnail: self.thumbnail.clone(),
            width: self.width,
            height: self.height,
        })
    }
}

impl From<StoredMessage> for ChatMessage {
    fn from(m: StoredMessage) -> Self {
        let media = CoreMedia::of(&m)
            .and_then(Result::ok)
            .and_then(MediaMessage::from_core);
        ChatMessage {
            media,
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
// uniffi enums carry records by value (no Box); events are few and short-lived.
#[allow(clippy::large_enum_variant)]
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
    /// On the primary: a companion was linked.
    DeviceLinked {
        /// Its device id.
        device_id: u32,
    },
    /// On a new companion: a chunk of history from the primary was imported.
    HistorySynced {
        /// Chunks imported so far.
        chunks_done: u32,
        /// Chunks in all.
        chunks: u32,
        /// Messages this chunk added.
        messages: u32,
    },
    /// Synced state (archive, mute, pin, read marker, contact name) changed on another
    /// device of the account.
    AppStateChanged {
        /// The collection.
        collection: String,
    },
    /// A device of `user` failed the checks (not vouched for by its primary, or a
    /// replayed list): nothing is encrypted to it.
    DeviceListRejected {
        /// Whose devices.
        user: String,
        /// Why.
        reason: String,
    },
    /// A group was created, changed, or this account was removed from it (already
    /// stored; read it with `group`).
    GroupUpdated {
        /// The group's id.
        group_id: Vec<u8>,
        /// Its chat.
        chat_id: i64,
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
            Event::DeviceLinked { device_id } => ClientEvent::DeviceLinked { device_id },
            Event::HistorySynced {
                chunks_done,
                chunks,
                messages,
            } => ClientEvent::HistorySynced {
                chunks_done,
                chunks,
                messages,
            },
            Event::AppStateChanged { collection } => ClientEvent::AppStateChanged { collection },
            Event::DeviceListRejected { user, reason } => {
                ClientEvent::DeviceListRejected { user, reason }
            }
            Event::GroupUpdated { group_id, chat_id } => {
                ClientEvent::GroupUpdated { group_id, chat_id }
            }
            _ => return None,
        })
    }
}
