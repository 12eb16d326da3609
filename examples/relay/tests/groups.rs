//! Groups over a real relay on loopback (TLS, pinned), every device on its own
//! encrypted SQLite file: Alice, Bob's phone and desktop (linked by QR), Carol, and
//! Dave who is not a member. Group messages are sender-key encrypted once; the key
//! travels pairwise, in the same envelope, to the devices that lack it; a removed
//! member or an unlinked device cannot read what is sent afterwards (the tests read
//! the relay's database directly, as a compromised server could).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::Path;
use std::time::Duration;

use pawl_core::client::{Client, ClientError, Event, GroupInfo, MediaMessage};
use pawl_core::error::GroupError;
use pawl_core::media::MediaKind;
use pawl_core::sqlite::group_chat_peer;
use pawl_core::sqlite::messages::MessageDirection;
use pawl_core::wire::content::{GroupEnvelope, GroupUpdate, GROUP_MESSAGE_TYPE};
use pawl_core::ProtocolAddress;
use pawl_relay::{EmbeddedRelay, Limits, RelayStore, SqliteRelayStore};
use tokio::sync::mpsc::UnboundedReceiver;

mod common;
use common::{config, expect, link_companion, message, registered, registered_with};

const ALICE: &str = "+4915100000001";
const BOB: &str = "+4915100000002";
const CAROL: &str = "+4915100000003";
const DAVE: &str = "+4915100000004";

type Events = UnboundedReceiver<Event>;

async fn updated(ev: &mut Events, what: &str, c: &Client) -> GroupInfo {
    let id = expect(ev, what, |e| match e {
        Event::GroupUpdated { group_id, .. } => Some(group_id.clone()),
        _ => None,
    })
    .await;
    c.group(&id).unwrap().unwrap()
}

async fn decrypt_failed(ev: &mut Events, what: &str, needle: &str) -> String {
    expect(ev, what, |e| match e {
        Event::DecryptFailed { error, .. } if error.contains(needle) => Some(error.clone()),
        _ => None,
    })
    .await
}

/// The group chat's texts, oldest first.
fn texts(c: &Client, g: &GroupInfo) -> Vec<String> {
    c.with_store(|s| s.latest_messages(g.chat_id, 1000).unwrap())
        .into_iter()
        .rev()
        .map(|m| m.text().unwrap().to_string())
        .collect()
}

fn relay_db(dir: &Path) -> SqliteRelayStore {
    SqliteRelayStore::open(&dir.join("relay.db")).unwrap()
}

/// The group envelopes waiting in a device's mailbox at the relay.
fn queued(dir: &Path, user: &str, device: u32) -> Vec<GroupEnvelope> {
    relay_db(dir)
        .pending(user, device, 100)
        .unwrap()
        .into_iter()
        .filter(|d| d.message_type == u32::from(GROUP_MESSAGE_TYPE))
        .map(|d| GroupEnvelope::decode(&d.payload).unwrap())
        .collect()
}

async fn wait_queued(dir: &Path, user: &str, device: u32, n: usize) -> Vec<GroupEnvelope> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let q = queued(dir, user, device);
        if q.len() >= n {
            return q;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{user}.{device}: {} queued",
            q.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn chain(c: &Client, group: &[u8]) -> u32 {
    let me = c.address().unwrap();
    c.with_store(|s| s.own_sender_chain(&me, group))
        .unwrap()
        .unwrap()
}

fn holders(c: &Client, group: &[u8]) -> Vec<(String, u32)> {
    c.with_store(|s| s.group_key_holders(group))
        .unwrap()
        .into_iter()
        .map(|(u, d, _)| (u, d))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_across_devices_with_removal_and_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let relay = EmbeddedRelay::start(d, Limits::default()).await.unwrap();
    let mut alice_cfg = config(&relay, d, "alice");
    // Re-read a list as soon as a message names a newer one (WhatsApp waits 48 h).
    alice_cfg.newer_list_ttl = Duration::ZERO;
    let (alice, mut a_ev) = registered_with(&relay, alice_cfg, ALICE).await;
    let (bob, mut b_ev) = registered(&relay, d, "bob", BOB).await;
    let (desk, mut k_ev, desk_id) = link_companion(&bob, config(&relay, d, "bob-desktop")).await;
    let (carol, mut c_ev) = registered(&relay, d, "carol", CAROL).await;

    // Create: every device of every member learns the group, name and members.
    let g = alice.create_group("Climbing", &[BOB, CAROL]).await.unwrap();
    assert_eq!(g.members, vec![ALICE, BOB, CAROL]);
    assert_eq!(g.admins, vec![ALICE]);
    for (c, ev, who) in [
        (&bob, &mut b_ev, "bob"),
        (&desk, &mut k_ev, "bob's desktop"),
        (&carol, &mut c_ev, "carol"),
    ] {
        let got = updated(ev, &format!("{who} learns the group"), c).await;
        assert_eq!(
            (got.id.clone(), got.name.as_str(), got.version),
            (g.id.clone(), "Climbing", 1)
        );
        assert_eq!(got.members, g.members);
        let chat = c.with_store(|s| s.chats()).unwrap();
        let row = chat.iter().find(|x| x.id == got.chat_id).unwrap();
        assert_eq!(row.peer, group_chat_peer(&g.id));
        assert_eq!(row.title.as_deref(), Some("Climbing"));
    }

    // Carol offline: her mailbox shows the key travels with the first message only.
    carol.shutdown().await;
    let first = alice.send_group_text(&g.id, "hello group").await.unwrap();
    for (c, ev, who) in [
        (&bob, &mut b_ev, "bob"),
        (&desk, &mut k_ev, "bob's desktop"),
    ] {
        let m = message(ev, &format!("{who} gets it"), "hello group").await;
        let group = c.group(&g.id).unwrap().unwrap();
        assert_eq!(
            (m.chat_id, m.sender.as_str(), m.sender_device),
            (group.chat_id, ALICE, 1)
        );
        assert_eq!(m.direction, MessageDirection::Incoming);
    }
    alice.send_group_text(&g.id, "second").await.unwrap();
    message(&mut b_ev, "bob gets the second", "second").await;
    let q = wait_queued(d, CAROL, 1, 2).await;
    assert_eq!(q.len(), 2);
    assert!(
        q[0].key_type == 2 || q[0].key_type == 3,
        "the first carries the key"
    );
    assert!(!q[0].key.is_empty());
    assert_eq!(
        (q[1].key_type, q[1].key.len()),
        (0, 0),
        "the second does not"
    );
    assert_ne!(q[0].message, q[1].message);
    let mut h = holders(&alice, &g.id);
    h.sort();
    assert_eq!(
        h,
        vec![
            (BOB.to_string(), 1),
            (BOB.to_string(), desk_id),
            (CAROL.to_string(), 1)
        ]
    );
    // The relay re-sending the first envelope changes nothing (duplicate, ignored).
    carol.start();
    message(
        &mut c_ev,
        "carol gets the first after reconnecting",
        "hello group",
    )
    .await;
    message(&mut c_ev, "and the second", "second").await;
    let cg = carol.group(&g.id).unwrap().unwrap();
    assert_eq!(texts(&carol, &cg), vec!["hello group", "second"]);
    let _ = first;

    // Bob's desktop posts: Alice and Carol receive it from Bob, Bob's phone stores it
    // as its own (outgoing) message in the group chat.
    desk.send_group_text(&g.id, "from bob's desktop")
        .await
        .unwrap();
    let m = message(&mut a_ev, "alice gets bob's", "from bob's desktop").await;
    assert_eq!(
        (m.sender.as_str(), m.sender_device, m.direction),
        (BOB, desk_id, MessageDirection::Incoming)
    );
    message(&mut c_ev, "carol gets bob's", "from bob's desktop").await;
    let m = message(&mut b_ev, "bob's phone gets its copy", "from bob's desktop").await;
    assert_eq!(m.direction, MessageDirection::Outgoing);
    let bg = bob.group(&g.id).unwrap().unwrap();
    assert_eq!(
        texts(&bob, &bg),
        vec!["hello group", "second", "from bob's desktop"]
    );

    // Reading a group chat marks it read (no receipts go to the members).
    let unread = |c: &Client| c.with_store(|s| s.unread_count(bg.chat_id)).unwrap();
    assert_eq!(unread(&bob), 2);
    assert_eq!(bob.mark_read(&bg.chat_peer()).await.unwrap(), 2);
    assert_eq!(unread(&bob), 0);

    // Only an admin changes the group; Carol's own client refuses to try.
    let e = carol.rename_group(&g.id, "Carol's").await.unwrap_err();
    assert!(
        matches!(e, ClientError::Group(ref m) if m.contains("not an admin")),
        "{e}"
    );
    let g2 = alice.rename_group(&g.id, "Bouldering").await.unwrap();
    assert_eq!((g2.name.as_str(), g2.version), ("Bouldering", 2));
    assert_eq!(
        updated(&mut c_ev, "carol sees the rename", &carol)
            .await
            .name,
        "Bouldering"
    );
    assert_eq!(
        updated(&mut b_ev, "bob sees the rename", &bob).await.name,
        "Bouldering"
    );
    assert_eq!(
        updated(&mut k_ev, "desktop sees the rename", &desk)
            .await
            .name,
        "Bouldering"
    );

    // Remove Carol. Bob's phone goes offline so its queued envelope can be examined.
    let chain_before = chain(&alice, &g.id);
    let g3 = alice.remove_group_members(&g.id, &[CAROL]).await.unwrap();
    assert_eq!(g3.members, vec![ALICE, BOB]);
    let cg = updated(&mut c_ev, "carol learns she was removed", &carol).await;
    assert!(!cg.is_member(CAROL));
    assert_eq!(
        updated(&mut b_ev, "bob sees the removal", &bob)
            .await
            .members,
        g3.members
    );
    bob.shutdown().await;
    alice.send_group_text(&g.id, "after carol").await.unwrap();
    message(&mut k_ev, "bob's desktop gets it", "after carol").await;
    assert_ne!(
        chain(&alice, &g.id),
        chain_before,
        "the sender key was rotated"
    );
    let q = wait_queued(d, BOB, 1, 1).await;
    let env = q.last().unwrap();
    assert_ne!(env.key_type, 0, "bob's phone gets the new key with it");
    // Nothing was sent to Carol, and her store cannot read what Bob's phone got.
    assert!(queued(d, CAROL, 1).is_empty());
    let alice1 = ProtocolAddress::new(ALICE, 1);
    let r = carol.with_store(|s| pawl_core::group::group_decrypt(s, &alice1, &g.id, &env.message));
    assert!(matches!(r, Err(GroupError::NoSenderKeyState(_))), "{r:?}");
    // She does hold Alice's key, the old chain: it is the new chain she lacks.
    let new_chain = chain(&alice, &g.id);
    assert_eq!(r, Err(GroupError::NoSenderKeyState(new_chain)));
    let known =
        carol.with_store(|s| pawl_core::store::SenderKeyStore::load_sender_key(s, &alice1, &g.id));
    assert_eq!(known.unwrap().unwrap().state_count(), 1);
    bob.start();
    message(
        &mut b_ev,
        "bob's phone gets it after reconnecting",
        "after carol",
    )
    .await;
    assert_eq!(
        texts(&carol, &cg),
        vec!["hello group", "second", "from bob's desktop"]
    );
    // Carol can no longer post: her client refuses, and so would every member.
    let e = carol
        .send_group_text(&g.id, "still here?")
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Group(_)), "{e}");

    // An unlinked device is a device that left: once Alice knows (Bob's next message
    // names his newer device list, which she re-reads before her next send), her
    // next send rotates the key and goes to Bob's phone only.
    bob.unlink_device(desk_id).await.unwrap();
    let before = chain(&alice, &g.id);
    bob.send_text(ALICE, "desktop unlinked").await.unwrap();
    message(&mut a_ev, "alice hears from bob", "desktop unlinked").await;
    alice.send_group_text(&g.id, "desktop gone").await.unwrap();
    message(&mut b_ev, "bob's phone gets it", "desktop gone").await;
    assert_eq!(holders(&alice, &g.id), vec![(BOB.to_string(), 1)]);
    assert_ne!(
        chain(&alice, &g.id),
        before,
        "rotated after the device left"
    );

    alice.shutdown().await;
    bob.shutdown().await;
    desk.shutdown().await;
    carol.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_member_cannot_post_or_add_himself() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let relay = EmbeddedRelay::start(d, Limits::default()).await.unwrap();
    let (alice, _a_ev) = registered(&relay, d, "alice", ALICE).await;
    let (bob, mut b_ev) = registered(&relay, d, "bob", BOB).await;
    let (dave, _d_ev) = registered(&relay, d, "dave", DAVE).await;
    let g = alice.create_group("Climbing", &[BOB]).await.unwrap();
    updated(&mut b_ev, "bob learns the group", &bob).await;

    // Dave learned the group id (a leak, or the relay told him) and makes up a state
    // in his own store where he is an admin, then "adds" Bob with a higher version.
    dave.with_store(|s| {
        s.accept_group_update(
            DAVE,
            &GroupUpdate {
                group_id: g.id.clone(),
                version: 41,
                name: "Climbing".into(),
                members: vec![ALICE.into(), DAVE.into()],
                admins: vec![DAVE.into()],
            },
        )
    })
    .unwrap();
    dave.add_group_members(&g.id, &[BOB]).await.unwrap();
    decrypt_failed(&mut b_ev, "bob refuses dave's update", "is not an admin").await;
    dave.send_group_text(&g.id, "let me in").await.unwrap();
    decrypt_failed(&mut b_ev, "bob refuses dave's message", "is not a member").await;
    let bg = bob.group(&g.id).unwrap().unwrap();
    assert_eq!(
        (bg.version, bg.members.clone()),
        (1, vec![ALICE.to_string(), BOB.to_string()])
    );
    assert!(texts(&bob, &bg).is_empty());

    // Alice's next message still arrives: nothing of Dave's stuck.
    alice.send_group_text(&g.id, "hi bob").await.unwrap();
    message(&mut b_ev, "bob gets alice's", "hi bob").await;

    // A media message to the group: stored in the group chat with its descriptor,
    // and the attachment downloads and decrypts on Bob's side.
    let data: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let att = alice
        .upload_attachment(MediaKind::Image, &data[..], |_| {})
        .await
        .unwrap();
    let media = MediaMessage {
        attachment: att,
        mime_type: "image/png".into(),
        file_name: "crag.png".into(),
        caption: "the crag".into(),
        thumbnail: vec![0x89, b'P', b'N', b'G'],
        width: 640,
        height: 480,
    };
    alice.send_group_media(&g.id, &media).await.unwrap();
    let got = message(&mut b_ev, "bob gets the group's image", "the crag").await;
    assert_eq!(got.chat_id, bg.chat_id);
    let received = MediaMessage::of(&got).expect("a media message").unwrap();
    assert_eq!(received, media);
    let mut out = Vec::new();
    bob.download_attachment(&received.attachment, &mut out, |_| {})
        .await
        .unwrap();
    assert_eq!(out, data);

    alice.shutdown().await;
    bob.shutdown().await;
    dave.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_linked_later_gets_the_groups_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let relay = EmbeddedRelay::start(d, Limits::default()).await.unwrap();
    let (alice, _a_ev) = registered(&relay, d, "alice", ALICE).await;
    let (bob, mut b_ev) = registered(&relay, d, "bob", BOB).await;
    let g = alice.create_group("Climbing", &[BOB]).await.unwrap();
    updated(&mut b_ev, "bob learns the group", &bob).await;
    alice
        .send_group_text(&g.id, "before the desktop")
        .await
        .unwrap();
    message(&mut b_ev, "bob gets it", "before the desktop").await;

    // Bob links a desktop: his phone (not an admin) hands it the group's state, and
    // its history has the group chat.
    let (desk, mut k_ev, desk_id) = link_companion(&bob, config(&relay, d, "bob-desktop")).await;
    let dg = updated(
        &mut k_ev,
        "the desktop gets the group from bob's phone",
        &desk,
    )
    .await;
    assert_eq!(
        (dg.name.as_str(), dg.members.clone()),
        ("Climbing", g.members.clone())
    );
    expect(&mut k_ev, "history", |e| {
        matches!(e, Event::HistorySynced { .. }).then_some(())
    })
    .await;
    assert_eq!(texts(&desk, &dg), vec!["before the desktop"]);

    // Alice still has Bob's old list cached: the relay answers DeviceMismatch, the
    // send is corrected, and the new device gets the key with the message.
    alice.send_group_text(&g.id, "hello desktop").await.unwrap();
    let m = message(&mut k_ev, "the desktop decrypts it", "hello desktop").await;
    assert_eq!((m.chat_id, m.sender.as_str()), (dg.chat_id, ALICE));
    message(&mut b_ev, "and bob's phone", "hello desktop").await;
    let mut h = holders(&alice, &g.id);
    h.sort();
    assert_eq!(h, vec![(BOB.to_string(), 1), (BOB.to_string(), desk_id)]);
    alice.shutdown().await;
    bob.shutdown().await;
    desk.shutdown().await;
}
