//! `pawl-relay`: Pawl's store-and-forward relay. A message waits in the recipient
//! device's mailbox until that device connects and acknowledges it; then it is deleted
//! and the sender gets a delivery receipt. The relay holds public keys and ciphertexts
//! only: it never has a key that decrypts a message.
//!
//! Status: WebSocket transport, challenge authentication by identity key, the prekey
//! directory (one-time prekeys handed out once), per-device mailboxes with
//! acknowledgements and receipts, the device-set check on sends, size and queue
//! limits. Storage behind [`RelayStore`]: [`SqliteRelayStore`] (embedded, one relay
//! process) or [`PgRelayStore`] (PostgreSQL, shared by several relay processes, which
//! learn about each other's writes through LISTEN/NOTIFY:
//! [`RelayStore::subscribe_mailboxes`]). Still to come (issue 4): TLS with pinning,
//! registration by phone number, blobs, rate limits, contact discovery, presence.

/// The relay frames, defined in `pawl_core::wire::relay`.
pub use pawl_core::wire::relay as proto;
pub mod pg;
#[cfg(feature = "pg-harness")]
pub mod pg_harness;
pub mod server;
pub mod store;

pub use pg::PgRelayStore;
pub use server::{Limits, Relay};
pub use store::{MailboxEvent, MailboxListener, RelayStore, SqliteRelayStore};

/// Serve `relay` on an already bound listener until the task is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    relay: std::sync::Arc<Relay>,
) -> std::io::Result<()> {
    axum::serve(listener, relay.router()).await
}
