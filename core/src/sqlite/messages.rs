//! Contacts, devices, chats, messages, receipts and the outbox, and the two atomic
//! paths that tie them to the ratchet: [`SqliteStore::receive`] /
//! [`SqliteStore::receive_batch`] (decrypt + store message in one transaction) and
//! [`SqliteStore::send`] (encrypt + store message + outbox entry in one transaction).

use rand_core::{CryptoRng, RngCore};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{params, OptionalExtension, Row};

use super::{sql_err, SqliteStore};
use crate::address::ProtocolAddress;
use crate::error::{SessionError, StoreError};
use crate::session::SessionRecord;
use crate::store::{Direction, IdentityKeyStore, SessionStore};
use crate::wire::{CiphertextMessage, PreKeySignalMessage, SignalMessage};

/// Whether we sent or received a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageDirection {
    /// Received from a peer.
    Incoming,
    /// Sent by this device.
    Outgoing,
}

/// Delivery state of a message. Only moves forward (Pending → Sent → Delivered →
/// Read); Failed is reachable from Pending and Sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MessageStatus {
    /// Stored, not yet acknowledged by the relay.
    Pending,
    /// Accepted by the relay.
    Sent,
    /// Delivered to the recipient's device.
    Delivered,
    /// Read by the recipient (or, incoming: read by us).
    Read,
    /// Could not be sent.
    Failed,
}

impl MessageStatus {
    pub(crate) fn code(self) -> i64 {
        match self {
            MessageStatus::Pending => 0,
            MessageStatus::Sent => 1,
            MessageStatus::Delivered => 2,
            MessageStatus::Read => 3,
            MessageStatus::Failed => 4,
        }
    }
    pub(crate) fn from_code(c: i64) -> Result<Self, StoreError> {
        Ok(match c {
            0 => MessageStatus::Pending,
            1 => MessageStatus::Sent,
            2 => MessageStatus::Delivered,
            3 => MessageStatus::Read,
            4 => MessageStatus::Failed,
            _ => return Err(StoreError::Backend(format!("unknown message status {c}"))),
        })
    }
}

/// A stored message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    /// Row id: increases with insertion, the paging cursor.
    pub id: i64,
    /// The chat.
    pub chat_id: i64,
    /// Sender user name.
    pub sender: String,
    /// Sender device id.
    pub sender_device: u32,
    /// Incoming or outgoing.
    pub direction: MessageDirection,
    /// The plaintext, byte for byte (a media message's caption).
    pub body: Vec<u8>,
    /// Sender's timestamp (ms since the epoch, as the app supplies it).
    pub sent_at: i64,
    /// When we received it (incoming only).
    pub received_at: Option<i64>,
    /// Delivery state.
    pub status: MessageStatus,
    /// For a media message: the attachment descriptor as the client encoded it
    /// (`pawl_core::client::MediaMessage`); `None` for text.
    pub media: Option<Vec<u8>>,
}

impl StoredMessage {
    /// The body as text, if it is UTF-8.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.body).ok()
    }
}

/// A received envelope: an id unique per sender device (assigned by the sender or the
/// relay; used to recognise redeliveries), the Signal message type and its bytes.
#[derive(Clone, Copy, Debug)]
pub struct Envelope<'a> {
    /// Unique per sender device.
    pub id: &'a [u8],
    /// 2 = SignalMessage, 3 = PreKeySignalMessage.
    pub message_type: u8,
    /// The serialized message.
    pub ciphertext: &'a [u8],
    /// Sender's timestamp.
    pub sent_at: i64,
}

/// The result of receiving one envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// Decrypted and stored (committed before this is returned).
    New(StoredMessage),
    /// This envelope was stored before; nothing was decrypted.
    Duplicate {
        /// The stored message's id.
        message_id: i64,
    },
    /// Read receipts from the sender, applied (committed) to these outgoing messages.
    Read {
        /// Ids of our messages the sender has read.
        message_ids: Vec<i64>,
    },
    /// Decrypted (the session state is committed) but not stored: the plaintext is
    /// only for the caller (typing indicators and other ephemeral content).
    Ephemeral(Vec<u8>),
    /// A group update was accepted and stored; the group as it is now.
    Group(super::GroupInfo),
}

/// What a decrypted plaintext means to the store: the decoder given to
/// [`SqliteStore::receive_batch_with`] says, inside the receiving transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// Store a message with this body and sender's timestamp.
    Message {
        /// What is stored (and indexed for search).
        body: Vec<u8>,
        /// The sender's timestamp.
        sent_at: i64,
        /// An attachment descriptor, for a media message (see [`StoredMessage::media`]).
        media: Option<Vec<u8>>,
    },
    /// The sender read our messages sent at these timestamps.
    Read {
        /// Our timestamps.
        sent_at: Vec<i64>,
    },
    /// Not stored; returned as [`Received::Ephemeral`].
    Ephemeral(Vec<u8>),
    /// What another device of this account sent to `peer`: stored as an outgoing
    /// message of the chat with `peer` (status sent).
    Sent {
        /// The chat.
        peer: String,
        /// What is stored.
        body: Vec<u8>,
        /// The sending device's timestamp.
        sent_at: i64,
        /// An attachment descriptor, for a media message.
        media: Option<Vec<u8>>,
    },
    /// A group update: applied in the receiving transaction if the sender may make it
    /// ([`SqliteStore::accept_group_update`]), returned as [`Received::Group`].
    Group(crate::wire::content::GroupUpdate),
    /// Control content (keys, sync notices): these settings are written in the
    /// receiving transaction, and the plaintext is returned as
    /// [`Received::Ephemeral`] for the caller to act on.
    Control {
        /// Settings to write (key, value).
        settings: Vec<(String, Vec<u8>)>,
        /// The plaintext.
        plaintext: Vec<u8>,
    },
}

/// A message to import (see [`SqliteStore::import_messages`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedMessage {
    /// Sender device.
    pub sender: ProtocolAddress,
    /// Incoming or outgoing.
    pub direction: MessageDirection,
    /// Envelope id, if known (deduplicated).
    pub envelope_id: Option<Vec<u8>>,
    /// The plaintext.
    pub body: Vec<u8>,
    /// Sender's timestamp.
    pub sent_at: i64,
    /// Receive time.
    pub received_at: Option<i64>,
    /// Delivery state.
    pub status: MessageStatus,
}

/// A contact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    /// The user name (address name).
    pub name: String,
    /// Display name.
    pub display_name: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
}

/// A chat with its unread count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatSummary {
    /// Chat id.
    pub id: i64,
    /// The peer's user name.
    pub peer: String,
    /// Title.
    pub title: Option<String>,
    /// Incoming messages not yet read.
    pub unread: u64,
}

/// A message waiting for the relay's acknowledgement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Outbox id (acknowledge with it).
    pub id: i64,
    /// The send it belongs to (entries of one send go to the relay together).
    pub send_id: i64,
    /// The stored message it carries (none for receipts and other control content).
    pub message_id: Option<i64>,
    /// Recipient device.
    pub recipient: ProtocolAddress,
    /// 2 or 3.
    pub message_type: u8,
    /// The serialized Signal message.
    pub payload: Vec<u8>,
}

/// One plaintext encrypted for every device of one recipient, waiting for the relay:
/// one relay request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingSend {
    /// Send id.
    pub id: i64,
    /// The stored message, if the content is one.
    pub message_id: Option<i64>,
    /// The recipient user.
    pub recipient: String,
    /// One entry per device, ascending device id.
    pub entries: Vec<OutboxEntry>,
}

const MSG_COLS: &str =
    "id, chat_id, sender, sender_device, direction, body, sent_at, received_at, status, media";

const OUTBOX_SELECT: &str =
    "SELECT id, send_id, message_id, recipient, device_id, message_type, payload FROM outbox";

fn row_outbox(r: &Row<'_>) -> rusqlite::Result<OutboxEntry> {
    Ok(OutboxEntry {
        id: r.get(0)?,
        send_id: r.get(1)?,
        message_id: r.get(2)?,
        recipient: ProtocolAddress::new(r.get::<_, String>(3)?, r.get(4)?),
        message_type: r.get(5)?,
        payload: r.get(6)?,
    })
}

fn body_value(b: &[u8]) -> Value {
    match std::str::from_utf8(b) {
        Ok(s) => Value::Text(s.to_string()),
        Err(_) => Value::Blob(b.to_vec()),
    }
}

fn row_message(r: &Row<'_>) -> rusqlite::Result<(StoredMessage, i64, i64)> {
    let body = match r.get_ref(5)? {
        ValueRef::Text(t) | ValueRef::Blob(t) => t.to_vec(),
        _ => Vec::new(),
    };
    Ok((
        StoredMessage {
            id: r.get(0)?,
            chat_id: r.get(1)?,
            sender: r.get(2)?,
            sender_device: r.get(3)?,
            direction: if r.get::<_, i64>(4)? == 0 {
                MessageDirection::Incoming
            } else {
                MessageDirection::Outgoing
            },
            body,
            sent_at: r.get(6)?,
            received_at: r.get(7)?,
            status: MessageStatus::Pending,
            media: r.get(9)?,
        },
        r.get(8)?,
        0,
    ))
}

fn finish(v: (StoredMessage, i64, i64)) -> Result<StoredMessage, StoreError> {
    let (mut m, status, _) = v;
    m.status = MessageStatus::from_code(status)?;
    Ok(m)
}

/// One sender device's session across a receive batch: decoded once, written once.
#[derive(Default)]
pub(super) struct BatchSession {
    record: Option<SessionRecord>,
    dirty: bool,
    all_trusted: Option<bool>,
}

impl BatchSession {
    /// Write the batch's session state (if it changed).
    fn commit(&mut self, s: &mut SqliteStore, from: &ProtocolAddress) -> Result<(), StoreError> {
        if let (Some(r), true) = (&self.record, self.dirty) {
            s.store_session(from, r)?;
            if let Some(id) = r.remote_identity() {
                s.save_identity(from, id)?;
            }
            self.dirty = false;
        }
        Ok(())
    }
}

impl SqliteStore {
    /// Decrypt one pairwise message (type 2 or 3) from `from` within a batch.
    pub(super) fn decrypt_pairwise<R: RngCore + CryptoRng>(
        &mut self,
        from: &ProtocolAddress,
        b: &mut BatchSession,
        message_type: u8,
        bytes: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>, SessionError> {
        match message_type {
            2 => {
                let m = SignalMessage::parse(bytes)?;
                if b.record.is_none() {
                    b.record = self.load_session(from)?;
                    b.all_trusted = None;
                }
                let r = b
                    .record
                    .as_mut()
                    .ok_or_else(|| SessionError::NoSession(from.to_string()))?;
                // If every state's identity is trusted, the check after decrypt
                // cannot fail and no copy is needed (the fast path). Otherwise keep a
                // snapshot to restore if the state that decrypts belongs to an
                // identity that is no longer trusted.
                if b.all_trusted.is_none() {
                    let mut ok = true;
                    for id in r.remote_identities() {
                        ok &= self.is_trusted_identity(from, id, Direction::Receiving)?;
                    }
                    b.all_trusted = Some(ok);
                }
                let snapshot = if b.all_trusted == Some(true) {
                    None
                } else {
                    Some(r.clone())
                };
                let pt = r.decrypt(&m, rng)?;
                let their = *r
                    .remote_identity()
                    .ok_or_else(|| SessionError::NoSession(from.to_string()))?;
                if !self.is_trusted_identity(from, &their, Direction::Receiving)? {
                    return match snapshot {
                        Some(snap) => {
                            *r = snap;
                            Err(SessionError::UntrustedIdentity(from.to_string()))
                        }
                        // Trust changed inside this transaction: abort it whole.
                        None => Err(StoreError::Backend(
                            "identity trust changed during a batch".into(),
                        )
                        .into()),
                    };
                }
                b.dirty = true;
                Ok(pt)
            }
            3 => {
                let m = PreKeySignalMessage::parse(bytes)?;
                b.commit(self, from)?;
                let pt = crate::message_decrypt(self, from, &CiphertextMessage::PreKey(m), rng)?;
                b.record = None;
                Ok(pt)
            }
            t => Err(SessionError::InvalidArgument(format!(
                "unknown message type {t}"
            ))),
        }
    }

    // ---------------------------------------------------------------- contacts, devices

    /// Insert or update a contact.
    pub fn upsert_contact(&mut self, c: &Contact) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO contacts (name, display_name, phone) VALUES (?1, ?2, ?3)",
                params![c.name, c.display_name, c.phone],
            )
            .map(|_| ())
            .map_err(sql_err)
    }

    /// A contact by name.
    pub fn contact(&self, name: &str) -> Result<Option<Contact>, StoreError> {
        self.conn
            .query_row(
                "SELECT name, display_name, phone FROM contacts WHERE name = ?1",
                [name],
                |r| {
                    Ok(Contact {
                        name: r.get(0)?,
                        display_name: r.get(1)?,
                        phone: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(sql_err)
    }

    /// Record a device of a user. A `registration_id` of 0 means "not known": it
    /// records the device without replacing a registration id already stored.
    pub fn add_device(
        &mut self,
        name: &str,
        device_id: u32,
        registration_id: u32,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO devices (name, device_id, registration_id) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name, device_id) DO UPDATE SET registration_id = excluded.registration_id
                 WHERE excluded.registration_id != 0",
                params![name, device_id, registration_id],
            )
            .map(|_| ())
            .map_err(sql_err)
    }

    /// The known device ids of a user, ascending.
    pub fn devices(&self, name: &str) -> Result<Vec<u32>, StoreError> {
        let mut s = self
            .conn
            .prepare_cached("SELECT device_id FROM devices WHERE name = ?1 ORDER BY device_id")
            .map_err(sql_err)?;
        let rows = s.query_map([name], |r| r.get(0)).map_err(sql_err)?;
        rows.collect::<Result<_, _>>().map_err(sql_err)
    }

    // ---------------------------------------------------------------- chats, messages

    /// The chat with `peer`, created if needed.
    pub fn chat_id(&mut self, peer: &str) -> Result<i64, StoreError> {
        if let Some(id) = self
            .conn
            .prepare_cached("SELECT id FROM chats WHERE peer = ?1")
            .and_then(|mut s| s.query_row([peer], |r| r.get(0)).optional())
            .map_err(sql_err)?
        {
            return Ok(id);
        }
        self.conn
            .execute("INSERT INTO chats (peer) VALUES (?1)", [peer])
            .map_err(sql_err)?;
        Ok(self.conn.last_insert_rowid())
    }

    /// All chats with unread counts.
    pub fn chats(&self) -> Result<Vec<ChatSummary>, StoreError> {
        let mut s = self
            .conn
            .prepare_cached("SELECT id, peer, title FROM chats ORDER BY id")
            .map_err(sql_err)?;
        let rows: Vec<(i64, String, Option<String>)> = s
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(sql_err)?
            .collect::<Result<_, _>>()
            .map_err(sql_err)?;
        rows.into_iter()
            .map(|(id, peer, title)| {
                Ok(ChatSummary {
                    id,
                    peer,
                    title,
                    unread: self.unread_count(id)?,
                })
            })
            .collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn insert_message(
        &mut self,
        chat_id: i64,
        sender: &ProtocolAddress,
        direction: MessageDirection,
        envelope_id: Option<&[u8]>,
        body: &[u8],
        media: Option<&[u8]>,
        sent_at: i64,
        received_at: Option<i64>,
        status: MessageStatus,
    ) -> Result<StoredMessage, StoreError> {
        let dir = match direction {
            MessageDirection::Incoming => 0,
            MessageDirection::Outgoing => 1,
        };
        self.conn
            .prepare_cached(
                "INSERT INTO messages (chat_id, sender, sender_device, direction, envelope_id, body, sent_at, received_at, status, media)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .and_then(|mut s| {
                s.execute(params![chat_id, sender.name, sender.device_id, dir, envelope_id, body_value(body), sent_at, received_at, status.code(), media])
            })
            .map_err(sql_err)?;
        Ok(StoredMessage {
            id: self.conn.last_insert_rowid(),
            chat_id,
            sender: sender.name.clone(),
            sender_device: sender.device_id,
            direction,
            body: body.to_vec(),
            sent_at,
            received_at,
            status,
            media: media.map(<[u8]>::to_vec),
        })
    }

    /// Add messages with id >= `first` to the search index (one statement per batch).
    fn index_from(&self, first: Option<i64>) -> Result<(), StoreError> {
        if let Some(first) = first {
            self.conn
                .prepare_cached("INSERT INTO messages_fts(rowid, body) SELECT id, body FROM messages WHERE id >= ?1")
                .and_then(|mut s| s.execute([first]))
                .map_err(sql_err)?;
        }
        Ok(())
    }

    fn next_message_id(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("SELECT coalesce(max(id), 0) + 1 FROM messages", [], |r| {
                r.get(0)
            })
            .map_err(sql_err)
    }

    fn query_messages(
        &self,
        sql: &str,
        p: impl rusqlite::Params,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let mut s = self.conn.prepare_cached(sql).map_err(sql_err)?;
        let rows = s.query_map(p, row_message).map_err(sql_err)?;
        rows.map(|r| r.map_err(sql_err).and_then(finish)).collect()
    }

    /// One message by id.
    pub fn message(&self, id: i64) -> Result<Option<StoredMessage>, StoreError> {
        Ok(self
            .query_messages(
                &format!("SELECT {MSG_COLS} FROM messages WHERE id = ?1"),
                [id],
            )?
            .pop())
    }

    /// The latest `n` messages of a chat, newest first.
    pub fn latest_messages(&self, chat_id: i64, n: u32) -> Result<Vec<StoredMessage>, StoreError> {
        self.query_messages(
            &format!(
                "SELECT {MSG_COLS} FROM messages WHERE chat_id = ?1 ORDER BY id DESC LIMIT ?2"
            ),
            params![chat_id, n],
        )
    }

    /// Up to `n` messages older than `before` (a message id), newest first.
    pub fn messages_before(
        &self,
        chat_id: i64,
        before: i64,
        n: u32,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        self.query_messages(
            &format!("SELECT {MSG_COLS} FROM messages WHERE chat_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3"),
            params![chat_id, before, n],
        )
    }

    /// Incoming messages of a chat not yet read.
    pub fn unread_count(&self, chat_id: i64) -> Result<u64, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT count(*) FROM messages WHERE chat_id = ?1 AND direction = 0 AND status < 3",
            )
            .and_then(|mut s| s.query_row([chat_id], |r| r.get::<_, i64>(0)))
            .map(|n| n as u64)
            .map_err(sql_err)
    }

    /// Mark every incoming message of a chat up to `up_to` (inclusive) as read.
    /// Returns how many changed.
    pub fn mark_read(&mut self, chat_id: i64, up_to: i64) -> Result<usize, StoreError> {
        self.conn
            .execute("UPDATE messages SET status = 3 WHERE chat_id = ?1 AND direction = 0 AND status < 3 AND id <= ?2", params![chat_id, up_to])
            .map_err(sql_err)
    }

    /// Full-text search over message bodies (SQLite FTS5 query syntax), newest first.
    pub fn search(&self, query: &str, limit: u32) -> Result<Vec<StoredMessage>, StoreError> {
        let cols = MSG_COLS
            .split(", ")
            .map(|c| format!("m.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        self.query_messages(
            &format!("SELECT {cols} FROM messages_fts f JOIN messages m ON m.id = f.rowid WHERE messages_fts MATCH ?1 ORDER BY m.id DESC LIMIT ?2"),
            params![query, limit],
        )
    }

    /// Move a message's status forward (never backwards; Failed only from Pending/Sent).
    /// Returns whether it changed.
    pub fn set_status(
        &mut self,
        message_id: i64,
        status: MessageStatus,
    ) -> Result<bool, StoreError> {
        let sql = if status == MessageStatus::Failed {
            "UPDATE messages SET status = ?2 WHERE id = ?1 AND status < 2"
        } else {
            "UPDATE messages SET status = ?2 WHERE id = ?1 AND status < ?2 AND status != 4"
        };
        self.conn
            .execute(sql, params![message_id, status.code()])
            .map(|n| n > 0)
            .map_err(sql_err)
    }

    /// Record a delivery or read receipt from a recipient device; moves the status.
    pub fn add_receipt(
        &mut self,
        message_id: i64,
        device: &ProtocolAddress,
        status: MessageStatus,
        at: i64,
    ) -> Result<(), StoreError> {
        if !matches!(status, MessageStatus::Delivered | MessageStatus::Read) {
            return Err(StoreError::Backend("a receipt is Delivered or Read".into()));
        }
        self.transaction(|s| {
            s.conn
                .execute(
                    "INSERT OR IGNORE INTO receipts (message_id, device, kind, at) VALUES (?1, ?2, ?3, ?4)",
                    params![message_id, device.to_string(), status.code(), at],
                )
                .map_err(sql_err)?;
            s.set_status(message_id, status).map(|_| ())
        })
    }

    /// Receipts of a message: (device, status, time).
    pub fn receipts(
        &self,
        message_id: i64,
    ) -> Result<Vec<(String, MessageStatus, i64)>, StoreError> {
        let mut s = self
            .conn
            .prepare_cached(
                "SELECT device, kind, at FROM receipts WHERE message_id = ?1 ORDER BY at, device",
            )
            .map_err(sql_err)?;
        let rows: Vec<(String, i64, i64)> = s
            .query_map([message_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(sql_err)?
            .collect::<Result<_, _>>()
            .map_err(sql_err)?;
        rows.into_iter()
            .map(|(d, k, at)| Ok((d, MessageStatus::from_code(k)?, at)))
            .collect()
    }

    /// Import already-decrypted messages into the chat with `peer` in one transaction
    /// (history sync, backups). Envelope ids, when given, are deduplicated like
    /// received ones. Returns the number of rows inserted.
    pub fn import_messages(
        &mut self,
        peer: &str,
        messages: &[ImportedMessage],
    ) -> Result<usize, StoreError> {
        self.transaction(|s| {
            let chat = s.chat_id(peer)?;
            let first = s.next_message_id()?;
            let mut n = 0;
            let mut st = s
                .conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO messages (chat_id, sender, sender_device, direction, envelope_id, body, sent_at, received_at, status)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .map_err(sql_err)?;
            for m in messages {
                let dir = i64::from(m.direction == MessageDirection::Outgoing);
                n += st
                    .execute(params![chat, m.sender.name, m.sender.device_id, dir, m.envelope_id, body_value(&m.body), m.sent_at, m.received_at, m.status.code()])
                    .map_err(sql_err)?;
            }
            drop(st);
            s.index_from(Some(first))?;
            Ok(n)
        })
    }

    // ---------------------------------------------------------------- outbox

    /// Messages not yet acknowledged by the relay, oldest first.
    pub fn outbox(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut s = self
            .conn
            .prepare_cached(&format!("{OUTBOX_SELECT} ORDER BY id"))
            .map_err(sql_err)?;
        let rows = s.query_map([], row_outbox).map_err(sql_err)?;
        rows.collect::<Result<_, _>>().map_err(sql_err)
    }

    /// Sends not yet accepted by the relay, oldest first, each with its entries.
    pub fn pending_sends(&self) -> Result<Vec<PendingSend>, StoreError> {
        let ids: Vec<i64> = self
            .conn
            .prepare_cached("SELECT id FROM sends ORDER BY id")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(sql_err)?;
        ids.into_iter()
            .filter_map(|id| self.pending_send(id).transpose())
            .collect()
    }

    /// One pending send.
    pub fn pending_send(&self, send_id: i64) -> Result<Option<PendingSend>, StoreError> {
        let head: Option<(Option<i64>, String)> = self
            .conn
            .prepare_cached("SELECT message_id, recipient FROM sends WHERE id = ?1")
            .and_then(|mut s| {
                s.query_row([send_id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(sql_err)?;
        let Some((message_id, recipient)) = head else {
            return Ok(None);
        };
        let entries = self
            .conn
            .prepare_cached(&format!(
                "{OUTBOX_SELECT} WHERE send_id = ?1 ORDER BY device_id"
            ))
            .and_then(|mut s| s.query_map([send_id], row_outbox)?.collect())
            .map_err(sql_err)?;
        Ok(Some(PendingSend {
            id: send_id,
            message_id,
            recipient,
            entries,
        }))
    }

    /// Encrypt `plaintext` for each of `devices` of `peer` and store the send: the
    /// message (when `body` is given: what is shown and searched; `media`: a media
    /// message's attachment descriptor), one outbox entry per device and the new
    /// ratchet states, in one transaction. Sessions with every device must exist.
    #[allow(clippy::too_many_arguments)]
    pub fn send_to_devices(
        &mut self,
        peer: &str,
        devices: &[u32],
        body: Option<&[u8]>,
        media: Option<&[u8]>,
        plaintext: &[u8],
        sent_at: i64,
    ) -> Result<(Option<StoredMessage>, PendingSend), SessionError> {
        self.transaction(|s| {
            let stored = match body {
                Some(body) => {
                    let chat = s.chat_id(peer)?;
                    Some(s.insert_outgoing(chat, body, media, sent_at)?)
                }
                None => None,
            };
            let send_id = s.new_send(
                stored.as_ref().map(|m| m.id),
                peer,
                plaintext,
                sent_at,
                None,
            )?;
            s.encrypt_into_send(send_id, peer, devices, plaintext, sent_at)?;
            Ok((stored, s.pending_send_of(send_id)?))
        })
    }

    /// Store an outgoing message of this device in `chat` (Pending) and index it.
    pub(super) fn insert_outgoing(
        &mut self,
        chat: i64,
        body: &[u8],
        media: Option<&[u8]>,
        sent_at: i64,
    ) -> Result<StoredMessage, StoreError> {
        let me = ProtocolAddress::new("", 0);
        let m = self.insert_message(
            chat,
            &me,
            MessageDirection::Outgoing,
            None,
            body,
            media,
            sent_at,
            None,
            MessageStatus::Pending,
        )?;
        self.index_from(Some(m.id))?;
        Ok(m)
    }

    /// A new pending send (its entries follow); its id. `plaintext` is what a
    /// correction encrypts for devices found missing (a group send: its template).
    pub(super) fn new_send(
        &mut self,
        message_id: Option<i64>,
        recipient: &str,
        plaintext: &[u8],
        created_at: i64,
        group_id: Option<&[u8]>,
    ) -> Result<i64, StoreError> {
        self.conn
            .prepare_cached("INSERT INTO sends (message_id, recipient, plaintext, created_at, group_id) VALUES (?1, ?2, ?3, ?4, ?5)")
            .and_then(|mut st| st.execute(params![message_id, recipient, plaintext, created_at, group_id]))
            .map_err(sql_err)?;
        Ok(self.conn.last_insert_rowid())
    }

    /// A send just written in this transaction.
    pub(super) fn pending_send_of(&self, send_id: i64) -> Result<PendingSend, StoreError> {
        self.pending_send(send_id)?
            .ok_or_else(|| StoreError::Backend("send vanished".into()))
    }

    /// The stored message a send carries.
    pub(super) fn send_message_id(&self, send_id: i64) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row(
                "SELECT message_id FROM sends WHERE id = ?1",
                [send_id],
                |r| r.get(0),
            )
            .map_err(sql_err)
    }

    /// One outbox entry of a send: the envelope for one device.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn insert_outbox(
        &mut self,
        send_id: i64,
        message_id: Option<i64>,
        recipient: &str,
        device_id: u32,
        message_type: u8,
        payload: &[u8],
        created_at: i64,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO outbox (send_id, message_id, recipient, device_id, message_type, payload, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut st| st.execute(params![send_id, message_id, recipient, device_id, message_type, payload, created_at]))
            .map(|_| ())
            .map_err(sql_err)
    }

    fn encrypt_into_send(
        &mut self,
        send_id: i64,
        peer: &str,
        devices: &[u32],
        plaintext: &[u8],
        created_at: i64,
    ) -> Result<(), SessionError> {
        let message_id = self.send_message_id(send_id)?;
        for &d in devices {
            let to = ProtocolAddress::new(peer, d);
            let msg = crate::message_encrypt(self, &to, plaintext)?;
            self.insert_outbox(
                send_id,
                message_id,
                peer,
                d,
                msg.message_type(),
                msg.serialized(),
                created_at,
            )?;
        }
        Ok(())
    }

    /// The relay's device registry differed from the send's devices: drop the entries
    /// for `extra` devices (and their sessions), encrypt for `missing` ones (sessions
    /// with them must exist by now), all in one transaction.
    pub fn correct_send(
        &mut self,
        send_id: i64,
        missing: &[u32],
        extra: &[u32],
    ) -> Result<PendingSend, SessionError> {
        self.transaction(|s| {
            let (recipient, plaintext, created_at, group): (String, Vec<u8>, i64, Option<Vec<u8>>) = s
                .conn
                .query_row(
                    "SELECT recipient, plaintext, created_at, group_id FROM sends WHERE id = ?1",
                    [send_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()
                .map_err(sql_err)?
                .ok_or_else(|| {
                    SessionError::InvalidArgument(format!("no pending send {send_id}"))
                })?;
            for &d in extra {
                s.conn
                    .execute(
                        "DELETE FROM outbox WHERE send_id = ?1 AND device_id = ?2",
                        params![send_id, d],
                    )
                    .map_err(sql_err)?;
                s.remove_device(&recipient, d)?;
            }
            if !missing.is_empty() {
                if plaintext.is_empty() {
                    return Err(SessionError::InvalidArgument(
                        "this send predates schema 3: its plaintext was not kept".into(),
                    ));
                }
                if group.is_some() {
                    // A group send's plaintext is its envelope template.
                    s.encrypt_group_into_send(send_id, &recipient, missing, &plaintext, created_at)?;
                } else {
                    s.encrypt_into_send(send_id, &recipient, missing, &plaintext, created_at)?;
                }
            }
            Ok(s.pending_send(send_id)?
                .ok_or_else(|| StoreError::Backend("send vanished".into()))?)
        })
    }

    /// The relay accepted a send: `accepted` pairs each device with the relay's message
    /// id. Removes the send, marks its message Sent and remembers the relay ids (their
    /// delivery receipts name them); receipts that came early are applied now. Returns
    /// the message id and the devices already known to have it.
    pub fn complete_send(
        &mut self,
        send_id: i64,
        accepted: &[(u32, u64)],
    ) -> Result<(Option<i64>, Vec<ProtocolAddress>), StoreError> {
        self.transaction(|s| {
            let row: Option<(Option<i64>, String)> = s
                .conn
                .query_row("DELETE FROM sends WHERE id = ?1 RETURNING message_id, recipient", [send_id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
                .map_err(sql_err)?;
            let Some((message_id, recipient)) = row else {
                return Ok((None, Vec::new()));
            };
            let mut delivered = Vec::new();
            if let Some(mid) = message_id {
                s.set_status(mid, MessageStatus::Sent)?;
                for (d, rid) in accepted {
                    s.conn
                        .prepare_cached("INSERT OR REPLACE INTO sent_envelopes (relay_id, message_id, recipient, device_id) VALUES (?1, ?2, ?3, ?4)")
                        .and_then(|mut st| st.execute(params![*rid as i64, mid, recipient, d]))
                        .map_err(sql_err)?;
                    let early: Option<i64> = s
                        .conn
                        .prepare_cached("DELETE FROM early_receipts WHERE relay_id = ?1 RETURNING at")
                        .and_then(|mut st| st.query_row([*rid as i64], |r| r.get(0)).optional())
                        .map_err(sql_err)?;
                    if let Some(at) = early {
                        if let Some(m) = s.delivered(*rid, at)? {
                            debug_assert_eq!(m, mid);
                            delivered.push(ProtocolAddress::new(recipient.clone(), *d));
                        }
                    }
                }
            }
            Ok((message_id, delivered))
        })
    }

    /// [`complete_send`](Self::complete_send) for several sends, in one transaction.
    #[allow(clippy::type_complexity)]
    pub fn complete_sends(
        &mut self,
        sends: &[(i64, Vec<(u32, u64)>)],
    ) -> Result<Vec<(Option<i64>, Vec<ProtocolAddress>)>, StoreError> {
        self.transaction(|s| {
            sends
                .iter()
                .map(|(id, accepted)| s.complete_send(*id, accepted))
                .collect()
        })
    }

    /// Give up on a send (the recipient is gone): its message becomes Failed. For a
    /// group send only this recipient's part ends (the other members' sends stand),
    /// and its devices no longer count as holding the sender key.
    pub fn fail_send(&mut self, send_id: i64) -> Result<(), StoreError> {
        self.transaction(|s| {
            type Row = (Option<i64>, String, Option<Vec<u8>>);
            let row: Option<Row> = s
                .conn
                .query_row(
                    "DELETE FROM sends WHERE id = ?1 RETURNING message_id, recipient, group_id",
                    [send_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(sql_err)?;
            s.conn
                .execute("DELETE FROM outbox WHERE send_id = ?1", [send_id])
                .map_err(sql_err)?;
            match row {
                Some((_, recipient, Some(group))) => s.forget_group_holders(&group, &recipient)?,
                Some((Some(mid), _, None)) => {
                    s.set_status(mid, MessageStatus::Failed)?;
                }
                _ => {}
            }
            Ok(())
        })
    }

    /// The relay's delivery receipt for one of our messages (by relay id): records it
    /// and moves the message to Delivered. Returns the message id, or `None` if the id
    /// is unknown or was already counted (receipts are redelivered until acknowledged).
    pub fn delivered(&mut self, relay_id: u64, at: i64) -> Result<Option<i64>, StoreError> {
        self.transaction(|s| {
            let row: Option<(i64, String, u32)> = s
                .conn
                .query_row(
                    "DELETE FROM sent_envelopes WHERE relay_id = ?1 RETURNING message_id, recipient, device_id",
                    [relay_id as i64],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(sql_err)?;
            let Some((mid, name, device)) = row else {
                // Not known (yet): the send's answer may still be on its way. Kept a
                // week for complete_send; receipts for resent copies end there too.
                s.conn
                    .prepare_cached("INSERT OR REPLACE INTO early_receipts (relay_id, at) VALUES (?1, ?2)")
                    .and_then(|mut st| st.execute(params![relay_id as i64, at]))
                    .map_err(sql_err)?;
                s.conn
                    .prepare_cached("DELETE FROM early_receipts WHERE at < ?1")
                    .and_then(|mut st| st.execute([at - 7 * 24 * 3600 * 1000]))
                    .map_err(sql_err)?;
                return Ok(None);
            };
            s.add_receipt(mid, &ProtocolAddress::new(name, device), MessageStatus::Delivered, at)?;
            Ok(Some(mid))
        })
    }

    /// The relay says one of our messages expired undelivered at a device (by relay
    /// id): the message becomes Failed unless another device already got it. Returns
    /// the message id if the relay id was known.
    pub fn expired(&mut self, relay_id: u64) -> Result<Option<i64>, StoreError> {
        self.transaction(|s| {
            let mid: Option<i64> = s
                .conn
                .query_row(
                    "DELETE FROM sent_envelopes WHERE relay_id = ?1 RETURNING message_id",
                    [relay_id as i64],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql_err)?;
            if let Some(mid) = mid {
                s.set_status(mid, MessageStatus::Failed)?;
            }
            Ok(mid)
        })
    }

    /// Mark every unread incoming message of a chat as read; returns each one's sender
    /// device and sender's timestamp (what a read receipt names).
    pub fn mark_chat_read(
        &mut self,
        chat_id: i64,
    ) -> Result<Vec<(ProtocolAddress, i64)>, StoreError> {
        self.transaction(|s| {
            let mut st = s
                .conn
                .prepare_cached("UPDATE messages SET status = 3 WHERE chat_id = ?1 AND direction = 0 AND status < 3 RETURNING sender, sender_device, sent_at")
                .map_err(sql_err)?;
            let rows = st
                .query_map([chat_id], |r| {
                    Ok((ProtocolAddress::new(r.get::<_, String>(0)?, r.get(1)?), r.get(2)?))
                })
                .and_then(|r| r.collect::<Result<Vec<_>, _>>())
                .map_err(sql_err)?;
            Ok(rows)
        })
    }

    /// Forget a device of a user: its session and its entry in the device list.
    pub fn remove_device(&mut self, name: &str, device_id: u32) -> Result<(), StoreError> {
        for sql in [
            "DELETE FROM devices WHERE name = ?1 AND device_id = ?2",
            "DELETE FROM sessions WHERE name = ?1 AND device_id = ?2",
        ] {
            self.conn
                .execute(sql, params![name, device_id])
                .map_err(sql_err)?;
        }
        Ok(())
    }

    fn apply_read_receipts(
        &mut self,
        chat: i64,
        from: &ProtocolAddress,
        sent_at: &[i64],
        at: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let mut ids = Vec::new();
        for t in sent_at {
            let found: Vec<i64> = self
                .conn
                .prepare_cached(
                    "SELECT id FROM messages WHERE chat_id = ?1 AND direction = 1 AND sent_at = ?2",
                )
                .and_then(|mut st| st.query_map(params![chat, t], |r| r.get(0))?.collect())
                .map_err(sql_err)?;
            for id in found {
                self.conn
                    .prepare_cached("INSERT OR IGNORE INTO receipts (message_id, device, kind, at) VALUES (?1, ?2, 3, ?3)")
                    .and_then(|mut st| st.execute(params![id, from.to_string(), at]))
                    .map_err(sql_err)?;
                self.set_status(id, MessageStatus::Read)?;
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// The relay accepted an outbox entry: remove it and mark its message Sent.
    pub fn ack_outbox(&mut self, outbox_id: i64) -> Result<(), StoreError> {
        self.transaction(|s| {
            let mid: Option<Option<i64>> = s
                .conn
                .query_row(
                    "DELETE FROM outbox WHERE id = ?1 RETURNING message_id",
                    [outbox_id],
                    |r| r.get::<_, Option<i64>>(0),
                )
                .optional()
                .map_err(sql_err)?;
            if let Some(Some(mid)) = mid {
                s.set_status(mid, MessageStatus::Sent)?;
            }
            s.conn
                .execute("DELETE FROM sends WHERE NOT EXISTS (SELECT 1 FROM outbox WHERE outbox.send_id = sends.id)", [])
                .map_err(sql_err)?;
            Ok(())
        })
    }

    // ---------------------------------------------------------------- atomic send / receive

    /// Encrypt `body` for `to`, store the outgoing message (Pending) and its outbox
    /// entry, and advance the ratchet: all in one transaction.
    pub fn send(
        &mut self,
        to: &ProtocolAddress,
        body: &[u8],
        sent_at: i64,
    ) -> Result<(StoredMessage, OutboxEntry), SessionError> {
        let (stored, mut send) =
            self.send_to_devices(&to.name, &[to.device_id], Some(body), None, body, sent_at)?;
        match (stored, send.entries.pop()) {
            (Some(m), Some(e)) => Ok((m, e)),
            _ => Err(StoreError::Backend("send produced no entry".into()).into()),
        }
    }

    fn stored_envelope(
        &self,
        from: &ProtocolAddress,
        id: &[u8],
    ) -> Result<Option<i64>, StoreError> {
        self.conn
            .prepare_cached("SELECT id FROM messages WHERE sender = ?1 AND sender_device = ?2 AND envelope_id = ?3")
            .and_then(|mut s| s.query_row(params![from.name, from.device_id, id], |r| r.get(0)).optional())
            .map_err(sql_err)
    }

    /// Receive one envelope: decrypt, store the message and the new session state in
    /// one transaction, and only then return. A redelivered envelope (same id from the
    /// same device) returns `Duplicate` without decrypting.
    pub fn receive<R: RngCore + CryptoRng>(
        &mut self,
        from: &ProtocolAddress,
        env: &Envelope<'_>,
        received_at: i64,
        rng: &mut R,
    ) -> Result<Received, SessionError> {
        let mut out = self.receive_batch(from, std::slice::from_ref(env), received_at, rng)?;
        out.pop()
            .unwrap_or_else(|| Err(SessionError::InvalidArgument("empty batch".into())))
    }

    /// Receive many envelopes from one sender device in one transaction (the way to
    /// drain a queue fast). Each envelope gets its own outcome: a message that fails to
    /// decrypt is not stored and changes no state; the others are committed together.
    /// The outer error is for the store itself (nothing was committed).
    pub fn receive_batch<R: RngCore + CryptoRng>(
        &mut self,
        from: &ProtocolAddress,
        envelopes: &[Envelope<'_>],
        received_at: i64,
        rng: &mut R,
    ) -> Result<Vec<Result<Received, SessionError>>, StoreError> {
        self.receive_batch_with(from, envelopes, received_at, rng, |env, pt| {
            Ok(Incoming::Message {
                body: pt,
                sent_at: env.sent_at,
                media: None,
            })
        })
    }

    /// [`receive_batch`](Self::receive_batch) with a decoder that says, for each
    /// decrypted plaintext, what to store: a message, read receipts to apply, or
    /// nothing (ephemeral). The decoder runs inside the transaction, so the ratchet
    /// state and its effect commit together. A decoder error fails that envelope only
    /// (its ratchet step is kept: the message cannot be decrypted again).
    pub fn receive_batch_with<R: RngCore + CryptoRng>(
        &mut self,
        from: &ProtocolAddress,
        envelopes: &[Envelope<'_>],
        received_at: i64,
        rng: &mut R,
        mut decode: impl FnMut(&Envelope<'_>, Vec<u8>) -> Result<Incoming, SessionError>,
    ) -> Result<Vec<Result<Received, SessionError>>, StoreError> {
        self.transaction(|s| {
            let chat = s.chat_id(&from.name)?;
            let mut outcomes = Vec::with_capacity(envelopes.len());
            // The session record is decoded once and kept for the whole batch.
            let mut session = BatchSession::default();
            let mut first_new: Option<i64> = None;
            for env in envelopes {
                if let Some(id) = s.stored_envelope(from, env.id)? {
                    outcomes.push(Ok(Received::Duplicate { message_id: id }));
                    continue;
                }
                // A group message is stored in its group's chat.
                let mut group_chat: Option<i64> = None;
                let pt = match env.message_type {
                    crate::wire::content::GROUP_MESSAGE_TYPE => s
                        .decrypt_group(from, env.ciphertext, |s, t, bytes| {
                            s.decrypt_pairwise(from, &mut session, t, bytes, rng)
                        })
                        .map(|(chat, pt)| {
                            group_chat = Some(chat);
                            pt
                        }),
                    t => s.decrypt_pairwise(from, &mut session, t, env.ciphertext, rng),
                };
                match (group_chat, pt.and_then(|pt| decode(env, pt))) {
                    (
                        Some(group_chat),
                        Ok(Incoming::Message {
                            body,
                            sent_at,
                            media,
                        }),
                    ) => {
                        // From another device of this account: our own message.
                        let (direction, status) = if s.is_own_user(&from.name)? {
                            (MessageDirection::Outgoing, MessageStatus::Sent)
                        } else {
                            (MessageDirection::Incoming, MessageStatus::Delivered)
                        };
                        let m = s.insert_message(
                            group_chat,
                            from,
                            direction,
                            Some(env.id),
                            &body,
                            media.as_deref(),
                            sent_at,
                            Some(received_at),
                            status,
                        )?;
                        first_new = first_new.or(Some(m.id));
                        outcomes.push(Ok(Received::New(m)));
                    }
                    (Some(_), Ok(_)) => outcomes.push(Err(SessionError::InvalidMessage(
                        "a group message holds a text or media message".into(),
                    ))),
                    (
                        None,
                        Ok(Incoming::Message {
                            body,
                            sent_at,
                            media,
                        }),
                    ) => {
                        let m = s.insert_message(
                            chat,
                            from,
                            MessageDirection::Incoming,
                            Some(env.id),
                            &body,
                            media.as_deref(),
                            sent_at,
                            Some(received_at),
                            MessageStatus::Delivered,
                        )?;
                        first_new = first_new.or(Some(m.id));
                        outcomes.push(Ok(Received::New(m)));
                    }
                    (None, Ok(Incoming::Read { sent_at })) => {
                        let message_ids =
                            s.apply_read_receipts(chat, from, &sent_at, received_at)?;
                        outcomes.push(Ok(Received::Read { message_ids }));
                    }
                    (None, Ok(Incoming::Ephemeral(pt))) => {
                        outcomes.push(Ok(Received::Ephemeral(pt)))
                    }
                    (
                        None,
                        Ok(Incoming::Sent {
                            peer,
                            body,
                            sent_at,
                            media,
                        }),
                    ) => {
                        let peer_chat = s.chat_id(&peer)?;
                        let m = s.insert_message(
                            peer_chat,
                            from,
                            MessageDirection::Outgoing,
                            Some(env.id),
                            &body,
                            media.as_deref(),
                            sent_at,
                            Some(received_at),
                            MessageStatus::Sent,
                        )?;
                        first_new = first_new.or(Some(m.id));
                        outcomes.push(Ok(Received::New(m)));
                    }
                    (
                        None,
                        Ok(Incoming::Control {
                            settings,
                            plaintext,
                        }),
                    ) => {
                        for (k, v) in &settings {
                            s.set_setting(k, v)?;
                        }
                        outcomes.push(Ok(Received::Ephemeral(plaintext)));
                    }
                    (None, Ok(Incoming::Group(update))) => {
                        let from_own_primary = from.device_id == 1 && s.is_own_user(&from.name)?;
                        let accepted = if from_own_primary {
                            s.accept_group_sync(&update)
                        } else {
                            s.accept_group_update(&from.name, &update)
                        };
                        match accepted {
                            Ok(g) => outcomes.push(Ok(Received::Group(g))),
                            Err(SessionError::Store(e)) => return Err(e),
                            Err(e) => outcomes.push(Err(e)),
                        }
                    }
                    (_, Err(SessionError::Store(e))) => return Err(e),
                    (_, Err(e)) => outcomes.push(Err(e)),
                }
            }
            session.commit(s, from)?;
            s.index_from(first_new)?;
            Ok(outcomes)
        })
    }
}
