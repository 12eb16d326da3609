//! The SQLite store on real files: encryption at rest (raw bytes searched), wrong key,
//! atomic receive and send, duplicates, paging, unread counts, search, receipts, outbox.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::Path;

use pawl_core::keys::{IdentityKeyPair, PreKeyBundle, PreKeyRecord, SignedPreKeyRecord};
use pawl_core::sqlite::messages::{Contact, Envelope, MessageDirection, MessageStatus, Received};
use pawl_core::sqlite::{SqliteStore, SCHEMA_VERSION};
use pawl_core::store::*;
use pawl_core::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const KEY: [u8; 32] = [0x42; 32];

/// Alice (in memory) and Bob (SQLite at `path`) with a session from Alice to Bob.
struct Pair {
    alice: InMemProtocolStore,
    aa: ProtocolAddress,
    ba: ProtocolAddress,
    rng: ChaCha20Rng,
}

fn setup(path: &Path, key: Option<&[u8; 32]>) -> (Pair, SqliteStore) {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let bob_id = IdentityKeyPair::generate(&mut rng);
    let mut bob = SqliteStore::open(path, key).unwrap();
    bob.set_local_identity(&bob_id, 99).unwrap();
    let spk = SignedPreKeyRecord::generate(1, 0, &bob_id, &mut rng);
    let pk = PreKeyRecord::generate(1, &mut rng);
    bob.save_signed_pre_key(&spk).unwrap();
    bob.save_pre_key(&pk).unwrap();
    let mut alice = InMemProtocolStore::new(IdentityKeyPair::generate(&mut rng), 11);
    let (aa, ba) = (
        ProtocolAddress::new("+14155550100", 1),
        ProtocolAddress::new("+14155550199", 1),
    );
    let bundle = PreKeyBundle::from_records(99, 1, *bob_id.identity_key(), &spk, Some(&pk));
    process_prekey_bundle(&mut alice, &ba, &bundle, &mut rng).unwrap();
    (Pair { alice, aa, ba, rng }, bob)
}

fn send(p: &mut Pair, text: &[u8]) -> (u8, Vec<u8>) {
    let m = message_encrypt(&mut p.alice, &p.ba, text).unwrap();
    (m.message_type(), m.serialized().to_vec())
}

fn env<'a>(id: &'a [u8], m: &'a (u8, Vec<u8>)) -> Envelope<'a> {
    Envelope {
        id,
        message_type: m.0,
        ciphertext: &m.1,
        sent_at: 1_700_000_000_000,
    }
}

#[test]
fn nothing_readable_in_the_raw_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bob.db");
    let (mut p, mut bob) = setup(&path, Some(&KEY));
    let secrets: Vec<Vec<u8>> = vec![
        b"the eagle lands at midnight".to_vec(),
        b"Margaret Hamilton".to_vec(),
        b"+14155550123".to_vec(),
        bob.identity_key_pair()
            .unwrap()
            .private_key()
            .to_bytes()
            .to_vec(),
        bob.get_pre_key(1)
            .unwrap()
            .unwrap()
            .key_pair
            .private
            .to_bytes()
            .to_vec(),
    ];
    bob.upsert_contact(&Contact {
        name: p.aa.name.clone(),
        display_name: Some("Margaret Hamilton".into()),
        phone: Some("+14155550123".into()),
    })
    .unwrap();
    for i in 0..50u32 {
        let m = send(&mut p, b"the eagle lands at midnight");
        let aa = p.aa.clone();
        bob.receive(&aa, &env(&i.to_be_bytes(), &m), 1, &mut p.rng)
            .unwrap();
    }
    let sess = bob.load_session(&p.aa).unwrap().unwrap().serialize();
    // Check the files both while open (WAL present) and after close.
    for phase in ["open", "closed"] {
        if phase == "closed" {
            drop(std::mem::replace(
                &mut bob,
                SqliteStore::open(&dir.path().join("other.db"), None).unwrap(),
            ));
        }
        let mut n = 0;
        for e in std::fs::read_dir(dir.path()).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().to_string();
            if !name.starts_with("bob.db") {
                continue;
            }
            let raw = std::fs::read(e.path()).unwrap();
            n += raw.len();
            for s in secrets.iter().chain(std::iter::once(&sess[..40].to_vec())) {
                assert!(
                    raw.windows(s.len()).all(|w| w != &s[..]),
                    "{phase}: {name} contains {:?}",
                    String::from_utf8_lossy(s)
                );
            }
            assert!(
                raw.windows(6).all(|w| w != b"SQLite"),
                "{phase}: {name} has a plain SQLite header"
            );
        }
        assert!(n > 10_000, "{phase}: files are there ({n} bytes)");
    }
    // The same data in a plain database is visible: the scan can fail.
    let plain = dir.path().join("plain.db");
    let (mut p2, mut b2) = setup(&plain, None);
    let m = send(&mut p2, b"the eagle lands at midnight");
    let aa = p2.aa.clone();
    b2.receive(&aa, &env(b"x", &m), 1, &mut p2.rng).unwrap();
    drop(b2);
    let raw: Vec<u8> = ["plain.db", "plain.db-wal"]
        .iter()
        .filter_map(|f| std::fs::read(dir.path().join(f)).ok())
        .flatten()
        .collect();
    assert!(
        raw.windows(27).any(|w| w == b"the eagle lands at midnight"),
        "control: plaintext visible without encryption"
    );
}

#[test]
fn wrong_key_fails_cleanly_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bob.db");
    let (_p, bob) = setup(&path, Some(&KEY));
    drop(bob);
    let before = std::fs::read(&path).unwrap();
    assert_eq!(
        SqliteStore::open(&path, Some(&[1u8; 32])).unwrap_err(),
        StoreError::WrongKey
    );
    assert_eq!(
        SqliteStore::open(&path, None).unwrap_err(),
        StoreError::WrongKey
    );
    assert_eq!(std::fs::read(&path).unwrap(), before, "file untouched");
    let s = SqliteStore::open(&path, Some(&KEY)).unwrap();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    assert!(s.get_pre_key(1).unwrap().is_some());
    // A file that is not a database at all.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![0x77u8; 8192]).unwrap();
    assert_eq!(
        SqliteStore::open(&junk, Some(&KEY)).unwrap_err(),
        StoreError::WrongKey
    );
    assert_eq!(
        std::fs::read(&junk).unwrap(),
        vec![0x77u8; 8192],
        "never recreated"
    );
}

#[test]
fn a_keyed_store_is_encrypted_by_sqlcipher() {
    // A SQLite without SQLCipher ignores `PRAGMA key`; open checks `cipher_version`
    // and refuses (the refusal itself: sqlite::tests::no_cipher_is_refused; the wasm
    // build has its own test in bindings/web).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let s = SqliteStore::open(&path, Some(&KEY)).unwrap();
    let v = s.cipher_version().expect("keyed store has a cipher");
    assert!(v.starts_with("4."), "SQLCipher 4 expected, got {v}");
    drop(s);
    let head = std::fs::read(&path).unwrap();
    assert_ne!(
        &head[..16],
        b"SQLite format 3\0",
        "header must be encrypted"
    );
    let plain = SqliteStore::open(&dir.path().join("p.db"), None).unwrap();
    assert_eq!(plain.cipher_version(), None);
}

#[test]
fn receive_is_atomic_deduplicated_and_pageable() {
    let dir = tempfile::tempdir().unwrap();
    let (mut p, mut bob) = setup(&dir.path().join("bob.db"), Some(&KEY));
    let aa = p.aa.clone();
    let msgs: Vec<_> = (0..30)
        .map(|i| send(&mut p, format!("message {i}").as_bytes()))
        .collect();
    // Out of order, then everything again (redelivery).
    let order: Vec<usize> = (0..30).rev().collect();
    for &i in &order {
        let r = bob
            .receive(
                &aa,
                &env(&(i as u32).to_be_bytes(), &msgs[i]),
                5,
                &mut p.rng,
            )
            .unwrap();
        assert!(matches!(r, Received::New(ref m) if m.text() == Some(&format!("message {i}"))));
    }
    for (i, m) in msgs.iter().enumerate() {
        let r = bob
            .receive(&aa, &env(&(i as u32).to_be_bytes(), m), 5, &mut p.rng)
            .unwrap();
        assert!(
            matches!(r, Received::Duplicate { .. }),
            "redelivery of {i} must not decrypt again"
        );
    }
    let chat = bob.chat_id(&aa.name).unwrap();
    assert_eq!(bob.unread_count(chat).unwrap(), 30);
    let latest = bob.latest_messages(chat, 10).unwrap();
    assert_eq!(latest.len(), 10);
    assert_eq!(
        latest[0].text(),
        Some("message 0"),
        "newest stored first (received last)"
    );
    assert!(latest.windows(2).all(|w| w[0].id > w[1].id));
    let older = bob.messages_before(chat, latest[9].id, 100).unwrap();
    assert_eq!(older.len(), 20);
    assert!(older[0].id < latest[9].id);
    assert_eq!(bob.mark_read(chat, latest[5].id).unwrap(), 25);
    assert_eq!(bob.unread_count(chat).unwrap(), 5);
    let found = bob.search("\"message 7\"", 10).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].text(), Some("message 7"));
    assert!(bob.search("nonexistent", 10).unwrap().is_empty());
    let chats = bob.chats().unwrap();
    assert_eq!((chats.len(), chats[0].unread), (1, 5));

    // A tampered message is an error, is not stored, and the batch goes on.
    let good = send(&mut p, b"good");
    let mut bad = send(&mut p, b"bad");
    // Flip the last MAC byte of the SignalMessage (inside the PreKeySignalMessage while
    // Alice has not heard back; its envelope fields are not authenticated in v3).
    let inner = match bad.0 {
        3 => PreKeySignalMessage::parse(&bad.1)
            .unwrap()
            .message
            .serialized()
            .to_vec(),
        _ => bad.1.clone(),
    };
    let pos = bad
        .1
        .windows(inner.len())
        .position(|w| w == &inner[..])
        .unwrap()
        + inner.len()
        - 1;
    bad.1[pos] ^= 1;
    let out = bob
        .receive_batch(
            &aa,
            &[env(b"bad", &bad), env(b"good", &good)],
            6,
            &mut p.rng,
        )
        .unwrap();
    assert_eq!(out[0], Err(SessionError::InvalidMac));
    assert!(matches!(&out[1], Ok(Received::New(m)) if m.body == b"good"));
    assert_eq!(bob.latest_messages(chat, 1).unwrap()[0].body, b"good");
    // Binary bodies survive byte for byte.
    let bin = send(&mut p, &[0xff, 0x00, 0xfe, 0x80]);
    bob.receive(&aa, &env(b"bin", &bin), 7, &mut p.rng).unwrap();
    assert_eq!(
        bob.latest_messages(chat, 1).unwrap()[0].body,
        vec![0xff, 0x00, 0xfe, 0x80]
    );
}

#[test]
fn send_stores_message_and_outbox_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let (mut p, mut bob) = setup(&dir.path().join("bob.db"), Some(&KEY));
    let aa = p.aa.clone();
    let m = send(&mut p, b"hello bob");
    bob.receive(&aa, &env(b"1", &m), 1, &mut p.rng).unwrap();
    let (stored, entry) = bob.send(&aa, b"hello alice", 10).unwrap();
    assert_eq!(
        (stored.direction, stored.status),
        (MessageDirection::Outgoing, MessageStatus::Pending)
    );
    assert_eq!(bob.outbox().unwrap(), vec![entry.clone()]);
    let back = message_decrypt_signal(
        &mut p.alice,
        &p.ba,
        &SignalMessage::parse(&entry.payload).unwrap(),
        &mut p.rng,
    )
    .unwrap();
    assert_eq!(back, b"hello alice");
    bob.ack_outbox(entry.id).unwrap();
    assert!(bob.outbox().unwrap().is_empty());
    assert_eq!(
        bob.message(stored.id).unwrap().unwrap().status,
        MessageStatus::Sent
    );
    bob.add_receipt(stored.id, &aa, MessageStatus::Read, 30)
        .unwrap();
    bob.add_receipt(stored.id, &aa, MessageStatus::Delivered, 20)
        .unwrap(); // late, never moves back
    assert_eq!(
        bob.message(stored.id).unwrap().unwrap().status,
        MessageStatus::Read
    );
    assert_eq!(bob.receipts(stored.id).unwrap().len(), 2);
    assert!(
        !bob.set_status(stored.id, MessageStatus::Failed).unwrap(),
        "read message cannot fail"
    );
    // Sending to nobody fails and stores nothing.
    assert!(matches!(
        bob.send(&ProtocolAddress::new("nobody", 1), b"x", 11),
        Err(SessionError::NoSession(_))
    ));
    assert!(bob.outbox().unwrap().is_empty());
    assert_eq!(bob.chats().unwrap().len(), 1, "failed send created no chat");
}

#[test]
fn import_is_deduplicated_and_searchable() {
    use pawl_core::sqlite::messages::ImportedMessage;
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(&dir.path().join("i.db"), Some(&KEY)).unwrap();
    let msg = |i: i64| ImportedMessage {
        sender: ProtocolAddress::new("carol", 2),
        direction: MessageDirection::Incoming,
        envelope_id: Some(format!("h{i}").into_bytes()),
        body: format!("history {i} lighthouse").into_bytes(),
        sent_at: i,
        received_at: Some(i),
        status: MessageStatus::Delivered,
    };
    let batch: Vec<_> = (0..100).map(msg).collect();
    assert_eq!(s.import_messages("carol", &batch).unwrap(), 100);
    assert_eq!(
        s.import_messages("carol", &batch[..10]).unwrap(),
        0,
        "same envelope ids: ignored"
    );
    let chat = s.chat_id("carol").unwrap();
    assert_eq!(s.unread_count(chat).unwrap(), 100);
    assert_eq!(s.search("lighthouse", 500).unwrap().len(), 100);
    assert_eq!(
        s.latest_messages(chat, 1).unwrap()[0].body,
        b"history 99 lighthouse"
    );
}

#[test]
fn untrusted_old_state_in_a_batch_does_not_roll_back_earlier_messages() {
    // Alice reinstalls (new identity); Bob accepts the new key. A delayed message from
    // the old session arrives in the same batch after a message of the new session:
    // the old one is refused (its identity is no longer trusted), the new one stays
    // consumed, and the ratchet is not rolled back.
    let dir = tempfile::tempdir().unwrap();
    let (mut p, mut bob) = setup(&dir.path().join("bob.db"), Some(&KEY));
    let aa = p.aa.clone();
    let m = send(&mut p, b"old session");
    bob.receive(&aa, &env(b"o1", &m), 1, &mut p.rng).unwrap();
    let (_, out) = bob.send(&aa, b"reply", 2).unwrap();
    message_decrypt_signal(
        &mut p.alice,
        &p.ba,
        &SignalMessage::parse(&out.payload).unwrap(),
        &mut p.rng,
    )
    .unwrap();
    let delayed = send(&mut p, b"delayed from the old session");
    assert_eq!(delayed.0, 2);

    // Alice2: new identity, new session from Bob's bundle; Bob accepts the new key.
    let mut rng = ChaCha20Rng::seed_from_u64(77);
    let mut alice2 = InMemProtocolStore::new(IdentityKeyPair::generate(&mut rng), 12);
    let spk = bob.get_signed_pre_key(1).unwrap().unwrap();
    let bundle = PreKeyBundle::from_records(
        99,
        1,
        *bob.identity_key_pair().unwrap().identity_key(),
        &spk,
        None,
    );
    process_prekey_bundle(&mut alice2, &p.ba, &bundle, &mut rng).unwrap();
    bob.save_identity(&aa, alice2.identity_key_pair().unwrap().identity_key())
        .unwrap();
    let first = message_encrypt(&mut alice2, &p.ba, b"new session").unwrap();
    let first = (first.message_type(), first.serialized().to_vec());
    assert!(matches!(
        bob.receive(&aa, &env(b"n1", &first), 3, &mut rng).unwrap(),
        Received::New(_)
    ));
    let (_, out) = bob.send(&aa, b"welcome back", 4).unwrap();
    message_decrypt_signal(
        &mut alice2,
        &p.ba,
        &SignalMessage::parse(&out.payload).unwrap(),
        &mut rng,
    )
    .unwrap();
    let m2 = message_encrypt(&mut alice2, &p.ba, b"second on the new session").unwrap();
    let m2 = (m2.message_type(), m2.serialized().to_vec());
    assert_eq!(m2.0, 2);

    let out = bob
        .receive_batch(&aa, &[env(b"n2", &m2), env(b"old2", &delayed)], 5, &mut rng)
        .unwrap();
    assert!(
        matches!(&out[0], Ok(Received::New(m)) if m.body == b"second on the new session"),
        "{out:?}"
    );
    assert!(
        matches!(out[1], Err(SessionError::UntrustedIdentity(_))),
        "{out:?}"
    );
    // No rollback: the consumed message under a fresh envelope id is a duplicate.
    let r = bob.receive(&aa, &env(b"n2-again", &m2), 6, &mut rng);
    assert!(
        matches!(r, Err(SessionError::DuplicateMessage { .. })),
        "{r:?}"
    );
    let m3 = message_encrypt(&mut alice2, &p.ba, b"third").unwrap();
    let m3 = (m3.message_type(), m3.serialized().to_vec());
    assert!(matches!(
        bob.receive(&aa, &env(b"n3", &m3), 7, &mut rng).unwrap(),
        Received::New(_)
    ));
}
