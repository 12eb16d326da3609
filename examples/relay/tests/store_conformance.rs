//! One set of checks, run against every `RelayStore` backend: SQLite (a temporary file)
//! and PostgreSQL (a real server started by `pawl_relay::pg_harness`). Each check runs
//! once per backend (`sqlite::NAME`, `postgres::NAME`); a few PostgreSQL-only checks
//! (notifications, reconnects) follow. Without the PostgreSQL server binaries the
//! PostgreSQL tests fail saying so: they never skip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{mpsc, Barrier};
use std::time::{Duration, Instant};

use pawl_relay::pg_harness::PgServer;
use pawl_relay::proto::{Deliver, PreKey};
use pawl_relay::store::DeviceRecord;
use pawl_relay::{
    identity_record, MailboxEvent, PgRelayStore, PutRule, RelayStore, SqliteRelayStore,
};

/// A database that any number of stores (connections) can open.
trait Backend: Sync {
    fn open(&self) -> Box<dyn RelayStore>;
}

struct Sqlite {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Backend for Sqlite {
    fn open(&self) -> Box<dyn RelayStore> {
        Box::new(SqliteRelayStore::open(&self.path).unwrap())
    }
}

struct Postgres {
    url: String,
    server: &'static PgServer,
}

impl Backend for Postgres {
    fn open(&self) -> Box<dyn RelayStore> {
        match PgRelayStore::connect(&self.url) {
            Ok(s) => Box::new(s),
            Err(e) => panic!("{e}\nserver log:\n{}", self.server.log()),
        }
    }
}

fn sqlite() -> Sqlite {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay.db");
    Sqlite { _dir: dir, path }
}

/// A fresh database on the server shared by this test process.
fn postgres() -> Postgres {
    let server = PgServer::shared().expect("these tests need a PostgreSQL server");
    let url = server.create_database().expect("create a test database");
    Postgres { url, server }
}

macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $check() {
                super::$check(&super::sqlite());
            })*
        }
        mod postgres {
            $(#[test]
            fn $check() {
                super::$check(&super::postgres());
            })*
        }
    };
}

conformance!(
    write_batch_commits_many_writes_together,
    expire_deletes_old_messages_with_expired_receipts,
    contacts_know_who_replied,
    directory_lookup_by_prefix,
    blobs_append_in_order_seal_read_and_expire,
    devices_register_and_lookup,
    upload_keys_replaces_signed_prekey_and_adds_prekeys,
    take_bundle_consumes_the_lowest_prekey_once,
    concurrent_take_bundle_hands_out_each_prekey_once,
    enqueue_and_pending_in_order_with_limit,
    ack_deletes_once_and_keeps_a_receipt,
    ack_of_another_devices_message_does_nothing,
    receipts_are_scoped_to_their_device,
    usable_inside_an_async_runtime,
    records_append_in_order_and_replace_newer,
    concurrent_appends_of_one_version_keep_one,
    remove_device_takes_everything_of_it,
);

fn records_append_in_order_and_replace_newer(b: &dyn Backend) {
    let mut s = b.open();
    // A log: exactly latest + 1, each kept; others refused with the latest version.
    assert_eq!(
        s.record_put("u", "patch/x", 2, b"b", PutRule::Append)
            .unwrap(),
        Err(0)
    );
    assert_eq!(
        s.record_put("u", "patch/x", 1, b"a", PutRule::Append)
            .unwrap(),
        Ok(())
    );
    assert_eq!(
        s.record_put("u", "patch/x", 1, b"z", PutRule::Append)
            .unwrap(),
        Err(1)
    );
    assert_eq!(
        s.record_put("u", "patch/x", 2, b"b", PutRule::Append)
            .unwrap(),
        Ok(())
    );
    assert_eq!(
        s.record_put("u", "patch/x", 3, b"c", PutRule::Append)
            .unwrap(),
        Ok(())
    );
    assert_eq!(
        s.record_get("u", "patch/x", 1, 10).unwrap(),
        vec![(2, b"b".to_vec()), (3, b"c".to_vec())]
    );
    assert_eq!(
        s.record_get("u", "patch/x", 0, 1).unwrap(),
        vec![(1, b"a".to_vec())]
    );
    assert_eq!(
        s.record_latest("u", "patch/x").unwrap(),
        Some((3, b"c".to_vec()))
    );
    // Scoped by user and name.
    assert!(s.record_get("v", "patch/x", 0, 10).unwrap().is_empty());
    assert_eq!(s.record_latest("u", "patch/y").unwrap(), None);
    // A register: only newer versions, only the newest kept.
    assert_eq!(
        s.record_put("u", "list", 5, b"five", PutRule::Replace)
            .unwrap(),
        Ok(())
    );
    assert_eq!(
        s.record_put("u", "list", 5, b"again", PutRule::Replace)
            .unwrap(),
        Err(5)
    );
    assert_eq!(
        s.record_put("u", "list", 4, b"four", PutRule::Replace)
            .unwrap(),
        Err(5)
    );
    assert_eq!(
        s.record_put("u", "list", 9, b"nine", PutRule::Replace)
            .unwrap(),
        Ok(())
    );
    assert_eq!(
        s.record_get("u", "list", 0, 10).unwrap(),
        vec![(9, b"nine".to_vec())]
    );
    // Another connection sees it all.
    let t = b.open();
    assert_eq!(
        t.record_latest("u", "list").unwrap(),
        Some((9, b"nine".to_vec()))
    );
}

fn concurrent_appends_of_one_version_keep_one(b: &dyn Backend) {
    let barrier = Barrier::new(4);
    // Opened first, one after the other (a panic in a thread would leave the others
    // waiting at the barrier).
    let stores: Vec<_> = (0..4).map(|_| b.open()).collect();
    let won: Vec<bool> = std::thread::scope(|sc| {
        let handles: Vec<_> = stores
            .into_iter()
            .zip(0..4u8)
            .map(|(mut s, i)| {
                let barrier = &barrier;
                sc.spawn(move || {
                    barrier.wait();
                    s.record_put("u", "patch/c", 1, &[i], PutRule::Append)
                        .unwrap()
                        .is_ok()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    assert_eq!(b.open().record_get("u", "patch/c", 0, 10).unwrap().len(), 1);
}

fn remove_device_takes_everything_of_it(b: &dyn Backend) {
    let mut s = b.open();
    s.register_device("u", 1, &dev(1)).unwrap();
    s.register_device("u", 2, &dev(2)).unwrap();
    s.upload_keys("u", 2, 1, &key_for(1), &[0; 64], &prekeys([1, 2]))
        .unwrap();
    s.record_put("u", &identity_record(2), 1, b"id2", PutRule::Replace)
        .unwrap()
        .unwrap();
    s.record_put("u", &identity_record(1), 1, b"id1", PutRule::Replace)
        .unwrap()
        .unwrap();
    s.enqueue("u", 2, "w", 1, 2, b"for 2", 1).unwrap();
    assert!(s.remove_device("u", 2).unwrap());
    assert!(!s.remove_device("u", 2).unwrap(), "gone already");
    assert_eq!(s.devices("u").unwrap(), vec![1]);
    assert_eq!(s.device("u", 2).unwrap(), None);
    assert_eq!(s.take_bundle("u", 2).unwrap(), None);
    assert!(s.pending("u", 2, 10).unwrap().is_empty());
    assert_eq!(s.record_latest("u", &identity_record(2)).unwrap(), None);
    assert!(s.record_latest("u", &identity_record(1)).unwrap().is_some());
}

fn dev(n: u32) -> DeviceRecord {
    let mut identity_key = vec![5u8; 33];
    identity_key[1..5].copy_from_slice(&n.to_be_bytes());
    DeviceRecord {
        identity_key,
        registration_id: 1000 + n,
    }
}

fn key_for(id: u32) -> Vec<u8> {
    let mut k = vec![5u8; 33];
    k[1..5].copy_from_slice(&id.to_be_bytes());
    k
}

fn prekeys(ids: impl IntoIterator<Item = u32>) -> Vec<PreKey> {
    ids.into_iter()
        .map(|id| PreKey {
            id,
            public_key: key_for(id),
        })
        .collect()
}

fn ids(d: &[Deliver]) -> Vec<u64> {
    d.iter().map(|d| d.id).collect()
}

fn write_batch_commits_many_writes_together(b: &dyn Backend) {
    use pawl_relay::{NewMessage, WriteBatch};
    let mut s = b.open();
    let before = s.enqueue("bob", 1, "alice", 2, 2, b"before", 1).unwrap();
    let m = |to: &str, p: &[u8]| NewMessage {
        to_user: to.into(),
        to_device: 1,
        from_user: "alice".into(),
        from_device: 2,
        message_type: 2,
        payload: p.to_vec(),
        now_ms: 5,
    };
    let out = s
        .write_batch(&WriteBatch {
            enqueue: vec![m("bob", b"one"), m("carol", b"two"), m("bob", b"three")],
            acks: vec![
                ("bob".into(), 1, before),
                ("bob".into(), 1, 999_999),
                ("carol".into(), 1, before), // not carol's
            ],
            receipt_acks: vec![],
        })
        .unwrap();
    assert_eq!(out.ids.len(), 3);
    assert!(out.ids[0] < out.ids[1] && out.ids[1] < out.ids[2]);
    assert_eq!(out.receipts.len(), 3);
    let (u, d, r) = out.receipts[0].clone().unwrap();
    assert_eq!(
        (u.as_str(), d, r.id, r.to_user.as_str()),
        ("alice", 2, before, "bob")
    );
    assert!(out.receipts[1].is_none() && out.receipts[2].is_none());
    let bob: Vec<Vec<u8>> = s
        .pending("bob", 1, 10)
        .unwrap()
        .into_iter()
        .map(|d| d.payload)
        .collect();
    assert_eq!(bob, vec![b"one".to_vec(), b"three".to_vec()]);
    assert_eq!(s.pending("carol", 1, 10).unwrap().len(), 1);
    // Receipt acknowledgements in a batch.
    s.write_batch(&WriteBatch {
        receipt_acks: vec![("alice".into(), 2, r.receipt_id)],
        ..Default::default()
    })
    .unwrap();
    assert!(s.pending_receipts("alice", 2).unwrap().is_empty());
}

fn expire_deletes_old_messages_with_expired_receipts(b: &dyn Backend) {
    let mut s = b.open();
    let old = s.enqueue("bob", 1, "alice", 2, 2, b"old", 1_000).unwrap();
    let new = s.enqueue("bob", 1, "alice", 2, 2, b"new", 5_000).unwrap();
    let got = s.expire(2_000).unwrap();
    assert_eq!(got.len(), 1);
    let (user, device, r) = &got[0];
    assert_eq!((user.as_str(), *device), ("alice", 2));
    assert_eq!(
        (r.id, r.to_user.as_str(), r.to_device, r.expired),
        (old, "bob", 1, true)
    );
    assert_eq!(ids(&s.pending("bob", 1, 10).unwrap()), vec![new]);
    // The receipt waits for the sender like a delivery receipt, marked expired.
    let pending = s.pending_receipts("alice", 2).unwrap();
    assert_eq!(pending.len(), 1);
    assert!(pending[0].expired);
    assert_eq!(pending[0].receipt_id, r.receipt_id);
    assert!(s.expire(2_000).unwrap().is_empty(), "once");
    // An ordinary ack's receipt is not expired.
    let (_, _, ok) = s.ack("bob", 1, new).unwrap().unwrap();
    assert!(!ok.expired);
    assert!(s
        .pending_receipts("alice", 2)
        .unwrap()
        .iter()
        .any(|x| x.receipt_id == ok.receipt_id && !x.expired));
}

fn contacts_know_who_replied(b: &dyn Backend) {
    let mut s = b.open();
    assert!(
        !s.note_contact("alice", "bob").unwrap(),
        "bob never wrote to alice"
    );
    assert!(!s.note_contact("alice", "bob").unwrap());
    assert!(
        s.note_contact("bob", "alice").unwrap(),
        "alice wrote to bob"
    );
    assert!(
        s.note_contact("alice", "bob").unwrap(),
        "now bob has replied"
    );
    assert!(!s.note_contact("alice", "carol").unwrap());
    assert!(!s.replied("alice", "carol").unwrap());
    assert!(s.replied("alice", "bob").unwrap() && s.replied("bob", "alice").unwrap());
    // A queued message records the contact in the group commit.
    s.write_batch(&pawl_relay::WriteBatch {
        enqueue: vec![pawl_relay::NewMessage {
            to_user: "alice".into(),
            to_device: 1,
            from_user: "carol".into(),
            from_device: 1,
            message_type: 2,
            payload: vec![1],
            now_ms: 1,
        }],
        ..Default::default()
    })
    .unwrap();
    assert!(s.replied("alice", "carol").unwrap(), "carol wrote to alice");
}

fn directory_lookup_by_prefix(b: &dyn Backend) {
    let mut s = b.open();
    let h1 = pawl_relay::proto::discovery_hash("+4915100000001");
    let mut h2 = h1;
    h2[31] ^= 1; // same prefix, another number
    let h3 = pawl_relay::proto::discovery_hash("+4915100000003");
    s.directory_add(&h1, "+4915100000001").unwrap();
    s.directory_add(&h2, "other").unwrap();
    s.directory_add(&h3, "+4915100000003").unwrap();
    let p = |h: &[u8; 32]| h[..pawl_relay::proto::DISCOVERY_PREFIX_LEN].to_vec();
    let mut got = s.directory_lookup(&[p(&h1)]).unwrap();
    got.sort();
    let mut want = vec![
        (h1.to_vec(), "+4915100000001".to_string()),
        (h2.to_vec(), "other".to_string()),
    ];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(
        s.directory_lookup(&[vec![0xde, 0xad, 0x00]]).unwrap(),
        vec![]
    );
    assert_eq!(s.directory_lookup(&[p(&h3)]).unwrap().len(), 1);
}

fn blobs_append_in_order_seal_read_and_expire(b: &dyn Backend) {
    let mut s = b.open();
    let id = b"0123456789abcdef";
    s.blob_create(id, "alice", 1_000).unwrap();
    assert_eq!(
        s.blob_read(id, 0, 10).unwrap(),
        None,
        "not readable before sealed"
    );
    assert_eq!(
        s.blob_append(id, "alice", 0, b"hello ", false, 100)
            .unwrap(),
        Some(Ok(6))
    );
    assert_eq!(
        s.blob_append(id, "alice", 3, b"x", false, 100).unwrap(),
        Some(Err(6)),
        "wrong offset says where to resume"
    );
    assert_eq!(
        s.blob_append(id, "mallory", 6, b"x", false, 100).unwrap(),
        None,
        "only the owner appends"
    );
    assert_eq!(
        s.blob_append(id, "alice", 6, &[b'w'; 200], false, 100)
            .unwrap(),
        None,
        "size limit"
    );
    assert_eq!(
        s.blob_append(id, "alice", 6, b"world", true, 100).unwrap(),
        Some(Ok(11))
    );
    assert_eq!(
        s.blob_append(id, "alice", 11, b"!", true, 100).unwrap(),
        None,
        "sealed"
    );
    assert_eq!(
        s.blob_read(id, 0, 100).unwrap(),
        Some((11, b"hello world".to_vec()))
    );
    assert_eq!(
        s.blob_read(id, 4, 4).unwrap(),
        Some((11, b"o wo".to_vec())),
        "across chunks"
    );
    assert_eq!(s.blob_read(id, 11, 4).unwrap(), Some((11, vec![])));
    // Many chunks of uneven sizes: any window reads the right bytes.
    let many: &[u8] = b"many-chunk-blob!";
    s.blob_create(many, "alice", 5_000).unwrap(); // expires after the first one
    let mut whole = Vec::new();
    for k in 1..=20u8 {
        let chunk: Vec<u8> = (0..k).map(|i| k.wrapping_mul(31).wrapping_add(i)).collect();
        let at = whole.len() as u64;
        assert_eq!(
            s.blob_append(many, "alice", at, &chunk, k == 20, 10_000)
                .unwrap(),
            Some(Ok(at + u64::from(k)))
        );
        whole.extend_from_slice(&chunk);
    }
    for off in 0..=whole.len() {
        for len in [1usize, 2, 7, 19, 40, 300] {
            let end = (off + len).min(whole.len());
            assert_eq!(
                s.blob_read(many, off as u64, len as u32).unwrap(),
                Some((whole.len() as u64, whole[off..end].to_vec())),
                "window {off}+{len}"
            );
        }
    }
    assert_eq!(s.blob_read(b"nope", 0, 4).unwrap(), None);
    assert_eq!(s.expire_blobs(500).unwrap(), 0);
    assert_eq!(s.expire_blobs(2_000).unwrap(), 1);
    assert_eq!(s.blob_read(id, 0, 100).unwrap(), None);
    assert!(s.blob_read(many, 0, 1).unwrap().is_some());
    assert_eq!(s.expire_blobs(6_000).unwrap(), 1);
    assert_eq!(s.blob_read(many, 0, 1).unwrap(), None);
}

fn devices_register_and_lookup(b: &dyn Backend) {
    let mut s = b.open();
    assert_eq!(s.device("alice", 1).unwrap(), None);
    assert_eq!(s.devices("alice").unwrap(), Vec::<u32>::new());
    for d in [5, 1, 3] {
        s.register_device("alice", d, &dev(d)).unwrap();
    }
    s.register_device("bob", 2, &dev(9)).unwrap();
    assert_eq!(s.device("alice", 3).unwrap(), Some(dev(3)));
    assert_eq!(s.device("alice", 2).unwrap(), None);
    assert_eq!(s.device("bob", 1).unwrap(), None);
    assert_eq!(s.devices("alice").unwrap(), vec![1, 3, 5]);
    assert_eq!(s.devices("bob").unwrap(), vec![2]);
    // Registered once: a second registration fails and leaves the first.
    assert!(s.register_device("alice", 3, &dev(7)).is_err());
    assert_eq!(s.device("alice", 3).unwrap(), Some(dev(3)));
    // The store still works after the failed statement, and others see the same.
    assert_eq!(b.open().devices("alice").unwrap(), vec![1, 3, 5]);
    // The whole u32 range round-trips.
    let top = DeviceRecord {
        identity_key: vec![1; 33],
        registration_id: u32::MAX,
    };
    s.register_device("carol", u32::MAX, &top).unwrap();
    s.register_device("carol", 0, &dev(0)).unwrap();
    assert_eq!(s.device("carol", u32::MAX).unwrap(), Some(top));
    assert_eq!(s.devices("carol").unwrap(), vec![0, u32::MAX]);
    // Names are compared exactly.
    s.register_device("Alice", 8, &dev(8)).unwrap();
    assert_eq!(s.devices("Alice").unwrap(), vec![8]);
    assert_eq!(s.devices("alice").unwrap(), vec![1, 3, 5]);
}

fn upload_keys_replaces_signed_prekey_and_adds_prekeys(b: &dyn Backend) {
    let mut s = b.open();
    s.register_device("alice", 1, &dev(1)).unwrap();
    assert_eq!(s.prekeys_left("alice", 1).unwrap(), 0);
    s.upload_keys("alice", 1, 10, &[0xA; 33], &[0xB; 64], &prekeys(1..=3))
        .unwrap();
    assert_eq!(s.prekeys_left("alice", 1).unwrap(), 3);
    s.upload_keys("alice", 1, 11, &[0xC; 33], &[0xD; 64], &prekeys(4..=5))
        .unwrap();
    assert_eq!(s.prekeys_left("alice", 1).unwrap(), 5);
    // A signed prekey alone adds none.
    s.upload_keys("alice", 1, 11, &[0xC; 33], &[0xD; 64], &[])
        .unwrap();
    assert_eq!(s.prekeys_left("alice", 1).unwrap(), 5);
    // An id uploaded again gets the new key; repeated within one upload, the last one.
    let again = [
        PreKey {
            id: 1,
            public_key: vec![0x11; 33],
        },
        PreKey {
            id: 1,
            public_key: vec![0x22; 33],
        },
    ];
    s.upload_keys("alice", 1, 12, &[0xE; 33], &[0xF; 64], &again)
        .unwrap();
    assert_eq!(s.prekeys_left("alice", 1).unwrap(), 5);
    assert_eq!(s.prekeys_left("alice", 2).unwrap(), 0);
    let bundle = s.take_bundle("alice", 1).unwrap().unwrap();
    assert_eq!(bundle.device_id, 1);
    assert_eq!(bundle.registration_id, dev(1).registration_id);
    assert_eq!(bundle.identity_key, dev(1).identity_key);
    assert_eq!(bundle.signed_prekey_id, 12);
    assert_eq!(bundle.signed_prekey, vec![0xE; 33]);
    assert_eq!(bundle.signed_prekey_signature, vec![0xF; 64]);
    assert_eq!(
        bundle.prekey,
        Some(PreKey {
            id: 1,
            public_key: vec![0x22; 33]
        })
    );
}

fn take_bundle_consumes_the_lowest_prekey_once(b: &dyn Backend) {
    let mut s = b.open();
    assert_eq!(s.take_bundle("alice", 1).unwrap(), None, "unknown device");
    s.register_device("alice", 1, &dev(1)).unwrap();
    assert_eq!(
        s.take_bundle("alice", 1).unwrap(),
        None,
        "no signed prekey yet"
    );
    s.upload_keys(
        "alice",
        1,
        7,
        &[0xA; 33],
        &[0xB; 64],
        &prekeys([30, 10, 20]),
    )
    .unwrap();
    let mut other = b.open();
    let mut taken = Vec::new();
    for i in 0..3 {
        let st = if i % 2 == 0 { &mut s } else { &mut other };
        let p = st.take_bundle("alice", 1).unwrap().unwrap().prekey.unwrap();
        assert_eq!(p.public_key, key_for(p.id));
        taken.push(p.id);
    }
    assert_eq!(taken, vec![10, 20, 30]);
    assert_eq!(s.prekeys_left("alice", 1).unwrap(), 0);
    // Exhausted: still a bundle, without a one-time prekey.
    for st in [&mut s, &mut other] {
        let bundle = st.take_bundle("alice", 1).unwrap().unwrap();
        assert_eq!(bundle.prekey, None);
        assert_eq!(bundle.signed_prekey_id, 7);
        assert_eq!(bundle.identity_key, dev(1).identity_key);
    }
    assert_eq!(s.take_bundle("alice", 2).unwrap(), None);
    assert_eq!(s.take_bundle("bob", 1).unwrap(), None);
}

fn concurrent_take_bundle_hands_out_each_prekey_once(b: &dyn Backend) {
    const THREADS: usize = 8;
    {
        let mut s = b.open();
        s.register_device("alice", 1, &dev(1)).unwrap();
        s.upload_keys("alice", 1, 1, &[0xA; 33], &[0xB; 64], &prekeys(1..=100))
            .unwrap();
    }
    let barrier = Barrier::new(THREADS);
    let handed: Vec<Vec<u32>> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                scope.spawn(|| {
                    // Each thread its own connection, opened concurrently too.
                    let mut s = b.open();
                    barrier.wait();
                    let mut got = Vec::new();
                    while let Some(p) = s.take_bundle("alice", 1).unwrap().unwrap().prekey {
                        assert_eq!(p.public_key, key_for(p.id));
                        got.push(p.id);
                    }
                    got
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let all: Vec<u32> = handed.iter().flatten().copied().collect();
    let distinct: BTreeSet<u32> = all.iter().copied().collect();
    assert_eq!(all.len(), 100, "handed out: {handed:?}");
    assert_eq!(distinct, (1..=100).collect::<BTreeSet<u32>>());
    for got in &handed {
        assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
    }
    assert_eq!(b.open().prekeys_left("alice", 1).unwrap(), 0);
}

fn enqueue_and_pending_in_order_with_limit(b: &dyn Backend) {
    let mut s = b.open();
    let mut sent = Vec::new();
    for i in 0..5u32 {
        let payload = vec![i as u8; 3 + i as usize];
        let id = s
            .enqueue(
                "bob",
                1,
                "alice",
                2,
                i % 2 + 1,
                &payload,
                1_000 + u64::from(i),
            )
            .unwrap();
        sent.push(Deliver {
            id,
            from_user: "alice".into(),
            from_device: 2,
            message_type: i % 2 + 1,
            payload,
            server_time_ms: 1_000 + u64::from(i),
            ephemeral: false,
        });
    }
    let for_bob2 = s.enqueue("bob", 2, "carol", 9, 3, b"", 7).unwrap();
    let big = vec![0xEE; 256 * 1024];
    let big_id = s
        .enqueue("dave", 1, "alice", 2, 1, &big, u64::from(u32::MAX) * 1000)
        .unwrap();
    assert!(sent.windows(2).all(|w| w[0].id < w[1].id));
    assert!(!ids(&sent).contains(&for_bob2));
    assert_eq!(s.pending("bob", 1, 100).unwrap(), sent);
    assert_eq!(s.pending("bob", 1, 3).unwrap(), sent[..3].to_vec());
    assert_eq!(s.pending("bob", 1, 0).unwrap(), vec![]);
    assert_eq!(b.open().pending("bob", 1, 5).unwrap(), sent);
    let bob2 = s.pending("bob", 2, 100).unwrap();
    assert_eq!(ids(&bob2), vec![for_bob2]);
    assert_eq!(
        (
            bob2[0].from_user.as_str(),
            bob2[0].from_device,
            bob2[0].payload.len()
        ),
        ("carol", 9, 0)
    );
    let dave = s.pending("dave", 1, 1).unwrap();
    assert_eq!((dave[0].id, &dave[0].payload), (big_id, &big));
    assert_eq!(dave[0].server_time_ms, u64::from(u32::MAX) * 1000);
    assert_eq!(s.pending("carol", 1, 100).unwrap(), vec![]);
    assert_eq!(s.queue_len("bob", 1).unwrap(), 5);
    assert_eq!(s.queue_len("bob", 2).unwrap(), 1);
    assert_eq!(s.queue_len("carol", 9).unwrap(), 0);
}

fn ack_deletes_once_and_keeps_a_receipt(b: &dyn Backend) {
    let mut s = b.open();
    let m1 = s.enqueue("bob", 1, "alice", 2, 1, b"one", 1).unwrap();
    let m2 = s.enqueue("bob", 1, "alice", 3, 1, b"two", 2).unwrap();
    let (from_user, from_device, receipt) = s.ack("bob", 1, m1).unwrap().expect("a receipt");
    assert_eq!((from_user.as_str(), from_device), ("alice", 2));
    assert_eq!(
        (receipt.id, receipt.to_user.as_str(), receipt.to_device),
        (m1, "bob", 1)
    );
    assert_eq!(s.ack("bob", 1, m1).unwrap(), None, "second ack");
    assert_eq!(b.open().ack("bob", 1, m1).unwrap(), None, "ack elsewhere");
    assert_eq!(s.ack("bob", 1, m2 + 1000).unwrap(), None, "unknown id");
    assert_eq!(s.queue_len("bob", 1).unwrap(), 1);
    assert_eq!(ids(&s.pending("bob", 1, 10).unwrap()), vec![m2]);
    assert_eq!(s.pending_receipts("alice", 2).unwrap(), vec![receipt]);
    assert_eq!(s.pending_receipts("alice", 3).unwrap(), vec![]);
}

fn ack_of_another_devices_message_does_nothing(b: &dyn Backend) {
    let mut s = b.open();
    let m = s.enqueue("bob", 1, "alice", 2, 1, b"for bob.1", 1).unwrap();
    assert_eq!(s.ack("bob", 2, m).unwrap(), None, "bob's other device");
    assert_eq!(s.ack("carol", 1, m).unwrap(), None, "another user");
    assert_eq!(s.ack("alice", 2, m).unwrap(), None, "the sender");
    assert_eq!(s.queue_len("bob", 1).unwrap(), 1);
    assert_eq!(s.pending_receipts("alice", 2).unwrap(), vec![]);
    assert!(s.ack("bob", 1, m).unwrap().is_some());
}

fn receipts_are_scoped_to_their_device(b: &dyn Backend) {
    let mut s = b.open();
    let m1 = s.enqueue("bob", 1, "alice", 1, 1, b"1", 1).unwrap();
    let m2 = s.enqueue("bob", 1, "alice", 2, 1, b"2", 1).unwrap();
    let m3 = s.enqueue("carol", 1, "alice", 1, 1, b"3", 1).unwrap();
    let r1 = s.ack("bob", 1, m1).unwrap().unwrap().2;
    let r2 = s.ack("bob", 1, m2).unwrap().unwrap().2;
    let r3 = s.ack("carol", 1, m3).unwrap().unwrap().2;
    assert!(r1.receipt_id < r2.receipt_id && r2.receipt_id < r3.receipt_id);
    assert_eq!((r3.id, r3.to_user.as_str(), r3.to_device), (m3, "carol", 1));
    assert_eq!(
        s.pending_receipts("alice", 1).unwrap(),
        vec![r1.clone(), r3.clone()]
    );
    assert_eq!(s.pending_receipts("alice", 2).unwrap(), vec![r2.clone()]);
    assert_eq!(s.pending_receipts("bob", 1).unwrap(), vec![]);
    // Only the device a receipt is for can delete it.
    s.ack_receipt("alice", 2, r1.receipt_id).unwrap();
    s.ack_receipt("bob", 1, r1.receipt_id).unwrap();
    s.ack_receipt("alice", 1, r2.receipt_id).unwrap();
    assert_eq!(
        s.pending_receipts("alice", 1).unwrap(),
        vec![r1.clone(), r3.clone()]
    );
    assert_eq!(s.pending_receipts("alice", 2).unwrap(), vec![r2.clone()]);
    s.ack_receipt("alice", 1, r1.receipt_id).unwrap();
    assert_eq!(s.pending_receipts("alice", 1).unwrap(), vec![r3.clone()]);
    // Again, or unknown: nothing happens.
    s.ack_receipt("alice", 1, r1.receipt_id).unwrap();
    s.ack_receipt("alice", 1, r3.receipt_id + 1000).unwrap();
    assert_eq!(b.open().pending_receipts("alice", 1).unwrap(), vec![r3]);
}

/// The relay calls its store from async tasks: no backend may need (or refuse to run
/// inside) a runtime.
fn usable_inside_an_async_runtime(b: &dyn Backend) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut s = b.open();
        s.register_device("alice", 1, &dev(1)).unwrap();
        let id = s.enqueue("alice", 1, "bob", 1, 1, b"x", 1).unwrap();
        assert_eq!(ids(&s.pending("alice", 1, 10).unwrap()), vec![id]);
        s.subscribe_mailboxes(Box::new(|_| {})).unwrap();
        drop(s);
    });
}

/// The next event, or panic after `within`.
fn next_event(rx: &mpsc::Receiver<MailboxEvent>, within: Duration) -> MailboxEvent {
    rx.recv_timeout(within)
        .unwrap_or_else(|e| panic!("no mailbox event within {within:?}: {e}"))
}

fn changed(user: &str, device_id: u32) -> MailboxEvent {
    MailboxEvent::Changed {
        user: user.into(),
        device_id,
    }
}

fn subscribe(s: &dyn RelayStore) -> mpsc::Receiver<MailboxEvent> {
    let (tx, rx) = mpsc::channel();
    s.subscribe_mailboxes(Box::new(move |e| {
        let _ = tx.send(e);
    }))
    .unwrap();
    rx
}

#[test]
fn sqlite_subscribe_mailboxes_is_a_no_op() {
    let b = sqlite();
    let mut s = b.open();
    let rx = subscribe(s.as_ref());
    s.enqueue("bob", 1, "alice", 1, 1, b"x", 1).unwrap();
    assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
}

#[test]
fn postgres_subscribe_sees_writes_of_other_connections() {
    let b = postgres();
    let listener = b.open();
    let rx = subscribe(listener.as_ref());
    let mut writer = b.open(); // another connection, as another relay process would have
    let started = Instant::now();
    let m = writer.enqueue("bob", 7, "alice", 1, 1, b"hi", 1).unwrap();
    assert_eq!(next_event(&rx, Duration::from_secs(2)), changed("bob", 7));
    eprintln!("enqueue -> event: {:?}", started.elapsed());
    // An ack tells the sender's device about its receipt.
    writer.ack("bob", 7, m).unwrap().unwrap();
    assert_eq!(next_event(&rx, Duration::from_secs(2)), changed("alice", 1));
    // The payload puts the device first: a user name may hold ':'.
    writer.enqueue("x:y", 2, "alice", 1, 1, b"", 1).unwrap();
    assert_eq!(next_event(&rx, Duration::from_secs(2)), changed("x:y", 2));
    // Nothing else notifies: reads, an ack that found nothing, receipt acks.
    writer.pending("bob", 7, 10).unwrap();
    assert_eq!(writer.ack("bob", 7, m).unwrap(), None);
    let r = writer.pending_receipts("alice", 1).unwrap();
    writer.ack_receipt("alice", 1, r[0].receipt_id).unwrap();
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
    // A failed statement sends nothing either.
    writer.register_device("bob", 7, &dev(7)).unwrap();
    assert!(writer.register_device("bob", 7, &dev(7)).is_err());
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
    // Two subscribers both hear it, and dropping the store ends its subscriptions.
    let rx2 = subscribe(listener.as_ref());
    writer.enqueue("bob", 7, "alice", 1, 1, b"hi", 1).unwrap();
    assert_eq!(next_event(&rx, Duration::from_secs(2)), changed("bob", 7));
    assert_eq!(next_event(&rx2, Duration::from_secs(2)), changed("bob", 7));
    drop(listener);
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(2)),
        Err(mpsc::RecvTimeoutError::Disconnected),
        "the listener thread ends (dropping its callback) once the store is dropped"
    );
}

fn admin(b: &Postgres) -> ::postgres::Client {
    ::postgres::Client::connect(&b.url, ::postgres::NoTls).unwrap()
}

#[test]
fn postgres_subscription_resyncs_after_its_connection_drops() {
    let b = postgres();
    let listener = b.open();
    let rx = subscribe(listener.as_ref());
    let killed = admin(&b)
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND query = 'LISTEN pawl_mailbox'",
            &[],
        )
        .unwrap();
    assert_eq!(killed.len(), 1, "one listening connection");
    assert_eq!(
        next_event(&rx, Duration::from_secs(5)),
        MailboxEvent::Resync
    );
    b.open().enqueue("bob", 1, "alice", 1, 1, b"x", 1).unwrap();
    assert_eq!(next_event(&rx, Duration::from_secs(2)), changed("bob", 1));
}

#[test]
fn postgres_store_reconnects_after_its_connection_drops() {
    let b = postgres();
    let mut s = b.open();
    s.register_device("alice", 1, &dev(1)).unwrap();
    let killed = admin(&b)
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .unwrap();
    assert_eq!(killed.len(), 1);
    // The call that finds the connection gone may fail; the next one reconnects.
    let _ = s.devices("alice");
    assert_eq!(s.devices("alice").unwrap(), vec![1]);
    s.enqueue("alice", 1, "bob", 1, 1, b"x", 1).unwrap();
    assert_eq!(s.queue_len("alice", 1).unwrap(), 1);
}

#[test]
fn postgres_harness_stops_the_server_on_drop() {
    let server = PgServer::start().expect("these tests need a PostgreSQL server");
    let socket = server.socket_dir().join(".s.PGSQL.5432");
    let data = server.data_dir().to_path_buf();
    assert!(socket.exists());
    let url = server.create_database().unwrap();
    let mut s = PgRelayStore::connect(&url).unwrap();
    s.register_device("alice", 1, &dev(1)).unwrap();
    drop(s);
    drop(server);
    assert!(!socket.exists() && !data.exists());
    assert!(PgRelayStore::connect(&url).is_err());
}

/// A test process that dies without dropping its server (killed, or exiting with the
/// shared one in a static) leaves no server behind: the watchdog stops it.
#[test]
fn postgres_harness_cleans_up_after_its_process_dies() {
    const CHILD: &str = "PAWL_TEST_DIE_WITH_A_SERVER";
    if let Some(report) = std::env::var_os(CHILD) {
        let server = PgServer::start().expect("these tests need a PostgreSQL server");
        std::fs::write(report, server.data_dir().to_str().unwrap()).unwrap();
        std::process::exit(3); // no destructor runs
    }
    let tmp = tempfile::tempdir().unwrap();
    let report = tmp.path().join("data_dir");
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "postgres_harness_cleans_up_after_its_process_dies",
            "--nocapture",
        ])
        .env(CHILD, &report)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(3));
    let data = PathBuf::from(std::fs::read_to_string(&report).unwrap());
    let pid: String = std::fs::read_to_string(data.join("postmaster.pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(15);
    while data.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!data.exists(), "{} is still there", data.display());
    // Gone, or a zombie until init reaps it (the postmaster was orphaned).
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let running = state
        .rsplit_once(") ")
        .is_some_and(|(_, rest)| !rest.starts_with('Z'));
    assert!(!running, "postmaster {pid} still runs: {state}");
}
