//! Relay frames (protobuf, prost derives), shared by the relay (`pawl-relay`) and the
//! client. One WebSocket binary message carries one frame. See
//! `examples/relay/PROTOCOL.md` for the conversation.
#![allow(missing_docs, clippy::large_enum_variant)] // prost messages, sent once each

/// The domain-separation prefix of the authentication signature.
pub const AUTH_CONTEXT: &[u8] = b"pawl-relay-auth-v1\0";

/// What a device signs to authenticate: context ‖ nonce ‖ user ‖ device id (BE).
pub fn auth_message(nonce: &[u8], user: &str, device_id: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(AUTH_CONTEXT.len() + nonce.len() + user.len() + 4);
    m.extend_from_slice(AUTH_CONTEXT);
    m.extend_from_slice(nonce);
    m.extend_from_slice(user.as_bytes());
    m.extend_from_slice(&device_id.to_be_bytes());
    m
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ClientFrame {
    #[prost(uint64, tag = "15")]
    pub request_id: u64,
    #[prost(
        oneof = "ClientKind",
        tags = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 16, 17, 18, 19, 20, 21, 22"
    )]
    pub kind: Option<ClientKind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum ClientKind {
    #[prost(message, tag = "1")]
    Auth(Auth),
    #[prost(message, tag = "2")]
    UploadKeys(UploadKeys),
    #[prost(message, tag = "3")]
    FetchBundle(FetchBundle),
    #[prost(message, tag = "4")]
    Send(Send),
    #[prost(message, tag = "5")]
    Ack(Ack),
    #[prost(message, tag = "6")]
    GetDevices(GetDevices),
    #[prost(message, tag = "7")]
    RequestCode(RequestCode),
    #[prost(message, tag = "8")]
    Register(Register),
    #[prost(message, tag = "9")]
    Discover(Discover),
    #[prost(message, tag = "10")]
    BlobPut(BlobPut),
    #[prost(message, tag = "11")]
    BlobGet(BlobGet),
    #[prost(message, tag = "16")]
    LinkStart(LinkStart),
    #[prost(message, tag = "17")]
    LinkOffer(LinkOfferRequest),
    #[prost(message, tag = "18")]
    LinkFinish(LinkFinish),
    #[prost(message, tag = "19")]
    RemoveDevice(RemoveDevice),
    #[prost(message, tag = "20")]
    PutDeviceList(PutDeviceList),
    #[prost(message, tag = "21")]
    AppStatePut(AppStatePut),
    #[prost(message, tag = "22")]
    AppStateGet(AppStateGet),
}

/// The `user` a companion signs the challenge with in [`LinkStart`] (it has no
/// account yet): [`auth_message`]`(nonce, LINK_USER, 0)`.
pub const LINK_USER: &str = "pawl-link";

/// Before authentication, on a new companion: "I want to be linked". The relay
/// answers with a link reference (`link_ref`, `link_expires_ms`) for the QR code and
/// pushes a fresh [`LinkCode`] when it expires (60 s for the first, 20 s for each
/// later one, six in all), then a [`LinkOffered`] when the primary scanned it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LinkStart {
    #[prost(bytes = "vec", tag = "1")]
    pub identity_key: Vec<u8>,
    #[prost(uint32, tag = "2")]
    pub registration_id: u32,
    /// Over [`auth_message`]`(nonce, LINK_USER, 0)`.
    #[prost(bytes = "vec", tag = "3")]
    pub signature: Vec<u8>,
}

/// From the primary (device 1): hand `offer` (a `devices::link::LinkOffer`) to the
/// companion waiting under `link_ref`, which becomes device `device_id`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LinkOfferRequest {
    #[prost(bytes = "vec", tag = "1")]
    pub link_ref: Vec<u8>,
    #[prost(uint32, tag = "2")]
    pub device_id: u32,
    #[prost(bytes = "vec", tag = "3")]
    pub offer: Vec<u8>,
}

/// The companion accepted: its counter-signed identity and the device list that
/// names it. The relay checks both against the primary's registered identity,
/// registers the device and authenticates this connection as it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LinkFinish {
    #[prost(bytes = "vec", tag = "1")]
    pub signed_identity: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub device_list: Vec<u8>,
    /// The new device's signed prekey and first one-time prekeys (peers can start
    /// sessions with it as soon as it is registered).
    #[prost(message, optional, tag = "3")]
    pub keys: Option<UploadKeys>,
}

/// From the primary: unlink `device_id`; `device_list` is the new signed list
/// without it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RemoveDevice {
    #[prost(uint32, tag = "1")]
    pub device_id: u32,
    #[prost(bytes = "vec", tag = "2")]
    pub device_list: Vec<u8>,
}

/// From the primary: a renewed signed device list (newer version and timestamp).
#[derive(Clone, PartialEq, prost::Message)]
pub struct PutDeviceList {
    #[prost(bytes = "vec", tag = "1")]
    pub device_list: Vec<u8>,
}

/// Append app-state patch `version` of `collection` (opaque to the relay; it must
/// be the latest version + 1, else `Conflict` with `latest_version`). A non-empty
/// `snapshot` replaces the stored snapshot (at `version`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AppStatePut {
    #[prost(string, tag = "1")]
    pub collection: String,
    #[prost(uint64, tag = "2")]
    pub version: u64,
    #[prost(bytes = "vec", tag = "3")]
    pub patch: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    pub snapshot: Vec<u8>,
}

/// The patches of `collection` after `after_version` (in order), and the snapshot
/// if `want_snapshot`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AppStateGet {
    #[prost(string, tag = "1")]
    pub collection: String,
    #[prost(uint64, tag = "2")]
    pub after_version: u64,
    #[prost(bool, tag = "3")]
    pub want_snapshot: bool,
}

/// One stored app-state patch.
#[derive(Clone, PartialEq, prost::Message)]
pub struct VersionedBlob {
    #[prost(uint64, tag = "1")]
    pub version: u64,
    #[prost(bytes = "vec", tag = "2")]
    pub data: Vec<u8>,
}

/// A device and the signed identity the relay keeps for it (answer to `GetDevices`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeviceIdentityEntry {
    #[prost(uint32, tag = "1")]
    pub device_id: u32,
    #[prost(bytes = "vec", tag = "2")]
    pub signed_identity: Vec<u8>,
}

/// The domain-separation prefix of contact-discovery hashes.
pub const DISCOVERY_CONTEXT: &[u8] = b"pawl-discovery-v1\0";
/// How many leading bytes of a discovery hash a device sends.
pub const DISCOVERY_PREFIX_LEN: usize = 3;

/// A phone number's discovery hash: SHA-256(context ‖ E.164 number).
pub fn discovery_hash(phone: &str) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(DISCOVERY_CONTEXT);
    h.update(phone.as_bytes());
    h.finalize().into()
}

/// Which of these hash prefixes (each [`DISCOVERY_PREFIX_LEN`] bytes of a
/// [`discovery_hash`]) belong to registered users? The relay answers with every
/// registered user under each prefix; the device keeps those whose full hash matches
/// a number in its address book.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Discover {
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub prefixes: Vec<Vec<u8>>,
}

/// One registered user found by [`Discover`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct DirectoryEntry {
    #[prost(bytes = "vec", tag = "1")]
    pub hash: Vec<u8>,
    #[prost(string, tag = "2")]
    pub user: String,
}

/// Upload a chunk of an encrypted blob (media, history bundles). An empty `blob_id`
/// starts a new blob (the relay picks a random id). Chunks are appended in order:
/// `offset` must equal the bytes stored so far (a resumed upload asks with a wrong
/// offset and learns the right one from `blob_size` in the error). `done` seals it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BlobPut {
    #[prost(bytes = "vec", tag = "1")]
    pub blob_id: Vec<u8>,
    #[prost(uint64, tag = "2")]
    pub offset: u64,
    #[prost(bytes = "vec", tag = "3")]
    pub data: Vec<u8>,
    #[prost(bool, tag = "4")]
    pub done: bool,
}

/// Download up to `max_len` bytes of a sealed blob from `offset`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BlobGet {
    #[prost(bytes = "vec", tag = "1")]
    pub blob_id: Vec<u8>,
    #[prost(uint64, tag = "2")]
    pub offset: u64,
    #[prost(uint32, tag = "3")]
    pub max_len: u32,
}

/// Before authentication: ask for a verification code for `phone` (E.164, `+` and
/// 8 to 15 digits). Rate limited per number and per connection.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RequestCode {
    #[prost(string, tag = "1")]
    pub phone: String,
}

/// Before authentication: register device `device_id` of account `phone` with the
/// code received, presenting the device's identity key and signing the connection's
/// challenge like [`Auth`] (with `user` = `phone`). Authenticates the connection.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Register {
    #[prost(string, tag = "1")]
    pub phone: String,
    #[prost(string, tag = "2")]
    pub code: String,
    #[prost(uint32, tag = "3")]
    pub device_id: u32,
    #[prost(bytes = "vec", tag = "4")]
    pub identity_key: Vec<u8>,
    #[prost(uint32, tag = "5")]
    pub registration_id: u32,
    #[prost(bytes = "vec", tag = "6")]
    pub signature: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RelayFrame {
    #[prost(oneof = "RelayKind", tags = "1, 2, 3, 4, 5, 6, 7, 8, 9")]
    pub kind: Option<RelayKind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum RelayKind {
    #[prost(message, tag = "1")]
    Challenge(Challenge),
    #[prost(message, tag = "2")]
    Response(Response),
    #[prost(message, tag = "3")]
    Deliver(Deliver),
    #[prost(message, tag = "4")]
    Receipt(Receipt),
    #[prost(message, tag = "5")]
    KeysLow(KeysLow),
    #[prost(message, tag = "6")]
    LinkCode(LinkCode),
    #[prost(message, tag = "7")]
    LinkOffered(LinkOffered),
    #[prost(message, tag = "8")]
    DevicesChanged(DevicesChanged),
    #[prost(message, tag = "9")]
    AppStateChanged(AppStateChanged),
}

/// To a companion waiting to be linked: a new link reference (the last expired).
#[derive(Clone, PartialEq, prost::Message)]
pub struct LinkCode {
    #[prost(bytes = "vec", tag = "1")]
    pub link_ref: Vec<u8>,
    #[prost(uint64, tag = "2")]
    pub expires_ms: u64,
}

/// To a companion waiting to be linked: the primary of `user` answered its code.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LinkOffered {
    #[prost(string, tag = "1")]
    pub user: String,
    #[prost(uint32, tag = "2")]
    pub device_id: u32,
    #[prost(bytes = "vec", tag = "3")]
    pub offer: Vec<u8>,
}

/// To every connected device of an account: a device was linked or removed (read
/// the signed list again).
#[derive(Clone, PartialEq, prost::Message)]
pub struct DevicesChanged {
    #[prost(uint32, tag = "1")]
    pub device_id: u32,
    #[prost(bool, tag = "2")]
    pub removed: bool,
}

/// To the account's other connected devices: a new patch of `collection`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AppStateChanged {
    #[prost(string, tag = "1")]
    pub collection: String,
    #[prost(uint64, tag = "2")]
    pub version: u64,
}

/// Pushed when a bundle fetch leaves this device with few one-time prekeys: upload more.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeysLow {
    #[prost(uint32, tag = "1")]
    pub prekeys_left: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Challenge {
    #[prost(bytes = "vec", tag = "1")]
    pub nonce: Vec<u8>,
}

/// Authenticate a registered device: `signature` by its identity key over
/// [`auth_message`]. The identity must be the registered one.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Auth {
    #[prost(string, tag = "1")]
    pub user: String,
    #[prost(uint32, tag = "2")]
    pub device_id: u32,
    #[prost(bytes = "vec", tag = "3")]
    pub identity_key: Vec<u8>,
    #[prost(uint32, tag = "4")]
    pub registration_id: u32,
    #[prost(bytes = "vec", tag = "5")]
    pub signature: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PreKey {
    #[prost(uint32, tag = "1")]
    pub id: u32,
    #[prost(bytes = "vec", tag = "2")]
    pub public_key: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct UploadKeys {
    #[prost(uint32, tag = "1")]
    pub signed_prekey_id: u32,
    #[prost(bytes = "vec", tag = "2")]
    pub signed_prekey: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub signed_prekey_signature: Vec<u8>,
    #[prost(message, repeated, tag = "4")]
    pub prekeys: Vec<PreKey>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct FetchBundle {
    #[prost(string, tag = "1")]
    pub user: String,
    #[prost(uint32, tag = "2")]
    pub device_id: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Bundle {
    #[prost(uint32, tag = "1")]
    pub registration_id: u32,
    #[prost(uint32, tag = "2")]
    pub device_id: u32,
    #[prost(bytes = "vec", tag = "3")]
    pub identity_key: Vec<u8>,
    #[prost(uint32, tag = "4")]
    pub signed_prekey_id: u32,
    #[prost(bytes = "vec", tag = "5")]
    pub signed_prekey: Vec<u8>,
    #[prost(bytes = "vec", tag = "6")]
    pub signed_prekey_signature: Vec<u8>,
    #[prost(message, optional, tag = "7")]
    pub prekey: Option<PreKey>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct OutEnvelope {
    #[prost(uint32, tag = "1")]
    pub device_id: u32,
    #[prost(uint32, tag = "2")]
    pub message_type: u32,
    #[prost(bytes = "vec", tag = "3")]
    pub payload: Vec<u8>,
}

/// One message for every device of `to_user`: the relay checks the device set.
/// `ephemeral` messages (typing, presence) are pushed to connected devices only:
/// never queued, never stored, no receipt.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Send {
    #[prost(string, tag = "1")]
    pub to_user: String,
    #[prost(message, repeated, tag = "2")]
    pub envelopes: Vec<OutEnvelope>,
    #[prost(bool, tag = "3")]
    pub ephemeral: bool,
    /// Devices the relay lists that the sender refuses to encrypt to (their identity
    /// is not vouched for by the primary's signed device list): counted as present in
    /// the device-set check, sent nothing.
    #[prost(uint32, repeated, tag = "4")]
    pub unverified: Vec<u32>,
}

/// Acknowledge delivered messages (`ids`) and received receipts (`receipt_ids`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Ack {
    #[prost(uint64, repeated, tag = "1")]
    pub ids: Vec<u64>,
    #[prost(uint64, repeated, tag = "2")]
    pub receipt_ids: Vec<u64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GetDevices {
    #[prost(string, tag = "1")]
    pub user: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Response {
    #[prost(uint64, tag = "1")]
    pub request_id: u64,
    #[prost(bool, tag = "2")]
    pub ok: bool,
    /// Stable code on failure: `BadRequest`, `AuthFailed`, `NotFound`, `DeviceMismatch`,
    /// `TooLarge`, `QueueFull`, `RateLimited`, `BadCode`, `AlreadyRegistered`, `Conflict`,
    /// `LinkExpired`, `Internal`.
    #[prost(string, tag = "3")]
    pub error_code: String,
    #[prost(string, tag = "4")]
    pub error: String,
    #[prost(message, optional, tag = "5")]
    pub bundle: Option<Bundle>,
    #[prost(uint32, repeated, tag = "6")]
    pub devices: Vec<u32>,
    #[prost(uint32, repeated, tag = "7")]
    pub missing_devices: Vec<u32>,
    #[prost(uint32, repeated, tag = "8")]
    pub extra_devices: Vec<u32>,
    #[prost(uint64, repeated, tag = "9")]
    pub message_ids: Vec<u64>,
    /// One-time prekeys left for the authenticated device (refill below 10).
    #[prost(uint32, tag = "10")]
    pub prekeys_left: u32,
    /// Answer to `Discover`.
    #[prost(message, repeated, tag = "11")]
    pub found: Vec<DirectoryEntry>,
    /// The blob (`BlobPut`, `BlobGet`).
    #[prost(bytes = "vec", tag = "12")]
    pub blob_id: Vec<u8>,
    /// Bytes stored so far (`BlobPut`, also on an offset error) or the blob's size
    /// (`BlobGet`).
    #[prost(uint64, tag = "13")]
    pub blob_size: u64,
    /// The bytes read (`BlobGet`).
    #[prost(bytes = "vec", tag = "14")]
    pub blob_data: Vec<u8>,
    /// `LinkStart`: the first link reference and when it expires (ms).
    #[prost(bytes = "vec", tag = "15")]
    pub link_ref: Vec<u8>,
    #[prost(uint64, tag = "16")]
    pub link_expires_ms: u64,
    /// `GetDevices`: the account's signed device list (empty if none) and each
    /// companion's signed identity.
    #[prost(bytes = "vec", tag = "17")]
    pub device_list: Vec<u8>,
    #[prost(message, repeated, tag = "18")]
    pub identities: Vec<DeviceIdentityEntry>,
    /// `AppStateGet`: patches in order, the latest version, the snapshot and its version.
    #[prost(message, repeated, tag = "19")]
    pub patches: Vec<VersionedBlob>,
    #[prost(uint64, tag = "20")]
    pub latest_version: u64,
    #[prost(message, optional, tag = "21")]
    pub snapshot: Option<VersionedBlob>,
    /// `LinkFinish`: the device's address now.
    #[prost(string, tag = "22")]
    pub user: String,
    #[prost(uint32, tag = "23")]
    pub device_id: u32,
}

/// A queued message handed to its recipient device; the id is the envelope id.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Deliver {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(string, tag = "2")]
    pub from_user: String,
    #[prost(uint32, tag = "3")]
    pub from_device: u32,
    #[prost(uint32, tag = "4")]
    pub message_type: u32,
    #[prost(bytes = "vec", tag = "5")]
    pub payload: Vec<u8>,
    #[prost(uint64, tag = "6")]
    pub server_time_ms: u64,
    /// Not stored by the relay (id 0): not acknowledged.
    #[prost(bool, tag = "7")]
    pub ephemeral: bool,
}

/// To a sender: the message `id` reached the device (it acknowledged it). Kept by the
/// relay and pushed on every connection until the sender acknowledges `receipt_id`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Receipt {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(string, tag = "2")]
    pub to_user: String,
    #[prost(uint32, tag = "3")]
    pub to_device: u32,
    #[prost(uint64, tag = "4")]
    pub receipt_id: u64,
    /// The message was not delivered: it expired in the mailbox (the device did not
    /// connect in time) and was deleted.
    #[prost(bool, tag = "5")]
    pub expired: bool,
}
