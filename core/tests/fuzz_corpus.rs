//! Replays the fuzz corpus (`fuzz/corpus/<target>/*`) through the same harnesses the
//! cargo-fuzz targets use, so CI covers them on stable. A missing corpus directory is
//! a failure. `PAWL_WRITE_SEED_CORPUS=1` (re)writes the seed inputs made from valid
//! messages; the fuzzer adds the rest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed assumption is a failed test

use std::path::PathBuf;

use pawl_core::fuzzing::{FuzzRng, TARGETS};
use pawl_core::keys::{IdentityKeyPair, KeyPair};
use pawl_core::*;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// Valid inputs for every target, made with a fixed RNG.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut rng = FuzzRng::new(99);
    let mut out = Vec::new();
    let mut sk = SenderKeyRecord::new();
    let d = sk.rotate(&mut rng);
    out.push(("sender_key_distribution_message", d.serialized().to_vec()));
    out.push((
        "sender_key_message",
        sk.encrypt(b"group hello", &mut rng)
            .unwrap()
            .serialized()
            .to_vec(),
    ));
    out.push(("session_record", sk.serialize()));
    let alice = IdentityKeyPair::generate(&mut rng);
    let bob = IdentityKeyPair::generate(&mut rng);
    let base = KeyPair::generate(&mut rng);
    let spk = KeyPair::generate(&mut rng);
    let mut rec = session::initialize_alice_session(
        &session::AliceParameters {
            our_identity: &alice,
            our_base_key: &base,
            their_identity: *bob.identity_key(),
            their_signed_prekey: spk.public,
            their_one_time_prekey: None,
            their_ratchet_key: spk.public,
        },
        &mut rng,
    )
    .unwrap();
    out.push((
        "signal_message",
        rec.encrypt(b"hello").unwrap().serialized().to_vec(),
    ));
    out.push(("session_record", rec.serialize()));
    let fp = fingerprint::Fingerprint::new(
        fingerprint::ScannableVersion::V2,
        2,
        b"+1",
        alice.identity_key(),
        b"+2",
        bob.identity_key(),
    )
    .unwrap();
    out.push(("scannable_fingerprint", fp.scannable.clone()));
    {
        use pawl_core::keys::{PreKeyBundle, PreKeyRecord, SignedPreKeyRecord};
        use pawl_core::store::{InMemProtocolStore, SessionStore};
        let spk = SignedPreKeyRecord::generate(1, 0, &bob, &mut rng);
        let pk = PreKeyRecord::generate(7, &mut rng);
        let bundle = PreKeyBundle::from_records(5, 1, *bob.identity_key(), &spk, Some(&pk));
        let mut a = InMemProtocolStore::new(alice.clone(), 3);
        let addr = ProtocolAddress::new("bob", 1);
        process_prekey_bundle(&mut a, &addr, &bundle, &mut rng).unwrap();
        let m = message_encrypt(&mut a, &addr, b"first").unwrap();
        out.push(("prekey_signal_message", m.serialized().to_vec()));
        out.push((
            "session_record",
            a.load_session(&addr).unwrap().unwrap().serialize(),
        ));
        out.push(("session_record", pk.serialize()));
        out.push(("session_record", spk.serialize()));
    }
    out.push((
        "interaction",
        vec![0, 0, 2, 0, 1, 0, 3, 0, 0, 0, 0, 0, 2, 1, 2, 0, 6, 5, 8, 0],
    ));
    out.push(("interaction", (0u8..=255).collect()));
    out
}

#[test]
fn replay_fuzz_corpus() {
    if std::env::var_os("PAWL_WRITE_SEED_CORPUS").is_some() {
        for (i, (t, data)) in seeds().into_iter().enumerate() {
            std::fs::create_dir_all(corpus_dir(t)).unwrap();
            std::fs::write(corpus_dir(t).join(format!("seed-{i}")), data).unwrap();
        }
    }
    let mut total = 0;
    for (name, harness) in TARGETS {
        let dir = corpus_dir(name);
        let entries =
            std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()));
        let mut n = 0;
        for e in entries {
            let data = std::fs::read(e.unwrap().path()).unwrap();
            harness(&data);
            // Truncations of every input, too (cheap extra coverage of parsers).
            if *name != "interaction" {
                for cut in 0..data.len().min(200) {
                    harness(&data[..cut]);
                }
            }
            n += 1;
        }
        assert!(n > 0, "corpus for {name} is empty");
        total += n;
    }
    eprintln!("replayed {total} corpus inputs");
}

#[test]
fn seed_inputs_hit_the_success_paths() {
    // The seeds are valid messages: the harnesses must accept them without panicking,
    // and the parsers must accept them (otherwise the corpus tests only error paths).
    for (t, data) in seeds() {
        match t {
            "signal_message" => assert!(SignalMessage::parse(&data).is_ok()),
            "sender_key_message" => assert!(SenderKeyMessage::parse(&data).is_ok()),
            "sender_key_distribution_message" => {
                assert!(SenderKeyDistributionMessage::parse(&data).is_ok())
            }
            _ => {}
        }
        let h = TARGETS.iter().find(|(n, _)| *n == t).unwrap().1;
        h(&data);
    }
}
