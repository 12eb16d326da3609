//! Attachments (`Client::upload_attachment` / `download_attachment_to_file`) through a
//! real relay on loopback, with the TCP connections cut in the middle of both transfers
//! by a proxy between the clients and the relay.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use pawl_core::client::{Attachment, ClientError, Event, MediaMessage};
use pawl_core::media::MediaKind;
use pawl_relay::{EmbeddedRelay, Limits};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

mod common;
use common::{config_via, expect, registered_with};

/// A TCP proxy to `target`; bumping the returned counter closes every connection open
/// at that moment (later ones pass).
async fn cutting_proxy(target: SocketAddr) -> (u16, watch::Sender<u64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (cut, generations) = watch::channel(0u64);
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let mut rx = generations.clone();
            let generation = *rx.borrow();
            tokio::spawn(async move {
                let Ok(mut outbound) = TcpStream::connect(target).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    _ = rx.wait_for(|g| *g != generation) => {}
                }
            });
        }
    });
    (port, cut)
}

fn relay_addr(relay: &EmbeddedRelay) -> SocketAddr {
    let rest = relay.url.strip_prefix("wss://").unwrap();
    rest.split('/').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_stream_through_the_relay_and_survive_dropped_connections() {
    let dir = tempfile::tempdir().unwrap();
    let relay = EmbeddedRelay::start(dir.path(), Limits::default())
        .await
        .unwrap();
    let (port, cut) = cutting_proxy(relay_addr(&relay)).await;
    let url = format!("wss://127.0.0.1:{port}/v1/ws");
    let (alice, mut a_ev) = registered_with(
        &relay,
        config_via(&relay, &url, dir.path(), "alice"),
        "+4915100000031",
    )
    .await;
    let (bob, mut b_ev) = registered_with(
        &relay,
        config_via(&relay, &url, dir.path(), "bob"),
        "+4915100000032",
    )
    .await;

    // 3 MB of not-very-compressible bytes; the connection is cut once a third is up.
    let data: Vec<u8> = (0..3_000_000u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let cut_once = AtomicBool::new(false);
    let mut seen = Vec::new();
    let att = alice
        .upload_attachment(MediaKind::Image, &data[..], |n| {
            seen.push(n);
            if n > 1_000_000 && !cut_once.swap(true, Ordering::SeqCst) {
                cut.send_modify(|g| *g += 1);
            }
        })
        .await
        .unwrap();
    assert!(cut_once.load(Ordering::SeqCst), "the upload was cut");
    // It really was: Alice's connection dropped and came back during the upload.
    expect(&mut a_ev, "alice disconnected", |e| {
        matches!(e, Event::Disconnected { .. }).then_some(())
    })
    .await;
    expect(&mut a_ev, "alice reconnected", |e| {
        matches!(e, Event::Connected).then_some(())
    })
    .await;
    assert_eq!(seen.last(), Some(&3_000_000));
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert_eq!(att.file_length, 3_000_000);
    assert_eq!(att.kind, MediaKind::Image);
    // The relay holds ciphertext: none of the plaintext's 64-byte windows appear in it.
    let blob = alice.download_blob(&att.blob_id).await.unwrap();
    assert_eq!(blob.len() as u64, (3_000_000 / 16 + 1) * 16 + 10);
    assert!(!blob.windows(64).any(|w| w == &data[..64]));

    // Bob downloads to a file; the connection is cut in the middle again.
    let path = dir.path().join("photo.bin");
    let cut_again = Arc::new(AtomicBool::new(false));
    let flag = cut_again.clone();
    let digest = bob
        .download_attachment_to_file(&att, &path, |n| {
            if n > 1_500_000 && !flag.swap(true, Ordering::SeqCst) {
                cut.send_modify(|g| *g += 1);
            }
        })
        .await
        .unwrap();
    assert!(cut_again.load(Ordering::SeqCst), "the download was cut");
    // Bob was cut twice (with Alice's upload, and now): two disconnections.
    for _ in 0..2 {
        expect(&mut b_ev, "bob disconnected", |e| {
            matches!(e, Event::Disconnected { .. }).then_some(())
        })
        .await;
    }
    assert_eq!(digest.file_length, 3_000_000);
    assert_eq!(std::fs::read(&path).unwrap(), data);
    assert!(!dir.path().join("photo.bin.part").exists());

    // A media message carries the attachment: Bob gets it as a stored message whose
    // body is the caption (searchable), and fetches the file from what it carries.
    let media = MediaMessage {
        attachment: att.clone(),
        mime_type: "application/octet-stream".into(),
        file_name: "photo.bin".into(),
        caption: "the sunset from the pier".into(),
        thumbnail: vec![0x89, b'P', b'N', b'G', 1, 2, 3],
        width: 1920,
        height: 1080,
    };
    let mid = alice.send_media("+4915100000032", &media).await.unwrap();
    let got = expect(&mut b_ev, "media message", |e| match e {
        Event::Message(m) => Some(m.clone()),
        _ => None,
    })
    .await;
    assert_eq!(got.text(), Some("the sunset from the pier"));
    let received = MediaMessage::of(&got).expect("a media message").unwrap();
    assert_eq!(received, media);
    let sent = alice.with_store(|s| s.message(mid)).unwrap().unwrap();
    assert_eq!(MediaMessage::of(&sent).unwrap().unwrap(), media);
    let found = bob.with_store(|s| s.search("sunset", 10)).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, got.id);
    let again = dir.path().join("again.bin");
    bob.download_attachment_to_file(&received.attachment, &again, |_| {})
        .await
        .unwrap();
    assert_eq!(std::fs::read(&again).unwrap(), data);
    // Text messages have no media.
    alice.send_text("+4915100000032", "nice").await.unwrap();
    let text = expect(&mut b_ev, "text message", |e| match e {
        Event::Message(m) => Some(m.clone()),
        _ => None,
    })
    .await;
    assert!(MediaMessage::of(&text).is_none());
    // A thumbnail too large to travel inside a message is refused before anything is sent.
    let big = MediaMessage {
        thumbnail: vec![0; pawl_core::client::MAX_THUMBNAIL + 1],
        ..media.clone()
    };
    assert!(matches!(
        alice.send_media("+4915100000032", &big).await,
        Err(ClientError::Config(_))
    ));

    // A message that lies about the attachment (another plaintext hash, or another
    // key): refused, and nothing is left at the path or beside it.
    for bad in [
        Attachment {
            file_sha256: [7; 32],
            ..att.clone()
        },
        Attachment {
            media_key: pawl_core::media::MediaKey::from_slice(&[9; 32]).unwrap(),
            ..att.clone()
        },
        Attachment {
            kind: MediaKind::Video,
            ..att.clone()
        },
    ] {
        let path = dir.path().join("bad.bin");
        match bob.download_attachment_to_file(&bad, &path, |_| {}).await {
            Err(ClientError::Protocol(m)) => assert!(m.contains("attachment refused"), "{m}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(!path.exists());
        assert!(!dir.path().join("bad.bin.part").exists());
    }
    // An unknown blob id: the relay's NotFound.
    let missing = Attachment {
        blob_id: b"no such blob....".to_vec(),
        ..att.clone()
    };
    match bob
        .download_attachment_to_file(&missing, &dir.path().join("m.bin"), |_| {})
        .await
    {
        Err(ClientError::Relay { code, .. }) => assert_eq!(code, "NotFound"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    alice.shutdown().await;
    bob.shutdown().await;
    relay.stop().await;
}
