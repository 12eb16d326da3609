//! Rust values to JavaScript ones: errors with stable codes, messages, events.

use js_sys::{Object, Reflect, Uint8Array};
use pawl_core::client::{ClientError, Event};
use pawl_core::error_code;
use pawl_core::sqlite::messages::{MessageDirection, MessageStatus, StoredMessage};
use pawl_core::ProtocolAddress;
use wasm_bindgen::JsValue;

/// What every export returns: a value, or a thrown `Error` with a `code`.
pub(crate) type JsResult<T> = Result<T, JsValue>;

/// A plain object from its properties.
pub(crate) fn obj(props: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in props {
        let _ = Reflect::set(&o, &JsValue::from_str(k), v);
    }
    o.into()
}

/// An `Error` with `code` (and `name` = "PawlError").
pub(crate) fn coded(code: u32, message: &str) -> JsValue {
    let e = js_sys::Error::new(message);
    e.set_name("PawlError");
    let _ = Reflect::set(&e, &JsValue::from_str("code"), &JsValue::from(code));
    e.into()
}

/// An invalid argument (code 1).
pub(crate) fn invalid(message: &str) -> JsValue {
    coded(error_code::INVALID_ARGUMENT, message)
}

/// A client error as a coded `Error` (relay refusals also carry `relayCode`).
pub(crate) fn err(e: ClientError) -> JsValue {
    let v = coded(error_code::of_client(&e), &e.to_string());
    if let ClientError::Relay { code, .. } = &e {
        let _ = Reflect::set(
            &v,
            &JsValue::from_str("relayCode"),
            &JsValue::from_str(code),
        );
    }
    v
}

/// `{ user, deviceId }`.
pub(crate) fn address(a: &ProtocolAddress) -> JsValue {
    obj(&[
        ("user", JsValue::from_str(&a.name)),
        ("deviceId", JsValue::from(a.device_id)),
    ])
}

fn status(s: MessageStatus) -> &'static str {
    match s {
        MessageStatus::Pending => "pending",
        MessageStatus::Sent => "sent",
        MessageStatus::Delivered => "delivered",
        MessageStatus::Read => "read",
        MessageStatus::Failed => "failed",
    }
}

/// A stored message: `{ id, chatId, sender, senderDevice, outgoing, text, body,
/// sentAt, receivedAt, status, media }`.
pub(crate) fn message(m: &StoredMessage) -> JsValue {
    obj(&[
        ("id", JsValue::from(m.id as f64)),
        ("chatId", JsValue::from(m.chat_id as f64)),
        ("sender", JsValue::from_str(&m.sender)),
        ("senderDevice", JsValue::from(m.sender_device)),
        (
            "outgoing",
            JsValue::from(m.direction == MessageDirection::Outgoing),
        ),
        (
            "text",
            m.text().map(JsValue::from_str).unwrap_or(JsValue::NULL),
        ),
        ("body", Uint8Array::from(m.body.as_slice()).into()),
        ("sentAt", JsValue::from(m.sent_at as f64)),
        (
            "receivedAt",
            m.received_at
                .map(|t| JsValue::from(t as f64))
                .unwrap_or(JsValue::NULL),
        ),
        ("status", JsValue::from_str(status(m.status))),
        (
            "media",
            m.media
                .as_deref()
                .map(|b| Uint8Array::from(b).into())
                .unwrap_or(JsValue::NULL),
        ),
    ])
}

fn typed(kind: &str, mut props: Vec<(&str, JsValue)>) -> JsValue {
    props.insert(0, ("type", JsValue::from_str(kind)));
    obj(&props)
}

/// An event: `{ type, ... }` (see `PawlEvent` in `@pawl/web`).
pub(crate) fn event(e: &Event) -> JsValue {
    let id = |i: i64| JsValue::from(i as f64);
    match e {
        Event::Connected => typed("connected", vec![]),
        Event::Disconnected { reason } => {
            typed("disconnected", vec![("reason", JsValue::from_str(reason))])
        }
        Event::Message(m) => typed("message", vec![("message", message(m))]),
        Event::Sent { message_id } => typed("sent", vec![("messageId", id(*message_id))]),
        Event::Delivered { message_id, device } => typed(
            "delivered",
            vec![("messageId", id(*message_id)), ("device", address(device))],
        ),
        Event::Read { message_id, by } => typed(
            "read",
            vec![("messageId", id(*message_id)), ("by", address(by))],
        ),
        Event::Typing { from, started } => typed(
            "typing",
            vec![
                ("from", address(from)),
                ("started", JsValue::from(*started)),
            ],
        ),
        Event::Presence { from, online } => typed(
            "presence",
            vec![("from", address(from)), ("online", JsValue::from(*online))],
        ),
        Event::Failed { message_id, reason } => typed(
            "failed",
            vec![
                ("messageId", message_id.map(id).unwrap_or(JsValue::NULL)),
                ("reason", JsValue::from_str(reason)),
            ],
        ),
        Event::DecryptFailed { from, error } => typed(
            "decryptFailed",
            vec![("from", address(from)), ("error", JsValue::from_str(error))],
        ),
        Event::PreKeysUploaded { count } => {
            typed("preKeysUploaded", vec![("count", JsValue::from(*count))])
        }
        Event::DeviceLinked { device_id } => typed(
            "deviceLinked",
            vec![("deviceId", JsValue::from(*device_id))],
        ),
        Event::DeviceListRejected { user, reason } => typed(
            "deviceListRejected",
            vec![
                ("user", JsValue::from_str(user)),
                ("reason", JsValue::from_str(reason)),
            ],
        ),
        Event::HistorySynced {
            chunks_done,
            chunks,
            messages,
        } => typed(
            "historySynced",
            vec![
                ("chunksDone", JsValue::from(*chunks_done)),
                ("chunks", JsValue::from(*chunks)),
                ("messages", JsValue::from(*messages)),
            ],
        ),
        Event::AppStateRejected { collection, reason } => typed(
            "appStateRejected",
            vec![
                ("collection", JsValue::from_str(collection)),
                ("reason", JsValue::from_str(reason)),
            ],
        ),
        Event::GroupUpdated { group_id, chat_id } => typed(
            "groupUpdated",
            vec![
                ("groupId", Uint8Array::from(group_id.as_slice()).into()),
                ("chatId", id(*chat_id)),
            ],
        ),
        Event::AppStateChanged { collection } => typed(
            "appStateChanged",
            vec![("collection", JsValue::from_str(collection))],
        ),
        // `Event` is non-exhaustive: a kind added later reaches the page by name.
        other => typed(
            "other",
            vec![("debug", JsValue::from_str(&format!("{other:?}")))],
        ),
    }
}
