//! The client's error type.

use crate::error::{SessionError, StoreError};

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
