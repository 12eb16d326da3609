//! Multi-device benchmark over a relay on loopback (in this process, TLS, SQLite):
//!
//! 1. Link a companion to a phone whose store holds N messages (10 chats) and sync
//!    them all as history: time to link, time until the last chunk is imported, and the
//!    process's peak memory growth (relay, phone and companion together).
//! 2. Fan-out: Alice and Bob with D devices each; Alice's phone sends M messages to Bob
//!    (D encryptions for Bob + D-1 copies for her own devices, two relay sends): time
//!    per message until the relay accepted both, and until all of Bob's devices have it.
//!
//! cargo bench -p pawl-relay --bench multidevice                        # N=10000, D=5, M=200
//! cargo bench -p pawl-relay --bench multidevice -- --messages 10000 --devices 5 --sends 200
//!
//! Under `cargo test` (no `--bench` argument) it runs small (N=300, D=2, M=10) and
//! checks that every message arrived.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a measurement tool

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use pawl_core::client::Event;
use pawl_core::sqlite::messages::{ImportedMessage, MessageDirection, MessageStatus};
use pawl_core::ProtocolAddress;
use pawl_relay::{EmbeddedRelay, Limits};

mod common;
use common::{config, link, registered, reset_peak, rss_kib, wait};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn main() {
    let messages = common::arg("--messages", 10_000, 300);
    let devices = common::arg("--devices", 5, 2).max(1);
    let sends = common::arg("--sends", 200, 10);
    common::block_on(run(messages, devices, sends));
}

async fn run(messages: usize, devices: usize, sends: usize) {
    let dir = tempfile::tempdir().unwrap();
    // Alice writes to Bob, who never answers: the first-contact budget is not measured.
    let limits = Limits {
        unsolicited_per_hour: 1e12,
        ..Limits::default()
    };
    let relay = EmbeddedRelay::start(dir.path(), limits).await.unwrap();
    const ALICE: &str = "+4915100000001";
    const BOB: &str = "+4915100000002";
    let mut phone_cfg = config(&relay, dir.path(), "phone");
    phone_cfg.history.max_messages_per_chat = messages as u32;
    let (phone, _p_ev) = registered(&relay, phone_cfg, ALICE).await;
    // N messages in 10 chats, as if they had been exchanged (imported: fast to seed).
    let now = now_ms();
    for chat in 0..10 {
        let peer = format!("+49170000000{chat:02}");
        let batch: Vec<ImportedMessage> = (0..messages / 10)
            .map(|i| ImportedMessage {
                sender: ProtocolAddress::new(if i % 2 == 0 { ALICE } else { &peer }, 1),
                direction: if i % 2 == 0 {
                    MessageDirection::Outgoing
                } else {
                    MessageDirection::Incoming
                },
                envelope_id: Some(format!("seed-{chat}-{i}").into_bytes()),
                body: format!("message {i} of chat {chat}: some ordinary text of a chat")
                    .into_bytes(),
                sent_at: now - (messages as i64 - i as i64) * 1000,
                received_at: Some(now),
                status: MessageStatus::Read,
            })
            .collect();
        phone
            .with_store(|s| s.import_messages(&peer, &batch))
            .unwrap();
    }
    let seeded = messages / 10 * 10;

    // 1. Link and sync history.
    let (rss0, _) = rss_kib();
    reset_peak();
    let t = Instant::now();
    let (desktop, mut d_ev, link_time) = link(&phone, config(&relay, dir.path(), "desktop")).await;
    let mut imported = 0usize;
    loop {
        let (done, all, n) = wait(&mut d_ev, "history", |e| match e {
            Event::HistorySynced {
                chunks_done,
                chunks,
                messages,
            } => Some((*chunks_done, *chunks, *messages)),
            _ => None,
        })
        .await;
        imported += n as usize;
        if done >= all {
            break;
        }
    }
    let total = t.elapsed();
    let (_, peak) = rss_kib();
    let stored: usize = desktop.with_store(|s| {
        s.chats()
            .unwrap()
            .iter()
            .map(|c| s.latest_messages(c.id, u32::MAX).unwrap().len())
            .sum()
    });
    println!(
        "multidevice: link {:.0} ms; link + history of {seeded} messages imported {:.0} ms ({imported} imported, {stored} in the companion's store); process RSS {:.1} MiB before, peak growth {:.1} MiB (relay + phone + companion in one process)",
        link_time.as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e3,
        rss0 as f64 / 1024.0,
        peak.saturating_sub(rss0) as f64 / 1024.0,
    );
    assert_eq!(imported, seeded, "every message of the history arrived");
    assert_eq!(stored, seeded);

    // 2. Fan-out with D devices on each side.
    let mut extra = vec![(desktop, d_ev)];
    for i in 2..devices {
        let (c, e, _) = link(&phone, config(&relay, dir.path(), &format!("alice-{i}"))).await;
        extra.push((c, e));
    }
    if devices == 1 {
        // No companion on Alice's side: unlink the one from part 1.
        phone.unlink_device(2).await.unwrap();
        extra.clear();
    }
    let (bob, b_ev) = registered(&relay, config(&relay, dir.path(), "bob"), BOB).await;
    let mut bobs = vec![(bob.clone(), b_ev)];
    for i in 1..devices {
        let (c, e, _) = link(&bob, config(&relay, dir.path(), &format!("bob-{i}"))).await;
        bobs.push((c, e));
    }
    // Warm up: device lists verified, sessions made.
    phone.send_text(BOB, "warm up").await.unwrap();
    for (_, ev) in bobs.iter_mut() {
        wait(ev, "warm-up", |e| {
            matches!(e, Event::Message(m) if m.text() == Some("warm up")).then_some(())
        })
        .await;
    }
    let t = Instant::now();
    for i in 0..sends {
        phone.send_text(BOB, &format!("fan-out {i}")).await.unwrap();
    }
    let accepted = t.elapsed();
    let last = format!("fan-out {}", sends - 1);
    for (_, ev) in bobs.iter_mut() {
        wait(ev, "last message", |e| {
            matches!(e, Event::Message(m) if m.text() == Some(last.as_str())).then_some(())
        })
        .await;
    }
    let everywhere = t.elapsed();
    let own = extra.len();
    for (_, ev) in extra.iter_mut() {
        wait(ev, "copy", |e| {
            matches!(e, Event::Message(m) if m.text() == Some(last.as_str())).then_some(())
        })
        .await;
    }
    println!(
        "multidevice: fan-out with {devices} devices each side ({devices} envelopes to Bob + {own} copies): {sends} messages, {:.2} ms per message until the relay accepted both sends, {:.2} ms per message until all of Bob's devices had it",
        accepted.as_secs_f64() * 1e3 / sends as f64,
        everywhere.as_secs_f64() * 1e3 / sends as f64,
    );
    relay.stop().await;
}
