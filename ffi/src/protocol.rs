//! `PawlProtocol`: the low-level Signal protocol for apps that bring their own transport
//! (publish a prekey bundle, start a session from a peer's bundle, encrypt, decrypt),
//! over an encrypted SQLite store.

use std::sync::{Arc, Mutex};

use pawl_core::error::KeyError;
use pawl_core::sqlite::SqliteStore;
use pawl_core::store::{IdentityKeyStore, PreKeyStore, SessionStore, SignedPreKeyStore};
use pawl_core::{
    CiphertextMessage, IdentityKey, PreKeyRecord, PreKeySignalMessage, ProtocolAddress, PublicKey,
    SignalMessage,
};
use rand_core::OsRng;

use crate::error::PawlError;
use crate::guard;

/// The one signed prekey this store keeps (id 1), as the relay client does.
const SIGNED_PREKEY_ID: u32 = 1;

/// A device's prekey bundle: what it publishes so others can start a session with it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PreKeyBundle {
    /// The device's registration id.
    pub registration_id: u32,
    /// The device id.
    pub device_id: u32,
    /// The one-time prekey's id, if the bundle has one.
    pub prekey_id: Option<u32>,
    /// The one-time prekey (33 bytes), if any.
    pub prekey: Option<Vec<u8>>,
    /// The signed prekey's id.
    pub signed_prekey_id: u32,
    /// The signed prekey (33 bytes).
    pub signed_prekey: Vec<u8>,
    /// The identity key's XEdDSA signature over the signed prekey (64 bytes).
    pub signed_prekey_signature: Vec<u8>,
    /// The identity key (33 bytes).
    pub identity_key: Vec<u8>,
}

/// An encrypted message: its Signal type and bytes.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Ciphertext {
    /// 3 = PreKeySignalMessage (first messages of a session), 2 = SignalMessage.
    pub message_type: u8,
    /// The serialized message.
    pub body: Vec<u8>,
}

fn key_arg(e: KeyError) -> PawlError {
    PawlError::invalid_argument(e.to_string())
}

fn to_core(b: &PreKeyBundle) -> Result<pawl_core::PreKeyBundle, PawlError> {
    let prekey = match (b.prekey_id, &b.prekey) {
        (Some(id), Some(k)) => Some((id, PublicKey::from_bytes(k).map_err(key_arg)?)),
        (None, None) => None,
        _ => {
            return Err(PawlError::invalid_argument(
                "prekey_id and prekey must both be set or both be empty",
            ))
        }
    };
    Ok(pawl_core::PreKeyBundle {
        registration_id: b.registration_id,
        device_id: b.device_id,
        prekey,
        signed_prekey_id: b.signed_prekey_id,
        signed_prekey: PublicKey::from_bytes(&b.signed_prekey).map_err(key_arg)?,
        signed_prekey_signature: b.signed_prekey_signature.clone(),
        identity_key: IdentityKey::from_bytes(&b.identity_key).map_err(key_arg)?,
    })
}

fn from_core(b: &pawl_core::PreKeyBundle) -> PreKeyBundle {
    PreKeyBundle {
        registration_id: b.registration_id,
        device_id: b.device_id,
        prekey_id: b.prekey.map(|(id, _)| id),
        prekey: b.prekey.map(|(_, k)| k.serialize().to_vec()),
        signed_prekey_id: b.signed_prekey_id,
        signed_prekey: b.signed_prekey.serialize().to_vec(),
        signed_prekey_signature: b.signed_prekey_signature.clone(),
        identity_key: b.identity_key.serialize().to_vec(),
    }
}

/// One device's protocol state (identity, prekeys, sessions) in an encrypted database.
#[derive(uniffi::Object)]
pub struct PawlProtocol {
    store: Mutex<SqliteStore>,
}

impl std::fmt::Debug for PawlProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PawlProtocol").finish_non_exhaustive()
    }
}

impl PawlProtocol {
    fn with<T>(
        &self,
        f: impl FnOnce(&mut SqliteStore) -> Result<T, PawlError>,
    ) -> Result<T, PawlError> {
        let mut s = self.store.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut s)
    }
}

#[uniffi::export]
impl PawlProtocol {
    /// Open (or create) the database at `db_path` with its 32-byte key. A new database
    /// gets an identity key, a registration id and a signed prekey.
    #[uniffi::constructor]
    pub fn open(db_path: String, db_key: Vec<u8>) -> Result<Arc<Self>, PawlError> {
        guard(|| {
            let key = <[u8; 32]>::try_from(db_key.as_slice()).map_err(|_| {
                PawlError::invalid_argument(format!(
                    "the database key must be 32 bytes, got {}",
                    db_key.len()
                ))
            })?;
            let mut store = SqliteStore::open(std::path::Path::new(&db_path), Some(&key))?;
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            store.ensure_identity(SIGNED_PREKEY_ID, now_ms, &mut OsRng)?;
            Ok(Arc::new(PawlProtocol {
                store: Mutex::new(store),
            }))
        })
    }

    /// This device's public identity key (33 bytes).
    pub fn identity_key(&self) -> Result<Vec<u8>, PawlError> {
        guard(|| self.with(|s| Ok(s.identity_key_pair()?.identity_key().serialize().to_vec())))
    }

    /// This device's registration id.
    pub fn registration_id(&self) -> Result<u32, PawlError> {
        guard(|| self.with(|s| Ok(s.local_registration_id()?)))
    }

    /// The bundle to publish for `device_id`. With `one_time_prekey_id`, a new one-time
    /// prekey with that id is generated, stored and included (it is used up by the
    /// first session started from it; publish each id once).
    pub fn prekey_bundle(
        &self,
        device_id: u32,
        one_time_prekey_id: Option<u32>,
    ) -> Result<PreKeyBundle, PawlError> {
        guard(|| {
            self.with(|s| {
                s.transaction(|s| {
                    let identity = s.identity_key_pair()?;
                    let registration_id = s.local_registration_id()?;
                    let signed = s
                        .get_signed_pre_key(SIGNED_PREKEY_ID)?
                        .ok_or_else(|| PawlError::internal("this store has no signed prekey"))?;
                    let one_time = match one_time_prekey_id {
                        Some(id) => {
                            let r = PreKeyRecord::generate(id, &mut OsRng);
                            s.save_pre_key(&r)?;
                            Some(r)
                        }
                        None => None,
                    };
                    Ok(from_core(&pawl_core::PreKeyBundle::from_records(
                        registration_id,
                        device_id,
                        *identity.identity_key(),
                        &signed,
                        one_time.as_ref(),
                    )))
                })
            })
        })
    }

    /// Start a session with device `device_id` of `name` from its bundle (verifies the
    /// signature; trusts the identity on first use, `UntrustedIdentity` if it changed).
    pub fn process_prekey_bundle(
        &self,
        name: String,
        device_id: u32,
        bundle: PreKeyBundle,
    ) -> Result<(), PawlError> {
        guard(|| {
            let bundle = to_core(&bundle)?;
            let addr = ProtocolAddress::new(name, device_id);
            self.with(|s| {
                s.transaction(|s| {
                    Ok(pawl_core::process_prekey_bundle(
                        s, &addr, &bundle, &mut OsRng,
                    )?)
                })
            })
        })
    }

    /// Whether a session with this device exists.
    pub fn has_session(&self, name: String, device_id: u32) -> Result<bool, PawlError> {
        guard(|| {
            let addr = ProtocolAddress::new(name, device_id);
            self.with(|s| Ok(s.load_session(&addr)?.is_some()))
        })
    }

    /// Encrypt for the device (a session must exist). The new ratchet state is stored
    /// before this returns.
    pub fn encrypt(
        &self,
        name: String,
        device_id: u32,
        plaintext: Vec<u8>,
    ) -> Result<Ciphertext, PawlError> {
        guard(|| {
            let addr = ProtocolAddress::new(name, device_id);
            self.with(|s| {
                s.transaction(|s| {
                    let m = pawl_core::message_encrypt(s, &addr, &plaintext)?;
                    Ok(Ciphertext {
                        message_type: m.message_type(),
                        body: m.serialized().to_vec(),
                    })
                })
            })
        })
    }

    /// Decrypt a message from the device. A failed decrypt changes nothing; a replayed
    /// message fails with `DuplicateMessage`.
    pub fn decrypt(
        &self,
        name: String,
        device_id: u32,
        ciphertext: Ciphertext,
    ) -> Result<Vec<u8>, PawlError> {
        guard(|| {
            let msg = match ciphertext.message_type {
                2 => CiphertextMessage::Signal(SignalMessage::parse(&ciphertext.body)?),
                3 => CiphertextMessage::PreKey(PreKeySignalMessage::parse(&ciphertext.body)?),
                t => {
                    return Err(PawlError::invalid_argument(format!(
                        "unknown message type {t} (2 = SignalMessage, 3 = PreKeySignalMessage)"
                    )))
                }
            };
            let addr = ProtocolAddress::new(name, device_id);
            self.with(|s| {
                s.transaction(|s| Ok(pawl_core::message_decrypt(s, &addr, &msg, &mut OsRng)?))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn two_devices_talk_over_their_own_transport() {
        let dir = tempfile::tempdir().unwrap();
        let open = |n: &str| {
            PawlProtocol::open(dir.path().join(n).display().to_string(), vec![7; 32]).unwrap()
        };
        let (alice, bob) = (open("a.db"), open("b.db"));
        let bundle = bob.prekey_bundle(1, Some(42)).unwrap();
        assert_eq!(bundle.prekey_id, Some(42));
        alice
            .process_prekey_bundle("bob".into(), 1, bundle)
            .unwrap();
        assert!(alice.has_session("bob".into(), 1).unwrap());
        let c = alice.encrypt("bob".into(), 1, b"hi".to_vec()).unwrap();
        assert_eq!(c.message_type, 3);
        assert_eq!(bob.decrypt("alice".into(), 1, c.clone()).unwrap(), b"hi");
        let e = bob.decrypt("alice".into(), 1, c).unwrap_err();
        assert_eq!(e.code(), crate::codes::DUPLICATE_MESSAGE, "{e}");
        let r = bob.encrypt("alice".into(), 1, b"yo".to_vec()).unwrap();
        assert_eq!(r.message_type, 2);
        assert_eq!(alice.decrypt("bob".into(), 1, r).unwrap(), b"yo");
        let bad = Ciphertext {
            message_type: 9,
            body: vec![],
        };
        assert_eq!(
            alice.decrypt("bob".into(), 1, bad).unwrap_err().code(),
            crate::codes::INVALID_ARGUMENT
        );
        assert_eq!(
            alice
                .encrypt("carol".into(), 1, b"x".to_vec())
                .unwrap_err()
                .code(),
            crate::codes::NO_SESSION
        );
    }
}
