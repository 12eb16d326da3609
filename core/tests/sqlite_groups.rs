//! Groups in the SQLite store, on real files: the update rules (who may change what,
//! versions), the atomic group send (the key once per device, rotation when a device
//! leaves), and a receiver that meets reordered, replayed, tampered, truncated or
//! misdirected group envelopes: each gets a typed error and the state stays usable.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use pawl_core::keys::{IdentityKeyPair, PreKeyBundle, PreKeyRecord, SignedPreKeyRecord};
use pawl_core::sqlite::messages::{Envelope, MessageDirection, PendingSend, Received};
use pawl_core::sqlite::{GroupInfo, SqliteStore};
use pawl_core::store::*;
use pawl_core::wire::content::{Content, GroupEnvelope, GroupUpdate, GROUP_MESSAGE_TYPE};
use pawl_core::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const A: &str = "+14155550100";
const B: &str = "+14155550199";
const C: &str = "+14155550142";

fn store(dir: &std::path::Path, name: &str, rng: &mut ChaCha20Rng) -> SqliteStore {
    let mut s = SqliteStore::open(&dir.join(format!("{name}.db")), Some(&[3; 32])).unwrap();
    s.set_local_identity(&IdentityKeyPair::generate(rng), 7)
        .unwrap();
    s.set_setting("client.account.user", name.as_bytes())
        .unwrap();
    s
}

/// Alice with a session to Bob's device 1.
fn pair(dir: &std::path::Path) -> (SqliteStore, SqliteStore, ChaCha20Rng) {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let mut alice = store(dir, A, &mut rng);
    let mut bob = store(dir, B, &mut rng);
    let bob_id = bob.identity_key_pair().unwrap();
    let spk = SignedPreKeyRecord::generate(1, 0, &bob_id, &mut rng);
    let pk = PreKeyRecord::generate(1, &mut rng);
    bob.save_signed_pre_key(&spk).unwrap();
    bob.save_pre_key(&pk).unwrap();
    let bundle = PreKeyBundle::from_records(7, 1, *bob_id.identity_key(), &spk, Some(&pk));
    process_prekey_bundle(&mut alice, &ProtocolAddress::new(B, 1), &bundle, &mut rng).unwrap();
    (alice, bob, rng)
}

fn update(id: u8, version: u64, name: &str, members: &[&str], admins: &[&str]) -> GroupUpdate {
    GroupUpdate {
        group_id: vec![id; 16],
        version,
        name: name.into(),
        members: members.iter().map(|m| m.to_string()).collect(),
        admins: admins.iter().map(|m| m.to_string()).collect(),
    }
}

fn both(alice: &mut SqliteStore, bob: &mut SqliteStore, u: &GroupUpdate) -> GroupInfo {
    alice.accept_group_update(A, u).unwrap();
    bob.accept_group_update(A, u).unwrap()
}

fn send(
    alice: &mut SqliteStore,
    rng: &mut ChaCha20Rng,
    group: &[u8],
    text: &str,
    to: &[u32],
) -> (PendingSend, bool) {
    let me = ProtocolAddress::new(A, 1);
    let pt = Content::text(text, 1).encode();
    let (m, mut sends, rotated) = alice
        .group_send(
            group,
            &me,
            &[(B.to_string(), to.to_vec())],
            Some(text.as_bytes()),
            None,
            &pt,
            1,
            rng,
        )
        .unwrap();
    assert_eq!(m.unwrap().body, text.as_bytes());
    assert_eq!(sends.len(), usize::from(!to.is_empty()));
    (
        sends.pop().unwrap_or(PendingSend {
            id: 0,
            message_id: None,
            recipient: B.into(),
            entries: vec![],
        }),
        rotated,
    )
}

fn envelope(s: &PendingSend) -> GroupEnvelope {
    assert_eq!(s.entries.len(), 1);
    assert_eq!(s.entries[0].message_type, GROUP_MESSAGE_TYPE);
    GroupEnvelope::decode(&s.entries[0].payload).unwrap()
}

fn receive(
    bob: &mut SqliteStore,
    from: &str,
    id: &str,
    payload: &[u8],
    rng: &mut ChaCha20Rng,
) -> Result<Received, SessionError> {
    let env = Envelope {
        id: id.as_bytes(),
        message_type: GROUP_MESSAGE_TYPE,
        ciphertext: payload,
        sent_at: 5,
    };
    let mut out = bob
        .receive_batch_with(&ProtocolAddress::new(from, 1), &[env], 9, rng, |_, pt| {
            match Content::decode(&pt).unwrap().body {
                Some(pawl_core::wire::content::Body::Text(t)) => {
                    Ok(pawl_core::sqlite::messages::Incoming::Message {
                        body: t.body.into_bytes(),
                        sent_at: t.sent_at as i64,
                        media: None,
                    })
                }
                _ => Err(SessionError::InvalidMessage("not text".into())),
            }
        })
        .unwrap();
    out.pop().unwrap()
}

fn text_of(r: Result<Received, SessionError>, chat: i64) -> String {
    match r {
        Ok(Received::New(m)) => {
            assert_eq!((m.chat_id, m.direction), (chat, MessageDirection::Incoming));
            String::from_utf8(m.body).unwrap()
        }
        other => panic!("not a new message: {other:?}"),
    }
}

#[test]
fn the_update_rules() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut s = store(dir.path(), B, &mut rng);
    let v1 = update(1, 1, "Climbing", &[A, B, C], &[A]);
    // A new group only from one of its admins.
    assert!(s.accept_group_update(C, &v1).is_err());
    let g = s.accept_group_update(A, &v1).unwrap();
    assert_eq!(
        (g.version, g.members.len(), g.admins.clone()),
        (1, 3, vec![A.to_string()])
    );
    let title = s
        .chats()
        .unwrap()
        .into_iter()
        .find(|c| c.id == g.chat_id)
        .unwrap()
        .title;
    assert_eq!(title.as_deref(), Some("Climbing"));
    // Replayed and older versions.
    assert!(s.accept_group_update(A, &v1).is_err());
    let v3 = update(1, 3, "Bouldering", &[A, B, C], &[A]);
    s.accept_group_update(A, &v3).unwrap();
    let v2 = update(1, 2, "Old name", &[A, B, C], &[A]);
    let e = s.accept_group_update(A, &v2).unwrap_err().to_string();
    assert!(e.contains("not newer"), "{e}");
    // A non-admin's change, including adding themselves as admin.
    let e = s
        .accept_group_update(C, &update(1, 4, "Mine", &[A, B, C], &[A]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not an admin"), "{e}");
    assert!(s
        .accept_group_update(C, &update(1, 4, "Bouldering", &[A, B, C], &[A, C]))
        .is_err());
    // Leaving: only themselves, nothing else changed.
    assert!(s
        .accept_group_update(C, &update(1, 4, "Renamed", &[A, B], &[A]))
        .is_err());
    let g = s
        .accept_group_update(C, &update(1, 4, "Bouldering", &[A, B], &[A]))
        .unwrap();
    assert_eq!(g.members, vec![A.to_string(), B.to_string()]);
    // No longer a member: C cannot leave again or change anything.
    assert!(s
        .accept_group_update(C, &update(1, 5, "Bouldering", &[A], &[A]))
        .is_err());
    // Malformed: id length, version 0, empty or long name, duplicates, admin not a member.
    for bad in [
        GroupUpdate {
            group_id: vec![1; 15],
            ..update(1, 9, "x", &[A], &[A])
        },
        update(2, 0, "x", &[A], &[A]),
        update(2, 1, " ", &[A], &[A]),
        update(2, 1, &"n".repeat(101), &[A], &[A]),
        update(2, 1, "x", &[A, A], &[A]),
        update(2, 1, "x", &[B], &[A]),
    ] {
        assert!(matches!(
            s.accept_group_update(A, &bad),
            Err(SessionError::InvalidMessage(_))
        ));
    }
    assert_eq!(
        s.group(&[1; 16]).unwrap().unwrap().version,
        4,
        "refusals changed nothing"
    );
    assert!(s.group(&[2; 16]).unwrap().is_none());
    // From the account's own primary (a new device's sync): any newer state, whoever
    // the admins; an older or equal one changes nothing.
    let g = s
        .accept_group_sync(&update(1, 2, "Old", &[A, B], &[A]))
        .unwrap();
    assert_eq!((g.version, g.name.as_str()), (4, "Bouldering"));
    let g = s
        .accept_group_sync(&update(1, 9, "Synced", &[B, C], &[C]))
        .unwrap();
    assert_eq!((g.version, g.admins.clone()), (9, vec![C.to_string()]));
    assert!(
        s.accept_group_sync(&update(3, 1, "x", &[B], &[A])).is_err(),
        "still checked"
    );
}

#[test]
fn key_once_per_device_rotation_and_bad_envelopes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut alice, mut bob, mut rng) = pair(dir.path());
    let g = both(
        &mut alice,
        &mut bob,
        &update(1, 1, "Climbing", &[A, B], &[A]),
    );
    let other = both(&mut alice, &mut bob, &update(2, 1, "Other", &[A, B], &[A]));

    // First message: the key (a prekey message: no session yet on Bob's side).
    let (s1, rotated) = send(&mut alice, &mut rng, &g.id, "one", &[1]);
    assert!(rotated, "a first send starts a chain");
    let e1 = envelope(&s1);
    assert_eq!(e1.key_type, 3);
    assert_eq!(alice.group_key_holders(&g.id).unwrap().len(), 1);
    // The key moved into another group's envelope is refused (and nothing stored).
    let mut moved = e1.clone();
    moved.group_id = other.id.clone();
    let e = receive(&mut bob, A, "m", &moved.encode(), &mut rng).unwrap_err();
    assert!(matches!(e, SessionError::InvalidMessage(_)), "{e}");
    // The genuine one still decrypts: the key went to the group its pairwise message
    // names, and the used-up pairwise part counts as taken in.
    assert_eq!(
        text_of(
            receive(&mut bob, A, "1", &s1.entries[0].payload, &mut rng),
            g.chat_id
        ),
        "one"
    );

    // Later messages carry no key.
    let (s2, rotated) = send(&mut alice, &mut rng, &g.id, "two", &[1]);
    assert!(!rotated);
    assert_eq!((envelope(&s2).key_type, envelope(&s2).key.len()), (0, 0));
    let (s3, _) = send(&mut alice, &mut rng, &g.id, "three", &[1]);
    let (s4, _) = send(&mut alice, &mut rng, &g.id, "four", &[1]);
    // Reordered: four before two and three.
    assert_eq!(
        text_of(
            receive(&mut bob, A, "4", &s4.entries[0].payload, &mut rng),
            g.chat_id
        ),
        "four"
    );
    assert_eq!(
        text_of(
            receive(&mut bob, A, "2", &s2.entries[0].payload, &mut rng),
            g.chat_id
        ),
        "two"
    );
    // Replayed under another envelope id: a duplicate, not a second message.
    let e = receive(&mut bob, A, "2b", &s2.entries[0].payload, &mut rng).unwrap_err();
    assert!(matches!(e, SessionError::DuplicateMessage { .. }), "{e}");
    // Tampered (every byte of the sender-key message in turn) and truncated: typed
    // errors; the genuine envelope decrypts afterwards.
    let e3 = envelope(&s3);
    for i in 0..e3.message.len() {
        let mut t = e3.clone();
        t.message[i] ^= 0x01;
        assert!(
            receive(&mut bob, A, &format!("t{i}"), &t.encode(), &mut rng).is_err(),
            "byte {i}"
        );
    }
    let raw = &s3.entries[0].payload;
    for n in 0..raw.len() {
        assert!(
            receive(&mut bob, A, &format!("c{n}"), &raw[..n], &mut rng).is_err(),
            "cut at {n}"
        );
    }
    assert_eq!(
        text_of(receive(&mut bob, A, "3", raw, &mut rng), g.chat_id),
        "three"
    );
    // A sender who is not a member.
    let e = receive(&mut bob, C, "x", raw, &mut rng).unwrap_err();
    assert!(e.to_string().contains("not a member"), "{e}");
    let texts: Vec<String> = bob
        .latest_messages(g.chat_id, 100)
        .unwrap()
        .into_iter()
        .map(|m| String::from_utf8(m.body).unwrap())
        .collect();
    assert!(
        texts.contains(&"four".to_string())
            && texts.contains(&"two".to_string())
            && texts.contains(&"three".to_string())
    );
    assert_eq!(bob.latest_messages(other.chat_id, 100).unwrap().len(), 0);

    // Bob's device left (no longer a recipient): the next send rotates; when it is
    // back it gets the new key in its envelope.
    let chain = alice
        .own_sender_chain(&ProtocolAddress::new(A, 1), &g.id)
        .unwrap();
    let (_, rotated) = send(&mut alice, &mut rng, &g.id, "while away", &[]);
    assert!(rotated);
    let alice_chat = alice.group(&g.id).unwrap().unwrap().chat_id;
    let away = alice.latest_messages(alice_chat, 1).unwrap().remove(0);
    assert_eq!(
        (away.body.as_slice(), away.status),
        (
            &b"while away"[..],
            pawl_core::sqlite::messages::MessageStatus::Sent
        ),
        "nothing to send: not left pending"
    );
    assert!(alice.group_key_holders(&g.id).unwrap().is_empty());
    let (s6, rotated) = send(&mut alice, &mut rng, &g.id, "back", &[1]);
    assert!(!rotated);
    assert_ne!(
        alice
            .own_sender_chain(&ProtocolAddress::new(A, 1), &g.id)
            .unwrap(),
        chain
    );
    assert_ne!(envelope(&s6).key_type, 0);
    assert_eq!(
        text_of(
            receive(&mut bob, A, "6", &s6.entries[0].payload, &mut rng),
            g.chat_id
        ),
        "back"
    );
}

#[test]
fn a_device_found_missing_gets_the_key_with_the_corrected_send() {
    let dir = tempfile::tempdir().unwrap();
    let (mut alice, mut bob, mut rng) = pair(dir.path());
    let g = both(
        &mut alice,
        &mut bob,
        &update(1, 1, "Climbing", &[A, B], &[A]),
    );
    // Bob's second device, with a session, that Alice did not know of at send time.
    let mut bob2 = store(dir.path(), "bob2", &mut rng);
    bob2.set_setting("client.account.user", B.as_bytes())
        .unwrap();
    bob2.accept_group_update(A, &update(1, 1, "Climbing", &[A, B], &[A]))
        .unwrap();
    let id2 = bob2.identity_key_pair().unwrap();
    let spk = SignedPreKeyRecord::generate(1, 0, &id2, &mut rng);
    bob2.save_signed_pre_key(&spk).unwrap();
    let bundle = PreKeyBundle::from_records(7, 2, *id2.identity_key(), &spk, None);
    process_prekey_bundle(&mut alice, &ProtocolAddress::new(B, 2), &bundle, &mut rng).unwrap();

    let (s1, _) = send(&mut alice, &mut rng, &g.id, "one", &[1]);
    let fixed = alice.correct_send(s1.id, &[2], &[]).unwrap();
    assert_eq!(fixed.entries.len(), 2);
    let e = GroupEnvelope::decode(&fixed.entries[1].payload).unwrap();
    assert_eq!((fixed.entries[1].recipient.device_id, e.key_type), (2, 3));
    assert_eq!(
        e.message,
        envelope(&PendingSend {
            entries: vec![fixed.entries[0].clone()],
            ..fixed.clone()
        })
        .message
    );
    let g2 = bob2.group(&g.id).unwrap().unwrap();
    assert_eq!(
        text_of(
            receive(&mut bob2, A, "1", &fixed.entries[1].payload, &mut rng),
            g2.chat_id
        ),
        "one"
    );
    assert_eq!(
        text_of(
            receive(&mut bob, A, "1", &fixed.entries[0].payload, &mut rng),
            g.chat_id
        ),
        "one"
    );
    let mut h = alice.group_key_holders(&g.id).unwrap();
    h.sort();
    assert_eq!(h.iter().map(|x| x.1).collect::<Vec<_>>(), vec![1, 2]);
}
