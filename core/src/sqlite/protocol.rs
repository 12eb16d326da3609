//! The protocol store traits on SQLite. Records are stored in their canonical
//! protobuf encoding; every statement is prepared once and cached.

use rusqlite::{params, OptionalExtension};
use subtle::ConstantTimeEq;

use super::{sql_err, SqliteStore};
use crate::address::ProtocolAddress;
use crate::error::StoreError;
use crate::group::SenderKeyRecord;
use crate::keys::{IdentityKey, IdentityKeyPair, PreKeyRecord, PrivateKey, SignedPreKeyRecord};
use crate::session::SessionRecord;
use crate::store::{
    trust_decision, Direction, IdentityChange, IdentityKeyStore, PreKeyStore, SenderKeyStore,
    SessionStore, SignedPreKeyStore,
};

const TOFU_SETTING: &str = "trust_on_first_use";

impl SqliteStore {
    /// Store this device's identity and registration id (once, at device setup).
    /// Replacing an existing identity is refused: it would orphan every session.
    pub fn set_local_identity(
        &mut self,
        identity: &IdentityKeyPair,
        registration_id: u32,
    ) -> Result<(), StoreError> {
        let existing: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT private_key FROM local_identity WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql_err)?;
        if let Some(mut k) = existing {
            let same = bool::from(k.as_slice().ct_eq(&identity.private_key().to_bytes()));
            zeroize::Zeroize::zeroize(&mut k);
            return if same {
                Ok(())
            } else {
                Err(StoreError::Backend(
                    "this store already has a different identity".into(),
                ))
            };
        }
        let mut k = identity.private_key().to_bytes();
        let r = self
            .conn
            .execute(
                "INSERT INTO local_identity (id, private_key, registration_id) VALUES (1, ?1, ?2)",
                params![&k[..], registration_id],
            )
            .map(|_| ())
            .map_err(sql_err);
        zeroize::Zeroize::zeroize(&mut k);
        r
    }

    /// Set up a new device's store: an identity key, a registration id and signed
    /// prekey `signed_prekey_id` (timestamped `now_ms`), in one transaction. A store
    /// that already has an identity is left as it is. Returns whether it was new.
    pub fn ensure_identity<R: rand_core::RngCore + rand_core::CryptoRng>(
        &mut self,
        signed_prekey_id: u32,
        now_ms: u64,
        rng: &mut R,
    ) -> Result<bool, StoreError> {
        match self.identity_key_pair() {
            Ok(_) => Ok(false),
            Err(StoreError::NoIdentity) => {
                let identity = IdentityKeyPair::generate(rng);
                let registration_id = crate::keys::generate_registration_id(rng);
                let spk = SignedPreKeyRecord::generate(signed_prekey_id, now_ms, &identity, rng);
                self.transaction(|s| {
                    s.set_local_identity(&identity, registration_id)?;
                    s.save_signed_pre_key(&spk)
                })?;
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether unknown identities are trusted on first use (default: yes).
    pub fn set_trust_on_first_use(&mut self, on: bool) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO settings (key, value) VALUES (?1, ?2)",
                params![TOFU_SETTING, i64::from(on)],
            )
            .map(|_| ())
            .map_err(sql_err)
    }

    /// A value from the settings table (app and client state: account, counters).
    pub fn setting(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.blob("SELECT value FROM settings WHERE key = ?1", [key])
    }

    /// Set a value in the settings table.
    pub fn set_setting(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.exec(
            "INSERT OR REPLACE INTO settings (key, value) VALUES (?1, ?2)",
            params![key, value],
        )
        .map(|_| ())
    }

    /// Every setting whose key starts with `prefix`, in key order.
    pub fn settings_with_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        // Keys are compared as text: [prefix, prefix + U+FFFF) holds every extension.
        let end = format!("{prefix}\u{ffff}");
        self.conn
            .prepare_cached(
                "SELECT key, value FROM settings WHERE key >= ?1 AND key < ?2 ORDER BY key",
            )
            .and_then(|mut s| {
                s.query_map(params![prefix, end], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })
            .map_err(sql_err)
    }

    /// Remove a setting.
    pub fn delete_setting(&mut self, key: &str) -> Result<(), StoreError> {
        self.exec("DELETE FROM settings WHERE key = ?1", [key])
            .map(|_| ())
    }

    fn trust_on_first_use(&self) -> Result<bool, StoreError> {
        let v: Option<i64> = self
            .conn
            .prepare_cached("SELECT value FROM settings WHERE key = ?1")
            .and_then(|mut s| s.query_row([TOFU_SETTING], |r| r.get(0)).optional())
            .map_err(sql_err)?;
        Ok(v.unwrap_or(1) != 0)
    }

    fn blob(&self, sql: &str, p: impl rusqlite::Params) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut s| s.query_row(p, |r| r.get(0)).optional())
            .map_err(sql_err)
    }

    fn exec(&self, sql: &str, p: impl rusqlite::Params) -> Result<usize, StoreError> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut s| s.execute(p))
            .map_err(sql_err)
    }
}

impl IdentityKeyStore for SqliteStore {
    fn identity_key_pair(&self) -> Result<IdentityKeyPair, StoreError> {
        let mut k = self
            .blob("SELECT private_key FROM local_identity WHERE id = 1", [])?
            .ok_or(StoreError::NoIdentity)?;
        let p = PrivateKey::from_bytes(&k)
            .map_err(|_| StoreError::Backend("stored identity key is malformed".into()));
        zeroize::Zeroize::zeroize(&mut k);
        Ok(IdentityKeyPair::from_private(p?))
    }
    fn local_registration_id(&self) -> Result<u32, StoreError> {
        self.conn
            .prepare_cached("SELECT registration_id FROM local_identity WHERE id = 1")
            .and_then(|mut s| s.query_row([], |r| r.get(0)).optional())
            .map_err(sql_err)?
            .ok_or(StoreError::NoIdentity)
    }
    fn save_identity(
        &mut self,
        a: &ProtocolAddress,
        id: &IdentityKey,
    ) -> Result<IdentityChange, StoreError> {
        let old = self.get_identity(a)?;
        if old.as_ref() == Some(id) {
            return Ok(IdentityChange::NewOrUnchanged);
        }
        self.exec(
            "INSERT OR REPLACE INTO identities (name, device_id, identity_key) VALUES (?1, ?2, ?3)",
            params![a.name, a.device_id, &id.serialize()[..]],
        )?;
        Ok(if old.is_some() {
            IdentityChange::ReplacedExisting
        } else {
            IdentityChange::NewOrUnchanged
        })
    }
    fn forget_identity(&mut self, a: &ProtocolAddress) -> Result<(), StoreError> {
        self.exec(
            "DELETE FROM identities WHERE name = ?1 AND device_id = ?2",
            params![a.name, a.device_id],
        )
        .map(|_| ())
    }
    fn is_trusted_identity(
        &self,
        a: &ProtocolAddress,
        id: &IdentityKey,
        _d: Direction,
    ) -> Result<bool, StoreError> {
        Ok(trust_decision(
            self.get_identity(a)?.as_ref(),
            id,
            self.trust_on_first_use()?,
        ))
    }
    fn get_identity(&self, a: &ProtocolAddress) -> Result<Option<IdentityKey>, StoreError> {
        self.blob(
            "SELECT identity_key FROM identities WHERE name = ?1 AND device_id = ?2",
            params![a.name, a.device_id],
        )?
        .map(|b| {
            IdentityKey::from_bytes(&b)
                .map_err(|_| StoreError::Backend("stored identity key is malformed".into()))
        })
        .transpose()
    }
}

impl PreKeyStore for SqliteStore {
    fn get_pre_key(&self, id: u32) -> Result<Option<PreKeyRecord>, StoreError> {
        self.blob("SELECT record FROM prekeys WHERE id = ?1", [id])?
            .map(|b| Ok(PreKeyRecord::deserialize(&b)?))
            .transpose()
    }
    fn save_pre_key(&mut self, r: &PreKeyRecord) -> Result<(), StoreError> {
        self.exec(
            "INSERT OR REPLACE INTO prekeys (id, record) VALUES (?1, ?2)",
            params![r.id, r.serialize()],
        )
        .map(|_| ())
    }
    fn remove_pre_key(&mut self, id: u32) -> Result<(), StoreError> {
        self.exec("DELETE FROM prekeys WHERE id = ?1", [id])
            .map(|_| ())
    }
}

impl SignedPreKeyStore for SqliteStore {
    fn get_signed_pre_key(&self, id: u32) -> Result<Option<SignedPreKeyRecord>, StoreError> {
        self.blob("SELECT record FROM signed_prekeys WHERE id = ?1", [id])?
            .map(|b| Ok(SignedPreKeyRecord::deserialize(&b)?))
            .transpose()
    }
    fn save_signed_pre_key(&mut self, r: &SignedPreKeyRecord) -> Result<(), StoreError> {
        self.exec(
            "INSERT OR REPLACE INTO signed_prekeys (id, record) VALUES (?1, ?2)",
            params![r.id, r.serialize()],
        )
        .map(|_| ())
    }
}

impl SessionStore for SqliteStore {
    fn load_session(&self, a: &ProtocolAddress) -> Result<Option<SessionRecord>, StoreError> {
        self.blob(
            "SELECT record FROM sessions WHERE name = ?1 AND device_id = ?2",
            params![a.name, a.device_id],
        )?
        .map(|b| Ok(SessionRecord::deserialize(&b)?))
        .transpose()
    }
    fn store_session(&mut self, a: &ProtocolAddress, r: &SessionRecord) -> Result<(), StoreError> {
        self.exec(
            "INSERT OR REPLACE INTO sessions (name, device_id, record) VALUES (?1, ?2, ?3)",
            params![a.name, a.device_id, r.serialize()],
        )
        .map(|_| ())
    }
}

impl SenderKeyStore for SqliteStore {
    fn load_sender_key(
        &self,
        s: &ProtocolAddress,
        d: &[u8],
    ) -> Result<Option<SenderKeyRecord>, StoreError> {
        self.blob(
            "SELECT record FROM sender_keys WHERE name = ?1 AND device_id = ?2 AND distribution_id = ?3",
            params![s.name, s.device_id, d],
        )?
        .map(|b| Ok(SenderKeyRecord::deserialize(&b)?))
        .transpose()
    }
    fn store_sender_key(
        &mut self,
        s: &ProtocolAddress,
        d: &[u8],
        r: &SenderKeyRecord,
    ) -> Result<(), StoreError> {
        self.exec(
            "INSERT OR REPLACE INTO sender_keys (name, device_id, distribution_id, record) VALUES (?1, ?2, ?3, ?4)",
            params![s.name, s.device_id, d, r.serialize()],
        )
        .map(|_| ())
    }
}
