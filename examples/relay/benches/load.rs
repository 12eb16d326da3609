//! Load benchmark for the relay (figures and how to read them: `examples/relay/BENCH.md`).
//!
//! Starts a relay in this process on loopback over plain `ws://` (no TLS: the relay
//! is measured, not TLS), connects N devices (each its own WebSocket, authenticated
//! with `Auth`, registered on first use through `Limits::open_registration`), then for
//! a fixed time sends messages between random pairs of devices, either as fast as the
//! relay answers (a window of sends awaiting their `Response`) or at an offered rate
//! (`--rate`). Each message is one `Send` of one envelope (200 bytes by default) for
//! device 1; its payload carries a sequence number, the send time and the intended
//! recipient, so the receiver measures the end-to-end latency (send -> `Deliver`
//! pushed to it) and the run checks that every accepted message reached its recipient
//! exactly once. Receivers acknowledge what they get in batches (one `Ack` per burst
//! of frames, as `pawl_core::client` does); senders acknowledge the delivery receipts.
//!
//! ```text
//! cargo bench -p pawl-relay --bench load -- --clients 1000 --seconds 10 --backend sqlite
//! cargo bench -p pawl-relay --bench load -- --clients 10000 --seconds 10 --backend postgres --rate 500
//! ```
//!
//! The devices live in worker processes (this program started again with
//! `--worker-index`), 5,000 at most each by default: one process cannot hold both ends
//! of 10,000 sockets under a 20,000 open-file limit that it may not raise, and their
//! CPU time is then read apart from the relay's. Workers speak to this process over
//! their stdin/stdout (`ready`, `go`, counters every 50 ms, `sent`, `stop`, `done`) and
//! leave what they saw in files. The store is wrapped in a timing layer: the relay
//! calls its store with its one store lock held, so the time spent in the store is the
//! time that lock was held.

// A benchmark program: it stops with a message at the first thing that goes wrong.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, ValueEnum};
use futures_util::{FutureExt, SinkExt, StreamExt};
use prost::Message as _;
use rand::{Rng, RngCore, SeedableRng};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use pawl_core::keys::IdentityKeyPair;
use pawl_relay::proto::*;
use pawl_relay::store::{DeviceRecord, MailboxListener, StoreFailure};
use pawl_relay::{
    BatchOutcome, DevCodeSender, Limits, PgRelayStore, Registrar, Relay, RelayStore,
    SqliteRelayStore, WriteBatch,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Backend {
    Sqlite,
    Postgres,
}

/// Load benchmark for pawl-relay (in-process relay on loopback, plain ws://).
#[derive(Parser, Debug, Clone)]
#[command(about)]
struct Args {
    /// Connected devices (each one WebSocket, authenticated, kept open).
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// How long messages are sent, seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Storage backend.
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    backend: Backend,
    /// Offered load, messages/s in all (open loop, paced every millisecond). Without
    /// it, messages are sent as fast as the relay answers: `--window` sends awaiting
    /// their response at any time.
    #[arg(long)]
    rate: Option<f64>,
    /// Sends awaiting their response at most, in all (default 256 without --rate;
    /// 20,000 with --rate, where it only bounds memory and being full is reported).
    #[arg(long)]
    window: Option<usize>,
    /// Payload bytes per message (at least 24).
    #[arg(long, default_value_t = 200)]
    payload: usize,
    /// After sending stops, wait at most this long (s) for every accepted message to
    /// be delivered and acknowledged and its receipt acknowledged.
    #[arg(long, default_value_t = 120.0)]
    drain: f64,
    /// Worker threads of the relay's tokio runtime.
    #[arg(long, default_value_t = 2)]
    relay_threads: usize,
    /// Load-generator processes (default: one per 5,000 devices).
    #[arg(long)]
    workers: Option<usize>,
    /// Tokio worker threads in each load-generator process.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Devices connecting at once during setup, per load-generator process.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// Directory for the SQLite database (default: the system temporary directory).
    /// `/dev/shm` makes fsync free: a diagnostic, not a durable configuration.
    #[arg(long)]
    db_dir: Option<PathBuf>,
    /// PostgreSQL with the harness's test settings (fsync = off, synchronous_commit =
    /// off): a diagnostic, not a durable configuration. By default the server is
    /// durable (fsync, synchronous_commit and full_page_writes on).
    #[arg(long)]
    pg_fast: bool,
    /// Send ephemeral messages (pushed to connected devices, never stored, no ack or
    /// receipt): a diagnostic of the relay without its store writes.
    #[arg(long)]
    ephemeral: bool,
    /// Seed for the choice of pairs and the payloads.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Internal: run as load-generator process number N.
    #[arg(long, hide = true)]
    worker_index: Option<usize>,
    /// Internal: the relay's URL (load-generator processes).
    #[arg(long, hide = true)]
    url: Option<String>,
    /// Internal: where a load-generator process leaves what it saw.
    #[arg(long, hide = true)]
    out_dir: Option<PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// Request ids of acknowledgements have this bit; those of sends are the message's
/// sequence number (worker index in bits 48..63).
const ACK_BIT: u64 = 1 << 63;
/// Payload header: sequence (8), send time in ns since the Unix epoch (8), recipient
/// index (4), sender index (4).
const HEADER: usize = 24;

fn user_name(i: usize) -> String {
    format!("bench-{i}")
}

/// The wall clock in ns: shared by the processes of the run (one machine, one clock).
fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------
// Store timing layer.

const OPS: [&str; 14] = [
    "device",
    "register_device",
    "devices",
    "upload_keys",
    "take_bundle",
    "prekeys_left",
    "enqueue",
    "pending",
    "queue_len",
    "ack",
    "pending_receipts",
    "ack_receipt",
    "write_batch",
    "replied",
];

#[derive(Default)]
struct StoreStats {
    calls: [AtomicU64; 14],
    nanos: [AtomicU64; 14],
    /// Longest call since the last `reset_max`.
    max_nanos: [AtomicU64; 14],
}

impl StoreStats {
    fn snapshot(&self) -> [(u64, u64, u64); 14] {
        std::array::from_fn(|i| {
            (
                self.calls[i].load(Ordering::Relaxed),
                self.nanos[i].load(Ordering::Relaxed),
                self.max_nanos[i].load(Ordering::Relaxed),
            )
        })
    }

    fn reset_max(&self) {
        for m in &self.max_nanos {
            m.store(0, Ordering::Relaxed);
        }
    }

    fn add(&self, op: usize, t: Instant) {
        let ns = t.elapsed().as_nanos() as u64;
        self.calls[op].fetch_add(1, Ordering::Relaxed);
        self.nanos[op].fetch_add(ns, Ordering::Relaxed);
        self.max_nanos[op].fetch_max(ns, Ordering::Relaxed);
    }
}

/// Times every call of the store it wraps. The relay calls its store with its single
/// store lock held, so the time measured here is the time that lock was held.
struct Timed {
    inner: Box<dyn RelayStore>,
    stats: Arc<StoreStats>,
}

impl Timed {
    fn time<T>(&self, op: usize, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let out = f();
        self.stats.add(op, t);
        out
    }
}

type R<T> = Result<T, StoreFailure>;

impl RelayStore for Timed {
    fn device(&self, user: &str, device_id: u32) -> R<Option<DeviceRecord>> {
        self.time(0, || self.inner.device(user, device_id))
    }
    fn register_device(&mut self, user: &str, device_id: u32, d: &DeviceRecord) -> R<()> {
        let t = Instant::now();
        let out = self.inner.register_device(user, device_id, d);
        self.record(1, t);
        out
    }
    fn devices(&self, user: &str) -> R<Vec<u32>> {
        self.time(2, || self.inner.devices(user))
    }
    fn upload_keys(
        &mut self,
        user: &str,
        device_id: u32,
        spk_id: u32,
        spk: &[u8],
        sig: &[u8],
        prekeys: &[PreKey],
    ) -> R<()> {
        let t = Instant::now();
        let out = self
            .inner
            .upload_keys(user, device_id, spk_id, spk, sig, prekeys);
        self.record(3, t);
        out
    }
    fn take_bundle(&mut self, user: &str, device_id: u32) -> R<Option<Bundle>> {
        let t = Instant::now();
        let out = self.inner.take_bundle(user, device_id);
        self.record(4, t);
        out
    }
    fn prekeys_left(&self, user: &str, device_id: u32) -> R<u32> {
        self.time(5, || self.inner.prekeys_left(user, device_id))
    }
    fn enqueue(
        &mut self,
        to_user: &str,
        to_device: u32,
        from_user: &str,
        from_device: u32,
        message_type: u32,
        payload: &[u8],
        now_ms: u64,
    ) -> R<u64> {
        let t = Instant::now();
        let out = self.inner.enqueue(
            to_user,
            to_device,
            from_user,
            from_device,
            message_type,
            payload,
            now_ms,
        );
        self.record(6, t);
        out
    }
    fn pending(&self, user: &str, device_id: u32, limit: u32) -> R<Vec<Deliver>> {
        self.time(7, || self.inner.pending(user, device_id, limit))
    }
    fn queue_len(&self, user: &str, device_id: u32) -> R<u64> {
        self.time(8, || self.inner.queue_len(user, device_id))
    }
    fn ack(&mut self, user: &str, device_id: u32, id: u64) -> R<Option<(String, u32, Receipt)>> {
        let t = Instant::now();
        let out = self.inner.ack(user, device_id, id);
        self.record(9, t);
        out
    }
    fn pending_receipts(&self, user: &str, device_id: u32) -> R<Vec<Receipt>> {
        self.time(10, || self.inner.pending_receipts(user, device_id))
    }
    fn ack_receipt(&mut self, user: &str, device_id: u32, receipt_id: u64) -> R<()> {
        let t = Instant::now();
        let out = self.inner.ack_receipt(user, device_id, receipt_id);
        self.record(11, t);
        out
    }
    fn subscribe_mailboxes(&self, on_event: MailboxListener) -> R<()> {
        self.inner.subscribe_mailboxes(on_event)
    }
    fn write_batch(&mut self, b: &WriteBatch) -> R<BatchOutcome> {
        let t = Instant::now();
        let out = self.inner.write_batch(b);
        self.record(12, t);
        out
    }
    // Not on the measured path: forwarded untimed.
    fn expire(&mut self, cutoff_ms: u64) -> R<Vec<(String, u32, Receipt)>> {
        self.inner.expire(cutoff_ms)
    }
    fn note_contact(&mut self, from: &str, to: &str) -> R<bool> {
        self.inner.note_contact(from, to)
    }
    fn replied(&self, from: &str, to: &str) -> R<bool> {
        self.time(13, || self.inner.replied(from, to))
    }
    fn directory_add(&mut self, hash: &[u8], user: &str) -> R<()> {
        self.inner.directory_add(hash, user)
    }
    fn directory_lookup(&self, prefixes: &[Vec<u8>]) -> R<Vec<(Vec<u8>, String)>> {
        self.inner.directory_lookup(prefixes)
    }
    fn blob_create(&mut self, id: &[u8], owner: &str, now_ms: u64) -> R<()> {
        self.inner.blob_create(id, owner, now_ms)
    }
    fn blob_append(
        &mut self,
        id: &[u8],
        owner: &str,
        offset: u64,
        data: &[u8],
        seal: bool,
        max_total: u64,
    ) -> R<Option<Result<u64, u64>>> {
        self.inner
            .blob_append(id, owner, offset, data, seal, max_total)
    }
    fn blob_read(&self, id: &[u8], offset: u64, max: u32) -> R<Option<(u64, Vec<u8>)>> {
        self.inner.blob_read(id, offset, max)
    }
    fn expire_blobs(&mut self, cutoff_ms: u64) -> R<u64> {
        self.inner.expire_blobs(cutoff_ms)
    }
    fn record_put(
        &mut self,
        user: &str,
        name: &str,
        version: u64,
        data: &[u8],
        rule: pawl_relay::PutRule,
    ) -> R<Result<(), u64>> {
        self.inner.record_put(user, name, version, data, rule)
    }
    fn record_get(&self, user: &str, name: &str, after: u64, limit: u32) -> R<Vec<(u64, Vec<u8>)>> {
        self.inner.record_get(user, name, after, limit)
    }
    fn record_latest(&self, user: &str, name: &str) -> R<Option<(u64, Vec<u8>)>> {
        self.inner.record_latest(user, name)
    }
    fn remove_device(&mut self, user: &str, device_id: u32) -> R<bool> {
        self.inner.remove_device(user, device_id)
    }
}

impl Timed {
    fn record(&self, op: usize, t: Instant) {
        self.stats.add(op, t);
    }
}

// ---------------------------------------------------------------------------------
// CPU accounting from /proc.

fn ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// (ppid, utime + stime in ticks) from a /proc stat file.
fn read_stat(path: &Path) -> Option<(u32, u64)> {
    let s = std::fs::read_to_string(path).ok()?;
    let close = s.rfind(')')?;
    let f: Vec<&str> = s.get(close + 2..)?.split_whitespace().collect();
    let ppid = f.get(1)?.parse().ok()?;
    let ut: u64 = f.get(11)?.parse().ok()?;
    let st: u64 = f.get(12)?.parse().ok()?;
    Some((ppid, ut + st))
}

/// CPU seconds of the processes `pids` and of the children of `parents`.
fn procs_cpu(pids: &[u32], parents: &[u32], tck: f64) -> f64 {
    let mut total = 0u64;
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if let Some((ppid, t)) = read_stat(&e.path().join("stat")) {
            if pids.contains(&pid) || parents.contains(&ppid) {
                total += t;
            }
        }
    }
    total as f64 / tck
}

/// Busy, niced and total CPU seconds of the whole machine (all cores), from /proc/stat.
fn machine_cpu(tck: f64) -> (f64, f64, f64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = s
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 8 {
        return (0.0, 0.0, 0.0);
    }
    let total: u64 = v.iter().sum();
    let idle = v[3] + v[4];
    (
        (total - idle) as f64 / tck,
        v[1] as f64 / tck,
        total as f64 / tck,
    )
}

/// CPU seconds so far: this process (the relay; the load generator is elsewhere),
/// the load-generator processes, the PostgreSQL server, the whole machine.
#[derive(Clone, Copy, Debug, Default)]
struct CpuSnap {
    relay: f64,
    load: f64,
    pg: f64,
    machine_busy: f64,
    machine_nice: f64,
    machine_total: f64,
}

fn cpu_snap(workers: &[u32], postmaster: Option<u32>, tck: f64) -> CpuSnap {
    let (machine_busy, machine_nice, machine_total) = machine_cpu(tck);
    let pm: Vec<u32> = postmaster.into_iter().collect();
    CpuSnap {
        relay: procs_cpu(&[std::process::id()], &[], tck),
        load: procs_cpu(workers, &[], tck),
        pg: procs_cpu(&pm, &pm, tck),
        machine_busy,
        machine_nice,
        machine_total,
    }
}

// ---------------------------------------------------------------------------------
// Open-file limit.

/// Raise the open-file limit to `need` if it is lower (as root the hard limit can be
/// raised too). Returns the limit in force.
#[allow(unsafe_code)] // getrlimit/setrlimit: the only FFI of this program
fn raise_fd_limit(need: u64) -> Result<u64, String> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into a struct this function owns.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(format!("getrlimit: {}", std::io::Error::last_os_error()));
    }
    if lim.rlim_cur >= need as libc::rlim_t {
        return Ok(lim.rlim_cur);
    }
    let new = libc::rlimit {
        rlim_cur: need as libc::rlim_t,
        rlim_max: lim.rlim_max.max(need as libc::rlim_t),
    };
    // SAFETY: setrlimit reads a struct this function owns.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } != 0 {
        return Err(format!(
            "the open-file limit is {} (hard {}) and {need} are needed; raising it failed ({}): \
             run `ulimit -n {need}` as root first, or use fewer clients",
            lim.rlim_cur,
            lim.rlim_max,
            std::io::Error::last_os_error()
        ));
    }
    Ok(need)
}

// ---------------------------------------------------------------------------------
// Load-generator processes.

/// Counters of one load-generator process, reported every 50 ms.
#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    delivered: AtomicU64,
    receipts: AtomicU64,
    ack_frames: AtomicU64,
    ack_answers: AtomicU64,
    ack_failed: AtomicU64,
}

const N_COUNTERS: usize = 8;

impl Counters {
    fn line(&self) -> String {
        let v = [
            &self.sent,
            &self.accepted,
            &self.refused,
            &self.delivered,
            &self.receipts,
            &self.ack_frames,
            &self.ack_answers,
            &self.ack_failed,
        ]
        .map(|a| a.load(Ordering::Relaxed).to_string());
        v.join(" ")
    }
}

/// What one device saw, returned when it stops.
#[derive(Default)]
struct ClientLog {
    accepted: Vec<u64>,
    refused: HashMap<String, u64>,
    /// (sequence, message id) of every delivery.
    delivered: Vec<(u64, u64)>,
    /// Deliveries of a message id this connection had already acknowledged.
    again_after_ack: u64,
    wrong_recipient: u64,
    latency_us: Vec<u32>,
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn read_frame(ws: &mut Ws) -> Option<RelayKind> {
    loop {
        match ws.next().await? {
            Ok(Message::Binary(b)) => return RelayFrame::decode(b.as_ref()).ok()?.kind,
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

struct Connected {
    index: usize,
    tx: mpsc::UnboundedSender<Message>,
    reader: tokio::task::JoinHandle<ClientLog>,
}

/// Connect device `me`, authenticate (registering it on first use), and start its
/// writer and reader tasks.
async fn connect(
    url: &str,
    me: usize,
    counters: Arc<Counters>,
    window: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
) -> Result<Connected, String> {
    let user = user_name(me);
    let id = IdentityKeyPair::generate(&mut rand::rngs::OsRng);
    // tungstenite zero-fills its whole read buffer (128 KiB by default) before every
    // read: 8 KiB keeps that cost off the load generator (frames here are small).
    let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let Some(RelayKind::Challenge(c)) = read_frame(&mut ws).await else {
        return Err("no challenge".into());
    };
    let signature = id
        .private_key()
        .sign(&auth_message(&c.nonce, &user, 1), &mut rand::rngs::OsRng);
    let auth = ClientFrame {
        request_id: 1,
        kind: Some(ClientKind::Auth(Auth {
            user,
            device_id: 1,
            identity_key: id.identity_key().serialize().to_vec(),
            registration_id: 7,
            signature: signature.to_vec(),
        })),
    };
    ws.send(Message::Binary(auth.encode_to_vec().into()))
        .await
        .map_err(|e| format!("send auth: {e}"))?;
    match read_frame(&mut ws).await {
        Some(RelayKind::Response(r)) if r.ok => {}
        other => return Err(format!("auth refused: {other:?}")),
    }
    let (mut sink, stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    // Writer: everything queued goes out, flushed once per burst.
    tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if sink.feed(m).await.is_err() {
                return;
            }
            while let Ok(m) = rx.try_recv() {
                if sink.feed(m).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    let reader = tokio::spawn(read_loop(
        stream,
        me as u32,
        tx.clone(),
        counters,
        window,
        stop,
    ));
    Ok(Connected {
        index: me,
        tx,
        reader,
    })
}

/// A device's reader: records answers to its sends, deliveries (latency, exactly
/// once, right recipient) and receipts; acknowledges deliveries and receipts with one
/// `Ack` per burst of frames already received (as `pawl_core::client` does).
async fn read_loop(
    mut stream: futures_util::stream::SplitStream<Ws>,
    me: u32,
    tx: mpsc::UnboundedSender<Message>,
    counters: Arc<Counters>,
    window: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) -> ClientLog {
    let mut log = ClientLog::default();
    let mut acked: HashSet<u64> = HashSet::new();
    let mut next_ack = 0u64;
    let mut ids = Vec::new();
    let mut receipt_ids = Vec::new();
    loop {
        let mut next = tokio::select! {
            m = stream.next() => m,
            _ = stop.wait_for(|s| *s) => break,
        };
        let mut n = 0;
        loop {
            let bytes = match next {
                Some(Ok(Message::Binary(b))) => b,
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return log,
                Some(Ok(_)) => Default::default(),
            };
            if !bytes.is_empty() {
                let kind = RelayFrame::decode(bytes.as_ref())
                    .expect("relay frame decodes")
                    .kind;
                match kind {
                    Some(RelayKind::Response(r)) if r.request_id & ACK_BIT != 0 => {
                        counters.ack_answers.fetch_add(1, Ordering::Relaxed);
                        if !r.ok {
                            counters.ack_failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Some(RelayKind::Response(r)) => {
                        if r.ok {
                            log.accepted.push(r.request_id);
                            counters.accepted.fetch_add(1, Ordering::Relaxed);
                        } else {
                            *log.refused.entry(r.error_code.clone()).or_default() += 1;
                            counters.refused.fetch_add(1, Ordering::Relaxed);
                        }
                        window.add_permits(1);
                    }
                    Some(RelayKind::Deliver(d)) => {
                        let now = now_ns();
                        let p = &d.payload;
                        let seq = u64::from_le_bytes(p[0..8].try_into().unwrap());
                        let sent = u64::from_le_bytes(p[8..16].try_into().unwrap());
                        let to = u32::from_le_bytes(p[16..20].try_into().unwrap());
                        if to != me {
                            log.wrong_recipient += 1;
                        }
                        log.delivered.push((seq, d.id));
                        log.latency_us
                            .push((now.saturating_sub(sent) / 1000).min(u32::MAX as u64) as u32);
                        counters.delivered.fetch_add(1, Ordering::Relaxed);
                        if !d.ephemeral {
                            if acked.contains(&d.id) {
                                log.again_after_ack += 1;
                            }
                            ids.push(d.id);
                        }
                    }
                    Some(RelayKind::Receipt(r)) => {
                        counters.receipts.fetch_add(1, Ordering::Relaxed);
                        receipt_ids.push(r.receipt_id);
                    }
                    _ => {}
                }
            }
            n += 1;
            if n >= 256 {
                break;
            }
            match stream.next().now_or_never() {
                Some(m) => next = m,
                None => break,
            }
        }
        if !ids.is_empty() || !receipt_ids.is_empty() {
            acked.extend(ids.iter().copied());
            next_ack += 1;
            let f = ClientFrame {
                request_id: ACK_BIT | next_ack,
                kind: Some(ClientKind::Ack(Ack {
                    ids: std::mem::take(&mut ids),
                    receipt_ids: std::mem::take(&mut receipt_ids),
                })),
            };
            counters.ack_frames.fetch_add(1, Ordering::Relaxed);
            let _ = tx.send(Message::Binary(f.encode_to_vec().into()));
        }
    }
    log
}

/// What the driver did.
#[derive(Default)]
struct DriverLog {
    sent: u64,
    window_full: u64,
    elapsed: f64,
}

/// Send messages from this process's devices to random devices of the whole run for
/// `seconds`: closed loop (wait for a window slot) or paced at `rate`.
#[allow(clippy::too_many_arguments)]
async fn drive(
    senders: &[(usize, mpsc::UnboundedSender<Message>)],
    clients: usize,
    worker: u64,
    counters: &Counters,
    window: &Semaphore,
    seconds: f64,
    rate: Option<f64>,
    payload_len: usize,
    ephemeral: bool,
    seed: u64,
) -> DriverLog {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ (worker << 32));
    let names: Vec<String> = (0..clients).map(user_name).collect();
    let mut log = DriverLog::default();
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut seq = worker << 48;
    let mut send_one = |rng: &mut rand_chacha::ChaCha8Rng| {
        let (from, tx) = &senders[rng.gen_range(0..senders.len())];
        let from = *from;
        let mut to = rng.gen_range(0..clients - 1);
        if to >= from {
            to += 1;
        }
        seq += 1;
        let mut payload = vec![0u8; payload_len];
        rng.fill_bytes(&mut payload[HEADER..]);
        payload[0..8].copy_from_slice(&seq.to_le_bytes());
        payload[8..16].copy_from_slice(&now_ns().to_le_bytes());
        payload[16..20].copy_from_slice(&(to as u32).to_le_bytes());
        payload[20..24].copy_from_slice(&(from as u32).to_le_bytes());
        let f = ClientFrame {
            request_id: seq,
            kind: Some(ClientKind::Send(Send {
                to_user: names[to].clone(),
                envelopes: vec![OutEnvelope {
                    device_id: 1,
                    message_type: 2,
                    payload,
                }],
                ephemeral,
                unverified: vec![],
            })),
        };
        counters.sent.fetch_add(1, Ordering::Relaxed);
        let _ = tx.send(Message::Binary(f.encode_to_vec().into()));
    };
    match rate {
        None => loop {
            let permit = tokio::select! {
                p = window.acquire() => p.expect("window open"),
                _ = tokio::time::sleep_until(end.into()) => break,
            };
            permit.forget();
            if Instant::now() >= end {
                break;
            }
            send_one(&mut rng);
            log.sent += 1;
        },
        Some(rate) => loop {
            tick.tick().await;
            let now = Instant::now();
            if now >= end {
                break;
            }
            let due = (rate * (now - start).as_secs_f64()) as u64;
            while log.sent < due {
                match window.try_acquire() {
                    Ok(p) => p.forget(),
                    Err(_) => {
                        log.window_full += 1;
                        break;
                    }
                }
                send_one(&mut rng);
                log.sent += 1;
            }
        },
    }
    log.elapsed = start.elapsed().as_secs_f64();
    log
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn wait_for_line(expected: &str) {
    let mut line = String::new();
    loop {
        line.clear();
        if std::io::stdin().read_line(&mut line).unwrap_or(0) == 0 {
            std::process::exit(2); // the parent is gone
        }
        if line.trim() == expected {
            return;
        }
    }
}

fn write_u64s(path: &Path, v: impl Iterator<Item = u64>) {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for x in v {
        w.write_all(&x.to_le_bytes()).unwrap();
    }
    w.flush().unwrap();
}

fn read_u64s(path: &Path) -> Vec<u64> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// A load-generator process: devices `index`, `index + workers`, ... of the run.
fn worker_main(args: Args, index: usize) {
    let workers = args.workers.unwrap_or(1);
    let url = args.url.clone().expect("--url");
    let out = args.out_dir.clone().expect("--out-dir");
    let mine: Vec<usize> = (index..args.clients).step_by(workers).collect();
    raise_fd_limit(mine.len() as u64 + 256).unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .thread_name("load-rt")
        .enable_all()
        .build()
        .unwrap();
    let counters = Arc::new(Counters::default());
    let window_total = args
        .window
        .unwrap_or(if args.rate.is_some() { 20_000 } else { 256 });
    let window = Arc::new(Semaphore::new(window_total.div_ceil(workers)));
    let (stop_tx, stop_rx) = watch::channel(false);

    let connected: Vec<Connected> = rt.block_on(async {
        let gate = Arc::new(Semaphore::new(args.connect_concurrency));
        let mut tasks = Vec::with_capacity(mine.len());
        for &i in &mine {
            let (url, counters, window, stop, gate) = (
                url.clone(),
                counters.clone(),
                window.clone(),
                stop_rx.clone(),
                gate.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let _p = gate.acquire_owned().await.unwrap();
                connect(&url, i, counters, window, stop).await
            }));
        }
        let mut out = Vec::with_capacity(mine.len());
        for t in tasks {
            match t.await.unwrap() {
                Ok(c) => out.push(c),
                Err(e) => panic!("worker {index}: {e}"),
            }
        }
        out
    });
    let (senders, readers): (Vec<_>, Vec<_>) = connected
        .into_iter()
        .map(|c| ((c.index, c.tx), c.reader))
        .unzip();
    say(&format!("ready {}", senders.len()));
    wait_for_line("go");

    let reporting = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let reporter = {
        let (counters, reporting) = (counters.clone(), reporting.clone());
        std::thread::spawn(move || {
            while reporting.load(Ordering::Relaxed) {
                say(&format!("c {}", counters.line()));
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let rate = args.rate.map(|r| r / workers as f64);
    let d = rt.block_on(drive(
        &senders,
        args.clients,
        index as u64,
        &counters,
        &window,
        args.seconds,
        rate,
        args.payload,
        args.ephemeral,
        args.seed,
    ));
    say(&format!(
        "sent {} {} {} {}",
        d.sent,
        d.window_full,
        d.elapsed,
        counters.line()
    ));
    wait_for_line("stop");
    let _ = stop_tx.send(true);
    let logs: Vec<ClientLog> = rt.block_on(async {
        let mut v = Vec::with_capacity(readers.len());
        for r in readers {
            v.push(r.await.unwrap());
        }
        v
    });
    reporting.store(false, Ordering::Relaxed);
    let _ = reporter.join();
    let mut refused: BTreeMap<String, u64> = BTreeMap::new();
    let (mut wrong, mut again) = (0, 0);
    for l in &logs {
        wrong += l.wrong_recipient;
        again += l.again_after_ack;
        for (k, v) in &l.refused {
            *refused.entry(k.clone()).or_default() += v;
        }
    }
    write_u64s(
        &out.join("accepted"),
        logs.iter().flat_map(|l| l.accepted.iter().copied()),
    );
    write_u64s(
        &out.join("delivered"),
        logs.iter()
            .flat_map(|l| l.delivered.iter().flat_map(|(s, id)| [*s, *id])),
    );
    write_u64s(
        &out.join("latency"),
        logs.iter()
            .flat_map(|l| l.latency_us.iter().map(|x| u64::from(*x))),
    );
    let refused: Vec<String> = refused.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    say(&format!("done {wrong} {again} {}", refused.join(",")));
    drop(senders);
    rt.shutdown_timeout(Duration::from_secs(1));
}

// ---------------------------------------------------------------------------------
// The run: relay here, devices in worker processes.

#[derive(Default)]
struct WorkerState {
    ready: Option<usize>,
    counters: [u64; N_COUNTERS],
    /// Sent, pacing ticks with the window full, seconds, counters when sending stopped.
    sent: Option<(u64, u64, f64, [u64; N_COUNTERS])>,
    /// Wrong recipients, deliveries again after an ack, refusals by code.
    done: Option<(u64, u64, String)>,
    exited: bool,
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    state: Arc<Mutex<WorkerState>>,
    dir: PathBuf,
}

fn parse_counters<'a>(it: impl Iterator<Item = &'a str>) -> [u64; N_COUNTERS] {
    let v: Vec<u64> = it.map(|x| x.parse().unwrap()).collect();
    std::array::from_fn(|i| v[i])
}

fn spawn_worker(args: &Args, index: usize, workers: usize, url: &str, dir: PathBuf) -> Worker {
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.arg("--worker-index")
        .arg(index.to_string())
        .arg("--workers")
        .arg(workers.to_string())
        .arg("--url")
        .arg(url)
        .arg("--out-dir")
        .arg(&dir)
        .arg("--clients")
        .arg(args.clients.to_string())
        .arg("--seconds")
        .arg(args.seconds.to_string())
        .arg("--payload")
        .arg(args.payload.to_string())
        .arg("--client-threads")
        .arg(args.client_threads.to_string())
        .arg("--connect-concurrency")
        .arg(args.connect_concurrency.to_string())
        .arg("--seed")
        .arg(args.seed.to_string());
    if let Some(r) = args.rate {
        cmd.arg("--rate").arg(r.to_string());
    }
    if let Some(w) = args.window {
        cmd.arg("--window").arg(w.to_string());
    }
    if args.ephemeral {
        cmd.arg("--ephemeral");
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let state = Arc::new(Mutex::new(WorkerState::default()));
    let st = state.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let mut f = line.split(' ');
            let mut s = st.lock().unwrap();
            match f.next() {
                Some("ready") => s.ready = Some(f.next().unwrap().parse().unwrap()),
                Some("c") => s.counters = parse_counters(f),
                Some("sent") => {
                    let sent = f.next().unwrap().parse().unwrap();
                    let full = f.next().unwrap().parse().unwrap();
                    let secs = f.next().unwrap().parse().unwrap();
                    let c = parse_counters(f);
                    s.counters = c;
                    s.sent = Some((sent, full, secs, c));
                }
                Some("done") => {
                    let wrong = f.next().unwrap().parse().unwrap();
                    let again = f.next().unwrap().parse().unwrap();
                    s.done = Some((wrong, again, f.next().unwrap_or("").to_string()));
                }
                _ => eprintln!("worker: {line}"),
            }
        }
        st.lock().unwrap().exited = true;
    });
    Worker {
        child,
        stdin,
        state,
        dir,
    }
}

/// Wait until `done` holds for every worker; false after `timeout`.
fn wait_all(workers: &[Worker], timeout: Duration, done: impl Fn(&WorkerState) -> bool) -> bool {
    let t = Instant::now();
    loop {
        let mut all = true;
        for (i, w) in workers.iter().enumerate() {
            let s = w.state.lock().unwrap();
            if !done(&s) {
                assert!(!s.exited, "load-generator process {i} ended early");
                all = false;
            }
        }
        if all {
            return true;
        }
        if t.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn sum_counters(workers: &[Worker]) -> [u64; N_COUNTERS] {
    let mut t = [0u64; N_COUNTERS];
    for w in workers {
        let s = w.state.lock().unwrap();
        for (a, b) in t.iter_mut().zip(s.counters) {
            *a += b;
        }
    }
    t
}

fn tell(workers: &mut [Worker], line: &str) {
    for w in workers {
        writeln!(w.stdin, "{line}").unwrap();
        w.stdin.flush().unwrap();
    }
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// Rows left in the mailbox and receipt tables.
fn rows_left(backend: Backend, db: &Path, pg_url: &str) -> (i64, i64) {
    match backend {
        Backend::Sqlite => {
            let c = rusqlite::Connection::open(db).unwrap();
            let m = c
                .query_row("SELECT count(*) FROM mailbox", [], |r| r.get(0))
                .unwrap();
            let r = c
                .query_row("SELECT count(*) FROM receipts", [], |r| r.get(0))
                .unwrap();
            (m, r)
        }
        Backend::Postgres => {
            let url = pg_url.to_string();
            // The postgres client blocks on a runtime of its own: off any runtime thread.
            std::thread::spawn(move || {
                let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                let m: i64 = c
                    .query_one("SELECT count(*) FROM relay_mailbox", &[])
                    .unwrap()
                    .get(0);
                let r: i64 = c
                    .query_one("SELECT count(*) FROM relay_receipts", &[])
                    .unwrap()
                    .get(0);
                (m, r)
            })
            .join()
            .unwrap()
        }
    }
}

fn main() {
    let args = Args::parse();
    assert!(args.clients >= 2, "--clients must be at least 2");
    assert!(
        args.payload >= HEADER,
        "--payload must be at least {HEADER}"
    );
    if let Some(i) = args.worker_index {
        worker_main(args, i);
        return;
    }
    let n_workers = args
        .workers
        .unwrap_or(args.clients.div_ceil(5000))
        .clamp(1, args.clients);
    let tck = ticks_per_second();
    let fds = raise_fd_limit(args.clients as u64 + 1024).unwrap_or_else(|e| panic!("{e}"));

    // Storage.
    let tmp = tempfile::Builder::new()
        .prefix("pawl-bench-")
        .tempdir_in(args.db_dir.clone().unwrap_or_else(std::env::temp_dir))
        .unwrap();
    let db = tmp.path().join("relay.db");
    let mut pg_server = None;
    let mut pg_url = String::new();
    let (store, reader): (Box<dyn RelayStore>, Box<dyn RelayStore>) = match args.backend {
        Backend::Sqlite => (
            Box::new(SqliteRelayStore::open(&db).unwrap()),
            Box::new(SqliteRelayStore::open(&db).unwrap()),
        ),
        Backend::Postgres => {
            let durable: &[(&str, &str)] = &[
                ("fsync", "on"),
                ("synchronous_commit", "on"),
                ("full_page_writes", "on"),
            ];
            let server = pawl_relay::pg_harness::PgServer::start_with(if args.pg_fast {
                &[]
            } else {
                durable
            })
            .unwrap();
            pg_url = server.create_database().unwrap();
            pg_server = Some(server);
            (
                Box::new(PgRelayStore::connect(&pg_url).unwrap()),
                Box::new(PgRelayStore::connect(&pg_url).unwrap()),
            )
        }
    };
    let postmaster: Option<u32> = pg_server.as_ref().and_then(|s| {
        std::fs::read_to_string(s.data_dir().join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    });
    let store_stats = Arc::new(StoreStats::default());
    // Both connections are timed into the same counters: the group commit's
    // (write_batch) and the one for everything else.
    let store = Box::new(Timed {
        inner: store,
        stats: store_stats.clone(),
    });
    let reader = Box::new(Timed {
        inner: reader,
        stats: store_stats.clone(),
    });

    // The relay, on a runtime of its own in this process.
    let relay_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.relay_threads)
        .thread_name("relay-rt")
        .enable_all()
        .build()
        .unwrap();
    let limits = Limits {
        open_registration: true,
        connections_per_second: 1e9,
        connection_burst: 1e9,
        // Random pairs are mostly first contacts: the anti-spam budget is not measured.
        unsolicited_per_hour: 1e12,
        ..Default::default()
    };
    let relay = Relay::with_reader(
        store,
        reader,
        limits,
        Registrar::new(Box::new(DevCodeSender::default()), Default::default()),
    );
    let listener = relay_rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("ws://{}/v1/ws", listener.local_addr().unwrap());
    let server = relay_rt.spawn(pawl_relay::serve(listener, relay.clone()));
    let backend_label = match (args.backend, args.pg_fast) {
        (Backend::Sqlite, _) => format!(
            "SQLite{}",
            if args.db_dir.is_some() {
                format!(" in {}", tmp.path().display())
            } else {
                String::new()
            }
        ),
        (Backend::Postgres, false) => "PostgreSQL (fsync on)".to_string(),
        (Backend::Postgres, true) => "PostgreSQL (fsync OFF)".to_string(),
    };
    eprintln!(
        "relay at {url} on {backend_label}, open-file limit {fds}; connecting {} devices from {n_workers} process(es)",
        args.clients
    );

    // The devices.
    let t_connect = Instant::now();
    let mut workers: Vec<Worker> = (0..n_workers)
        .map(|i| spawn_worker(&args, i, n_workers, &url, tmp.path().join(format!("w{i}"))))
        .collect();
    let pids: Vec<u32> = workers.iter().map(|w| w.child.id()).collect();
    assert!(
        wait_all(&workers, Duration::from_secs(900), |s| s.ready.is_some()),
        "devices not connected in 15 minutes"
    );
    let connect_secs = t_connect.elapsed().as_secs_f64();
    let open = relay.metrics.connections.load(Ordering::Relaxed);
    eprintln!(
        "{open} devices connected and authenticated in {connect_secs:.1} s ({:.0}/s)",
        args.clients as f64 / connect_secs
    );
    assert_eq!(open as usize, args.clients, "every device connected");

    // Send.
    store_stats.reset_max();
    let store_before = store_stats.snapshot();
    let cpu_before = cpu_snap(&pids, postmaster, tck);
    let t_go = Instant::now();
    tell(&mut workers, "go");
    let mut per_second: Vec<(u64, u64)> = Vec::new();
    let mut last = (0u64, 0u64);
    let mut next_sample = 1.0;
    loop {
        let all_sent = workers
            .iter()
            .all(|w| w.state.lock().unwrap().sent.is_some());
        if all_sent {
            break;
        }
        if t_go.elapsed().as_secs_f64() >= next_sample {
            let c = sum_counters(&workers);
            per_second.push((c[1] - last.0, c[3] - last.1));
            last = (c[1], c[3]);
            next_sample += 1.0;
        }
        for w in &workers {
            assert!(
                !w.state.lock().unwrap().exited,
                "a load generator ended early"
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let cpu_after = cpu_snap(&pids, postmaster, tck);
    let store_after = store_stats.snapshot();
    let mut sent = 0;
    let mut window_full = 0;
    let mut secs: f64 = 0.0;
    let mut at_end = [0u64; N_COUNTERS];
    for w in &workers {
        let (s, f, e, c) = w.state.lock().unwrap().sent.unwrap();
        sent += s;
        window_full += f;
        secs = secs.max(e);
        for (a, b) in at_end.iter_mut().zip(c) {
            *a += b;
        }
    }
    let accepted_in_window = at_end[1];
    let delivered_in_window = at_end[3];

    // Drain: every send answered, every accepted message delivered, its receipt
    // received, every acknowledgement answered.
    let t_drain = Instant::now();
    let drained = loop {
        let c = sum_counters(&workers);
        let (sent, acc, refused, del, rec, ackf, acka) = (c[0], c[1], c[2], c[3], c[4], c[5], c[6]);
        if acc + refused == sent && del >= acc && (args.ephemeral || rec >= acc) && acka == ackf {
            break true;
        }
        if t_drain.elapsed().as_secs_f64() > args.drain {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // A moment more (counters come every 50 ms; anything pushed twice would show).
    std::thread::sleep(Duration::from_millis(1000));
    let drain_secs = t_drain.elapsed().as_secs_f64();
    let c_final = sum_counters(&workers);
    tell(&mut workers, "stop");
    assert!(
        wait_all(&workers, Duration::from_secs(120), |s| s.done.is_some()),
        "load generators did not report"
    );
    for w in &mut workers {
        let _ = w.child.wait();
    }
    let (mailbox_left, receipts_left) = if args.ephemeral {
        (0, 0)
    } else {
        rows_left(args.backend, &db, &pg_url)
    };

    // Tally.
    let mut accepted: Vec<u64> = Vec::new();
    let mut delivered: Vec<(u64, u64)> = Vec::new();
    let mut lat: Vec<u32> = Vec::new();
    let mut refused: BTreeMap<String, u64> = BTreeMap::new();
    let (mut wrong, mut again_after_ack) = (0, 0);
    for w in &workers {
        accepted.extend(read_u64s(&w.dir.join("accepted")));
        delivered.extend(
            read_u64s(&w.dir.join("delivered"))
                .chunks_exact(2)
                .map(|p| (p[0], p[1])),
        );
        lat.extend(read_u64s(&w.dir.join("latency")).iter().map(|x| *x as u32));
        let s = w.state.lock().unwrap();
        let (wr, again, ref codes) = *s.done.as_ref().unwrap();
        wrong += wr;
        again_after_ack += again;
        for kv in codes.split(',').filter(|x| !x.is_empty()) {
            let (k, v) = kv.split_once(':').unwrap();
            *refused.entry(k.to_string()).or_default() += v.parse::<u64>().unwrap();
        }
    }
    accepted.sort_unstable();
    delivered.sort_unstable();
    lat.sort_unstable();
    let mut uniq: Vec<u64> = delivered.iter().map(|d| d.0).collect();
    uniq.dedup();
    let duplicates = delivered.len() - uniq.len();
    // A duplicate with another message id would mean one send stored twice.
    let dup_other_id = delivered
        .windows(2)
        .filter(|w| w[0].0 == w[1].0 && w[0].1 != w[1].1)
        .count();
    let lost = accepted
        .iter()
        .filter(|s| uniq.binary_search(s).is_err())
        .count();
    let unexpected = uniq
        .iter()
        .filter(|s| accepted.binary_search(s).is_err())
        .count();
    let nothing_lost = drained && lost == 0 && unexpected == 0 && wrong == 0;
    let store_empty = mailbox_left == 0 && receipts_left == 0;
    let exactly_once = nothing_lost && duplicates == 0;

    let d = |f: fn(&CpuSnap) -> f64| f(&cpu_after) - f(&cpu_before);
    let (relay_cpu, load_cpu, pg_cpu) = (d(|c| c.relay), d(|c| c.load), d(|c| c.pg));
    let (machine_busy, machine_total) = (d(|c| c.machine_busy), d(|c| c.machine_total));
    let others = (machine_busy - relay_cpu - load_cpu - pg_cpu).max(0.0);
    let others_niced = d(|c| c.machine_nice);
    let mode = match args.rate {
        Some(r) => format!("offered {r:.0} msg/s"),
        None => format!(
            "as fast as answered (window {})",
            args.window.unwrap_or(256)
        ),
    };

    println!();
    println!(
        "== pawl-relay load: {} devices ({n_workers} load process(es)), {backend_label}, {mode}, {secs:.1} s, payload {} B{}",
        args.clients,
        args.payload,
        if args.ephemeral { ", EPHEMERAL sends" } else { "" },
    );
    println!("setup: connected and authenticated in {connect_secs:.1} s");
    println!(
        "sent {sent} ({:.0}/s); accepted {} in all, {:.0}/s during the send window; delivered {:.0}/s during the send window",
        sent as f64 / secs,
        accepted.len(),
        accepted_in_window as f64 / secs,
        delivered_in_window as f64 / secs,
    );
    if window_full > 0 {
        println!(
            "offered load NOT met: the window of unanswered sends was full at {window_full} pacing ticks"
        );
    }
    if !refused.is_empty() {
        println!("refused: {refused:?}");
    }
    println!(
        "latency send -> deliver ({} deliveries, drain included): p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, max {:.1} ms",
        lat.len(),
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 0.999),
        lat.last().map(|v| *v as f64 / 1000.0).unwrap_or(f64::NAN),
    );
    println!(
        "drain {} in {drain_secs:.1} s (receipts {} of {}); lost {lost}, duplicates {duplicates} ({again_after_ack} after the device had acknowledged the message; {dup_other_id} with another message id), delivered but not accepted {unexpected}, wrong recipient {wrong}; left in the store: {mailbox_left} messages, {receipts_left} receipts; failed ack frames {}",
        if drained { "complete" } else { "TIMED OUT" },
        c_final[4],
        c_final[1],
        c_final[7],
    );
    println!(
        "nothing lost: {}; exactly once: {}; store empty: {}",
        if nothing_lost { "yes" } else { "NO" },
        if exactly_once { "yes" } else { "NO" },
        if store_empty { "yes" } else { "NO" },
    );
    println!(
        "CPU during the send window ({secs:.1} s, {machine_total:.1} core-s on this machine): relay process {relay_cpu:.1} s, load generators {load_cpu:.1} s, postgres {pg_cpu:.1} s, other processes on the machine {others:.1} s, of which {others_niced:.1} s niced (machine busy {:.0}%)",
        machine_busy / machine_total.max(1e-9) * 100.0
    );
    if accepted_in_window > 0 {
        let per = |x: f64| x * 1e6 / accepted_in_window as f64;
        println!(
            "per accepted message: relay {:.0} us CPU, load generator {:.0} us, postgres {:.0} us",
            per(relay_cpu),
            per(load_cpu),
            per(pg_cpu)
        );
    }
    let mut held = 0u64;
    println!("store calls during the send window (time in the store = relay store lock held):");
    for (i, name) in OPS.iter().enumerate() {
        let calls = store_after[i].0 - store_before[i].0;
        let ns = store_after[i].1 - store_before[i].1;
        held += ns;
        if calls > 0 {
            println!(
                "  {name:<17} {calls:>9} calls {:>7.2} per msg {:>9.1} us each (max {:>7.1} ms) {:>6.1}% of the window",
                calls as f64 / accepted_in_window.max(1) as f64,
                ns as f64 / calls as f64 / 1000.0,
                store_after[i].2 as f64 / 1e6,
                ns as f64 / 1e9 / secs * 100.0
            );
        }
    }
    println!(
        "  store lock held {:.1}% of the send window, {:.1} us per accepted message",
        held as f64 / 1e9 / secs * 100.0,
        held as f64 / 1000.0 / accepted_in_window.max(1) as f64
    );
    println!(
        "accepted/s, each second: {}",
        per_second
            .iter()
            .map(|p| p.0.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "| {} | {} | {} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {:.1} / {:.1} / {:.1} / {:.1} |",
        args.clients,
        backend_label,
        match args.rate {
            Some(r) => format!("{r:.0}/s"),
            None => "max".into(),
        },
        accepted_in_window as f64 / secs,
        delivered_in_window as f64 / secs,
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat.last().map(|v| *v as f64 / 1000.0).unwrap_or(f64::NAN),
        format_args!("{lost} lost, {duplicates} dup"),
        relay_cpu,
        load_cpu,
        pg_cpu,
        others,
    );

    // Stop.
    relay.shutdown();
    let _ = relay_rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), server).await });
    relay_rt.shutdown_timeout(Duration::from_secs(2));
    drop(relay);
    drop(pg_server);
    drop(tmp);
    if !(nothing_lost && store_empty) {
        std::process::exit(1);
    }
}
