//! Helpers shared by the client tests: client configuration, registration, events.
#![allow(dead_code)] // each test file uses some of them

use std::path::Path;
use std::time::Duration;

use pawl_core::client::{Client, ClientConfig, Event, TlsTrust};
use pawl_core::sqlite::messages::{MessageStatus, StoredMessage};
use pawl_relay::EmbeddedRelay;
use tokio::sync::mpsc::UnboundedReceiver;

pub(crate) fn config(relay: &EmbeddedRelay, dir: &Path, name: &str) -> ClientConfig {
    config_via(relay, &relay.url, dir, name)
}

/// A client of `relay` that connects through `url` (the relay's own, or a proxy's).
pub(crate) fn config_via(relay: &EmbeddedRelay, url: &str, dir: &Path, name: &str) -> ClientConfig {
    let mut c = ClientConfig::new(dir.join(format!("{name}.db")), [name.len() as u8; 32], url);
    c.tls = Some(TlsTrust::PinnedCertSha256(relay.cert_sha256));
    c.backoff.min = Duration::from_millis(20);
    c.backoff.max = Duration::from_millis(200);
    c
}

/// Wait for the first event matching `f` (others are skipped), or fail after 10 s.
pub(crate) async fn expect<T>(
    events: &mut UnboundedReceiver<Event>,
    what: &str,
    mut f: impl FnMut(&Event) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(e)) => {
                if let Some(t) = f(&e) {
                    return t;
                }
                eprintln!("(waiting for {what}) skipped {e:?}");
            }
            Ok(None) => panic!("event stream closed waiting for {what}"),
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

/// Wait for the message with this text.
pub(crate) async fn message(
    events: &mut UnboundedReceiver<Event>,
    what: &str,
    text: &str,
) -> StoredMessage {
    expect(events, what, |e| match e {
        Event::Message(m) if m.text() == Some(text) => Some(m.clone()),
        _ => None,
    })
    .await
}

pub(crate) fn status(c: &Client, message_id: i64) -> MessageStatus {
    c.with_store(|s| s.message(message_id))
        .unwrap()
        .unwrap()
        .status
}

pub(crate) async fn registered(
    relay: &EmbeddedRelay,
    dir: &Path,
    name: &str,
    phone: &str,
) -> (Client, UnboundedReceiver<Event>) {
    registered_with(relay, config(relay, dir, name), phone).await
}

/// Register a client opened with `config` as `phone`, start it, wait for its prekeys.
pub(crate) async fn registered_with(
    relay: &EmbeddedRelay,
    config: ClientConfig,
    phone: &str,
) -> (Client, UnboundedReceiver<Event>) {
    let (c, mut ev) = Client::open(config).unwrap();
    c.request_code(phone).await.unwrap();
    let code = relay
        .code_for(phone)
        .expect("the development sender wrote a code");
    c.verify_code(phone, &code).await.unwrap();
    c.start();
    expect(&mut ev, "connected", |e| {
        matches!(e, Event::Connected).then_some(())
    })
    .await;
    expect(&mut ev, "prekeys uploaded", |e| match e {
        Event::PreKeysUploaded { count } => Some(*count),
        _ => None,
    })
    .await;
    (c, ev)
}

/// Link a new companion to `phone` through the QR code flow (the code rendered as
/// a PNG and read back as a camera would); returns it started, with its device id.
pub(crate) async fn link_companion(
    phone: &Client,
    config: ClientConfig,
) -> (Client, UnboundedReceiver<Event>, u32) {
    let (desktop, mut d_ev) = Client::open(config).unwrap();
    let mut linking = desktop.start_linking().await.unwrap();
    let code = linking.next_code().await.unwrap();
    assert!(code.code.starts_with("pawl-link:1,"));
    // The code is what a camera reads: render it and decode it back.
    let scanned = scan(&code.qr().unwrap().to_png(4).unwrap());
    assert_eq!(scanned, code.code);
    let desktop_key = desktop.identity_key().unwrap();
    let device_id = phone
        .link_device(&scanned, |req| {
            assert_eq!(req.identity, desktop_key);
            true
        })
        .await
        .unwrap();
    let addr = linking.finished().await.unwrap();
    assert_eq!(addr.name, phone.address().unwrap().name);
    assert_eq!(addr.device_id, device_id);
    desktop.start();
    expect(&mut d_ev, "desktop connected", |e| {
        matches!(e, Event::Connected).then_some(())
    })
    .await;
    (desktop, d_ev, device_id)
}

/// Decode a QR code from a PNG, as a camera app would (rqrr).
pub(crate) fn scan(png_bytes: &[u8]) -> String {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    let (w, h) = (info.width as usize, info.height as usize);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| buf[y * w + x]);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code found");
    grids[0].decode().unwrap().1
}
