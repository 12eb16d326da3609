//! 1:1 sessions: X3DH setup and the Double Ratchet, Signal protocol version 3.

mod cipher;
mod record;
pub(crate) mod state;
mod x3dh;

pub use cipher::{
    message_decrypt, message_decrypt_prekey, message_decrypt_signal, message_encrypt,
    process_prekey_bundle,
};
pub use record::{SessionRecord, ARCHIVED_STATES_MAX_LENGTH};
pub use x3dh::{initialize_alice_session, initialize_bob_session, AliceParameters, BobParameters};
