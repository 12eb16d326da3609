//! The persistent store of a Pawl device: one SQLite file, encrypted at rest with
//! SQLCipher under a 32-byte key the app supplies (iOS Keychain, Android Keystore).
//!
//! * Every protocol store trait is implemented here, plus contacts, devices, chats,
//!   messages (paging, unread counts, full-text search), receipts and an outbox
//!   (see [`messages`]).
//! * Schema changes are numbered SQL migrations embedded at compile time, each applied
//!   in its own transaction; `PRAGMA user_version` is the schema version. Opening never
//!   deletes or recreates a store: a wrong key, a newer schema or a corrupt file is an
//!   error and the file is left as it was.
//! * Receiving is atomic: [`SqliteStore::receive`] decrypts and stores the message in
//!   one transaction, committed before the plaintext is returned; an envelope id that
//!   is already stored is reported as a duplicate without decrypting anything.
//! * Locking: the database runs in WAL mode, and every operation that reads and then
//!   writes ratchet state runs in a `BEGIN IMMEDIATE` transaction, so an app and its
//!   notification extension (two processes on one file) take turns on the write lock
//!   and neither can fork a ratchet. Readers never block. A writer waits up to the busy
//!   timeout (5 s by default) and then fails with [`StoreError::Busy`].
//!
//! ```
//! use pawl_core::sqlite::SqliteStore;
//! use pawl_core::keys::IdentityKeyPair;
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("device.db");
//! let key = [7u8; 32]; // from the platform keystore in a real app
//! let mut store = SqliteStore::open(&path, Some(&key))?;
//! store.set_local_identity(&IdentityKeyPair::generate(&mut rand_core::OsRng), 42)?;
//! drop(store);
//! assert!(SqliteStore::open(&path, Some(&[8u8; 32])).is_err()); // wrong key
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod groups;
pub mod messages;
mod protocol;

pub use groups::{
    check_group_update, group_chat_peer, GroupInfo, MAX_GROUP_MEMBERS, MAX_GROUP_NAME,
};

/// The setting that names this store's account (its user name), written by the client.
pub(crate) const ACCOUNT_USER: &str = "client.account.user";

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::error::StoreError;

/// The migrations, in order; migration `i` (0-based) brings the schema to `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_receipts_outbox_search.sql"),
    include_str!("migrations/0003_client_sends.sql"),
    include_str!("migrations/0004_media.sql"),
    include_str!("migrations/0005_groups.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

pub(crate) fn sql_err(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == ErrorCode::DatabaseBusy || f.code == ErrorCode::DatabaseLocked =>
        {
            StoreError::Busy
        }
        rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::NotADatabase => {
            StoreError::WrongKey
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

/// SQLCipher's version, or `None` when this SQLite has no encryption (plain SQLite
/// answers the unknown pragma with no row).
fn cipher_version(conn: &Connection) -> Option<String> {
    conn.query_row("PRAGMA cipher_version", [], |r| r.get::<_, String>(0))
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// A store opened with a key must really be encrypted: an empty `cipher_version` is
/// [`StoreError::EncryptionUnavailable`].
pub(crate) fn require_cipher(version: Option<String>) -> Result<String, StoreError> {
    version.ok_or(StoreError::EncryptionUnavailable)
}

/// A device's store on one SQLite file.
pub struct SqliteStore {
    pub(crate) conn: Connection,
    path: PathBuf,
    encrypted: bool,
    /// Depth of `transaction` nesting (only the outermost one begins and commits).
    depth: u32,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("encrypted", &self.encrypted)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Open (or create) the store at `path`. With `key`, the file is encrypted with
    /// SQLCipher; `None` opens a plain SQLite file (tests, and measuring the cost of
    /// encryption). A wrong key fails with [`StoreError::WrongKey`] and changes nothing.
    pub fn open(path: &Path, key: Option<&[u8; 32]>) -> Result<Self, StoreError> {
        Self::open_to_version(path, key, SCHEMA_VERSION)
    }

    /// Open and migrate only up to `version` (used to build old-schema fixtures).
    #[doc(hidden)]
    pub fn open_to_version(
        path: &Path,
        key: Option<&[u8; 32]>,
        version: u32,
    ) -> Result<Self, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(sql_err)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(sql_err)?;
        // SQLCipher logs to stderr by default; errors come back to us as values.
        let _ = conn.execute_batch("PRAGMA cipher_log_level = NONE;");
        if let Some(k) = key {
            let mut hex = String::with_capacity(64);
            for b in k {
                hex.push_str(&format!("{b:02x}"));
            }
            let pragma = zeroize::Zeroizing::new(format!("PRAGMA key = \"x'{hex}'\";"));
            zeroize::Zeroize::zeroize(&mut hex);
            // WAL: readers never block the writer (app + extension). synchronous = FULL: a
            // commit is on disk before receive() returns, so a message acknowledged to the
            // relay survives a power cut. 8 MiB page cache: fewer evictions while draining.
            conn.execute_batch(&pragma).map_err(sql_err)?;
            // A SQLite without SQLCipher ignores `PRAGMA key` without a word (measured:
            // rusqlite on wasm32 drops the feature): refuse rather than write plaintext.
            require_cipher(cipher_version(&conn))?;
        }
        // The first read proves the key (SQLCipher decrypts page 1 here).
        let current: u32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql_err)?;
        if current > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                found: current,
                supported: SCHEMA_VERSION,
            });
        }
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -8192;",
        )
        .map_err(sql_err)?;
        let mut store = SqliteStore {
            conn,
            path: path.to_path_buf(),
            encrypted: key.is_some(),
            depth: 0,
        };
        store.migrate(current, version.min(SCHEMA_VERSION))?;
        Ok(store)
    }

    fn migrate(&mut self, from: u32, to: u32) -> Result<(), StoreError> {
        for v in from..to {
            let sql = MIGRATIONS[v as usize];
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(sql_err)?;
            // Another process may have migrated meanwhile.
            let now: u32 = tx
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(sql_err)?;
            if now > v {
                tx.commit().map_err(sql_err)?;
                continue;
            }
            tx.execute_batch(sql).map_err(sql_err)?;
            tx.execute_batch(&format!("PRAGMA user_version = {};", v + 1))
                .map_err(sql_err)?;
            tx.commit().map_err(sql_err)?;
        }
        Ok(())
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql_err)
    }

    /// Test support: overwrite the schema version.
    #[doc(hidden)]
    pub fn debug_set_schema_version(&mut self, v: u32) -> Result<(), StoreError> {
        self.conn
            .execute_batch(&format!("PRAGMA user_version = {v};"))
            .map_err(sql_err)
    }

    /// Whether the file is encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.encrypted
    }

    /// The SQLCipher version doing the encryption (`None` for a store opened without
    /// a key). A store opened with a key always has one: without SQLCipher,
    /// [`open`](Self::open) fails with [`StoreError::EncryptionUnavailable`].
    pub fn cipher_version(&self) -> Option<String> {
        if self.encrypted {
            cipher_version(&self.conn)
        } else {
            None
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run `f` in one write transaction (`BEGIN IMMEDIATE`): everything it does commits
    /// together, or, if it returns an error, nothing does. Nested calls join the
    /// outer transaction.
    pub fn transaction<T, E: From<StoreError>>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, E>,
    ) -> Result<T, E> {
        if self.depth > 0 {
            self.depth += 1;
            let r = f(self);
            self.depth -= 1;
            return r;
        }
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(sql_err)?;
        self.depth = 1;
        let r = f(self);
        self.depth = 0;
        match r {
            Ok(v) => match self.conn.execute_batch("COMMIT") {
                Ok(()) => Ok(v),
                Err(e) => {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    Err(sql_err(e).into())
                }
            },
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_cipher_is_refused() {
        assert_eq!(require_cipher(None), Err(StoreError::EncryptionUnavailable));
        assert_eq!(require_cipher(Some("4.6.1".into())), Ok("4.6.1".into()));
        // Plain SQLite answers the pragma with no row: the probe says None.
        let conn = Connection::open_in_memory().unwrap();
        assert!(
            cipher_version(&conn).is_some(),
            "this build links SQLCipher"
        );
    }
}
