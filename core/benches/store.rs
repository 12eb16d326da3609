//! Store benchmarks: draining a queue into the store, and paging a large database,
//! each encrypted (SQLCipher) and plain, in the same run.
//!
//! `cargo bench -p pawl-core --bench store` (the 1,000,000-message database takes a
//! minute to build per variant; in `cargo test` mode a small database is used).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)] // bench code

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use pawl_core::keys::{IdentityKeyPair, PreKeyBundle, PreKeyRecord, SignedPreKeyRecord};
use pawl_core::sqlite::messages::{Envelope, ImportedMessage, MessageDirection, MessageStatus};
use pawl_core::sqlite::SqliteStore;
use pawl_core::store::*;
use pawl_core::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const KEY: [u8; 32] = [9; 32];
/// Envelopes per transaction when draining (what one relay fetch returns).
const BATCH: usize = 1000;

fn full_run() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Bob's store at `path` with a session from Alice past the PreKey phase, and `n`
/// queued SignalMessages from Alice.
fn queued(path: &Path, key: Option<&[u8; 32]>, n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let bob_id = IdentityKeyPair::generate(&mut rng);
    let mut bob = SqliteStore::open(path, key).unwrap();
    bob.set_local_identity(&bob_id, 2).unwrap();
    let spk = SignedPreKeyRecord::generate(1, 0, &bob_id, &mut rng);
    bob.save_signed_pre_key(&spk).unwrap();
    let mut alice = InMemProtocolStore::new(IdentityKeyPair::generate(&mut rng), 1);
    let (aa, ba) = (
        ProtocolAddress::new("alice", 1),
        ProtocolAddress::new("bob", 1),
    );
    let bundle = PreKeyBundle::from_records(2, 1, *bob_id.identity_key(), &spk, None);
    let _ = PreKeyRecord::generate(1, &mut rng);
    process_prekey_bundle(&mut alice, &ba, &bundle, &mut rng).unwrap();
    let m = message_encrypt(&mut alice, &ba, b"hi").unwrap();
    bob.receive(
        &aa,
        &Envelope {
            id: b"first",
            message_type: 3,
            ciphertext: m.serialized(),
            sent_at: 0,
        },
        0,
        &mut rng,
    )
    .unwrap();
    let (_, out) = bob.send(&aa, b"hi back", 0).unwrap();
    message_decrypt_signal(
        &mut alice,
        &ba,
        &SignalMessage::parse(&out.payload).unwrap(),
        &mut rng,
    )
    .unwrap();
    (0..n)
        .map(|i| {
            let m = message_encrypt(
                &mut alice,
                &ba,
                format!("queued message number {i} with a little text").as_bytes(),
            )
            .unwrap();
            (format!("q{i}").into_bytes(), m.serialized().to_vec())
        })
        .collect()
}

fn drain(c: &mut Criterion) {
    let n = if full_run() { 10_000 } else { 200 };
    let mut g = c.benchmark_group(format!("drain_{n}"));
    g.sample_size(10);
    for (name, key) in [("encrypted", Some(KEY)), ("plain", None)] {
        let dir = tempfile::tempdir().unwrap();
        let template = dir.path().join("template.db");
        let msgs = queued(&template, key.as_ref(), n);
        let mut round = 0;
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    round += 1;
                    let p = dir.path().join(format!("run{round}.db"));
                    std::fs::copy(&template, &p).unwrap();
                    SqliteStore::open(&p, key.as_ref()).unwrap()
                },
                |mut store| {
                    let alice = ProtocolAddress::new("alice", 1);
                    let mut rng = ChaCha20Rng::seed_from_u64(2);
                    for chunk in msgs.chunks(BATCH) {
                        let envs: Vec<Envelope<'_>> = chunk
                            .iter()
                            .map(|(id, ct)| Envelope {
                                id,
                                message_type: 2,
                                ciphertext: ct,
                                sent_at: 0,
                            })
                            .collect();
                        let out = store.receive_batch(&alice, &envs, 0, &mut rng).unwrap();
                        assert!(out.iter().all(|r| r.is_ok()));
                    }
                    black_box(store)
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

fn paging(c: &mut Criterion) {
    let total = if full_run() { 1_000_000 } else { 10_000 };
    let mut g = c.benchmark_group(format!("latest_50_of_{total}"));
    for (name, key) in [("encrypted", Some(KEY)), ("plain", None)] {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&dir.path().join("big.db"), key.as_ref()).unwrap();
        // 10 chats; the one queried holds a tenth of the messages.
        let chats = 10;
        for c in 0..chats {
            let peer = format!("peer{c}");
            for start in (0..total / chats).step_by(50_000) {
                let batch: Vec<ImportedMessage> = (start..(start + 50_000).min(total / chats))
                    .map(|i| ImportedMessage {
                        sender: ProtocolAddress::new(peer.clone(), 1),
                        direction: if i % 3 == 0 {
                            MessageDirection::Outgoing
                        } else {
                            MessageDirection::Incoming
                        },
                        envelope_id: Some(format!("{peer}-{i}").into_bytes()),
                        body: format!(
                            "message {i} in chat {c}: some ordinary chat text of average length"
                        )
                        .into_bytes(),
                        sent_at: i as i64,
                        received_at: Some(i as i64),
                        status: MessageStatus::Read,
                    })
                    .collect();
                store.import_messages(&peer, &batch).unwrap();
            }
        }
        let chat = store.chat_id("peer3").unwrap();
        g.bench_function(name, |b| {
            b.iter(|| black_box(store.latest_messages(chat, 50).unwrap()))
        });
    }
    g.finish();
}

mod group {
    use super::*;
    criterion_group! {
        name = store;
        config = Criterion::default().warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(3));
        targets = drain, paging
    }
}
use group::store;
criterion_main!(store);
