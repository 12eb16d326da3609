//! One conformance suite for every store backend: in-memory, SQLite plain, SQLite
//! encrypted (SQLCipher). Each backend runs the same checks through the store traits
//! and a whole conversation through the protocol functions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use pawl_core::keys::{IdentityKeyPair, PreKeyBundle, PreKeyRecord, SignedPreKeyRecord};
use pawl_core::sqlite::SqliteStore;
use pawl_core::store::*;
use pawl_core::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// A backend under test plus whatever keeps it alive (a temp dir).
trait Backend: ProtocolStore + SenderKeyStore {}
impl<T: ProtocolStore + SenderKeyStore> Backend for T {}

fn identities(store: &mut impl Backend) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let a = ProtocolAddress::new("+15550001", 1);
    let k1 = IdentityKey::new(KeyPair::generate(&mut rng).public);
    let k2 = IdentityKey::new(KeyPair::generate(&mut rng).public);
    assert_eq!(store.get_identity(&a).unwrap(), None);
    assert!(
        store
            .is_trusted_identity(&a, &k1, Direction::Receiving)
            .unwrap(),
        "trust on first use"
    );
    assert_eq!(
        store.save_identity(&a, &k1).unwrap(),
        IdentityChange::NewOrUnchanged
    );
    assert_eq!(
        store.save_identity(&a, &k1).unwrap(),
        IdentityChange::NewOrUnchanged
    );
    assert!(store
        .is_trusted_identity(&a, &k1, Direction::Sending)
        .unwrap());
    assert!(
        !store
            .is_trusted_identity(&a, &k2, Direction::Sending)
            .unwrap(),
        "changed key untrusted"
    );
    assert!(
        store
            .is_trusted_identity(
                &ProtocolAddress::new("+15550001", 2),
                &k2,
                Direction::Sending
            )
            .unwrap(),
        "per device"
    );
    assert_eq!(
        store.save_identity(&a, &k2).unwrap(),
        IdentityChange::ReplacedExisting
    );
    assert_eq!(store.get_identity(&a).unwrap(), Some(k2));
    store.forget_identity(&a).unwrap();
    assert_eq!(store.get_identity(&a).unwrap(), None);
    let me = store.identity_key_pair().unwrap();
    assert_eq!(me.public_key(), &me.private_key().public_key());
    assert!(store.local_registration_id().unwrap() > 0);
}

fn prekeys(store: &mut impl Backend) {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    assert!(store.get_pre_key(5).unwrap().is_none());
    let pk = PreKeyRecord::generate(5, &mut rng);
    store.save_pre_key(&pk).unwrap();
    let back = store.get_pre_key(5).unwrap().unwrap();
    assert_eq!(
        (
            back.id,
            back.key_pair.public,
            back.key_pair.private.to_bytes()
        ),
        (5, pk.key_pair.public, pk.key_pair.private.to_bytes())
    );
    store.remove_pre_key(5).unwrap();
    store.remove_pre_key(5).unwrap(); // unknown id: not an error
    assert!(store.get_pre_key(5).unwrap().is_none());
    let id = store.identity_key_pair().unwrap();
    let spk = SignedPreKeyRecord::generate(9, 123, &id, &mut rng);
    store.save_signed_pre_key(&spk).unwrap();
    let back = store.get_signed_pre_key(9).unwrap().unwrap();
    assert_eq!(
        (back.timestamp, back.signature, back.key_pair.public),
        (123, spk.signature, spk.key_pair.public)
    );
    assert!(store.get_signed_pre_key(10).unwrap().is_none());
}

fn sessions_and_sender_keys(store: &mut impl Backend) {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let a = ProtocolAddress::new("bob", 3);
    assert!(store.load_session(&a).unwrap().is_none());
    let mut sk = SenderKeyRecord::new();
    sk.rotate(&mut rng);
    store.store_sender_key(&a, b"g1", &sk).unwrap();
    assert_eq!(
        store
            .load_sender_key(&a, b"g1")
            .unwrap()
            .unwrap()
            .serialize(),
        sk.serialize()
    );
    assert!(store.load_sender_key(&a, b"g2").unwrap().is_none());
    assert!(store
        .load_sender_key(&ProtocolAddress::new("bob", 4), b"g1")
        .unwrap()
        .is_none());
}

/// A whole conversation between two devices on this backend (and an in-memory peer).
fn conversation(alice: &mut impl Backend) {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let bob_id = IdentityKeyPair::generate(&mut rng);
    let mut bob = InMemProtocolStore::new(bob_id.clone(), 77);
    let spk = SignedPreKeyRecord::generate(1, 0, &bob_id, &mut rng);
    let pk = PreKeyRecord::generate(1, &mut rng);
    bob.save_signed_pre_key(&spk).unwrap();
    bob.save_pre_key(&pk).unwrap();
    let (aa, ba) = (
        ProtocolAddress::new("alice", 1),
        ProtocolAddress::new("bob", 1),
    );
    let bundle = PreKeyBundle::from_records(77, 1, *bob_id.identity_key(), &spk, Some(&pk));
    process_prekey_bundle(alice, &ba, &bundle, &mut rng).unwrap();
    for i in 0..5 {
        let m = message_encrypt(alice, &ba, format!("a{i}").as_bytes()).unwrap();
        assert_eq!(
            message_decrypt(&mut bob, &aa, &m, &mut rng).unwrap(),
            format!("a{i}").as_bytes()
        );
        let r = message_encrypt(&mut bob, &aa, format!("b{i}").as_bytes()).unwrap();
        assert_eq!(
            message_decrypt(alice, &ba, &r, &mut rng).unwrap(),
            format!("b{i}").as_bytes()
        );
    }
    // A replay and a tampered message change nothing on this backend either.
    let r = message_encrypt(&mut bob, &aa, b"once").unwrap();
    let before = alice.load_session(&ba).unwrap().unwrap().serialize();
    let mut bad = r.serialized().to_vec();
    *bad.last_mut().unwrap() ^= 1;
    let bad = CiphertextMessage::Signal(SignalMessage::parse(&bad).unwrap());
    assert_eq!(
        message_decrypt(alice, &ba, &bad, &mut rng),
        Err(SessionError::InvalidMac)
    );
    assert_eq!(
        alice.load_session(&ba).unwrap().unwrap().serialize(),
        before
    );
    assert_eq!(message_decrypt(alice, &ba, &r, &mut rng).unwrap(), b"once");
    assert!(matches!(
        message_decrypt(alice, &ba, &r, &mut rng),
        Err(SessionError::DuplicateMessage { .. })
    ));
}

macro_rules! conformance {
    ($name:ident, $make:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn identities() {
                let (mut s, _keep) = $make;
                super::identities(&mut s);
            }
            #[test]
            fn prekeys() {
                let (mut s, _keep) = $make;
                super::prekeys(&mut s);
            }
            #[test]
            fn sessions_and_sender_keys() {
                let (mut s, _keep) = $make;
                super::sessions_and_sender_keys(&mut s);
            }
            #[test]
            fn conversation() {
                let (mut s, _keep) = $make;
                super::conversation(&mut s);
            }
        }
    };
}

fn sqlite(key: Option<[u8; 32]>) -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(&dir.path().join("store.db"), key.as_ref()).unwrap();
    s.set_local_identity(
        &IdentityKeyPair::generate(&mut ChaCha20Rng::seed_from_u64(9)),
        4242,
    )
    .unwrap();
    (s, dir)
}

conformance!(
    in_memory,
    (
        InMemProtocolStore::new(
            IdentityKeyPair::generate(&mut ChaCha20Rng::seed_from_u64(9)),
            4242
        ),
        ()
    )
);
conformance!(sqlite_plain, sqlite(None));
conformance!(sqlite_encrypted, sqlite(Some([0x5a; 32])));
