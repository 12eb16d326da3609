//! The relay: one WebSocket per device connection at `/v1/ws`.
//!
//! A connection starts with a `Challenge`; the device answers with `Auth` (XEdDSA
//! signature by its identity key over the nonce); nothing else is served before that.
//! Then queued messages and receipts are pushed, and requests are answered. Messages
//! for a connected device are pushed at once; the others wait in the mailbox until
//! the device connects and acknowledges them (at-least-once: a message is pushed again
//! on every connection until acknowledged; the message id lets clients deduplicate).
//! Delivery receipts travel the same way towards the sender.
//! Delivery receipts work the same way towards the sender.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use rand::RngCore;
use tokio::sync::{mpsc, oneshot};

use pawl_core::keys::PublicKey;

use crate::proto::*;
use crate::registration::{redact, valid_phone, Registrar, RegistrationError};
use crate::store::{DeviceRecord, NewMessage, RelayStore, WriteBatch};

mod multidevice;

/// Limits that keep one client from exhausting the relay.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest message payload accepted.
    pub max_payload: usize,
    /// Most messages queued for one device.
    pub max_queue: u64,
    /// Most one-time prekeys in one upload.
    pub max_prekeys_per_upload: usize,
    /// Time a new connection has to authenticate.
    pub auth_timeout: Duration,
    /// New connections per second from one address (token bucket refill rate).
    pub connections_per_second: f64,
    /// Burst of new connections from one address.
    pub connection_burst: f64,
    /// Messages to users who never replied to the sender (first contacts), per sender
    /// and hour (anti-spam).
    pub unsolicited_per_hour: f64,
    /// Contact-discovery hash prefixes one device may look up per hour.
    pub discovery_per_hour: f64,
    /// Queued messages older than this are deleted with an `expired` receipt.
    pub message_ttl: Duration,
    /// Blobs older than this are deleted.
    pub blob_ttl: Duration,
    /// Largest blob.
    pub max_blob: u64,
    /// How often expiry runs.
    pub expiry_interval: Duration,
    /// Below this many one-time prekeys a device is told to upload more.
    pub prekeys_low: u32,
    /// Frames a connection may send before it is authenticated.
    pub max_frames_before_auth: u32,
    /// Development only: an `Auth` from an unknown device registers it (trust on first
    /// use, no phone number). Off by default; never on in production.
    pub open_registration: bool,
    /// How long a companion's first link code is valid (WhatsApp: 60 s).
    pub link_code_first: Duration,
    /// How long each later link code is valid (WhatsApp: 20 s).
    pub link_code_next: Duration,
    /// Link codes handed out before the relay gives up (about 160 s in all).
    pub link_codes: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_payload: 256 * 1024,
            max_queue: 50_000,
            max_prekeys_per_upload: 1000,
            auth_timeout: Duration::from_secs(10),
            max_frames_before_auth: 8,
            prekeys_low: 10,
            unsolicited_per_hour: 100.0,
            discovery_per_hour: 5_000.0,
            message_ttl: Duration::from_secs(30 * 24 * 3600),
            blob_ttl: Duration::from_secs(30 * 24 * 3600),
            max_blob: 100 * 1024 * 1024,
            expiry_interval: Duration::from_secs(60),
            connections_per_second: 20.0,
            connection_burst: 200.0,
            open_registration: false,
            link_code_first: Duration::from_secs(60),
            link_code_next: Duration::from_secs(20),
            link_codes: 6,
        }
    }
}

type Outbound = mpsc::UnboundedSender<RelayFrame>;

type Acked = Vec<Option<(String, u32, Receipt)>>;

/// A write waiting for the group commit.
enum WriteJob {
    Enqueue(Vec<NewMessage>, oneshot::Sender<Result<Vec<u64>, String>>),
    Ack(
        Vec<(String, u32, u64)>,
        Vec<(String, u32, u64)>,
        oneshot::Sender<Result<Acked, String>>,
    ),
}

/// A send checked and handed to the group commit, waiting for it.
struct QueuedSend {
    commit: oneshot::Receiver<Result<Vec<u64>, String>>,
    send: Send,
    now: u64,
}

/// What checking a send gave: an answer now, or messages in the group commit.
enum SendStep {
    Done(Box<Response>),
    Queued(QueuedSend),
}

/// Most sends one connection has in the group commit at once.
const MAX_SENDS_IN_FLIGHT: usize = 64;

/// A pipelined send, once its commit answered (or at once, if it was refused).
enum Pipelined {
    Committed {
        id: u64,
        ids: Result<Vec<u64>, Box<Response>>,
        send: Send,
        now: u64,
    },
    Answered(u64, Box<Response>),
}

type InFlight = std::pin::Pin<Box<dyn std::future::Future<Output = Pipelined> + std::marker::Send>>;

/// The answer of a job handed to the group commit.
async fn committed<T>(rx: oneshot::Receiver<Result<T, String>>) -> Result<T, Box<Response>> {
    match rx.await {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err(Box::new(fail(0, "Internal", e))),
        Err(_) => Err(Box::new(fail(0, "Internal", "the writer stopped"))),
    }
}

/// The writer thread: take every job waiting (up to 4096), commit them in one
/// transaction, answer each. While one batch commits, the next one gathers.
fn group_commit(
    store: &Mutex<Box<dyn RelayStore>>,
    jobs: &std::sync::mpsc::Receiver<WriteJob>,
    metrics: &crate::metrics::Metrics,
) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < 4096 {
            match jobs.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let mut w = WriteBatch::default();
        for j in &batch {
            match j {
                WriteJob::Enqueue(m, _) => w.enqueue.extend(m.iter().cloned()),
                WriteJob::Ack(a, r, _) => {
                    w.acks.extend(a.iter().cloned());
                    w.receipt_acks.extend(r.iter().cloned());
                }
            }
        }
        metrics.write_batches.fetch_add(1, Ordering::Relaxed);
        let result = {
            let mut s = store.lock().unwrap_or_else(|e| e.into_inner());
            s.write_batch(&w).map_err(|e| e.to_string())
        };
        let (mut ids, mut receipts) = match result {
            Ok(o) => (o.ids.into_iter(), o.receipts.into_iter()),
            Err(e) => {
                tracing::error!(error = %e, "group commit failed");
                for j in batch {
                    match j {
                        WriteJob::Enqueue(_, reply) => drop(reply.send(Err(e.clone()))),
                        WriteJob::Ack(_, _, reply) => drop(reply.send(Err(e.clone()))),
                    }
                }
                continue;
            }
        };
        for j in batch {
            match j {
                WriteJob::Enqueue(m, reply) => {
                    let _ = reply.send(Ok(ids.by_ref().take(m.len()).collect()));
                }
                WriteJob::Ack(a, _, reply) => {
                    let _ = reply.send(Ok(receipts.by_ref().take(a.len()).collect()));
                }
            }
        }
    }
}

/// One authenticated connection: its outbound queue and what was pushed on it and not
/// yet acknowledged (so a message is pushed once per connection, whichever relay
/// process, or notification, brings it).
struct Conn {
    id: u64,
    tx: Outbound,
    /// Notified when the device is unlinked: the connection closes.
    kicked: tokio::sync::Notify,
    pushed: Mutex<(
        std::collections::HashSet<u64>,
        std::collections::HashSet<u64>,
    )>,
}

impl Conn {
    fn push(&self, f: RelayFrame) -> bool {
        let fresh = {
            let mut p = self.pushed.lock().unwrap_or_else(|e| e.into_inner());
            // Ids pushed on this connection, acknowledged or not. A long-lived
            // connection forgets them past this many (a rare duplicate push then;
            // clients deduplicate by id anyway).
            if p.0.len() > 200_000 {
                p.0.clear();
            }
            if p.1.len() > 200_000 {
                p.1.clear();
            }
            match &f.kind {
                Some(RelayKind::Deliver(d)) if !d.ephemeral => p.0.insert(d.id),
                Some(RelayKind::Receipt(r)) => p.1.insert(r.receipt_id),
                _ => true,
            }
        };
        !fresh || self.tx.send(f).is_ok()
    }
}

/// Shared relay state.
pub struct Relay {
    store: Arc<Mutex<Box<dyn RelayStore>>>,
    /// A second connection for everything but the group commit (reads, key uploads,
    /// registrations), so connections never wait behind a commit's fsync. `None`: the
    /// one store serves both.
    reader: Option<Mutex<Box<dyn RelayStore>>>,
    /// Writes (queue, acknowledge) go to one thread that commits whatever has
    /// accumulated in one transaction: group commit.
    writer: Mutex<std::sync::mpsc::Sender<WriteJob>>,
    conns: Mutex<HashMap<(String, u32), Arc<Conn>>>,
    /// Companions waiting to be linked, by link reference.
    links: Mutex<HashMap<Vec<u8>, multidevice::PendingLink>>,
    background: std::sync::atomic::AtomicBool,
    next_conn: AtomicU64,
    limits: Limits,
    registrar: Registrar,
    shutdown: tokio::sync::watch::Sender<bool>,
    /// Counters for `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    conn_limiter: crate::metrics::RateLimiter,
    unsolicited: crate::metrics::RateLimiter<String>,
    discovery: crate::metrics::RateLimiter<(String, u32)>,
    /// (from, to) pairs known to be solicited (`to` has written to `from`): no need to
    /// ask the store again.
    solicited: Mutex<std::collections::HashSet<(String, String)>>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn fail(request_id: u64, code: &str, error: impl Into<String>) -> Response {
    Response {
        request_id,
        ok: false,
        error_code: code.into(),
        error: error.into(),
        ..Default::default()
    }
}

fn ok(request_id: u64) -> Response {
    Response {
        request_id,
        ok: true,
        ..Default::default()
    }
}

fn frame(kind: RelayKind) -> RelayFrame {
    RelayFrame { kind: Some(kind) }
}

impl Relay {
    /// A relay over `store`, registering phone numbers through `registrar`.
    pub fn new(store: Box<dyn RelayStore>, limits: Limits, registrar: Registrar) -> Arc<Self> {
        Self::build(store, None, limits, registrar)
    }

    /// A relay with a second connection to the same database (`reader`) for all but
    /// the group commit: what `pawl-relay` and [`EmbeddedRelay`](crate::EmbeddedRelay)
    /// use.
    pub fn with_reader(
        store: Box<dyn RelayStore>,
        reader: Box<dyn RelayStore>,
        limits: Limits,
        registrar: Registrar,
    ) -> Arc<Self> {
        Self::build(store, Some(reader), limits, registrar)
    }

    fn build(
        store: Box<dyn RelayStore>,
        reader: Option<Box<dyn RelayStore>>,
        limits: Limits,
        registrar: Registrar,
    ) -> Arc<Self> {
        let store = Arc::new(Mutex::new(store));
        let (writer, jobs) = std::sync::mpsc::channel::<WriteJob>();
        let metrics = Arc::new(crate::metrics::Metrics::default());
        {
            let (store, metrics) = (store.clone(), metrics.clone());
            // Ends when the relay (the only sender) is dropped.
            let _ = std::thread::Builder::new()
                .name("pawl-relay-writer".into())
                .spawn(move || group_commit(&store, &jobs, &metrics));
        }
        Arc::new(Relay {
            store,
            reader: reader.map(Mutex::new),
            writer: Mutex::new(writer),
            conns: Mutex::new(HashMap::new()),
            links: Mutex::new(HashMap::new()),
            background: std::sync::atomic::AtomicBool::new(false),
            next_conn: AtomicU64::new(1),
            registrar,
            shutdown: tokio::sync::watch::channel(false).0,
            metrics,
            conn_limiter: crate::metrics::RateLimiter::new(
                limits.connections_per_second,
                limits.connection_burst,
            ),
            unsolicited: crate::metrics::RateLimiter::new(
                limits.unsolicited_per_hour / 3600.0,
                limits.unsolicited_per_hour,
            ),
            discovery: crate::metrics::RateLimiter::new(
                limits.discovery_per_hour / 3600.0,
                limits.discovery_per_hour,
            ),
            solicited: Mutex::new(Default::default()),
            limits,
        })
    }

    /// Stop: every connection finishes the request it is handling (each one is
    /// committed before it is answered), closes, and the server stops accepting.
    /// Nothing accepted is lost: it is in the database.
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Resolves once [`shutdown`](Self::shutdown) was called.
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + std::marker::Send + 'static {
        let mut rx = self.shutdown.subscribe();
        async move {
            while !*rx.borrow_and_update() {
                if rx.changed().await.is_err() {
                    return;
                }
            }
        }
    }

    /// The metrics router (`/metrics`).
    pub fn metrics_router(self: &Arc<Self>) -> Router {
        let relay = self.clone();
        Router::new().route(
            "/metrics",
            get(move || {
                let body = relay.metrics.render();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4",
                        )],
                        body,
                    )
                }
            }),
        )
    }

    /// The HTTP router (`/v1/ws`).
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/v1/ws", get(ws_handler))
            .with_state(self.clone())
    }

    fn with_store<T>(
        &self,
        f: impl FnOnce(&mut dyn RelayStore) -> Result<T, crate::store::StoreFailure>,
    ) -> Result<T, Box<Response>> {
        let mut guard = match &self.reader {
            Some(r) => r.lock(),
            None => self.store.lock(),
        }
        .unwrap_or_else(|e| e.into_inner());
        f(guard.as_mut()).map_err(|e| Box::new(fail(0, "Internal", e.to_string())))
    }

    fn conn(&self, user: &str, device: u32) -> Option<Arc<Conn>> {
        let conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        conns.get(&(user.to_string(), device)).cloned()
    }

    fn push(&self, user: &str, device: u32, f: RelayFrame) -> bool {
        match self.conn(user, device) {
            Some(c) => c.push(f),
            None => false,
        }
    }

    /// Push whatever is queued for a device connected here and not pushed yet (after
    /// a notification from another relay process sharing the database).
    fn sync_device(&self, user: &str, device: u32) {
        let Some(conn) = self.conn(user, device) else {
            return;
        };
        if let Ok(pending) = self.with_store(|s| s.pending(user, device, 10_000)) {
            for d in pending {
                conn.push(frame(RelayKind::Deliver(d)));
            }
        }
        if let Ok(receipts) = self.with_store(|s| s.pending_receipts(user, device)) {
            for r in receipts {
                conn.push(frame(RelayKind::Receipt(r)));
            }
        }
    }

    /// Start the background work (once): listening for other relay processes' writes
    /// (PostgreSQL) and expiring old messages. Called by `serve`.
    pub fn start_background(self: &Arc<Self>) {
        if self.background.swap(true, Ordering::SeqCst) {
            return;
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<crate::store::MailboxEvent>();
        let subscribed = self.with_store(|s| {
            s.subscribe_mailboxes(Box::new(move |e| {
                let _ = tx.send(e);
            }))
        });
        if let Err(e) = subscribed {
            tracing::error!(error = %e.error, "cannot subscribe to mailbox notifications");
        }
        let relay = self.clone();
        let mut stop_expiry = self.shutdown.subscribe();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(relay.limits.expiry_interval);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop_expiry.wait_for(|s| *s) => break,
                }
                let r = relay.clone();
                let _ = tokio::task::spawn_blocking(move || r.expire_now()).await;
            }
        });
        let relay = self.clone();
        let mut stop = self.shutdown.subscribe();
        tokio::spawn(async move {
            loop {
                let e = tokio::select! {
                    e = rx.recv() => e,
                    _ = stop.wait_for(|s| *s) => None,
                };
                let Some(e) = e else { break };
                match e {
                    crate::store::MailboxEvent::Changed { user, device_id } => {
                        relay.sync_device(&user, device_id)
                    }
                    crate::store::MailboxEvent::Resync => {
                        let keys: Vec<(String, u32)> = relay
                            .conns
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .keys()
                            .cloned()
                            .collect();
                        for (u, d) in keys {
                            relay.sync_device(&u, d);
                        }
                    }
                }
            }
        });
    }

    async fn handle(&self, me: &(String, u32), req: ClientFrame) -> Response {
        let id = req.request_id;
        let r = match req.kind {
            Some(ClientKind::UploadKeys(u)) => self.upload(me, u),
            Some(ClientKind::FetchBundle(f)) => self
                .with_store(|s| {
                    let b = s.take_bundle(&f.user, f.device_id)?;
                    let left = match &b {
                        Some(_) => Some(s.prekeys_left(&f.user, f.device_id)?),
                        None => None,
                    };
                    Ok((b, left))
                })
                .map(|(b, left)| {
                    if let Some(left) = left.filter(|l| *l < self.limits.prekeys_low) {
                        let low = frame(RelayKind::KeysLow(KeysLow { prekeys_left: left }));
                        self.push(&f.user, f.device_id, low);
                    }
                    b
                })
                .map(|b| match b {
                    Some(bundle) => Response {
                        ok: true,
                        bundle: Some(bundle),
                        ..Default::default()
                    },
                    None => fail(
                        0,
                        "NotFound",
                        format!("no keys for {}.{}", f.user, f.device_id),
                    ),
                }),
            Some(ClientKind::GetDevices(g)) => self.get_devices(g),
            Some(ClientKind::LinkOffer(o)) => self.link_offer(me, o),
            Some(ClientKind::RemoveDevice(r)) => self.remove_device(me, r),
            Some(ClientKind::PutDeviceList(p)) => self.put_device_list(me, p),
            Some(ClientKind::AppStatePut(p)) => self.app_state_put(me, p),
            Some(ClientKind::AppStateGet(g)) => self.app_state_get(me, g),
            Some(ClientKind::Send(s)) => self.send(me, s).await,
            Some(ClientKind::Discover(d)) => self.discover(me, d),
            Some(ClientKind::BlobPut(b)) => self.blob_put(me, b),
            Some(ClientKind::BlobGet(g)) => self.blob_get(g),
            Some(ClientKind::Ack(a)) => self.ack(me, a).await,
            Some(
                ClientKind::Auth(_)
                | ClientKind::Register(_)
                | ClientKind::RequestCode(_)
                | ClientKind::LinkStart(_)
                | ClientKind::LinkFinish(_),
            ) => Ok(fail(0, "BadRequest", "already authenticated")),
            None => Ok(fail(0, "BadRequest", "empty frame")),
        };
        self.answer_to(id, r)
    }

    /// Finish a pipelined send (in arrival order): push what was committed, answer.
    fn finish_send(&self, me: &(String, u32), done: Pipelined) -> Response {
        match done {
            Pipelined::Committed { id, ids, send, now } => {
                let r = ids.map(|ids| self.send_finish(me, send, now, ids));
                self.answer_to(id, r)
            }
            Pipelined::Answered(id, r) => self.answer_to(id, Ok(*r)),
        }
    }

    /// The response to request `id` (refusals counted).
    fn answer_to(&self, id: u64, r: Result<Response, Box<Response>>) -> Response {
        let mut r = r.unwrap_or_else(|e| *e);
        r.request_id = id;
        if !r.ok {
            self.metrics.refuse(static_code(&r.error_code));
        }
        r
    }

    fn upload(&self, me: &(String, u32), u: UploadKeys) -> Result<Response, Box<Response>> {
        if u.prekeys.len() > self.limits.max_prekeys_per_upload {
            return Ok(fail(0, "TooLarge", "too many prekeys in one upload"));
        }
        let dev = self
            .with_store(|s| s.device(&me.0, me.1))?
            .ok_or_else(|| Box::new(fail(0, "Internal", "device vanished")))?;
        let identity = PublicKey::from_bytes(&dev.identity_key)
            .map_err(|_| Box::new(fail(0, "Internal", "stored identity is bad")))?;
        if PublicKey::from_bytes(&u.signed_prekey).is_err()
            || u.prekeys
                .iter()
                .any(|p| PublicKey::from_bytes(&p.public_key).is_err())
        {
            return Ok(fail(0, "BadRequest", "malformed public key"));
        }
        if identity
            .verify_signature(&u.signed_prekey, &u.signed_prekey_signature)
            .is_err()
        {
            return Ok(fail(
                0,
                "BadRequest",
                "signed prekey signature does not verify",
            ));
        }
        let left = self.with_store(|s| {
            s.upload_keys(
                &me.0,
                me.1,
                u.signed_prekey_id,
                &u.signed_prekey,
                &u.signed_prekey_signature,
                &u.prekeys,
            )?;
            s.prekeys_left(&me.0, me.1)
        })?;
        Ok(Response {
            ok: true,
            prekeys_left: left,
            ..Default::default()
        })
    }

    /// Hand a job to the group commit and wait for its answer.
    async fn write<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, String>>) -> WriteJob,
    ) -> Result<T, Box<Response>> {
        committed(self.submit(job)?).await
    }

    /// Hand a job to the group commit (jobs commit in the order they are submitted);
    /// the receiver gets its answer.
    fn submit<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, String>>) -> WriteJob,
    ) -> Result<oneshot::Receiver<Result<T, String>>, Box<Response>> {
        let (tx, rx) = oneshot::channel();
        let sent = self
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(job(tx));
        if sent.is_err() {
            return Err(Box::new(fail(0, "Internal", "the writer stopped")));
        }
        Ok(rx)
    }

    async fn send(&self, me: &(String, u32), s: Send) -> Result<Response, Box<Response>> {
        match self.send_prepare(me, s)? {
            SendStep::Done(r) => Ok(*r),
            SendStep::Queued(q) => {
                let ids = committed(q.commit).await?;
                Ok(self.send_finish(me, q.send, q.now, ids))
            }
        }
    }

    /// Check a send and hand its messages to the group commit (or answer it at once:
    /// refused, or ephemeral).
    fn send_prepare(&self, me: &(String, u32), s: Send) -> Result<SendStep, Box<Response>> {
        if s.envelopes
            .iter()
            .any(|e| e.payload.len() > self.limits.max_payload)
        {
            return Ok(SendStep::Done(Box::new(fail(
                0,
                "TooLarge",
                format!("payload over {} bytes", self.limits.max_payload),
            ))));
        }
        let registered: BTreeSet<u32> = self
            .with_store(|st| st.devices(&s.to_user))?
            .into_iter()
            .filter(|d| !(s.to_user == me.0 && *d == me.1)) // never to oneself
            .collect();
        if registered.is_empty() {
            return Ok(SendStep::Done(Box::new(fail(
                0,
                "NotFound",
                format!("unknown user {}", s.to_user),
            ))));
        }
        let named: BTreeSet<u32> = s.envelopes.iter().map(|e| e.device_id).collect();
        // Devices the sender refuses (not vouched for by the signed list) count as
        // present: the sender saw them and chose to send them nothing.
        let skipped: BTreeSet<u32> = s.unverified.iter().copied().collect();
        let covered: BTreeSet<u32> = named.union(&skipped).copied().collect();
        if !skipped.is_empty() {
            tracing::warn!(count = skipped.len(), "a sender refused unverified devices");
        }
        if named.len() != s.envelopes.len() || !named.is_disjoint(&skipped) || covered != registered
        {
            return Ok(SendStep::Done(Box::new(Response {
                ok: false,
                error_code: "DeviceMismatch".into(),
                error: "the device set differs from the registry".into(),
                missing_devices: registered.difference(&covered).copied().collect(),
                extra_devices: covered.difference(&registered).copied().collect(),
                ..Default::default()
            })));
        }
        let first_contact =
            !s.ephemeral && s.to_user != me.0 && !self.is_solicited(&me.0, &s.to_user)?;
        if first_contact && !self.unsolicited.allow(me.0.clone()) {
            self.metrics
                .unsolicited_limited
                .fetch_add(1, Ordering::Relaxed);
            return Ok(SendStep::Done(Box::new(fail(
                0,
                "RateLimited",
                "too many messages to people who have not replied",
            ))));
        }
        let now = now_ms();
        if s.ephemeral {
            // Pushed to connected devices only; never stored.
            for e in s.envelopes {
                self.metrics.ephemeral.fetch_add(1, Ordering::Relaxed);
                let d = Deliver {
                    id: 0,
                    from_user: me.0.clone(),
                    from_device: me.1,
                    message_type: e.message_type,
                    payload: e.payload,
                    server_time_ms: now,
                    ephemeral: true,
                };
                self.push(&s.to_user, e.device_id, frame(RelayKind::Deliver(d)));
            }
            return Ok(SendStep::Done(Box::new(ok(0))));
        }
        let full = self.with_store(|st| {
            for e in &s.envelopes {
                if st.queue_len(&s.to_user, e.device_id)? >= self.limits.max_queue {
                    return Ok(Some(e.device_id));
                }
            }
            Ok(None)
        })?;
        if let Some(d) = full {
            return Ok(SendStep::Done(Box::new(fail(
                0,
                "QueueFull",
                format!("mailbox of {}.{d} is full", s.to_user),
            ))));
        }
        let msgs: Vec<NewMessage> = s
            .envelopes
            .iter()
            .map(|e| NewMessage {
                to_user: s.to_user.clone(),
                to_device: e.device_id,
                from_user: me.0.clone(),
                from_device: me.1,
                message_type: e.message_type,
                payload: e.payload.clone(),
                now_ms: now,
            })
            .collect();
        let commit = self.submit(|tx| WriteJob::Enqueue(msgs, tx))?;
        Ok(SendStep::Queued(QueuedSend {
            commit,
            send: s,
            now,
        }))
    }

    /// A send's messages are committed (`ids`, one per envelope): push them to the
    /// connected devices and answer.
    fn send_finish(&self, me: &(String, u32), s: Send, now: u64, ids: Vec<u64>) -> Response {
        for (e, id) in s.envelopes.into_iter().zip(&ids) {
            self.metrics.messages_queued.fetch_add(1, Ordering::Relaxed);
            self.metrics
                .payload_bytes
                .fetch_add(e.payload.len() as u64, Ordering::Relaxed);
            let d = Deliver {
                id: *id,
                from_user: me.0.clone(),
                from_device: me.1,
                message_type: e.message_type,
                payload: e.payload,
                server_time_ms: now,
                ephemeral: false,
            };
            self.push(&s.to_user, e.device_id, frame(RelayKind::Deliver(d)));
        }
        Response {
            ok: true,
            message_ids: ids,
            ..Default::default()
        }
    }

    /// Whether `to` has ever written to `from` (the queued message itself records
    /// that `from` writes to `to`, in the group commit).
    fn is_solicited(&self, from: &str, to: &str) -> Result<bool, Box<Response>> {
        let key = (from.to_string(), to.to_string());
        if self
            .solicited
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&key)
        {
            return Ok(true);
        }
        let replied = self.with_store(|s| s.replied(from, to))?;
        if replied {
            let mut set = self.solicited.lock().unwrap_or_else(|e| e.into_inner());
            if set.len() > 1_000_000 {
                set.clear(); // a cache: the store has the truth
            }
            set.insert(key);
        }
        Ok(replied)
    }

    fn discover(&self, me: &(String, u32), d: Discover) -> Result<Response, Box<Response>> {
        if d.prefixes.len() > 2_000 || d.prefixes.iter().any(|p| p.len() != DISCOVERY_PREFIX_LEN) {
            return Ok(fail(
                0,
                "BadRequest",
                format!("at most 2000 prefixes of {DISCOVERY_PREFIX_LEN} bytes"),
            ));
        }
        if !self.discovery.allow_n(me.clone(), d.prefixes.len() as f64) {
            return Ok(fail(0, "RateLimited", "too many discovery lookups; wait"));
        }
        let found = self.with_store(|s| s.directory_lookup(&d.prefixes))?;
        Ok(Response {
            ok: true,
            found: found
                .into_iter()
                .map(|(hash, user)| DirectoryEntry { hash, user })
                .collect(),
            ..Default::default()
        })
    }

    fn blob_put(&self, me: &(String, u32), b: BlobPut) -> Result<Response, Box<Response>> {
        if b.data.len() > self.limits.max_payload {
            return Ok(fail(
                0,
                "TooLarge",
                format!("chunks are at most {} bytes", self.limits.max_payload),
            ));
        }
        let id = if b.blob_id.is_empty() {
            if b.offset != 0 {
                return Ok(fail(0, "BadRequest", "a new blob starts at offset 0"));
            }
            let mut id = vec![0u8; 16];
            rand::rngs::OsRng.fill_bytes(&mut id);
            self.with_store(|s| s.blob_create(&id, &me.0, now_ms()))?;
            id
        } else {
            b.blob_id
        };
        let max = self.limits.max_blob;
        match self.with_store(|s| s.blob_append(&id, &me.0, b.offset, &b.data, b.done, max))? {
            Some(Ok(size)) => {
                if b.done {
                    self.metrics.blobs.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Response {
                    ok: true,
                    blob_id: id,
                    blob_size: size,
                    ..Default::default()
                })
            }
            Some(Err(size)) => Ok(Response {
                blob_id: id,
                blob_size: size,
                ..fail(0, "BadRequest", format!("the upload is at offset {size}"))
            }),
            None => Ok(fail(
                0,
                "NotFound",
                format!("no unsealed blob of yours with that id, or it would exceed {max} bytes"),
            )),
        }
    }

    fn blob_get(&self, g: BlobGet) -> Result<Response, Box<Response>> {
        let max = g.max_len.min(self.limits.max_payload as u32);
        match self.with_store(|s| s.blob_read(&g.blob_id, g.offset, max))? {
            Some((size, data)) => Ok(Response {
                ok: true,
                blob_id: g.blob_id,
                blob_size: size,
                blob_data: data,
                ..Default::default()
            }),
            None => Ok(fail(0, "NotFound", "no such blob")),
        }
    }

    /// Delete what is too old: queued messages (their senders get `expired`
    /// receipts) and blobs.
    pub fn expire_now(&self) {
        let now = now_ms();
        let cutoff = now.saturating_sub(self.limits.message_ttl.as_millis() as u64);
        match self.with_store(|s| s.expire(cutoff)) {
            Ok(receipts) => {
                self.metrics
                    .messages_expired
                    .fetch_add(receipts.len() as u64, Ordering::Relaxed);
                for (user, device, r) in receipts {
                    self.push(&user, device, frame(RelayKind::Receipt(r)));
                }
            }
            Err(e) => tracing::warn!(error = %e.error, "expiring messages failed"),
        }
        let cutoff = now.saturating_sub(self.limits.blob_ttl.as_millis() as u64);
        if let Err(e) = self.with_store(|s| s.expire_blobs(cutoff)) {
            tracing::warn!(error = %e.error, "expiring blobs failed");
        }
    }

    async fn ack(&self, me: &(String, u32), a: Ack) -> Result<Response, Box<Response>> {
        // Acknowledged ids stay in the connection's pushed set: a notification-driven
        // sync that read the mailbox before this commit must not push them again.
        // The set is bounded (see Conn::push).
        // Each message is deleted and its receipt kept in one transaction; the receipt
        // stays until the sender acknowledges it, so a dying connection loses none.
        let acks: Vec<(String, u32, u64)> =
            a.ids.iter().map(|id| (me.0.clone(), me.1, *id)).collect();
        let receipt_acks: Vec<(String, u32, u64)> = a
            .receipt_ids
            .iter()
            .map(|id| (me.0.clone(), me.1, *id))
            .collect();
        let receipts = self
            .write(|tx| WriteJob::Ack(acks, receipt_acks, tx))
            .await?;
        for (from_user, from_device, receipt) in receipts.into_iter().flatten() {
            self.metrics.messages_acked.fetch_add(1, Ordering::Relaxed);
            self.push(&from_user, from_device, frame(RelayKind::Receipt(receipt)));
        }
        Ok(ok(0))
    }

    /// Verify `Auth` against `nonce`; register a new device. Returns the address.
    fn authenticate(&self, nonce: &[u8], a: &Auth) -> Result<(String, u32), Box<Response>> {
        let key = PublicKey::from_bytes(&a.identity_key)
            .map_err(|_| Box::new(fail(0, "AuthFailed", "malformed identity key")))?;
        if a.user.is_empty() || a.user.len() > 128 || a.user.chars().any(char::is_control) {
            return Err(Box::new(fail(0, "AuthFailed", "bad user name")));
        }
        key.verify_signature(&auth_message(nonce, &a.user, a.device_id), &a.signature)
            .map_err(|_| Box::new(fail(0, "AuthFailed", "signature does not verify")))?;
        match self.with_store(|s| s.device(&a.user, a.device_id))? {
            Some(d) if d.identity_key != a.identity_key => Err(Box::new(fail(
                0,
                "AuthFailed",
                "identity differs from the registered one",
            ))),
            Some(_) => Ok((a.user.clone(), a.device_id)),
            None if !self.limits.open_registration => {
                Err(Box::new(fail(0, "AuthFailed", "device not registered")))
            }
            None => {
                let rec = DeviceRecord {
                    identity_key: a.identity_key.clone(),
                    registration_id: a.registration_id,
                };
                self.with_store(|s| s.register_device(&a.user, a.device_id, &rec))?;
                Ok((a.user.clone(), a.device_id))
            }
        }
    }

    /// Register device `r.device_id` of account `r.phone` with a verification code.
    fn register(&self, nonce: &[u8], r: &Register) -> Result<(String, u32), Box<Response>> {
        if !valid_phone(&r.phone) {
            return Err(Box::new(fail(0, "BadRequest", "not an E.164 number")));
        }
        if r.device_id != 1 {
            return Err(Box::new(fail(
                0,
                "BadRequest",
                "a phone number registers its primary device (1); companions are linked",
            )));
        }
        let key = PublicKey::from_bytes(&r.identity_key)
            .map_err(|_| Box::new(fail(0, "BadRequest", "malformed identity key")))?;
        key.verify_signature(&auth_message(nonce, &r.phone, r.device_id), &r.signature)
            .map_err(|_| Box::new(fail(0, "AuthFailed", "signature does not verify")))?;
        self.registrar
            .verify(&r.phone, &r.code)
            .map_err(|e| Box::new(registration_failure(e)))?;
        match self.with_store(|s| s.device(&r.phone, r.device_id))? {
            Some(d) if d.identity_key == r.identity_key => {}
            Some(_) => {
                return Err(Box::new(fail(
                    0,
                    "AlreadyRegistered",
                    "this number is registered with another identity",
                )))
            }
            None => {
                let rec = DeviceRecord {
                    identity_key: r.identity_key.clone(),
                    registration_id: r.registration_id,
                };
                self.with_store(|s| s.register_device(&r.phone, r.device_id, &rec))?;
                let hash = discovery_hash(&r.phone);
                self.with_store(|s| s.directory_add(&hash, &r.phone))?;
                self.metrics.registrations.fetch_add(1, Ordering::Relaxed);
                tracing::info!(user = %redact(&r.phone), device = r.device_id, "registered");
            }
        }
        Ok((r.phone.clone(), r.device_id))
    }
}

fn static_code(code: &str) -> &'static str {
    [
        "BadRequest",
        "AuthFailed",
        "NotFound",
        "DeviceMismatch",
        "TooLarge",
        "QueueFull",
        "RateLimited",
        "BadCode",
        "AlreadyRegistered",
        "Conflict",
        "LinkExpired",
        "Internal",
    ]
    .into_iter()
    .find(|c| *c == code)
    .unwrap_or("Other")
}

fn registration_failure(e: RegistrationError) -> Response {
    match e {
        RegistrationError::BadPhone => fail(0, "BadRequest", "not an E.164 number"),
        RegistrationError::RateLimited => fail(0, "RateLimited", "too many attempts; wait"),
        RegistrationError::BadCode => fail(0, "BadCode", "wrong or expired code"),
        RegistrationError::SenderFailed(e) => {
            tracing::warn!(error = %e, "code sender failed");
            fail(0, "Internal", "the code could not be sent")
        }
    }
}

/// The client's address (for per-address rate limits), over TCP or TLS.
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub std::net::SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, crate::tls::NoDelay>>
    for PeerAddr
{
    fn connect_info(s: axum::serve::IncomingStream<'_, crate::tls::NoDelay>) -> Self {
        PeerAddr(*s.remote_addr())
    }
}

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, crate::tls::TlsListener>>
    for PeerAddr
{
    fn connect_info(s: axum::serve::IncomingStream<'_, crate::tls::TlsListener>) -> Self {
        PeerAddr(*s.remote_addr())
    }
}

async fn ws_handler(
    ws: WebSocketUpgrade,
    State(relay): State<Arc<Relay>>,
    ConnectInfo(PeerAddr(peer)): ConnectInfo<PeerAddr>,
) -> axum::response::Response {
    relay
        .metrics
        .connections_total
        .fetch_add(1, Ordering::Relaxed);
    if !relay.conn_limiter.allow(peer.ip()) {
        relay
            .metrics
            .connections_rate_limited
            .fetch_add(1, Ordering::Relaxed);
        return (
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "connection rate limit",
        )
            .into_response();
    }
    // A frame holds at most one send: every envelope at the payload limit, plus room.
    let max = relay.limits.max_payload.saturating_mul(4).max(1 << 20);
    // Small read buffer: tungstenite zero-fills it before every read, and frames are
    // a few hundred bytes (the load bench found 23% of the relay's CPU in that memset
    // with the 128 KiB default).
    ws.max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(8 * 1024)
        .on_upgrade(move |socket| connection(socket, relay))
        .into_response()
}

fn binary(f: &RelayFrame) -> Message {
    Message::Binary(f.encode_to_vec().into())
}

async fn connection(socket: WebSocket, relay: Arc<Relay>) {
    let (mut sink, mut stream) = socket.split();
    let mut nonce = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    if sink
        .send(binary(&frame(RelayKind::Challenge(Challenge {
            nonce: nonce.to_vec(),
        }))))
        .await
        .is_err()
    {
        return;
    }
    // Nothing is served before a valid Auth or Register; a code may be requested.
    let deadline = tokio::time::Instant::now() + relay.limits.auth_timeout;
    let mut frames = 0u32;
    let (me, auth_request_id) = loop {
        let next = tokio::time::timeout_at(deadline, stream.next()).await;
        let Ok(Some(Ok(msg))) = next else {
            return;
        };
        let bytes = match msg {
            Message::Binary(b) => b,
            Message::Ping(_) | Message::Pong(_) => continue,
            _ => return,
        };
        frames += 1;
        let reply = |r: Response| binary(&frame(RelayKind::Response(r)));
        if frames > relay.limits.max_frames_before_auth {
            let _ = sink
                .send(reply(fail(
                    0,
                    "RateLimited",
                    "too many frames before authentication",
                )))
                .await;
            return;
        }
        let Ok(req) = ClientFrame::decode(bytes.as_ref()) else {
            let _ = sink
                .send(reply(fail(0, "BadRequest", "malformed frame")))
                .await;
            return;
        };
        let rid = req.request_id;
        let outcome = match &req.kind {
            Some(ClientKind::LinkStart(start)) => {
                match relay
                    .link_companion(&nonce, start, rid, &mut sink, &mut stream)
                    .await
                {
                    Some((me, finish_id)) => {
                        relay.metrics.auth_ok.fetch_add(1, Ordering::Relaxed);
                        break (me, finish_id);
                    }
                    None => return,
                }
            }
            Some(ClientKind::Auth(a)) => relay.authenticate(&nonce, a),
            Some(ClientKind::Register(r)) => relay.register(&nonce, r),
            Some(ClientKind::RequestCode(c)) => {
                let r = match relay.registrar.request_code(&c.phone) {
                    Ok(()) => {
                        relay.metrics.codes_sent.fetch_add(1, Ordering::Relaxed);
                        ok(rid)
                    }
                    Err(e) => Response {
                        request_id: rid,
                        ..registration_failure(e)
                    },
                };
                if sink.send(reply(r)).await.is_err() {
                    return;
                }
                continue;
            }
            _ => Err(Box::new(fail(0, "AuthFailed", "authenticate first"))),
        };
        match outcome {
            Ok(me) => {
                relay.metrics.auth_ok.fetch_add(1, Ordering::Relaxed);
                break (me, rid);
            }
            Err(mut r) => {
                relay.metrics.auth_failed.fetch_add(1, Ordering::Relaxed);
                relay.metrics.refuse(static_code(&r.error_code));
                r.request_id = rid;
                let retry = r.error_code == "BadCode";
                if sink.send(reply(*r)).await.is_err() || !retry {
                    return;
                }
            }
        }
    };
    relay.metrics.connections.fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = mpsc::unbounded_channel::<RelayFrame>();
    let conn_id = relay.next_conn.fetch_add(1, Ordering::Relaxed);
    let conn = Arc::new(Conn {
        id: conn_id,
        tx: tx.clone(),
        kicked: tokio::sync::Notify::new(),
        pushed: Mutex::new(Default::default()),
    });
    relay
        .conns
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(me.clone(), conn.clone());
    let mut writer = tokio::spawn(async move {
        // Everything queued goes out with one flush.
        'out: while let Some(f) = rx.recv().await {
            if sink.feed(binary(&f)).await.is_err() {
                break;
            }
            while let Ok(f) = rx.try_recv() {
                if sink.feed(binary(&f)).await.is_err() {
                    break 'out;
                }
            }
            if sink.flush().await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let left = relay
        .with_store(|s| s.prekeys_left(&me.0, me.1))
        .unwrap_or(0);
    let _ = tx.send(frame(RelayKind::Response(Response {
        request_id: auth_request_id,
        ok: true,
        prekeys_left: left,
        ..Default::default()
    })));
    // Queued messages and receipts.
    if let Ok(pending) = relay.with_store(|s| s.pending(&me.0, me.1, 10_000)) {
        for d in pending {
            conn.push(frame(RelayKind::Deliver(d)));
        }
    }
    if let Ok(receipts) = relay.with_store(|s| s.pending_receipts(&me.0, me.1)) {
        for r in receipts {
            conn.push(frame(RelayKind::Receipt(r)));
        }
    }
    let mut stop = relay.shutdown.subscribe();
    // Sends in flight: each is checked and handed to the group commit as it is read
    // (so they commit in the order they came), and finished (pushed to the recipients,
    // answered) in that same order once committed. Several can then share one commit.
    // Any other request first waits for the sends before it, as if served one by one.
    let mut inflight: futures_util::stream::FuturesOrdered<InFlight> =
        futures_util::stream::FuturesOrdered::new();
    loop {
        let msg = tokio::select! {
            Some(done) = inflight.next(), if !inflight.is_empty() => {
                if tx.send(frame(RelayKind::Response(relay.finish_send(&me, done)))).is_err() {
                    break;
                }
                continue;
            }
            m = stream.next() => match m {
                Some(Ok(m)) => m,
                _ => break,
            },
            _ = stop.wait_for(|s| *s) => break,
            _ = conn.kicked.notified() => break,
        };
        let bytes = match msg {
            Message::Binary(b) => b,
            Message::Close(_) => break,
            Message::Text(_) => {
                let r = fail(0, "BadRequest", "frames are binary protobuf");
                if tx.send(frame(RelayKind::Response(r))).is_err() {
                    break;
                }
                continue;
            }
            _ => continue,
        };
        let req = match ClientFrame::decode(bytes.as_ref()) {
            Ok(req) => req,
            Err(e) => {
                let r = fail(0, "BadRequest", format!("malformed frame: {e}"));
                if tx.send(frame(RelayKind::Response(r))).is_err() {
                    break;
                }
                continue;
            }
        };
        match req.kind {
            Some(ClientKind::Send(s)) if !s.ephemeral && inflight.len() < MAX_SENDS_IN_FLIGHT => {
                let id = req.request_id;
                let step = match relay.send_prepare(&me, s) {
                    Ok(SendStep::Queued(q)) => Ok(q),
                    Ok(SendStep::Done(r)) => Err(r),
                    Err(e) => Err(e),
                };
                inflight.push_back(Box::pin(async move {
                    match step {
                        Ok(q) => Pipelined::Committed {
                            id,
                            ids: committed(q.commit).await,
                            send: q.send,
                            now: q.now,
                        },
                        Err(r) => Pipelined::Answered(id, r),
                    }
                }));
            }
            kind => {
                let mut closed = false;
                while let Some(done) = inflight.next().await {
                    closed |= tx
                        .send(frame(RelayKind::Response(relay.finish_send(&me, done))))
                        .is_err();
                }
                let resp = relay
                    .handle(
                        &me,
                        ClientFrame {
                            request_id: req.request_id,
                            kind,
                        },
                    )
                    .await;
                if closed || tx.send(frame(RelayKind::Response(resp))).is_err() {
                    break;
                }
            }
        }
    }
    // Sends already handed to the group commit are pushed to their recipients (and
    // answered, if the connection still takes it) before the connection goes.
    while let Ok(Some(done)) = tokio::time::timeout(Duration::from_secs(2), inflight.next()).await {
        let _ = tx.send(frame(RelayKind::Response(relay.finish_send(&me, done))));
    }
    if let Ok(mut c) = relay.conns.lock() {
        if c.get(&me).is_some_and(|c| c.id == conn_id) {
            c.remove(&me);
        }
    }
    relay.metrics.connections.fetch_sub(1, Ordering::Relaxed);
    drop(tx);
    // Answers already queued go out, then the close frame.
    if tokio::time::timeout(Duration::from_secs(2), &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
}
