#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod address;
pub mod appstate;
#[doc(hidden)]
pub mod bench_support;
#[cfg(feature = "client")]
pub mod client;
pub mod crypto;
pub mod devices;
pub mod error;
pub mod error_code;
pub mod fingerprint;
#[doc(hidden)]
pub mod fuzzing;
pub mod group;
pub mod history;
pub mod keys;
pub mod media;
pub mod ratchet;
pub mod session;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod store;
pub mod wire;

pub use address::ProtocolAddress;
pub use error::{
    DecodeError, Fault, FingerprintError, GroupError, KeyError, SessionError, StoreError,
};
pub use group::{
    create_sender_key_distribution_message, group_decrypt, group_encrypt,
    process_sender_key_distribution_message, SenderKeyRecord,
};
pub use keys::{
    IdentityKey, IdentityKeyPair, KeyPair, PreKeyBundle, PreKeyRecord, PrivateKey, PublicKey,
    SignedPreKeyRecord,
};
pub use session::{
    message_decrypt, message_decrypt_prekey, message_decrypt_signal, message_encrypt,
    process_prekey_bundle, SessionRecord,
};
pub use wire::{
    CiphertextMessage, PreKeySignalMessage, SenderKeyDistributionMessage, SenderKeyMessage,
    SignalMessage,
};

/// Crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
