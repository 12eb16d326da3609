//! Group benchmark over a relay on loopback (in this process, TLS, SQLite relay,
//! SQLCipher clients): M members with D devices each (each member a phone and D-1
//! linked companions); member 0's phone sends to the group.
//!
//! - Bytes: the Send frames (protobuf `ClientFrame`s, before TLS and WebSocket
//!   framing) one message puts on the wire, with the sender key for every device (the
//!   first message) and without (every later one). Measured from the sender's outbox
//!   while it is offline, then delivered.
//! - Time: a first message (key for every device) and S later ones: until the relay
//!   accepted every member's send (`send_group_text` returned), and until every
//!   other device (M·D - 1) has stored the last one.
//!
//! cargo bench -p pawl-relay --bench groups                                  # M=100, D=3, S=20
//! cargo bench -p pawl-relay --bench groups -- --members 100 --devices 3 --sends 20
//!
//! Under `cargo test` (no `--bench` argument) it runs small (M=3, D=2, S=3) and checks
//! that every device got every message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a measurement tool

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use pawl_core::client::{Client, ClientConfig, Event};
use pawl_core::wire::relay::{self as proto, ClientFrame, ClientKind};
use pawl_relay::{EmbeddedRelay, Limits};
use prost::Message as _;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

mod common;
use common::{registered, reset_peak, rss_kib, Events};

fn config(relay: &EmbeddedRelay, dir: &Path, name: &str) -> ClientConfig {
    let mut c = common::config(relay, dir, name);
    // Few one-time prekeys: setting up 300 devices should not dominate the run.
    c.prekey_batch = 20;
    c.prekey_low_water = 5;
    c
}

/// What every device reports: (device index, group updates or message text).
enum Seen {
    Group,
    Text(String),
}

/// Forward each device's group events to one channel.
fn collect(i: usize, mut ev: Events, tx: UnboundedSender<(usize, Seen)>) {
    tokio::spawn(async move {
        while let Some(e) = ev.recv().await {
            let seen = match e {
                Event::GroupUpdated { .. } => Seen::Group,
                Event::Message(m) => Seen::Text(m.text().unwrap_or("").to_string()),
                Event::DecryptFailed { error, .. } => panic!("device {i}: {error}"),
                _ => continue,
            };
            if tx.send((i, seen)).is_err() {
                return;
            }
        }
    });
}

/// Wait until `n` distinct devices have reported what `f` matches.
async fn seen_by(
    rx: &mut UnboundedReceiver<(usize, Seen)>,
    n: usize,
    what: &str,
    f: impl Fn(&Seen) -> bool,
) {
    let mut who: HashMap<usize, ()> = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    while who.len() < n {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((i, s))) if f(&s) => {
                who.insert(i, ());
            }
            Ok(Some(_)) => {}
            _ => panic!("timed out: {what} seen by {} of {n}", who.len()),
        }
    }
}

/// Wait until the relay's answers to every send have been taken in (the recipients
/// can have a message before the sender has the relay's answer).
async fn outbox_empty(c: &Client) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !c.with_store(|s| s.pending_sends()).unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the outbox did not drain"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The bytes of the Send frames the sender's outbox holds (what goes on the wire).
fn outbox_bytes(c: &Client) -> (usize, usize, usize) {
    let sends = c.with_store(|s| s.pending_sends()).unwrap();
    let mut bytes = 0;
    let mut envelopes = 0;
    for (i, s) in sends.iter().enumerate() {
        let f = ClientFrame {
            request_id: i as u64 + 1,
            kind: Some(ClientKind::Send(proto::Send {
                to_user: s.recipient.clone(),
                envelopes: s
                    .entries
                    .iter()
                    .map(|e| proto::OutEnvelope {
                        device_id: e.recipient.device_id,
                        message_type: u32::from(e.message_type),
                        payload: e.payload.clone(),
                    })
                    .collect(),
                ephemeral: false,
                unverified: vec![],
            })),
        };
        bytes += f.encoded_len();
        envelopes += s.entries.len();
    }
    (sends.len(), envelopes, bytes)
}

fn main() {
    let members = common::arg("--members", 100, 3).max(2);
    let devices = common::arg("--devices", 3, 2).max(1);
    let sends = common::arg("--sends", 20, 3).max(1);
    common::block_on(run(members, devices, sends));
}

async fn run(members: usize, devices: usize, sends: usize) {
    let dir = tempfile::tempdir().unwrap();
    // Members who never wrote to the sender: the first-contact budget is not measured.
    // Hundreds of devices connect from one address within seconds here.
    let limits = Limits {
        unsolicited_per_hour: 1e12,
        connections_per_second: 1e6,
        connection_burst: 1e6,
        ..Limits::default()
    };
    let relay = EmbeddedRelay::start(dir.path(), limits).await.unwrap();
    let d = dir.path();
    let setup = Instant::now();
    let (tx, mut rx) = unbounded_channel();
    let mut phones = Vec::new();
    let mut all = Vec::new(); // every device but the sender's phone
    let mut sender_events = None;
    for m in 0..members {
        let user = format!("+4917{m:09}");
        let (phone, ev) = registered(&relay, config(&relay, d, &format!("m{m}-1")), &user).await;
        if m == 0 {
            sender_events = Some(ev);
        } else {
            collect(all.len(), ev, tx.clone());
            all.push(phone.clone());
        }
        for k in 2..=devices {
            let (c, ev, _) = common::link(&phone, config(&relay, d, &format!("m{m}-{k}"))).await;
            collect(all.len(), ev, tx.clone());
            all.push(c);
        }
        phones.push((user, phone));
    }
    let _sender_events = sender_events;
    let others = all.len();
    println!(
        "groups: set up {members} members x {devices} devices in {:.1} s",
        setup.elapsed().as_secs_f64()
    );
    let (_, alice) = &phones[0];
    let names: Vec<&str> = phones[1..].iter().map(|(u, _)| u.as_str()).collect();

    // Bytes: group A, sent while the sender is offline (the sends wait in its outbox).
    let (rss0, _) = rss_kib();
    reset_peak();
    let a = alice.create_group("bytes", &names).await.unwrap();
    seen_by(&mut rx, others, "group A", |s| matches!(s, Seen::Group)).await;
    let g = alice.create_group("time", &names).await.unwrap();
    seen_by(&mut rx, others, "group B", |s| matches!(s, Seen::Group)).await;
    outbox_empty(alice).await;
    alice.shutdown().await;
    alice.send_group_text(&a.id, "first of A").await.unwrap();
    let (n_sends, n_env, first_bytes) = outbox_bytes(alice);
    alice.start();
    seen_by(
        &mut rx,
        others,
        "first of A",
        |s| matches!(s, Seen::Text(t) if t == "first of A"),
    )
    .await;
    outbox_empty(alice).await;
    alice.shutdown().await;
    alice.send_group_text(&a.id, "second of A").await.unwrap();
    let (_, n_env2, later_bytes) = outbox_bytes(alice);
    alice.start();
    seen_by(
        &mut rx,
        others,
        "second of A",
        |s| matches!(s, Seen::Text(t) if t == "second of A"),
    )
    .await;
    let own = usize::from(devices > 1);
    assert_eq!(
        n_sends,
        members - 1 + own,
        "one send per member (own devices included)"
    );
    assert_eq!(n_env, others);
    assert_eq!(n_env2, others);
    println!(
        "groups: one message to {members} members x {devices} devices = {n_sends} sends, {n_env} envelopes: {first_bytes} bytes with the sender key for every device ({:.0} per device), {later_bytes} bytes without ({:.0} per device)",
        first_bytes as f64 / n_env as f64,
        later_bytes as f64 / n_env as f64,
    );

    // Time: group B, online (connected again; warm up the connection with a ping-like
    // text in group A first).
    alice.send_group_text(&a.id, "warm up").await.unwrap();
    seen_by(
        &mut rx,
        others,
        "warm up",
        |s| matches!(s, Seen::Text(t) if t == "warm up"),
    )
    .await;
    let t = Instant::now();
    alice.send_group_text(&g.id, "first of B").await.unwrap();
    let accepted_first = t.elapsed();
    seen_by(
        &mut rx,
        others,
        "first of B",
        |s| matches!(s, Seen::Text(t) if t == "first of B"),
    )
    .await;
    let everywhere_first = t.elapsed();
    let t = Instant::now();
    for i in 0..sends {
        alice
            .send_group_text(&g.id, &format!("B {i}"))
            .await
            .unwrap();
    }
    let accepted = t.elapsed();
    let last = format!("B {}", sends - 1);
    seen_by(
        &mut rx,
        others,
        "last of B",
        |s| matches!(s, Seen::Text(t) if *t == last),
    )
    .await;
    let everywhere = t.elapsed();
    // The sender's cost alone: every other device offline (on phones of their own,
    // the receivers' work would not share these 2 cores), then their catching up.
    for c in &all {
        c.shutdown().await;
    }
    let t = Instant::now();
    for i in 0..sends {
        alice
            .send_group_text(&g.id, &format!("offline {i}"))
            .await
            .unwrap();
    }
    let accepted_offline = t.elapsed();
    let t = Instant::now();
    for c in &all {
        c.start();
    }
    let last_offline = format!("offline {}", sends - 1);
    seen_by(
        &mut rx,
        others,
        "last offline",
        |s| matches!(s, Seen::Text(t) if *t == last_offline),
    )
    .await;
    let drained = t.elapsed();
    let (_, peak) = rss_kib();
    println!(
        "groups: first message (key for {others} devices): {:.1} ms until the relay accepted all {members} sends, {:.1} ms until every device had it",
        accepted_first.as_secs_f64() * 1e3,
        everywhere_first.as_secs_f64() * 1e3,
    );
    println!(
        "groups: {sends} later messages: {:.1} ms per message until accepted, {:.1} ms per message until every device had the last; process peak RSS growth {:.1} MiB (relay + {} devices in one process)",
        accepted.as_secs_f64() * 1e3 / sends as f64,
        everywhere.as_secs_f64() * 1e3 / sends as f64,
        peak.saturating_sub(rss0) as f64 / 1024.0,
        others + 1,
    );
    println!(
        "groups: with every other device offline: {:.1} ms per message until the relay accepted all {members} sends (the sender's phone and the relay alone); then {others} devices reconnected and stored all {sends} in {:.0} ms",
        accepted_offline.as_secs_f64() * 1e3 / sends as f64,
        drained.as_secs_f64() * 1e3,
    );
    // Everything arrived in order in every store.
    for c in &all {
        let gb = c.group(&g.id).unwrap().unwrap();
        let n = c.with_store(|s| s.latest_messages(gb.chat_id, u32::MAX).unwrap().len());
        assert_eq!(
            n,
            2 * sends + 1,
            "every message of group B stored on every device"
        );
    }
    for (_, p) in &phones {
        p.shutdown().await;
    }
    for c in &all {
        c.shutdown().await;
    }
    relay.stop().await;
}
