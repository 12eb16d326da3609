//! How a client is opened: [`ClientConfig`] and the reconnection [`Backoff`].

use std::path::PathBuf;
use std::time::Duration;

use super::*;

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
