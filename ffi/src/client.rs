//! `PawlClient`: the relay client for apps, over `pawl_core::client::Client`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pawl_core::client::{Client, ClientConfig, Event, TlsTrust};
use pawl_core::fingerprint::Fingerprint;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

use crate::error::PawlError;
use crate::types::{
    Address, Attachment, ChatMessage, ClientEvent, MediaKind, MediaMessage, SafetyNumber,
};
use crate::{guard, run, runtime};

/// Receives the client's events. Implemented by the app (a Swift/Kotlin/Python object).
///
/// Called on a thread of Pawl's own runtime, one event at a time and in order; hand the
/// event over to the app's main thread / event loop and return quickly. An exception
/// thrown by the implementation is caught and the event dropped.
#[uniffi::export(callback_interface)]
pub trait EventListener: Send + Sync {
    /// One event.
    fn on_event(&self, event: ClientEvent);
}

/// Set by [`detach_foreign_callbacks`]: from then on nothing calls into foreign code.
static DETACHED: AtomicBool = AtomicBool::new(false);
/// Calls into foreign code under way (listener calls and listener releases).
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Run `f` (which calls into foreign code) unless callbacks are detached; `None` if
/// they are. Pairs with [`detach_foreign_callbacks`]: either this sees the flag, or
/// the detach sees the call in flight and waits for it.
fn foreign_call<T>(f: impl FnOnce() -> T) -> Option<T> {
    IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
    let r = if DETACHED.load(Ordering::SeqCst) {
        None
    } else {
        Some(f())
    };
    IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    r
}

/// Stop calling into foreign code for good (listeners are neither called nor
/// released any more), after waiting up to two seconds for calls under way. For the end
/// of the process: an interpreter that is shutting down cannot take calls from other
/// threads (CPython ends such a thread with `pthread_exit`, which aborts the process
/// when it unwinds into Rust). The Python package registers this with `atexit`.
#[uniffi::export]
pub fn detach_foreign_callbacks() {
    DETACHED.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(2);
    while IN_FLIGHT.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The app's listener; releasing it calls into foreign code, so that is skipped (the
/// object leaked) once callbacks are detached.
struct Foreign(Option<Box<dyn EventListener>>);

impl Drop for Foreign {
    fn drop(&mut self) {
        if let Some(l) = self.0.take() {
            let mut l = Some(l);
            if foreign_call(|| drop(l.take())).is_none() {
                std::mem::forget(l);
            }
        }
    }
}

type Listener = Arc<Mutex<Option<Arc<Foreign>>>>;

/// One device's client: its encrypted database and its connection to a relay.
#[derive(uniffi::Object)]
pub struct PawlClient {
    pub(crate) client: Client,
    /// The core's event stream until `set_listener` starts draining it.
    events: Mutex<Option<UnboundedReceiver<Event>>>,
    listener: Listener,
    drain: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for PawlClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PawlClient")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

fn key32(bytes: &[u8], what: &str) -> Result<[u8; 32], PawlError> {
    <[u8; 32]>::try_from(bytes).map_err(|_| {
        PawlError::invalid_argument(format!("{what} must be 32 bytes, got {}", bytes.len()))
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[uniffi::export]
impl PawlClient {
    /// Open (or create) the device's database at `db_path`, encrypted with `db_key`
    /// (32 bytes, from the Keychain / Keystore), for the relay at `relay_url`
    /// (`wss://host:port/v1/ws`). `pinned_cert_sha256` is the SHA-256 of the relay
    /// certificate's DER encoding (required for `wss://`). Nothing touches the network
    /// until a registration call or `start`.
    #[uniffi::constructor]
    pub fn open(
        db_path: String,
        db_key: Vec<u8>,
        relay_url: String,
        pinned_cert_sha256: Option<Vec<u8>>,
    ) -> Result<Arc<Self>, PawlError> {
        guard(|| {
            let key = key32(&db_key, "the database key")?;
            let mut config = ClientConfig::new(db_path, key, &relay_url);
            if let Some(pin) = pinned_cert_sha256 {
                config.tls = Some(TlsTrust::PinnedCertSha256(key32(
                    &pin,
                    "the certificate pin (SHA-256)",
                )?));
            }
            let (client, events) = Client::open(config)?;
            Ok(Arc::new(PawlClient {
                client,
                events: Mutex::new(Some(events)),
                listener: Arc::new(Mutex::new(None)),
                drain: Mutex::new(None),
            }))
        })
    }

    /// Ask the relay to send a verification code to `phone` (E.164).
    pub async fn request_code(&self, phone: String) -> Result<(), PawlError> {
        let c = self.client.clone();
        run(async move { Ok(c.request_code(&phone).await?) }).await
    }

    /// Register this device as the primary device of `phone` with the code received.
    pub async fn verify_code(&self, phone: String, code: String) -> Result<(), PawlError> {
        let c = self.client.clone();
        run(async move { Ok(c.verify_code(&phone, &code).await?) }).await
    }

    /// Start the connection task (idempotent): connect, authenticate, top up prekeys,
    /// resend the outbox, receive; it reconnects with backoff until `shutdown`.
    pub fn start(&self) -> Result<(), PawlError> {
        guard(|| {
            let rt = runtime()?;
            let _entered = rt.enter();
            self.client.start();
            Ok(())
        })
    }

    /// Stop the connection task. Received messages are committed; unsent ones stay in
    /// the outbox for the next `start`.
    pub async fn shutdown(&self) -> Result<(), PawlError> {
        let c = self.client.clone();
        run(async move {
            c.shutdown().await;
            Ok(())
        })
        .await
    }

    /// Whether an authenticated connection to the relay is up.
    pub fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    /// This device's address (after `verify_code`).
    pub fn address(&self) -> Result<Address, PawlError> {
        guard(|| Ok((&self.client.address()?).into()))
    }

    /// This device's public identity key (33 bytes).
    pub fn identity_key(&self) -> Result<Vec<u8>, PawlError> {
        guard(|| Ok(self.client.identity_key()?.serialize().to_vec()))
    }

    /// Send a text to every device of `peer`; returns the message id. The message is
    /// stored (and queued) before this returns; `Sent`, `Delivered` and `Read` events
    /// follow.
    pub async fn send_text(&self, peer: String, text: String) -> Result<i64, PawlError> {
        let c = self.client.clone();
        run(async move { Ok(c.send_text(&peer, &text).await?) }).await
    }

    /// Encrypt the file at `path` as an attachment of `kind` and upload it to the
    /// relay's blob store (in chunks: constant memory; resumes after a dropped
    /// connection). Then send it with `send_media`.
    pub async fn upload_attachment(
        &self,
        kind: MediaKind,
        path: String,
    ) -> Result<Attachment, PawlError> {
        let c = self.client.clone();
        run(async move {
            let file = std::fs::File::open(&path)
                .map_err(|e| PawlError::invalid_argument(format!("cannot open {path}: {e}")))?;
            let a = c
                .upload_attachment(kind.into(), std::io::BufReader::new(file), |_| {})
                .await?;
            Attachment::from_core(a).ok_or_else(|| PawlError::internal("unexpected media kind"))
        })
        .await
    }

    /// Send a media message (its attachment uploaded first) to every device of
    /// `peer`; returns the message id, like `send_text`.
    pub async fn send_media(&self, peer: String, media: MediaMessage) -> Result<i64, PawlError> {
        let c = self.client.clone();
        run(async move {
            let m = media.to_core()?;
            Ok(c.send_media(&peer, &m).await?)
        })
        .await
    }

    /// Download an attachment, check it (blob hash, MAC, file hash and length) and
    /// decrypt it into the file at `path`; nothing is at `path` unless every check
    /// passed (a tampered or wrong attachment fails with `Protocol`).
    pub async fn download_attachment(
        &self,
        attachment: Attachment,
        path: String,
    ) -> Result<(), PawlError> {
        let c = self.client.clone();
        run(async move {
            let a = attachment.to_core()?;
            c.download_attachment_to_file(&a, std::path::Path::new(&path), |_| {})
                .await?;
            Ok(())
        })
        .await
    }

    /// Mark the chat with `peer` read and send read receipts; returns how many
    /// messages were marked.
    pub async fn mark_read(&self, peer: String) -> Result<u32, PawlError> {
        let c = self.client.clone();
        run(async move {
            let n = c.mark_read(&peer).await?;
            Ok(u32::try_from(n).unwrap_or(u32::MAX))
        })
        .await
    }

    /// Tell `peer` this user started or stopped typing (ephemeral).
    pub async fn set_typing(&self, peer: String, started: bool) -> Result<(), PawlError> {
        let c = self.client.clone();
        run(async move { Ok(c.set_typing(&peer, started).await?) }).await
    }

    /// Tell `peer` whether this user is online (ephemeral).
    pub async fn set_presence(&self, peer: String, online: bool) -> Result<(), PawlError> {
        let c = self.client.clone();
        run(async move { Ok(c.set_presence(&peer, online).await?) }).await
    }

    /// Which of these phone numbers are registered (only hash prefixes are sent).
    pub async fn discover(&self, phones: Vec<String>) -> Result<Vec<String>, PawlError> {
        let c = self.client.clone();
        run(async move { Ok(c.discover(&phones).await?) }).await
    }

    /// The latest `limit` messages of the chat with `peer`, newest first.
    pub fn messages(&self, peer: String, limit: u32) -> Result<Vec<ChatMessage>, PawlError> {
        guard(|| {
            let list = self.client.with_store(|s| {
                let chat = s.chat_id(&peer)?;
                s.latest_messages(chat, limit)
            })?;
            Ok(list.into_iter().map(Into::into).collect())
        })
    }

    /// Full-text search over all messages (SQLite FTS5 syntax), newest first.
    pub fn search(&self, query: String, limit: u32) -> Result<Vec<ChatMessage>, PawlError> {
        guard(|| {
            let list = self.client.with_store(|s| s.search(&query, limit))?;
            Ok(list.into_iter().map(Into::into).collect())
        })
    }

    /// One message by id, if it exists.
    pub fn message(&self, id: i64) -> Result<Option<ChatMessage>, PawlError> {
        guard(|| Ok(self.client.with_store(|s| s.message(id))?.map(Into::into)))
    }

    /// The delivery state of a message (`InvalidArgument` for an unknown id).
    pub fn message_status(&self, id: i64) -> Result<crate::types::MessageStatus, PawlError> {
        guard(|| match self.client.with_store(|s| s.message(id))? {
            Some(m) => Ok(m.status.into()),
            None => Err(PawlError::invalid_argument(format!(
                "no message with id {id}"
            ))),
        })
    }

    /// The safety number with `peer` (after a session exists) and its QR code.
    pub fn safety_number(&self, peer: String) -> Result<SafetyNumber, PawlError> {
        guard(|| {
            let f = self.client.safety_number(&peer)?;
            let qr = f.qr_code()?;
            Ok(SafetyNumber {
                qr_png: qr.to_png(8)?,
                qr_svg: qr.to_svg(),
                digits: f.displayable,
                scannable: f.scannable,
            })
        })
    }

    /// Compare the code scanned from `peer`'s screen with ours: true when both sides
    /// see the same safety number. A payload that is not a safety-number code fails
    /// with `InvalidArgument`.
    pub fn compare_scanned(&self, peer: String, scanned: Vec<u8>) -> Result<bool, PawlError> {
        guard(|| {
            let f: Fingerprint = self.client.safety_number(&peer)?;
            Ok(f.compare_scanned(&scanned)?)
        })
    }

    /// Receive events with `listener` (replacing any earlier one). Events that arrived
    /// before the first listener was set are kept and delivered to it.
    pub fn set_listener(&self, listener: Box<dyn EventListener>) -> Result<(), PawlError> {
        guard(|| {
            *lock(&self.listener) = Some(Arc::new(Foreign(Some(listener))));
            let Some(mut events) = lock(&self.events).take() else {
                return Ok(()); // already draining
            };
            let slot = self.listener.clone();
            let task = runtime()?.spawn(async move {
                while let Some(e) = events.recv().await {
                    let Some(event) = ClientEvent::from_core(e) else {
                        continue;
                    };
                    let current = lock(&slot).clone();
                    if let Some(Foreign(Some(l))) = current.as_deref() {
                        // A foreign exception surfaces as a panic in uniffi's callback
                        // glue; it must not end the stream.
                        foreign_call(|| {
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                l.on_event(event)
                            }))
                        });
                    }
                }
            });
            *lock(&self.drain) = Some(task);
            Ok(())
        })
    }

    /// Stop calling the listener (events are dropped until a new one is set).
    pub fn clear_listener(&self) {
        *lock(&self.listener) = None;
    }
}

impl Drop for PawlClient {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.drain).take() {
            task.abort();
        }
        // Stop the connection task too: it holds its own reference to the client.
        if let Ok(rt) = runtime() {
            let c = self.client.clone();
            rt.spawn(async move { c.shutdown().await });
        }
    }
}
