//! Wire and storage encodings.
//!
//! * [`proto`]: protobuf messages (prost derives, no build script), field numbers as
//!   libsignal v3 puts them on the wire.
//! * [`messages`]: the framed messages (`version byte ‖ protobuf [‖ MAC | signature]`)
//!   with typed parsing that never panics.
//! * [`relay`]: the relay's frames (device <-> relay).
//! * [`content`]: what the client encrypts (text, read receipts, typing).

pub mod content;
pub mod messages;
pub mod proto;
pub mod relay;
pub(crate) mod storage;

pub use messages::{
    CiphertextMessage, PreKeySignalMessage, SenderKeyDistributionMessage, SenderKeyMessage,
    SignalMessage, CIPHERTEXT_VERSION, MAC_LEN,
};
