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
    fn code(self) -> i64 {
        match self {
            MessageStatus::Pending => 0,
            MessageStatus::Sent => 1,
            MessageStatus::Delivered => 2,
            MessageStatus::Read => 3,
            MessageStatus::Failed => 4,
        }
    }
    fn from_code(c: i64) -> Result<Self, StoreError> {
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
    /// The plaintext, byte for byte.
    pub body: Vec<u8>,
    /// Sender's timestamp (ms since the epoch, as the app supplies it).
    pub sent_at: i64,
    /// When we received it (incoming only).
    pub received_at: Option<i64>,
    /// Delivery state.
    pub status: MessageStatus,
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
    /// The stored message it carries.
    pub message_id: i64,
    /// Recipient device.
    pub recipient: ProtocolAddress,
    /// 2 or 3.
    pub message_type: u8,
    /// The serialized Signal message.
    pub payload: Vec<u8>,
}

const MSG_COLS: &str =
    "id, chat_id, sender, sender_device, direction, body, sent_at, received_at, status";

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

impl SqliteStore {
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

    /// Record a device of a user.
    pub fn add_device(
        &mut self,
        name: &str,
        device_id: u32,
        registration_id: u32,
    ) -> Result<(), StoreError> {
        self.conn
            .execute("INSERT OR REPLACE INTO devices (name, device_id, registration_id) VALUES (?1, ?2, ?3)", params![name, device_id, registration_id])
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
                "INSERT INTO messages (chat_id, sender, sender_device, direction, envelope_id, body, sent_at, received_at, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .and_then(|mut s| {
                s.execute(params![chat_id, sender.name, sender.device_id, dir, envelope_id, body_value(body), sent_at, received_at, status.code()])
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
            .prepare_cached("SELECT id, message_id, recipient, device_id, message_type, payload FROM outbox ORDER BY id")
            .map_err(sql_err)?;
        let rows = s
            .query_map([], |r| {
                Ok(OutboxEntry {
                    id: r.get(0)?,
                    message_id: r.get(1)?,
                    recipient: ProtocolAddress::new(r.get::<_, String>(2)?, r.get(3)?),
                    message_type: r.get(4)?,
                    payload: r.get(5)?,
                })
            })
            .map_err(sql_err)?;
        rows.collect::<Result<_, _>>().map_err(sql_err)
    }

    /// The relay accepted an outbox entry: remove it and mark its message Sent.
    pub fn ack_outbox(&mut self, outbox_id: i64) -> Result<(), StoreError> {
        self.transaction(|s| {
            let mid: Option<i64> = s
                .conn
                .query_row(
                    "DELETE FROM outbox WHERE id = ?1 RETURNING message_id",
                    [outbox_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql_err)?;
            if let Some(mid) = mid {
                s.set_status(mid, MessageStatus::Sent)?;
            }
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
        self.transaction(|s| {
            let msg = crate::message_encrypt(s, to, body)?;
            let me = ProtocolAddress::new("", 0);
            let chat = s.chat_id(&to.name)?;
            let stored = s.insert_message(chat, &me, MessageDirection::Outgoing, None, body, sent_at, None, MessageStatus::Pending)?;
            s.index_from(Some(stored.id))?;
            s.conn
                .prepare_cached(
                    "INSERT INTO outbox (message_id, recipient, device_id, message_type, payload, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .and_then(|mut st| st.execute(params![stored.id, to.name, to.device_id, msg.message_type(), msg.serialized(), sent_at]))
                .map_err(sql_err)?;
            let entry = OutboxEntry {
                id: s.conn.last_insert_rowid(),
                message_id: stored.id,
                recipient: to.clone(),
                message_type: msg.message_type(),
                payload: msg.serialized().to_vec(),
            };
            Ok((stored, entry))
        })
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
        self.transaction(|s| {
            let chat = s.chat_id(&from.name)?;
            let mut outcomes = Vec::with_capacity(envelopes.len());
            // The session record is decoded once and kept for the whole batch.
            let mut record: Option<SessionRecord> = None;
            let mut dirty = false;
            let mut first_new: Option<i64> = None;
            let mut all_trusted: Option<bool> = None;
            for env in envelopes {
                if let Some(id) = s.stored_envelope(from, env.id)? {
                    outcomes.push(Ok(Received::Duplicate { message_id: id }));
                    continue;
                }
                let pt = match env.message_type {
                    2 => (|| {
                        let m = SignalMessage::parse(env.ciphertext)?;
                        if record.is_none() {
                            record = s.load_session(from)?;
                            all_trusted = None;
                        }
                        let r = record
                            .as_mut()
                            .ok_or_else(|| SessionError::NoSession(from.to_string()))?;
                        // If every state's identity is trusted, the check after decrypt
                        // cannot fail and no copy is needed (the fast path). Otherwise
                        // keep a snapshot to restore if the state that decrypts belongs
                        // to an identity that is no longer trusted.
                        if all_trusted.is_none() {
                            let mut ok = true;
                            for id in r.remote_identities() {
                                ok &= s.is_trusted_identity(from, id, Direction::Receiving)?;
                            }
                            all_trusted = Some(ok);
                        }
                        let snapshot = if all_trusted == Some(true) {
                            None
                        } else {
                            Some(r.clone())
                        };
                        let pt = r.decrypt(&m, rng)?;
                        let their = *r
                            .remote_identity()
                            .ok_or_else(|| SessionError::NoSession(from.to_string()))?;
                        if !s.is_trusted_identity(from, &their, Direction::Receiving)? {
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
                        dirty = true;
                        Ok(pt)
                    })(),
                    3 => (|| {
                        let m = PreKeySignalMessage::parse(env.ciphertext)?;
                        if let (Some(r), true) = (&record, dirty) {
                            s.store_session(from, r)?;
                            dirty = false;
                        }
                        let pt =
                            crate::message_decrypt(s, from, &CiphertextMessage::PreKey(m), rng)?;
                        record = None;
                        Ok(pt)
                    })(),
                    t => Err(SessionError::InvalidArgument(format!(
                        "unknown message type {t}"
                    ))),
                };
                match pt {
                    Ok(pt) => {
                        let m = s.insert_message(
                            chat,
                            from,
                            MessageDirection::Incoming,
                            Some(env.id),
                            &pt,
                            env.sent_at,
                            Some(received_at),
                            MessageStatus::Delivered,
                        )?;
                        first_new = first_new.or(Some(m.id));
                        outcomes.push(Ok(Received::New(m)));
                    }
                    Err(SessionError::Store(e)) => return Err(e),
                    Err(e) => outcomes.push(Err(e)),
                }
            }
            if let (Some(r), true) = (&record, dirty) {
                s.store_session(from, r)?;
                if let Some(id) = r.remote_identity() {
                    s.save_identity(from, id)?;
                }
            }
            s.index_from(first_new)?;
            Ok(outcomes)
        })
    }
}
