//! The relay on a real loopback WebSocket, driven by real Pawl devices.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use pawl_core::keys::{IdentityKeyPair, PreKeyBundle, PreKeyRecord, SignedPreKeyRecord};
use pawl_core::sqlite::messages::{Envelope, Received};
use pawl_core::sqlite::SqliteStore;
use pawl_core::store::{PreKeyStore, SignedPreKeyStore};
use pawl_core::{process_prekey_bundle, IdentityKey, ProtocolAddress, PublicKey};
use pawl_relay::proto::*;
use pawl_relay::{DevCodeSender, Limits, Registrar, Relay, SqliteRelayStore};

struct Running {
    addr: String,
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
}

async fn start(limits: Limits) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("relay.db");
    // These protocol tests register devices on first Auth (the development mode);
    // registration by phone number is tested in registration.rs.
    let limits = Limits {
        open_registration: true,
        ..limits
    };
    let registrar = Registrar::new(Box::new(DevCodeSender::default()), Default::default());
    let relay = Relay::new(
        Box::new(SqliteRelayStore::open(&db).unwrap()),
        limits,
        registrar,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("ws://{}/v1/ws", listener.local_addr().unwrap());
    tokio::spawn(pawl_relay::serve(listener, relay));
    Running {
        addr,
        _dir: dir,
        db,
    }
}

struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next: u64,
    pushed: VecDeque<RelayKind>,
}

async fn read(ws: &mut WebSocketStream<MaybeTlsStream<TcpStream>>) -> Option<RelayKind> {
    loop {
        match ws.next().await? {
            Ok(Message::Binary(b)) => return RelayFrame::decode(b.as_ref()).unwrap().kind,
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

async fn send_frame(ws: &mut WebSocketStream<MaybeTlsStream<TcpStream>>, f: ClientFrame) {
    ws.send(Message::Binary(f.encode_to_vec().into()))
        .await
        .unwrap();
}

/// An `Auth` for (user, device) presenting `identity`, signed by `signer` over `nonce`.
fn auth(
    user: &str,
    device: u32,
    identity: &IdentityKeyPair,
    signer: &IdentityKeyPair,
    nonce: &[u8],
) -> ClientFrame {
    let signature = signer
        .private_key()
        .sign(&auth_message(nonce, user, device), &mut rand::rngs::OsRng);
    let a = Auth {
        user: user.into(),
        device_id: device,
        identity_key: identity.identity_key().serialize().to_vec(),
        registration_id: 7,
        signature: signature.to_vec(),
    };
    ClientFrame {
        request_id: 1,
        kind: Some(ClientKind::Auth(a)),
    }
}

impl Client {
    /// Connect and authenticate; the relay's answer to Auth is returned on failure.
    async fn connect(
        addr: &str,
        user: &str,
        device: u32,
        id: &IdentityKeyPair,
    ) -> Result<(Client, Response), Response> {
        let (mut ws, _) = tokio_tungstenite::connect_async(addr).await.unwrap();
        let Some(RelayKind::Challenge(c)) = read(&mut ws).await else {
            panic!("no challenge")
        };
        assert_eq!(c.nonce.len(), 32);
        send_frame(&mut ws, auth(user, device, id, id, &c.nonce)).await;
        match read(&mut ws).await {
            Some(RelayKind::Response(r)) if r.ok => Ok((
                Client {
                    ws,
                    next: 2,
                    pushed: VecDeque::new(),
                },
                r,
            )),
            Some(RelayKind::Response(r)) => Err(r),
            other => panic!("unexpected {other:?}"),
        }
    }

    async fn request(&mut self, kind: ClientKind) -> Response {
        let id = self.next;
        self.next += 1;
        send_frame(
            &mut self.ws,
            ClientFrame {
                request_id: id,
                kind: Some(kind),
            },
        )
        .await;
        loop {
            match read(&mut self.ws).await.expect("connection open") {
                RelayKind::Response(r) if r.request_id == id => return r,
                other => self.pushed.push_back(other),
            }
        }
    }

    async fn push(&mut self) -> RelayKind {
        if let Some(p) = self.pushed.pop_front() {
            return p;
        }
        tokio::time::timeout(std::time::Duration::from_secs(5), read(&mut self.ws))
            .await
            .expect("push in time")
            .expect("open")
    }
}

/// A device with an encrypted store and published keys.
struct Device {
    id: IdentityKeyPair,
    store: SqliteStore,
    addr: ProtocolAddress,
}

fn device(dir: &std::path::Path, user: &str, device_id: u32) -> Device {
    let id = IdentityKeyPair::generate(&mut rand::rngs::OsRng);
    let mut store =
        SqliteStore::open(&dir.join(format!("{user}-{device_id}.db")), Some(&[3; 32])).unwrap();
    store.set_local_identity(&id, 7).unwrap();
    Device {
        id,
        store,
        addr: ProtocolAddress::new(user, device_id),
    }
}

/// Decrypt and store a delivered message as the client does (the relay id is the
/// envelope id).
fn receive(
    to: &mut Device,
    from: &ProtocolAddress,
    d: &Deliver,
    sent_at: i64,
    at: i64,
) -> Received {
    to.store
        .receive(
            from,
            &Envelope {
                id: &d.id.to_be_bytes(),
                message_type: d.message_type as u8,
                ciphertext: &d.payload,
                sent_at,
            },
            at,
            &mut rand::rngs::OsRng,
        )
        .unwrap()
}

fn upload(d: &mut Device, n: u32) -> UploadKeys {
    let spk = SignedPreKeyRecord::generate(1, 0, &d.id, &mut rand::rngs::OsRng);
    d.store.save_signed_pre_key(&spk).unwrap();
    let prekeys = (1..=n)
        .map(|i| {
            let p = PreKeyRecord::generate(i, &mut rand::rngs::OsRng);
            d.store.save_pre_key(&p).unwrap();
            PreKey {
                id: i,
                public_key: p.key_pair.public.serialize().to_vec(),
            }
        })
        .collect();
    UploadKeys {
        signed_prekey_id: 1,
        signed_prekey: spk.key_pair.public.serialize().to_vec(),
        signed_prekey_signature: spk.signature.to_vec(),
        prekeys,
    }
}

fn to_bundle(b: &Bundle) -> PreKeyBundle {
    PreKeyBundle {
        registration_id: b.registration_id,
        device_id: b.device_id,
        prekey: b
            .prekey
            .as_ref()
            .map(|p| (p.id, PublicKey::from_bytes(&p.public_key).unwrap())),
        signed_prekey_id: b.signed_prekey_id,
        signed_prekey: PublicKey::from_bytes(&b.signed_prekey).unwrap(),
        signed_prekey_signature: b.signed_prekey_signature.clone(),
        identity_key: IdentityKey::from_bytes(&b.identity_key).unwrap(),
    }
}

#[tokio::test]
async fn nothing_is_served_before_authentication() {
    let r = start(Limits::default()).await;
    // A request instead of Auth: refused, connection closed.
    let (mut ws, _) = tokio_tungstenite::connect_async(&r.addr).await.unwrap();
    assert!(matches!(read(&mut ws).await, Some(RelayKind::Challenge(_))));
    send_frame(
        &mut ws,
        ClientFrame {
            request_id: 5,
            kind: Some(ClientKind::GetDevices(GetDevices { user: "x".into() })),
        },
    )
    .await;
    match read(&mut ws).await {
        Some(RelayKind::Response(resp)) => assert_eq!(
            (resp.ok, resp.error_code.as_str(), resp.request_id),
            (false, "AuthFailed", 5)
        ),
        other => panic!("{other:?}"),
    }
    assert!(
        read(&mut ws).await.is_none(),
        "closed after a refused first frame"
    );
    // A signature by another key: refused.
    let id = IdentityKeyPair::generate(&mut rand::rngs::OsRng);
    let other = IdentityKeyPair::generate(&mut rand::rngs::OsRng);
    let (mut ws, _) = tokio_tungstenite::connect_async(&r.addr).await.unwrap();
    let Some(RelayKind::Challenge(c)) = read(&mut ws).await else {
        panic!()
    };
    send_frame(&mut ws, auth("alice", 1, &id, &other, &c.nonce)).await;
    assert!(
        matches!(read(&mut ws).await, Some(RelayKind::Response(x)) if x.error_code == "AuthFailed")
    );
    // A registered device cannot be taken over by a new key.
    Client::connect(&r.addr, "alice", 1, &id).await.unwrap();
    let e = Client::connect(&r.addr, "alice", 1, &other)
        .await
        .err()
        .unwrap();
    assert_eq!(e.error_code, "AuthFailed");
    // Signatures are bound to the nonce: replaying an old Auth fails.
    let (mut ws, _) = tokio_tungstenite::connect_async(&r.addr).await.unwrap();
    let Some(RelayKind::Challenge(_fresh)) = read(&mut ws).await else {
        panic!()
    };
    // Signed over the first connection's nonce, not this one's.
    send_frame(&mut ws, auth("alice", 1, &id, &id, &c.nonce)).await;
    assert!(
        matches!(read(&mut ws).await, Some(RelayKind::Response(x)) if x.error_code == "AuthFailed")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_time_prekeys_are_handed_out_once_under_concurrency() {
    let r = start(Limits::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut bob = device(dir.path(), "bob", 1);
    let (mut bc, _) = Client::connect(&r.addr, "bob", 1, &bob.id).await.unwrap();
    let up = bc
        .request(ClientKind::UploadKeys(upload(&mut bob, 20)))
        .await;
    assert!(up.ok, "{up:?}");
    assert_eq!(up.prekeys_left, 20);
    let addr = Arc::new(r.addr.clone());
    let mut tasks = Vec::new();
    for i in 0..4 {
        let addr = addr.clone();
        tasks.push(tokio::spawn(async move {
            let id = IdentityKeyPair::generate(&mut rand::rngs::OsRng);
            let (mut c, _) = Client::connect(&addr, &format!("fetcher{i}"), 1, &id)
                .await
                .unwrap();
            let mut got = Vec::new();
            for _ in 0..10 {
                let resp = c
                    .request(ClientKind::FetchBundle(FetchBundle {
                        user: "bob".into(),
                        device_id: 1,
                    }))
                    .await;
                assert!(resp.ok, "{resp:?}");
                got.push(resp.bundle.unwrap().prekey.map(|p| p.id));
            }
            got
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    let handed: Vec<u32> = ids.iter().flatten().copied().collect();
    let unique: BTreeSet<u32> = handed.iter().copied().collect();
    assert_eq!(handed.len(), 20, "exactly the 20 prekeys were handed out");
    assert_eq!(unique.len(), 20, "none twice");
    assert_eq!(
        ids.iter().filter(|x| x.is_none()).count(),
        20,
        "later bundles have no one-time prekey"
    );
    let up = bc
        .request(ClientKind::UploadKeys(upload(&mut bob, 0)))
        .await;
    assert_eq!(up.prekeys_left, 0, "the low-prekey signal");
    // A bad signed-prekey signature is refused at upload.
    let mut bad = upload(&mut bob, 1);
    bad.signed_prekey_signature[0] ^= 1;
    assert_eq!(
        bc.request(ClientKind::UploadKeys(bad)).await.error_code,
        "BadRequest"
    );
}

#[tokio::test]
async fn store_and_forward_with_acks_redelivery_and_receipts() {
    let r = start(Limits::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut alice = device(dir.path(), "alice", 1);
    let mut bob = device(dir.path(), "bob", 1);
    // Bob publishes keys and goes offline.
    {
        let (mut c, _) = Client::connect(&r.addr, "bob", 1, &bob.id).await.unwrap();
        assert!(
            c.request(ClientKind::UploadKeys(upload(&mut bob, 5)))
                .await
                .ok
        );
    }
    let (mut ac, _) = Client::connect(&r.addr, "alice", 1, &alice.id)
        .await
        .unwrap();
    let resp = ac
        .request(ClientKind::FetchBundle(FetchBundle {
            user: "bob".into(),
            device_id: 1,
        }))
        .await;
    process_prekey_bundle(
        &mut alice.store,
        &bob.addr,
        &to_bundle(&resp.bundle.unwrap()),
        &mut rand::rngs::OsRng,
    )
    .unwrap();
    let secret = "meet me by the old lighthouse";
    let (_, out) = alice.store.send(&bob.addr, secret.as_bytes(), 1).unwrap();
    let sent = ac
        .request(ClientKind::Send(Send {
            to_user: "bob".into(),
            ephemeral: false,
            unverified: vec![],
            envelopes: vec![OutEnvelope {
                device_id: 1,
                message_type: u32::from(out.message_type),
                payload: out.payload.clone(),
            }],
        }))
        .await;
    assert!(sent.ok, "{sent:?}");
    alice.store.ack_outbox(out.id).unwrap();
    let mid = sent.message_ids[0];

    // Bob connects: the queued message is pushed; he stores it but "crashes" before acking.
    let deliver = |k: RelayKind| match k {
        RelayKind::Deliver(d) => d,
        other => panic!("{other:?}"),
    };
    {
        let (mut c, _) = Client::connect(&r.addr, "bob", 1, &bob.id).await.unwrap();
        let d = deliver(c.push().await);
        assert_eq!(
            (d.id, d.from_user.as_str(), d.from_device),
            (mid, "alice", 1)
        );
        let got = receive(&mut bob, &alice.addr, &d, 1, 2);
        assert!(matches!(got, Received::New(ref m) if m.text() == Some(secret)));
    }
    // Reconnect: redelivered with the same id; the store recognises it; now he acks.
    let (mut bc, _) = Client::connect(&r.addr, "bob", 1, &bob.id).await.unwrap();
    let d = deliver(bc.push().await);
    assert_eq!(d.id, mid);
    let again = receive(&mut bob, &alice.addr, &d, 1, 2);
    assert!(matches!(again, Received::Duplicate { .. }));
    assert!(
        bc.request(ClientKind::Ack(Ack {
            ids: vec![mid],
            receipt_ids: vec![]
        }))
        .await
        .ok
    );
    // Alice (connected) gets the delivery receipt; she does not acknowledge it yet.
    let r1 = match ac.push().await {
        RelayKind::Receipt(rc) => rc,
        other => panic!("{other:?}"),
    };
    assert_eq!((r1.id, r1.to_user.as_str(), r1.to_device), (mid, "bob", 1));
    assert_ne!(r1.receipt_id, 0);
    // Acked messages are gone: a new connection gets nothing pushed.
    drop(bc);
    let (mut bc, _) = Client::connect(&r.addr, "bob", 1, &bob.id).await.unwrap();
    let devices = bc
        .request(ClientKind::GetDevices(GetDevices { user: "bob".into() }))
        .await;
    assert_eq!(devices.devices, vec![1]);
    assert!(
        bc.pushed.is_empty(),
        "nothing redelivered after the ack: {:?}",
        bc.pushed
    );

    // Bob replies while Alice is offline.
    drop(ac);
    let (_, out) = bob.store.send(&alice.addr, b"see you there", 3).unwrap();
    let sent = bc
        .request(ClientKind::Send(Send {
            to_user: "alice".into(),
            ephemeral: false,
            unverified: vec![],
            envelopes: vec![OutEnvelope {
                device_id: 1,
                message_type: u32::from(out.message_type),
                payload: out.payload,
            }],
        }))
        .await;
    assert!(sent.ok);
    // Alice reconnects: the message, then the receipt she never acknowledged (same id).
    let (mut ac, _) = Client::connect(&r.addr, "alice", 1, &alice.id)
        .await
        .unwrap();
    let d = deliver(ac.push().await);
    assert_eq!(d.id, sent.message_ids[0]);
    match ac.push().await {
        RelayKind::Receipt(rc) => assert_eq!(rc, r1, "unacknowledged receipt pushed again"),
        other => panic!("{other:?}"),
    }
    let got = receive(&mut alice, &bob.addr, &d, 3, 4);
    assert!(matches!(got, Received::New(ref m) if m.body == b"see you there"));
    assert!(
        ac.request(ClientKind::Ack(Ack {
            ids: vec![d.id],
            receipt_ids: vec![r1.receipt_id]
        }))
        .await
        .ok
    );
    let r2 = match bc.push().await {
        RelayKind::Receipt(rc) => rc,
        other => panic!("{other:?}"),
    };
    assert_eq!(r2.id, d.id, "live receipt to the connected sender");
    // Bob's connection dies before he acknowledges r2: it comes back on reconnect; once
    // acknowledged it is gone.
    bc.ws.close(None).await.unwrap();
    let (mut bc, _) = Client::connect(&r.addr, "bob", 1, &bob.id).await.unwrap();
    match bc.push().await {
        RelayKind::Receipt(rc) => assert_eq!(rc, r2),
        other => panic!("{other:?}"),
    }
    assert!(
        bc.request(ClientKind::Ack(Ack {
            ids: vec![],
            receipt_ids: vec![r2.receipt_id]
        }))
        .await
        .ok
    );
    drop(bc);
    let (mut bc, _) = Client::connect(&r.addr, "bob", 1, &bob.id).await.unwrap();
    let _ = bc
        .request(ClientKind::GetDevices(GetDevices { user: "bob".into() }))
        .await;
    assert!(
        bc.pushed.is_empty(),
        "acknowledged receipt not pushed again: {:?}",
        bc.pushed
    );
    // Alice's side is clean too.
    drop(ac);
    let (mut ac, _) = Client::connect(&r.addr, "alice", 1, &alice.id)
        .await
        .unwrap();
    let _ = ac
        .request(ClientKind::GetDevices(GetDevices {
            user: "alice".into(),
        }))
        .await;
    assert!(ac.pushed.is_empty(), "{:?}", ac.pushed);

    // The relay never held the plaintext.
    drop((ac, bc));
    let mut raw = Vec::new();
    for e in std::fs::read_dir(r.db.parent().unwrap()).unwrap() {
        raw.extend(std::fs::read(e.unwrap().path()).unwrap());
    }
    assert!(raw.len() > 1000);
    assert!(!raw.windows(secret.len()).any(|w| w == secret.as_bytes()));
    assert!(!raw.windows(13).any(|w| w == b"see you there"));
}

#[tokio::test]
async fn device_set_must_match_the_registry_and_limits_hold() {
    let r = start(Limits {
        max_payload: 1024,
        ..Limits::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let alice = device(dir.path(), "alice", 1);
    for d in [1, 2] {
        let dev = device(dir.path(), "bob", d);
        Client::connect(&r.addr, "bob", d, &dev.id).await.unwrap();
    }
    let (mut ac, _) = Client::connect(&r.addr, "alice", 1, &alice.id)
        .await
        .unwrap();
    let env = |d: u32, n: usize| OutEnvelope {
        device_id: d,
        message_type: 2,
        payload: vec![0x33; n],
    };
    let send = |envelopes| {
        ClientKind::Send(Send {
            to_user: "bob".into(),
            ephemeral: false,
            unverified: vec![],
            envelopes,
        })
    };
    let r1 = ac.request(send(vec![env(1, 10)])).await;
    assert_eq!(
        (
            r1.ok,
            r1.error_code.as_str(),
            r1.missing_devices.clone(),
            r1.extra_devices.clone()
        ),
        (false, "DeviceMismatch", vec![2], vec![])
    );
    let r2 = ac
        .request(send(vec![env(1, 10), env(2, 10), env(3, 10)]))
        .await;
    assert_eq!(
        (
            r2.error_code.as_str(),
            r2.missing_devices.clone(),
            r2.extra_devices.clone()
        ),
        ("DeviceMismatch", vec![], vec![3])
    );
    let r3 = ac
        .request(send(vec![env(1, 10), env(1, 10), env(2, 10)]))
        .await;
    assert_eq!(r3.error_code, "DeviceMismatch", "a device named twice");
    let r4 = ac.request(send(vec![env(1, 2000), env(2, 10)])).await;
    assert_eq!(r4.error_code, "TooLarge");
    let r5 = ac.request(send(vec![env(1, 10), env(2, 10)])).await;
    assert!(r5.ok && r5.message_ids.len() == 2);
    let r6 = ac
        .request(ClientKind::Send(Send {
            to_user: "nobody".into(),
            ephemeral: false,
            unverified: vec![],
            envelopes: vec![env(1, 1)],
        }))
        .await;
    assert_eq!(r6.error_code, "NotFound");
    let r7 = ac
        .request(ClientKind::FetchBundle(FetchBundle {
            user: "bob".into(),
            device_id: 1,
        }))
        .await;
    assert_eq!(r7.error_code, "NotFound", "no keys uploaded");
    // A malformed frame is an error, and the connection goes on.
    ac.ws
        .send(Message::Binary(vec![0xff, 0xff, 0xff].into()))
        .await
        .unwrap();
    match read(&mut ac.ws).await {
        Some(RelayKind::Response(x)) => assert_eq!(x.error_code, "BadRequest"),
        other => panic!("{other:?}"),
    }
    let devices = ac
        .request(ClientKind::GetDevices(GetDevices { user: "bob".into() }))
        .await;
    assert_eq!(devices.devices, vec![1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_reaches_only_its_own_mailbox_and_keys() {
    let r = start(Limits::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let alice = device(dir.path(), "alice", 1);
    let mut bob = device(dir.path(), "bob", 1);
    let mallory = device(dir.path(), "mallory", 1);
    let (mut bc, _) = Client::connect(&r.addr, "bob", 1, &bob.id).await.unwrap();
    let keys = upload(&mut bob, 3);
    assert!(bc.request(ClientKind::UploadKeys(keys.clone())).await.ok);
    drop(bc);
    let (mut ac, _) = Client::connect(&r.addr, "alice", 1, &alice.id)
        .await
        .unwrap();
    let sent = ac
        .request(ClientKind::Send(Send {
            to_user: "bob".into(),
            ephemeral: false,
            unverified: vec![],
            envelopes: vec![OutEnvelope {
                device_id: 1,
                message_type: 2,
                payload: b"for bob only".to_vec(),
            }],
        }))
        .await;
    assert!(sent.ok);
    let bob_msg = sent.message_ids[0];

    let (mut mc, _) = Client::connect(&r.addr, "mallory", 1, &mallory.id)
        .await
        .unwrap();
    // Mallory acknowledges Bob's message id: nothing happens to Bob's mailbox.
    let ack = mc
        .request(ClientKind::Ack(Ack {
            ids: vec![bob_msg],
            receipt_ids: vec![],
        }))
        .await;
    assert!(ack.ok);
    // Uploads always go to the authenticated device: Bob's keys signed by Bob's
    // identity are refused for Mallory (the signature is checked against hers).
    let up = mc.request(ClientKind::UploadKeys(keys)).await;
    assert_eq!(up.error_code, "BadRequest");
    // Authenticated frames cannot re-authenticate as someone else.
    let again = mc
        .request(auth("bob", 1, &bob.id, &bob.id, &[0; 32]).kind.unwrap())
        .await;
    assert_eq!(again.error_code, "BadRequest");
    // Nothing of Bob's was pushed to Mallory.
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(200), read(&mut mc.ws))
            .await
            .is_err(),
        "Mallory got something"
    );
    // Bob still gets his message, and his three prekeys are all there.
    let (mut bc, hello) = Client::connect(&r.addr, "bob", 1, &bob.id).await.unwrap();
    assert_eq!(hello.prekeys_left, 3);
    match bc.push().await {
        RelayKind::Deliver(d) => assert_eq!(
            (d.id, d.payload.as_slice()),
            (bob_msg, &b"for bob only"[..])
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_text_and_out_of_order_frames_are_answered_not_fatal() {
    let r = start(Limits {
        max_payload: 4096,
        ..Limits::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let alice = device(dir.path(), "alice", 1);
    let (mut ac, _) = Client::connect(&r.addr, "alice", 1, &alice.id)
        .await
        .unwrap();
    // A text frame: BadRequest, and the connection goes on.
    ac.ws.send(Message::Text("hello".into())).await.unwrap();
    match read(&mut ac.ws).await {
        Some(RelayKind::Response(x)) => assert_eq!(x.error_code, "BadRequest"),
        other => panic!("{other:?}"),
    }
    // An acknowledgement of ids that were never delivered, an empty frame, a Register
    // after authentication: each answered.
    let a = ac
        .request(ClientKind::Ack(Ack {
            ids: vec![999, 1000],
            receipt_ids: vec![77],
        }))
        .await;
    assert!(a.ok);
    let id = ac.next;
    send_frame(
        &mut ac.ws,
        ClientFrame {
            request_id: id,
            kind: None,
        },
    )
    .await;
    match read(&mut ac.ws).await {
        Some(RelayKind::Response(x)) => {
            assert_eq!((x.request_id, x.error_code.as_str()), (id, "BadRequest"))
        }
        other => panic!("{other:?}"),
    }
    ac.next += 1;
    let reg = ac
        .request(ClientKind::Register(Register {
            phone: "+4915100000001".into(),
            ..Default::default()
        }))
        .await;
    assert_eq!(reg.error_code, "BadRequest");
    // A frame over the WebSocket size limit (1 MiB here) closes that connection only.
    ac.ws
        .send(Message::Binary(vec![0u8; 2 << 20].into()))
        .await
        .ok();
    let closed = tokio::time::timeout(std::time::Duration::from_secs(5), read(&mut ac.ws))
        .await
        .expect("no hang");
    assert!(closed.is_none(), "closed, got {closed:?}");
    // The relay is still serving.
    let (mut again, _) = Client::connect(&r.addr, "alice", 1, &alice.id)
        .await
        .unwrap();
    let d = again
        .request(ClientKind::GetDevices(GetDevices {
            user: "alice".into(),
        }))
        .await;
    assert_eq!(d.devices, vec![1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_sends_keep_their_order() {
    let r = start(Limits::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let alice = device(dir.path(), "alice", 1);
    let bob = device(dir.path(), "bob", 1);
    let carol = device(dir.path(), "carol", 1);
    let (mut bc, _) = Client::connect(&r.addr, "bob", 1, &bob.id).await.unwrap();
    let (mut cc, _) = Client::connect(&r.addr, "carol", 1, &carol.id)
        .await
        .unwrap();
    let (mut ac, _) = Client::connect(&r.addr, "alice", 1, &alice.id)
        .await
        .unwrap();
    // 100 sends without waiting (alternating recipients, one refused in the middle,
    // then a request of another kind), as a group send does.
    let n = 100u64;
    for i in 0..n {
        let (to, device) = match i {
            50 => ("bob", 9), // DeviceMismatch
            i if i % 2 == 0 => ("bob", 1),
            _ => ("carol", 1),
        };
        send_frame(
            &mut ac.ws,
            ClientFrame {
                request_id: 100 + i,
                kind: Some(ClientKind::Send(Send {
                    to_user: to.into(),
                    ephemeral: false,
                    unverified: vec![],
                    envelopes: vec![OutEnvelope {
                        device_id: device,
                        message_type: 2,
                        payload: i.to_be_bytes().to_vec(),
                    }],
                })),
            },
        )
        .await;
    }
    send_frame(
        &mut ac.ws,
        ClientFrame {
            request_id: 1000,
            kind: Some(ClientKind::GetDevices(GetDevices { user: "bob".into() })),
        },
    )
    .await;
    // Answers in request order, message ids increasing, the refusal in its place.
    let mut last = 0u64;
    for i in 0..=n {
        let Some(RelayKind::Response(resp)) = read(&mut ac.ws).await else {
            panic!("no answer")
        };
        if i == n {
            assert_eq!((resp.request_id, resp.devices.clone()), (1000, vec![1]));
            break;
        }
        assert_eq!(resp.request_id, 100 + i);
        if i == 50 {
            assert_eq!(resp.error_code, "DeviceMismatch");
            continue;
        }
        assert!(resp.ok, "{resp:?}");
        assert!(
            resp.message_ids[0] > last,
            "ids follow the order of the sends"
        );
        last = resp.message_ids[0];
    }
    // Each recipient got its messages pushed in the order they were sent.
    for (c, parity) in [(&mut bc, 0u64), (&mut cc, 1u64)] {
        let want: Vec<u64> = (0..n).filter(|i| i % 2 == parity && *i != 50).collect();
        let mut got = Vec::new();
        while got.len() < want.len() {
            if let RelayKind::Deliver(d) = c.push().await {
                got.push(u64::from_be_bytes(d.payload.try_into().unwrap()));
            }
        }
        assert_eq!(got, want);
    }
}
