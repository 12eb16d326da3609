//! The relay process is killed with SIGKILL in the middle of a stream of 1,000
//! messages between two clients, and restarted on the same database: every message
//! reaches the receiving app exactly once (at-least-once on the wire, deduplicated by
//! the client), and the sender sees every one delivered.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pawl_core::client::{Client, ClientConfig, Event, TlsTrust};
use pawl_core::sqlite::messages::{MessageDirection, MessageStatus};
use pawl_relay::tls::Identity;
use tokio::sync::mpsc::UnboundedReceiver;

const ALICE: &str = "+4915100000011";
const BOB: &str = "+4915100000012";
const N: usize = 1000;

struct RelayProcess {
    child: Child,
}

impl RelayProcess {
    /// Start the relay and wait until it listens. If it exits at once (its port was
    /// taken meanwhile, e.g. by an outgoing connection's ephemeral port while it was
    /// down), try again.
    async fn start(db: &str, port: u16, dir: &Path) -> Self {
        for _ in 0..20 {
            let mut r = Self::spawn(db, port, dir);
            for _ in 0..200 {
                if tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
                {
                    return r;
                }
                if r.child.try_wait().unwrap().is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            let _ = r.child.kill();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("relay did not start listening on {port}");
    }

    fn spawn(db: &str, port: u16, dir: &Path) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("relay.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_pawl-relay"))
            .args(["--db", db, "--listen", &format!("127.0.0.1:{port}")])
            .args(["--metrics-listen", &format!("127.0.0.1:{}", port + 1)])
            .arg("--tls-cert")
            .arg(dir.join("cert.pem"))
            .arg("--tls-key")
            .arg(dir.join("key.pem"))
            .arg("--code-dir")
            .arg(dir.join("codes"))
            .env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        RelayProcess { child }
    }

    fn kill(mut self) {
        // SIGKILL: no shutdown code runs.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM: the relay shuts down gracefully and exits 0 (within 10 s).
    fn terminate(mut self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "graceful shutdown exits 0, got {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the relay did not stop within 10 s of SIGTERM");
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port p with p + 1 free too (relay and metrics), never handed to another test
/// of this process (they run in parallel: two relays must not pick overlapping pairs).
fn free_port() -> u16 {
    static TAKEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let p = a.local_addr().unwrap().port();
        let mut taken = TAKEN.lock().unwrap();
        let clash = taken.iter().any(|t| p.abs_diff(*t) <= 1);
        if !clash && p < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            taken.push(p);
            return p;
        }
    }
}

async fn metrics(port: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

fn config(url: &str, pin: [u8; 32], dir: &Path, name: &str) -> ClientConfig {
    let mut c = ClientConfig::new(dir.join(format!("{name}.db")), [name.len() as u8; 32], url);
    c.tls = Some(TlsTrust::PinnedCertSha256(pin));
    c.backoff.min = Duration::from_millis(20);
    c.backoff.max = Duration::from_millis(250);
    c.request_timeout = Duration::from_secs(5);
    c
}

async fn register(
    url: &str,
    pin: [u8; 32],
    dir: &Path,
    name: &str,
    phone: &str,
) -> (Client, UnboundedReceiver<Event>) {
    let (c, mut ev) = Client::open(config(url, pin, dir, name)).unwrap();
    c.request_code(phone).await.unwrap();
    let code = std::fs::read_to_string(dir.join("codes").join(format!("{phone}.code"))).unwrap();
    c.verify_code(phone, &code).await.unwrap();
    c.start();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, ev.recv()).await.unwrap() {
            Some(Event::PreKeysUploaded { .. }) => break,
            Some(_) => {}
            None => panic!("no events"),
        }
    }
    (c, ev)
}

/// The whole scenario against a relay started with `--db db`.
pub async fn kill_mid_stream(db: &str, dir: &Path, graceful: bool) {
    std::fs::create_dir_all(dir.join("codes")).unwrap();
    let id = Identity::self_signed(&["127.0.0.1"]).unwrap();
    id.write_pem_files(&dir.join("cert.pem"), &dir.join("key.pem"))
        .unwrap();
    let pin = id.leaf_sha256();
    let port = free_port();
    let url = format!("wss://127.0.0.1:{port}/v1/ws");
    let relay = RelayProcess::start(db, port, dir).await;

    let (alice, mut a_ev) = register(&url, pin, dir, "alice", ALICE).await;
    let (bob, mut b_ev) = register(&url, pin, dir, "bob", BOB).await;

    // Bob has written to Alice: her stream is not a first contact (those are limited).
    bob.send_text(ALICE, "hi").await.unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), a_ev.recv())
            .await
            .unwrap()
        {
            Some(Event::Message(_)) => break,
            Some(_) => {}
            None => panic!("no events"),
        }
    }

    // Bob's app: count every message event by text.
    let counter = tokio::spawn(async move {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while seen.len() < N {
            match tokio::time::timeout_at(deadline, b_ev.recv()).await {
                Ok(Some(Event::Message(m))) => {
                    *seen.entry(m.text().unwrap().to_string()).or_default() += 1
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        // Anything more in the next second would be a duplicate.
        let grace = tokio::time::Instant::now() + Duration::from_secs(1);
        while let Ok(Some(e)) = tokio::time::timeout_at(grace, b_ev.recv()).await {
            if let Event::Message(m) = e {
                *seen.entry(m.text().unwrap().to_string()).or_default() += 1;
            }
        }
        seen
    });

    let mut relay = Some(relay);
    for i in 0..N {
        if i == N / 3 {
            let r = relay.take().unwrap();
            if graceful {
                r.terminate();
            } else {
                r.kill();
            }
            // Sending goes on while the relay is down: messages wait in the outbox.
        }
        if i == N / 3 + 50 {
            relay = Some(RelayProcess::start(db, port, dir).await);
        }
        alice.send_text(BOB, &format!("m{i:04}")).await.unwrap();
    }

    let seen = counter.await.unwrap();
    let missing: Vec<usize> = (0..N)
        .filter(|i| !seen.contains_key(&format!("m{i:04}")))
        .collect();
    assert!(missing.is_empty(), "never delivered: {missing:?}");
    let dups: Vec<_> = seen.iter().filter(|(_, n)| **n != 1).collect();
    assert!(dups.is_empty(), "delivered more than once: {dups:?}");
    assert_eq!(seen.len(), N);

    // Bob's store holds each message once.
    let chat = bob.with_store(|s| s.chat_id(ALICE)).unwrap();
    let stored = bob.with_store(|s| s.latest_messages(chat, 5000)).unwrap();
    assert_eq!(
        stored
            .iter()
            .filter(|m| m.direction == MessageDirection::Incoming)
            .count(),
        N
    );
    // Alice's outbox drains and every message is reported delivered.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut delivered = std::collections::HashSet::new();
    while delivered.len() < N {
        match tokio::time::timeout_at(deadline, a_ev.recv()).await {
            Ok(Some(Event::Delivered { message_id, .. })) => {
                delivered.insert(message_id);
            }
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    assert_eq!(delivered.len(), N, "delivery receipts");
    assert!(alice.with_store(|s| s.pending_sends()).unwrap().is_empty());

    // Operations: the restarted relay counted what it did, and its logs (debug level)
    // hold neither phone numbers nor message contents.
    let m = metrics(port + 1).await;
    let acked: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("pawl_relay_messages_acked_total "))
        .expect("acked counter")
        .parse()
        .unwrap();
    assert!(acked > 0 && acked <= 2 * N as u64, "{m}");
    let log = std::fs::read_to_string(dir.join("relay.log")).unwrap();
    assert!(log.contains("registered"), "the log is not empty: {log}");
    for secret in [ALICE, BOB, "m0500", "m0001"] {
        assert!(!log.contains(secret), "{secret} in the relay log");
    }
    alice.shutdown().await;
    bob.shutdown().await;
    drop(relay);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db: PathBuf = dir.path().join("relay.db");
    kill_mid_stream(&format!("sqlite:{}", db.display()), dir.path(), false).await;
}

/// The same stream across a graceful shutdown (SIGTERM): nothing is lost either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_stream_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db: PathBuf = dir.path().join("relay.db");
    kill_mid_stream(&format!("sqlite:{}", db.display()), dir.path(), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_postgres() {
    let pg = pawl_relay::pg_harness::PgServer::shared().unwrap();
    let url = pg.create_database().unwrap();
    let dir = tempfile::tempdir().unwrap();
    kill_mid_stream(&url, dir.path(), false).await;
}

/// Two relay processes on one PostgreSQL database: Alice is connected to one, Bob to
/// the other, and messages reach the other process's connected device promptly
/// (LISTEN/NOTIFY), not only at its next reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relay_processes_share_postgres() {
    let pg = pawl_relay::pg_harness::PgServer::shared().unwrap();
    let db = pg.create_database().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::create_dir_all(dir.join("codes")).unwrap();
    let id = Identity::self_signed(&["127.0.0.1"]).unwrap();
    id.write_pem_files(&dir.join("cert.pem"), &dir.join("key.pem"))
        .unwrap();
    let pin = id.leaf_sha256();
    let (pa, pb) = (free_port(), free_port());
    let _ra = RelayProcess::start(&db, pa, dir).await;
    let _rb = RelayProcess::start(&db, pb, dir).await;
    let ua = format!("wss://127.0.0.1:{pa}/v1/ws");
    let ub = format!("wss://127.0.0.1:{pb}/v1/ws");
    let (alice, mut a_ev) = register(&ua, pin, dir, "alice", ALICE).await;
    let (bob, mut b_ev) = register(&ub, pin, dir, "bob", BOB).await;

    async fn next_message(ev: &mut UnboundedReceiver<Event>) -> (String, Duration) {
        let t0 = tokio::time::Instant::now();
        loop {
            match tokio::time::timeout(Duration::from_secs(5), ev.recv()).await {
                Ok(Some(Event::Message(m))) => return (m.text().unwrap().to_string(), t0.elapsed()),
                Ok(Some(_)) => {}
                other => panic!("no message within 5 s (connected devices must not wait for a reconnect): {other:?}"),
            }
        }
    }
    for i in 0..20 {
        alice.send_text(BOB, &format!("a{i}")).await.unwrap();
        let (text, took) = next_message(&mut b_ev).await;
        assert_eq!(text, format!("a{i}"));
        assert!(took < Duration::from_secs(2), "took {took:?}");
        bob.send_text(ALICE, &format!("b{i}")).await.unwrap();
        let (text, _) = next_message(&mut a_ev).await;
        assert_eq!(text, format!("b{i}"));
    }
    // Delivery receipts cross processes too: every message Alice sent ends Delivered.
    let chat = alice.with_store(|s| s.chat_id(BOB)).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let msgs = alice.with_store(|s| s.latest_messages(chat, 100)).unwrap();
        let out: Vec<_> = msgs
            .iter()
            .filter(|m| m.direction == MessageDirection::Outgoing)
            .collect();
        assert_eq!(out.len(), 20);
        if out.iter().all(|m| m.status == MessageStatus::Delivered) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not all delivered: {out:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    alice.shutdown().await;
    bob.shutdown().await;
}
