//! `pawl-relay`: Pawl's store-and-forward relay. A message waits in the recipient
//! device's mailbox until that device connects and acknowledges it; then it is deleted
//! and the sender gets a delivery receipt. The relay holds public keys and ciphertexts
//! only: it never has a key that decrypts a message.
//!
//! Storage is behind [`RelayStore`]: [`SqliteRelayStore`] (embedded, one relay
//! process) or [`PgRelayStore`] (PostgreSQL, shared by several relay processes, which
//! learn about each other's writes through LISTEN/NOTIFY:
//! [`RelayStore::subscribe_mailboxes`]).
//!
//! [`EmbeddedRelay`] runs one inside an app or a test (loopback, temporary SQLite
//! database, self-signed certificate that clients pin).

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The relay frames, defined in `pawl_core::wire::relay`.
pub use pawl_core::wire::relay as proto;
pub mod metrics;
pub mod pg;
#[cfg(feature = "pg-harness")]
pub mod pg_harness;
pub mod registration;
pub mod server;
pub mod store;
pub mod tls;

pub use pg::PgRelayStore;
pub use registration::{CodeSender, DevCodeSender, Registrar, RegistrationLimits};
pub use server::{Limits, Relay};
pub use store::{
    identity_record, BatchOutcome, MailboxEvent, MailboxListener, NewMessage, PutRule, RelayStore,
    SqliteRelayStore, WriteBatch, DEVICE_LIST_RECORD,
};

/// Serve `relay` over plain `ws://` on a bound listener until [`Relay::shutdown`].
pub async fn serve(listener: tokio::net::TcpListener, relay: Arc<Relay>) -> std::io::Result<()> {
    relay.start_background();
    let stop = relay.stopped();
    axum::serve(
        tls::NoDelay(listener),
        relay
            .router()
            .into_make_service_with_connect_info::<server::PeerAddr>(),
    )
    .with_graceful_shutdown(stop)
    .await
}

/// Serve `GET /metrics` (Prometheus text format) on its own listener, for operators
/// (keep it off the public address).
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    relay: Arc<Relay>,
) -> std::io::Result<()> {
    let stop = relay.stopped();
    axum::serve(listener, relay.metrics_router())
        .with_graceful_shutdown(stop)
        .await
}

/// Serve `relay` over `wss://` until [`Relay::shutdown`].
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    relay: Arc<Relay>,
    identity: &tls::Identity,
) -> std::io::Result<()> {
    let config = identity
        .server_config()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    relay.start_background();
    let stop = relay.stopped();
    axum::serve(
        tls::TlsListener::new(listener, config)?,
        relay
            .router()
            .into_make_service_with_connect_info::<server::PeerAddr>(),
    )
    .with_graceful_shutdown(stop)
    .await
}

/// A relay running in this process on loopback, over TLS with a fresh self-signed
/// certificate, on a SQLite database in `dir`, with the development code sender
/// writing codes to `dir/codes`.
pub struct EmbeddedRelay {
    /// `wss://127.0.0.1:PORT/v1/ws`.
    pub url: String,
    /// SHA-256 of the certificate: what clients pin.
    pub cert_sha256: [u8; 32],
    /// Where verification codes are written.
    pub code_dir: PathBuf,
    /// The relay (for metrics and shutdown).
    pub relay: Arc<Relay>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl EmbeddedRelay {
    /// Start it.
    pub async fn start(dir: &Path, limits: Limits) -> Result<Self, String> {
        let code_dir = dir.join("codes");
        std::fs::create_dir_all(&code_dir).map_err(|e| e.to_string())?;
        let store = SqliteRelayStore::open(&dir.join("relay.db")).map_err(|e| e.to_string())?;
        let reader = SqliteRelayStore::open(&dir.join("relay.db")).map_err(|e| e.to_string())?;
        let registrar = Registrar::new(
            Box::new(DevCodeSender {
                dir: Some(code_dir.clone()),
            }),
            RegistrationLimits::default(),
        );
        let relay = Relay::with_reader(Box::new(store), Box::new(reader), limits, registrar);
        let identity = tls::Identity::self_signed(&["127.0.0.1", "localhost"])?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let cert_sha256 = identity.leaf_sha256();
        let r = relay.clone();
        let task = tokio::spawn(async move { serve_tls(listener, r, &identity).await });
        Ok(EmbeddedRelay {
            url: format!("wss://{addr}/v1/ws"),
            cert_sha256,
            code_dir,
            relay,
            task,
        })
    }

    /// The last code the development sender wrote for `phone`.
    pub fn code_for(&self, phone: &str) -> Option<String> {
        std::fs::read_to_string(self.code_dir.join(format!("{phone}.code"))).ok()
    }

    /// Close every connection and stop serving.
    pub async fn stop(self) {
        self.relay.shutdown();
        let _ = self.task.await;
    }
}
