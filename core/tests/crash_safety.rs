//! Crash safety and multi-process access of the SQLite store, with real processes.
//!
//! * `killed_at_random_points`: a child process drains a long stream of messages into
//!   an encrypted store and is killed with SIGKILL at random moments, at least 50 times;
//!   each restart continues the stream. Afterwards every message is stored exactly
//!   once, no plaintext was handed out twice, the ratchet was never rolled back (an old
//!   ciphertext under a new envelope id is a duplicate), and the sender's later
//!   messages still decrypt.
//! * `two_processes_share_one_store`: two children (think: app and notification
//!   extension) drain the same stream into the same file at the same time.
//!
//! The children are this test binary run again (`child_process`, ignored in normal
//! runs) with `PAWL_CHILD_DIR` set. After every committed message a child appends
//! `envelope-id plaintext` to its log: the log lists what was handed to the app.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pawl_core::keys::{IdentityKeyPair, PreKeyBundle, PreKeyRecord, SignedPreKeyRecord};
use pawl_core::sqlite::messages::{Envelope, Received};
use pawl_core::sqlite::SqliteStore;
use pawl_core::store::*;
use pawl_core::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

const KEY: [u8; 32] = [0x33; 32];
const ALICE: &str = "alice";

struct Sender {
    store: InMemProtocolStore,
    bob: ProtocolAddress,
    next: u32,
}

/// Creates Bob's store in `dir` and Alice with a session to him.
fn setup(dir: &Path, rng: &mut ChaCha20Rng) -> Sender {
    let bob_id = IdentityKeyPair::generate(rng);
    let mut bob = SqliteStore::open(&dir.join("bob.db"), Some(&KEY)).unwrap();
    bob.set_local_identity(&bob_id, 2).unwrap();
    let spk = SignedPreKeyRecord::generate(1, 0, &bob_id, rng);
    let pk = PreKeyRecord::generate(1, rng);
    bob.save_signed_pre_key(&spk).unwrap();
    bob.save_pre_key(&pk).unwrap();
    let mut store = InMemProtocolStore::new(IdentityKeyPair::generate(rng), 1);
    let bobaddr = ProtocolAddress::new("bob", 1);
    let bundle = PreKeyBundle::from_records(2, 1, *bob_id.identity_key(), &spk, Some(&pk));
    process_prekey_bundle(&mut store, &bobaddr, &bundle, rng).unwrap();
    Sender {
        store,
        bob: bobaddr,
        next: 0,
    }
}

impl Sender {
    /// Append `n` messages to the stream file: `id type hex plaintext` per line.
    fn extend_stream(&mut self, dir: &Path, n: u32) -> Vec<(String, u8, Vec<u8>)> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("stream"))
            .unwrap();
        let mut out = Vec::new();
        for _ in 0..n {
            let id = format!("m{:06}", self.next);
            let m = message_encrypt(
                &mut self.store,
                &self.bob,
                format!("body of {id}").as_bytes(),
            )
            .unwrap();
            writeln!(
                f,
                "{id} {} {}",
                m.message_type(),
                hex::encode(m.serialized())
            )
            .unwrap();
            out.push((id, m.message_type(), m.serialized().to_vec()));
            self.next += 1;
        }
        f.sync_all().unwrap();
        out
    }
}

fn spawn_child(dir: &Path, log: &str, seed: u64) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PAWL_CHILD_DIR", dir)
        .env("PAWL_CHILD_LOG", log)
        .env("PAWL_CHILD_SEED", seed.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The child: drain the stream file into the store in random-size batches.
#[test]
#[ignore = "child process entry point of the tests in this file"]
fn child_process() {
    let Some(dir) = std::env::var_os("PAWL_CHILD_DIR").map(PathBuf::from) else {
        return;
    };
    let log_name = std::env::var("PAWL_CHILD_LOG").unwrap();
    let mut rng =
        ChaCha20Rng::seed_from_u64(std::env::var("PAWL_CHILD_SEED").unwrap().parse().unwrap());
    let mut store = SqliteStore::open(&dir.join("bob.db"), Some(&KEY)).unwrap();
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(&log_name))
        .unwrap();
    let stream = std::fs::read_to_string(dir.join("stream")).unwrap();
    let lines: Vec<(String, u8, Vec<u8>)> = stream
        .lines()
        .map(|l| {
            let mut it = l.split(' ');
            (
                it.next().unwrap().to_string(),
                it.next().unwrap().parse().unwrap(),
                hex::decode(it.next().unwrap()).unwrap(),
            )
        })
        .collect();
    let alice = ProtocolAddress::new(ALICE, 1);
    let mut i = 0;
    while i < lines.len() {
        let n = rng.gen_range(1..=8).min(lines.len() - i);
        let batch: Vec<Envelope<'_>> = lines[i..i + n]
            .iter()
            .map(|(id, t, ct)| Envelope {
                id: id.as_bytes(),
                message_type: *t,
                ciphertext: ct,
                sent_at: 0,
            })
            .collect();
        let out = loop {
            match store.receive_batch(&alice, &batch, 0, &mut rng) {
                Err(StoreError::Busy) => continue,
                r => break r.unwrap(),
            }
        };
        for (env, r) in batch.iter().zip(out) {
            match r.unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(env.id))) {
                Received::New(m) => {
                    // One write(2) per line: `writeln!` on a File issues one per
                    // formatted piece, and a kill between them tore a line (CI saw
                    // "m000139m000140 body of m000140").
                    let line = format!(
                        "{} {}\n",
                        String::from_utf8_lossy(env.id),
                        m.text().unwrap()
                    );
                    log.write_all(line.as_bytes()).unwrap();
                }
                Received::Duplicate { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        log.flush().unwrap();
        i += n;
    }
}

/// Every stream message stored exactly once with the right body; logs hold no repeat.
fn verify(dir: &Path, sender: &mut Sender, logs: &[&str], sent: &[(String, u8, Vec<u8>)]) {
    let mut seen = HashSet::new();
    for l in logs {
        let text = std::fs::read_to_string(dir.join(l)).unwrap_or_default();
        for line in text.lines() {
            let (id, body) = line.split_once(' ').unwrap();
            assert_eq!(body, format!("body of {id}"));
            assert!(
                seen.insert(id.to_string()),
                "{id} was handed to the app twice"
            );
        }
    }
    let mut store = SqliteStore::open(&dir.join("bob.db"), Some(&KEY)).unwrap();
    let chat = store.chat_id(ALICE).unwrap();
    let mut all = store.latest_messages(chat, u32::MAX).unwrap();
    all.sort_by_key(|m| m.id);
    assert_eq!(all.len(), sent.len(), "every message stored exactly once");
    let bodies: HashSet<_> = all.iter().map(|m| m.text().unwrap().to_string()).collect();
    assert_eq!(bodies.len(), sent.len(), "no body twice");
    for (id, _, _) in sent {
        assert!(bodies.contains(&format!("body of {id}")), "{id} missing");
    }
    // A log line can be lost to a kill between commit and write, never duplicated.
    assert!(seen.len() <= sent.len());
    // No rollback: an already-consumed ciphertext under a new envelope id is refused.
    let alice = ProtocolAddress::new(ALICE, 1);
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    for (_, t, ct) in sent.iter().step_by(97) {
        let r = store.receive(
            &alice,
            &Envelope {
                id: b"fresh-id",
                message_type: *t,
                ciphertext: ct,
                sent_at: 0,
            },
            0,
            &mut rng,
        );
        assert!(
            matches!(r, Err(SessionError::DuplicateMessage { .. })),
            "{r:?}"
        );
    }
    // The sender's later messages still decrypt.
    let later = sender.extend_stream(dir, 3);
    for (id, t, ct) in &later {
        let r = store
            .receive(
                &alice,
                &Envelope {
                    id: id.as_bytes(),
                    message_type: *t,
                    ciphertext: ct,
                    sent_at: 0,
                },
                0,
                &mut rng,
            )
            .unwrap();
        assert!(matches!(r, Received::New(ref m) if m.text() == Some(&format!("body of {id}"))));
    }
}

#[test]
fn killed_at_random_points() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut rng = ChaCha20Rng::seed_from_u64(0xc0ffee);
    let mut sender = setup(dir, &mut rng);
    let mut sent = sender.extend_stream(dir, 400);
    let mut kills = 0;
    let mut runs = 0;
    while kills < 60 {
        // Keep a backlog, so that every kill lands while the child is working.
        let done = std::fs::read_to_string(dir.join("log"))
            .map(|s| s.lines().count())
            .unwrap_or(0);
        if sent.len() - done < 300 {
            sent.extend(sender.extend_stream(dir, 400));
        }
        let mut child = spawn_child(dir, "log", runs);
        runs += 1;
        std::thread::sleep(Duration::from_micros(rng.gen_range(2_000..40_000)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        let status = child.wait().unwrap();
        if status.code().is_some() && !status.success() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            panic!("child failed: {err}");
        }
    }
    // Let the last run finish the stream.
    let out = spawn_child(dir, "log", 999).wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{kills} kills over {runs} runs, {} messages", sent.len());
    verify(dir, &mut sender, &["log"], &sent);
}

#[test]
fn two_processes_share_one_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut rng = ChaCha20Rng::seed_from_u64(0xbeef);
    let mut sender = setup(dir, &mut rng);
    let sent = sender.extend_stream(dir, 600);
    let a = spawn_child(dir, "log-app", 1);
    let b = spawn_child(dir, "log-extension", 2);
    for c in [a, b] {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let n_app = std::fs::read_to_string(dir.join("log-app"))
        .unwrap_or_default()
        .lines()
        .count();
    let n_ext = std::fs::read_to_string(dir.join("log-extension"))
        .unwrap_or_default()
        .lines()
        .count();
    eprintln!("app decrypted {n_app}, extension {n_ext}");
    assert_eq!(
        n_app + n_ext,
        sent.len(),
        "each message decrypted by exactly one process"
    );
    verify(dir, &mut sender, &["log-app", "log-extension"], &sent);
}
