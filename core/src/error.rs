//! Typed errors, one enum per domain.
//!
//! Every error says whose fault it is ([`Fault`]): a *peer* sent something malformed,
//! replayed or forged; the *caller* misused the API (unknown key id, bad argument); or
//! *local* state failed (a store backend). Apps use this to decide between "show the
//! user a warning about this contact", "fix the code" and "retry / report".

use thiserror::Error;

/// Who is responsible for an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The remote party (or an attacker on the path) sent bad, replayed or forged data.
    Peer,
    /// The API was used incorrectly by the application.
    Caller,
    /// Local state or storage failed.
    Local,
}

/// Errors while parsing wire or storage bytes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Input shorter than the fixed layout requires.
    #[error("input too short: need at least {needed} bytes, got {got}")]
    TooShort {
        /// Bytes required.
        needed: usize,
        /// Bytes present.
        got: usize,
    },
    /// The protobuf body does not parse.
    #[error("malformed protobuf: {0}")]
    Protobuf(String),
    /// A required protobuf field is missing.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A field has the wrong length or value.
    #[error("invalid field `{0}`")]
    InvalidField(&'static str),
}

/// Errors about key material.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A public key is not 33 bytes with the 0x05 type byte.
    #[error("bad public key encoding (expected 33 bytes starting 0x05)")]
    BadPublicKey,
    /// A private key is not 32 bytes.
    #[error("bad private key length (expected 32 bytes)")]
    BadPrivateKey,
    /// A signature does not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// The key type byte is unknown.
    #[error("unknown key type 0x{0:02x}")]
    UnknownKeyType(u8),
}

/// Errors from a store backend.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend failed (I/O, SQL, lock); the operation had no effect.
    #[error("store backend failed: {0}")]
    Backend(String),
    /// A stored record did not decode.
    #[error("stored record is corrupt: {0}")]
    Corrupt(#[from] DecodeError),
    /// The database key is wrong (or the file is not a Pawl database). Nothing was changed.
    #[error("wrong database key, or not a Pawl database")]
    WrongKey,
    /// The database was written by a newer Pawl (schema version `found`).
    #[error("database schema version {found} is newer than this build supports ({supported})")]
    NewerSchema {
        /// Version in the file.
        found: u32,
        /// Highest version this build knows.
        supported: u32,
    },
    /// Another process holds the database lock longer than the busy timeout.
    #[error("database is busy (locked by another process)")]
    Busy,
    /// This device has no identity yet (call `set_local_identity` first).
    #[error("no local identity in this store")]
    NoIdentity,
    /// A key was given but this build's SQLite does not encrypt (no SQLCipher linked:
    /// `PRAGMA cipher_version` is empty), so the file would be written in the clear.
    /// Nothing was opened or written.
    #[error("the store was opened with a key but this SQLite build has no encryption (SQLCipher missing); refusing to store in the clear")]
    EncryptionUnavailable,
}

/// Errors from 1:1 sessions (X3DH and the Double Ratchet).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The message key for this counter was already used: a replay or duplicate.
    #[error("duplicate message: counter {counter} on this chain was already received")]
    DuplicateMessage {
        /// The message counter.
        counter: u32,
    },
    /// The message is malformed or cannot belong to any session state.
    #[error("invalid message: {0}")]
    InvalidMessage(String),
    /// The MAC does not verify under any session state (tampered or wrong session).
    #[error("invalid message authentication code")]
    InvalidMac,
    /// The peer's identity key differs from the trusted one.
    #[error("untrusted identity for {0}: the identity key changed")]
    UntrustedIdentity(String),
    /// A key (bundle, signature, encoding) is invalid.
    #[error("invalid key: {0}")]
    InvalidKey(#[from] KeyError),
    /// A prekey or signed prekey id is unknown locally.
    #[error("unknown prekey id {0}")]
    InvalidKeyId(u32),
    /// There is no session with this address.
    #[error("no session with {0}")]
    NoSession(String),
    /// A message of an older protocol version (< 3).
    #[error("legacy message version {0}")]
    LegacyMessage(u8),
    /// A message of an unknown (newer) protocol version.
    #[error("unsupported message version {0}")]
    InvalidVersion(u8),
    /// The counter jumps further ahead than the forward limit allows.
    #[error("message counter {counter} is too far ahead of {current} (limit {limit})")]
    TooFarAhead {
        /// Counter in the message.
        counter: u32,
        /// Current chain index.
        current: u32,
        /// The forward-jump limit.
        limit: u32,
    },
    /// The bytes did not parse.
    #[error("malformed message: {0}")]
    Decode(#[from] DecodeError),
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The caller passed an invalid argument.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl SessionError {
    /// Whose fault the error is.
    pub fn fault(&self) -> Fault {
        match self {
            SessionError::DuplicateMessage { .. }
            | SessionError::InvalidMessage(_)
            | SessionError::InvalidMac
            | SessionError::UntrustedIdentity(_)
            | SessionError::InvalidKey(_)
            | SessionError::LegacyMessage(_)
            | SessionError::InvalidVersion(_)
            | SessionError::TooFarAhead { .. }
            | SessionError::Decode(_) => Fault::Peer,
            SessionError::InvalidKeyId(_)
            | SessionError::NoSession(_)
            | SessionError::InvalidArgument(_) => Fault::Caller,
            SessionError::Store(_) => Fault::Local,
        }
    }

    /// The interop peer's error code for this error (see `interop-peer.md`).
    pub fn code(&self) -> &'static str {
        match self {
            SessionError::DuplicateMessage { .. } => "DuplicateMessage",
            SessionError::InvalidMessage(_)
            | SessionError::TooFarAhead { .. }
            | SessionError::Decode(_) => "InvalidMessage",
            SessionError::InvalidMac => "InvalidMac",
            SessionError::UntrustedIdentity(_) => "UntrustedIdentity",
            SessionError::InvalidKey(_) => "InvalidKey",
            SessionError::InvalidKeyId(_) => "InvalidKeyId",
            SessionError::NoSession(_) => "NoSession",
            SessionError::LegacyMessage(_) => "LegacyMessage",
            SessionError::InvalidVersion(_) => "InvalidVersion",
            SessionError::Store(_) | SessionError::InvalidArgument(_) => "BadRequest",
        }
    }
}

/// Errors from sender-key (group) messaging.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum GroupError {
    /// No sender-key state for this sender and distribution (or chain id).
    #[error("no sender key state for this sender/distribution (chain id {0})")]
    NoSenderKeyState(u32),
    /// The message was already decrypted (iteration already used).
    #[error("duplicate group message (iteration {0})")]
    DuplicateMessage(u32),
    /// The signature over the message does not verify.
    #[error("sender-key message signature is invalid")]
    BadSignature,
    /// The iteration jumps too far ahead.
    #[error("group message iteration {iteration} too far ahead of {current}")]
    TooFarAhead {
        /// Iteration in the message.
        iteration: u32,
        /// Current chain iteration.
        current: u32,
    },
    /// The ciphertext does not decrypt (bad padding).
    #[error("group message does not decrypt")]
    BadCiphertext,
    /// Message version not supported.
    #[error("unsupported sender-key message version {0}")]
    InvalidVersion(u8),
    /// Malformed bytes.
    #[error("malformed group message: {0}")]
    Decode(#[from] DecodeError),
    /// Invalid key material.
    #[error("invalid key: {0}")]
    InvalidKey(#[from] KeyError),
    /// This device has no sending state for the distribution (create one first).
    #[error("no local sender key for this distribution")]
    NoLocalSenderKey,
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<GroupError> for SessionError {
    /// Group failures in the receive and send paths: a duplicate stays a duplicate,
    /// a store failure stays one, the rest is the peer's malformed or foreign message.
    fn from(e: GroupError) -> Self {
        match e {
            GroupError::Store(s) => SessionError::Store(s),
            GroupError::DuplicateMessage(i) => SessionError::DuplicateMessage { counter: i },
            GroupError::Decode(d) => SessionError::Decode(d),
            GroupError::InvalidKey(k) => SessionError::InvalidKey(k),
            e => SessionError::InvalidMessage(format!("group message: {e}")),
        }
    }
}

impl GroupError {
    /// Whose fault the error is.
    pub fn fault(&self) -> Fault {
        match self {
            GroupError::NoSenderKeyState(_) | GroupError::NoLocalSenderKey => Fault::Caller,
            GroupError::Store(_) => Fault::Local,
            _ => Fault::Peer,
        }
    }
}

/// Errors from safety numbers and their scannable codes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FingerprintError {
    /// The scanned code has a different version.
    #[error("fingerprint version mismatch: ours {ours}, theirs {theirs}")]
    VersionMismatch {
        /// Our version.
        ours: u32,
        /// Version in the scanned code.
        theirs: u32,
    },
    /// The scanned code is malformed.
    #[error("malformed scannable fingerprint: {0}")]
    Decode(#[from] DecodeError),
    /// Iterations outside 2..=1_000_000 or an unsupported version requested.
    #[error("invalid fingerprint parameter: {0}")]
    InvalidArgument(&'static str),
    /// Rendering the QR code failed (payload too large for a QR code).
    #[error("QR rendering failed: {0}")]
    Render(String),
}
