//! Stable numeric error codes, the same in every binding (Swift, Kotlin, C#, Python,
//! the C ABI and `@pawl/web`). A code is never renumbered or reused: apps may switch on
//! them, log them and send them to their servers. New kinds get new numbers.
//!
//! [`of_client`], [`of_session`] and [`of_store`] classify an error; the bindings
//! build their own error types from the code.
//!
//! ```
//! use pawl_core::error::StoreError;
//! use pawl_core::error_code;
//! assert_eq!(error_code::of_store(&StoreError::WrongKey), error_code::WRONG_DATABASE_KEY);
//! ```

use crate::error::{SessionError, StoreError};

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
/// The store is already open in another tab of this browser profile (`@pawl/web`): one
/// client owns a store at a time, or two would fork its ratchets.
pub const STORE_IN_USE: u32 = 15;
/// A bug: a panic inside Pawl (caught at the boundary) or an unexpected state.
pub const INTERNAL: u32 = 99;

/// The code of a store error.
pub fn of_store(e: &StoreError) -> u32 {
    match e {
        StoreError::WrongKey => WRONG_DATABASE_KEY,
        StoreError::Busy => DATABASE_BUSY,
        // Backend, corrupt record, newer schema, no identity, no encryption available.
        _ => STORE,
    }
}

/// The code of a session error.
pub fn of_session(e: &SessionError) -> u32 {
    match e {
        SessionError::Store(s) => of_store(s),
        SessionError::UntrustedIdentity(_) => UNTRUSTED_IDENTITY,
        SessionError::NoSession(_) => NO_SESSION,
        SessionError::InvalidArgument(_) => INVALID_ARGUMENT,
        SessionError::DuplicateMessage { .. } => DUPLICATE_MESSAGE,
        _ => PROTOCOL,
    }
}

/// The code of a client error.
#[cfg(feature = "client")]
pub fn of_client(e: &crate::client::ClientError) -> u32 {
    use crate::client::ClientError;
    match e {
        ClientError::Store(s) => of_store(s),
        ClientError::Session(s) => of_session(s),
        ClientError::Config(_) => CONFIG,
        ClientError::Transport(_) => TRANSPORT,
        ClientError::Tls(_) => TLS,
        ClientError::NotConnected => NOT_CONNECTED,
        ClientError::NotRegistered => NOT_REGISTERED,
        ClientError::Relay { .. } => RELAY,
        ClientError::Protocol(_) => PROTOCOL,
        // A scanned link code that is not one is the caller's input.
        ClientError::Device(crate::devices::DeviceError::BadLinkCode(_)) => INVALID_ARGUMENT,
        // Signatures, device lists and app-state patches that do not verify.
        ClientError::Device(_) | ClientError::AppState(_) => PROTOCOL,
        // Unknown group, not an admin, not a member: the caller's request.
        ClientError::Group(_) => INVALID_ARGUMENT,
    }
}
