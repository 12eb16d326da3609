//! The relay client: one device's connection to a Pawl relay, over its SQLite store.
//!
//! [`Client`] registers the device by phone number, keeps its connection up
//! (reconnecting with backoff), authenticates every connection with the identity key,
//! keeps one-time prekeys topped up, sends to every device of a contact, receives and
//! decrypts into the store (the message and the new ratchet state commit together
//! before the relay's copy is acknowledged), deduplicates redelivered messages, tracks
//! sent / delivered / read (read receipts travel end to end encrypted), and resends
//! its outbox after a reconnect. The app listens on the [`Event`] stream.
//!
//! ```no_run
//! # async fn demo() -> Result<(), pawl_core::client::ClientError> {
//! use pawl_core::client::{Client, ClientConfig, Event};
//!
//! let config = ClientConfig::new("alice.db", [7u8; 32], "ws://127.0.0.1:8787/v1/ws");
//! let (client, mut events) = Client::open(config)?;
//! client.request_code("+4915112345678").await?;
//! let code = "123456"; // what the user typed
//! client.verify_code("+4915112345678", code).await?;
//! client.start();
//! client.send_text("+4915187654321", "hello").await?;
//! while let Some(event) = events.recv().await {
//!     if let Event::Message(m) = event {
//!         println!("{}: {}", m.sender, m.text().unwrap_or("<binary>"));
//!     }
//! }
//! # Ok(()) }
//! ```

mod devices;
mod groups;
mod media;
mod sync;
mod transport;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use rand_core::OsRng;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::Message as WsMessage;

pub use crate::sqlite::GroupInfo;
pub use devices::{CompanionLinking, LinkCode, LinkRequest};
pub use media::{Attachment, MediaMessage, MAX_THUMBNAIL};
pub use sync::{ChatState, HistoryConfig};
pub use transport::{cert_fingerprint, TlsTrust};

use crate::address::ProtocolAddress;
use crate::error::{SessionError, StoreError};
use crate::keys::{IdentityKey, PreKeyBundle, PreKeyRecord, PublicKey};
use crate::sqlite::messages::{Envelope, Incoming, PendingSend, Received, StoredMessage};
use crate::sqlite::SqliteStore;
use crate::store::{IdentityKeyStore, PreKeyStore, SignedPreKeyStore};
use crate::wire::content::{Body, Content, RECEIPT_READ};
use crate::wire::relay::{self as proto, ClientFrame, ClientKind, RelayFrame, RelayKind};

/// Client errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The configuration is unusable (URL, TLS settings).
    #[error("configuration: {0}")]
    Config(String),
    /// The store failed (wrong database key, I/O, ...).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A protocol operation failed (untrusted identity, bad bundle, ...).
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The network failed; the client reconnects by itself.
    #[error("transport: {0}")]
    Transport(String),
    /// The TLS handshake failed (for instance: not the pinned certificate).
    #[error("TLS: {0}")]
    Tls(String),
    /// No connection to the relay right now (the operation is kept if it can be).
    #[error("not connected to the relay")]
    NotConnected,
    /// This device is not registered yet (call `request_code` and `verify_code`).
    #[error("this device is not registered")]
    NotRegistered,
    /// The relay refused: its stable error code and message.
    #[error("relay refused ({code}): {message}")]
    Relay {
        /// `BadCode`, `RateLimited`, `NotFound`, ... (see PROTOCOL.md).
        code: String,
        /// Human-readable detail.
        message: String,
    },
    /// The relay sent something that does not parse.
    #[error("relay protocol: {0}")]
    Protocol(String),
    /// A multi-device check failed (link code, signatures, device list).
    #[error(transparent)]
    Device(crate::devices::DeviceError),
    /// App-state sync failed (a patch or snapshot does not verify).
    #[error(transparent)]
    AppState(#[from] crate::appstate::AppStateError),
    /// A group operation is not allowed or not possible (unknown group, not an
    /// admin, not a member, a malformed change).
    #[error("group: {0}")]
    Group(String),
}

/// What happened, for the app.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Connected and authenticated.
    Connected,
    /// The connection dropped; the client reconnects by itself.
    Disconnected {
        /// Why.
        reason: String,
    },
    /// A new message, already committed to the store.
    Message(StoredMessage),
    /// The relay accepted our message (it is queued for every device). A group
    /// message is one relay send per member: this comes once for each.
    Sent {
        /// Message id in the store.
        message_id: i64,
    },
    /// One device of the recipient received our message.
    Delivered {
        /// Message id in the store.
        message_id: i64,
        /// The device.
        device: ProtocolAddress,
    },
    /// The recipient read our message (end-to-end encrypted receipt).
    Read {
        /// Message id in the store.
        message_id: i64,
        /// The reader's device.
        by: ProtocolAddress,
    },
    /// A contact started or stopped typing (never stored).
    Typing {
        /// Their device.
        from: ProtocolAddress,
        /// Started (true) or stopped.
        started: bool,
    },
    /// A contact came online or went offline (never stored).
    Presence {
        /// Their device.
        from: ProtocolAddress,
        /// Online or not.
        online: bool,
    },
    /// A message could not be sent (unknown recipient, too large).
    Failed {
        /// Message id in the store, if it was a stored message.
        message_id: Option<i64>,
        /// Why.
        reason: String,
    },
    /// A message could not be decrypted; it was dropped (acknowledged).
    DecryptFailed {
        /// The sender device.
        from: ProtocolAddress,
        /// Why.
        error: String,
    },
    /// One-time prekeys were uploaded.
    PreKeysUploaded {
        /// How many.
        count: u32,
    },
    /// The primary linked a companion device (on the primary).
    DeviceLinked {
        /// Its device id.
        device_id: u32,
    },
    /// A device list, or devices on it, failed the checks: nothing is encrypted to
    /// those devices (a relay that lists a device the primary did not sign, or
    /// replays an old list).
    DeviceListRejected {
        /// Whose list.
        user: String,
        /// Why.
        reason: String,
    },
    /// History from the primary was imported (on a new companion).
    HistorySynced {
        /// Chunks imported so far.
        chunks_done: u32,
        /// Chunks in all.
        chunks: u32,
        /// Messages imported by this chunk.
        messages: u32,
    },
    /// A patch from the relay did not verify or did not follow the last one
    /// (tampered, dropped, reordered or replayed); the collection is rebuilt from the
    /// snapshot (an `AppStateChanged` follows if that worked).
    AppStateRejected {
        /// The collection.
        collection: String,
        /// Why.
        reason: String,
    },
    /// A group was created, changed (members, admins, name) or this account was
    /// removed from it, by a message from an admin (or a member leaving); already
    /// stored. Read it with `Client::group`.
    GroupUpdated {
        /// The group's id.
        group_id: Vec<u8>,
        /// Its chat.
        chat_id: i64,
    },
    /// Synced app state changed (read marker, archive, mute, pin, contact name,
    /// setting) from another device of this account, or after recovery.
    AppStateChanged {
        /// The collection.
        collection: String,
    },
}

/// Reconnection backoff.
#[derive(Clone, Debug)]
pub struct Backoff {
    /// First delay.
    pub min: Duration,
    /// Longest delay.
    pub max: Duration,
}

/// How to open a client.
#[derive(Clone)]
pub struct ClientConfig {
    /// The SQLite database file (created if missing).
    pub db_path: PathBuf,
    /// Its 32-byte key (from the iOS Keychain / Android Keystore).
    pub db_key: [u8; 32],
    /// `wss://host:port/v1/ws` (or `ws://` for local development).
    pub relay_url: String,
    /// How the relay's TLS certificate is trusted (required for `wss://`).
    pub tls: Option<TlsTrust>,
    /// Reconnection backoff.
    pub backoff: Backoff,
    /// Refill one-time prekeys when the relay has fewer than this many.
    pub prekey_low_water: u32,
    /// How many one-time prekeys one refill uploads.
    pub prekey_batch: u32,
    /// How long to wait for the relay's answer to a request.
    pub request_timeout: Duration,
    /// This device's platform, shown on the primary when it links it (`0` unknown,
    /// `c` macOS, `7` desktop app, `9` web, `e` Android, ...).
    pub platform: char,
    /// How long a signed device list is trusted (WhatsApp: 35 days).
    pub device_list_ttl: Duration,
    /// How soon a list is re-read once a message names a newer one (WhatsApp:
    /// 48 hours; 0 re-reads at the next send).
    pub newer_list_ttl: Duration,
    /// What the primary sends a new companion as history.
    pub history: HistoryConfig,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("db_path", &self.db_path)
            .field("db_key", &"<redacted>")
            .field("relay_url", &self.relay_url)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl Drop for ClientConfig {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.db_key);
    }
}

impl ClientConfig {
    /// Defaults for everything but the database and the relay.
    pub fn new(db_path: impl Into<PathBuf>, db_key: [u8; 32], relay_url: &str) -> Self {
        ClientConfig {
            db_path: db_path.into(),
            db_key,
            relay_url: relay_url.to_string(),
            tls: None,
            backoff: Backoff {
                min: Duration::from_millis(100),
                max: Duration::from_secs(30),
            },
            prekey_low_water: 20,
            prekey_batch: 100,
            request_timeout: Duration::from_secs(30),
            platform: '0',
            device_list_ttl: Duration::from_millis(crate::devices::DEVICE_LIST_TTL_MS),
            newer_list_ttl: Duration::from_millis(crate::devices::NEWER_LIST_TTL_MS),
            history: HistoryConfig::default(),
        }
    }
}

use crate::sqlite::ACCOUNT_USER;
const ACCOUNT_DEVICE: &str = "client.account.device";
const NEXT_PREKEY_ID: &str = "client.next_prekey_id";
const SIGNED_PREKEY_ID: u32 = 1;
/// Frames processed per store transaction when draining a queue.
const BATCH: usize = 256;

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<proto::Response>>>>;

/// A live connection: frames go out through `tx`; answers come back by request id.
struct Link {
    tx: mpsc::UnboundedSender<ClientFrame>,
    pending: Pending,
    next_id: AtomicU64,
}

struct Inner {
    config: ClientConfig,
    store: Mutex<SqliteStore>,
    events: mpsc::UnboundedSender<Event>,
    link: Mutex<Option<Arc<Link>>>,
    /// Serializes outbox flushes (a send is not pushed twice at once).
    flush: tokio::sync::Mutex<()>,
    /// Serializes app-state pulls and pushes.
    sync: tokio::sync::Mutex<()>,
    /// Serializes history imports (a notice is imported once, live or on resume).
    history: tokio::sync::Mutex<()>,
    last_ts: AtomicU64,
    started: AtomicBool,
    shutdown: watch::Sender<bool>,
}

/// A device's client. Cheap to clone (shared inside).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn relay_error(r: &proto::Response) -> ClientError {
    ClientError::Relay {
        code: r.error_code.clone(),
        message: r.error.clone(),
    }
}

fn encode(f: &ClientFrame) -> WsMessage {
    WsMessage::Binary(f.encode_to_vec().into())
}

/// Read the next relay frame (skipping pings); `None` when the connection ends.
async fn next_frame(ws: &mut transport::Ws) -> Option<Result<RelayFrame, ClientError>> {
    loop {
        match ws.next().await? {
            Ok(WsMessage::Binary(b)) => {
                return Some(
                    RelayFrame::decode(b.as_ref())
                        .map_err(|e| ClientError::Protocol(e.to_string())),
                )
            }
            Ok(WsMessage::Close(_)) => return None,
            Ok(_) => continue,
            Err(e) => return Some(Err(ClientError::Transport(e.to_string()))),
        }
    }
}

impl Client {
    /// Open (or create) the device's store; a new store gets an identity key, a
    /// registration id and a signed prekey. Nothing touches the network until
    /// [`start`](Self::start) or a registration call.
    pub fn open(
        config: ClientConfig,
    ) -> Result<(Client, mpsc::UnboundedReceiver<Event>), ClientError> {
        let mut store = SqliteStore::open(&config.db_path, Some(&config.db_key))?;
        store.ensure_identity(SIGNED_PREKEY_ID, now_ms(), &mut OsRng)?;
        let (events, rx) = mpsc::unbounded_channel();
        let (shutdown, _) = watch::channel(false);
        Ok((
            Client {
                inner: Arc::new(Inner {
                    config,
                    store: Mutex::new(store),
                    events,
                    link: Mutex::new(None),
                    flush: tokio::sync::Mutex::new(()),
                    sync: tokio::sync::Mutex::new(()),
                    history: tokio::sync::Mutex::new(()),
                    last_ts: AtomicU64::new(0),
                    started: AtomicBool::new(false),
                    shutdown,
                }),
            },
            rx,
        ))
    }

    /// Run `f` on the store (for reads the app makes: chats, messages, search).
    pub fn with_store<T>(&self, f: impl FnOnce(&mut SqliteStore) -> T) -> T {
        let mut g = self.inner.store.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g)
    }

    /// This device's address, once registered.
    pub fn address(&self) -> Result<ProtocolAddress, ClientError> {
        self.with_store(|s| {
            let user = s.setting(ACCOUNT_USER)?;
            let dev = s.setting(ACCOUNT_DEVICE)?;
            match (user, dev) {
                (Some(u), Some(d)) if d.len() == 4 => Ok(ProtocolAddress::new(
                    String::from_utf8_lossy(&u).into_owned(),
                    u32::from_be_bytes([d[0], d[1], d[2], d[3]]),
                )),
                _ => Err(ClientError::NotRegistered),
            }
        })
    }

    /// This device's identity key.
    pub fn identity_key(&self) -> Result<IdentityKey, ClientError> {
        Ok(*self.with_store(|s| s.identity_key_pair())?.identity_key())
    }

    /// The safety number with `peer` (v2: the phone numbers as stable identifiers),
    /// from this device's identity and the identity of `peer`'s primary device as
    /// this store knows it (after a session exists). Compare the 60 digits or scan
    /// the other side's QR code with [`Fingerprint::compare_scanned`].
    ///
    /// [`Fingerprint::compare_scanned`]: crate::fingerprint::Fingerprint::compare_scanned
    pub fn safety_number(
        &self,
        peer: &str,
    ) -> Result<crate::fingerprint::Fingerprint, ClientError> {
        use crate::fingerprint::{Fingerprint, ScannableVersion, DEFAULT_ITERATIONS};
        let me = self.address()?;
        let ours = self.identity_key()?;
        let theirs = self
            .with_store(|s| s.get_identity(&ProtocolAddress::new(peer, 1)))?
            .ok_or_else(|| SessionError::NoSession(format!("{peer}.1")))?;
        Fingerprint::new(
            ScannableVersion::V2,
            DEFAULT_ITERATIONS,
            me.name.as_bytes(),
            &ours,
            peer.as_bytes(),
            &theirs,
        )
        .map_err(|e| ClientError::Protocol(e.to_string()))
    }

    fn emit(&self, e: Event) {
        let _ = self.inner.events.send(e);
    }

    /// A timestamp unique to this client (ms; strictly increasing): messages are
    /// named by it in read receipts.
    fn timestamp(&self) -> u64 {
        let now = now_ms();
        let mut last = self.inner.last_ts.load(Ordering::Relaxed);
        loop {
            let next = now.max(last + 1);
            match self.inner.last_ts.compare_exchange(
                last,
                next,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => return next,
                Err(l) => last = l,
            }
        }
    }

    // ------------------------------------------------------------ registration

    /// Open a connection, read the challenge, send `kind` (built from the nonce), and
    /// return the relay's answer with the still-open socket.
    async fn unauthenticated(
        &self,
        kind: impl FnOnce(&[u8]) -> Result<ClientKind, ClientError>,
    ) -> Result<proto::Response, ClientError> {
        let c = &self.inner.config;
        let (mut ws, nonce) = self.connect_for_challenge().await?;
        let f = ClientFrame {
            request_id: 1,
            kind: Some(kind(&nonce)?),
        };
        ws.send(encode(&f))
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let r = loop {
            match tokio::time::timeout(c.request_timeout, next_frame(&mut ws)).await {
                Ok(Some(Ok(RelayFrame {
                    kind: Some(RelayKind::Response(r)),
                }))) if r.request_id == 1 => break r,
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(e))) => return Err(e),
                Ok(None) => return Err(ClientError::Transport("connection closed".into())),
                Err(_) => return Err(ClientError::Transport("timed out".into())),
            }
        };
        let _ = ws.close(None).await;
        if r.ok {
            Ok(r)
        } else {
            Err(relay_error(&r))
        }
    }

    /// Connect to the relay and read its challenge: the socket and the nonce.
    async fn connect_for_challenge(&self) -> Result<(transport::Ws, Vec<u8>), ClientError> {
        let c = &self.inner.config;
        let mut ws = transport::connect(&c.relay_url, c.tls.as_ref()).await?;
        match next_frame(&mut ws).await {
            Some(Ok(RelayFrame {
                kind: Some(RelayKind::Challenge(ch)),
            })) => Ok((ws, ch.nonce)),
            Some(Err(e)) => Err(e),
            _ => Err(ClientError::Protocol("no challenge".into())),
        }
    }

    /// Ask the relay to send a verification code to `phone` (E.164).
    pub async fn request_code(&self, phone: &str) -> Result<(), ClientError> {
        let phone = phone.to_string();
        self.unauthenticated(|_| Ok(ClientKind::RequestCode(proto::RequestCode { phone })))
            .await
            .map(|_| ())
    }

    /// Register this device as the primary device (1) of `phone` with the code it
    /// received. Afterwards [`start`](Self::start) connects as this account.
    pub async fn verify_code(&self, phone: &str, code: &str) -> Result<(), ClientError> {
        let (identity, registration_id) = self.with_store(|s| {
            Ok::<_, StoreError>((s.identity_key_pair()?, s.local_registration_id()?))
        })?;
        let device_id = 1;
        self.unauthenticated(|nonce| {
            let sig = identity
                .private_key()
                .sign(&proto::auth_message(nonce, phone, device_id), &mut OsRng);
            Ok(ClientKind::Register(proto::Register {
                phone: phone.to_string(),
                code: code.to_string(),
                device_id,
                identity_key: identity.identity_key().serialize().to_vec(),
                registration_id,
                signature: sig.to_vec(),
            }))
        })
        .await?;
        self.with_store(|s| {
            s.transaction(|s| {
                s.set_setting(ACCOUNT_USER, phone.as_bytes())?;
                s.set_setting(ACCOUNT_DEVICE, &device_id.to_be_bytes())
            })
        })?;
        Ok(())
    }

    // ------------------------------------------------------------ connection

    /// Start the connection task (idempotent): connect, authenticate, top up
    /// prekeys, resend the outbox, receive. It reconnects with backoff until
    /// [`shutdown`](Self::shutdown).
    pub fn start(&self) {
        if self.inner.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move { me.run().await });
    }

    /// Stop the connection task and close the connection. Everything received is
    /// already committed; unsent messages stay in the outbox for the next start.
    pub async fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
        let link = self.take_link();
        drop(link);
        // Let the connection task see the signal.
        tokio::task::yield_now().await;
        self.inner.started.store(false, Ordering::SeqCst);
    }

    /// Whether an authenticated connection is up.
    pub fn is_connected(&self) -> bool {
        self.current_link().is_some()
    }

    fn current_link(&self) -> Option<Arc<Link>> {
        self.inner
            .link
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn take_link(&self) -> Option<Arc<Link>> {
        self.inner
            .link
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    async fn run(&self) {
        self.inner.shutdown.send_replace(false);
        let mut shutdown = self.inner.shutdown.subscribe();
        let b = self.inner.config.backoff.clone();
        let mut delay = b.min;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let outcome = tokio::select! {
                r = self.connection() => r,
                _ = shutdown.wait_for(|s| *s) => break,
            };
            let authenticated = match outcome {
                Ok(()) => true,
                Err((authenticated, e)) => {
                    self.take_link();
                    self.emit(Event::Disconnected {
                        reason: e.to_string(),
                    });
                    authenticated
                }
            };
            if authenticated {
                delay = b.min;
            }
            // Full jitter: a relay restart does not get every client back at once.
            let jitter = rand_core::RngCore::next_u64(&mut OsRng) % (delay.as_millis() as u64 + 1);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(jitter)) => {}
                _ = shutdown.wait_for(|s| *s) => break,
            }
            delay = (delay * 2).min(b.max);
        }
        self.take_link();
    }

    /// One connection, until it drops. The error says whether it had authenticated.
    async fn connection(&self) -> Result<(), (bool, ClientError)> {
        let addr = self.address().map_err(|e| (false, e))?;
        let c = &self.inner.config;
        let (mut ws, nonce) = self.connect_for_challenge().await.map_err(|e| (false, e))?;
        let (identity, registration_id) = self
            .with_store(|s| {
                Ok::<_, StoreError>((s.identity_key_pair()?, s.local_registration_id()?))
            })
            .map_err(|e| (false, e.into()))?;
        let sig = identity.private_key().sign(
            &proto::auth_message(&nonce, &addr.name, addr.device_id),
            &mut OsRng,
        );
        let auth = ClientFrame {
            request_id: 0,
            kind: Some(ClientKind::Auth(proto::Auth {
                user: addr.name.clone(),
                device_id: addr.device_id,
                identity_key: identity.identity_key().serialize().to_vec(),
                registration_id,
                signature: sig.to_vec(),
            })),
        };
        ws.send(encode(&auth))
            .await
            .map_err(|e| (false, ClientError::Transport(e.to_string())))?;
        let prekeys_left = match tokio::time::timeout(c.request_timeout, next_frame(&mut ws)).await
        {
            Ok(Some(Ok(RelayFrame {
                kind: Some(RelayKind::Response(r)),
            }))) if r.ok => r.prekeys_left,
            Ok(Some(Ok(RelayFrame {
                kind: Some(RelayKind::Response(r)),
            }))) => return Err((false, relay_error(&r))),
            Ok(Some(Err(e))) => return Err((false, e)),
            Ok(_) => return Err((false, ClientError::Protocol("no answer to Auth".into()))),
            Err(_) => return Err((false, ClientError::Transport("Auth timed out".into()))),
        };
        // Authenticated: a writer task owns the sink.
        let (mut sink, mut stream) = ws.split();
        let (tx, mut rx) = mpsc::unbounded_channel::<ClientFrame>();
        let link = Arc::new(Link {
            tx,
            pending: Arc::new(Mutex::new(HashMap::new())),
            next_id: AtomicU64::new(1),
        });
        *self.inner.link.lock().unwrap_or_else(|e| e.into_inner()) = Some(link.clone());
        let writer = tokio::spawn(async move {
            while let Some(f) = rx.recv().await {
                if sink.send(encode(&f)).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        self.emit(Event::Connected);
        // Keys and outbox go through requests: run them beside the reader.
        let me = self.clone();
        let housekeeping = tokio::spawn(async move {
            // A failed upload is retried on the next connection or low-keys signal.
            let _ = me.top_up_prekeys(prekeys_left).await;
            me.flush_outbox().await;
            // What other devices of the account wrote while this one was away.
            let _ = me.sync_app_state().await;
            me.resume_history().await;
            // The primary keeps its signed device list from expiring.
            let every = (me.inner.config.device_list_ttl / 4).max(Duration::from_millis(100));
            loop {
                let _ = me.renew_device_list().await;
                tokio::time::sleep(every).await;
            }
        });
        // Whether the read loop ends or this future is dropped (shutdown), the tasks
        // of this connection stop, its socket closes and waiting requests fail at once.
        let _end = ConnectionEnd {
            tasks: vec![housekeeping, writer],
            link: link.clone(),
            client: self.clone(),
        };
        let result = self.read_loop(&mut stream, &link).await;
        result.map_err(|e| (true, e))
    }

    async fn read_loop(
        &self,
        stream: &mut futures_util::stream::SplitStream<transport::Ws>,
        link: &Arc<Link>,
    ) -> Result<(), ClientError> {
        let mut batch: Vec<proto::Deliver> = Vec::new();
        let mut receipts: Vec<proto::Receipt> = Vec::new();
        loop {
            // Wait for one frame, then take whatever else is already there (a queue
            // drained after a reconnect arrives as a burst: one transaction per batch).
            let mut first = true;
            loop {
                let next = if first {
                    stream.next().await
                } else {
                    match futures_util::FutureExt::now_or_never(stream.next()) {
                        Some(n) => n,
                        None => break,
                    }
                };
                first = false;
                let msg = match next {
                    None => return Err(ClientError::Transport("connection closed".into())),
                    Some(Err(e)) => return Err(ClientError::Transport(e.to_string())),
                    Some(Ok(m)) => m,
                };
                let bytes = match msg {
                    WsMessage::Binary(b) => b,
                    WsMessage::Close(_) => {
                        return Err(ClientError::Transport("closed by the relay".into()))
                    }
                    _ => continue,
                };
                let f = RelayFrame::decode(bytes.as_ref())
                    .map_err(|e| ClientError::Protocol(e.to_string()))?;
                match f.kind {
                    Some(RelayKind::Response(r)) => {
                        let waiter = link
                            .pending
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&r.request_id);
                        if let Some(w) = waiter {
                            let _ = w.send(r);
                        }
                    }
                    Some(RelayKind::Deliver(d)) => batch.push(d),
                    Some(RelayKind::Receipt(r)) => receipts.push(r),
                    Some(RelayKind::KeysLow(k)) => {
                        let me = self.clone();
                        tokio::spawn(async move {
                            let _ = me.top_up_prekeys(k.prekeys_left).await;
                        });
                    }
                    Some(RelayKind::DevicesChanged(_)) => {
                        let me = self.clone();
                        tokio::spawn(async move {
                            if let Ok(a) = me.address() {
                                let _ = me.verified_devices(&a.name, true).await;
                            }
                        });
                    }
                    Some(RelayKind::AppStateChanged(c)) => {
                        let me = self.clone();
                        tokio::spawn(async move {
                            let _ = me.sync_collection(&c.collection).await;
                        });
                    }
                    Some(RelayKind::Challenge(_) | RelayKind::LinkCode(_))
                    | Some(RelayKind::LinkOffered(_))
                    | None => {}
                }
                if batch.len() >= BATCH {
                    break;
                }
            }
            if !batch.is_empty() {
                let acks = self.receive(std::mem::take(&mut batch))?;
                if !acks.is_empty() {
                    self.post(
                        link,
                        ClientKind::Ack(proto::Ack {
                            ids: acks,
                            receipt_ids: vec![],
                        }),
                    );
                }
            }
            if !receipts.is_empty() {
                let ids = self.delivery_receipts(std::mem::take(&mut receipts))?;
                self.post(
                    link,
                    ClientKind::Ack(proto::Ack {
                        ids: vec![],
                        receipt_ids: ids,
                    }),
                );
            }
        }
    }

    /// Send a frame without waiting for its answer.
    fn post(&self, link: &Link, kind: ClientKind) {
        let id = link.next_id.fetch_add(1, Ordering::Relaxed);
        let _ = link.tx.send(ClientFrame {
            request_id: id,
            kind: Some(kind),
        });
    }

    /// A request over the live connection, answered by the relay.
    async fn request(&self, kind: ClientKind) -> Result<proto::Response, ClientError> {
        let link = self.current_link().ok_or(ClientError::NotConnected)?;
        let id = link.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        link.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        link.tx
            .send(ClientFrame {
                request_id: id,
                kind: Some(kind),
            })
            .map_err(|_| ClientError::NotConnected)?;
        match tokio::time::timeout(self.inner.config.request_timeout, rx).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(_)) => Err(ClientError::NotConnected),
            Err(_) => {
                link.pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                Err(ClientError::Transport("request timed out".into()))
            }
        }
    }

    // ------------------------------------------------------------ receiving

    /// Decrypt and store a burst of deliveries; returns the relay ids to acknowledge.
    /// A store failure returns an error (nothing acknowledged: redelivered later).
    fn receive(&self, delivers: Vec<proto::Deliver>) -> Result<Vec<u64>, ClientError> {
        let mut acks = Vec::with_capacity(delivers.len());
        let mut events = Vec::new();
        let now = now_ms() as i64;
        let me = self.address()?;
        let mut list_versions: Vec<(String, u64)> = Vec::new();
        let mut controls: Vec<Vec<u8>> = Vec::new();
        let mut i = 0;
        while i < delivers.len() {
            // Consecutive deliveries from one device go in one transaction.
            let from = ProtocolAddress::new(delivers[i].from_user.clone(), delivers[i].from_device);
            let mut j = i;
            while j < delivers.len()
                && delivers[j].from_user == from.name
                && delivers[j].from_device == from.device_id
            {
                j += 1;
            }
            let group = &delivers[i..j];
            let ids: Vec<[u8; 8]> = group.iter().map(|d| d.id.to_be_bytes()).collect();
            let envs: Vec<Envelope<'_>> = group
                .iter()
                .zip(&ids)
                .filter(|(d, _)| d.message_type <= u8::MAX as u32)
                .map(|(d, id)| Envelope {
                    id: id.as_slice(),
                    message_type: d.message_type as u8,
                    ciphertext: &d.payload,
                    sent_at: d.server_time_ms as i64,
                })
                .collect();
            let outcomes = self.with_store(|s| {
                s.receive_batch_with(&from, &envs, now, &mut OsRng, |env, pt| {
                    let ephemeral = group
                        .iter()
                        .zip(&ids)
                        .any(|(d, id)| d.ephemeral && id.as_slice() == env.id);
                    let (incoming, version) = decode_content(pt, ephemeral, &from, &me)?;
                    if version > 0 {
                        list_versions.push((from.name.clone(), version));
                    }
                    Ok(incoming)
                })
            })?;
            let mut k = 0;
            for (d, _) in group.iter().zip(&ids) {
                if d.message_type > u8::MAX as u32 {
                    events.push(Event::DecryptFailed {
                        from: from.clone(),
                        error: format!("unknown message type {}", d.message_type),
                    });
                } else {
                    let outcome = outcomes.get(k).cloned();
                    k += 1;
                    match outcome {
                        Some(Ok(Received::New(m))) => events.push(Event::Message(m)),
                        Some(Ok(Received::Group(g))) => events.push(Event::GroupUpdated {
                            group_id: g.id,
                            chat_id: g.chat_id,
                        }),
                        Some(Ok(Received::Read { message_ids })) => {
                            events.extend(message_ids.into_iter().map(|message_id| Event::Read {
                                message_id,
                                by: from.clone(),
                            }))
                        }
                        Some(Ok(Received::Ephemeral(pt))) => {
                            match Content::decode(&pt).map(|c| c.body) {
                                Ok(Some(Body::KeyShare(_) | Body::History(_))) => controls.push(pt),
                                Ok(Some(Body::Typing(t))) => events.push(Event::Typing {
                                    from: from.clone(),
                                    started: t.started,
                                }),
                                Ok(Some(Body::Presence(p))) => events.push(Event::Presence {
                                    from: from.clone(),
                                    online: p.online,
                                }),
                                _ => {}
                            }
                        }
                        // A redelivery (same relay id) or a resent ciphertext (its
                        // message key is used up): already in the store.
                        Some(Ok(Received::Duplicate { .. }))
                        | Some(Err(SessionError::DuplicateMessage { .. })) => {}
                        Some(Err(e)) => events.push(Event::DecryptFailed {
                            from: from.clone(),
                            error: e.to_string(),
                        }),
                        None => {}
                    }
                }
                if !d.ephemeral {
                    acks.push(d.id);
                }
            }
            i = j;
        }
        for e in events {
            self.emit(e);
        }
        for (user, version) in list_versions {
            self.saw_list_version(&user, version);
        }
        if !controls.is_empty() {
            // Keys are stored already (in the receiving transaction); act on them.
            let me = self.clone();
            tokio::spawn(async move { me.on_control(controls).await });
        }
        Ok(acks)
    }

    fn delivery_receipts(&self, receipts: Vec<proto::Receipt>) -> Result<Vec<u64>, ClientError> {
        let now = now_ms() as i64;
        let mut ids = Vec::with_capacity(receipts.len());
        for r in receipts {
            if r.expired {
                if let Some(message_id) = self.with_store(|s| s.expired(r.id))? {
                    self.emit(Event::Failed {
                        message_id: Some(message_id),
                        reason: format!(
                            "expired at the relay before {}.{} connected",
                            r.to_user, r.to_device
                        ),
                    });
                }
                ids.push(r.receipt_id);
                continue;
            }
            if let Some(message_id) = self.with_store(|s| s.delivered(r.id, now))? {
                self.emit(Event::Delivered {
                    message_id,
                    device: ProtocolAddress::new(r.to_user, r.to_device),
                });
            }
            ids.push(r.receipt_id);
        }
        Ok(ids)
    }

    // ------------------------------------------------------------ keys

    /// Upload a signed prekey and a batch of one-time prekeys if the relay is low.
    async fn top_up_prekeys(&self, left: u32) -> Result<(), ClientError> {
        let c = &self.inner.config;
        if left >= c.prekey_low_water {
            return Ok(());
        }
        let n = c.prekey_batch;
        let upload = self.new_prekeys(n)?;
        let r = self.request(ClientKind::UploadKeys(upload)).await?;
        if !r.ok {
            return Err(relay_error(&r));
        }
        self.emit(Event::PreKeysUploaded { count: n });
        Ok(())
    }

    /// `n` new one-time prekeys (stored) and the signed prekey, as an upload.
    fn new_prekeys(&self, n: u32) -> Result<proto::UploadKeys, ClientError> {
        let (spk, records) = self.with_store(|s| {
            s.transaction(|s| {
                let first = match s.setting(NEXT_PREKEY_ID)? {
                    Some(v) if v.len() == 4 => u32::from_be_bytes([v[0], v[1], v[2], v[3]]),
                    _ => 1,
                };
                let mut records = Vec::with_capacity(n as usize);
                for i in 0..n {
                    // Prekey ids are 24-bit in libsignal; wrap, skipping 0.
                    let id = (first.wrapping_add(i) - 1) % 0xFF_FFFF + 1;
                    let r = PreKeyRecord::generate(id, &mut OsRng);
                    s.save_pre_key(&r)?;
                    records.push(r);
                }
                let next = (first.wrapping_add(n) - 1) % 0xFF_FFFF + 1;
                s.set_setting(NEXT_PREKEY_ID, &next.to_be_bytes())?;
                let spk = s
                    .get_signed_pre_key(SIGNED_PREKEY_ID)?
                    .ok_or_else(|| StoreError::Backend("no signed prekey".into()))?;
                Ok::<_, StoreError>((spk, records))
            })
        })?;
        Ok(proto::UploadKeys {
            signed_prekey_id: spk.id,
            signed_prekey: spk.key_pair.public.serialize().to_vec(),
            signed_prekey_signature: spk.signature.to_vec(),
            prekeys: records
                .iter()
                .map(|p| proto::PreKey {
                    id: p.id,
                    public_key: p.key_pair.public.serialize().to_vec(),
                })
                .collect(),
        })
    }

    /// The devices of `user` to encrypt for (checked against the primary's signed
    /// device list), with a session for each. A stale list costs nothing: the relay
    /// answers `DeviceMismatch` and the send is corrected.
    async fn prepare_devices(&self, user: &str) -> Result<Vec<u32>, ClientError> {
        let devices = self.verified_devices(user, false).await?;
        if devices.is_empty() {
            return Err(ClientError::Relay {
                code: "NotFound".into(),
                message: format!("no devices known for {user}"),
            });
        }
        Ok(devices)
    }

    /// A session with every device in `devices` that has none (fetching bundles),
    /// each recorded in the user's device list.
    async fn ensure_sessions(&self, user: &str, devices: &[u32]) -> Result<(), ClientError> {
        for &d in devices {
            self.ensure_session_with(user, d, None).await?;
        }
        Ok(())
    }

    /// Encode `content` with this account's device-list version.
    fn stamp(&self, mut content: Content) -> Vec<u8> {
        content.device_list_version = self.own_list_version();
        content.encode()
    }

    // ------------------------------------------------------------ sending

    /// Send a text message to every device of `peer`. It is committed to the store
    /// (and its outbox) before this returns; if the relay is unreachable it goes out
    /// after the next reconnect. Returns the message id in the store.
    pub async fn send_text(&self, peer: &str, text: &str) -> Result<i64, ClientError> {
        let devices = self.prepare_devices(peer).await?;
        let sent_at = self.timestamp();
        let plaintext = self.stamp(Content::text(text, sent_at));
        self.send_stored(peer, &devices, text.as_bytes(), None, &plaintext, sent_at)
            .await
    }

    /// Store a message (`body`; `media`: a media message's descriptor) with its
    /// encrypted copies for `devices` of `peer`, then push them; the message id. Not
    /// connected, the send stays in the outbox for the next connection.
    async fn send_stored(
        &self,
        peer: &str,
        devices: &[u32],
        body: &[u8],
        media: Option<&[u8]>,
        plaintext: &[u8],
        sent_at: u64,
    ) -> Result<i64, ClientError> {
        let (stored, send) = self.with_store(|s| {
            s.send_to_devices(peer, devices, Some(body), media, plaintext, sent_at as i64)
        })?;
        let message_id = stored
            .map(|m| m.id)
            .ok_or_else(|| ClientError::Store(StoreError::Backend("no message stored".into())))?;
        match self.flush_send(send.id).await {
            Ok(()) | Err(ClientError::NotConnected) => {}
            Err(e) => return Err(e),
        }
        // The account's other devices get a copy naming the real destination.
        match self.copy_to_own_devices(peer, plaintext, sent_at).await {
            Ok(()) | Err(ClientError::NotConnected) => Ok(message_id),
            Err(e) => Err(e),
        }
    }

    /// Mark the chat with `peer` read and send read receipts (end-to-end encrypted)
    /// for the messages that were unread. Returns how many were marked. For a group's
    /// chat (`peer` = [`GroupInfo::chat_peer`]) the chat is marked read on this
    /// account's devices; group members get no read receipts.
    pub async fn mark_read(&self, peer: &str) -> Result<usize, ClientError> {
        let (marked, group) = self.with_store(|s| {
            let chat = s.chat_id(peer)?;
            Ok::<_, StoreError>((s.mark_chat_read(chat)?, s.group_of_chat(chat)?.is_some()))
        })?;
        if marked.is_empty() {
            return Ok(0);
        }
        if group {
            // A group chat (`GroupInfo::chat_peer`): read on this account's devices;
            // no read receipts to the group's members.
            return match self.sync_read_marker(peer).await {
                Ok(()) | Err(ClientError::NotConnected) => Ok(marked.len()),
                Err(e) => Err(e),
            };
        }
        let stamps: Vec<u64> = marked.iter().map(|(_, t)| *t as u64).collect();
        let devices = self.prepare_devices(peer).await?;
        let plaintext = self.stamp(Content::read(stamps));
        let sent_at = self.timestamp() as i64;
        let (_, send) = self
            .with_store(|s| s.send_to_devices(peer, &devices, None, None, &plaintext, sent_at))?;
        match self.flush_send(send.id).await {
            Ok(()) | Err(ClientError::NotConnected) => {}
            Err(e) => return Err(e),
        }
        // The account's other devices mark the chat read too (app-state sync).
        match self.sync_read_marker(peer).await {
            Ok(()) | Err(ClientError::NotConnected) => Ok(marked.len()),
            Err(e) => Err(e),
        }
    }

    /// Tell `peer`'s connected devices that this user started or stopped typing.
    /// Ephemeral: encrypted end to end, never stored, dropped if they are offline.
    pub async fn set_typing(&self, peer: &str, started: bool) -> Result<(), ClientError> {
        self.send_ephemeral(peer, &Content::typing(started)).await
    }

    /// Tell `peer`'s connected devices whether this user is online (an app calls it
    /// when it comes to the foreground or leaves it). Ephemeral like typing.
    pub async fn set_presence(&self, peer: &str, online: bool) -> Result<(), ClientError> {
        self.send_ephemeral(peer, &Content::presence(online)).await
    }

    async fn send_ephemeral(&self, peer: &str, content: &Content) -> Result<(), ClientError> {
        let devices = self.prepare_devices(peer).await?;
        let plaintext = self.stamp(content.clone());
        let envelopes = self.with_store(|s| {
            s.transaction(|s| {
                devices
                    .iter()
                    .map(|&d| {
                        let m =
                            crate::message_encrypt(s, &ProtocolAddress::new(peer, d), &plaintext)?;
                        Ok(proto::OutEnvelope {
                            device_id: d,
                            message_type: u32::from(m.message_type()),
                            payload: m.serialized().to_vec(),
                        })
                    })
                    .collect::<Result<Vec<_>, SessionError>>()
            })
        })?;
        let r = self
            .request(ClientKind::Send(proto::Send {
                to_user: peer.to_string(),
                envelopes,
                ephemeral: true,
                unverified: vec![],
            }))
            .await?;
        if r.ok {
            Ok(())
        } else {
            Err(relay_error(&r))
        }
    }

    /// Which of these phone numbers are registered? Only hash prefixes leave the
    /// device (see PROTOCOL.md for what the relay can still learn); the answer is
    /// matched against the full hashes here.
    pub async fn discover(&self, phones: &[String]) -> Result<Vec<String>, ClientError> {
        let hashes: Vec<([u8; 32], &String)> = phones
            .iter()
            .map(|p| (proto::discovery_hash(p), p))
            .collect();
        let mut prefixes: Vec<Vec<u8>> = hashes
            .iter()
            .map(|(h, _)| h[..proto::DISCOVERY_PREFIX_LEN].to_vec())
            .collect();
        prefixes.sort();
        prefixes.dedup();
        let mut found = Vec::new();
        for chunk in prefixes.chunks(1000) {
            let r = self
                .request(ClientKind::Discover(proto::Discover {
                    prefixes: chunk.to_vec(),
                }))
                .await?;
            if !r.ok {
                return Err(relay_error(&r));
            }
            for e in r.found {
                if let Some((_, p)) = hashes
                    .iter()
                    .find(|(h, p)| h.as_slice() == e.hash.as_slice() && **p == e.user)
                {
                    found.push((*p).clone());
                }
            }
        }
        found.sort();
        found.dedup();
        Ok(found)
    }

    /// Upload an (already encrypted) blob in chunks; returns its id. `progress` is
    /// called with the bytes sent so far.
    pub async fn upload_blob(
        &self,
        data: &[u8],
        mut progress: impl FnMut(u64),
    ) -> Result<Vec<u8>, ClientError> {
        const CHUNK: usize = 128 * 1024;
        let mut id = Vec::new();
        let mut offset = 0usize;
        loop {
            let end = (offset + CHUNK).min(data.len());
            let r = self
                .request(ClientKind::BlobPut(proto::BlobPut {
                    blob_id: id.clone(),
                    offset: offset as u64,
                    data: data[offset..end].to_vec(),
                    done: end == data.len(),
                }))
                .await?;
            if !r.ok {
                return Err(relay_error(&r));
            }
            id = r.blob_id;
            offset = end;
            progress(offset as u64);
            if offset == data.len() {
                return Ok(id);
            }
        }
    }

    /// Download a blob by id.
    pub async fn download_blob(&self, id: &[u8]) -> Result<Vec<u8>, ClientError> {
        let mut out = Vec::new();
        loop {
            let r = self
                .request(ClientKind::BlobGet(proto::BlobGet {
                    blob_id: id.to_vec(),
                    offset: out.len() as u64,
                    max_len: 128 * 1024,
                }))
                .await?;
            if !r.ok {
                return Err(relay_error(&r));
            }
            if r.blob_data.is_empty() && (out.len() as u64) < r.blob_size {
                return Err(ClientError::Protocol(
                    "blob download made no progress".into(),
                ));
            }
            out.extend_from_slice(&r.blob_data);
            if out.len() as u64 >= r.blob_size {
                return Ok(out);
            }
        }
    }

    /// Push every pending send to the relay (after a reconnect).
    async fn flush_outbox(&self) {
        let sends = match self.with_store(|s| s.pending_sends()) {
            Ok(s) => s,
            Err(_) => return,
        };
        for s in sends {
            match self.flush_send(s.id).await {
                Ok(()) => {}
                Err(ClientError::NotConnected) | Err(ClientError::Transport(_)) => return,
                Err(_) => {}
            }
        }
    }

    /// Hand one pending send to the relay, correcting its device set when the relay
    /// says it differs.
    async fn flush_send(&self, send_id: i64) -> Result<(), ClientError> {
        let _one_at_a_time = self.inner.flush.lock().await;
        self.flush_send_locked(send_id, None).await
    }

    /// Hand several sends (to different users) to the relay at once: their requests
    /// are in flight together, so the relay commits them together (group commit), and
    /// the accepted ones are completed in one store transaction. Sends the relay
    /// refused go on one by one (corrected, failed or kept). One result per send, in
    /// no particular order.
    async fn flush_sends(&self, send_ids: &[i64]) -> Vec<Result<(), ClientError>> {
        let _one_at_a_time = self.inner.flush.lock().await;
        let sends: Result<Vec<PendingSend>, StoreError> = self.with_store(|s| {
            send_ids
                .iter()
                .filter_map(|&id| s.pending_send(id).transpose())
                .collect()
        });
        let sends = match sends {
            Ok(s) => s,
            Err(e) => return vec![Err(e.into())],
        };
        let answers = futures_util::future::join_all(
            sends
                .iter()
                .map(|send| self.request(self.send_request(send))),
        )
        .await;
        let mut results = Vec::with_capacity(sends.len());
        let mut accepted = Vec::new();
        let mut refused = Vec::new();
        for (send, answer) in sends.into_iter().zip(answers) {
            match answer {
                Ok(r) if r.ok => accepted.push((send.id, accepted_devices(&send, &r))),
                Ok(r) => refused.push((send, r)),
                Err(e) => results.push(Err(e)),
            }
        }
        match self.with_store(|s| s.complete_sends(&accepted)) {
            Ok(done) => {
                for (message_id, delivered) in done {
                    self.completed(message_id, delivered);
                    results.push(Ok(()));
                }
            }
            Err(e) => results.push(Err(e.into())),
        }
        for (send, r) in refused {
            let id = send.id;
            results.push(self.flush_send_locked(id, Some((send, r))).await);
        }
        results
    }

    /// The `Send` request for a pending send.
    fn send_request(&self, send: &PendingSend) -> ClientKind {
        ClientKind::Send(proto::Send {
            to_user: send.recipient.clone(),
            envelopes: envelopes(send),
            ephemeral: false,
            unverified: self.unverified_devices(&send.recipient),
        })
    }

    /// Events for a completed send.
    fn completed(&self, message_id: Option<i64>, delivered: Vec<ProtocolAddress>) {
        if let Some(message_id) = message_id {
            self.emit(Event::Sent { message_id });
            for device in delivered {
                self.emit(Event::Delivered { message_id, device });
            }
        }
    }

    /// Push one send (`first`: the send and the relay's answer to a request already
    /// made), correcting it on `DeviceMismatch`.
    async fn flush_send_locked(
        &self,
        send_id: i64,
        mut first: Option<(PendingSend, proto::Response)>,
    ) -> Result<(), ClientError> {
        for _attempt in 0..4 {
            let (send, r) = match first.take() {
                Some(answered) => answered,
                None => {
                    let Some(send) = self.with_store(|s| s.pending_send(send_id))? else {
                        return Ok(()); // done meanwhile
                    };
                    let r = self.request(self.send_request(&send)).await?;
                    (send, r)
                }
            };
            if r.ok {
                let accepted = accepted_devices(&send, &r);
                let (message_id, delivered) =
                    self.with_store(|s| s.complete_send(send.id, &accepted))?;
                self.completed(message_id, delivered);
                return Ok(());
            }
            match r.error_code.as_str() {
                "DeviceMismatch" => {
                    // Read the list again and check it: a missing device the primary
                    // did not sign gets nothing (it goes in `unverified`).
                    let verified = self.verified_devices(&send.recipient, true).await?;
                    let missing: Vec<u32> = r
                        .missing_devices
                        .iter()
                        .copied()
                        .filter(|d| verified.contains(d))
                        .collect();
                    self.with_store(|s| s.correct_send(send.id, &missing, &r.extra_devices))?;
                }
                "NotFound" | "TooLarge" | "BadRequest" => {
                    self.with_store(|s| s.fail_send(send.id))?;
                    self.emit(Event::Failed {
                        message_id: send.message_id,
                        reason: format!("{}: {}", r.error_code, r.error),
                    });
                    return Err(relay_error(&r));
                }
                // QueueFull, Internal, RateLimited: kept; retried after a reconnect.
                _ => return Err(relay_error(&r)),
            }
        }
        Err(ClientError::Relay {
            code: "DeviceMismatch".into(),
            message: "the device list kept changing".into(),
        })
    }
}

/// The end of one connection (see `Client::connection`), on every path out of it.
struct ConnectionEnd {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    link: Arc<Link>,
    client: Client,
}

impl Drop for ConnectionEnd {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        // Fail the requests still waiting.
        self.link
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        let mut l = self
            .client
            .inner
            .link
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if l.as_ref().is_some_and(|x| Arc::ptr_eq(x, &self.link)) {
            *l = None;
        }
    }
}

/// Each device of a send paired with the relay's message id for it.
fn accepted_devices(send: &PendingSend, r: &proto::Response) -> Vec<(u32, u64)> {
    send.entries
        .iter()
        .map(|e| e.recipient.device_id)
        .zip(r.message_ids.iter().copied())
        .collect()
}

fn envelopes(send: &PendingSend) -> Vec<proto::OutEnvelope> {
    send.entries
        .iter()
        .map(|e| proto::OutEnvelope {
            device_id: e.recipient.device_id,
            message_type: u32::from(e.message_type),
            payload: e.payload.clone(),
        })
        .collect()
}

/// What a decrypted plaintext means (runs inside the receiving transaction), and the
/// sender's device-list version it names. Copies of sent messages, keys and history
/// are taken from this account's own devices only (keys and history from its primary).
fn decode_content(
    pt: Vec<u8>,
    ephemeral: bool,
    from: &ProtocolAddress,
    me: &ProtocolAddress,
) -> Result<(Incoming, u64), SessionError> {
    let bad = |m: &str| SessionError::InvalidMessage(m.to_string());
    let c = Content::decode(&pt).map_err(|e| SessionError::InvalidMessage(e.to_string()))?;
    let version = c.device_list_version;
    let own = from.name == me.name;
    let incoming = match (c.body, ephemeral) {
        (Some(Body::Typing(_) | Body::Presence(_)), _) => Incoming::Ephemeral(pt),
        (_, true) => return Err(bad("only typing and presence travel as ephemeral messages")),
        (Some(Body::Sent(t)), false) if own => {
            let inner = Content::decode(&t.content)
                .map_err(|e| SessionError::InvalidMessage(e.to_string()))?;
            match message_of(inner.body)? {
                Incoming::Message {
                    body,
                    sent_at,
                    media,
                } if !t.destination.is_empty() => Incoming::Sent {
                    peer: t.destination,
                    body,
                    sent_at,
                    media,
                },
                _ => return Err(bad("a sent transcript holds a message")),
            }
        }
        (Some(Body::KeyShare(k)), false) if own && from.device_id == 1 => Incoming::Control {
            settings: sync::key_share_settings(&k)?,
            plaintext: pt,
        },
        (Some(Body::History(h)), false) if own && from.device_id == 1 => Incoming::Control {
            settings: vec![(sync::history_setting(h.chunk_order), pt.clone())],
            plaintext: pt,
        },
        (Some(Body::Sent(_) | Body::KeyShare(_) | Body::History(_)), false) => {
            return Err(bad("only this account's devices send that"))
        }
        (Some(Body::GroupUpdate(u)), false) => Incoming::Group(u),
        (Some(Body::SenderKey(_)), false) => {
            return Err(bad("a sender key travels inside a group envelope"))
        }
        (Some(Body::Receipt(r)), false) if r.kind == RECEIPT_READ => Incoming::Read {
            sent_at: r.sent_at.into_iter().map(|t| t as i64).collect(),
        },
        (body, false) => message_of(body)?,
    };
    Ok((incoming, version))
}

/// A text or media message to store.
fn message_of(body: Option<Body>) -> Result<Incoming, SessionError> {
    match body {
        Some(Body::Text(t)) => Ok(Incoming::Message {
            body: t.body.into_bytes(),
            sent_at: t.sent_at as i64,
            media: None,
        }),
        Some(Body::Media(mut m)) => {
            let sent_at = m.sent_at as i64;
            m.sent_at = 0;
            let checked = MediaMessage::from_content(m.clone())
                .map_err(|e| SessionError::InvalidMessage(format!("media message: {e}")))?;
            Ok(Incoming::Message {
                body: checked.caption.into_bytes(),
                sent_at,
                media: Some(Content::media(m).encode()),
            })
        }
        _ => Err(SessionError::InvalidMessage("unknown content".into())),
    }
}

fn bundle_from_wire(b: &proto::Bundle) -> Result<PreKeyBundle, ClientError> {
    let bad = |what: &str| ClientError::Protocol(format!("bundle: bad {what}"));
    Ok(PreKeyBundle {
        registration_id: b.registration_id,
        device_id: b.device_id,
        prekey: match &b.prekey {
            Some(p) => Some((
                p.id,
                PublicKey::from_bytes(&p.public_key).map_err(|_| bad("prekey"))?,
            )),
            None => None,
        },
        signed_prekey_id: b.signed_prekey_id,
        signed_prekey: PublicKey::from_bytes(&b.signed_prekey).map_err(|_| bad("signed prekey"))?,
        signed_prekey_signature: b.signed_prekey_signature.clone(),
        identity_key: IdentityKey::from_bytes(&b.identity_key).map_err(|_| bad("identity key"))?,
    })
}
