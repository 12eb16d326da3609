//! Framed Signal v3 messages: `version ‖ protobuf [‖ 8-byte MAC | 64-byte signature]`.
//!
//! Parsing is total: every input yields a value or a typed error, never a panic.

use prost::Message as _;

use super::proto::{
    PreKeySignalMessageProto, SenderKeyDistributionMessageProto, SenderKeyMessageProto,
    SignalMessageProto,
};
use crate::error::{DecodeError, SessionError};
use crate::keys::{IdentityKey, PublicKey};

/// The protocol version Pawl speaks (Signal v3, pre-PQXDH).
pub const CIPHERTEXT_VERSION: u8 = 3;
/// Length of the truncated MAC at the end of a `SignalMessage`.
pub const MAC_LEN: usize = 8;
/// Length of the signature at the end of a `SenderKeyMessage`.
pub const SIGNATURE_LEN: usize = 64;
const VERSION_BYTE: u8 = (CIPHERTEXT_VERSION << 4) | CIPHERTEXT_VERSION;

fn check_version(b: u8) -> Result<(), SessionError> {
    let v = b >> 4;
    if v < CIPHERTEXT_VERSION {
        return Err(SessionError::LegacyMessage(v));
    }
    if v > CIPHERTEXT_VERSION {
        return Err(SessionError::InvalidVersion(v));
    }
    Ok(())
}

/// Split `version ‖ body ‖ trailer(trailer_len)` after checking length and version.
fn split_frame(bytes: &[u8], trailer_len: usize) -> Result<(u8, &[u8], &[u8]), SessionError> {
    if bytes.len() < 1 + trailer_len {
        return Err(DecodeError::TooShort {
            needed: 1 + trailer_len,
            got: bytes.len(),
        }
        .into());
    }
    check_version(bytes[0])?;
    let (body, trailer) = bytes[1..].split_at(bytes.len() - 1 - trailer_len);
    Ok((bytes[0] >> 4, body, trailer))
}

fn proto_err(e: prost::DecodeError) -> DecodeError {
    DecodeError::Protobuf(e.to_string())
}

// ---- a minimal protobuf writer for the hot paths (byte-identical to prost) ----

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn put_bytes_field(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push((tag << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

pub(crate) fn put_u32_field(out: &mut Vec<u8>, tag: u8, v: u32) {
    out.push(tag << 3);
    put_varint(out, u64::from(v));
}

/// A `SignalMessage`: one Double Ratchet message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignalMessage {
    /// Message version (3).
    pub message_version: u8,
    /// The sender's current ratchet public key.
    pub ratchet_key: PublicKey,
    /// Index in the sending chain.
    pub counter: u32,
    /// Length of the sender's previous sending chain.
    pub previous_counter: u32,
    /// AES-256-CBC ciphertext.
    pub ciphertext: Vec<u8>,
    serialized: Vec<u8>,
}

impl SignalMessage {
    /// Build and MAC a message. `mac` is given the bytes to authenticate and returns
    /// the full HMAC; the first 8 bytes are appended.
    pub(crate) fn new(
        ratchet_key: PublicKey,
        counter: u32,
        previous_counter: u32,
        ciphertext: Vec<u8>,
        mac: impl FnOnce(&[u8]) -> [u8; 32],
    ) -> Self {
        let mut out = Vec::with_capacity(1 + 35 + 12 + 3 + ciphertext.len() + MAC_LEN);
        out.push(VERSION_BYTE);
        put_bytes_field(&mut out, 1, &ratchet_key.serialize());
        put_u32_field(&mut out, 2, counter);
        put_u32_field(&mut out, 3, previous_counter);
        put_bytes_field(&mut out, 4, &ciphertext);
        let tag = mac(&out);
        out.extend_from_slice(&tag[..MAC_LEN]);
        SignalMessage {
            message_version: CIPHERTEXT_VERSION,
            ratchet_key,
            counter,
            previous_counter,
            ciphertext,
            serialized: out,
        }
    }

    /// Parse the serialized form (MAC not yet checked: that needs the session's keys).
    pub fn parse(bytes: &[u8]) -> Result<Self, SessionError> {
        let (_, body, _) = split_frame(bytes, MAC_LEN)?;
        let p = SignalMessageProto::decode(body).map_err(proto_err)?;
        let rk = p
            .ratchet_key
            .ok_or(DecodeError::MissingField("ratchet_key"))?;
        let ratchet_key = PublicKey::from_bytes(&rk)?;
        Ok(SignalMessage {
            message_version: bytes[0] >> 4,
            ratchet_key,
            counter: p.counter.ok_or(DecodeError::MissingField("counter"))?,
            previous_counter: p.previous_counter.unwrap_or(0),
            ciphertext: p
                .ciphertext
                .ok_or(DecodeError::MissingField("ciphertext"))?,
            serialized: bytes.to_vec(),
        })
    }

    /// The bytes on the wire.
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }
    /// The part covered by the MAC (everything but the MAC).
    pub(crate) fn mac_input(&self) -> &[u8] {
        &self.serialized[..self.serialized.len() - MAC_LEN]
    }
    /// The 8-byte MAC.
    pub(crate) fn mac(&self) -> &[u8] {
        &self.serialized[self.serialized.len() - MAC_LEN..]
    }
}

/// A `PreKeySignalMessage`: the first messages of a session, carrying X3DH inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreKeySignalMessage {
    /// Message version (3).
    pub message_version: u8,
    /// Sender's registration id.
    pub registration_id: u32,
    /// The one-time prekey used, if any.
    pub pre_key_id: Option<u32>,
    /// The signed prekey used.
    pub signed_pre_key_id: u32,
    /// Sender's ephemeral (base) key.
    pub base_key: PublicKey,
    /// Sender's identity key.
    pub identity_key: IdentityKey,
    /// The embedded `SignalMessage`.
    pub message: SignalMessage,
    serialized: Vec<u8>,
}

impl PreKeySignalMessage {
    pub(crate) fn new(
        registration_id: u32,
        pre_key_id: Option<u32>,
        signed_pre_key_id: u32,
        base_key: PublicKey,
        identity_key: IdentityKey,
        message: SignalMessage,
    ) -> Self {
        let p = PreKeySignalMessageProto {
            pre_key_id,
            base_key: Some(base_key.serialize().to_vec()),
            identity_key: Some(identity_key.serialize().to_vec()),
            message: Some(message.serialized().to_vec()),
            registration_id: Some(registration_id),
            signed_pre_key_id: Some(signed_pre_key_id),
        };
        let mut serialized = Vec::with_capacity(1 + p.encoded_len());
        serialized.push(VERSION_BYTE);
        p.encode_raw(&mut serialized);
        PreKeySignalMessage {
            message_version: CIPHERTEXT_VERSION,
            registration_id,
            pre_key_id,
            signed_pre_key_id,
            base_key,
            identity_key,
            message,
            serialized,
        }
    }

    /// Parse the serialized form.
    pub fn parse(bytes: &[u8]) -> Result<Self, SessionError> {
        let (&v, body) = bytes
            .split_first()
            .ok_or(DecodeError::TooShort { needed: 1, got: 0 })?;
        check_version(v)?;
        let p = PreKeySignalMessageProto::decode(body).map_err(proto_err)?;
        let base_key =
            PublicKey::from_bytes(&p.base_key.ok_or(DecodeError::MissingField("base_key"))?)?;
        let identity_key = IdentityKey::from_bytes(
            &p.identity_key
                .ok_or(DecodeError::MissingField("identity_key"))?,
        )?;
        let message =
            SignalMessage::parse(&p.message.ok_or(DecodeError::MissingField("message"))?)?;
        Ok(PreKeySignalMessage {
            message_version: v >> 4,
            registration_id: p.registration_id.unwrap_or(0),
            pre_key_id: p.pre_key_id,
            signed_pre_key_id: p
                .signed_pre_key_id
                .ok_or(DecodeError::MissingField("signed_pre_key_id"))?,
            base_key,
            identity_key,
            message,
            serialized: bytes.to_vec(),
        })
    }

    /// The bytes on the wire.
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }
}

/// Either kind of 1:1 ciphertext, as `encrypt` returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CiphertextMessage {
    /// A message of an established session (wire type 2).
    Signal(SignalMessage),
    /// A session-initiating message (wire type 3).
    PreKey(PreKeySignalMessage),
}

impl CiphertextMessage {
    /// Type number as Signal uses it: 2 = `SignalMessage`, 3 = `PreKeySignalMessage`.
    pub fn message_type(&self) -> u8 {
        match self {
            CiphertextMessage::Signal(_) => 2,
            CiphertextMessage::PreKey(_) => 3,
        }
    }
    /// The bytes on the wire.
    pub fn serialized(&self) -> &[u8] {
        match self {
            CiphertextMessage::Signal(m) => m.serialized(),
            CiphertextMessage::PreKey(m) => m.serialized(),
        }
    }
}

/// A group message encrypted under a sender key and signed by the sender's chain key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SenderKeyMessage {
    /// Message version (3).
    pub message_version: u8,
    /// The sender's chain id (the state within the distribution).
    pub chain_id: u32,
    /// Iteration in the chain.
    pub iteration: u32,
    /// AES-256-CBC ciphertext.
    pub ciphertext: Vec<u8>,
    serialized: Vec<u8>,
}

impl SenderKeyMessage {
    pub(crate) fn new(
        chain_id: u32,
        iteration: u32,
        ciphertext: Vec<u8>,
        sign: impl FnOnce(&[u8]) -> [u8; 64],
    ) -> Self {
        let mut out = Vec::with_capacity(1 + 12 + 3 + ciphertext.len() + SIGNATURE_LEN);
        out.push(VERSION_BYTE);
        put_u32_field(&mut out, 1, chain_id);
        put_u32_field(&mut out, 2, iteration);
        put_bytes_field(&mut out, 3, &ciphertext);
        let sig = sign(&out);
        out.extend_from_slice(&sig);
        SenderKeyMessage {
            message_version: CIPHERTEXT_VERSION,
            chain_id,
            iteration,
            ciphertext,
            serialized: out,
        }
    }

    /// Parse the serialized form (signature not yet checked).
    pub fn parse(bytes: &[u8]) -> Result<Self, SessionError> {
        let (_, body, _) = split_frame(bytes, SIGNATURE_LEN)?;
        let p = SenderKeyMessageProto::decode(body).map_err(proto_err)?;
        Ok(SenderKeyMessage {
            message_version: bytes[0] >> 4,
            chain_id: p.id.ok_or(DecodeError::MissingField("id"))?,
            iteration: p.iteration.ok_or(DecodeError::MissingField("iteration"))?,
            ciphertext: p
                .ciphertext
                .ok_or(DecodeError::MissingField("ciphertext"))?,
            serialized: bytes.to_vec(),
        })
    }

    /// The bytes on the wire.
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }
    pub(crate) fn signed_part(&self) -> &[u8] {
        &self.serialized[..self.serialized.len() - SIGNATURE_LEN]
    }
    pub(crate) fn signature(&self) -> &[u8; 64] {
        let s = &self.serialized[self.serialized.len() - SIGNATURE_LEN..];
        // Length checked in `parse` / built in `new`.
        <&[u8; 64]>::try_from(s).unwrap_or(&[0u8; 64])
    }
}

/// Hands a sender's chain key and signing key to a group member (over a pairwise session).
#[derive(Clone, PartialEq, Eq)]
pub struct SenderKeyDistributionMessage {
    /// Message version (3).
    pub message_version: u8,
    /// Chain id.
    pub chain_id: u32,
    /// Iteration the chain key belongs to.
    pub iteration: u32,
    /// 32-byte chain key (secret).
    pub chain_key: [u8; 32],
    /// The sender's signing public key for this chain.
    pub signing_key: PublicKey,
    serialized: Vec<u8>,
}

impl std::fmt::Debug for SenderKeyDistributionMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderKeyDistributionMessage")
            .field("chain_id", &self.chain_id)
            .field("iteration", &self.iteration)
            .field("signing_key", &self.signing_key)
            .finish_non_exhaustive()
    }
}

impl Drop for SenderKeyDistributionMessage {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.chain_key);
        zeroize::Zeroize::zeroize(&mut self.serialized);
    }
}

impl SenderKeyDistributionMessage {
    pub(crate) fn new(
        chain_id: u32,
        iteration: u32,
        chain_key: [u8; 32],
        signing_key: PublicKey,
    ) -> Self {
        let p = SenderKeyDistributionMessageProto {
            id: Some(chain_id),
            iteration: Some(iteration),
            chain_key: Some(chain_key.to_vec()),
            signing_key: Some(signing_key.serialize().to_vec()),
        };
        let mut serialized = vec![VERSION_BYTE];
        p.encode_raw(&mut serialized);
        SenderKeyDistributionMessage {
            message_version: CIPHERTEXT_VERSION,
            chain_id,
            iteration,
            chain_key,
            signing_key,
            serialized,
        }
    }

    /// Parse the serialized form.
    pub fn parse(bytes: &[u8]) -> Result<Self, SessionError> {
        let (&v, body) = bytes
            .split_first()
            .ok_or(DecodeError::TooShort { needed: 1, got: 0 })?;
        check_version(v)?;
        let p = SenderKeyDistributionMessageProto::decode(body).map_err(proto_err)?;
        let ck = p.chain_key.ok_or(DecodeError::MissingField("chain_key"))?;
        let chain_key: [u8; 32] = ck
            .as_slice()
            .try_into()
            .map_err(|_| DecodeError::InvalidField("chain_key"))?;
        let signing_key = PublicKey::from_bytes(
            &p.signing_key
                .ok_or(DecodeError::MissingField("signing_key"))?,
        )?;
        Ok(SenderKeyDistributionMessage {
            message_version: v >> 4,
            chain_id: p.id.ok_or(DecodeError::MissingField("id"))?,
            iteration: p.iteration.ok_or(DecodeError::MissingField("iteration"))?,
            chain_key,
            signing_key,
            serialized: bytes.to_vec(),
        })
    }

    /// The bytes on the wire.
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_encoding_matches_prost() {
        for (counter, prev, len) in [
            (0u32, 0u32, 16usize),
            (127, 128, 32),
            (300_000, u32::MAX, 4000),
        ] {
            let rk = PublicKey::from_u_bytes([9; 32]);
            let ct = vec![0x5a; len];
            let m = SignalMessage::new(rk, counter, prev, ct.clone(), |_| [0; 32]);
            let p = SignalMessageProto {
                ratchet_key: Some(rk.serialize().to_vec()),
                counter: Some(counter),
                previous_counter: Some(prev),
                ciphertext: Some(ct.clone()),
            };
            assert_eq!(&m.mac_input()[1..], p.encode_to_vec().as_slice());
            let back = SignalMessage::parse(m.serialized()).unwrap();
            assert_eq!(back, m);

            let s = SenderKeyMessage::new(7, counter, ct.clone(), |_| [1; 64]);
            let p = SenderKeyMessageProto {
                id: Some(7),
                iteration: Some(counter),
                ciphertext: Some(ct),
            };
            assert_eq!(&s.signed_part()[1..], p.encode_to_vec().as_slice());
            assert_eq!(SenderKeyMessage::parse(s.serialized()).unwrap(), s);
        }
    }

    #[test]
    fn versions_and_truncation() {
        let rk = PublicKey::from_u_bytes([9; 32]);
        let m = SignalMessage::new(rk, 1, 0, vec![1; 16], |_| [0; 32]);
        let mut b = m.serialized().to_vec();
        b[0] = 0x22;
        assert_eq!(
            SignalMessage::parse(&b),
            Err(SessionError::LegacyMessage(2))
        );
        b[0] = 0x44;
        assert_eq!(
            SignalMessage::parse(&b),
            Err(SessionError::InvalidVersion(4))
        );
        for n in 0..m.serialized().len() {
            let _ = SignalMessage::parse(&m.serialized()[..n]);
            let _ = PreKeySignalMessage::parse(&m.serialized()[..n]);
        }
        assert!(matches!(
            SignalMessage::parse(&[0x33]),
            Err(SessionError::Decode(_))
        ));
    }
}
