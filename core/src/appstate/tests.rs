#![allow(clippy::unwrap_used)]

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;

use super::proto::{ArchiveAction, MarkReadAction, PinAction, SyncdSnapshot};
use super::storage::by_index_is_consistent;
use super::*;
use crate::error::DecodeError;
use prost::Message as _;

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(7)
}

fn k1() -> SyncKey {
    SyncKey::new(SyncKey::key_id(0, 1), [0x11; 32])
}

fn k2() -> SyncKey {
    SyncKey::new(SyncKey::key_id(0, 2), [0x22; 32])
}

fn lookup(keys: &[SyncKey]) -> impl Fn(&[u8]) -> Option<SyncKey> + '_ {
    move |id| keys.iter().find(|k| k.id() == id).cloned()
}

fn archived(on: bool, ts: i64) -> SyncActionValue {
    SyncActionValue {
        timestamp: Some(ts),
        archive: Some(ArchiveAction { archived: Some(on) }),
        ..Default::default()
    }
}

fn pinned(on: bool) -> SyncActionValue {
    SyncActionValue {
        pin: Some(PinAction { pinned: Some(on) }),
        ..Default::default()
    }
}

fn read(on: bool) -> SyncActionValue {
    SyncActionValue {
        mark_read: Some(MarkReadAction { read: Some(on) }),
        ..Default::default()
    }
}

/// Prepares, "sends" and commits; returns the patch bytes.
fn push(
    state: &mut CollectionState,
    muts: &[Mutation],
    key: &SyncKey,
    rng: &mut ChaCha20Rng,
) -> Vec<u8> {
    let p = state.prepare_patch(muts, key, 1, rng).unwrap();
    let bytes = p.bytes().to_vec();
    p.commit(state).unwrap();
    bytes
}

/// A relay with linear versions for one collection.
#[derive(Default)]
struct Relay {
    patches: Vec<Vec<u8>>,
}

impl Relay {
    /// Accepts the patch if it is for the next version; else the relay's version.
    fn submit(&mut self, p: &PreparedPatch) -> Result<(), u64> {
        let have = self.patches.len() as u64;
        if p.version() != have + 1 {
            return Err(have);
        }
        self.patches.push(p.bytes().to_vec());
        Ok(())
    }
}

/// Three patches with overwrites and removes, from device A; returns A and the patches.
fn history(rng: &mut ChaCha20Rng) -> (CollectionState, Vec<Vec<u8>>) {
    let mut a = CollectionState::new(REGULAR_LOW);
    let p1 = push(
        &mut a,
        &[
            Mutation::set(archive_index("c1"), archived(true, 1)),
            Mutation::set(mark_read_index("c1"), read(true)),
            Mutation::set(pin_index("c2"), pinned(true)),
        ],
        &k1(),
        rng,
    );
    let p2 = push(
        &mut a,
        &[
            Mutation::remove(mark_read_index("c1")),
            Mutation::set(archive_index("c1"), archived(false, 2)),
        ],
        &k1(),
        rng,
    );
    let p3 = push(
        &mut a,
        &[Mutation::set(archive_index("c3"), archived(true, 3))],
        &k1(),
        rng,
    );
    (a, vec![p1, p2, p3])
}

fn apply_all(mut s: CollectionState, patches: &[Vec<u8>], keys: &[SyncKey]) -> CollectionState {
    for p in patches {
        s = s.apply_patch(p, lookup(keys)).unwrap().0;
    }
    s
}

#[test]
fn round_trip_across_two_devices() {
    let mut rng = rng();
    let mut a = CollectionState::new(REGULAR_LOW);
    let mut b = CollectionState::new(REGULAR_LOW);
    let muts = [
        Mutation::set(archive_index("c1"), archived(true, 5)),
        Mutation::set(mark_read_index("c1"), read(true)),
        Mutation::set(pin_index("c2"), pinned(true)),
    ];
    let p1 = push(&mut a, &muts, &k1(), &mut rng);
    let (b1, applied) = b.apply_patch(&p1, lookup(&[k1()])).unwrap();
    assert_eq!(applied.len(), 3);
    for (m, got) in muts.iter().zip(&applied) {
        assert_eq!((m.op, &m.index, &m.value), (got.op, &got.index, &got.value));
    }
    b = b1;
    assert_eq!(b, a);
    assert_eq!(b.encode(), a.encode());
    assert_eq!(b.version(), 1);
    assert_eq!(b.len(), 3);
    assert_eq!(b.get(&pin_index("c2")), Some(&pinned(true)));

    // B writes back: one REMOVE, one overwrite.
    let p2 = push(
        &mut b,
        &[
            Mutation::remove(archive_index("c1")),
            Mutation::set(pin_index("c2"), pinned(false)),
        ],
        &k1(),
        &mut rng,
    );
    let (a2, applied) = a.apply_patch(&p2, lookup(&[k1()])).unwrap();
    assert_eq!(applied[0].op, Operation::Remove);
    a = a2;
    assert_eq!(a.encode(), b.encode());
    assert_eq!(a.get(&archive_index("c1")), None);
    assert_eq!(a.get(&pin_index("c2")), Some(&pinned(false)));
    let values: Vec<_> = a.values().map(|(i, v)| (i.to_vec(), v.clone())).collect();
    assert_eq!(
        values,
        vec![
            (mark_read_index("c1"), read(true)),
            (pin_index("c2"), pinned(false))
        ]
    );
    assert!(by_index_is_consistent(&a));
}

#[test]
fn lthash_add_remove_inverse_and_order_independent() {
    let mut rng = rng();
    let items: Vec<[u8; 32]> = (0..6)
        .map(|_| {
            let mut b = [0u8; 32];
            rng.fill_bytes(&mut b);
            b
        })
        .collect();
    let mut fwd = LtHash::ZERO;
    items.iter().for_each(|i| fwd.add(i));
    let mut rev = LtHash::ZERO;
    items.iter().rev().for_each(|i| rev.add(i));
    assert_eq!(fwd, rev);
    assert_ne!(fwd, LtHash::ZERO);

    let mut h = fwd;
    h.add(b"one more");
    assert_ne!(h, fwd);
    h.remove(b"one more");
    assert_eq!(h, fwd);

    for i in [3, 0, 5, 1, 4, 2] {
        h.remove(&items[i]);
    }
    assert_eq!(h, LtHash::ZERO);
    // Removing before adding wraps and still cancels.
    h.remove(&items[0]);
    h.add(&items[0]);
    assert_eq!(h, LtHash::ZERO);
}

#[test]
fn concurrent_edits_rebase_on_the_accepted_patch() {
    let mut rng = rng();
    let mut relay = Relay::default();
    let mut a = CollectionState::new(REGULAR_LOW);
    let first = a
        .prepare_patch(
            &[Mutation::set(pin_index("x"), pinned(true))],
            &k1(),
            1,
            &mut rng,
        )
        .unwrap();
    relay.submit(&first).unwrap();
    first.commit(&mut a).unwrap();
    let mut b = apply_all(CollectionState::new(REGULAR_LOW), &relay.patches, &[k1()]);
    assert_eq!(a, b);

    // Both prepare version 2.
    let pa = a
        .prepare_patch(
            &[Mutation::set(archive_index("x"), archived(true, 10))],
            &k1(),
            1,
            &mut rng,
        )
        .unwrap();
    let b_muts = [
        Mutation::set(archive_index("x"), archived(false, 11)),
        Mutation::remove(pin_index("x")),
    ];
    let pb = b.prepare_patch(&b_muts, &k1(), 2, &mut rng).unwrap();
    assert_eq!((pa.version(), pb.version()), (2, 2));
    relay.submit(&pa).unwrap();
    pa.commit(&mut a).unwrap();
    assert_eq!(relay.submit(&pb), Err(2));
    // B's refused patch cannot be applied on top of the accepted one either.
    assert_eq!(
        a.apply_patch(pb.bytes(), lookup(&[k1()])).unwrap_err(),
        AppStateError::VersionGap {
            expected: 3,
            got: 2
        }
    );

    // B fetches what it missed, its stale patch no longer commits, it prepares again.
    b = apply_all(b, &relay.patches[1..], &[k1()]);
    assert_eq!(b, a);
    let before = b.clone();
    assert_eq!(pb.commit(&mut b), Err(AppStateError::StaleBase));
    assert_eq!(b, before);
    let pb2 = b.prepare_patch(&b_muts, &k1(), 2, &mut rng).unwrap();
    relay.submit(&pb2).unwrap();
    pb2.commit(&mut b).unwrap();
    a = apply_all(a, &relay.patches[2..], &[k1()]);

    assert_eq!(a.version(), 3);
    assert_eq!(a.hash(), b.hash());
    assert_eq!(a.encode(), b.encode());
    assert_eq!(a.get(&archive_index("x")), Some(&archived(false, 11)));
    assert_eq!(a.get(&pin_index("x")), None);
    // A late joiner replaying the relay's log agrees too.
    let c = apply_all(CollectionState::new(REGULAR_LOW), &relay.patches, &[k1()]);
    assert_eq!(c.encode(), a.encode());
}

#[test]
fn tampering_with_any_byte_fails_and_changes_nothing() {
    let mut rng = rng();
    let (mut a, patches) = history(&mut rng);
    let b = apply_all(CollectionState::new(REGULAR_LOW), &patches, &[k1()]);
    // Overwrite, remove and a new SET; device index 7 is the last field (`40 07`).
    let p = a
        .prepare_patch(
            &[
                Mutation::set(archive_index("c1"), archived(true, 9)),
                Mutation::remove(pin_index("c2")),
                Mutation::set(mark_read_index("c9"), read(false)),
            ],
            &k1(),
            7,
            &mut rng,
        )
        .unwrap();
    let bytes = p.bytes().to_vec();
    assert_eq!(&bytes[bytes.len() - 2..], &[0x40, 0x07]);
    let before = b.encode();
    let (good, good_applied) = b.apply_patch(&bytes, lookup(&[k1()])).unwrap();
    assert_eq!(&good, p.state());
    let mut rejected = 0;
    for i in 0..bytes.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut t = bytes.clone();
            t[i] ^= mask;
            match b.apply_patch(&t, lookup(&[k1()])) {
                Err(_) => rejected += 1,
                // Only the device index is not authenticated (as in WhatsApp), and it
                // changes nothing.
                Ok((s, applied)) => {
                    assert!(i >= bytes.len() - 2, "flip {mask:#x} at {i} accepted");
                    assert_eq!((s, applied), (good.clone(), good_applied.clone()));
                }
            }
        }
    }
    assert!(rejected >= 3 * (bytes.len() - 2));
    for n in 0..bytes.len() - 2 {
        assert!(
            b.apply_patch(&bytes[..n], lookup(&[k1()])).is_err(),
            "prefix {n}"
        );
    }
    assert_eq!(b.encode(), before);
    p.commit(&mut a).unwrap();
    assert_eq!(a.encode(), good.encode());
}

#[test]
fn unknown_or_wrong_key() {
    let mut rng = rng();
    let (_, patches) = history(&mut rng);
    let s = CollectionState::new(REGULAR_LOW);
    assert_eq!(
        s.apply_patch(&patches[0], lookup(&[k2()])).unwrap_err(),
        AppStateError::UnknownKey(k1().id().to_vec())
    );
    assert_eq!(
        s.apply_patch(&patches[0], |_| None).unwrap_err().fault(),
        crate::error::Fault::Caller
    );
    let impostor = SyncKey::new(k1().id(), [0x99; 32]);
    assert_eq!(
        s.apply_patch(&patches[0], lookup(&[impostor])).unwrap_err(),
        AppStateError::BadValueMac
    );
}

#[test]
fn dropped_reordered_and_replayed_patches() {
    let mut rng = rng();
    let (a, p) = history(&mut rng);
    let keys = [k1()];
    let s0 = CollectionState::new(REGULAR_LOW);
    // Reordered: version 2 first.
    assert_eq!(
        s0.apply_patch(&p[1], lookup(&keys)).unwrap_err(),
        AppStateError::VersionGap {
            expected: 1,
            got: 2
        }
    );
    // Dropped: version 3 onto 1.
    let s1 = apply_all(s0, &p[..1], &keys);
    assert_eq!(
        s1.apply_patch(&p[2], lookup(&keys)).unwrap_err(),
        AppStateError::VersionGap {
            expected: 2,
            got: 3
        }
    );
    // Replayed: old patches onto 2.
    let s2 = apply_all(s1, &p[1..2], &keys);
    for (old, got) in [(&p[0], 1), (&p[1], 2)] {
        assert_eq!(
            s2.apply_patch(old, lookup(&keys)).unwrap_err(),
            AppStateError::VersionGap { expected: 3, got }
        );
    }
    let s3 = apply_all(s2, &p[2..], &keys);
    assert_eq!(s3.encode(), a.encode());
}

#[test]
fn patch_is_bound_to_its_collection() {
    let mut rng = rng();
    let (_, p) = history(&mut rng);
    let other = CollectionState::new(REGULAR);
    assert_eq!(
        other.apply_patch(&p[0], lookup(&[k1()])).unwrap_err(),
        AppStateError::BadSnapshotMac
    );
}

#[test]
fn snapshot_recovery_equals_patch_history() {
    let mut rng = rng();
    let (mut a, _) = history(&mut rng);
    // A record under a second key (rotation): recovery needs both keys.
    let p4 = push(
        &mut a,
        &[Mutation::set(pin_index("c4"), pinned(true))],
        &k2(),
        &mut rng,
    );
    let snap = a.snapshot(&k2());
    assert_eq!(
        CollectionState::from_snapshot(REGULAR_LOW, &snap, lookup(&[k2()])).unwrap_err(),
        AppStateError::UnknownKey(k1().id().to_vec())
    );
    let (r, applied) =
        CollectionState::from_snapshot(REGULAR_LOW, &snap, lookup(&[k1(), k2()])).unwrap();
    assert_eq!(r, a);
    assert_eq!(r.encode(), a.encode());
    assert_eq!(applied.len(), a.len());
    assert!(applied.iter().all(|m| m.op == Operation::Set));
    assert!(by_index_is_consistent(&r));
    // The recovered state follows the log from there.
    let mut a2 = a.clone();
    let p5 = push(
        &mut a2,
        &[Mutation::remove(pin_index("c4"))],
        &k2(),
        &mut rng,
    );
    let (r2, _) = r.apply_patch(&p5, lookup(&[k1(), k2()])).unwrap();
    assert_eq!(r2.encode(), a2.encode());
    assert!(!p4.is_empty());
    // Empty collection.
    let empty = CollectionState::new(REGULAR);
    let (e, applied) =
        CollectionState::from_snapshot(REGULAR, &empty.snapshot(&k1()), lookup(&[k1()])).unwrap();
    assert_eq!((e, applied.len()), (empty, 0));
}

#[test]
fn altered_snapshot_is_rejected() {
    let mut rng = rng();
    let (a, _) = history(&mut rng);
    let snap = a.snapshot(&k1());
    let keys = [k1()];
    let recover = |s: &SyncdSnapshot| {
        CollectionState::from_snapshot(REGULAR_LOW, &s.encode_to_vec(), lookup(&keys))
    };
    let orig = SyncdSnapshot::decode(snap.as_slice()).unwrap();
    assert!(recover(&orig).is_ok());

    let mut s = orig.clone();
    s.records.remove(1);
    assert_eq!(recover(&s).unwrap_err(), AppStateError::BadSnapshotMac);
    let mut s = orig.clone();
    s.records[0].value[20] ^= 1;
    assert_eq!(recover(&s).unwrap_err(), AppStateError::BadValueMac);
    let mut s = orig.clone();
    let i0 = s.records[0].index.clone();
    s.records[0].index = s.records[1].index.clone();
    s.records[1].index = i0;
    assert_eq!(recover(&s).unwrap_err(), AppStateError::BadIndexMac);
    let mut s = orig.clone();
    s.records.push(s.records[0].clone());
    assert!(matches!(recover(&s).unwrap_err(), AppStateError::Decode(_)));
    let mut s = orig.clone();
    s.version += 1;
    assert_eq!(recover(&s).unwrap_err(), AppStateError::BadSnapshotMac);
    assert_eq!(
        CollectionState::from_snapshot(REGULAR_HIGH, &snap, lookup(&keys)).unwrap_err(),
        AppStateError::BadSnapshotMac
    );
    for i in 0..snap.len() {
        let mut t = snap.clone();
        t[i] ^= 0x01;
        assert!(
            CollectionState::from_snapshot(REGULAR_LOW, &t, lookup(&keys)).is_err(),
            "flip at {i}"
        );
    }
}

#[test]
fn remove_returns_the_hash_to_its_prior_value() {
    let mut rng = rng();
    let mut s = CollectionState::new(REGULAR_LOW);
    push(
        &mut s,
        &[Mutation::set(pin_index("a"), pinned(true))],
        &k1(),
        &mut rng,
    );
    let h1 = *s.hash();
    push(
        &mut s,
        &[Mutation::set(pin_index("b"), pinned(true))],
        &k1(),
        &mut rng,
    );
    assert_ne!(*s.hash(), h1);
    push(&mut s, &[Mutation::remove(pin_index("b"))], &k1(), &mut rng);
    assert_eq!(*s.hash(), h1);
    push(&mut s, &[Mutation::remove(pin_index("a"))], &k1(), &mut rng);
    assert_eq!((*s.hash(), s.len(), s.version()), (LtHash::ZERO, 0, 4));
    // SET then REMOVE of the same index inside one patch.
    push(
        &mut s,
        &[
            Mutation::set(pin_index("c"), pinned(true)),
            Mutation::remove(pin_index("c")),
        ],
        &k1(),
        &mut rng,
    );
    assert_eq!((*s.hash(), s.len()), (LtHash::ZERO, 0));
}

#[test]
fn remove_of_an_unknown_index_fails() {
    let mut rng = rng();
    let s = CollectionState::new(REGULAR_LOW);
    let rm = [Mutation::remove(pin_index("nope"))];
    assert_eq!(
        s.prepare_patch(&rm, &k1(), 0, &mut rng).unwrap_err(),
        AppStateError::UnknownIndex
    );
    // A patch removing X applied where X does not exist (a diverged state).
    let mut a = CollectionState::new(REGULAR_LOW);
    push(
        &mut a,
        &[Mutation::set(pin_index("x"), pinned(true))],
        &k1(),
        &mut rng,
    );
    let mut b = CollectionState::new(REGULAR_LOW);
    push(
        &mut b,
        &[Mutation::set(pin_index("y"), pinned(true))],
        &k1(),
        &mut rng,
    );
    let p = a
        .prepare_patch(&[Mutation::remove(pin_index("x"))], &k1(), 0, &mut rng)
        .unwrap();
    assert_eq!(
        b.apply_patch(p.bytes(), lookup(&[k1()])).unwrap_err(),
        AppStateError::UnknownIndex
    );
}

#[test]
fn prepare_rejects_bad_arguments_and_commit_a_stale_base() {
    let mut rng = rng();
    let s = CollectionState::new(REGULAR_LOW);
    let bad = |m: &[Mutation]| s.prepare_patch(m, &k1(), 0, &mut rng.clone()).unwrap_err();
    assert!(matches!(bad(&[]), AppStateError::InvalidArgument(_)));
    assert!(matches!(
        bad(&[Mutation::set(vec![], pinned(true))]),
        AppStateError::InvalidArgument(_)
    ));
    assert!(matches!(
        bad(&[Mutation::set(mute_index("c"), pinned(true))]),
        AppStateError::InvalidArgument(_)
    ));
    // Unknown kinds go anywhere.
    let custom = vec!["label".to_owned(), "7".to_owned()];
    assert!(s
        .prepare_patch(&[Mutation::set(custom, pinned(true))], &k1(), 0, &mut rng)
        .is_ok());

    let p = s
        .prepare_patch(
            &[Mutation::set(pin_index("a"), pinned(true))],
            &k1(),
            0,
            &mut rng,
        )
        .unwrap();
    let mut other = CollectionState::new(REGULAR_LOW);
    push(
        &mut other,
        &[Mutation::set(pin_index("b"), pinned(true))],
        &k1(),
        &mut rng,
    );
    let before = other.clone();
    assert_eq!(p.clone().commit(&mut other), Err(AppStateError::StaleBase));
    assert_eq!(other, before);
    let mut wrong_name = CollectionState::new(REGULAR);
    assert_eq!(p.commit(&mut wrong_name), Err(AppStateError::StaleBase));
}

#[test]
fn state_encoding_round_trips_and_is_checked() {
    let mut rng = rng();
    let (a, _) = history(&mut rng);
    let bytes = a.encode();
    let d = CollectionState::decode(&bytes).unwrap();
    assert_eq!(d, a);
    assert!(by_index_is_consistent(&d));
    assert_eq!(
        CollectionState::decode(&CollectionState::new(REGULAR).encode()).unwrap(),
        CollectionState::new(REGULAR)
    );

    assert_eq!(&bytes[..2], &[0x08, 0x01]);
    let mut t = bytes.clone();
    t[1] = 2;
    assert_eq!(
        CollectionState::decode(&t),
        Err(DecodeError::InvalidField("format"))
    );
    // A record's value MAC altered: the stored LTHash no longer matches.
    let mac = a.records().next().unwrap().1.value_mac().to_vec();
    let at = bytes.windows(32).position(|w| w == mac.as_slice()).unwrap();
    let mut t = bytes.clone();
    t[at] ^= 1;
    assert_eq!(
        CollectionState::decode(&t),
        Err(DecodeError::InvalidField("hash"))
    );
    for n in 0..bytes.len() {
        let _ = CollectionState::decode(&bytes[..n]);
        let mut t = bytes.clone();
        t[n] ^= 0x5a;
        let _ = CollectionState::decode(&t);
    }
}

#[test]
fn key_rotation_gives_an_index_two_records() {
    let mut rng = rng();
    let mut a = CollectionState::new(REGULAR_LOW);
    let p1 = push(
        &mut a,
        &[Mutation::set(archive_index("x"), archived(true, 1))],
        &k1(),
        &mut rng,
    );
    let p2 = push(
        &mut a,
        &[Mutation::set(archive_index("x"), archived(false, 2))],
        &k2(),
        &mut rng,
    );
    assert_eq!(a.len(), 2);
    assert_eq!(a.get(&archive_index("x")), Some(&archived(false, 2)));
    assert_eq!(a.values().count(), 1);
    let b = apply_all(CollectionState::new(REGULAR_LOW), &[p1, p2], &[k1(), k2()]);
    let (r, _) =
        CollectionState::from_snapshot(REGULAR_LOW, &a.snapshot(&k2()), lookup(&[k1(), k2()]))
            .unwrap();
    assert_eq!((&b, &r), (&a, &a));
    push(
        &mut a,
        &[Mutation::remove(archive_index("x"))],
        &k2(),
        &mut rng,
    );
    assert_eq!(a.get(&archive_index("x")), Some(&archived(true, 1)));
    assert!(by_index_is_consistent(&a));
}

#[test]
fn debug_output_hides_secrets() {
    let k = SyncKey::new(SyncKey::key_id(0, 1), [0xab; 32]);
    let d = format!("{k:?}");
    assert!(d.contains("redacted") && d.contains("01"), "{d}");
    assert!(!d.contains("171") && !d.contains("ab, ab"), "{d}");
    assert_eq!(format!("{:?}", k.expand()), "MutationKeys(<redacted>)");
}

#[test]
fn garbage_never_panics() {
    let mut rng = rng();
    let (a, patches) = history(&mut rng);
    let snap = a.snapshot(&k1());
    let state = a.encode();
    let s1 = apply_all(CollectionState::new(REGULAR_LOW), &patches[..1], &[k1()]);
    let keys = [k1()];
    let mut buf = vec![0u8; 400];
    for i in 0..3000 {
        let n = rng.next_u32() as usize % buf.len();
        rng.fill_bytes(&mut buf[..n]);
        let g = &buf[..n];
        assert!(s1.apply_patch(g, lookup(&keys)).is_err());
        let _ = CollectionState::from_snapshot(REGULAR_LOW, g, lookup(&keys));
        let _ = CollectionState::decode(g);
        let _ = parse_index(&String::from_utf8_lossy(g));
        // Valid messages with a few random bytes overwritten.
        for valid in [&patches[1], &snap, &state] {
            let mut t = valid.clone();
            for _ in 0..1 + i % 4 {
                let at = rng.next_u32() as usize % t.len();
                t[at] = rng.next_u32() as u8;
            }
            let _ = s1.apply_patch(&t, lookup(&keys));
            let _ = CollectionState::from_snapshot(REGULAR_LOW, &t, lookup(&keys));
            let _ = CollectionState::decode(&t);
        }
    }
    for n in 0..snap.len() {
        assert!(
            CollectionState::from_snapshot(REGULAR_LOW, &snap[..n], lookup(&keys)).is_err(),
            "{n}"
        );
    }
    for n in 0..patches[1].len() {
        let _ = s1.apply_patch(&patches[1][..n], lookup(&keys));
    }
}
