//! 1:1 sessions through the store API: setup with and without a one-time prekey,
//! out-of-order delivery, replays, tampering, DH-ratchet steps, limits, identity
//! changes, simultaneous initiation, and records surviving serialization.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed assumption is a failed test

use pawl_core::keys::{
    generate_registration_id, IdentityKeyPair, PreKeyBundle, PreKeyRecord, SignedPreKeyRecord,
};
use pawl_core::ratchet::{MAX_FORWARD_JUMPS, MAX_MESSAGE_KEYS};
use pawl_core::store::{InMemProtocolStore, PreKeyStore, SessionStore, SignedPreKeyStore};
use pawl_core::*;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

struct Device {
    addr: ProtocolAddress,
    store: InMemProtocolStore,
    spk: SignedPreKeyRecord,
    next_prekey: u32,
}

impl Device {
    fn new(name: &str, rng: &mut ChaCha20Rng) -> Self {
        let id = IdentityKeyPair::generate(rng);
        let mut store = InMemProtocolStore::new(id.clone(), generate_registration_id(rng));
        let spk = SignedPreKeyRecord::generate(1, 1_700_000_000_000, &id, rng);
        store.save_signed_pre_key(&spk).unwrap();
        Device {
            addr: ProtocolAddress::new(name, 1),
            store,
            spk,
            next_prekey: 1,
        }
    }
    fn bundle(&mut self, with_prekey: bool, rng: &mut ChaCha20Rng) -> PreKeyBundle {
        use pawl_core::store::IdentityKeyStore;
        let prekey = with_prekey.then(|| {
            let pk = PreKeyRecord::generate(self.next_prekey, rng);
            self.next_prekey += 1;
            self.store.save_pre_key(&pk).unwrap();
            (pk.id, pk.key_pair.public)
        });
        PreKeyBundle {
            registration_id: self.store.local_registration_id().unwrap(),
            device_id: 1,
            prekey,
            signed_prekey_id: self.spk.id,
            signed_prekey: self.spk.key_pair.public,
            signed_prekey_signature: self.spk.signature.to_vec(),
            identity_key: *self.store.identity_key_pair().unwrap().identity_key(),
        }
    }
    fn encrypt(&mut self, to: &ProtocolAddress, pt: &[u8]) -> CiphertextMessage {
        message_encrypt(&mut self.store, to, pt).unwrap()
    }
    fn decrypt(
        &mut self,
        from: &ProtocolAddress,
        m: &CiphertextMessage,
        rng: &mut ChaCha20Rng,
    ) -> Result<Vec<u8>, SessionError> {
        // Go through bytes, as a real transport would.
        let m = match m.message_type() {
            2 => CiphertextMessage::Signal(SignalMessage::parse(m.serialized())?),
            _ => CiphertextMessage::PreKey(PreKeySignalMessage::parse(m.serialized())?),
        };
        message_decrypt(&mut self.store, from, &m, rng)
    }
}

fn pair(seed: u64, with_prekey: bool) -> (Device, Device, ChaCha20Rng) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut a = Device::new("alice", &mut rng);
    let mut b = Device::new("bob", &mut rng);
    let bundle = b.bundle(with_prekey, &mut rng);
    process_prekey_bundle(&mut a.store, &b.addr, &bundle, &mut rng).unwrap();
    (a, b, rng)
}

#[test]
fn setup_with_and_without_one_time_prekey() {
    for with in [true, false] {
        let (mut a, mut b, mut rng) = pair(1, with);
        let m = a.encrypt(&b.addr.clone(), b"hi bob");
        assert_eq!(m.message_type(), 3);
        let pre = PreKeySignalMessage::parse(m.serialized()).unwrap();
        assert_eq!(pre.pre_key_id.is_some(), with);
        assert_eq!(b.decrypt(&a.addr.clone(), &m, &mut rng).unwrap(), b"hi bob");
        if with {
            assert!(
                b.store.get_pre_key(1).unwrap().is_none(),
                "one-time prekey consumed"
            );
        }
        let r = b.encrypt(&a.addr.clone(), b"hi alice");
        assert_eq!(r.message_type(), 2, "responder sends SignalMessages");
        assert_eq!(
            a.decrypt(&b.addr.clone(), &r, &mut rng).unwrap(),
            b"hi alice"
        );
        let m2 = a.encrypt(&b.addr.clone(), b"after reply");
        assert_eq!(
            m2.message_type(),
            2,
            "initiator switches to SignalMessage once answered"
        );
        assert_eq!(
            b.decrypt(&a.addr.clone(), &m2, &mut rng).unwrap(),
            b"after reply"
        );
    }
}

#[test]
fn out_of_order_prekey_messages_and_replays() {
    let (mut a, mut b, mut rng) = pair(2, true);
    let (aa, ba) = (a.addr.clone(), b.addr.clone());
    let msgs: Vec<_> = (0..5)
        .map(|i| a.encrypt(&ba, format!("m{i}").as_bytes()))
        .collect();
    assert!(msgs.iter().all(|m| m.message_type() == 3));
    for i in [3, 0, 4, 1, 2] {
        assert_eq!(
            b.decrypt(&aa, &msgs[i], &mut rng).unwrap(),
            format!("m{i}").as_bytes()
        );
    }
    for m in &msgs {
        assert!(matches!(
            b.decrypt(&aa, m, &mut rng),
            Err(SessionError::DuplicateMessage { .. })
        ));
    }
    // Still working afterwards.
    let r = b.encrypt(&aa, b"ok");
    assert_eq!(a.decrypt(&ba, &r, &mut rng).unwrap(), b"ok");
}

/// Flip every bit position class (0x01, 0x80) of every byte of a PreKeySignalMessage and
/// decrypt. Signal v3 does not authenticate the envelope's version low nibble and
/// registration id, nor the prekey ids once the base key's session exists; every
/// accepted flip must leave the authenticated parts intact and give the same plaintext.
fn flip_all(
    b: &mut Device,
    from: &ProtocolAddress,
    wire: &[u8],
    expect: &[u8],
    fresh: bool,
    rng: &mut ChaCha20Rng,
) {
    let orig = PreKeySignalMessage::parse(wire).unwrap();
    let before = b.store.load_session(from).unwrap().map(|r| r.serialize());
    for i in 0..wire.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = wire.to_vec();
            bad[i] ^= bit;
            let snapshot = b.store.clone();
            let parsed = PreKeySignalMessage::parse(&bad);
            let r = parsed
                .clone()
                .and_then(|p| message_decrypt_prekey(&mut b.store, from, &p, rng));
            match r {
                Ok(pt) => {
                    let p = parsed.unwrap();
                    assert_eq!(pt, expect, "byte {i}: accepted flip changed the plaintext");
                    assert_eq!(
                        (p.base_key, p.identity_key),
                        (orig.base_key, orig.identity_key),
                        "byte {i} bit {bit:#x}"
                    );
                    assert_eq!(
                        p.message, orig.message,
                        "byte {i} bit {bit:#x}: authenticated part changed yet accepted"
                    );
                    if fresh {
                        assert_eq!(
                            (p.pre_key_id, p.signed_pre_key_id),
                            (orig.pre_key_id, orig.signed_pre_key_id)
                        );
                    }
                }
                Err(_) => {
                    assert_eq!(
                        b.store.load_session(from).unwrap().map(|r| r.serialize()),
                        before,
                        "failed decrypt wrote state"
                    );
                }
            }
            b.store = snapshot;
        }
    }
}

#[test]
fn tampering_is_rejected_and_changes_nothing() {
    let (mut a, mut b, mut rng) = pair(3, true);
    let (aa, ba) = (a.addr.clone(), b.addr.clone());
    let first = a.encrypt(&ba, b"setup");
    flip_all(&mut b, &aa, first.serialized(), b"setup", true, &mut rng);
    b.decrypt(&aa, &first, &mut rng).unwrap();
    let m = a.encrypt(&ba, b"secret message");
    flip_all(
        &mut b,
        &aa,
        m.serialized(),
        b"secret message",
        false,
        &mut rng,
    );
    assert_eq!(b.decrypt(&aa, &m, &mut rng).unwrap(), b"secret message");
}

#[test]
fn signal_message_mac_and_body_flips() {
    let (mut a, mut b, mut rng) = pair(4, true);
    let (aa, ba) = (a.addr.clone(), b.addr.clone());
    let first = a.encrypt(&ba, b"setup");
    b.decrypt(&aa, &first, &mut rng).unwrap();
    let r = b.encrypt(&aa, b"reply");
    a.decrypt(&ba, &r, &mut rng).unwrap();
    let m = a.encrypt(&ba, b"body");
    let wire = m.serialized().to_vec();
    let mut mac_flip = wire.clone();
    *mac_flip.last_mut().unwrap() ^= 1;
    let e = message_decrypt_signal(
        &mut b.store,
        &aa,
        &SignalMessage::parse(&mac_flip).unwrap(),
        &mut rng,
    );
    assert_eq!(e, Err(SessionError::InvalidMac));
    let mut body_flip = wire.clone();
    let n = body_flip.len();
    body_flip[n - 12] ^= 1; // inside the ciphertext
    let e = message_decrypt_signal(
        &mut b.store,
        &aa,
        &SignalMessage::parse(&body_flip).unwrap(),
        &mut rng,
    );
    assert_eq!(e, Err(SessionError::InvalidMac));
    assert_eq!(b.decrypt(&aa, &m, &mut rng).unwrap(), b"body");
}

#[test]
fn out_of_order_across_dh_ratchet_steps() {
    let (mut a, mut b, mut rng) = pair(5, true);
    let (aa, ba) = (a.addr.clone(), b.addr.clone());
    let m0 = a.encrypt(&ba, b"a0");
    b.decrypt(&aa, &m0, &mut rng).unwrap();
    let mut held = Vec::new();
    for round in 0..6 {
        // Each round the direction turns: a DH ratchet step. Keep the first message of
        // every chain back and deliver it at the end.
        let (from, to, fa, ta) = if round % 2 == 0 {
            (&mut b, &mut a, &ba, &aa)
        } else {
            (&mut a, &mut b, &aa, &ba)
        };
        let ms: Vec<_> = (0..3)
            .map(|i| {
                (
                    format!("r{round}m{i}"),
                    from.encrypt(ta, format!("r{round}m{i}").as_bytes()),
                )
            })
            .collect();
        for (p, m) in &ms[1..] {
            assert_eq!(to.decrypt(fa, m, &mut rng).unwrap(), p.as_bytes());
        }
        held.push((round, ms[0].clone()));
    }
    for (round, (p, m)) in held {
        let r = if round % 2 == 0 {
            a.decrypt(&ba, &m, &mut rng)
        } else {
            b.decrypt(&aa, &m, &mut rng)
        };
        assert_eq!(r.unwrap(), p.as_bytes(), "held message of round {round}");
    }
}

#[test]
fn random_interleaving_and_reordering_400() {
    let (mut a, mut b, mut rng) = pair(6, true);
    let (aa, ba) = (a.addr.clone(), b.addr.clone());
    let first = a.encrypt(&ba, b"hello");
    b.decrypt(&aa, &first, &mut rng).unwrap();
    // Rounds of 8 random operations (send either way, deliver a random pending message);
    // whatever is still pending at the end of a round is delivered shuffled. A message is
    // thus held across at most a few DH ratchet steps: Signal keeps 5 receiver chains, so
    // a message older than that is undecryptable by design (as in libsignal).
    use rand::Rng;
    let mut to_a: Vec<(String, CiphertextMessage)> = Vec::new();
    let mut to_b: Vec<(String, CiphertextMessage)> = Vec::new();
    let mut sent = 0;
    let mut delivered = 0;
    while sent < 400 {
        for _ in 0..8 {
            match rng.gen_range(0..4) {
                0 => {
                    to_b.push((
                        format!("a{sent}"),
                        a.encrypt(&ba, format!("a{sent}").as_bytes()),
                    ));
                    sent += 1;
                }
                1 => {
                    to_a.push((
                        format!("b{sent}"),
                        b.encrypt(&aa, format!("b{sent}").as_bytes()),
                    ));
                    sent += 1;
                }
                2 if !to_b.is_empty() => {
                    let i = rng.gen_range(0..to_b.len());
                    let (p, m) = to_b.swap_remove(i);
                    assert_eq!(b.decrypt(&aa, &m, &mut rng).unwrap(), p.as_bytes());
                    delivered += 1;
                }
                3 if !to_a.is_empty() => {
                    let i = rng.gen_range(0..to_a.len());
                    let (p, m) = to_a.swap_remove(i);
                    assert_eq!(a.decrypt(&ba, &m, &mut rng).unwrap(), p.as_bytes());
                    delivered += 1;
                }
                _ => {}
            }
        }
        to_a.shuffle(&mut rng);
        to_b.shuffle(&mut rng);
        for (p, m) in to_b.drain(..) {
            assert_eq!(b.decrypt(&aa, &m, &mut rng).unwrap(), p.as_bytes());
            delivered += 1;
        }
        for (p, m) in to_a.drain(..) {
            assert_eq!(a.decrypt(&ba, &m, &mut rng).unwrap(), p.as_bytes());
            delivered += 1;
        }
    }
    assert_eq!(delivered, sent);
}

#[test]
fn skip_limits() {
    let (mut a, mut b, mut rng) = pair(7, true);
    let (aa, ba) = (a.addr.clone(), b.addr.clone());
    let first = a.encrypt(&ba, b"x");
    b.decrypt(&aa, &first, &mut rng).unwrap();
    // Skip MAX_MESSAGE_KEYS + 10 messages: the 10 oldest keys are evicted.
    let skipped: Vec<_> = (0..MAX_MESSAGE_KEYS + 10)
        .map(|_| a.encrypt(&ba, b"skipped"))
        .collect();
    let last = a.encrypt(&ba, b"last");
    assert_eq!(b.decrypt(&aa, &last, &mut rng).unwrap(), b"last");
    for m in &skipped[..10] {
        assert!(
            matches!(
                b.decrypt(&aa, m, &mut rng),
                Err(SessionError::DuplicateMessage { .. })
            ),
            "evicted key"
        );
    }
    assert_eq!(b.decrypt(&aa, &skipped[10], &mut rng).unwrap(), b"skipped");
    assert_eq!(
        b.decrypt(&aa, skipped.last().unwrap(), &mut rng).unwrap(),
        b"skipped"
    );

    // A jump beyond the forward limit is rejected, and the session still works after.
    let mut rec = a.store.load_session(&ba).unwrap().unwrap();
    for _ in 0..(MAX_FORWARD_JUMPS + 1) {
        rec.encrypt(b"").unwrap();
    }
    let far = rec.encrypt(b"too far").unwrap();
    let r = b.decrypt(&aa, &far, &mut rng);
    assert!(matches!(r, Err(SessionError::TooFarAhead { .. })), "{r:?}");
    let near = a.encrypt(&ba, b"near");
    assert_eq!(b.decrypt(&aa, &near, &mut rng).unwrap(), b"near");
}

#[test]
fn changed_identity_is_untrusted_until_accepted() {
    use pawl_core::store::IdentityKeyStore;
    let (mut a, mut b, mut rng) = pair(8, true);
    let (aa, ba) = (a.addr.clone(), b.addr.clone());
    let m = a.encrypt(&ba, b"x");
    b.decrypt(&aa, &m, &mut rng).unwrap();
    // Bob reinstalls: new identity, new bundle.
    let mut b2 = Device::new("bob", &mut rng);
    let bundle = b2.bundle(true, &mut rng);
    let e = process_prekey_bundle(&mut a.store, &ba, &bundle, &mut rng);
    assert_eq!(e, Err(SessionError::UntrustedIdentity("bob.1".into())));
    assert_eq!(e.unwrap_err().fault(), Fault::Peer);
    // Mallory (as Bob's new identity) starting a session to Alice is rejected too.
    let mut m2 = Device::new("mallory", &mut rng);
    let ab = a.bundle(true, &mut rng);
    process_prekey_bundle(&mut m2.store, &aa, &ab, &mut rng).unwrap();
    let evil = m2.encrypt(&aa, b"i am bob");
    assert!(matches!(
        a.decrypt(&ba, &evil, &mut rng),
        Err(SessionError::UntrustedIdentity(_))
    ));
    // The user accepts the new safety number.
    a.store
        .save_identity(&ba, bundle.identity_key.clone().as_ref_identity())
        .unwrap();
    process_prekey_bundle(&mut a.store, &ba, &bundle, &mut rng).unwrap();
    let m = a.encrypt(&ba, b"welcome back");
    assert_eq!(b2.decrypt(&aa, &m, &mut rng).unwrap(), b"welcome back");
}

trait AsRefIdentity {
    fn as_ref_identity(&self) -> &IdentityKey;
}
impl AsRefIdentity for IdentityKey {
    fn as_ref_identity(&self) -> &IdentityKey {
        self
    }
}

#[test]
fn bad_signed_prekey_signature() {
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let mut a = Device::new("alice", &mut rng);
    let mut b = Device::new("bob", &mut rng);
    let mut bundle = b.bundle(true, &mut rng);
    bundle.signed_prekey_signature[5] ^= 1;
    let e = process_prekey_bundle(&mut a.store, &b.addr, &bundle, &mut rng);
    assert!(
        matches!(e, Err(SessionError::InvalidKey(KeyError::BadSignature))),
        "{e:?}"
    );
    assert!(a.store.load_session(&b.addr).unwrap().is_none());
}

#[test]
fn unknown_prekey_ids() {
    let (mut a, mut b, mut rng) = pair(10, true);
    let (aa, ba) = (a.addr.clone(), b.addr.clone());
    let m = a.encrypt(&ba, b"x");
    b.store.remove_pre_key(1).unwrap();
    let e = b.decrypt(&aa, &m, &mut rng);
    assert_eq!(e, Err(SessionError::InvalidKeyId(1)));
    assert_eq!(e.unwrap_err().fault(), Fault::Caller);
    assert!(
        b.store.load_session(&aa).unwrap().is_none(),
        "nothing stored"
    );
}

#[test]
fn simultaneous_initiation_converges() {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let mut a = Device::new("alice", &mut rng);
    let mut b = Device::new("bob", &mut rng);
    let (aa, ba) = (a.addr.clone(), b.addr.clone());
    let bb = b.bundle(true, &mut rng);
    let ab = a.bundle(true, &mut rng);
    process_prekey_bundle(&mut a.store, &ba, &bb, &mut rng).unwrap();
    process_prekey_bundle(&mut b.store, &aa, &ab, &mut rng).unwrap();
    let ma = a.encrypt(&ba, b"from a");
    let mb = b.encrypt(&aa, b"from b");
    assert_eq!(b.decrypt(&aa, &ma, &mut rng).unwrap(), b"from a");
    assert_eq!(a.decrypt(&ba, &mb, &mut rng).unwrap(), b"from b");
    // Keep talking: each side's messages decrypt, and they end on one session.
    for i in 0..4 {
        let x = a.encrypt(&ba, format!("a{i}").as_bytes());
        assert_eq!(
            b.decrypt(&aa, &x, &mut rng).unwrap(),
            format!("a{i}").as_bytes()
        );
        let y = b.encrypt(&aa, format!("b{i}").as_bytes());
        assert_eq!(
            a.decrypt(&ba, &y, &mut rng).unwrap(),
            format!("b{i}").as_bytes()
        );
    }
    let ra = a.store.load_session(&ba).unwrap().unwrap();
    let rb = b.store.load_session(&aa).unwrap().unwrap();
    assert!(!ra.has_unacknowledged_prekey() && !rb.has_unacknowledged_prekey());
    let x = a.encrypt(&ba, b"final");
    assert_eq!(x.message_type(), 2);
    assert_eq!(b.decrypt(&aa, &x, &mut rng).unwrap(), b"final");
}

#[test]
fn records_survive_serialization_mid_conversation() {
    let (mut a, mut b, mut rng) = pair(12, true);
    let (aa, ba) = (a.addr.clone(), b.addr.clone());
    let m = a.encrypt(&ba, b"1");
    b.decrypt(&aa, &m, &mut rng).unwrap();
    let held = a.encrypt(&ba, b"held");
    let m = a.encrypt(&ba, b"2");
    b.decrypt(&aa, &m, &mut rng).unwrap();
    for d in [&mut a, &mut b] {
        let other = if d.addr == aa { ba.clone() } else { aa.clone() };
        let rec = d.store.load_session(&other).unwrap().unwrap();
        let bytes = rec.serialize();
        let back = SessionRecord::deserialize(&bytes).unwrap();
        assert_eq!(back.serialize(), bytes, "canonical encoding");
        d.store.store_session(&other, &back).unwrap();
    }
    assert_eq!(
        b.decrypt(&aa, &held, &mut rng).unwrap(),
        b"held",
        "skipped key survived"
    );
    let r = b.encrypt(&aa, b"3");
    assert_eq!(a.decrypt(&ba, &r, &mut rng).unwrap(), b"3");
    // Truncated / corrupt records are typed errors.
    let bytes = b.store.load_session(&aa).unwrap().unwrap().serialize();
    for n in 0..bytes.len() {
        let _ = SessionRecord::deserialize(&bytes[..n]);
    }
    assert!(SessionRecord::deserialize(&[0xff, 0xff]).is_err());
}

#[test]
fn no_session_is_a_caller_error() {
    let mut rng = ChaCha20Rng::seed_from_u64(13);
    let mut a = Device::new("alice", &mut rng);
    let e = message_encrypt(&mut a.store, &ProtocolAddress::new("nobody", 1), b"x").unwrap_err();
    assert!(matches!(e, SessionError::NoSession(_)));
    assert_eq!(e.fault(), Fault::Caller);
    assert_eq!(e.code(), "NoSession");
}

#[test]
fn replayed_prekey_message_with_noncanonical_base_key_is_rejected() {
    // Without a one-time prekey nothing is consumed, so only the base-key check stops a
    // replay; an alternative encoding of the same base key must not slip past it.
    let (mut a, mut b, mut rng) = pair(14, false);
    let (aa, ba) = (a.addr.clone(), b.addr.clone());
    let m = a.encrypt(&ba, b"once");
    assert_eq!(b.decrypt(&aa, &m, &mut rng).unwrap(), b"once");
    let mut wire = m.serialized().to_vec();
    let base = PreKeySignalMessage::parse(&wire)
        .unwrap()
        .base_key
        .serialize();
    let pos = wire.windows(33).position(|w| w == base).unwrap();
    wire[pos + 32] ^= 0x80;
    assert!(PreKeySignalMessage::parse(&wire).is_err());
    assert!(matches!(
        b.decrypt(&aa, &m, &mut rng),
        Err(SessionError::DuplicateMessage { .. })
    ));
}

#[test]
fn at_most_forty_previous_states_and_old_ones_still_decrypt() {
    use pawl_core::session::ARCHIVED_STATES_MAX_LENGTH;
    let mut rng = ChaCha20Rng::seed_from_u64(15);
    let mut a = Device::new("alice", &mut rng);
    let mut b = Device::new("bob", &mut rng);
    let (aa, ba) = (a.addr.clone(), b.addr.clone());
    let mut firsts = Vec::new();
    for i in 0..(ARCHIVED_STATES_MAX_LENGTH + 5) {
        let bundle = b.bundle(false, &mut rng);
        process_prekey_bundle(&mut a.store, &ba, &bundle, &mut rng).unwrap();
        firsts.push(a.encrypt(&ba, format!("session {i}").as_bytes()));
    }
    let rec = a.store.load_session(&ba).unwrap().unwrap();
    assert_eq!(rec.previous_session_count(), ARCHIVED_STATES_MAX_LENGTH);
    // Bob receives the newest and an old (but kept) session's first message.
    let n = firsts.len();
    assert_eq!(
        b.decrypt(&aa, &firsts[n - 1], &mut rng).unwrap(),
        format!("session {}", n - 1).as_bytes()
    );
    assert_eq!(
        b.decrypt(&aa, &firsts[n - 10], &mut rng).unwrap(),
        format!("session {}", n - 10).as_bytes()
    );
    // Bob's reply is on the session he used last; Alice finds it among her previous
    // states and promotes it.
    let r = b.encrypt(&aa, b"reply");
    assert_eq!(a.decrypt(&ba, &r, &mut rng).unwrap(), b"reply");
    let m = a.encrypt(&ba, b"on the promoted session");
    assert_eq!(m.message_type(), 2);
    assert_eq!(
        b.decrypt(&aa, &m, &mut rng).unwrap(),
        b"on the promoted session"
    );
}
