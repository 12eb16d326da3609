//! The WebSocket to the relay in the browser: `web_sys::WebSocket`, binary messages
//! as `ArrayBuffer`s. The browser makes the TLS connection for `wss://` and checks the
//! certificate against its own trust store; it offers no way to pin one, so a
//! [`TlsTrust`] is refused here rather than silently ignored.

use std::cell::RefCell;
use std::rc::Rc;

use tokio::sync::mpsc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{BinaryType, CloseEvent, Event, MessageEvent, WebSocket};

use super::TlsTrust;
use crate::client::ClientError;

/// What the socket's event handlers report, in order.
enum SocketEvent {
    Open,
    Message(Vec<u8>),
    Error,
    Close(String),
}

/// The `WebSocket` and its handlers; dropping the last half detaches the handlers
/// (before their closures are freed) and closes the socket.
struct Shared {
    ws: WebSocket,
    _handlers: Vec<Closure<dyn FnMut(Event)>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onerror(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}

/// The receiving side of the handlers' events.
struct Events {
    rx: mpsc::UnboundedReceiver<SocketEvent>,
    closed: bool,
}

impl Events {
    async fn recv(&mut self) -> Option<Result<Vec<u8>, ClientError>> {
        loop {
            if self.closed {
                return None;
            }
            match self.rx.recv().await {
                Some(SocketEvent::Message(b)) => return Some(Ok(b)),
                Some(SocketEvent::Open) => continue,
                Some(SocketEvent::Error) => {
                    self.closed = true;
                    return Some(Err(ClientError::Transport("WebSocket error".into())));
                }
                Some(SocketEvent::Close(_)) | None => {
                    self.closed = true;
                    return None;
                }
            }
        }
    }
}

/// Connect; resolves once the socket is open (or fails): the writing and the reading
/// half.
pub(super) async fn connect(
    url: &str,
    trust: Option<&TlsTrust>,
) -> Result<(SocketSink, SocketStream), ClientError> {
    if !(url.starts_with("ws://") || url.starts_with("wss://")) {
        return Err(ClientError::Config(format!(
            "relay URL must start with wss:// or ws://: {url}"
        )));
    }
    if trust.is_some() {
        return Err(ClientError::Config(
            "a certificate pin cannot be set in the browser: it checks the relay's \
                 certificate itself (use a certificate it trusts)"
                .into(),
        ));
    }
    let ws =
        WebSocket::new(url).map_err(|e| ClientError::Config(format!("WebSocket {url}: {e:?}")))?;
    ws.set_binary_type(BinaryType::Arraybuffer);
    let (tx, rx) = mpsc::unbounded_channel();
    let tx = Rc::new(RefCell::new(tx));
    let handler = |f: fn(Event) -> Option<SocketEvent>| {
        let tx = tx.clone();
        Closure::<dyn FnMut(Event)>::new(move |e: Event| {
            if let Some(ev) = f(e) {
                let _ = tx.borrow().send(ev);
            }
        })
    };
    let on_open = handler(|_| Some(SocketEvent::Open));
    let on_message = handler(|e| {
        let m: MessageEvent = e.dyn_into().ok()?;
        let buf: js_sys::ArrayBuffer = m.data().dyn_into().ok()?;
        Some(SocketEvent::Message(js_sys::Uint8Array::new(&buf).to_vec()))
    });
    let on_error = handler(|_| Some(SocketEvent::Error));
    let on_close = handler(|e| {
        let reason = e
            .dyn_into::<CloseEvent>()
            .map(|c| format!("{} {}", c.code(), c.reason()))
            .unwrap_or_default();
        Some(SocketEvent::Close(reason))
    });
    ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    ws.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    let shared = Rc::new(Shared {
        ws,
        _handlers: vec![on_open, on_message, on_error, on_close],
    });
    let mut events = Events { rx, closed: false };
    match events.rx.recv().await {
        Some(SocketEvent::Open) => Ok((
            SocketSink(shared.clone()),
            SocketStream {
                _shared: shared,
                events,
            },
        )),
        Some(SocketEvent::Close(reason)) => Err(ClientError::Transport(format!(
            "connect {url}: closed ({reason})"
        ))),
        _ => Err(ClientError::Transport(format!("connect {url}: failed"))),
    }
}

/// The writing half of a connection.
pub(crate) struct SocketSink(Rc<Shared>);

impl SocketSink {
    /// Send one binary message.
    pub(crate) async fn send(&mut self, bytes: Vec<u8>) -> Result<(), ClientError> {
        if self.0.ws.ready_state() != WebSocket::OPEN {
            return Err(ClientError::Transport("connection closed".into()));
        }
        self.0
            .ws
            .send_with_u8_array(&bytes)
            .map_err(|e| ClientError::Transport(format!("WebSocket send: {e:?}")))
    }

    /// Close the connection.
    pub(crate) async fn close(self) {
        let _ = self.0.ws.close();
    }
}

/// The reading half of a connection.
pub(crate) struct SocketStream {
    _shared: Rc<Shared>,
    events: Events,
}

impl SocketStream {
    /// The next binary message; `None` once the connection ends.
    pub(crate) async fn recv(&mut self) -> Option<Result<Vec<u8>, ClientError>> {
        self.events.recv().await
    }
}
