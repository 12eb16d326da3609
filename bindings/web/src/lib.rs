//! Pawl in the browser: the same [`Client`] as natively (one copy of its logic; see
//! `core/src/client/rt` and `core/src/client/transport`), over the same `SqliteStore`
//! compiled to wasm with SQLCipher, persisted in the Origin Private File System
//! (SQLite's `opfs-sahpool` VFS). Exported with wasm-bindgen for `@pawl/web`, whose
//! hand-written TypeScript layer runs this module in a dedicated Worker (OPFS's
//! synchronous access handles exist only there) and gives the page promises and
//! typed events.
//!
//! Errors are thrown as JavaScript `Error`s carrying `code` (the stable numbers of
//! `pawl_core::error_code`, the same as every other binding) and, for relay refusals,
//! `relayCode`.
#![cfg(target_arch = "wasm32")]

#[cfg(feature = "bench")]
#[doc(hidden)]
pub mod bench;
mod convert;
mod storage;

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Uint8Array};
use pawl_core::client::{Client, ClientConfig, CompanionLinking, Event};
use tokio::sync::mpsc::UnboundedReceiver;
use wasm_bindgen::prelude::*;

use convert::{address, err, event, message, obj, JsResult};

pub use storage::install_storage;

/// The platform byte a browser companion shows on the primary (`9`: web).
const WEB_PLATFORM: char = '9';

/// One device's client in this browser.
#[wasm_bindgen]
pub struct WebClient {
    client: Client,
    /// Shared with the pending `nextEvent` promise, which must not borrow the client
    /// (it is always pending; `free()` would fail under it).
    events: Rc<RefCell<Option<UnboundedReceiver<Event>>>>,
}

#[wasm_bindgen]
impl WebClient {
    /// Open (or create) the store `db_name` (a file in the installed storage) under
    /// the 32-byte `db_key`, for the relay at `relay_url` (`wss://` or `ws://`).
    /// Throws with code 2 for a wrong key, 12 when the store cannot be opened.
    pub fn open(db_name: String, db_key: Vec<u8>, relay_url: String) -> JsResult<WebClient> {
        let key: [u8; 32] = db_key
            .as_slice()
            .try_into()
            .map_err(|_| convert::invalid("the database key must be 32 bytes"))?;
        let mut config = ClientConfig::new(db_name, key, &relay_url);
        config.platform = WEB_PLATFORM;
        let (client, events) = Client::open(config).map_err(err)?;
        Ok(WebClient {
            client,
            events: Rc::new(RefCell::new(Some(events))),
        })
    }

    /// Ask the relay to send a verification code to `phone` (E.164).
    #[wasm_bindgen(js_name = requestCode)]
    pub async fn request_code(&self, phone: String) -> JsResult<()> {
        self.client.request_code(&phone).await.map_err(err)
    }

    /// Register this browser as the primary device of `phone` with its code.
    #[wasm_bindgen(js_name = verifyCode)]
    pub async fn verify_code(&self, phone: String, code: String) -> JsResult<()> {
        self.client.verify_code(&phone, &code).await.map_err(err)
    }

    /// Become a companion of an account: show the codes it yields as a QR code until
    /// the phone scans one.
    #[wasm_bindgen(js_name = startLinking)]
    pub async fn start_linking(&self) -> JsResult<WebLinking> {
        let linking = self.client.start_linking().await.map_err(err)?;
        Ok(WebLinking {
            inner: RefCell::new(Some(linking)),
        })
    }

    /// Connect and stay connected (reconnecting with backoff).
    pub fn start(&self) {
        self.client.start();
    }

    /// Disconnect; everything received is already stored.
    pub async fn shutdown(&self) {
        self.client.shutdown().await;
    }

    /// Whether an authenticated connection is up.
    #[wasm_bindgen(js_name = isConnected)]
    pub fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    /// This device's address: `{ user, deviceId }`.
    pub fn address(&self) -> JsResult<JsValue> {
        Ok(address(&self.client.address().map_err(err)?))
    }

    /// Send a text to every device of `peer`; the stored message's id.
    #[wasm_bindgen(js_name = sendText)]
    pub async fn send_text(&self, peer: String, text: String) -> JsResult<f64> {
        Ok(self.client.send_text(&peer, &text).await.map_err(err)? as f64)
    }

    /// Mark the chat with `peer` read (an encrypted read receipt); how many messages.
    #[wasm_bindgen(js_name = markRead)]
    pub async fn mark_read(&self, peer: String) -> JsResult<u32> {
        Ok(self.client.mark_read(&peer).await.map_err(err)? as u32)
    }

    /// Tell `peer` that typing started or stopped.
    #[wasm_bindgen(js_name = setTyping)]
    pub async fn set_typing(&self, peer: String, started: bool) -> JsResult<()> {
        self.client.set_typing(&peer, started).await.map_err(err)
    }

    /// The newest `limit` messages with `peer`, newest first.
    pub fn messages(&self, peer: String, limit: u32) -> JsResult<Array> {
        let list = self
            .client
            .with_store(|s| {
                let chat = s.chat_id(&peer)?;
                s.latest_messages(chat, limit)
            })
            .map_err(|e| err(e.into()))?;
        Ok(list.iter().map(message).collect())
    }

    /// One message by id, or `undefined`.
    pub fn message(&self, id: f64) -> JsResult<JsValue> {
        let m = self
            .client
            .with_store(|s| s.message(id as i64))
            .map_err(|e| err(e.into()))?;
        Ok(m.as_ref().map(message).unwrap_or(JsValue::UNDEFINED))
    }

    /// Full-text search over every chat.
    pub fn search(&self, query: String, limit: u32) -> JsResult<Array> {
        let list = self
            .client
            .with_store(|s| s.search(&query, limit))
            .map_err(|e| err(e.into()))?;
        Ok(list.iter().map(message).collect())
    }

    /// The chats: `{ id, peer, title, unread }`.
    pub fn chats(&self) -> JsResult<Array> {
        let chats = self
            .client
            .with_store(|s| s.chats())
            .map_err(|e| err(e.into()))?;
        Ok(chats
            .iter()
            .map(|c| {
                obj(&[
                    ("id", JsValue::from(c.id as f64)),
                    ("peer", JsValue::from_str(&c.peer)),
                    (
                        "title",
                        c.title
                            .as_deref()
                            .map(JsValue::from_str)
                            .unwrap_or(JsValue::NULL),
                    ),
                    ("unread", JsValue::from(c.unread as f64)),
                ])
            })
            .collect())
    }

    /// The safety number with `peer`: `{ digits, scannable, qrSvg }` (60 digits, the
    /// QR payload as bytes, the QR code as SVG).
    #[wasm_bindgen(js_name = safetyNumber)]
    pub fn safety_number(&self, peer: String) -> JsResult<JsValue> {
        let f = self.client.safety_number(&peer).map_err(err)?;
        let qr = f
            .qr_code()
            .map_err(|e| convert::coded(pawl_core::error_code::INTERNAL, &e.to_string()))?;
        Ok(obj(&[
            ("digits", JsValue::from_str(&f.displayable)),
            ("scannable", Uint8Array::from(f.scannable.as_slice()).into()),
            ("qrSvg", JsValue::from_str(&qr.to_svg())),
        ]))
    }

    /// Whether the code scanned from `peer`'s screen shows the same safety number.
    #[wasm_bindgen(js_name = compareScanned)]
    pub fn compare_scanned(&self, peer: String, scanned: Vec<u8>) -> JsResult<bool> {
        let f = self.client.safety_number(&peer).map_err(err)?;
        f.compare_scanned(&scanned)
            .map_err(|e| convert::coded(pawl_core::error_code::INVALID_ARGUMENT, &e.to_string()))
    }

    /// The SQLCipher version encrypting this store (never empty: a store that would
    /// not be encrypted does not open).
    #[wasm_bindgen(js_name = cipherVersion)]
    pub fn cipher_version(&self) -> Option<String> {
        self.client.with_store(|s| s.cipher_version())
    }

    /// The next event (`{ type: "message", ... }`, see `@pawl/web`'s `PawlEvent`), or
    /// `undefined` once the client is gone. One reader at a time.
    #[wasm_bindgen(js_name = nextEvent)]
    pub fn next_event(&self) -> js_sys::Promise {
        let events = self.events.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let rx = events.borrow_mut().take();
            let Some(mut rx) = rx else {
                return Ok(JsValue::UNDEFINED);
            };
            let e = rx.recv().await;
            *events.borrow_mut() = Some(rx);
            Ok(e.as_ref().map(event).unwrap_or(JsValue::UNDEFINED))
        })
    }
}

/// A companion link in progress.
#[wasm_bindgen]
pub struct WebLinking {
    inner: RefCell<Option<CompanionLinking>>,
}

#[wasm_bindgen]
impl WebLinking {
    /// The next link code to show (`{ code, expiresAtMs }`), or `undefined` when
    /// linking ended.
    #[wasm_bindgen(js_name = nextCode)]
    pub async fn next_code(&self) -> JsValue {
        let taken = self.inner.borrow_mut().take();
        let Some(mut l) = taken else {
            return JsValue::UNDEFINED;
        };
        let code = l.next_code().await;
        *self.inner.borrow_mut() = Some(l);
        match code {
            Some(c) => obj(&[
                ("code", JsValue::from_str(&c.code)),
                ("expiresAtMs", JsValue::from(c.expires_at_ms as f64)),
            ]),
            None => JsValue::UNDEFINED,
        }
    }

    /// Wait until the phone has linked this browser: its address in the account.
    pub async fn finished(&self) -> JsResult<JsValue> {
        let l = self
            .inner
            .borrow_mut()
            .take()
            .ok_or_else(|| convert::invalid("finished() was called already"))?;
        Ok(address(&l.finished().await.map_err(err)?))
    }
}

/// Panics become console errors with their message (a bug; they also abort the call).
#[wasm_bindgen(start)]
pub fn init() {
    std::panic::set_hook(Box::new(|info| {
        console_error(&info.to_string());
    }));
}

#[wasm_bindgen]
extern "C" {
    /// `console.error` (of the page or the Worker).
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(s: &str);
}
