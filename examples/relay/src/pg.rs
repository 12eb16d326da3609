//! The PostgreSQL relay store: several relay processes share one database.
//!
//! [`PgRelayStore`] has the semantics of [`SqliteRelayStore`](crate::SqliteRelayStore)
//! (`tests/store_conformance.rs` runs the same checks on both) and adds cross-process
//! notifications: every committed `enqueue`, and every `ack` that keeps a receipt,
//! sends `NOTIFY pawl_mailbox, '<device>:<user>'` for the device that has something
//! new, and [`RelayStore::subscribe_mailboxes`] LISTENs for them.
//!
//! Every method is one SQL statement (so one transaction) except `upload_keys`, which
//! is one explicit transaction. A one-time prekey is taken with `FOR UPDATE SKIP
//! LOCKED`, so concurrent fetches from any number of connections never hand one out
//! twice and never wait on each other.
//!
//! The `postgres` client blocks on a runtime of its own, which panics when called
//! from inside another tokio runtime, and the relay calls its store from async tasks.
//! So each store owns one worker thread that owns the connection; a call hands the
//! worker a closure and waits for its answer (like a SQLite call, it blocks the calling
//! thread for one database round trip). A dropped connection is reopened on the next
//! call (the call that finds it dropped fails: it is not retried, as it may have been
//! committed).

use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, Statement};

use crate::proto::{Bundle, Deliver, PreKey, Receipt};
use crate::store::{
    identity_record, BatchOutcome, DeviceRecord, MailboxEvent, MailboxListener, PutRule,
    RelayStore, StoreFailure, WriteBatch,
};

/// The NOTIFY channel; payloads are `<device_id>:<user>` (device first: a user name
/// may contain `:`).
pub const MAILBOX_CHANNEL: &str = "pawl_mailbox";

type R<T> = Result<T, StoreFailure>;

impl From<postgres::Error> for StoreFailure {
    fn from(e: postgres::Error) -> Self {
        // The top-level message is terse ("db error"): add the causes.
        let mut msg = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            msg.push_str(": ");
            msg.push_str(&c.to_string());
            cause = c.source();
        }
        StoreFailure(msg)
    }
}

/// Schema, created if missing. The advisory lock serialises concurrent first
/// connections (`CREATE TABLE IF NOT EXISTS` alone races in PostgreSQL).
const SCHEMA: &str = "
SELECT pg_advisory_xact_lock(1885435756);
CREATE TABLE IF NOT EXISTS relay_devices (user_name TEXT NOT NULL, device_id BIGINT NOT NULL,
    identity_key BYTEA NOT NULL, registration_id BIGINT NOT NULL, PRIMARY KEY (user_name, device_id));
CREATE TABLE IF NOT EXISTS relay_signed_prekeys (user_name TEXT NOT NULL, device_id BIGINT NOT NULL,
    id BIGINT NOT NULL, public_key BYTEA NOT NULL, signature BYTEA NOT NULL, PRIMARY KEY (user_name, device_id));
CREATE TABLE IF NOT EXISTS relay_prekeys (user_name TEXT NOT NULL, device_id BIGINT NOT NULL, id BIGINT NOT NULL,
    public_key BYTEA NOT NULL, PRIMARY KEY (user_name, device_id, id));
CREATE TABLE IF NOT EXISTS relay_mailbox (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    to_user TEXT NOT NULL, to_device BIGINT NOT NULL, from_user TEXT NOT NULL, from_device BIGINT NOT NULL,
    message_type BIGINT NOT NULL, payload BYTEA NOT NULL, created_ms BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS relay_mailbox_to ON relay_mailbox (to_user, to_device, id);
CREATE TABLE IF NOT EXISTS relay_receipts (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_name TEXT NOT NULL, device_id BIGINT NOT NULL, message_id BIGINT NOT NULL,
    to_user TEXT NOT NULL, to_device BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS relay_receipts_user ON relay_receipts (user_name, device_id, id);
ALTER TABLE relay_receipts ADD COLUMN IF NOT EXISTS expired BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX IF NOT EXISTS relay_mailbox_created ON relay_mailbox (created_ms);
CREATE TABLE IF NOT EXISTS relay_contacts (from_user TEXT NOT NULL, to_user TEXT NOT NULL,
    PRIMARY KEY (from_user, to_user));
CREATE TABLE IF NOT EXISTS relay_directory (hash BYTEA PRIMARY KEY, prefix BYTEA NOT NULL, user_name TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS relay_directory_prefix ON relay_directory (prefix);
CREATE TABLE IF NOT EXISTS relay_blobs (id BYTEA PRIMARY KEY, owner TEXT NOT NULL, size BIGINT NOT NULL,
    sealed BOOLEAN NOT NULL, created_ms BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS relay_blob_chunks (blob_id BYTEA NOT NULL, off BIGINT NOT NULL, data BYTEA NOT NULL,
    PRIMARY KEY (blob_id, off));
CREATE TABLE IF NOT EXISTS relay_records (user_name TEXT NOT NULL, name TEXT NOT NULL, version BIGINT NOT NULL,
    data BYTEA NOT NULL, PRIMARY KEY (user_name, name, version));
";

// Account records: the insert happens only if the version fits; concurrent puts of
// the same version meet on the primary key (one wins, the other inserts nothing).
const RECORD_APPEND: &str = "INSERT INTO relay_records (user_name, name, version, data)
    SELECT $1, $2, $3::BIGINT, $4 WHERE (SELECT COALESCE(MAX(version), 0) FROM relay_records
        WHERE user_name = $1 AND name = $2) = $3::BIGINT - 1
    ON CONFLICT DO NOTHING";
const RECORD_REPLACE: &str = "INSERT INTO relay_records (user_name, name, version, data)
    SELECT $1, $2, $3::BIGINT, $4 WHERE (SELECT COALESCE(MAX(version), 0) FROM relay_records
        WHERE user_name = $1 AND name = $2) < $3::BIGINT
    ON CONFLICT DO NOTHING";
const RECORD_PRUNE: &str =
    "DELETE FROM relay_records WHERE user_name = $1 AND name = $2 AND version < $3";
const RECORD_LATEST_VERSION: &str =
    "SELECT COALESCE(MAX(version), 0) FROM relay_records WHERE user_name = $1 AND name = $2";
const RECORD_GET: &str = "SELECT version, data FROM relay_records
    WHERE user_name = $1 AND name = $2 AND version > $3 ORDER BY version LIMIT $4";
const RECORD_LATEST: &str = "SELECT version, data FROM relay_records
    WHERE user_name = $1 AND name = $2 ORDER BY version DESC LIMIT 1";
const REMOVE_DEVICE: [&str; 5] = [
    "DELETE FROM relay_signed_prekeys WHERE user_name = $1 AND device_id = $2",
    "DELETE FROM relay_prekeys WHERE user_name = $1 AND device_id = $2",
    "DELETE FROM relay_mailbox WHERE to_user = $1 AND to_device = $2",
    "DELETE FROM relay_receipts WHERE user_name = $1 AND device_id = $2",
    "DELETE FROM relay_devices WHERE user_name = $1 AND device_id = $2",
];
const REMOVE_IDENTITY: &str = "DELETE FROM relay_records WHERE user_name = $1 AND name = $2";

// Expired messages leave an `expired` receipt for their sender (and a notification).
const EXPIRE: &str = "
WITH d AS (
    DELETE FROM relay_mailbox WHERE created_ms < $1
    RETURNING id, from_user, from_device, to_user, to_device
), r AS (
    INSERT INTO relay_receipts (user_name, device_id, message_id, to_user, to_device, expired)
    SELECT from_user, from_device, id, to_user, to_device, TRUE FROM d
    RETURNING id, user_name, device_id, message_id, to_user, to_device
)
SELECT r.id, r.user_name, r.device_id, r.message_id, r.to_user, r.to_device
FROM r, pg_notify('pawl_mailbox', r.device_id::TEXT || ':' || r.user_name)";
const NOTE_CONTACT: &str =
    "INSERT INTO relay_contacts (from_user, to_user) VALUES ($1, $2) ON CONFLICT DO NOTHING";
const REPLIED: &str = "SELECT 1 FROM relay_contacts WHERE from_user = $1 AND to_user = $2";
const DIRECTORY_ADD: &str =
    "INSERT INTO relay_directory (hash, prefix, user_name) VALUES ($1, $2, $3)
    ON CONFLICT (hash) DO UPDATE SET user_name = EXCLUDED.user_name";
const DIRECTORY_LOOKUP: &str =
    "SELECT hash, user_name FROM relay_directory WHERE prefix = ANY($1) ORDER BY hash";
const BLOB_CREATE: &str =
    "INSERT INTO relay_blobs (id, owner, size, sealed, created_ms) VALUES ($1, $2, 0, FALSE, $3)";
const BLOB_LOCK: &str =
    "SELECT size FROM relay_blobs WHERE id = $1 AND owner = $2 AND NOT sealed FOR UPDATE";
const BLOB_CHUNK: &str = "INSERT INTO relay_blob_chunks (blob_id, off, data) VALUES ($1, $2, $3)";
const BLOB_SET: &str = "UPDATE relay_blobs SET size = $2, sealed = $3 WHERE id = $1";
const BLOB_SIZE: &str = "SELECT size FROM relay_blobs WHERE id = $1 AND sealed";
// The lower bound (an index seek for the chunk holding the offset) keeps reads at the
// end of a large blob from scanning all the chunks before it.
const BLOB_CHUNKS: &str = "SELECT off, data FROM relay_blob_chunks WHERE blob_id = $1 AND off < $3
    AND off >= COALESCE((SELECT max(off) FROM relay_blob_chunks WHERE blob_id = $1 AND off <= $2), 0)
    AND off + length(data) > $2 ORDER BY off";
const EXPIRE_BLOBS: &str = "
WITH b AS (DELETE FROM relay_blobs WHERE created_ms < $1 RETURNING id),
c AS (DELETE FROM relay_blob_chunks WHERE blob_id IN (SELECT id FROM b))
SELECT count(*) FROM b";

const DEVICE: &str =
    "SELECT identity_key, registration_id FROM relay_devices WHERE user_name = $1 AND device_id = $2";
const REGISTER: &str =
    "INSERT INTO relay_devices (user_name, device_id, identity_key, registration_id)
    VALUES ($1, $2, $3, $4)";
const DEVICES: &str = "SELECT device_id FROM relay_devices WHERE user_name = $1 ORDER BY device_id";
const PUT_SIGNED_PREKEY: &str =
    "INSERT INTO relay_signed_prekeys (user_name, device_id, id, public_key, signature)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (user_name, device_id) DO UPDATE
    SET id = EXCLUDED.id, public_key = EXCLUDED.public_key, signature = EXCLUDED.signature";
const PUT_PREKEYS: &str = "INSERT INTO relay_prekeys (user_name, device_id, id, public_key)
    SELECT $1::TEXT, $2::BIGINT, k.id, k.public_key FROM UNNEST($3::BIGINT[], $4::BYTEA[]) AS k(id, public_key)
    ON CONFLICT (user_name, device_id, id) DO UPDATE SET public_key = EXCLUDED.public_key";
// The device and its signed prekey; only if both exist, the lowest one-time prekey
// nobody else is taking right now is deleted and returned (SKIP LOCKED: a concurrent
// fetch takes the next one instead of waiting and then finding its row gone).
const TAKE_BUNDLE: &str = "
WITH b AS (
    SELECT d.identity_key, d.registration_id, s.id AS spk_id, s.public_key AS spk, s.signature
    FROM relay_devices d
    JOIN relay_signed_prekeys s ON s.user_name = d.user_name AND s.device_id = d.device_id
    WHERE d.user_name = $1 AND d.device_id = $2
), p AS (
    DELETE FROM relay_prekeys
    WHERE user_name = $1 AND device_id = $2 AND EXISTS (SELECT 1 FROM b)
      AND id = (SELECT id FROM relay_prekeys WHERE user_name = $1 AND device_id = $2
                ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING id, public_key
)
SELECT b.identity_key, b.registration_id, b.spk_id, b.spk, b.signature, p.id, p.public_key
FROM b LEFT JOIN p ON TRUE";
const PREKEYS_LEFT: &str =
    "SELECT count(*) FROM relay_prekeys WHERE user_name = $1 AND device_id = $2";
// Insert and notify in one statement: the notification goes out when it commits.
const ENQUEUE: &str = "
WITH m AS (
    INSERT INTO relay_mailbox (to_user, to_device, from_user, from_device, message_type, payload, created_ms)
    VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id
)
SELECT m.id FROM m, pg_notify('pawl_mailbox', $8)";
const PENDING: &str = "SELECT id, from_user, from_device, message_type, payload, created_ms
    FROM relay_mailbox WHERE to_user = $1 AND to_device = $2 ORDER BY id LIMIT $3";
const QUEUE_LEN: &str = "SELECT count(*) FROM relay_mailbox WHERE to_user = $1 AND to_device = $2";
// Delete the message, keep the receipt for its sender and notify the sender's device:
// one statement, one transaction.
const ACK: &str = "
WITH d AS (
    DELETE FROM relay_mailbox WHERE id = $1 AND to_user = $2 AND to_device = $3
    RETURNING from_user, from_device
), r AS (
    INSERT INTO relay_receipts (user_name, device_id, message_id, to_user, to_device)
    SELECT from_user, from_device, $1, $2, $3 FROM d
    RETURNING id, user_name, device_id
)
SELECT r.id, r.user_name, r.device_id
FROM r, pg_notify('pawl_mailbox', r.device_id::TEXT || ':' || r.user_name)";
const PENDING_RECEIPTS: &str =
    "SELECT id, message_id, to_user, to_device, expired FROM relay_receipts
    WHERE user_name = $1 AND device_id = $2 ORDER BY id";
const ACK_RECEIPT: &str =
    "DELETE FROM relay_receipts WHERE id = $1 AND user_name = $2 AND device_id = $3";

/// How long opening a connection may take unless the URL says (`connect_timeout`): the
/// relay holds its store lock meanwhile.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn open(url: &str) -> R<Client> {
    let mut config = postgres::Config::from_str(url)?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
    }
    Ok(config.connect(NoTls)?)
}

fn u32_of(v: i64) -> R<u32> {
    u32::try_from(v).map_err(|_| StoreFailure(format!("stored value {v} is not a u32")))
}

fn u64_of(v: i64) -> R<u64> {
    u64::try_from(v).map_err(|_| StoreFailure(format!("stored value {v} is negative")))
}

fn i64_of(v: u64) -> R<i64> {
    i64::try_from(v).map_err(|_| StoreFailure(format!("{v} is out of range")))
}

/// One connection and its prepared statements.
struct Conn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl Conn {
    fn statement(&mut self, sql: &'static str) -> R<Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }

    fn query(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> R<Vec<Row>> {
        let s = self.statement(sql)?;
        Ok(self.client.query(&s, params)?)
    }

    fn query_opt(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> R<Option<Row>> {
        let s = self.statement(sql)?;
        Ok(self.client.query_opt(&s, params)?)
    }

    fn query_one(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> R<Row> {
        let s = self.statement(sql)?;
        Ok(self.client.query_one(&s, params)?)
    }

    fn execute(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> R<u64> {
        let s = self.statement(sql)?;
        Ok(self.client.execute(&s, params)?)
    }
}

/// The worker thread's state: the connection, reopened when it dropped.
struct Worker {
    url: String,
    conn: Option<Conn>,
}

impl Worker {
    fn conn(&mut self) -> R<&mut Conn> {
        if self.conn.as_ref().is_none_or(|c| c.client.is_closed()) {
            self.conn = None;
            let client = open(&self.url)?;
            self.conn = Some(Conn {
                client,
                statements: HashMap::new(),
            });
        }
        self.conn
            .as_mut()
            .ok_or_else(|| StoreFailure("no PostgreSQL connection".into()))
    }

    /// Run `f` on the connection. After a failure, a connection that no longer answers
    /// is dropped, so the next call opens a new one (the client does not always notice
    /// by itself that the server hung up).
    fn run<T>(&mut self, f: impl FnOnce(&mut Conn) -> R<T>) -> R<T> {
        let c = self.conn()?;
        let out = f(c);
        if out.is_err() && (c.client.is_closed() || c.client.is_valid(PROBE_TIMEOUT).is_err()) {
            self.conn = None;
        }
        out
    }
}

type Job = Box<dyn FnOnce(&mut Worker) + Send>;

/// The PostgreSQL store. Open it with [`PgRelayStore::connect`]; one store is one
/// connection (plus one per [`subscribe_mailboxes`](RelayStore::subscribe_mailboxes)).
pub struct PgRelayStore {
    url: String,
    jobs: Option<mpsc::Sender<Job>>,
    worker: Option<thread::JoinHandle<()>>,
    /// Tells the listener threads of this store to stop.
    stop: Arc<AtomicBool>,
}

impl PgRelayStore {
    /// Connect to the database at `url` (`postgres://user:password@host:port/dbname`,
    /// or any form the `postgres` crate accepts; a Unix socket directory goes
    /// percent-encoded in the host part, or as `?host=/path`), no TLS, and create the
    /// schema if missing. Safe to call from inside an async runtime.
    pub fn connect(url: &str) -> R<Self> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let mut state = Worker {
            url: url.to_string(),
            conn: None,
        };
        let worker = thread::Builder::new()
            .name("pawl-relay-pg".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job(&mut state);
                }
            })
            .map_err(|e| StoreFailure(format!("cannot start the PostgreSQL thread: {e}")))?;
        let store = PgRelayStore {
            url: url.to_string(),
            jobs: Some(jobs),
            worker: Some(worker),
            stop: Arc::new(AtomicBool::new(false)),
        };
        store.call(|c| {
            let mut tx = c.client.transaction()?;
            tx.batch_execute(SCHEMA)?;
            tx.commit()?;
            Ok(())
        })?;
        Ok(store)
    }

    /// Run `f` on the worker thread's connection and wait for its result.
    fn call<T: Send + 'static>(&self, f: impl FnOnce(&mut Conn) -> R<T> + Send + 'static) -> R<T> {
        let gone = || StoreFailure("the PostgreSQL thread is gone".into());
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |w: &mut Worker| {
            let _ = tx.send(w.run(f));
        });
        self.jobs
            .as_ref()
            .ok_or_else(gone)?
            .send(job)
            .map_err(|_| gone())?;
        rx.recv().map_err(|_| gone())?
    }
}

impl Drop for PgRelayStore {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        drop(self.jobs.take()); // the worker's loop ends, closing the connection
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

impl RelayStore for PgRelayStore {
    fn device(&self, user: &str, device_id: u32) -> R<Option<DeviceRecord>> {
        let user = user.to_string();
        self.call(move |c| {
            c.query_opt(DEVICE, &[&user, &i64::from(device_id)])?
                .map(|r| {
                    Ok(DeviceRecord {
                        identity_key: r.try_get(0)?,
                        registration_id: u32_of(r.try_get(1)?)?,
                    })
                })
                .transpose()
        })
    }

    fn register_device(&mut self, user: &str, device_id: u32, d: &DeviceRecord) -> R<()> {
        let (user, d) = (user.to_string(), d.clone());
        self.call(move |c| {
            c.execute(
                REGISTER,
                &[
                    &user,
                    &i64::from(device_id),
                    &d.identity_key,
                    &i64::from(d.registration_id),
                ],
            )?;
            Ok(())
        })
    }

    fn devices(&self, user: &str) -> R<Vec<u32>> {
        let user = user.to_string();
        self.call(move |c| {
            c.query(DEVICES, &[&user])?
                .iter()
                .map(|r| u32_of(r.try_get(0)?))
                .collect()
        })
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
        // A repeated id keeps its last key, as SQLite's INSERT OR REPLACE does (one
        // PostgreSQL upsert may not touch a row twice).
        let by_id: BTreeMap<u32, Vec<u8>> = prekeys
            .iter()
            .map(|p| (p.id, p.public_key.clone()))
            .collect();
        let ids: Vec<i64> = by_id.keys().map(|&id| i64::from(id)).collect();
        let keys: Vec<Vec<u8>> = by_id.into_values().collect();
        let (user, spk, sig) = (user.to_string(), spk.to_vec(), sig.to_vec());
        let device = i64::from(device_id);
        self.call(move |c| {
            let put_spk = c.statement(PUT_SIGNED_PREKEY)?;
            let put_prekeys = c.statement(PUT_PREKEYS)?;
            let mut tx = c.client.transaction()?;
            tx.execute(&put_spk, &[&user, &device, &i64::from(spk_id), &spk, &sig])?;
            if !ids.is_empty() {
                tx.execute(&put_prekeys, &[&user, &device, &ids, &keys])?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn take_bundle(&mut self, user: &str, device_id: u32) -> R<Option<Bundle>> {
        let user = user.to_string();
        self.call(move |c| {
            let Some(r) = c.query_opt(TAKE_BUNDLE, &[&user, &i64::from(device_id)])? else {
                return Ok(None);
            };
            let prekey = match (r.try_get::<_, Option<i64>>(5)?, r.try_get(6)?) {
                (Some(id), Some(public_key)) => Some(PreKey {
                    id: u32_of(id)?,
                    public_key,
                }),
                _ => None,
            };
            Ok(Some(Bundle {
                registration_id: u32_of(r.try_get(1)?)?,
                device_id,
                identity_key: r.try_get(0)?,
                signed_prekey_id: u32_of(r.try_get(2)?)?,
                signed_prekey: r.try_get(3)?,
                signed_prekey_signature: r.try_get(4)?,
                prekey,
            }))
        })
    }

    fn prekeys_left(&self, user: &str, device_id: u32) -> R<u32> {
        let user = user.to_string();
        self.call(move |c| {
            let n: i64 = c
                .query_one(PREKEYS_LEFT, &[&user, &i64::from(device_id)])?
                .try_get(0)?;
            u32_of(n)
        })
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
        let notice = format!("{to_device}:{to_user}");
        let (to_user, from_user, payload) =
            (to_user.to_string(), from_user.to_string(), payload.to_vec());
        let now = i64_of(now_ms)?;
        self.call(move |c| {
            let id: i64 = c
                .query_one(
                    ENQUEUE,
                    &[
                        &to_user,
                        &i64::from(to_device),
                        &from_user,
                        &i64::from(from_device),
                        &i64::from(message_type),
                        &payload,
                        &now,
                        &notice,
                    ],
                )?
                .try_get(0)?;
            u64_of(id)
        })
    }

    fn pending(&self, user: &str, device_id: u32, limit: u32) -> R<Vec<Deliver>> {
        let user = user.to_string();
        self.call(move |c| {
            c.query(PENDING, &[&user, &i64::from(device_id), &i64::from(limit)])?
                .iter()
                .map(|r| {
                    Ok(Deliver {
                        id: u64_of(r.try_get(0)?)?,
                        from_user: r.try_get(1)?,
                        from_device: u32_of(r.try_get(2)?)?,
                        message_type: u32_of(r.try_get(3)?)?,
                        payload: r.try_get(4)?,
                        server_time_ms: u64_of(r.try_get(5)?)?,
                        ephemeral: false,
                    })
                })
                .collect()
        })
    }

    fn queue_len(&self, user: &str, device_id: u32) -> R<u64> {
        let user = user.to_string();
        self.call(move |c| {
            let n: i64 = c
                .query_one(QUEUE_LEN, &[&user, &i64::from(device_id)])?
                .try_get(0)?;
            u64_of(n)
        })
    }

    fn ack(&mut self, user: &str, device_id: u32, id: u64) -> R<Option<(String, u32, Receipt)>> {
        let user = user.to_string();
        let message_id = i64_of(id)?;
        self.call(move |c| {
            let Some(r) = c.query_opt(ACK, &[&message_id, &user, &i64::from(device_id)])? else {
                return Ok(None);
            };
            let receipt = Receipt {
                id,
                to_user: user,
                to_device: device_id,
                receipt_id: u64_of(r.try_get(0)?)?,
                expired: false,
            };
            Ok(Some((r.try_get(1)?, u32_of(r.try_get(2)?)?, receipt)))
        })
    }

    fn pending_receipts(&self, user: &str, device_id: u32) -> R<Vec<Receipt>> {
        let user = user.to_string();
        self.call(move |c| {
            c.query(PENDING_RECEIPTS, &[&user, &i64::from(device_id)])?
                .iter()
                .map(|r| {
                    Ok(Receipt {
                        receipt_id: u64_of(r.try_get(0)?)?,
                        id: u64_of(r.try_get(1)?)?,
                        to_user: r.try_get(2)?,
                        to_device: u32_of(r.try_get(3)?)?,
                        expired: r.try_get(4)?,
                    })
                })
                .collect()
        })
    }

    fn ack_receipt(&mut self, user: &str, device_id: u32, receipt_id: u64) -> R<()> {
        let user = user.to_string();
        let receipt_id = i64_of(receipt_id)?;
        self.call(move |c| {
            c.execute(ACK_RECEIPT, &[&receipt_id, &user, &i64::from(device_id)])?;
            Ok(())
        })
    }

    fn write_batch(&mut self, b: &WriteBatch) -> R<BatchOutcome> {
        let b = b.clone();
        self.call(move |c| {
            let enqueue = c.statement(ENQUEUE)?;
            let contact = c.statement(NOTE_CONTACT)?;
            let ack = c.statement(ACK)?;
            let ack_receipt = c.statement(ACK_RECEIPT)?;
            let mut tx = c.client.transaction()?;
            let mut out = BatchOutcome::default();
            for m in &b.enqueue {
                tx.execute(&contact, &[&m.from_user, &m.to_user])?;
                let notice = format!("{}:{}", m.to_device, m.to_user);
                let id: i64 = tx
                    .query_one(
                        &enqueue,
                        &[
                            &m.to_user,
                            &i64::from(m.to_device),
                            &m.from_user,
                            &i64::from(m.from_device),
                            &i64::from(m.message_type),
                            &m.payload,
                            &i64_of(m.now_ms)?,
                            &notice,
                        ],
                    )?
                    .try_get(0)?;
                out.ids.push(u64_of(id)?);
            }
            for (user, device_id, id) in &b.acks {
                let row = tx.query_opt(&ack, &[&i64_of(*id)?, user, &i64::from(*device_id)])?;
                out.receipts.push(match row {
                    Some(r) => {
                        let receipt = Receipt {
                            id: *id,
                            to_user: user.clone(),
                            to_device: *device_id,
                            receipt_id: u64_of(r.try_get(0)?)?,
                            expired: false,
                        };
                        Some((r.try_get(1)?, u32_of(r.try_get(2)?)?, receipt))
                    }
                    None => None,
                });
            }
            for (user, device_id, rid) in &b.receipt_acks {
                tx.execute(
                    &ack_receipt,
                    &[&i64_of(*rid)?, user, &i64::from(*device_id)],
                )?;
            }
            tx.commit()?;
            Ok(out)
        })
    }

    fn expire(&mut self, cutoff_ms: u64) -> R<Vec<(String, u32, Receipt)>> {
        let cutoff = i64_of(cutoff_ms)?;
        self.call(move |c| {
            c.query(EXPIRE, &[&cutoff])?
                .iter()
                .map(|r| {
                    let receipt = Receipt {
                        receipt_id: u64_of(r.try_get(0)?)?,
                        id: u64_of(r.try_get(3)?)?,
                        to_user: r.try_get(4)?,
                        to_device: u32_of(r.try_get(5)?)?,
                        expired: true,
                    };
                    Ok((r.try_get(1)?, u32_of(r.try_get(2)?)?, receipt))
                })
                .collect()
        })
    }

    fn note_contact(&mut self, from: &str, to: &str) -> R<bool> {
        let (from, to) = (from.to_string(), to.to_string());
        self.call(move |c| {
            c.execute(NOTE_CONTACT, &[&from, &to])?;
            Ok(c.query_opt(REPLIED, &[&to, &from])?.is_some())
        })
    }

    fn replied(&self, from: &str, to: &str) -> R<bool> {
        let (from, to) = (from.to_string(), to.to_string());
        self.call(move |c| Ok(c.query_opt(REPLIED, &[&to, &from])?.is_some()))
    }

    fn directory_add(&mut self, hash: &[u8], user: &str) -> R<()> {
        let prefix = hash[..hash.len().min(crate::proto::DISCOVERY_PREFIX_LEN)].to_vec();
        let (hash, user) = (hash.to_vec(), user.to_string());
        self.call(move |c| {
            c.execute(DIRECTORY_ADD, &[&hash, &prefix, &user])?;
            Ok(())
        })
    }

    fn directory_lookup(&self, prefixes: &[Vec<u8>]) -> R<Vec<(Vec<u8>, String)>> {
        let prefixes = prefixes.to_vec();
        self.call(move |c| {
            c.query(DIRECTORY_LOOKUP, &[&prefixes])?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect()
        })
    }

    fn blob_create(&mut self, id: &[u8], owner: &str, now_ms: u64) -> R<()> {
        let (id, owner, now) = (id.to_vec(), owner.to_string(), i64_of(now_ms)?);
        self.call(move |c| {
            c.execute(BLOB_CREATE, &[&id, &owner, &now])?;
            Ok(())
        })
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
        let (id, owner, data) = (id.to_vec(), owner.to_string(), data.to_vec());
        self.call(move |c| {
            let lock = c.statement(BLOB_LOCK)?;
            let chunk = c.statement(BLOB_CHUNK)?;
            let set = c.statement(BLOB_SET)?;
            let mut tx = c.client.transaction()?;
            let Some(row) = tx.query_opt(&lock, &[&id, &owner])? else {
                return Ok(None);
            };
            let size = u64_of(row.try_get(0)?)?;
            let new = match crate::store::blob_append_rule(size, offset, data.len(), max_total) {
                Ok(new) => new,
                Err(answer) => return Ok(answer),
            };
            if !data.is_empty() {
                tx.execute(&chunk, &[&id, &i64_of(size)?, &data])?;
            }
            tx.execute(&set, &[&id, &i64_of(new)?, &seal])?;
            tx.commit()?;
            Ok(Some(Ok(new)))
        })
    }

    fn blob_read(&self, id: &[u8], offset: u64, max: u32) -> R<Option<(u64, Vec<u8>)>> {
        let id = id.to_vec();
        self.call(move |c| {
            let Some(row) = c.query_opt(BLOB_SIZE, &[&id])? else {
                return Ok(None);
            };
            let size = u64_of(row.try_get(0)?)?;
            let end = size.min(offset.saturating_add(u64::from(max)));
            let mut out = Vec::with_capacity(end.saturating_sub(offset) as usize);
            if offset < end {
                for r in c.query(BLOB_CHUNKS, &[&id, &i64_of(offset)?, &i64_of(end)?])? {
                    let at = u64_of(r.try_get(0)?)?;
                    let data: Vec<u8> = r.try_get(1)?;
                    let from = offset.saturating_sub(at) as usize;
                    let to = ((end - at) as usize).min(data.len());
                    out.extend_from_slice(&data[from..to]);
                }
            }
            Ok(Some((size, out)))
        })
    }

    fn expire_blobs(&mut self, cutoff_ms: u64) -> R<u64> {
        let cutoff = i64_of(cutoff_ms)?;
        self.call(move |c| {
            let r = c.query_opt(EXPIRE_BLOBS, &[&cutoff])?;
            match r {
                Some(r) => u64_of(r.try_get(0)?),
                None => Ok(0),
            }
        })
    }

    fn record_put(
        &mut self,
        user: &str,
        name: &str,
        version: u64,
        data: &[u8],
        rule: PutRule,
    ) -> R<Result<(), u64>> {
        let (user, name, data) = (user.to_string(), name.to_string(), data.to_vec());
        let v = i64_of(version)?;
        self.call(move |c| {
            let put = c.statement(match rule {
                PutRule::Append => RECORD_APPEND,
                PutRule::Replace => RECORD_REPLACE,
            })?;
            let prune = c.statement(RECORD_PRUNE)?;
            let latest = c.statement(RECORD_LATEST_VERSION)?;
            let mut tx = c.client.transaction()?;
            let n = tx.execute(&put, &[&user, &name, &v, &data])?;
            if n == 0 {
                let l: i64 = tx.query_one(&latest, &[&user, &name])?.try_get(0)?;
                tx.commit()?;
                return Ok(Err(u64_of(l)?));
            }
            if rule == PutRule::Replace {
                tx.execute(&prune, &[&user, &name, &v])?;
            }
            tx.commit()?;
            Ok(Ok(()))
        })
    }

    fn record_get(&self, user: &str, name: &str, after: u64, limit: u32) -> R<Vec<(u64, Vec<u8>)>> {
        let (user, name) = (user.to_string(), name.to_string());
        let after = i64_of(after.min(i64::MAX as u64))?;
        self.call(move |c| {
            c.query(RECORD_GET, &[&user, &name, &after, &i64::from(limit)])?
                .iter()
                .map(|r| Ok((u64_of(r.try_get(0)?)?, r.try_get(1)?)))
                .collect()
        })
    }

    fn record_latest(&self, user: &str, name: &str) -> R<Option<(u64, Vec<u8>)>> {
        let (user, name) = (user.to_string(), name.to_string());
        self.call(move |c| {
            c.query_opt(RECORD_LATEST, &[&user, &name])?
                .map(|r| Ok((u64_of(r.try_get(0)?)?, r.try_get(1)?)))
                .transpose()
        })
    }

    fn remove_device(&mut self, user: &str, device_id: u32) -> R<bool> {
        let user = user.to_string();
        let device = i64::from(device_id);
        let identity = identity_record(device_id);
        self.call(move |c| {
            let mut statements = Vec::new();
            for sql in REMOVE_DEVICE {
                statements.push(c.statement(sql)?);
            }
            let remove_identity = c.statement(REMOVE_IDENTITY)?;
            let mut tx = c.client.transaction()?;
            let mut removed = 0;
            for st in &statements {
                removed = tx.execute(st, &[&user, &device])?;
            }
            tx.execute(&remove_identity, &[&user, &identity])?;
            tx.commit()?;
            Ok(removed > 0)
        })
    }

    /// LISTENs on a connection of its own, opened before this returns; a background
    /// thread calls `on_event`, reopens the connection when it drops (backing off up to
    /// 5 s, then [`MailboxEvent::Resync`]), probes it after 30 s of silence, and stops
    /// within [`LISTEN_POLL`] of the store being dropped.
    fn subscribe_mailboxes(&self, on_event: MailboxListener) -> R<()> {
        let (ready_tx, ready_rx) = mpsc::sync_channel::<R<()>>(1);
        let url = self.url.clone();
        let stop = self.stop.clone();
        thread::Builder::new()
            .name("pawl-relay-pg-listen".into())
            .spawn(move || match listen(&url) {
                Ok(client) => {
                    let _ = ready_tx.send(Ok(()));
                    listen_loop(&url, &stop, &on_event, client);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| StoreFailure(format!("cannot start the PostgreSQL listener: {e}")))?;
        ready_rx
            .recv()
            .map_err(|_| StoreFailure("the PostgreSQL listener thread died".into()))?
    }
}

/// How long the listener blocks waiting for a notification before it checks whether
/// its store was dropped.
pub const LISTEN_POLL: Duration = Duration::from_millis(200);
const PROBE_AFTER: Duration = Duration::from_secs(30);
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

fn listen(url: &str) -> R<Client> {
    let mut client = open(url)?;
    client.batch_execute("LISTEN pawl_mailbox")?;
    Ok(client)
}

/// `<device_id>:<user>` into an event.
fn parse_notice(payload: &str) -> Option<MailboxEvent> {
    let (device, user) = payload.split_once(':')?;
    Some(MailboxEvent::Changed {
        user: user.to_string(),
        device_id: device.parse().ok()?,
    })
}

fn emit(on_event: &MailboxListener, event: MailboxEvent) {
    // A panicking callback must not end the subscription.
    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| on_event(event)));
}

fn listen_loop(url: &str, stop: &AtomicBool, on_event: &MailboxListener, first: Client) {
    let mut client = Some(first);
    let mut backoff = FIRST_BACKOFF;
    let mut quiet_since = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let Some(c) = client.as_mut() else {
            match listen(url) {
                Ok(c) => {
                    client = Some(c);
                    backoff = FIRST_BACKOFF;
                    quiet_since = Instant::now();
                    emit(on_event, MailboxEvent::Resync);
                }
                Err(_) => {
                    let until = Instant::now() + backoff;
                    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                        thread::sleep(
                            LISTEN_POLL.min(until.saturating_duration_since(Instant::now())),
                        );
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
            continue;
        };
        let next = c.notifications().timeout_iter(LISTEN_POLL).next();
        match next {
            Ok(Some(n)) => {
                quiet_since = Instant::now();
                if n.channel() == MAILBOX_CHANNEL {
                    if let Some(event) = parse_notice(n.payload()) {
                        emit(on_event, event);
                    }
                }
            }
            // Timed out, or the server hung up.
            Ok(None) if c.is_closed() => client = None,
            Ok(None) => {
                if quiet_since.elapsed() >= PROBE_AFTER {
                    quiet_since = Instant::now();
                    if c.is_valid(PROBE_TIMEOUT).is_err() {
                        client = None;
                    }
                }
            }
            Err(_) => client = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notice_payloads() {
        assert_eq!(
            parse_notice("7:alice"),
            Some(MailboxEvent::Changed {
                user: "alice".into(),
                device_id: 7
            })
        );
        assert_eq!(
            parse_notice("1:a:b"),
            Some(MailboxEvent::Changed {
                user: "a:b".into(),
                device_id: 1
            })
        );
        assert_eq!(parse_notice("x:alice"), None);
        assert_eq!(parse_notice("alice"), None);
    }
}
