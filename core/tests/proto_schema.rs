//! The published schema (`core/proto/*.proto`) against the Rust prost types, so the two
//! cannot drift apart: the .proto files are compiled here (protox, pure Rust) and every
//! Rust message is read through its descriptor.
//!
//! For each public message type, samples with every field set to a distinctive value
//! (every oneof variant once) are encoded with prost and decoded as a
//! `DynamicMessage`: no field may be unknown to the schema, each Rust field must be
//! found by name with the value that was set (same type, `optional` exactly where Rust
//! has an `Option`, `repeated` where it has a `Vec`, oneof variants in the oneof of the
//! same name), and the dynamic message must encode to the same bytes (so packed-ness
//! agrees) that decode to an equal Rust value. Every schema field must have been named
//! by a Rust field, and every field number the Rust type decodes must be in the schema.
//! The private storage records are checked through records the Rust code writes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed assumption is a failed test

use std::collections::{BTreeMap, BTreeSet};

use pawl_core::appstate::proto::{self as appstate, Operation};
use pawl_core::appstate::{CollectionState, Mutation, SyncKey};
use pawl_core::devices::{adv, link};
use pawl_core::history;
use pawl_core::keys::{generate_registration_id, IdentityKeyPair, PreKeyBundle};
use pawl_core::store::{InMemProtocolStore, PreKeyStore, SessionStore, SignedPreKeyStore};
use pawl_core::wire::content::{self, Body};
use pawl_core::wire::proto as signal;
use pawl_core::wire::relay::{self, ClientKind, RelayKind};
use pawl_core::{
    message_decrypt, message_encrypt, process_prekey_bundle, PreKeyRecord, ProtocolAddress,
    SenderKeyRecord, SessionRecord, SignedPreKeyRecord,
};
use prost::encoding::{decode_key, decode_varint, encode_key, skip_field, DecodeContext, WireType};
use prost::Message;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, MessageDescriptor, ReflectMessage, Value,
};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// The schema package of a concern: `core/proto/relay.proto` is `pawl.relay.v1`.
fn package(concern: &str) -> String {
    format!("pawl.{concern}.v1")
}

/// Field numbers probed on the Rust side (the schema's highest must be below).
const PROBED_TAGS: u32 = 2047;

/// Every .proto file in core/proto, compiled.
fn schema() -> DescriptorPool {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/proto");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f.ends_with(".proto"))
        .collect();
    files.sort();
    assert!(files.len() >= 7, "core/proto holds {files:?}");
    protox::Compiler::new([dir])
        .unwrap()
        .open_files(&files)
        .unwrap_or_else(|e| panic!("core/proto does not compile: {e:?}"))
        .descriptor_pool()
}

/// A Rust field's value as the schema must read it.
#[derive(Debug)]
enum V {
    /// A plain scalar (implicit presence).
    Plain(Value),
    /// A Rust `Option`: the schema field must track presence.
    Present(Box<V>),
    /// A nested message, compared by its encoding (its own fields are checked where it
    /// is sampled).
    Msg(Vec<u8>),
    /// A `Vec`: a repeated field.
    List(Vec<V>),
    /// A oneof variant: the field it names (snake_case of the variant), its number and
    /// its payload.
    OneOf(String, u32, Vec<u8>),
}

/// How a Rust field value reads in the schema.
trait Expect {
    fn expect(&self) -> V;
}

/// A distinctive non-default value for a Rust field (`n` counts up, so no two fields
/// of a sample hold the same value: swapped field numbers show).
trait Distinct {
    fn distinct(n: &mut u64) -> Self;
}

fn next(n: &mut u64) -> u64 {
    *n += 1;
    *n
}

macro_rules! scalars {
    ($($t:ty => $variant:ident, |$n:ident| $make:expr;)*) => {$(
        impl Expect for $t {
            fn expect(&self) -> V {
                V::Plain(Value::$variant(self.clone().into()))
            }
        }
        impl Distinct for $t {
            fn distinct(n: &mut u64) -> Self {
                let $n = next(n);
                $make
            }
        }
    )*};
}

scalars! {
    u32 => U32, |n| 1_000 + n as u32;
    u64 => U64, |n| (1 << 40) + n;
    // Negative: a sint (zigzag) field in the schema would read another number.
    i32 => I32, |n| -1_000 - n as i32;
    i64 => I64, |n| -(1 << 40) - n as i64;
    bool => Bool, |_n| true;
    String => String, |n| format!("s{n}-ü");
    // Not UTF-8: a `string` field in the schema would refuse it.
    Vec<u8> => Bytes, |n| vec![0xb0, n as u8, 0xff];
}

impl<T: Expect> Expect for Option<T> {
    fn expect(&self) -> V {
        let inner = self.as_ref().expect("samples set every Option");
        V::Present(Box::new(inner.expect()))
    }
}

impl<T: Distinct> Distinct for Option<T> {
    fn distinct(n: &mut u64) -> Self {
        Some(T::distinct(n))
    }
}

impl<T: Expect> Expect for Vec<T> {
    fn expect(&self) -> V {
        V::List(self.iter().map(Expect::expect).collect())
    }
}

impl<T: Distinct> Distinct for Vec<T> {
    fn distinct(n: &mut u64) -> Self {
        vec![T::distinct(n), T::distinct(n)]
    }
}

/// Message types that appear as fields of other messages.
macro_rules! nested {
    ($($t:ty),* $(,)?) => {$(
        impl Expect for $t {
            fn expect(&self) -> V {
                V::Msg(self.encode_to_vec())
            }
        }
    )*};
}

nested!(
    relay::PreKey,
    relay::UploadKeys,
    relay::Bundle,
    relay::OutEnvelope,
    relay::DirectoryEntry,
    relay::DeviceIdentityEntry,
    relay::VersionedBlob,
    content::AppStateKey,
    signal::LogicalFingerprint,
    appstate::SyncdMutation,
    appstate::SyncdRecord,
    appstate::SyncActionValue,
    appstate::MarkReadAction,
    appstate::ArchiveAction,
    appstate::MuteAction,
    appstate::PinAction,
    appstate::ContactAction,
    appstate::SettingAction,
    history::HistoryMessage,
);

/// Oneof enums: the variant (by its `Debug` name) and its encoding.
macro_rules! oneofs {
    ($($t:ty),* $(,)?) => {$(
        impl Expect for $t {
            fn expect(&self) -> V {
                let mut bytes = Vec::new();
                self.encode(&mut bytes);
                let debug = format!("{self:?}");
                let variant = debug.split('(').next().unwrap_or_default();
                let [(number, field)] = <[_; 1]>::try_from(fields_of(&bytes)).unwrap();
                V::OneOf(snake_case(variant), number, payload(&field))
            }
        }
    )*};
}

oneofs!(ClientKind, RelayKind, Body);

/// `LinkOffer` -> `link_offer` (how prost names a oneof variant after its field).
fn snake_case(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The top-level fields of an encoding, each `(number, its bytes with the key)`.
fn fields_of(mut bytes: &[u8]) -> Vec<(u32, Vec<u8>)> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let start = bytes;
        let (number, wire_type) = decode_key(&mut bytes).unwrap();
        skip_field(wire_type, number, &mut bytes, DecodeContext::default()).unwrap();
        out.push((number, start[..start.len() - bytes.len()].to_vec()));
    }
    out
}

/// The fields sorted by number (stable: repeated elements keep their order). prost
/// writes fields in declaration order, a `DynamicMessage` in number order; the bytes of
/// each field must agree.
fn canonical(bytes: &[u8]) -> Vec<(u32, Vec<u8>)> {
    let mut fields = fields_of(bytes);
    fields.sort_by_key(|f| f.0);
    fields
}

/// The payload of one length-delimited field (its bytes with the key).
fn payload(mut field: &[u8]) -> Vec<u8> {
    decode_key(&mut field).unwrap();
    let len = decode_varint(&mut field).unwrap();
    assert_eq!(len, field.len() as u64);
    field.to_vec()
}

/// The field numbers a Rust message type decodes: a varint probe at each number is
/// either kept (a varint field) or refused (a field of another wire type); prost skips
/// numbers it does not know.
fn rust_tags<M: Message + Default>() -> BTreeSet<u32> {
    (1..=PROBED_TAGS)
        .filter(|&tag| {
            let mut probe = Vec::new();
            encode_key(tag, WireType::Varint, &mut probe);
            probe.push(1);
            M::decode(probe.as_slice()).map_or(true, |m| !m.encode_to_vec().is_empty())
        })
        .collect()
}

/// Whether bytes decode to the Rust value that was encoded.
type DecodesBack = Box<dyn Fn(&[u8]) -> bool>;

/// One Rust value to read through the schema.
struct Sample {
    message: String,
    bytes: Vec<u8>,
    fields: Vec<(&'static str, V)>,
    decodes_back: DecodesBack,
    rust_tags: fn() -> BTreeSet<u32>,
}

/// The samples of one schema package.
struct Samples {
    package: String,
    /// Counts up for [`Distinct`].
    n: u64,
    list: Vec<Sample>,
}

impl Samples {
    fn new(concern: &str) -> Self {
        Samples {
            package: package(concern),
            n: 0,
            list: Vec::new(),
        }
    }

    /// Record `value` (Rust type `rust_type`) and hand it back for use in other samples.
    fn add<M>(&mut self, rust_type: &str, value: M, fields: Vec<(&'static str, V)>) -> M
    where
        M: Message + Default + PartialEq + Clone + 'static,
    {
        // The Rust `*Proto` structs are the schema's messages (the unsuffixed Rust
        // names are the framed types).
        let name = rust_type.rsplit("::").next().unwrap().trim();
        let name = name.strip_suffix("Proto").unwrap_or(name);
        let expected = value.clone();
        self.list.push(Sample {
            message: format!("{}.{name}", self.package),
            bytes: value.encode_to_vec(),
            fields,
            decodes_back: Box::new(move |b| M::decode(b).ok().as_ref() == Some(&expected)),
            rust_tags: rust_tags::<M>,
        });
        value
    }
}

/// `sample!(s; path::Type { field, field: value, ... })`: builds the value (a field
/// without a value gets a distinctive one, unlike Rust's shorthand), records it with
/// each field's name and expected reading, and evaluates to the value. The struct
/// literal makes the compiler check that every Rust field is listed. (The `;` keeps
/// rustfmt from spreading the field lists over a line each.)
macro_rules! sample {
    ($s:ident; $($ty:ident)::+ { $($field:ident $(: $value:expr)?),* $(,)? }) => {{
        let value = $($ty)::+ { $($field: field_value!($s $(, $value)?)),* };
        let fields = vec![$((stringify!($field), Expect::expect(&value.$field))),*];
        $s.add(stringify!($($ty)::+), value, fields)
    }};
}

macro_rules! field_value {
    ($s:ident) => {
        Distinct::distinct(&mut $s.n)
    };
    ($s:ident, $value:expr) => {
        $value
    };
}

fn signal_samples() -> Vec<Sample> {
    let mut s = Samples::new("signal");
    sample!(s; signal::SignalMessageProto { ratchet_key, counter, previous_counter, ciphertext });
    sample!(s; signal::PreKeySignalMessageProto {
        pre_key_id, base_key, identity_key, message, registration_id, signed_pre_key_id
    });
    sample!(s; signal::SenderKeyMessageProto { id, iteration, ciphertext });
    sample!(s; signal::SenderKeyDistributionMessageProto { id, iteration, chain_key, signing_key });
    let local = sample!(s; signal::LogicalFingerprint { content, identifier });
    let remote = sample!(s; signal::LogicalFingerprint { content, identifier });
    sample!(s; signal::CombinedFingerprints {
        version, local_fingerprint: Some(local), remote_fingerprint: Some(remote)
    });
    s.list
}

fn relay_requests(s: &mut Samples) {
    let one_time = (0..2)
        .map(|_| sample!(s; relay::PreKey { id, public_key }))
        .collect();
    let keys = sample!(s; relay::UploadKeys {
        signed_prekey_id, signed_prekey, signed_prekey_signature, prekeys: one_time
    });
    let out = (0..2)
        .map(|_| sample!(s; relay::OutEnvelope { device_id, message_type, payload }))
        .collect();
    let requests = vec![
        ClientKind::Auth(sample!(s; relay::Auth {
            user, device_id, identity_key, registration_id, signature
        })),
        ClientKind::UploadKeys(keys.clone()),
        ClientKind::FetchBundle(sample!(s; relay::FetchBundle { user, device_id })),
        ClientKind::Send(sample!(s; relay::Send {
            to_user, envelopes: out, ephemeral, unverified
        })),
        ClientKind::Ack(sample!(s; relay::Ack { ids, receipt_ids })),
        ClientKind::GetDevices(sample!(s; relay::GetDevices { user })),
        ClientKind::RequestCode(sample!(s; relay::RequestCode { phone })),
        ClientKind::Register(sample!(s; relay::Register {
            phone, code, device_id, identity_key, registration_id, signature
        })),
        ClientKind::Discover(sample!(s; relay::Discover { prefixes })),
        ClientKind::BlobPut(sample!(s; relay::BlobPut { blob_id, offset, data, done })),
        ClientKind::BlobGet(sample!(s; relay::BlobGet { blob_id, offset, max_len })),
        ClientKind::LinkStart(sample!(s; relay::LinkStart {
            identity_key, registration_id, signature
        })),
        ClientKind::LinkOffer(sample!(s; relay::LinkOfferRequest { link_ref, device_id, offer })),
        ClientKind::LinkFinish(sample!(s; relay::LinkFinish {
            signed_identity, device_list, keys: Some(keys)
        })),
        ClientKind::RemoveDevice(sample!(s; relay::RemoveDevice { device_id, device_list })),
        ClientKind::PutDeviceList(sample!(s; relay::PutDeviceList { device_list })),
        ClientKind::AppStatePut(sample!(s; relay::AppStatePut {
            collection, version, patch, snapshot
        })),
        ClientKind::AppStateGet(sample!(s; relay::AppStateGet {
            collection, after_version, want_snapshot
        })),
    ];
    for kind in requests {
        sample!(s; relay::ClientFrame { request_id, kind: Some(kind) });
    }
}

fn relay_pushes(s: &mut Samples) {
    let prekey = sample!(s; relay::PreKey { id, public_key });
    let bundle = sample!(s; relay::Bundle {
        registration_id, device_id, identity_key, signed_prekey_id, signed_prekey,
        signed_prekey_signature, prekey: Some(prekey)
    });
    let entries = (0..2)
        .map(|_| sample!(s; relay::DirectoryEntry { hash, user }))
        .collect();
    let known = (0..2)
        .map(|_| sample!(s; relay::DeviceIdentityEntry { device_id, signed_identity }))
        .collect();
    let mut blobs: Vec<_> = (0..3)
        .map(|_| sample!(s; relay::VersionedBlob { version, data }))
        .collect();
    let last = blobs.pop();
    let response = sample!(s; relay::Response {
        request_id, ok, error_code, error, bundle: Some(bundle), devices, missing_devices,
        extra_devices, message_ids, prekeys_left, found: entries, blob_id, blob_size, blob_data,
        link_ref, link_expires_ms, device_list, identities: known, patches: blobs,
        latest_version, snapshot: last, user, device_id
    });
    let pushes = vec![
        RelayKind::Challenge(sample!(s; relay::Challenge { nonce })),
        RelayKind::Response(response),
        RelayKind::Deliver(sample!(s; relay::Deliver {
            id, from_user, from_device, message_type, payload, server_time_ms, ephemeral
        })),
        RelayKind::Receipt(sample!(s; relay::Receipt {
            id, to_user, to_device, receipt_id, expired
        })),
        RelayKind::KeysLow(sample!(s; relay::KeysLow { prekeys_left })),
        RelayKind::LinkCode(sample!(s; relay::LinkCode { link_ref, expires_ms })),
        RelayKind::LinkOffered(sample!(s; relay::LinkOffered { user, device_id, offer })),
        RelayKind::DevicesChanged(sample!(s; relay::DevicesChanged { device_id, removed })),
        RelayKind::AppStateChanged(sample!(s; relay::AppStateChanged { collection, version })),
    ];
    for kind in pushes {
        sample!(s; relay::RelayFrame { kind: Some(kind) });
    }
}

fn relay_samples() -> Vec<Sample> {
    let mut s = Samples::new("relay");
    relay_requests(&mut s);
    relay_pushes(&mut s);
    s.list
}

fn content_samples() -> Vec<Sample> {
    let mut s = Samples::new("content");
    let shared = (0..2)
        .map(|_| sample!(s; content::AppStateKey { id, data }))
        .collect();
    sample!(s; content::GroupEnvelope { group_id, message, key_type, key });
    let bodies = vec![
        Body::Text(sample!(s; content::Text { body, sent_at })),
        Body::Receipt(sample!(s; content::ReceiptContent { kind, sent_at })),
        Body::Typing(sample!(s; content::Typing { started })),
        Body::Presence(sample!(s; content::Presence { online })),
        Body::Media(sample!(s; content::MediaContent {
            kind, blob_id, media_key, file_sha256, file_enc_sha256, file_length, mime_type,
            file_name, caption, thumbnail, width, height, sent_at
        })),
        Body::Sent(sample!(s; content::SentTranscript { destination, content })),
        Body::KeyShare(sample!(s; content::AppStateKeyShare {
            keys: shared, current, expired_epoch
        })),
        Body::History(sample!(s; content::HistoryNotice {
            blob_id, media_key, file_sha256, file_enc_sha256, file_length, chunk_order, chunks
        })),
        Body::GroupUpdate(sample!(s; content::GroupUpdate {
            group_id, version, name, members, admins
        })),
        Body::SenderKey(sample!(s; content::SenderKeyShare { group_id, distribution })),
    ];
    for body in bodies {
        sample!(s; content::Content { body: Some(body), device_list_version });
    }
    s.list
}

fn devices_samples() -> Vec<Sample> {
    let mut s = Samples::new("devices");
    sample!(s; adv::DeviceIdentityDetails {
        user, device_id, timestamp_ms, key_index, identity_key
    });
    sample!(s; adv::SignedDeviceIdentity {
        details, account_signature_key, account_signature, device_signature
    });
    sample!(s; adv::DeviceListData { user, version, timestamp_ms, current_index, valid_indexes });
    sample!(s; adv::SignedDeviceList { details, account_signature });
    sample!(s; link::LinkOffer { identity, device_list, ephemeral, mac });
    s.list
}

fn appstate_samples() -> Vec<Sample> {
    let mut s = Samples::new("appstate");
    let value = sample!(s; appstate::SyncActionValue {
        timestamp,
        mark_read: Some(sample!(s; appstate::MarkReadAction { read })),
        archive: Some(sample!(s; appstate::ArchiveAction { archived })),
        mute: Some(sample!(s; appstate::MuteAction { muted, until_ms })),
        pin: Some(sample!(s; appstate::PinAction { pinned })),
        contact: Some(sample!(s; appstate::ContactAction { full_name })),
        setting: Some(sample!(s; appstate::SettingAction { value }))
    });
    sample!(s; appstate::SyncActionData { index, value: Some(value), padding, version });
    let stored: Vec<_> = (0..2)
        .map(|_| sample!(s; appstate::SyncdRecord { index, value, key_id }))
        .collect();
    let changes = stored
        .iter()
        .map(|r| {
            sample!(s; appstate::SyncdMutation {
                operation: Operation::Remove as i32, record: Some(r.clone())
            })
        })
        .collect();
    sample!(s; appstate::SyncdPatch {
        version, mutations: changes, snapshot_mac, patch_mac, key_id, device_index
    });
    sample!(s; appstate::SyncdSnapshot { version, records: stored, mac, key_id });
    s.list
}

fn history_samples() -> Vec<Sample> {
    let mut s = Samples::new("history");
    let chunk = (0..2)
        .map(|_| {
            sample!(s; history::HistoryMessage {
                peer, sender, sender_device, outgoing, body, sent_at, received_at, status
            })
        })
        .collect();
    sample!(s; history::HistoryChunk { chunk_order, messages: chunk });
    s.list
}

fn samples() -> Vec<Sample> {
    [
        signal_samples(),
        relay_samples(),
        content_samples(),
        devices_samples(),
        appstate_samples(),
        history_samples(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The schema's message `name`.
fn message(pool: &DescriptorPool, name: &str) -> MessageDescriptor {
    pool.get_message_by_name(name)
        .unwrap_or_else(|| panic!("{name}: not in core/proto"))
}

/// `bytes` read as `desc`: every field (nested ones too) known to the schema, and the
/// dynamic message encodes to the same fields.
fn read(desc: &MessageDescriptor, bytes: &[u8]) -> DynamicMessage {
    let name = desc.full_name();
    let m = DynamicMessage::decode(desc.clone(), bytes)
        .unwrap_or_else(|e| panic!("{name}: the schema cannot read the Rust encoding: {e}"));
    no_unknown_fields(&m);
    let (again, rust) = (canonical(&m.encode_to_vec()), canonical(bytes));
    let differ: BTreeSet<u32> = again
        .iter()
        .zip(&rust)
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a.0)
        .collect();
    assert!(
        again.len() == rust.len() && differ.is_empty(),
        "{name}: the schema encodes fields {differ:?} differently (packed? presence? type?)"
    );
    m
}

/// `m` and the messages inside it have no field the schema lacks.
fn no_unknown_fields(m: &DynamicMessage) {
    let unknown: Vec<_> = m.unknown_fields().map(|f| f.number()).collect();
    let name = m.descriptor().full_name().to_owned();
    assert!(
        unknown.is_empty(),
        "{name}: field numbers {unknown:?} are not in the schema"
    );
    for n in nested(m) {
        no_unknown_fields(&n);
    }
}

/// The messages directly inside `m`.
fn nested(m: &DynamicMessage) -> Vec<DynamicMessage> {
    m.fields()
        .flat_map(|(_, value)| match value {
            Value::Message(n) => vec![n.clone()],
            Value::List(l) => l.iter().filter_map(|v| v.as_message().cloned()).collect(),
            _ => vec![],
        })
        .collect()
}

/// A field of a oneof that is not proto3's synthetic one for `optional`.
fn real_oneof(fd: &FieldDescriptor) -> Option<String> {
    let synthetic = fd.field_descriptor_proto().proto3_optional();
    fd.containing_oneof()
        .filter(|_| !synthetic)
        .map(|o| o.name().to_owned())
}

/// Checks one Rust field against the schema; returns the schema field it names.
fn check_field(desc: &MessageDescriptor, m: &DynamicMessage, rust_field: &str, v: &V) -> String {
    let at = format!("{}.{rust_field}", desc.full_name());
    let (name, oneof) = match v {
        V::Present(inner) => match &**inner {
            V::OneOf(variant, number, _) => (variant.as_str(), Some((rust_field, *number))),
            _ => (rust_field, None),
        },
        _ => (rust_field, None),
    };
    let fd = desc
        .get_field_by_name(name)
        .unwrap_or_else(|| panic!("{at}: the schema has no field `{name}`"));
    assert_eq!(
        real_oneof(&fd),
        oneof.map(|o| o.0.to_owned()),
        "{at}: `{name}` is not in the oneof of that name"
    );
    if let Some((_, number)) = oneof {
        assert_eq!(fd.number(), number, "{at}: `{name}`'s number");
    }
    assert!(m.has_field(&fd), "{at}: `{name}` reads as unset");
    let value = m.get_field(&fd);
    match v {
        V::Plain(_) => assert!(
            !fd.is_list() && !fd.supports_presence(),
            "{at}: a plain field in Rust, so neither `optional` nor `repeated` in a proto3 schema"
        ),
        V::Present(inner) if matches!(**inner, V::OneOf(..)) => {}
        V::Present(_) => assert!(
            !fd.is_list() && fd.supports_presence(),
            "{at}: an Option in Rust, so `optional` (or a message) in the schema"
        ),
        V::List(items) => {
            assert!(
                fd.is_list(),
                "{at}: a Vec in Rust, so `repeated` in the schema"
            );
            let list = value.as_list().unwrap();
            assert_eq!(list.len(), items.len(), "{at}: elements");
            list.iter().zip(items).for_each(|(a, b)| same(&at, a, b));
            return name.to_owned();
        }
        V::Msg(_) | V::OneOf(..) => panic!("{at}: a message field outside an Option or Vec"),
    }
    same(&at, &value, v);
    name.to_owned()
}

/// The schema's reading `a` is the Rust value `b`.
fn same(at: &str, a: &Value, b: &V) {
    match (a, b) {
        (_, V::Present(inner)) => same(at, a, inner),
        // prost keeps an enum field as i32.
        (Value::EnumNumber(x), V::Plain(Value::I32(y))) => assert_eq!(x, y, "{at}"),
        (_, V::Plain(x)) => assert_eq!(a, x, "{at}: wrong type or value"),
        (Value::Message(m), V::Msg(bytes)) => {
            assert_eq!(canonical(&m.encode_to_vec()), canonical(bytes), "{at}")
        }
        (Value::Message(m), V::OneOf(name, _, bytes)) => {
            assert_eq!(
                canonical(&m.encode_to_vec()),
                canonical(bytes),
                "{at}.{name}"
            )
        }
        _ => panic!("{at}: the schema reads {a:?}, Rust has {b:?}"),
    }
}

#[test]
fn every_rust_message_matches_the_schema() {
    let pool = schema();
    let mut named: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut probed = BTreeSet::new();
    for sample in samples() {
        let desc = message(&pool, &sample.message);
        let m = read(&desc, &sample.bytes);
        let names = named.entry(sample.message.clone()).or_default();
        for (rust_field, v) in &sample.fields {
            names.insert(check_field(&desc, &m, rust_field, v));
        }
        assert!(
            (sample.decodes_back)(&m.encode_to_vec()),
            "{}: the schema's encoding does not decode to the same Rust value",
            sample.message
        );
        if probed.insert(sample.message.clone()) {
            let schema: BTreeSet<u32> = desc.fields().map(|f| f.number()).collect();
            assert!(schema.iter().all(|&n| n < PROBED_TAGS));
            assert_eq!(
                (sample.rust_tags)(),
                schema,
                "{}: field numbers",
                sample.message
            );
        }
    }
    for (message_name, names) in &named {
        let schema: BTreeSet<String> = message(&pool, message_name)
            .fields()
            .map(|f| f.name().to_owned())
            .collect();
        assert_eq!(
            names, &schema,
            "{message_name}: fields named by Rust vs the schema's"
        );
    }
    let unsampled: Vec<String> = pool
        .all_messages()
        .map(|m| m.full_name().to_owned())
        .filter(|n| {
            n.starts_with("pawl.") && !n.starts_with(&package("storage")) && !named.contains_key(n)
        })
        .collect();
    assert!(
        unsampled.is_empty(),
        "schema messages without a Rust sample: {unsampled:?}"
    );
}

#[test]
fn enums_match_the_schema() {
    let pool = schema();
    let enums: Vec<String> = pool
        .all_enums()
        .map(|e| e.full_name().to_owned())
        .filter(|n| n.starts_with("pawl."))
        .collect();
    assert_eq!(
        enums,
        [format!("{}.Operation", package("appstate"))],
        "enums without a check"
    );
    let desc = pool.get_enum_by_name(&enums[0]).unwrap();
    let rust = |n: i32| Operation::try_from(n).ok().map(|o| format!("{o:?}"));
    for v in desc.values() {
        let name = rust(v.number()).map(|r| snake_case(&r).to_uppercase());
        assert_eq!(
            name.as_deref(),
            Some(v.name()),
            "Operation = {}",
            v.number()
        );
    }
    for n in -64..=64 {
        assert_eq!(
            rust(n).is_some(),
            desc.get_value(n).is_some(),
            "Operation = {n}"
        );
    }
    // prost keeps an enum field as an i32 (`enumeration = "Operation"`), so the fields
    // that are enums in the schema are listed here by hand.
    let enum_fields: Vec<String> = pool
        .all_messages()
        .flat_map(|m| m.fields().collect::<Vec<_>>())
        .filter_map(|f| {
            Some(format!(
                "{} {}",
                f.full_name(),
                f.kind().as_enum()?.full_name()
            ))
        })
        .collect();
    let appstate = package("appstate");
    let operation = format!("{appstate}.SyncdMutation.operation {appstate}.Operation");
    assert_eq!(enum_fields, [operation]);
}

/// Notes which schema fields a stored record (as read) sets, in it and the messages
/// inside it.
fn read_stored(m: &DynamicMessage, set: &mut BTreeMap<String, BTreeSet<String>>) {
    let fields = set
        .entry(m.descriptor().full_name().to_owned())
        .or_default();
    fields.extend(m.fields().map(|(fd, _)| fd.name().to_owned()));
    for n in nested(m) {
        read_stored(&n, set);
    }
}

/// How the Rust code reads a stored record back and writes it again.
type Reread = fn(&[u8]) -> Vec<u8>;

/// Sessions (current and archived states, a pending prekey, skipped keys), sender-key
/// records (own and received) and prekeys as the Rust code stores them.
fn stored_keys(rng: &mut ChaCha20Rng) -> Vec<(&'static str, Vec<u8>, Reread)> {
    let alice_id = IdentityKeyPair::generate(rng);
    let mut alice = InMemProtocolStore::new(alice_id, generate_registration_id(rng));
    let bob_id = IdentityKeyPair::generate(rng);
    let bob_registration = generate_registration_id(rng);
    let mut bob = InMemProtocolStore::new(bob_id.clone(), bob_registration);
    let (a, b) = (
        ProtocolAddress::new("alice", 1),
        ProtocolAddress::new("bob", 1),
    );
    let spk = SignedPreKeyRecord::generate(7, 1_700_000_000_000, &bob_id, rng);
    bob.save_signed_pre_key(&spk).unwrap();
    let bundle = |bob: &mut InMemProtocolStore, id: u32, rng: &mut ChaCha20Rng| {
        let pk = PreKeyRecord::generate(id, rng);
        bob.save_pre_key(&pk).unwrap();
        PreKeyBundle {
            registration_id: bob_registration,
            device_id: 1,
            prekey: Some((pk.id, pk.key_pair.public)),
            signed_prekey_id: spk.id,
            signed_prekey: spk.key_pair.public,
            signed_prekey_signature: spk.signature.to_vec(),
            identity_key: *bob_id.identity_key(),
        }
    };
    let first = bundle(&mut bob, 3, rng);
    process_prekey_bundle(&mut alice, &b, &first, rng).unwrap();
    let sent: Vec<_> = (0..3)
        .map(|_| message_encrypt(&mut alice, &b, b"hi").unwrap())
        .collect();
    // The last first: two skipped message keys.
    message_decrypt(&mut bob, &a, &sent[2], rng).unwrap();
    let reply = message_encrypt(&mut bob, &a, b"ho").unwrap();
    message_decrypt(&mut alice, &b, &reply, rng).unwrap();
    message_encrypt(&mut alice, &b, b"again").unwrap();
    // A new session (with one-time prekey 0: `optional` shows) archives the old one.
    let second = bundle(&mut bob, 0, rng);
    process_prekey_bundle(&mut alice, &b, &second, rng).unwrap();
    let session = |s: &InMemProtocolStore, who| s.load_session(who).unwrap().unwrap().serialize();

    let mut own = SenderKeyRecord::new();
    let distribution = own.rotate(rng);
    let group: Vec<_> = (0..3).map(|_| own.encrypt(b"all", rng).unwrap()).collect();
    let mut received = SenderKeyRecord::new();
    received.process_distribution(&distribution).unwrap();
    received.decrypt(group[2].serialized()).unwrap();

    let session_again: Reread = |b| SessionRecord::deserialize(b).unwrap().serialize();
    let sender_key_again: Reread = |b| SenderKeyRecord::deserialize(b).unwrap().serialize();
    vec![
        ("SessionRecord", session(&alice, &b), session_again),
        ("SessionRecord", session(&bob, &a), session_again),
        ("SenderKeyRecord", own.serialize(), sender_key_again),
        ("SenderKeyRecord", received.serialize(), sender_key_again),
        (
            "PreKeyRecord",
            PreKeyRecord::generate(9, rng).serialize(),
            |b| PreKeyRecord::deserialize(b).unwrap().serialize(),
        ),
        ("PreKeyRecord", spk.serialize(), |b| {
            SignedPreKeyRecord::deserialize(b).unwrap().serialize()
        }),
    ]
}

/// An app-state collection with a record, as the Rust code stores it.
fn stored_collection(rng: &mut ChaCha20Rng) -> (&'static str, Vec<u8>, Reread) {
    let value = appstate::SyncActionValue {
        timestamp: Some(1_700_000_000_000),
        mute: Some(appstate::MuteAction {
            muted: Some(true),
            until_ms: Some(1_800_000_000_000),
        }),
        ..Default::default()
    };
    let key = SyncKey::generate(1, 1, rng);
    let mut state = CollectionState::new("regular_high");
    let index = vec!["mute".to_owned(), "+4915100000001".to_owned()];
    let patch = state
        .prepare_patch(&[Mutation::set(index, value)], &key, 1, rng)
        .unwrap();
    patch.commit(&mut state).unwrap();
    ("CollectionState", state.encode(), |b| {
        CollectionState::decode(b).unwrap().encode()
    })
}

#[test]
fn stored_records_match_the_schema() {
    let pool = schema();
    let mut rng = ChaCha20Rng::seed_from_u64(13);
    let mut records = stored_keys(&mut rng);
    records.push(stored_collection(&mut rng));
    let mut set = BTreeMap::new();
    for (name, bytes, reread) in &records {
        let desc = message(&pool, &format!("{}.{name}", package("storage")));
        read_stored(&read(&desc, bytes), &mut set);
        // What the schema writes, the Rust code reads back to the same record.
        let again = DynamicMessage::decode(desc, bytes.as_slice())
            .unwrap()
            .encode_to_vec();
        assert_eq!(canonical(&reread(&again)), canonical(bytes), "{name}");
    }
    // Every field of every storage message is written by the Rust code.
    for desc in pool
        .all_messages()
        .filter(|m| m.package_name() == package("storage"))
    {
        let schema: BTreeSet<String> = desc.fields().map(|f| f.name().to_owned()).collect();
        let written = set.get(desc.full_name()).cloned().unwrap_or_default();
        assert_eq!(
            written,
            schema,
            "{}: fields the Rust records set",
            desc.full_name()
        );
    }
}

#[test]
fn each_file_is_one_package() {
    let pool = schema();
    for f in pool.files() {
        let concern = f.name().strip_suffix(".proto").unwrap();
        assert_eq!(f.package_name(), package(concern), "{}", f.name());
    }
}
