//! Relay storage: the device registry, the prekey directory, per-device mailboxes
//! and queued delivery receipts. Holds public keys and ciphertexts only.
//!
//! [`RelayStore`] is the storage interface; [`SqliteRelayStore`] the embedded default
//! (one relay process), [`PgRelayStore`](crate::pg::PgRelayStore) the shared one
//! (several relay processes on one PostgreSQL database, told about each other's writes
//! through [`RelayStore::subscribe_mailboxes`]). Every method is one transaction, so a
//! one-time prekey is handed out at most once and an acknowledged message is deleted
//! exactly once, whatever runs concurrently. `tests/store_conformance.rs` holds both
//! backends to the same behaviour.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::proto::{Bundle, Deliver, PreKey, Receipt};

/// A storage failure (the request fails with `Internal`).
#[derive(Debug)]
pub struct StoreFailure(pub String);

impl std::fmt::Display for StoreFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "relay storage failed: {}", self.0)
    }
}

impl From<rusqlite::Error> for StoreFailure {
    fn from(e: rusqlite::Error) -> Self {
        StoreFailure(e.to_string())
    }
}

type R<T> = Result<T, StoreFailure>;

/// What a mailbox subscription reports (see [`RelayStore::subscribe_mailboxes`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MailboxEvent {
    /// Something new was committed for this device: a message in its mailbox, or a
    /// delivery receipt for it (read both `pending` and `pending_receipts`).
    Changed {
        /// The device's user.
        user: String,
        /// The device.
        device_id: u32,
    },
    /// The subscription was interrupted and is back (the listening connection dropped
    /// and was reopened): events in between may be lost, so re-read the mailboxes and
    /// receipts of every device you serve.
    Resync,
}

/// The callback of [`RelayStore::subscribe_mailboxes`]; called from a background thread
/// (not inside an async runtime), one event at a time. Keep it short: hand the event to
/// a channel.
pub type MailboxListener = Box<dyn Fn(MailboxEvent) + Send + Sync>;

/// A message to queue (see [`RelayStore::write_batch`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMessage {
    /// Recipient user.
    pub to_user: String,
    /// Recipient device.
    pub to_device: u32,
    /// Sender user.
    pub from_user: String,
    /// Sender device.
    pub from_device: u32,
    /// Signal message type.
    pub message_type: u32,
    /// The ciphertext.
    pub payload: Vec<u8>,
    /// Server time.
    pub now_ms: u64,
}

/// Writes from many connections, committed together (group commit: one transaction,
/// one fsync).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteBatch {
    /// Messages to queue.
    pub enqueue: Vec<NewMessage>,
    /// Messages acknowledged: (device's user, device, message id).
    pub acks: Vec<(String, u32, u64)>,
    /// Receipts acknowledged: (device's user, device, receipt id).
    pub receipt_acks: Vec<(String, u32, u64)>,
}

/// What a [`WriteBatch`] did, in the batch's order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchOutcome {
    /// The new messages' ids.
    pub ids: Vec<u64>,
    /// For each ack: the receipt kept for the sender, if the message existed.
    pub receipts: Vec<Option<(String, u32, Receipt)>>,
}

/// A registered device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRecord {
    /// 33-byte identity key.
    pub identity_key: Vec<u8>,
    /// Registration id.
    pub registration_id: u32,
}

/// What the relay stores.
pub trait RelayStore: Send {
    /// The registered device, if any.
    fn device(&self, user: &str, device_id: u32) -> R<Option<DeviceRecord>>;
    /// Register a device (first authentication).
    fn register_device(&mut self, user: &str, device_id: u32, d: &DeviceRecord) -> R<()>;
    /// Device ids of a user, ascending.
    fn devices(&self, user: &str) -> R<Vec<u32>>;
    /// Replace the signed prekey and add one-time prekeys.
    fn upload_keys(
        &mut self,
        user: &str,
        device_id: u32,
        spk_id: u32,
        spk: &[u8],
        sig: &[u8],
        prekeys: &[PreKey],
    ) -> R<()>;
    /// A bundle, consuming one one-time prekey (the lowest id) if any is left.
    fn take_bundle(&mut self, user: &str, device_id: u32) -> R<Option<Bundle>>;
    /// One-time prekeys left.
    fn prekeys_left(&self, user: &str, device_id: u32) -> R<u32>;
    /// Queue a message; returns its id.
    #[allow(clippy::too_many_arguments)]
    fn enqueue(
        &mut self,
        to_user: &str,
        to_device: u32,
        from_user: &str,
        from_device: u32,
        message_type: u32,
        payload: &[u8],
        now_ms: u64,
    ) -> R<u64>;
    /// Queued messages of a device, oldest first.
    fn pending(&self, user: &str, device_id: u32, limit: u32) -> R<Vec<Deliver>>;
    /// Messages queued for a device.
    fn queue_len(&self, user: &str, device_id: u32) -> R<u64>;
    /// Delete an acknowledged message and keep the receipt for its sender (one
    /// transaction); returns the sender and the kept receipt, if the message existed.
    fn ack(&mut self, user: &str, device_id: u32, id: u64) -> R<Option<(String, u32, Receipt)>>;
    /// The receipts a device has not acknowledged yet, oldest first.
    fn pending_receipts(&self, user: &str, device_id: u32) -> R<Vec<Receipt>>;
    /// Delete an acknowledged receipt (of this device only).
    fn ack_receipt(&mut self, user: &str, device_id: u32, receipt_id: u64) -> R<()>;

    /// Be told about writes made by *any* connection to the same database, other relay
    /// processes included: after each committed [`enqueue`](Self::enqueue) `on_event` gets
    /// [`MailboxEvent::Changed`] for the recipient device, after each [`ack`](Self::ack)
    /// that kept a receipt it gets `Changed` for the sender device (the receipt's
    /// recipient). Events are hints, not data: re-read the store, and expect events for
    /// this process's own writes too and, rarely, duplicates. When the subscription is
    /// interrupted, `on_event` gets [`MailboxEvent::Resync`] once it is back.
    ///
    /// Events are delivered from the moment this returns `Ok` until the store is dropped.
    /// The default does nothing and never calls `on_event`: right for a store that only
    /// this process writes ([`SqliteRelayStore`]), where the relay pushes directly.
    fn subscribe_mailboxes(&self, on_event: MailboxListener) -> R<()> {
        let _ = on_event;
        Ok(())
    }

    /// Apply a batch of writes in one transaction (all or nothing). The default runs
    /// the single-item methods one after another (one transaction each).
    fn write_batch(&mut self, b: &WriteBatch) -> R<BatchOutcome> {
        let mut out = BatchOutcome::default();
        for m in &b.enqueue {
            self.note_contact(&m.from_user, &m.to_user)?;
            out.ids.push(self.enqueue(
                &m.to_user,
                m.to_device,
                &m.from_user,
                m.from_device,
                m.message_type,
                &m.payload,
                m.now_ms,
            )?);
        }
        for (u, d, id) in &b.acks {
            out.receipts.push(self.ack(u, *d, *id)?);
        }
        for (u, d, id) in &b.receipt_acks {
            self.ack_receipt(u, *d, *id)?;
        }
        Ok(out)
    }

    /// Delete messages queued before `cutoff_ms`, keeping for each an `expired`
    /// receipt for its sender (one transaction). Returns the receipts with the
    /// sender they are for.
    fn expire(&mut self, cutoff_ms: u64) -> R<Vec<(String, u32, Receipt)>>;

    /// Record that `from` sent to `to` (queued messages record it in `write_batch`).
    /// Returns whether `to` has ever sent to `from`.
    fn note_contact(&mut self, from: &str, to: &str) -> R<bool>;

    /// Whether `to` has ever sent to `from` (a reply: the conversation is solicited).
    fn replied(&self, from: &str, to: &str) -> R<bool>;

    /// Add a user to the contact-discovery directory under its hash.
    fn directory_add(&mut self, hash: &[u8], user: &str) -> R<()>;

    /// Every directory entry whose hash starts with one of `prefixes` (each
    /// `DISCOVERY_PREFIX_LEN` bytes).
    fn directory_lookup(&self, prefixes: &[Vec<u8>]) -> R<Vec<(Vec<u8>, String)>>;

    /// Start an empty blob.
    fn blob_create(&mut self, id: &[u8], owner: &str, now_ms: u64) -> R<()>;

    /// Append to an unsealed blob of `owner` at `offset` (which must be its size), up
    /// to `max_total` bytes in all, sealing it if `seal`. Returns the size after the
    /// write, or the current size as `Err` when the offset is wrong; `None` if there is
    /// no such unsealed blob of this owner or it would grow over `max_total`.
    fn blob_append(
        &mut self,
        id: &[u8],
        owner: &str,
        offset: u64,
        data: &[u8],
        seal: bool,
        max_total: u64,
    ) -> R<Option<Result<u64, u64>>>;

    /// Read up to `max` bytes of a sealed blob from `offset`: (size, bytes).
    fn blob_read(&self, id: &[u8], offset: u64, max: u32) -> R<Option<(u64, Vec<u8>)>>;

    /// Delete blobs created before `cutoff_ms`; returns how many.
    fn expire_blobs(&mut self, cutoff_ms: u64) -> R<u64>;

    /// Store version `version` of the account record `name` of `user` (opaque bytes:
    /// signed device lists, signed device identities, app-state patches and
    /// snapshots). [`PutRule::Append`] keeps every version and needs exactly the
    /// latest + 1; [`PutRule::Replace`] keeps only the newest and needs a newer one.
    /// `Err(latest)` when the version is refused (0: none stored).
    fn record_put(
        &mut self,
        user: &str,
        name: &str,
        version: u64,
        data: &[u8],
        rule: PutRule,
    ) -> R<Result<(), u64>>;

    /// Versions of record `name` after `after`, ascending, at most `limit`.
    fn record_get(&self, user: &str, name: &str, after: u64, limit: u32) -> R<Vec<(u64, Vec<u8>)>>;

    /// The newest version of record `name`.
    fn record_latest(&self, user: &str, name: &str) -> R<Option<(u64, Vec<u8>)>>;

    /// Unlink a device: its registration, keys, mailbox, receipts and its signed
    /// identity (record [`identity_record`]) go, in one transaction. Whether it existed.
    fn remove_device(&mut self, user: &str, device_id: u32) -> R<bool>;
}

/// How [`RelayStore::record_put`] treats versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutRule {
    /// A log: every version kept, each exactly the latest + 1.
    Append,
    /// A register: only the newest kept, each newer than the last.
    Replace,
}

/// The record name of a device's signed identity.
pub fn identity_record(device_id: u32) -> String {
    format!("identity/{device_id}")
}

/// The record name of the signed device list.
pub const DEVICE_LIST_RECORD: &str = "device-list";

/// The rule both backends apply to a blob append, from the blob's current `size`:
/// `Ok(new size)` to go ahead, or `Err(answer)` to return at once (the wrong offset
/// with the size to resume from, or `None` when the blob would grow too large).
pub(crate) fn blob_append_rule(
    size: u64,
    offset: u64,
    len: usize,
    max_total: u64,
) -> Result<u64, Option<Result<u64, u64>>> {
    if offset != size {
        return Err(Some(Err(size)));
    }
    let new = size.saturating_add(len as u64);
    if new > max_total {
        return Err(None);
    }
    Ok(new)
}

/// The embedded SQLite store.
pub struct SqliteRelayStore {
    conn: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS devices (user TEXT NOT NULL, device_id INTEGER NOT NULL, identity_key BLOB NOT NULL,
    registration_id INTEGER NOT NULL, PRIMARY KEY (user, device_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS signed_prekeys (user TEXT NOT NULL, device_id INTEGER NOT NULL, id INTEGER NOT NULL,
    public_key BLOB NOT NULL, signature BLOB NOT NULL, PRIMARY KEY (user, device_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS prekeys (user TEXT NOT NULL, device_id INTEGER NOT NULL, id INTEGER NOT NULL,
    public_key BLOB NOT NULL, PRIMARY KEY (user, device_id, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS mailbox (id INTEGER PRIMARY KEY AUTOINCREMENT, to_user TEXT NOT NULL, to_device INTEGER NOT NULL,
    from_user TEXT NOT NULL, from_device INTEGER NOT NULL, message_type INTEGER NOT NULL, payload BLOB NOT NULL,
    created_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS mailbox_to ON mailbox(to_user, to_device, id);
CREATE TABLE IF NOT EXISTS receipts (id INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL, device_id INTEGER NOT NULL,
    message_id INTEGER NOT NULL, to_user TEXT NOT NULL, to_device INTEGER NOT NULL, expired INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS mailbox_created ON mailbox(created_ms);
CREATE TABLE IF NOT EXISTS contacts (from_user TEXT NOT NULL, to_user TEXT NOT NULL, PRIMARY KEY (from_user, to_user)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS directory (hash BLOB PRIMARY KEY, prefix BLOB NOT NULL, user TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS directory_prefix ON directory(prefix);
CREATE TABLE IF NOT EXISTS blobs (id BLOB PRIMARY KEY, owner TEXT NOT NULL, size INTEGER NOT NULL, sealed INTEGER NOT NULL,
    created_ms INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blob_chunks (blob_id BLOB NOT NULL, offset INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (blob_id, offset)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS receipts_user ON receipts(user, device_id);
CREATE TABLE IF NOT EXISTS records (user TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (user, name, version)) WITHOUT ROWID;
";

impl SqliteRelayStore {
    /// Open (or create) the relay database at `path`.
    pub fn open(path: &Path) -> R<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")?;
        conn.execute_batch(SCHEMA)?;
        // Databases from before receipts could say "expired".
        if conn
            .prepare("SELECT expired FROM receipts LIMIT 0")
            .is_err()
        {
            conn.execute_batch(
                "ALTER TABLE receipts ADD COLUMN expired INTEGER NOT NULL DEFAULT 0",
            )?;
        }
        Ok(SqliteRelayStore { conn })
    }
}

impl RelayStore for SqliteRelayStore {
    fn device(&self, user: &str, device_id: u32) -> R<Option<DeviceRecord>> {
        Ok(self
            .conn
            .prepare_cached("SELECT identity_key, registration_id FROM devices WHERE user = ?1 AND device_id = ?2")?
            .query_row(params![user, device_id], |r| Ok(DeviceRecord { identity_key: r.get(0)?, registration_id: r.get(1)? }))
            .optional()?)
    }
    fn register_device(&mut self, user: &str, device_id: u32, d: &DeviceRecord) -> R<()> {
        self.conn.execute(
            "INSERT INTO devices (user, device_id, identity_key, registration_id) VALUES (?1, ?2, ?3, ?4)",
            params![user, device_id, d.identity_key, d.registration_id],
        )?;
        Ok(())
    }
    fn devices(&self, user: &str) -> R<Vec<u32>> {
        let mut s = self
            .conn
            .prepare_cached("SELECT device_id FROM devices WHERE user = ?1 ORDER BY device_id")?;
        let v = s
            .query_map([user], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(v)
    }
    fn upload_keys(
        &mut self,
        user: &str,
        device_id: u32,
        spk_id: u32,
        spk: &[u8],
        sig: &[u8],
        prekeys: &[PreKey],
    ) -> R<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT OR REPLACE INTO signed_prekeys (user, device_id, id, public_key, signature) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![user, device_id, spk_id, spk, sig],
        )?;
        for p in prekeys {
            tx.execute(
                "INSERT OR REPLACE INTO prekeys (user, device_id, id, public_key) VALUES (?1, ?2, ?3, ?4)",
                params![user, device_id, p.id, p.public_key],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
    fn take_bundle(&mut self, user: &str, device_id: u32) -> R<Option<Bundle>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let dev: Option<(Vec<u8>, u32)> = tx
            .query_row("SELECT identity_key, registration_id FROM devices WHERE user = ?1 AND device_id = ?2", params![user, device_id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let spk: Option<(u32, Vec<u8>, Vec<u8>)> = tx
            .query_row("SELECT id, public_key, signature FROM signed_prekeys WHERE user = ?1 AND device_id = ?2", params![user, device_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let (Some((identity_key, registration_id)), Some((spk_id, spk, sig))) = (dev, spk) else {
            return Ok(None);
        };
        let prekey: Option<PreKey> = tx
            .query_row(
                "DELETE FROM prekeys WHERE user = ?1 AND device_id = ?2
                   AND id = (SELECT min(id) FROM prekeys WHERE user = ?1 AND device_id = ?2)
                 RETURNING id, public_key",
                params![user, device_id],
                |r| {
                    Ok(PreKey {
                        id: r.get(0)?,
                        public_key: r.get(1)?,
                    })
                },
            )
            .optional()?;
        tx.commit()?;
        Ok(Some(Bundle {
            registration_id,
            device_id,
            identity_key,
            signed_prekey_id: spk_id,
            signed_prekey: spk,
            signed_prekey_signature: sig,
            prekey,
        }))
    }
    fn prekeys_left(&self, user: &str, device_id: u32) -> R<u32> {
        Ok(self
            .conn
            .prepare_cached("SELECT count(*) FROM prekeys WHERE user = ?1 AND device_id = ?2")?
            .query_row(params![user, device_id], |r| r.get(0))?)
    }
    fn enqueue(
        &mut self,
        to_user: &str,
        to_device: u32,
        from_user: &str,
        from_device: u32,
        message_type: u32,
        payload: &[u8],
        now_ms: u64,
    ) -> R<u64> {
        self.conn
            .prepare_cached(
                "INSERT INTO mailbox (to_user, to_device, from_user, from_device, message_type, payload, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![to_user, to_device, from_user, from_device, message_type, payload, now_ms as i64])?;
        Ok(self.conn.last_insert_rowid() as u64)
    }
    fn pending(&self, user: &str, device_id: u32, limit: u32) -> R<Vec<Deliver>> {
        let mut s = self.conn.prepare_cached(
            "SELECT id, from_user, from_device, message_type, payload, created_ms FROM mailbox WHERE to_user = ?1 AND to_device = ?2 ORDER BY id LIMIT ?3",
        )?;
        let v = s
            .query_map(params![user, device_id, limit], |r| {
                Ok(Deliver {
                    id: r.get::<_, i64>(0)? as u64,
                    from_user: r.get(1)?,
                    from_device: r.get(2)?,
                    message_type: r.get(3)?,
                    payload: r.get(4)?,
                    server_time_ms: r.get::<_, i64>(5)? as u64,
                    ephemeral: false,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(v)
    }
    fn queue_len(&self, user: &str, device_id: u32) -> R<u64> {
        Ok(self
            .conn
            .prepare_cached("SELECT count(*) FROM mailbox WHERE to_user = ?1 AND to_device = ?2")?
            .query_row(params![user, device_id], |r| r.get::<_, i64>(0))? as u64)
    }
    fn ack(&mut self, user: &str, device_id: u32, id: u64) -> R<Option<(String, u32, Receipt)>> {
        // Delete the message and keep its receipt in one transaction.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row: Option<(String, u32)> = tx
            .query_row(
                "DELETE FROM mailbox WHERE id = ?1 AND to_user = ?2 AND to_device = ?3 RETURNING from_user, from_device",
                params![id as i64, user, device_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let out = match row {
            Some((fu, fd)) => {
                tx.execute(
                    "INSERT INTO receipts (user, device_id, message_id, to_user, to_device) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![fu, fd, id as i64, user, device_id],
                )?;
                let receipt = Receipt {
                    id,
                    to_user: user.to_string(),
                    to_device: device_id,
                    receipt_id: tx.last_insert_rowid() as u64,
                    expired: false,
                };
                Some((fu, fd, receipt))
            }
            None => None,
        };
        tx.commit()?;
        Ok(out)
    }
    fn pending_receipts(&self, user: &str, device_id: u32) -> R<Vec<Receipt>> {
        let mut s = self
            .conn
            .prepare_cached("SELECT id, message_id, to_user, to_device, expired FROM receipts WHERE user = ?1 AND device_id = ?2 ORDER BY id")?;
        let rows = s.query_map(params![user, device_id], |r| {
            Ok(Receipt {
                receipt_id: r.get::<_, i64>(0)? as u64,
                id: r.get::<_, i64>(1)? as u64,
                to_user: r.get(2)?,
                to_device: r.get(3)?,
                expired: r.get::<_, i64>(4)? != 0,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
    fn ack_receipt(&mut self, user: &str, device_id: u32, receipt_id: u64) -> R<()> {
        self.conn.execute(
            "DELETE FROM receipts WHERE id = ?1 AND user = ?2 AND device_id = ?3",
            params![receipt_id as i64, user, device_id],
        )?;
        Ok(())
    }
    fn write_batch(&mut self, b: &WriteBatch) -> R<BatchOutcome> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut out = BatchOutcome::default();
        {
            let mut ins = tx.prepare_cached(
                "INSERT INTO mailbox (to_user, to_device, from_user, from_device, message_type, payload, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let mut contact = tx.prepare_cached(
                "INSERT OR IGNORE INTO contacts (from_user, to_user) VALUES (?1, ?2)",
            )?;
            for m in &b.enqueue {
                ins.execute(params![
                    m.to_user,
                    m.to_device,
                    m.from_user,
                    m.from_device,
                    m.message_type,
                    m.payload,
                    m.now_ms as i64
                ])?;
                out.ids.push(tx.last_insert_rowid() as u64);
                contact.execute(params![m.from_user, m.to_user])?;
            }
            let mut del = tx.prepare_cached(
                "DELETE FROM mailbox WHERE id = ?1 AND to_user = ?2 AND to_device = ?3 RETURNING from_user, from_device",
            )?;
            let mut keep = tx.prepare_cached(
                "INSERT INTO receipts (user, device_id, message_id, to_user, to_device) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (user, device_id, id) in &b.acks {
                let row: Option<(String, u32)> = del
                    .query_row(params![*id as i64, user, device_id], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()?;
                out.receipts.push(match row {
                    Some((fu, fd)) => {
                        keep.execute(params![fu, fd, *id as i64, user, device_id])?;
                        let receipt = Receipt {
                            id: *id,
                            to_user: user.clone(),
                            to_device: *device_id,
                            receipt_id: tx.last_insert_rowid() as u64,
                            expired: false,
                        };
                        Some((fu, fd, receipt))
                    }
                    None => None,
                });
            }
            let mut gone = tx.prepare_cached(
                "DELETE FROM receipts WHERE id = ?1 AND user = ?2 AND device_id = ?3",
            )?;
            for (user, device_id, rid) in &b.receipt_acks {
                gone.execute(params![*rid as i64, user, device_id])?;
            }
        }
        tx.commit()?;
        Ok(out)
    }
    fn expire(&mut self, cutoff_ms: u64) -> R<Vec<(String, u32, Receipt)>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let gone: Vec<(i64, String, u32, String, u32)> = tx
            .prepare("DELETE FROM mailbox WHERE created_ms < ?1 RETURNING id, from_user, from_device, to_user, to_device")?
            .query_map([cutoff_ms as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(gone.len());
        for (id, fu, fd, tu, td) in gone {
            tx.execute(
                "INSERT INTO receipts (user, device_id, message_id, to_user, to_device, expired) VALUES (?1, ?2, ?3, ?4, ?5, 1)",
                params![fu, fd, id, tu, td],
            )?;
            let receipt = Receipt {
                id: id as u64,
                to_user: tu,
                to_device: td,
                receipt_id: tx.last_insert_rowid() as u64,
                expired: true,
            };
            out.push((fu, fd, receipt));
        }
        tx.commit()?;
        Ok(out)
    }
    fn note_contact(&mut self, from: &str, to: &str) -> R<bool> {
        self.conn
            .prepare_cached("INSERT OR IGNORE INTO contacts (from_user, to_user) VALUES (?1, ?2)")?
            .execute(params![from, to])?;
        self.replied(from, to)
    }
    fn replied(&self, from: &str, to: &str) -> R<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM contacts WHERE from_user = ?1 AND to_user = ?2")?
            .query_row(params![to, from], |_| Ok(()))
            .optional()?
            .is_some())
    }
    fn directory_add(&mut self, hash: &[u8], user: &str) -> R<()> {
        let prefix = &hash[..hash.len().min(crate::proto::DISCOVERY_PREFIX_LEN)];
        self.conn.execute(
            "INSERT OR REPLACE INTO directory (hash, prefix, user) VALUES (?1, ?2, ?3)",
            params![hash, prefix, user],
        )?;
        Ok(())
    }
    fn directory_lookup(&self, prefixes: &[Vec<u8>]) -> R<Vec<(Vec<u8>, String)>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT hash, user FROM directory WHERE prefix = ?1 ORDER BY hash")?;
        let mut out = Vec::new();
        for p in prefixes {
            let rows = st.query_map([p], |r| Ok((r.get(0)?, r.get(1)?)))?;
            for r in rows {
                out.push(r?);
            }
        }
        Ok(out)
    }
    fn blob_create(&mut self, id: &[u8], owner: &str, now_ms: u64) -> R<()> {
        self.conn.execute(
            "INSERT INTO blobs (id, owner, size, sealed, created_ms) VALUES (?1, ?2, 0, 0, ?3)",
            params![id, owner, now_ms as i64],
        )?;
        Ok(())
    }
    fn blob_append(
        &mut self,
        id: &[u8],
        owner: &str,
        offset: u64,
        data: &[u8],
        seal: bool,
        max_total: u64,
    ) -> R<Option<Result<u64, u64>>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let size: Option<i64> = tx
            .query_row(
                "SELECT size FROM blobs WHERE id = ?1 AND owner = ?2 AND sealed = 0",
                params![id, owner],
                |r| r.get(0),
            )
            .optional()?;
        let Some(size) = size.map(|s| s as u64) else {
            return Ok(None);
        };
        let new = match blob_append_rule(size, offset, data.len(), max_total) {
            Ok(new) => new,
            Err(answer) => return Ok(answer),
        };
        if !data.is_empty() {
            tx.execute(
                "INSERT INTO blob_chunks (blob_id, offset, data) VALUES (?1, ?2, ?3)",
                params![id, size as i64, data],
            )?;
        }
        tx.execute(
            "UPDATE blobs SET size = ?2, sealed = ?3 WHERE id = ?1",
            params![id, new as i64, i64::from(seal)],
        )?;
        tx.commit()?;
        Ok(Some(Ok(new)))
    }
    fn blob_read(&self, id: &[u8], offset: u64, max: u32) -> R<Option<(u64, Vec<u8>)>> {
        let size: Option<i64> = self
            .conn
            .prepare_cached("SELECT size FROM blobs WHERE id = ?1 AND sealed = 1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        let Some(size) = size.map(|s| s as u64) else {
            return Ok(None);
        };
        let end = size.min(offset.saturating_add(u64::from(max)));
        let mut out = Vec::with_capacity(end.saturating_sub(offset) as usize);
        if offset < end {
            let mut st = self.conn.prepare_cached(
                // The lower bound (the chunk holding `offset`, found by an index seek)
                // keeps a read at the end of a large blob from scanning every chunk
                // before it: without it, downloading 1 GiB took quadratic time.
                "SELECT offset, data FROM blob_chunks WHERE blob_id = ?1 AND offset < ?3
                   AND offset >= COALESCE((SELECT max(offset) FROM blob_chunks
                                           WHERE blob_id = ?1 AND offset <= ?2), 0)
                   AND offset + length(data) > ?2 ORDER BY offset",
            )?;
            let rows = st.query_map(params![id, offset as i64, end as i64], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?))
            })?;
            for r in rows {
                let (at, data) = r?;
                let from = offset.saturating_sub(at) as usize;
                let to = ((end - at) as usize).min(data.len());
                out.extend_from_slice(&data[from..to]);
            }
        }
        Ok(Some((size, out)))
    }
    fn expire_blobs(&mut self, cutoff_ms: u64) -> R<u64> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "DELETE FROM blob_chunks WHERE blob_id IN (SELECT id FROM blobs WHERE created_ms < ?1)",
            [cutoff_ms as i64],
        )?;
        let n = tx.execute(
            "DELETE FROM blobs WHERE created_ms < ?1",
            [cutoff_ms as i64],
        )?;
        tx.commit()?;
        Ok(n as u64)
    }

    fn record_put(
        &mut self,
        user: &str,
        name: &str,
        version: u64,
        data: &[u8],
        rule: PutRule,
    ) -> R<Result<(), u64>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let latest: i64 = tx.query_row(
            "SELECT COALESCE(MAX(version), 0) FROM records WHERE user = ?1 AND name = ?2",
            params![user, name],
            |r| r.get(0),
        )?;
        let latest = latest as u64;
        let fits = match rule {
            PutRule::Append => version == latest + 1,
            PutRule::Replace => version > latest,
        };
        if !fits || version > i64::MAX as u64 {
            return Ok(Err(latest));
        }
        if rule == PutRule::Replace {
            tx.execute(
                "DELETE FROM records WHERE user = ?1 AND name = ?2",
                params![user, name],
            )?;
        }
        tx.execute(
            "INSERT INTO records (user, name, version, data) VALUES (?1, ?2, ?3, ?4)",
            params![user, name, version as i64, data],
        )?;
        tx.commit()?;
        Ok(Ok(()))
    }

    fn record_get(&self, user: &str, name: &str, after: u64, limit: u32) -> R<Vec<(u64, Vec<u8>)>> {
        let mut s = self.conn.prepare_cached(
            "SELECT version, data FROM records WHERE user = ?1 AND name = ?2 AND version > ?3
             ORDER BY version LIMIT ?4",
        )?;
        let after = after.min(i64::MAX as u64) as i64;
        let v = s
            .query_map(params![user, name, after, limit], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
            })?
            .collect::<Result<_, _>>()?;
        Ok(v)
    }

    fn record_latest(&self, user: &str, name: &str) -> R<Option<(u64, Vec<u8>)>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT version, data FROM records WHERE user = ?1 AND name = ?2
                 ORDER BY version DESC LIMIT 1",
            )?
            .query_row(params![user, name], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
            })
            .optional()?)
    }

    fn remove_device(&mut self, user: &str, device_id: u32) -> R<bool> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "DELETE FROM devices WHERE user = ?1 AND device_id = ?2",
            params![user, device_id],
        )?;
        for sql in [
            "DELETE FROM signed_prekeys WHERE user = ?1 AND device_id = ?2",
            "DELETE FROM prekeys WHERE user = ?1 AND device_id = ?2",
            "DELETE FROM mailbox WHERE to_user = ?1 AND to_device = ?2",
            "DELETE FROM receipts WHERE user = ?1 AND device_id = ?2",
        ] {
            tx.execute(sql, params![user, device_id])?;
        }
        tx.execute(
            "DELETE FROM records WHERE user = ?1 AND name = ?2",
            params![user, identity_record(device_id)],
        )?;
        tx.commit()?;
        Ok(n > 0)
    }
}
