//! The one error type every export returns, with stable numeric codes.

use pawl_core::client::ClientError;
use pawl_core::error::{FingerprintError, SessionError, StoreError};

/// Stable numeric error codes (defined in `pawl_core::error_code`, shared with the
/// browser package). A code is never renumbered or reused.
pub mod codes {
    pub use pawl_core::error_code::*;
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

impl PawlError {
    /// The variant for a stable `code` (see [`codes`]); `relay_code` is the relay's
    /// own code for [`codes::RELAY`].
    fn from_code(code: u32, message: String, relay_code: Option<String>) -> Self {
        match code {
            codes::INVALID_ARGUMENT => PawlError::InvalidArgument { code, message },
            codes::WRONG_DATABASE_KEY => PawlError::WrongDatabaseKey { code, message },
            codes::NOT_REGISTERED => PawlError::NotRegistered { code, message },
            codes::NOT_CONNECTED => PawlError::NotConnected { code, message },
            codes::RELAY => PawlError::Relay {
                code,
                relay_code: relay_code.unwrap_or_default(),
                message,
            },
            codes::TLS => PawlError::Tls { code, message },
            codes::CONFIG => PawlError::Config { code, message },
            codes::TRANSPORT => PawlError::Transport { code, message },
            codes::PROTOCOL => PawlError::Protocol { code, message },
            codes::UNTRUSTED_IDENTITY => PawlError::UntrustedIdentity { code, message },
            codes::NO_SESSION => PawlError::NoSession { code, message },
            codes::STORE => PawlError::Store { code, message },
            codes::DATABASE_BUSY => PawlError::DatabaseBusy { code, message },
            codes::DUPLICATE_MESSAGE => PawlError::DuplicateMessage { code, message },
            _ => PawlError::internal(message),
        }
    }
}

impl From<StoreError> for PawlError {
    fn from(e: StoreError) -> Self {
        PawlError::from_code(codes::of_store(&e), e.to_string(), None)
    }
}

impl From<SessionError> for PawlError {
    fn from(e: SessionError) -> Self {
        PawlError::from_code(codes::of_session(&e), e.to_string(), None)
    }
}

impl From<ClientError> for PawlError {
    fn from(e: ClientError) -> Self {
        let relay_code = match &e {
            ClientError::Relay { code, .. } => Some(code.clone()),
            _ => None,
        };
        PawlError::from_code(codes::of_client(&e), e.to_string(), relay_code)
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
