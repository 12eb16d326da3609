//! The client (`pawl_core::client`) against a real relay on loopback, over TLS with a
//! pinned self-signed certificate, each device on its own encrypted SQLite file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::time::Duration;

use pawl_core::client::{Client, ClientError, Event, TlsTrust};
use pawl_core::sqlite::messages::{MessageDirection, MessageStatus};
use pawl_relay::{EmbeddedRelay, Limits};

mod common;
use common::{config, expect, link_companion, registered, status};

const ALICE: &str = "+4915100000001";
const BOB: &str = "+4915100000002";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_chat_with_receipts_typing_and_store_and_forward() {
    let dir = tempfile::tempdir().unwrap();
    let relay = EmbeddedRelay::start(dir.path(), Limits::default())
        .await
        .unwrap();
    let (alice, mut a_ev) = registered(&relay, dir.path(), "alice", ALICE).await;
    let (bob, mut b_ev) = registered(&relay, dir.path(), "bob", BOB).await;

    // Alice -> Bob: sent, received, delivered.
    let mid = alice.send_text(BOB, "hello Bob").await.unwrap();
    let got = expect(&mut b_ev, "Bob receives", |e| match e {
        Event::Message(m) => Some(m.clone()),
        _ => None,
    })
    .await;
    assert_eq!(got.text(), Some("hello Bob"));
    assert_eq!(got.sender, ALICE);
    assert_eq!(got.direction, MessageDirection::Incoming);
    expect(&mut a_ev, "delivered", |e| match e {
        Event::Delivered { message_id, device } if *message_id == mid => {
            assert_eq!(device.name, BOB);
            Some(())
        }
        _ => None,
    })
    .await;
    assert_eq!(status(&alice, mid), MessageStatus::Delivered);

    // Bob reads: the read receipt travels end to end encrypted.
    assert_eq!(bob.mark_read(ALICE).await.unwrap(), 1);
    expect(&mut a_ev, "read", |e| match e {
        Event::Read { message_id, by } if *message_id == mid => Some(by.clone()),
        _ => None,
    })
    .await;
    assert_eq!(status(&alice, mid), MessageStatus::Read);
    // Nothing unread on Bob's side any more; a second mark_read sends nothing.
    assert_eq!(bob.mark_read(ALICE).await.unwrap(), 0);

    // Bob answers; typing indicators are ephemeral.
    bob.set_typing(ALICE, true).await.unwrap();
    expect(&mut a_ev, "typing", |e| match e {
        Event::Typing {
            from,
            started: true,
        } if from.name == BOB => Some(()),
        _ => None,
    })
    .await;
    bob.set_presence(ALICE, true).await.unwrap();
    expect(&mut a_ev, "presence", |e| match e {
        Event::Presence { from, online: true } if from.name == BOB => Some(()),
        _ => None,
    })
    .await;
    bob.send_text(ALICE, "hi Alice").await.unwrap();
    let got = expect(&mut a_ev, "Alice receives", |e| match e {
        Event::Message(m) => Some(m.clone()),
        _ => None,
    })
    .await;
    assert_eq!(got.text(), Some("hi Alice"));

    // Bob goes offline; Alice sends three; Bob comes back (a new process would do
    // the same: the store is reopened) and gets them in order, once each.
    bob.shutdown().await;
    drop(bob);
    drop(b_ev);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(alice.send_text(BOB, &format!("offline {i}")).await.unwrap());
    }
    for id in &ids {
        expect(&mut a_ev, "sent", |e| {
            matches!(e, Event::Sent { message_id } if message_id == id).then_some(())
        })
        .await;
    }
    let (bob, mut b_ev) = Client::open(config(&relay, dir.path(), "bob")).unwrap();
    bob.start();
    let mut texts = Vec::new();
    while texts.len() < 3 {
        let m = expect(&mut b_ev, "queued messages", |e| match e {
            Event::Message(m) => Some(m.clone()),
            _ => None,
        })
        .await;
        texts.push(m.text().unwrap().to_string());
    }
    assert_eq!(texts, ["offline 0", "offline 1", "offline 2"]);
    for id in &ids {
        expect(&mut a_ev, "delivered after reconnect", |e| {
            matches!(e, Event::Delivered { message_id, .. } if message_id == id).then_some(())
        })
        .await;
    }
    // Bob's store holds each message once.
    let chat = bob.with_store(|s| s.chat_id(ALICE)).unwrap();
    let all = bob.with_store(|s| s.latest_messages(chat, 100)).unwrap();
    let incoming: Vec<_> = all
        .iter()
        .filter(|m| m.direction == MessageDirection::Incoming)
        .map(|m| m.text().unwrap().to_string())
        .collect();
    assert_eq!(
        incoming,
        ["offline 2", "offline 1", "offline 0", "hello Bob"]
    );
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinning_wrong_codes_and_unregistered_devices_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let relay = EmbeddedRelay::start(dir.path(), Limits::default())
        .await
        .unwrap();

    // A client pinned to another certificate refuses this relay.
    let mut c = config(&relay, dir.path(), "mallory");
    let mut other = relay.cert_sha256;
    other[0] ^= 1;
    c.tls = Some(TlsTrust::PinnedCertSha256(other));
    let (m, _ev) = Client::open(c).unwrap();
    match m.request_code(ALICE).await {
        Err(ClientError::Tls(e)) => assert!(e.contains("pinned"), "{e}"),
        other => panic!("expected a TLS error, got {other:?}"),
    }
    assert!(relay.code_for(ALICE).is_none(), "nothing reached the relay");

    // Without a pin, wss:// is refused by configuration.
    let mut c = config(&relay, dir.path(), "nopin");
    c.tls = None;
    let (n, _ev) = Client::open(c).unwrap();
    assert!(matches!(
        n.request_code(ALICE).await,
        Err(ClientError::Config(_))
    ));

    // A wrong code is refused, the right one works.
    let (a, _ev) = Client::open(config(&relay, dir.path(), "alice")).unwrap();
    a.request_code(ALICE).await.unwrap();
    let code = relay.code_for(ALICE).unwrap();
    let wrong = if code == "000000" { "000001" } else { "000000" };
    match a.verify_code(ALICE, wrong).await {
        Err(ClientError::Relay { code, .. }) => assert_eq!(code, "BadCode"),
        other => panic!("expected BadCode, got {other:?}"),
    }
    assert!(matches!(a.address(), Err(ClientError::NotRegistered)));
    a.verify_code(ALICE, &code).await.unwrap();
    assert_eq!(a.address().unwrap().name, ALICE);
    // The code is used up: another device cannot take the number with it.
    let (b, _ev) = Client::open(config(&relay, dir.path(), "thief")).unwrap();
    match b.verify_code(ALICE, &code).await {
        Err(ClientError::Relay { code, .. }) => assert_eq!(code, "BadCode"),
        other => panic!("expected BadCode, got {other:?}"),
    }
    // Not a phone number.
    match b.request_code("alice").await {
        Err(ClientError::Relay { code, .. }) => assert_eq!(code, "BadRequest"),
        other => panic!("expected BadRequest, got {other:?}"),
    }
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_blobs_expiry_and_first_contact_limits() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        unsolicited_per_hour: 3.0,
        message_ttl: Duration::from_millis(400),
        expiry_interval: Duration::from_millis(100),
        ..Limits::default()
    };
    let relay = EmbeddedRelay::start(dir.path(), limits).await.unwrap();
    let (alice, mut a_ev) = registered(&relay, dir.path(), "alice", ALICE).await;
    let (bob, b_ev) = registered(&relay, dir.path(), "bob", BOB).await;

    // Contact discovery: only hash prefixes leave the device; unknown numbers are not found.
    let book = vec![
        BOB.to_string(),
        "+4915199999999".to_string(),
        ALICE.to_string(),
    ];
    assert_eq!(
        alice.discover(&book).await.unwrap(),
        vec![ALICE.to_string(), BOB.to_string()]
    );

    // First contacts: Bob has never written to Alice, so her messages to him count
    // against the limit (3 per hour here); the fourth is refused.
    for i in 0..3 {
        alice.send_text(BOB, &format!("hello {i}")).await.unwrap();
    }
    match alice.send_text(BOB, "one too many").await {
        Err(ClientError::Relay { code, .. }) => assert_eq!(code, "RateLimited"),
        other => panic!("expected RateLimited, got {other:?}"),
    }
    // Once Bob replies the conversation is no longer unsolicited.
    bob.send_text(ALICE, "hi, who is this?").await.unwrap();
    expect(&mut a_ev, "Bob's reply", |e| {
        matches!(e, Event::Message(_)).then_some(())
    })
    .await;
    for i in 0..5 {
        alice
            .send_text(BOB, &format!("after the reply {i}"))
            .await
            .unwrap();
    }

    // Blobs: a 300 KB upload in chunks with progress, downloaded by Bob byte for byte.
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut seen = Vec::new();
    let id = alice.upload_blob(&data, |n| seen.push(n)).await.unwrap();
    assert_eq!(id.len(), 16);
    assert_eq!(seen.last(), Some(&300_000));
    assert!(seen.len() >= 3, "chunked: {seen:?}");
    assert_eq!(bob.download_blob(&id).await.unwrap(), data);
    match bob.download_blob(b"no such blob....").await {
        Err(ClientError::Relay { code, .. }) => assert_eq!(code, "NotFound"),
        other => panic!("expected NotFound, got {other:?}"),
    }

    // Expiry: Bob is offline longer than the relay keeps messages; Alice's message
    // fails with a receipt that says so, and Bob never gets it.
    bob.shutdown().await;
    drop(bob);
    drop(b_ev);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mid = alice.send_text(BOB, "this one will expire").await.unwrap();
    let reason = expect(&mut a_ev, "expired", |e| match e {
        Event::Failed {
            message_id: Some(m),
            reason,
        } if *m == mid => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(reason.contains("expired"), "{reason}");
    assert_eq!(status(&alice, mid), MessageStatus::Failed);
    let (bob, mut b_ev) = Client::open(config(&relay, dir.path(), "bob")).unwrap();
    bob.start();
    expect(&mut b_ev, "reconnected", |e| {
        matches!(e, Event::Connected).then_some(())
    })
    .await;
    // A message sent now arrives; the expired one never does.
    bob.send_text(ALICE, "back").await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(800);
    while let Ok(Some(e)) = tokio::time::timeout_at(deadline, b_ev.recv()).await {
        if let Event::Message(m) = e {
            assert_ne!(m.text(), Some("this one will expire"));
        }
    }
    relay.stop().await;
}

/// Bob gains a second device after Alice learned his device list: the relay refuses
/// her send (DeviceMismatch, device 2 missing), her client fetches a bundle for the new
/// device, encrypts the same message for it and sends again; both devices get it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_device_of_the_recipient_is_added_to_the_send() {
    let dir = tempfile::tempdir().unwrap();
    let relay = EmbeddedRelay::start(dir.path(), Limits::default())
        .await
        .unwrap();
    let (alice, mut a_ev) = registered(&relay, dir.path(), "alice", ALICE).await;
    let (bob, mut b_ev) = registered(&relay, dir.path(), "bob", BOB).await;
    bob.send_text(ALICE, "hi").await.unwrap();
    alice.send_text(BOB, "first, to one device").await.unwrap();
    expect(&mut b_ev, "first", |e| {
        matches!(e, Event::Message(_)).then_some(())
    })
    .await;
    expect(&mut a_ev, "hi", |e| {
        matches!(e, Event::Message(_)).then_some(())
    })
    .await;
    assert_eq!(alice.with_store(|s| s.devices(BOB)).unwrap(), vec![1]);

    // Bob links a desktop; Alice's last known list is [1], so the relay's device-set
    // check corrects her next send (after she checks the new device's signatures).
    let (_bob2, mut b2_ev, _) =
        link_companion(&bob, config(&relay, dir.path(), "bob-desktop")).await;

    let mid = alice.send_text(BOB, "second, to both").await.unwrap();
    for ev in [&mut b_ev, &mut b2_ev] {
        let m = expect(ev, "second", |e| match e {
            Event::Message(m) => Some(m.clone()),
            _ => None,
        })
        .await;
        assert_eq!(m.text(), Some("second, to both"));
    }
    assert_eq!(alice.with_store(|s| s.devices(BOB)).unwrap(), vec![1, 2]);
    let mut devices = std::collections::BTreeSet::new();
    while devices.len() < 2 {
        let d = expect(&mut a_ev, "delivered to both", |e| match e {
            Event::Delivered { message_id, device } if *message_id == mid => Some(device.device_id),
            _ => None,
        })
        .await;
        devices.insert(d);
    }
    relay.stop().await;
}

/// When bundle fetches leave Bob with fewer one-time prekeys than the relay's
/// threshold, the relay tells his connected client, which uploads more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_prekey_signal_makes_the_device_refill() {
    let dir = tempfile::tempdir().unwrap();
    let relay = EmbeddedRelay::start(dir.path(), Limits::default())
        .await
        .unwrap();
    // Bob uploads 12 one-time prekeys at a time; the relay signals below 10.
    let (bob, mut b_ev) = {
        let mut c = config(&relay, dir.path(), "bob");
        c.prekey_batch = 12;
        let (c, mut ev) = Client::open(c).unwrap();
        c.request_code(BOB).await.unwrap();
        c.verify_code(BOB, &relay.code_for(BOB).unwrap())
            .await
            .unwrap();
        c.start();
        let n = expect(&mut ev, "first upload", |e| match e {
            Event::PreKeysUploaded { count } => Some(*count),
            _ => None,
        })
        .await;
        assert_eq!(n, 12);
        (c, ev)
    };
    // Three new contacts start sessions with Bob: three bundles, three prekeys gone.
    let mut refills = Vec::new();
    for (i, phone) in ["+4915100000021", "+4915100000022", "+4915100000023"]
        .iter()
        .enumerate()
    {
        let (c, _ev) = registered(&relay, dir.path(), &format!("sender{i}"), phone).await;
        c.send_text(BOB, "hello").await.unwrap();
        expect(&mut b_ev, "message", |e| match e {
            Event::Message(_) => Some(()),
            Event::PreKeysUploaded { count } => {
                refills.push(*count);
                None
            }
            _ => None,
        })
        .await;
        c.shutdown().await;
        assert!(
            refills.is_empty() || i == 2,
            "no refill before the third fetch"
        );
    }
    // 12 - 3 = 9 < 10: the relay pushed KeysLow and Bob's client uploaded 12 more.
    if refills.is_empty() {
        let n = expect(&mut b_ev, "refill", |e| match e {
            Event::PreKeysUploaded { count } => Some(*count),
            _ => None,
        })
        .await;
        refills.push(n);
    }
    assert_eq!(refills, vec![12]);
    bob.shutdown().await;
    relay.stop().await;
}
