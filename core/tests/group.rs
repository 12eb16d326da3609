//! Sender keys: distribution, encryption to many, out of order, replay, forgery,
//! rotation (a removed member reads nothing after), limits and persistence.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed assumption is a failed test

use pawl_core::store::InMemSenderKeyStore;
use pawl_core::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const GROUP: &[u8] = b"group-1234";

#[test]
fn group_roundtrip_out_of_order_replay_forgery() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let alice = ProtocolAddress::new("alice", 1);
    let mut a_store = InMemSenderKeyStore::default();
    let mut b_store = InMemSenderKeyStore::default();
    let skdm =
        create_sender_key_distribution_message(&mut a_store, &alice, GROUP, &mut rng).unwrap();
    let skdm = SenderKeyDistributionMessage::parse(skdm.serialized()).unwrap();
    process_sender_key_distribution_message(&mut b_store, &alice, GROUP, &skdm).unwrap();
    let msgs: Vec<_> = (0..10)
        .map(|i| {
            group_encrypt(
                &mut a_store,
                &alice,
                GROUP,
                format!("g{i}").as_bytes(),
                &mut rng,
            )
            .unwrap()
        })
        .collect();
    for i in [0usize, 5, 2, 9, 1, 3, 4, 8, 7, 6] {
        assert_eq!(
            group_decrypt(&mut b_store, &alice, GROUP, msgs[i].serialized()).unwrap(),
            format!("g{i}").as_bytes()
        );
    }
    assert_eq!(
        group_decrypt(&mut b_store, &alice, GROUP, msgs[3].serialized()),
        Err(GroupError::DuplicateMessage(3))
    );
    // Forgery: any bit flipped fails (signature), and state is unchanged.
    let m = group_encrypt(&mut a_store, &alice, GROUP, b"signed", &mut rng).unwrap();
    let wire = m.serialized().to_vec();
    for i in 0..wire.len() {
        let mut bad = wire.clone();
        bad[i] ^= 0x10;
        assert!(
            group_decrypt(&mut b_store, &alice, GROUP, &bad).is_err(),
            "byte {i}"
        );
    }
    assert_eq!(
        group_decrypt(&mut b_store, &alice, GROUP, &wire).unwrap(),
        b"signed"
    );
    // Unknown sender / distribution.
    assert!(group_decrypt(&mut b_store, &ProtocolAddress::new("eve", 1), GROUP, &wire).is_err());
    assert!(group_decrypt(&mut b_store, &alice, b"other group", &wire).is_err());
}

#[test]
fn rotation_locks_out_removed_member_and_keeps_five_states() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let alice = ProtocolAddress::new("alice", 1);
    let mut a = SenderKeyRecord::new();
    let mut bob = SenderKeyRecord::new();
    let mut carol = SenderKeyRecord::new();
    let d1 = a.rotate(&mut rng);
    bob.process_distribution(&d1).unwrap();
    carol.process_distribution(&d1).unwrap();
    let m = a.encrypt(b"both", &mut rng).unwrap();
    assert_eq!(bob.decrypt(m.serialized()).unwrap(), b"both");
    assert_eq!(carol.decrypt(m.serialized()).unwrap(), b"both");
    // Carol is removed: Alice rotates and sends the new key to Bob only.
    let d2 = a.rotate(&mut rng);
    bob.process_distribution(&d2).unwrap();
    let m = a.encrypt(b"bob only", &mut rng).unwrap();
    assert_eq!(bob.decrypt(m.serialized()).unwrap(), b"bob only");
    assert!(matches!(
        carol.decrypt(m.serialized()),
        Err(GroupError::NoSenderKeyState(_))
    ));
    // Old chain messages still decrypt for Bob (late delivery).
    for _ in 0..6 {
        let d = a.rotate(&mut rng);
        bob.process_distribution(&d).unwrap();
    }
    assert_eq!(bob.state_count(), 5);
    assert_eq!(a.state_count(), 5);
    let _ = alice;
    // Persistence.
    let b2 = SenderKeyRecord::deserialize(&bob.serialize()).unwrap();
    assert_eq!(b2.serialize(), bob.serialize());
    let mut a2 = SenderKeyRecord::deserialize(&a.serialize()).unwrap();
    let m = a2.encrypt(b"after reload", &mut rng).unwrap();
    let mut b2 = b2;
    assert_eq!(b2.decrypt(m.serialized()).unwrap(), b"after reload");
}

#[test]
fn distribution_message_never_rewinds_and_forward_limit() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let mut a = SenderKeyRecord::new();
    let mut b = SenderKeyRecord::new();
    let d = a.rotate(&mut rng);
    b.process_distribution(&d).unwrap();
    let m0 = a.encrypt(b"0", &mut rng).unwrap();
    assert_eq!(b.decrypt(m0.serialized()).unwrap(), b"0");
    // Replaying the old distribution message must not re-open iteration 0.
    b.process_distribution(&SenderKeyDistributionMessage::parse(d.serialized()).unwrap())
        .unwrap();
    assert_eq!(
        b.decrypt(m0.serialized()),
        Err(GroupError::DuplicateMessage(0))
    );
    for _ in 0..(pawl_core::ratchet::MAX_FORWARD_JUMPS + 1) {
        a.encrypt(b"", &mut rng).unwrap();
    }
    let far = a.encrypt(b"far", &mut rng).unwrap();
    assert!(matches!(
        b.decrypt(far.serialized()),
        Err(GroupError::TooFarAhead { .. })
    ));
    assert!(b.decrypt(&[0x33]).is_err());
    assert!(matches!(
        b.decrypt(&[0x23; 80]),
        Err(GroupError::InvalidVersion(2))
    ));
    // A receiver cannot send on someone else's chain.
    assert_eq!(
        b.encrypt(b"x", &mut rng).unwrap_err(),
        GroupError::NoLocalSenderKey
    );
}
