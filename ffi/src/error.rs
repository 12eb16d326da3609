//! The one error type every export returns, with stable numeric codes.

use pawl_core::client::ClientError;
use pawl_core::error::{FingerprintError, SessionError, StoreError};

/// Stable numeric error codes. A code is never renumbered or reused: apps may switch on
/// them, log them and send them to their servers. New kinds get new numbers.
pub mod codes {
    /// An argument is invalid: a database key that is not 32 bytes, a certificate pin
    /// that is not 32 bytes, a malformed scanned QR payload, an unknown message id.
    pub const INVALID_ARGUMENT: u32 = 1;
    /// The database key is wrong, or the file is not a Pawl database. Nothing changed.
    pub const WRONG_DATABASE_KEY: u32 = 2;
    /// This device is not registered yet (`request_code` then `verify_code`).
    pub const NOT_REGISTERED: u32 = 3;
    /// No connection to the relay right now (`start` connects; it reconnects by itself).
    pub const NOT_CONNECTED: u32 = 4;
    /// The relay refused; its own code (`BadCode`, `RateLimited`, ...) is in the error.
    pub const RELAY: u32 = 5;
    /// The TLS handshake failed (for instance: not the pinned certificate).
    pub const TLS: u32 = 6;
    /// The configuration is unusable (relay URL, TLS settings).
    pub const CONFIG: u32 = 7;
    /// The network failed or timed out.
    pub const TRANSPORT: u32 = 8;
    /// A protocol error: the relay or a peer sent something invalid, a bad prekey bundle.
    pub const PROTOCOL: u32 = 9;
    /// The peer's identity key changed since it was first trusted.
    pub const UNTRUSTED_IDENTITY: u32 = 10;
    /// No session with this peer yet (for instance: safety number before any message).
    pub const NO_SESSION: u32 = 11;
    /// The local store failed (I/O, corrupt record, schema from a newer version).
    pub const STORE: u32 = 12;
    /// The database is locked by another process for longer than the busy timeout.
    pub const DATABASE_BUSY: u32 = 13;
    /// The message was already decrypted (a replay or a redelivery): drop it.
    pub const DUPLICATE_MESSAGE: u32 = 14;
    /// A bug: a panic inside Pawl (caught at the boundary) or an unexpected state.
    pub const INTERNAL: u32 = 99;
}

/// Pawl's error at the FFI boundary. Every variant carries its stable numeric `code`
/// (see [`codes`]) and a human-readable `message` (English, for logs; not for parsing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[non_exhaustive]
pub enum PawlError {
    /// See [`codes::INVALID_ARGUMENT`].
    #[error("invalid argument ({code}): {message}")]
    InvalidArgument {
        /// Always [`codes::INVALID_ARGUMENT`].
        code: u32,
        /// Detail.
        message: String,
    },
    /// See [`codes::WRONG_DATABASE_KEY`].
    #[error("wrong database key ({code}): {message}")]
    WrongDatabaseKey {
        /// Always [`codes::WRONG_DATABASE_KEY`].
        code: u32,
        /// Detail.
        message: String,
    },
    /// See [`codes::NOT_REGISTERED`].
    #[error("not registered ({code}): {message}")]
    NotRegistered {
        /// Always [`codes::NOT_REGISTERED`].
        code: u32,
        /// Detail.
        message: String,
    },
    /// See [`codes::NOT_CONNECTED`].
    #[error("not connected ({code}): {message}")]
    NotConnected {
        /// Always [`codes::NOT_CONNECTED`].
        code: u32,
        /// Detail.
        message: String,
    },
    /// See [`codes::RELAY`].
    #[error("relay refused ({code}, {relay_code}): {message}")]
    Relay {
        /// Always [`codes::RELAY`].
        code: u32,
        /// The relay's own stable code: `BadCode`, `RateLimited`, `NotFound`, ...
        /// (see the relay's PROTOCOL.md).
        relay_code: String,
        /// Detail.
        message: String,
    },
    /// See [`codes::TLS`].
    #[error("TLS ({code}): {message}")]
    Tls {
        /// Always [`codes::TLS`].
        code: u32,
        /// Detail.
        message: String,
    },
    /// See [`codes::CONFIG`].
    #[error("configuration ({code}): {message}")]
    Config {
        /// Always [`codes::CONFIG`].
        code: u32,
        /// Detail.
        message: String,
    },
    /// See [`codes::TRANSPORT`].
    #[error("transport ({code}): {message}")]
    Transport {
        /// Always [`codes::TRANSPORT`].
        code: u32,
        /// Detail.
        message: String,
    },
    /// See [`codes::PROTOCOL`].
    #[error("protocol ({code}): {message}")]
    Protocol {
        /// Always [`codes::PROTOCOL`].
        code: u32,
        /// Detail.
        message: String,
    },
    /// See [`codes::UNTRUSTED_IDENTITY`].
    #[error("untrusted identity ({code}): {message}")]
    UntrustedIdentity {
        /// Always [`codes::UNTRUSTED_IDENTITY`].
        code: u32,
        /// Detail.
        message: String,
    },
    /// See [`codes::NO_SESSION`].
    #[error("no session ({code}): {message}")]
    NoSession {
        /// Always [`codes::NO_SESSION`].
        code: u32,
        /// Detail.
        message: String,
    },
    /// See [`codes::STORE`].
    #[error("store ({code}): {message}")]
    Store {
        /// Always [`codes::STORE`].
        code: u32,
        /// Detail.
        message: String,
    },
    /// See [`codes::DATABASE_BUSY`].
    #[error("database busy ({code}): {message}")]
    DatabaseBusy {
        /// Always [`codes::DATABASE_BUSY`].
        code: u32,
        /// Detail.
        message: String,
    },
    /// See [`codes::DUPLICATE_MESSAGE`].
    #[error("duplicate message ({code}): {message}")]
    DuplicateMessage {
        /// Always [`codes::DUPLICATE_MESSAGE`].
        code: u32,
        /// Detail.
        message: String,
    },
    /// See [`codes::INTERNAL`].
    #[error("internal error ({code}): {message}")]
    Internal {
        /// Always [`codes::INTERNAL`].
        code: u32,
        /// Detail.
        message: String,
    },
}

impl PawlError {
    /// The stable numeric code.
    pub fn code(&self) -> u32 {
        match self {
            PawlError::InvalidArgument { code, .. }
            | PawlError::WrongDatabaseKey { code, .. }
            | PawlError::NotRegistered { code, .. }
            | PawlError::NotConnected { code, .. }
            | PawlError::Relay { code, .. }
            | PawlError::Tls { code, .. }
            | PawlError::Config { code, .. }
            | PawlError::Transport { code, .. }
            | PawlError::Protocol { code, .. }
            | PawlError::UntrustedIdentity { code, .. }
            | PawlError::NoSession { code, .. }
            | PawlError::Store { code, .. }
            | PawlError::DatabaseBusy { code, .. }
            | PawlError::DuplicateMessage { code, .. }
            | PawlError::Internal { code, .. } => *code,
        }
    }

    pub(crate) fn invalid_argument(message: impl Into<String>) -> Self {
        PawlError::InvalidArgument {
            code: codes::INVALID_ARGUMENT,
            message: message.into(),
        }
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        PawlError::Internal {
            code: codes::INTERNAL,
            message: message.into(),
        }
    }
}

impl From<StoreError> for PawlError {
    fn from(e: StoreError) -> Self {
        let message = e.to_string();
        match e {
            StoreError::WrongKey => PawlError::WrongDatabaseKey {
                code: codes::WRONG_DATABASE_KEY,
                message,
            },
            StoreError::Busy => PawlError::DatabaseBusy {
                code: codes::DATABASE_BUSY,
                message,
            },
            _ => PawlError::Store {
                code: codes::STORE,
                message,
            },
        }
    }
}

impl From<SessionError> for PawlError {
    fn from(e: SessionError) -> Self {
        let message = e.to_string();
        match e {
            SessionError::Store(s) => s.into(),
            SessionError::UntrustedIdentity(_) => PawlError::UntrustedIdentity {
                code: codes::UNTRUSTED_IDENTITY,
                message,
            },
            SessionError::NoSession(_) => PawlError::NoSession {
                code: codes::NO_SESSION,
                message,
            },
            SessionError::InvalidArgument(_) => PawlError::invalid_argument(message),
            SessionError::DuplicateMessage { .. } => PawlError::DuplicateMessage {
                code: codes::DUPLICATE_MESSAGE,
                message,
            },
            _ => PawlError::Protocol {
                code: codes::PROTOCOL,
                message,
            },
        }
    }
}

impl From<ClientError> for PawlError {
    fn from(e: ClientError) -> Self {
        let message = e.to_string();
        match e {
            ClientError::Store(s) => s.into(),
            ClientError::Session(s) => s.into(),
            ClientError::Config(_) => PawlError::Config {
                code: codes::CONFIG,
                message,
            },
            ClientError::Transport(_) => PawlError::Transport {
                code: codes::TRANSPORT,
                message,
            },
            ClientError::Tls(_) => PawlError::Tls {
                code: codes::TLS,
                message,
            },
            ClientError::NotConnected => PawlError::NotConnected {
                code: codes::NOT_CONNECTED,
                message,
            },
            ClientError::NotRegistered => PawlError::NotRegistered {
                code: codes::NOT_REGISTERED,
                message,
            },
            ClientError::Relay { code, message } => PawlError::Relay {
                code: codes::RELAY,
                relay_code: code,
                message,
            },
            ClientError::Protocol(_) => PawlError::Protocol {
                code: codes::PROTOCOL,
                message,
            },
            // A scanned link code that is not one is the caller's input.
            ClientError::Device(pawl_core::devices::DeviceError::BadLinkCode(_)) => {
                PawlError::invalid_argument(message)
            }
            // Signatures, device lists and app-state patches that do not verify.
            ClientError::Device(_) | ClientError::AppState(_) => PawlError::Protocol {
                code: codes::PROTOCOL,
                message,
            },
            // Unknown group, not an admin, not a member: the caller's request.
            ClientError::Group(_) => PawlError::invalid_argument(message),
            // `ClientError` is non-exhaustive: a kind added to core later is reported as
            // internal until it gets its own code here.
            _ => PawlError::internal(message),
        }
    }
}

impl From<FingerprintError> for PawlError {
    fn from(e: FingerprintError) -> Self {
        let message = e.to_string();
        match e {
            FingerprintError::Render(_) => PawlError::internal(message),
            // Malformed scanned payload, a different fingerprint version, bad parameters:
            // all describe the input the app passed.
            _ => PawlError::invalid_argument(message),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn codes_are_stable_and_mapped_precisely() {
        assert_eq!(PawlError::from(StoreError::WrongKey).code(), 2);
        assert!(matches!(
            PawlError::from(ClientError::Store(StoreError::WrongKey)),
            PawlError::WrongDatabaseKey { code: 2, .. }
        ));
        assert_eq!(PawlError::from(ClientError::NotRegistered).code(), 3);
        assert_eq!(PawlError::from(ClientError::NotConnected).code(), 4);
        let relay = PawlError::from(ClientError::Relay {
            code: "BadCode".into(),
            message: "wrong code".into(),
        });
        assert!(matches!(
            &relay,
            PawlError::Relay { code: 5, relay_code, .. } if relay_code == "BadCode"
        ));
        assert_eq!(PawlError::from(ClientError::Tls("x".into())).code(), 6);
        assert_eq!(PawlError::from(ClientError::Config("x".into())).code(), 7);
        assert_eq!(
            PawlError::from(ClientError::Transport("x".into())).code(),
            8
        );
        assert_eq!(PawlError::from(ClientError::Protocol("x".into())).code(), 9);
        assert_eq!(
            PawlError::from(SessionError::UntrustedIdentity("a".into())).code(),
            10
        );
        assert_eq!(
            PawlError::from(SessionError::NoSession("a".into())).code(),
            11
        );
        assert_eq!(
            PawlError::from(StoreError::Backend("disk".into())).code(),
            12
        );
        assert_eq!(PawlError::from(StoreError::Busy).code(), 13);
        // A store that would not be encrypted is a store error with a clear message.
        let e = PawlError::from(StoreError::EncryptionUnavailable);
        assert_eq!(e.code(), 12);
        assert!(e.to_string().contains("SQLCipher"));
        assert_eq!(
            PawlError::from(SessionError::DuplicateMessage { counter: 3 }).code(),
            14
        );
        assert_eq!(
            PawlError::from(ClientError::Session(SessionError::Store(
                StoreError::WrongKey
            )))
            .code(),
            2
        );
        assert_eq!(PawlError::internal("x").code(), 99);
        assert_eq!(PawlError::invalid_argument("x").code(), 1);
    }
}
