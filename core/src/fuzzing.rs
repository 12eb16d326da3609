//! Fuzz harnesses, shared by the cargo-fuzz targets in `fuzz/` (nightly) and by
//! `core/tests/fuzz_corpus.rs`, which replays the checked-in corpus on stable so CI
//! covers it. Each harness takes arbitrary bytes and must never panic; where a
//! harness can check a property (round trip, plaintext integrity) it asserts it.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand_core::{CryptoRng, RngCore, SeedableRng};

use crate::fingerprint::{Fingerprint, ScannableVersion};
use crate::keys::{
    IdentityKeyPair, KeyPair, PreKeyBundle, PreKeyRecord, PrivateKey, SignedPreKeyRecord,
};
use crate::store::{InMemProtocolStore, PreKeyStore, SignedPreKeyStore};
use crate::wire::{
    CiphertextMessage, PreKeySignalMessage, SenderKeyDistributionMessage, SenderKeyMessage,
    SignalMessage,
};
use crate::{
    message_decrypt, message_encrypt, process_prekey_bundle, IdentityKey, ProtocolAddress,
    SenderKeyRecord, SessionError, SessionRecord,
};

/// A small deterministic RNG for harnesses (xorshift; not for real keys).
pub struct FuzzRng(u64);
impl FuzzRng {
    pub fn new(seed: u64) -> Self {
        FuzzRng(seed | 1)
    }
}
impl RngCore for FuzzRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for c in dest.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for FuzzRng {}
impl SeedableRng for FuzzRng {
    type Seed = [u8; 8];
    fn from_seed(seed: [u8; 8]) -> Self {
        FuzzRng::new(u64::from_le_bytes(seed))
    }
}

pub fn signal_message(data: &[u8]) {
    if let Ok(m) = SignalMessage::parse(data) {
        assert_eq!(m.serialized(), data);
    }
}

pub fn prekey_signal_message(data: &[u8]) {
    if let Ok(m) = PreKeySignalMessage::parse(data) {
        assert_eq!(m.serialized(), data);
        let _ = SignalMessage::parse(m.message.serialized());
    }
}

fn fixed_sender_record() -> SenderKeyRecord {
    let mut r = SenderKeyRecord::new();
    let mut rng = FuzzRng::new(7);
    let d = SenderKeyRecord::new().rotate(&mut rng);
    r.process_distribution(&d).unwrap();
    r
}

pub fn sender_key_message(data: &[u8]) {
    if let Ok(m) = SenderKeyMessage::parse(data) {
        assert_eq!(m.serialized(), data);
    }
    let mut r = fixed_sender_record();
    let before = r.serialize();
    if r.decrypt(data).is_err() {
        assert_eq!(r.serialize(), before, "failed decrypt changed the record");
    }
}

pub fn sender_key_distribution_message(data: &[u8]) {
    if let Ok(m) = SenderKeyDistributionMessage::parse(data) {
        let mut r = SenderKeyRecord::new();
        let _ = r.process_distribution(&m);
        let back = SenderKeyRecord::deserialize(&r.serialize()).unwrap();
        assert_eq!(back.serialize(), r.serialize());
    }
}

pub fn scannable_fingerprint(data: &[u8]) {
    let a = IdentityKey::new(
        KeyPair::from_private(PrivateKey::from_bytes(&[0x48; 32]).unwrap()).public,
    );
    let b = IdentityKey::new(
        KeyPair::from_private(PrivateKey::from_bytes(&[0x50; 32]).unwrap()).public,
    );
    for v in [ScannableVersion::V0, ScannableVersion::V2] {
        let f = Fingerprint::new(v, 2, b"+1", &a, b"+2", &b).unwrap();
        let _ = f.compare_scanned(data);
    }
}

pub fn session_record(data: &[u8]) {
    if let Ok(r) = SessionRecord::deserialize(data) {
        let bytes = r.serialize();
        let again = SessionRecord::deserialize(&bytes).expect("re-encoded record parses");
        assert_eq!(
            again.serialize(),
            bytes,
            "encoding is canonical after one round"
        );
        let mut r = r;
        let _ = r.encrypt(b"x");
    }
    if let Ok(r) = SenderKeyRecord::deserialize(data) {
        let _ = r.serialize();
    }
    let _ = PreKeyRecord::deserialize(data);
    let _ = SignedPreKeyRecord::deserialize(data);
}

/// A message in flight: (plaintext, type, bytes).
type Queued = (Vec<u8>, u8, Vec<u8>);
/// A harness entry point.
pub type Harness = fn(&[u8]);

struct Party {
    addr: ProtocolAddress,
    store: InMemProtocolStore,
}

/// Stateful two-party target: the input drives sends, deliveries in any order, drops,
/// bit flips and replays. Invariants: a decrypt that succeeds yields exactly what was
/// sent in that message; no panic; afterwards a fresh message each way decrypts.
pub fn interaction(data: &[u8]) {
    let mut rng = FuzzRng::new(0x5eed);
    let mk = |name: &str, rng: &mut FuzzRng| {
        let id = IdentityKeyPair::generate(rng);
        let mut store = InMemProtocolStore::new(id.clone(), 1);
        store
            .save_signed_pre_key(&SignedPreKeyRecord::generate(1, 0, &id, rng))
            .unwrap();
        store.save_pre_key(&PreKeyRecord::generate(1, rng)).unwrap();
        Party {
            addr: ProtocolAddress::new(name, 1),
            store,
        }
    };
    let mut a = mk("a", &mut rng);
    let mut b = mk("b", &mut rng);
    let bundle = {
        use crate::store::IdentityKeyStore;
        let spk = b.store.get_signed_pre_key(1).unwrap().unwrap();
        let pk = b.store.get_pre_key(1).unwrap().unwrap();
        PreKeyBundle::from_records(
            1,
            1,
            *b.store.identity_key_pair().unwrap().identity_key(),
            &spk,
            Some(&pk),
        )
    };
    process_prekey_bundle(&mut a.store, &b.addr, &bundle, &mut rng).unwrap();
    // queues[0]: a -> b, queues[1]: b -> a; entries (plaintext, type, bytes)
    let mut queues: [Vec<Queued>; 2] = [Vec::new(), Vec::new()];
    let mut delivered: [Vec<(u8, Vec<u8>)>; 2] = [Vec::new(), Vec::new()];
    let mut counter = 0u32;
    let mut it = data.iter().copied();
    while let Some(op) = it.next() {
        let arg = it.next().unwrap_or(0) as usize;
        let dir = (op & 1) as usize;
        let (from, to) = if dir == 0 {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        match (op >> 1) % 5 {
            0 => {
                counter += 1;
                let pt = counter.to_be_bytes().to_vec();
                match message_encrypt(&mut from.store, &to.addr, &pt) {
                    Ok(m) => queues[dir].push((pt, m.message_type(), m.serialized().to_vec())),
                    // b has no session until a message from a reaches it.
                    Err(SessionError::NoSession(_)) => {}
                    Err(e) => panic!("encrypt failed: {e}"),
                }
            }
            1 | 2 if !queues[dir].is_empty() => {
                let i = arg % queues[dir].len();
                let (pt, t, bytes) = queues[dir].remove(i);
                if (op >> 1) % 5 == 1 {
                    if let Ok(out) = decrypt(&mut to.store, &from.addr, t, &bytes, &mut rng) {
                        assert_eq!(out, pt);
                        delivered[dir].push((t, bytes));
                    }
                } // else: dropped
            }
            3 if !queues[dir].is_empty() => {
                let i = arg % queues[dir].len();
                let (pt, t, mut bytes) = queues[dir][i].clone();
                let pos = arg.wrapping_mul(31) % bytes.len();
                bytes[pos] ^= 1 << (arg % 8);
                if let Ok(out) = decrypt(&mut to.store, &from.addr, t, &bytes, &mut rng) {
                    assert_eq!(out, pt, "tampered message decrypted to something else");
                    queues[dir].remove(i);
                }
            }
            4 if !delivered[dir].is_empty() => {
                let (t, bytes) = delivered[dir][arg % delivered[dir].len()].clone();
                let r = decrypt(&mut to.store, &from.addr, t, &bytes, &mut rng);
                assert!(r.is_err(), "replay accepted");
            }
            _ => {}
        }
    }
    for dir in 0..2 {
        let (from, to) = if dir == 0 {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        if let Ok(m) = message_encrypt(&mut from.store, &to.addr, b"final") {
            let r = decrypt(
                &mut to.store,
                &from.addr,
                m.message_type(),
                m.serialized(),
                &mut rng,
            );
            // b cannot answer before any a->b message arrived (no session yet): skip.
            if let Err(SessionError::NoSession(_)) = r {
                continue;
            }
            assert_eq!(r.unwrap(), b"final");
        }
    }
}

fn decrypt(
    store: &mut InMemProtocolStore,
    from: &ProtocolAddress,
    t: u8,
    bytes: &[u8],
    rng: &mut FuzzRng,
) -> Result<Vec<u8>, SessionError> {
    let m = if t == 3 {
        CiphertextMessage::PreKey(PreKeySignalMessage::parse(bytes)?)
    } else {
        CiphertextMessage::Signal(SignalMessage::parse(bytes)?)
    };
    message_decrypt(store, from, &m, rng)
}

/// All harnesses by name (the fuzz target names and corpus directory names).
pub const TARGETS: &[(&str, Harness)] = &[
    ("signal_message", signal_message),
    ("prekey_signal_message", prekey_signal_message),
    ("sender_key_message", sender_key_message),
    (
        "sender_key_distribution_message",
        sender_key_distribution_message,
    ),
    ("scannable_fingerprint", scannable_fingerprint),
    ("session_record", session_record),
    ("interaction", interaction),
];
