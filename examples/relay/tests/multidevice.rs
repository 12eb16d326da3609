//! Multi-device over a real relay on loopback (TLS, pinned), every device on its own
//! encrypted SQLite file: Alice's phone, Alice's desktop (linked by its QR code) and
//! Bob. A relay that injects a device, replays an old device list, or drops, reorders
//! or alters an app-state patch is caught (the tests tamper with the relay's database
//! directly, as a compromised server would).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::Path;
use std::time::Duration;

use pawl_core::client::{Client, Event};
use pawl_core::sqlite::messages::MessageDirection;
use pawl_relay::{EmbeddedRelay, Limits, RelayStore, SqliteRelayStore};

mod common;
use common::{config, expect, link_companion, message, registered, registered_with};

const ALICE: &str = "+4915100000001";
const BOB: &str = "+4915100000002";

/// The chat's texts, oldest first.
fn texts(c: &Client, peer: &str) -> Vec<String> {
    c.with_store(|s| {
        let chat = s.chat_id(peer).unwrap();
        s.latest_messages(chat, 1000).unwrap()
    })
    .into_iter()
    .rev()
    .map(|m| m.text().unwrap().to_string())
    .collect()
}

fn unread(c: &Client, peer: &str) -> u64 {
    c.with_store(|s| {
        let chat = s.chat_id(peer).unwrap();
        s.unread_count(chat).unwrap()
    })
}

/// Poll `f` until it holds (app state arrives in the background), or fail after 10 s.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn relay_db(dir: &Path) -> SqliteRelayStore {
    SqliteRelayStore::open(&dir.join("relay.db")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_desktop_and_bob_see_the_same_conversation() {
    let dir = tempfile::tempdir().unwrap();
    let relay = EmbeddedRelay::start(dir.path(), Limits::default())
        .await
        .unwrap();
    let mut phone_cfg = config(&relay, dir.path(), "alice-phone");
    phone_cfg.history.max_messages_per_chat = 3;
    let (phone, mut p_ev) = registered_with(&relay, phone_cfg, ALICE).await;
    let (bob, mut b_ev) = registered(&relay, dir.path(), "bob", BOB).await;

    // Before the desktop exists: five messages, of which it will get the last 3.
    for i in 0..5 {
        let (from, to, ev) = if i % 2 == 0 {
            (&phone, BOB, &mut b_ev)
        } else {
            (&bob, ALICE, &mut p_ev)
        };
        from.send_text(to, &format!("old {i}")).await.unwrap();
        message(ev, "old message", &format!("old {i}")).await;
    }

    let (desktop, mut d_ev, desktop_id) =
        link_companion(&phone, config(&relay, dir.path(), "alice-desktop")).await;
    assert_eq!(desktop_id, 2);
    expect(&mut p_ev, "linked", |e| match e {
        Event::DeviceLinked { device_id } => Some(*device_id),
        _ => None,
    })
    .await;
    // History: the last 3 messages of the chat with Bob, in order.
    expect(&mut d_ev, "history", |e| match e {
        Event::HistorySynced { messages, .. } => Some(*messages),
        _ => None,
    })
    .await;
    assert_eq!(texts(&desktop, BOB), vec!["old 2", "old 3", "old 4"]);

    // Bob -> Alice: both of Alice's devices get it (Bob's send is corrected by the
    // relay's device-set check and the desktop is verified against Alice's list).
    bob.send_text(ALICE, "to both").await.unwrap();
    message(&mut p_ev, "phone gets Bob's", "to both").await;
    let m = message(&mut d_ev, "desktop gets Bob's", "to both").await;
    assert_eq!(m.direction, MessageDirection::Incoming);

    // The desktop writes to Bob: Bob gets it from device 2, the phone a copy.
    desktop.send_text(BOB, "from the desktop").await.unwrap();
    let m = message(&mut b_ev, "Bob gets the desktop's", "from the desktop").await;
    assert_eq!((m.sender.as_str(), m.sender_device), (ALICE, 2));
    let copy = message(&mut p_ev, "phone gets the copy", "from the desktop").await;
    assert_eq!(copy.direction, MessageDirection::Outgoing);
    assert_eq!(
        copy.chat_id,
        phone.with_store(|s| s.chat_id(BOB)).unwrap(),
        "the copy names the real destination"
    );
    // And the other way.
    phone.send_text(BOB, "from the phone").await.unwrap();
    message(&mut b_ev, "Bob gets the phone's", "from the phone").await;
    let copy = message(&mut d_ev, "desktop gets the copy", "from the phone").await;
    assert_eq!(copy.direction, MessageDirection::Outgoing);
    assert_eq!(
        texts(&phone, BOB)[5..],
        texts(&desktop, BOB)[3..],
        "every message since the link, on both devices, in the same order"
    );

    // Read on the desktop -> read on the phone (and Bob gets read receipts).
    bob.send_text(ALICE, "unread").await.unwrap();
    message(&mut p_ev, "phone", "unread").await;
    message(&mut d_ev, "desktop", "unread").await;
    assert!(unread(&phone, BOB) > 0);
    desktop.mark_read(BOB).await.unwrap();
    eventually("the phone marks the chat read", || unread(&phone, BOB) == 0).await;
    assert_eq!(phone.chat_state(BOB).unwrap().marked_read, Some(true));

    // Archive, mute, pin and a contact name, both ways.
    desktop.set_archived(BOB, true).await.unwrap();
    desktop.set_muted(BOB, true, 0).await.unwrap();
    phone.set_pinned(BOB, true).await.unwrap();
    phone.set_contact_name(BOB, "Bob B.").await.unwrap();
    eventually("phone sees archive and mute", || {
        let c = phone.chat_state(BOB).unwrap();
        c.archived && c.muted
    })
    .await;
    eventually("desktop sees pin and name", || {
        desktop.chat_state(BOB).unwrap().pinned
            && desktop.contact_name(BOB).unwrap().as_deref() == Some("Bob B.")
    })
    .await;
    // Concurrent edits of one chat on both devices converge to one state.
    let (a, b) = tokio::join!(
        desktop.set_archived(BOB, false),
        phone.set_pinned(BOB, false)
    );
    a.unwrap();
    b.unwrap();
    phone.sync_app_state().await.unwrap();
    desktop.sync_app_state().await.unwrap();
    let want = phone.chat_state(BOB).unwrap();
    assert_eq!(desktop.chat_state(BOB).unwrap(), want);
    assert!(!want.archived && !want.pinned && want.muted);

    // Unlink the desktop: nothing sent afterwards reaches it or could be read by it.
    phone.unlink_device(desktop_id).await.unwrap();
    let db = relay_db(dir.path());
    assert_eq!(db.devices(ALICE).unwrap(), vec![1]);
    bob.send_text(ALICE, "after unlink").await.unwrap();
    message(&mut p_ev, "phone still gets messages", "after unlink").await;
    assert_eq!(
        bob.with_store(|s| s.devices(ALICE)).unwrap(),
        vec![1],
        "Bob encrypts to the phone only"
    );
    assert!(db.pending(ALICE, desktop_id, 100).unwrap().is_empty());
    // New app state is written with a rotated key the desktop never got.
    phone.set_archived(BOB, true).await.unwrap();
    let (_, latest) = db
        .record_get(ALICE, "patch/regular_low", 0, 1000)
        .unwrap()
        .pop()
        .unwrap();
    let patch: pawl_core::appstate::proto::SyncdPatch =
        prost::Message::decode(latest.as_slice()).unwrap();
    let key_setting = format!(
        "appstate.key.{}",
        patch
            .key_id
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    assert!(phone
        .with_store(|s| s.setting(&key_setting))
        .unwrap()
        .is_some());
    assert!(
        desktop
            .with_store(|s| s.setting(&key_setting))
            .unwrap()
            .is_none(),
        "the removed desktop does not have the new key"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!texts(&desktop, BOB).iter().any(|t| t == "after unlink"));
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_injects_a_device_or_replays_a_list_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let relay = EmbeddedRelay::start(dir.path(), Limits::default())
        .await
        .unwrap();
    let (phone, mut p_ev) = registered(&relay, dir.path(), "alice-phone", ALICE).await;
    let (bob, mut b_ev) = registered(&relay, dir.path(), "bob", BOB).await;
    phone.send_text(BOB, "hi").await.unwrap();
    message(&mut b_ev, "first", "hi").await;
    let (_desktop, mut d_ev, desktop_id) =
        link_companion(&phone, config(&relay, dir.path(), "alice-desktop")).await;

    // The relay injects device 7 of Alice: a key of its own, vouched for by a
    // "primary" of its own, with prekeys so a bundle can be fetched.
    let mut db = relay_db(dir.path());
    let (intruder, _) = Client::open(config(&relay, dir.path(), "intruder")).unwrap();
    let ik = intruder.identity_key().unwrap();
    db.register_device(
        ALICE,
        7,
        &pawl_relay::store::DeviceRecord {
            identity_key: ik.serialize().to_vec(),
            registration_id: 7,
        },
    )
    .unwrap();
    let fake_primary = pawl_core::IdentityKeyPair::generate(&mut rand::rngs::OsRng);
    let details = pawl_core::devices::adv::DeviceIdentityDetails {
        user: ALICE.into(),
        device_id: 7,
        timestamp_ms: 1,
        key_index: 1,
        identity_key: ik.serialize().to_vec(),
    };
    let forged = pawl_core::devices::adv::SignedDeviceIdentity::sign_account(
        &fake_primary,
        &details,
        &mut rand::rngs::OsRng,
    )
    .unwrap();
    db.record_put(
        ALICE,
        &pawl_relay::identity_record(7),
        1,
        &prost::Message::encode_to_vec(&forged),
        pawl_relay::PutRule::Replace,
    )
    .unwrap()
    .unwrap();
    bob.send_text(ALICE, "not for the intruder").await.unwrap();
    message(&mut p_ev, "phone", "not for the intruder").await;
    message(&mut d_ev, "desktop", "not for the intruder").await;
    let reason = expect(&mut b_ev, "Bob refuses device 7", |e| match e {
        Event::DeviceListRejected { user, reason } if user == ALICE => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(reason.contains('7'), "{reason}");
    assert!(
        db.pending(ALICE, 7, 100).unwrap().is_empty(),
        "device 7 got nothing"
    );
    assert!(!bob.with_store(|s| s.devices(ALICE)).unwrap().contains(&7));

    // Unlink the desktop, then the relay replays the old list (which names it) and
    // brings the device back.
    let old_list = db
        .record_latest(ALICE, pawl_relay::DEVICE_LIST_RECORD)
        .unwrap()
        .unwrap();
    let old_identity = db
        .record_latest(ALICE, &pawl_relay::identity_record(desktop_id))
        .unwrap()
        .unwrap();
    let old_device = db.device(ALICE, desktop_id).unwrap().unwrap();
    phone.unlink_device(desktop_id).await.unwrap();
    bob.send_text(ALICE, "after unlink").await.unwrap();
    message(&mut p_ev, "phone", "after unlink").await;
    assert!(!bob
        .with_store(|s| s.devices(ALICE))
        .unwrap()
        .contains(&desktop_id));
    let raw = rusqlite::Connection::open(dir.path().join("relay.db")).unwrap();
    raw.execute(
        "UPDATE records SET version = ?1, data = ?2 WHERE user = ?3 AND name = 'device-list'",
        rusqlite::params![old_list.0 as i64, old_list.1, ALICE],
    )
    .unwrap();
    db.register_device(ALICE, desktop_id, &old_device).unwrap();
    db.record_put(
        ALICE,
        &pawl_relay::identity_record(desktop_id),
        1,
        &old_identity.1,
        pawl_relay::PutRule::Replace,
    )
    .unwrap()
    .unwrap();
    bob.send_text(ALICE, "replayed list").await.unwrap();
    message(&mut p_ev, "phone", "replayed list").await;
    let reason = expect(&mut b_ev, "Bob refuses the replayed list", |e| match e {
        Event::DeviceListRejected { user, reason } if user == ALICE && reason.contains("older") => {
            Some(reason.clone())
        }
        _ => None,
    })
    .await;
    assert!(reason.contains("older"), "{reason}");
    assert!(
        db.pending(ALICE, desktop_id, 100).unwrap().is_empty(),
        "the removed desktop got nothing"
    );
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_reordered_or_altered_patches_are_caught_and_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let relay = EmbeddedRelay::start(dir.path(), Limits::default())
        .await
        .unwrap();
    let (phone, _p_ev) = registered(&relay, dir.path(), "alice-phone", ALICE).await;
    let (_bob, _b_ev) = registered(&relay, dir.path(), "bob", BOB).await;
    phone.send_text(BOB, "hi").await.unwrap();
    let (desktop, mut d_ev, _) =
        link_companion(&phone, config(&relay, dir.path(), "alice-desktop")).await;
    desktop.sync_app_state().await.unwrap();
    desktop.shutdown().await;

    // Three patches while the desktop is away.
    phone.set_archived(BOB, true).await.unwrap();
    phone.set_pinned(BOB, true).await.unwrap();
    phone.set_archived("+4915100000003", true).await.unwrap();
    let db = relay_db(dir.path());
    let raw = rusqlite::Connection::open(dir.path().join("relay.db")).unwrap();
    let patches = db.record_get(ALICE, "patch/regular_low", 0, 100).unwrap();
    assert_eq!(patches.len(), 3);
    // Reorder: versions 1 and 2 swap contents.
    let set = |v: u64, data: &[u8]| {
        raw.execute(
            "UPDATE records SET data = ?1 WHERE user = ?2 AND name = 'patch/regular_low' AND version = ?3",
            rusqlite::params![data, ALICE, v as i64],
        )
        .unwrap();
    };
    set(1, &patches[1].1);
    set(2, &patches[0].1);
    desktop.start();
    let reason = expect(&mut d_ev, "the reorder is caught", |e| match e {
        Event::AppStateRejected { reason, .. } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(reason.contains("version"), "{reason}");
    eventually("recovered from the snapshot", || {
        let c = desktop.chat_state(BOB).unwrap();
        c.archived && c.pinned
    })
    .await;
    assert!(desktop.chat_state("+4915100000003").unwrap().archived);

    // Altered: a flipped byte in the next patch. Dropped: the one after it goes.
    desktop.shutdown().await;
    phone.set_archived(BOB, false).await.unwrap();
    phone.set_pinned(BOB, false).await.unwrap();
    let mut p4 = db.record_get(ALICE, "patch/regular_low", 3, 1).unwrap()[0]
        .1
        .clone();
    let n = p4.len();
    p4[n / 2] ^= 0x20;
    set(4, &p4);
    desktop.start();
    let reason = expect(&mut d_ev, "the altered patch is caught", |e| match e {
        Event::AppStateRejected { reason, .. } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(!reason.is_empty());
    eventually("recovered again", || {
        let c = desktop.chat_state(BOB).unwrap();
        !c.archived && !c.pinned
    })
    .await;
    desktop.shutdown().await;
    phone.set_muted(BOB, true, 0).await.unwrap(); // regular_high v1
    phone.set_muted(BOB, false, 0).await.unwrap(); // v2
    phone.set_muted(BOB, true, 42).await.unwrap(); // v3
    raw.execute(
        "DELETE FROM records WHERE user = ?1 AND name = 'patch/regular_high' AND version = 2",
        rusqlite::params![ALICE],
    )
    .unwrap();
    desktop.start();
    expect(&mut d_ev, "the dropped patch is caught", |e| match e {
        Event::AppStateRejected { collection, .. } if collection == "regular_high" => Some(()),
        _ => None,
    })
    .await;
    eventually("recovered from the dropped patch", || {
        desktop.chat_state(BOB).unwrap().muted_until_ms == 42
    })
    .await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_codes_rotate_and_expire() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        link_code_first: Duration::from_millis(400),
        link_code_next: Duration::from_millis(300),
        link_codes: 3,
        ..Limits::default()
    };
    let relay = EmbeddedRelay::start(dir.path(), limits).await.unwrap();
    let (phone, _p_ev) = registered(&relay, dir.path(), "alice-phone", ALICE).await;
    let (desktop, _d_ev) = Client::open(config(&relay, dir.path(), "alice-desktop")).unwrap();
    let mut linking = desktop.start_linking().await.unwrap();
    let first = linking.next_code().await.unwrap();
    let second = linking.next_code().await.unwrap();
    assert_ne!(
        first.code, second.code,
        "a new code (new ref, key and secret)"
    );
    assert!(second.expires_at_ms >= first.expires_at_ms);
    // The expired code no longer reaches the companion.
    let err = phone.link_device(&first.code, |_| true).await.unwrap_err();
    assert!(
        matches!(&err, pawl_core::client::ClientError::Relay { code, .. } if code == "LinkExpired"),
        "{err:?}"
    );
    let third = linking.next_code().await.unwrap();
    assert_ne!(third.code, second.code);
    // After the last one the relay gives up.
    assert!(linking.next_code().await.is_none());
    let err = linking.finished().await.unwrap_err();
    assert!(
        matches!(&err, pawl_core::client::ClientError::Relay { code, .. } if code == "LinkExpired"),
        "{err:?}"
    );
    assert!(desktop.address().is_err(), "not registered");
    relay.stop().await;
}

/// In-chat device consistency: a message names the sender's device-list version; a
/// receiver that knows an older one re-reads the list before its next send (with
/// `newer_list_ttl` 0), so its reply reaches the new device without the relay having
/// to refuse it first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_list_named_in_a_message_is_read_before_the_next_send() {
    let dir = tempfile::tempdir().unwrap();
    let relay = EmbeddedRelay::start(dir.path(), Limits::default())
        .await
        .unwrap();
    let (phone, mut p_ev) = registered(&relay, dir.path(), "alice-phone", ALICE).await;
    let mut bob_cfg = config(&relay, dir.path(), "bob");
    bob_cfg.newer_list_ttl = Duration::ZERO;
    let (bob, mut b_ev) = registered_with(&relay, bob_cfg, BOB).await;
    bob.send_text(ALICE, "hi").await.unwrap();
    message(&mut p_ev, "phone", "hi").await;
    let (_desktop, mut d_ev, _) =
        link_companion(&phone, config(&relay, dir.path(), "alice-desktop")).await;
    // Bob's cached list of Alice (no companions) is still fresh; the phone's message
    // names version 1 of her list.
    phone.send_text(BOB, "I have a desktop now").await.unwrap();
    message(&mut b_ev, "Bob", "I have a desktop now").await;
    let mismatches = || {
        relay
            .relay
            .metrics
            .refused
            .lock()
            .unwrap()
            .get("DeviceMismatch")
            .copied()
            .unwrap_or(0)
    };
    let before = mismatches();
    bob.send_text(ALICE, "to both, first time").await.unwrap();
    message(&mut p_ev, "phone", "to both, first time").await;
    message(&mut d_ev, "desktop", "to both, first time").await;
    assert_eq!(
        mismatches(),
        before,
        "Bob re-read Alice's list before sending (no DeviceMismatch round trip)"
    );
    assert_eq!(bob.with_store(|s| s.devices(ALICE)).unwrap(), vec![1, 2]);
    relay.stop().await;
}

/// A signed list expires (35 days by default, 2 s here): the primary signs it again
/// before that, so its companions keep getting messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_primary_renews_its_list_before_it_expires() {
    let dir = tempfile::tempdir().unwrap();
    let relay = EmbeddedRelay::start(dir.path(), Limits::default())
        .await
        .unwrap();
    let ttl = Duration::from_secs(2);
    let mut phone_cfg = config(&relay, dir.path(), "alice-phone");
    phone_cfg.device_list_ttl = ttl;
    let (phone, mut p_ev) = registered_with(&relay, phone_cfg, ALICE).await;
    let mut bob_cfg = config(&relay, dir.path(), "bob");
    bob_cfg.device_list_ttl = ttl;
    let (bob, mut b_ev) = registered_with(&relay, bob_cfg, BOB).await;
    bob.send_text(ALICE, "hi").await.unwrap();
    message(&mut p_ev, "phone", "hi").await;
    let (_desktop, mut d_ev, _) =
        link_companion(&phone, config(&relay, dir.path(), "alice-desktop")).await;
    bob.send_text(ALICE, "first").await.unwrap();
    message(&mut d_ev, "desktop", "first").await;
    let first = relay_db(dir.path())
        .record_latest(ALICE, pawl_relay::DEVICE_LIST_RECORD)
        .unwrap()
        .unwrap()
        .0;
    // Past the first list's TTL.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let renewed = relay_db(dir.path())
        .record_latest(ALICE, pawl_relay::DEVICE_LIST_RECORD)
        .unwrap()
        .unwrap()
        .0;
    assert!(renewed > first, "renewed: version {first} -> {renewed}");
    bob.send_text(ALICE, "a while later").await.unwrap();
    message(&mut p_ev, "phone", "a while later").await;
    message(&mut d_ev, "desktop still trusted", "a while later").await;
    let _ = &mut b_ev;
    relay.stop().await;
}
