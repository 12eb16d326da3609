//! Store traits, one per record kind, and in-memory implementations.
//!
//! The traits are synchronous: the protocol layer is sans-I/O and a local database
//! (SQLite) answers in microseconds. Every method either fully applies or returns an
//! error and changes nothing. The protocol functions read everything they need first
//! and write only after a message has been authenticated and decrypted, so a failed
//! decrypt never writes.

mod inmem;
mod traits;

pub use inmem::{
    InMemIdentityKeyStore, InMemPreKeyStore, InMemProtocolStore, InMemSenderKeyStore,
    InMemSessionStore, InMemSignedPreKeyStore,
};
pub use traits::{
    trust_decision, Direction, IdentityChange, IdentityKeyStore, PreKeyStore, ProtocolStore,
    SenderKeyStore, SessionStore, SignedPreKeyStore,
};
