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
//! The same code runs natively and in the browser (wasm32): only `rt` (tasks,
//! timers, clock) and `transport` (the WebSocket) have a file per platform. Where
//! each concept lives: `registration`, `connection` (authentication, the connection
//! task, the read loop), `receive`, `send` (and the outbox), `prekeys`, `blobs`,
//! `devices` (linking, device lists), `sync` (app state, history), `media`, `groups`.
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

mod blobs;
mod config;
mod connection;
mod devices;
mod error;
mod event;
mod groups;
mod media;
mod prekeys;
mod receive;
mod registration;
mod rt;
mod send;
mod sync;
mod transport;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rand_core::OsRng;
use tokio::sync::{mpsc, watch};

pub use crate::sqlite::GroupInfo;
pub use config::{Backoff, ClientConfig};
pub use devices::{CompanionLinking, LinkCode, LinkRequest};
pub use error::ClientError;
pub use event::Event;
pub use media::{Attachment, MediaMessage, MAX_THUMBNAIL};
pub use sync::{ChatState, HistoryConfig};
pub use transport::{cert_fingerprint, TlsTrust};

use connection::{encode, next_frame, relay_error, Link};
use prekeys::bundle_from_wire;
use rt::now_ms;

use crate::address::ProtocolAddress;
use crate::error::SessionError;
use crate::keys::IdentityKey;
use crate::sqlite::SqliteStore;
use crate::store::IdentityKeyStore;

use crate::sqlite::ACCOUNT_USER;
const ACCOUNT_DEVICE: &str = "client.account.device";
const NEXT_PREKEY_ID: &str = "client.next_prekey_id";
const SIGNED_PREKEY_ID: u32 = 1;
/// Frames processed per store transaction when draining a queue.
const BATCH: usize = 256;

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
}
