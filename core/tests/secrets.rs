//! Secrets never show up in `Debug` output, and the redacted forms are pinned.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use pawl_core::keys::{IdentityKeyPair, PreKeyRecord, SignedPreKeyRecord};
use pawl_core::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

fn assert_no_secret(debug: &str, secret: &[u8]) {
    let h = hex::encode(secret);
    assert!(!debug.contains(&h), "secret hex in {debug}");
    assert!(
        !debug.contains(
            &format!("{:?}", &secret[..8])
                .trim_end_matches(']')
                .to_string()
        ),
        "secret bytes in {debug}"
    );
}

#[test]
fn debug_output_is_redacted() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let id = IdentityKeyPair::generate(&mut rng);
    let d = format!("{id:?}");
    assert_no_secret(&d, &id.private_key().to_bytes());
    assert!(
        d.starts_with("IdentityKeyPair { identity: IdentityKey(PublicKey(05")
            && d.ends_with(", .. }"),
        "{d}"
    );
    assert_eq!(format!("{:?}", id.private_key()), "PrivateKey(<redacted>)");

    let spk = SignedPreKeyRecord::generate(1, 0, &id, &mut rng);
    assert_no_secret(&format!("{spk:?}"), &spk.key_pair.private.to_bytes());
    let pk = PreKeyRecord::generate(1, &mut rng);
    assert_no_secret(&format!("{pk:?}"), &pk.key_pair.private.to_bytes());

    let mut sk = SenderKeyRecord::new();
    let skdm = sk.rotate(&mut rng);
    let d = format!("{skdm:?}");
    assert_no_secret(&d, &skdm.chain_key);
    assert!(
        d.starts_with("SenderKeyDistributionMessage { chain_id: "),
        "{d}"
    );
    assert!(!format!("{sk:?}").contains(&hex::encode(skdm.chain_key)));

    let bob = IdentityKeyPair::generate(&mut rng);
    let base = KeyPair::generate(&mut rng);
    let rec = session::initialize_alice_session(
        &session::AliceParameters {
            our_identity: &id,
            our_base_key: &base,
            their_identity: *bob.identity_key(),
            their_signed_prekey: spk.key_pair.public,
            their_one_time_prekey: None,
            their_ratchet_key: spk.key_pair.public,
        },
        &mut rng,
    )
    .unwrap();
    let d = format!("{rec:?}");
    assert_no_secret(&d, &rec.kat_sender_chain_key().unwrap());
    assert!(!d.contains("root"), "{d}");
    assert!(
        d.starts_with("SessionRecord { current: Some(SessionState {"),
        "{d}"
    );
}
