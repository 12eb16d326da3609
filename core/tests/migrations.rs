//! Opening a store written by schema version 1 (a checked-in fixture, encrypted) with
//! the current code: it migrates and everything is found; the session goes on.
//!
//! `core/tests/fixtures/store-v1.db` was written by `write_fixture` below with
//! `PAWL_WRITE_FIXTURE=1 ... -- --ignored`, migrating only to version 1; `store-v1-peer.json` holds the
//! peer's side (Alice's identity and session record) so the conversation can continue.
//! Tests copy the fixture to a temp dir first: the checked-in file is never modified.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::PathBuf;

use pawl_core::keys::{IdentityKeyPair, PreKeyBundle, PreKeyRecord, SignedPreKeyRecord};
use pawl_core::sqlite::messages::{Contact, Envelope, Received};
use pawl_core::sqlite::{SqliteStore, SCHEMA_VERSION};
use pawl_core::store::*;
use pawl_core::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};

const KEY: [u8; 32] = [0x1f; 32];

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[test]
#[ignore = "regenerates the fixture: PAWL_WRITE_FIXTURE=1 cargo test --test migrations -- --ignored"]
fn write_fixture() {
    assert!(
        std::env::var_os("PAWL_WRITE_FIXTURE").is_some(),
        "set PAWL_WRITE_FIXTURE=1 to overwrite the fixture"
    );
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    std::fs::create_dir_all(fixtures()).unwrap();
    let path = fixtures().join("store-v1.db");
    let _ = std::fs::remove_file(&path);
    let mut bob = SqliteStore::open_to_version(&path, Some(&KEY), 1).unwrap();
    assert_eq!(bob.schema_version().unwrap(), 1);
    let bob_id = IdentityKeyPair::generate(&mut rng);
    bob.set_local_identity(&bob_id, 1234).unwrap();
    let spk = SignedPreKeyRecord::generate(1, 1_700_000_000_000, &bob_id, &mut rng);
    bob.save_signed_pre_key(&spk).unwrap();
    for id in 1..=3 {
        bob.save_pre_key(&PreKeyRecord::generate(id, &mut rng))
            .unwrap();
    }
    let pk1 = bob.get_pre_key(1).unwrap().unwrap();
    bob.upsert_contact(&Contact {
        name: "alice".into(),
        display_name: Some("Alice Liddell".into()),
        phone: Some("+441234567".into()),
    })
    .unwrap();
    bob.add_device("alice", 1, 4321).unwrap();
    let alice_id = IdentityKeyPair::generate(&mut rng);
    let mut alice = InMemProtocolStore::new(alice_id.clone(), 4321);
    let (aa, ba) = (
        ProtocolAddress::new("alice", 1),
        ProtocolAddress::new("bob", 1),
    );
    let bundle = PreKeyBundle::from_records(1234, 1, *bob_id.identity_key(), &spk, Some(&pk1));
    process_prekey_bundle(&mut alice, &ba, &bundle, &mut rng).unwrap();
    for i in 0..5 {
        let m = message_encrypt(
            &mut alice,
            &ba,
            format!("old message {i} about teapots").as_bytes(),
        )
        .unwrap();
        let id = format!("e{i}");
        bob.receive(
            &aa,
            &Envelope {
                id: id.as_bytes(),
                message_type: m.message_type(),
                ciphertext: m.serialized(),
                sent_at: 1000 + i,
            },
            2000,
            &mut rng,
        )
        .unwrap();
    }
    // Bob answers so that both sides are past the PreKey phase.
    // (v1 has no outbox: the reply goes through the protocol store API.)
    let out = message_encrypt(&mut bob, &aa, b"reply from v1").unwrap();
    message_decrypt_signal(
        &mut alice,
        &ba,
        &SignalMessage::parse(out.serialized()).unwrap(),
        &mut rng,
    )
    .unwrap();
    drop(bob);
    let peer = json!({
        "alice_identity_private": hex::encode(alice_id.private_key().to_bytes()),
        "alice_session_with_bob": hex::encode(alice.load_session(&ba).unwrap().unwrap().serialize()),
        "bob_identity_public": hex::encode(bob_id.identity_key().serialize()),
    });
    std::fs::write(
        fixtures().join("store-v1-peer.json"),
        serde_json::to_string_pretty(&peer).unwrap(),
    )
    .unwrap();
}

#[test]
fn v1_store_opens_migrates_and_continues() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("store.db");
    std::fs::copy(fixtures().join("store-v1.db"), &path).expect("fixture present");
    let peer: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("store-v1-peer.json")).unwrap(),
    )
    .unwrap();
    let h = |k: &str| hex::decode(peer[k].as_str().unwrap()).unwrap();

    // The fixture really is version 1 (and opening it at version 1 changes nothing).
    assert_eq!(
        SqliteStore::open_to_version(&path, Some(&KEY), 1)
            .unwrap()
            .schema_version()
            .unwrap(),
        1
    );
    let mut bob = SqliteStore::open(&path, Some(&KEY)).unwrap();
    assert_eq!(bob.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(
        bob.identity_key_pair()
            .unwrap()
            .identity_key()
            .serialize()
            .to_vec(),
        h("bob_identity_public")
    );
    assert_eq!(bob.local_registration_id().unwrap(), 1234);
    assert!(bob.get_pre_key(1).unwrap().is_none(), "consumed in v1");
    assert!(bob.get_pre_key(2).unwrap().is_some() && bob.get_pre_key(3).unwrap().is_some());
    assert_eq!(
        bob.get_signed_pre_key(1).unwrap().unwrap().timestamp,
        1_700_000_000_000
    );
    assert_eq!(
        bob.contact("alice")
            .unwrap()
            .unwrap()
            .display_name
            .as_deref(),
        Some("Alice Liddell")
    );
    assert_eq!(bob.devices("alice").unwrap(), vec![1]);
    let chat = bob.chat_id("alice").unwrap();
    let msgs = bob.latest_messages(chat, 100).unwrap();
    assert_eq!(msgs.len(), 5);
    assert_eq!(msgs[0].body, b"old message 4 about teapots");
    assert_eq!((msgs[4].sent_at, msgs[4].received_at), (1000, Some(2000)));
    assert_eq!(
        bob.unread_count(chat).unwrap(),
        5,
        "migration 2's unread index sees v1 rows"
    );
    // Migration 2 built the search index over the v1 messages.
    assert_eq!(bob.search("teapots", 10).unwrap().len(), 5);
    // The outbox table is new and empty.
    assert!(bob.outbox().unwrap().is_empty());

    // The conversation continues from the v1 session on both sides.
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let alice_id = IdentityKeyPair::from_private(
        PrivateKey::from_bytes(&h("alice_identity_private")).unwrap(),
    );
    let mut alice = InMemProtocolStore::new(alice_id, 4321);
    let (aa, ba) = (
        ProtocolAddress::new("alice", 1),
        ProtocolAddress::new("bob", 1),
    );
    alice
        .store_session(
            &ba,
            &SessionRecord::deserialize(&h("alice_session_with_bob")).unwrap(),
        )
        .unwrap();
    let m = message_encrypt(&mut alice, &ba, b"after the upgrade").unwrap();
    assert_eq!(m.message_type(), 2);
    let r = bob
        .receive(
            &aa,
            &Envelope {
                id: b"new",
                message_type: 2,
                ciphertext: m.serialized(),
                sent_at: 0,
            },
            0,
            &mut rng,
        )
        .unwrap();
    assert!(matches!(r, Received::New(ref x) if x.body == b"after the upgrade"));
    let (_, out) = bob.send(&aa, b"and back", 1).unwrap();
    assert_eq!(
        message_decrypt_signal(
            &mut alice,
            &ba,
            &SignalMessage::parse(&out.payload).unwrap(),
            &mut rng
        )
        .unwrap(),
        b"and back"
    );
    // Redelivery of an envelope stored under v1 is still recognised.
    let again = bob
        .receive(
            &aa,
            &Envelope {
                id: b"e3",
                message_type: 3,
                ciphertext: b"ignored",
                sent_at: 0,
            },
            0,
            &mut rng,
        )
        .unwrap();
    assert!(matches!(again, Received::Duplicate { .. }));
    drop(bob);
    // Reopening does not migrate again.
    assert_eq!(
        SqliteStore::open(&path, Some(&KEY))
            .unwrap()
            .schema_version()
            .unwrap(),
        SCHEMA_VERSION
    );
}

#[test]
fn newer_schema_is_refused_without_change() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("future.db");
    {
        let s = SqliteStore::open(&path, Some(&KEY)).unwrap();
        drop(s);
        let c = rusqlite_free_bump(&path);
        assert!(c);
    }
    let before = std::fs::read(&path).unwrap();
    assert_eq!(
        SqliteStore::open(&path, Some(&KEY)).unwrap_err(),
        StoreError::NewerSchema {
            found: SCHEMA_VERSION + 1,
            supported: SCHEMA_VERSION
        }
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

/// Bump the schema version past what this build knows, through the store's own
/// transaction API (no direct SQL access from tests).
fn rusqlite_free_bump(path: &std::path::Path) -> bool {
    let mut s = SqliteStore::open(path, Some(&KEY)).unwrap();
    s.debug_set_schema_version(SCHEMA_VERSION + 1).is_ok()
}
