//! Rust-level tests of the wasm build, in Chromium (a dedicated Worker, where OPFS
//! works): what the TypeScript tests cannot see. Run by `run-tests.sh` through
//! `wasm-bindgen-test-runner` and the host's chromedriver.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pawl_core::client::{Client, ClientConfig, ClientError, TlsTrust};
use pawl_core::error::StoreError;
use pawl_core::keys::IdentityKeyPair;
use pawl_core::sqlite::SqliteStore;
use pawl_core::store::IdentityKeyStore;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_dedicated_worker);

async fn storage() {
    pawl_web::install_storage("pawl-wasm-tests".into())
        .await
        .expect("OPFS storage in a dedicated worker");
}

/// SQLCipher is really compiled in (a SQLite without it ignores `PRAGMA key`), the
/// key is checked, and a keyless open of the encrypted file fails.
#[wasm_bindgen_test]
async fn the_store_in_the_browser_is_sqlcipher_and_keyed() {
    storage().await;
    let path = std::path::Path::new("cipher-check.db");
    let key = [3u8; 32];
    let mut s = SqliteStore::open(path, Some(&key)).unwrap();
    let v = s.cipher_version().expect("a keyed store names its cipher");
    assert!(v.starts_with("4."), "SQLCipher 4, got {v}");
    let pair = IdentityKeyPair::generate(&mut rand_core::OsRng);
    s.set_local_identity(&pair, 7).unwrap();
    drop(s);
    assert_eq!(
        SqliteStore::open(path, Some(&[4u8; 32])).unwrap_err(),
        StoreError::WrongKey
    );
    assert_eq!(
        SqliteStore::open(path, None).unwrap_err(),
        StoreError::WrongKey
    );
    let s = SqliteStore::open(path, Some(&key)).unwrap();
    assert_eq!(s.local_registration_id().unwrap(), 7);
    assert_eq!(
        s.identity_key_pair().unwrap().identity_key(),
        pair.identity_key()
    );
}

fn client(name: &str, url: &str) -> Client {
    Client::open(ClientConfig::new(name, [5u8; 32], url))
        .unwrap()
        .0
}

/// The browser's transport refuses what it cannot honour instead of ignoring it: a
/// certificate pin (the browser checks certificates itself), a URL that is not a
/// WebSocket; and a relay that is not there is a transport error, not a hang.
#[wasm_bindgen_test]
async fn the_browser_transport_refuses_what_it_cannot_do() {
    storage().await;
    let c = client("transport-http.db", "http://127.0.0.1:9/v1/ws");
    assert!(matches!(
        c.request_code("+4915100000001").await,
        Err(ClientError::Config(_))
    ));
    let mut config = ClientConfig::new("transport-pin.db", [5u8; 32], "wss://127.0.0.1:9/v1/ws");
    config.tls = Some(TlsTrust::PinnedCertSha256([1u8; 32]));
    let (pinned, _events) = Client::open(config).unwrap();
    match pinned.request_code("+4915100000001").await {
        Err(ClientError::Config(m)) => assert!(m.contains("pin"), "{m}"),
        other => panic!("a pin must be refused in the browser, got {other:?}"),
    }
    // Port 9 (discard) on loopback: nothing listens; the WebSocket fails.
    let nobody = client("transport-nobody.db", "ws://127.0.0.1:9/v1/ws");
    assert!(matches!(
        nobody.request_code("+4915100000001").await,
        Err(ClientError::Transport(_))
    ));
    assert!(matches!(nobody.address(), Err(ClientError::NotRegistered)));
}
