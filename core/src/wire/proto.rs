//! Protobuf messages of the Signal v3 wire format. Field numbers follow libsignal's
//! `wire.proto`; fields 5 and up of `SignalMessage` and 7/8 of `PreKeySignalMessage` are
//! reserved for PQXDH (v4) and not produced by v3 sessions.
#![allow(missing_docs)]

/// `SignalMessage` body.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SignalMessageProto {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub ratchet_key: Option<Vec<u8>>,
    #[prost(uint32, optional, tag = "2")]
    pub counter: Option<u32>,
    #[prost(uint32, optional, tag = "3")]
    pub previous_counter: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "4")]
    pub ciphertext: Option<Vec<u8>>,
}

/// `PreKeySignalMessage` body.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PreKeySignalMessageProto {
    #[prost(uint32, optional, tag = "1")]
    pub pre_key_id: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub base_key: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "3")]
    pub identity_key: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "4")]
    pub message: Option<Vec<u8>>,
    #[prost(uint32, optional, tag = "5")]
    pub registration_id: Option<u32>,
    #[prost(uint32, optional, tag = "6")]
    pub signed_pre_key_id: Option<u32>,
}

/// `SenderKeyMessage` body, libsignal-protocol-c v3 layout (as WhatsApp uses it):
/// `id` is the sender's chain id; the group ("distribution") is named out of band.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SenderKeyMessageProto {
    #[prost(uint32, optional, tag = "1")]
    pub id: Option<u32>,
    #[prost(uint32, optional, tag = "2")]
    pub iteration: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "3")]
    pub ciphertext: Option<Vec<u8>>,
}

/// `SenderKeyDistributionMessage` body, libsignal-protocol-c v3 layout.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SenderKeyDistributionMessageProto {
    #[prost(uint32, optional, tag = "1")]
    pub id: Option<u32>,
    #[prost(uint32, optional, tag = "2")]
    pub iteration: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "3")]
    pub chain_key: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "4")]
    pub signing_key: Option<Vec<u8>>,
}

/// A fingerprint half of the scannable safety-number code.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LogicalFingerprint {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub content: Option<Vec<u8>>,
    /// Only in version 0: the stable identifier.
    #[prost(bytes = "vec", optional, tag = "2")]
    pub identifier: Option<Vec<u8>>,
}

/// The scannable safety-number payload.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CombinedFingerprints {
    #[prost(uint32, optional, tag = "1")]
    pub version: Option<u32>,
    #[prost(message, optional, tag = "2")]
    pub local_fingerprint: Option<LogicalFingerprint>,
    #[prost(message, optional, tag = "3")]
    pub remote_fingerprint: Option<LogicalFingerprint>,
}
