//! Pawl's own vectors: `test-vectors/pawl-session-v3.json`, a full recorded session.
//!
//! Schema: `parties.{alice,bob}` hold the static keys (hex) and `rng_draws`, every
//! random byte string each party drew, in order. Pawl draws 32 bytes per generated key
//! (then clamps: `k[0] &= 248; k[31] &= 127; k[31] |= 64`) and 64 bytes per XEdDSA
//! signature. Order in this script: identity key, signed prekey, its signature,
//! one-time prekey (bob); then per operation: `process_bundle` draws the base key then
//! the first sending ratchet key; a decrypt that meets a new ratchet key draws the next
//! ratchet key; a sender-key rotation draws chain id (4 bytes), chain key (32), signing
//! key (32); a group message draws 64 bytes for its signature. `messages` lists each
//! message with sender, type (2, 3, or "group"/"skdm"), hex bytes and plaintext, in
//! send order; `deliveries` is the order of receipt. Another implementation that
//! injects these draws as its randomness must produce the same bytes.
//!
//! `PAWL_WRITE_VECTORS=1 cargo test -p pawl-core --test pawl_vectors` rewrites the
//! file; otherwise a missing or different file fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed assumption is a failed test

use std::collections::VecDeque;

use pawl_core::keys::{IdentityKeyPair, PreKeyBundle, PreKeyRecord, SignedPreKeyRecord};
use pawl_core::store::{IdentityKeyStore, InMemProtocolStore, PreKeyStore, SignedPreKeyStore};
use pawl_core::*;
use rand::{CryptoRng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};

/// Records every draw (generation) or serves recorded draws (replay).
struct Rng {
    inner: Option<ChaCha20Rng>,
    log: Vec<Vec<u8>>,
    replay: VecDeque<Vec<u8>>,
}

impl Rng {
    fn recording(seed: u64) -> Self {
        Rng {
            inner: Some(ChaCha20Rng::seed_from_u64(seed)),
            log: vec![],
            replay: VecDeque::new(),
        }
    }
    fn replaying(draws: &[Value]) -> Self {
        let replay = draws
            .iter()
            .map(|d| hex::decode(d.as_str().unwrap()).unwrap())
            .collect();
        Rng {
            inner: None,
            log: vec![],
            replay,
        }
    }
}

impl RngCore for Rng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        match &mut self.inner {
            Some(r) => r.fill_bytes(dest),
            None => {
                let d = self.replay.pop_front().expect("more draws than recorded");
                assert_eq!(
                    d.len(),
                    dest.len(),
                    "draw of a different size than recorded"
                );
                dest.copy_from_slice(&d);
            }
        }
        self.log.push(dest.to_vec());
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for Rng {}

const GROUP: &[u8] = b"pawl-vector-group";

/// Runs the scripted session and returns the vector document.
fn run(mut ra: Rng, mut rb: Rng) -> Value {
    let (aa, ba) = (
        ProtocolAddress::new("alice", 1),
        ProtocolAddress::new("bob", 1),
    );
    let alice_id = IdentityKeyPair::generate(&mut ra);
    let bob_id = IdentityKeyPair::generate(&mut rb);
    let spk = SignedPreKeyRecord::generate(1, 1_700_000_000_000, &bob_id, &mut rb);
    let otk = PreKeyRecord::generate(31, &mut rb);
    let mut a = InMemProtocolStore::new(alice_id.clone(), 1111);
    let mut b = InMemProtocolStore::new(bob_id.clone(), 2222);
    b.save_signed_pre_key(&spk).unwrap();
    b.save_pre_key(&otk).unwrap();
    let bundle = PreKeyBundle::from_records(2222, 1, *bob_id.identity_key(), &spk, Some(&otk));
    process_prekey_bundle(&mut a, &ba, &bundle, &mut ra).unwrap();

    let mut messages = Vec::new();
    let mut deliveries = Vec::new();
    let send = |store: &mut InMemProtocolStore,
                from: &str,
                to: &ProtocolAddress,
                text: &str,
                out: &mut Vec<Value>| {
        let m = message_encrypt(store, to, text.as_bytes()).unwrap();
        out.push(json!({"index": out.len(), "from": from, "type": m.message_type(), "bytes": hex::encode(m.serialized()), "plaintext": text}));
        m
    };
    let recv = |store: &mut InMemProtocolStore,
                from: &ProtocolAddress,
                m: &CiphertextMessage,
                text: &str,
                rng: &mut Rng| {
        assert_eq!(
            message_decrypt(store, from, m, rng).unwrap(),
            text.as_bytes()
        );
    };
    let m0 = send(&mut a, "alice", &ba, "Hello Bob", &mut messages);
    let m1 = send(
        &mut a,
        "alice",
        &ba,
        "second, before any reply",
        &mut messages,
    );
    recv(&mut b, &aa, &m1, "second, before any reply", &mut rb);
    recv(&mut b, &aa, &m0, "Hello Bob", &mut rb);
    deliveries.extend([1, 0]);
    let m2 = send(&mut b, "bob", &aa, "Hi Alice", &mut messages);
    recv(&mut a, &ba, &m2, "Hi Alice", &mut ra);
    deliveries.push(2);
    let m3 = send(
        &mut a,
        "alice",
        &ba,
        "third, on a new ratchet key",
        &mut messages,
    );
    recv(&mut b, &aa, &m3, "third, on a new ratchet key", &mut rb);
    deliveries.push(3);
    let m4 = send(&mut b, "bob", &aa, "4a", &mut messages);
    let m5 = send(&mut b, "bob", &aa, "4b", &mut messages);
    recv(&mut a, &ba, &m5, "4b", &mut ra);
    recv(&mut a, &ba, &m4, "4a", &mut ra);
    deliveries.extend([5, 4]);
    let m6 = send(&mut a, "alice", &ba, "", &mut messages);
    recv(&mut b, &aa, &m6, "", &mut rb);
    deliveries.push(6);

    // Group: alice's distribution message, then two signed group messages.
    let skdm =
        create_sender_key_distribution_message(&mut a.sender_keys, &aa, GROUP, &mut ra).unwrap();
    messages.push(json!({"index": messages.len(), "from": "alice", "type": "skdm", "bytes": hex::encode(skdm.serialized()), "plaintext": ""}));
    process_sender_key_distribution_message(
        &mut b.sender_keys,
        &aa,
        GROUP,
        &SenderKeyDistributionMessage::parse(skdm.serialized()).unwrap(),
    )
    .unwrap();
    for text in ["group one", "group two"] {
        let g = group_encrypt(&mut a.sender_keys, &aa, GROUP, text.as_bytes(), &mut ra).unwrap();
        messages.push(json!({"index": messages.len(), "from": "alice", "type": "group", "bytes": hex::encode(g.serialized()), "plaintext": text}));
        assert_eq!(
            group_decrypt(&mut b.sender_keys, &aa, GROUP, g.serialized()).unwrap(),
            text.as_bytes()
        );
    }

    let fp = fingerprint::Fingerprint::new(
        fingerprint::ScannableVersion::V2,
        5200,
        b"alice",
        alice_id.identity_key(),
        b"bob",
        bob_id.identity_key(),
    )
    .unwrap();
    let _ = b.identity_key_pair().unwrap();
    json!({
        "about": "Pawl's recorded Signal v3 session. See core/tests/pawl_vectors.rs for the schema and the order of random draws.",
        "generator": "pawl-core core/tests/pawl_vectors.rs (ChaCha20 seeds 2026 for alice, 2027 for bob)",
        "parties": {
            "alice": {
                "identity_private": hex::encode(alice_id.private_key().to_bytes()),
                "identity_public": hex::encode(alice_id.identity_key().serialize()),
                "registration_id": 1111,
                "rng_draws": ra.log.iter().map(hex::encode).collect::<Vec<_>>(),
            },
            "bob": {
                "identity_private": hex::encode(bob_id.private_key().to_bytes()),
                "identity_public": hex::encode(bob_id.identity_key().serialize()),
                "registration_id": 2222,
                "signed_prekey": {"id": 1, "private": hex::encode(spk.key_pair.private.to_bytes()), "public": hex::encode(spk.key_pair.public.serialize()), "signature": hex::encode(spk.signature), "timestamp": spk.timestamp},
                "one_time_prekey": {"id": 31, "private": hex::encode(otk.key_pair.private.to_bytes()), "public": hex::encode(otk.key_pair.public.serialize())},
                "rng_draws": rb.log.iter().map(hex::encode).collect::<Vec<_>>(),
            }
        },
        "group_distribution_id": hex::encode(GROUP),
        "messages": messages,
        "deliveries": deliveries,
        "safety_number": {"alice_id": "alice", "bob_id": "bob", "iterations": 5200, "displayable": fp.displayable, "scannable_v2_alice": hex::encode(&fp.scannable)},
    })
}

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../test-vectors/pawl-session-v3.json"
);

#[test]
fn recorded_session_replays_byte_for_byte() {
    if std::env::var_os("PAWL_WRITE_VECTORS").is_some() {
        let v = run(Rng::recording(2026), Rng::recording(2027));
        std::fs::write(PATH, serde_json::to_string_pretty(&v).unwrap() + "\n").unwrap();
    }
    let recorded: Value =
        serde_json::from_str(&std::fs::read_to_string(PATH).expect("vector file present")).unwrap();
    let p = &recorded["parties"];
    let replayed = run(
        Rng::replaying(p["alice"]["rng_draws"].as_array().unwrap()),
        Rng::replaying(p["bob"]["rng_draws"].as_array().unwrap()),
    );
    assert_eq!(
        replayed["messages"], recorded["messages"],
        "message bytes differ from the recorded session"
    );
    assert_eq!(replayed, recorded);
    // The recording RNG is not needed: seeds reproduce the same draws.
    assert_eq!(run(Rng::recording(2026), Rng::recording(2027)), recorded);
}

#[test]
fn recorded_messages_decrypt_from_static_keys() {
    // Bob, built only from the recorded static keys (plus his recorded draws for the
    // ratchet keys he generates while receiving), decrypts Alice's recorded bytes.
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(PATH).expect("vector file present")).unwrap();
    let bob = &v["parties"]["bob"];
    let h = |x: &Value| hex::decode(x.as_str().unwrap()).unwrap();
    let bob_id = IdentityKeyPair::from_private(
        PrivateKey::from_bytes(&h(&bob["identity_private"])).unwrap(),
    );
    assert_eq!(
        hex::encode(bob_id.identity_key().serialize()),
        bob["identity_public"].as_str().unwrap()
    );
    let mut store = InMemProtocolStore::new(bob_id, 2222);
    let spk = &bob["signed_prekey"];
    let spk_pair = KeyPair::from_private(PrivateKey::from_bytes(&h(&spk["private"])).unwrap());
    store
        .save_signed_pre_key(&SignedPreKeyRecord {
            id: 1,
            timestamp: spk["timestamp"].as_u64().unwrap(),
            key_pair: spk_pair,
            signature: h(&spk["signature"]).try_into().unwrap(),
        })
        .unwrap();
    let otk = &bob["one_time_prekey"];
    store
        .save_pre_key(&PreKeyRecord {
            id: 31,
            key_pair: KeyPair::from_private(PrivateKey::from_bytes(&h(&otk["private"])).unwrap()),
        })
        .unwrap();
    // Skip the four static-key draws; the rest are Bob's ratchet keys.
    let mut rng = Rng::replaying(&bob["rng_draws"].as_array().unwrap()[4..]);
    let alice = ProtocolAddress::new("alice", 1);
    let msgs = v["messages"].as_array().unwrap();
    // Bob's side of the script: receive m1, m0, send m2, receive m3, send m4, m5,
    // receive m6. His sends are re-encrypted and must match the recorded bytes.
    let mut decrypted = 0;
    for (op, i) in [
        ("recv", 1),
        ("recv", 0),
        ("send", 2),
        ("recv", 3),
        ("send", 4),
        ("send", 5),
        ("recv", 6),
    ] {
        let m = &msgs[i];
        let bytes = h(&m["bytes"]);
        let text = m["plaintext"].as_str().unwrap().as_bytes();
        if op == "send" {
            let out = message_encrypt(&mut store, &alice, text).unwrap();
            assert_eq!(out.serialized(), bytes.as_slice(), "bob's message {i}");
            continue;
        }
        let cm = match m["type"].as_u64().unwrap() {
            3 => CiphertextMessage::PreKey(PreKeySignalMessage::parse(&bytes).unwrap()),
            _ => CiphertextMessage::Signal(SignalMessage::parse(&bytes).unwrap()),
        };
        assert_eq!(
            message_decrypt(&mut store, &alice, &cm, &mut rng).unwrap(),
            text,
            "message {i}"
        );
        decrypted += 1;
    }
    assert_eq!(decrypted, 4);
}
