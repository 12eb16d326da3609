//! The C ABI: the same API as the uniffi exports, for C# (P/Invoke), C and C++.
//!
//! The header (`pawl.h`, cbindgen) and the C# declarations (`NativeMethods.g.cs`,
//! csbindgen) are generated from this file by `pawl-capi-gen` (`cargo run -p pawl-ffi
//! --features cli --bin pawl-capi-gen -- <out-dir>`). Each function is a few lines over
//! [`PawlClient`] / [`PawlProtocol`].
//!
//! # Conventions (the safety contract of every function here)
//!
//! * Every fallible function returns a `uint32_t` status: `0` on success, otherwise one
//!   of the stable error codes of [`crate::codes`] (`1` invalid argument, `2` wrong
//!   database key, ...). After a non-zero status, [`pawl_last_error_message`] gives the
//!   message of the last error **of the calling thread**.
//! * Strings passed in are NUL-terminated UTF-8 (`const char *`); byte arrays are a
//!   pointer and a length (the pointer may be null when the length is 0). Pawl copies
//!   what it keeps; nothing passed in is retained after the call.
//! * Results are written through out-pointers, which must be valid and non-null; they
//!   are written only on success. Memory returned by Pawl ([`PawlBuffer`] and the
//!   structs holding buffers) is owned by the caller and released with the matching
//!   `pawl_*_free` function, exactly once. Strings in a `PawlBuffer` are UTF-8 without
//!   a terminating NUL. Buffers are zeroed when freed (they may hold plaintext).
//! * Handles (`PawlClientHandle *`, `PawlProtocolHandle *`) are thread-safe: any thread
//!   may call with them, concurrently. Free a handle once, after every call using it
//!   (including a blocked [`pawl_client_next_event`]) has returned.
//! * Network calls block the calling thread until done (the C# wrapper runs them on the
//!   thread pool and returns `Task`s). Do not call them from a callback of Pawl's.
//! * A panic inside Pawl is caught here and reported as code `99` (internal error).
#![allow(unsafe_code)] // raw pointers from C callers: checked for null, documented above
#![allow(clippy::missing_safety_doc)] // one contract for all, in the module docs above

use std::cell::RefCell;
use std::ffi::{c_char, CStr};
use std::future::Future;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use zeroize::Zeroize;

use crate::client::{EventListener, PawlClient};
use crate::error::PawlError;
use crate::protocol::{Ciphertext, PawlProtocol, PreKeyBundle};
use crate::types::{Attachment, ChatMessage, ClientEvent, MediaKind, MediaMessage, MessageStatus};
use crate::{guard, runtime};

// ---------------------------------------------------------------------------------
// Memory

/// Bytes (or a UTF-8 string, without NUL) owned by the caller once returned: release
/// with [`pawl_buffer_free`]. Passed in (a prekey bundle's keys), a buffer is borrowed.
#[repr(C)]
#[derive(Debug)]
pub struct PawlBuffer {
    /// The first byte (null when `len` is 0 and nothing was allocated).
    pub data: *mut u8,
    /// The number of bytes.
    pub len: usize,
}

impl PawlBuffer {
    fn empty() -> Self {
        PawlBuffer {
            data: std::ptr::null_mut(),
            len: 0,
        }
    }

    fn from_vec(v: Vec<u8>) -> Self {
        if v.is_empty() {
            return PawlBuffer::empty();
        }
        let b = v.into_boxed_slice();
        let len = b.len();
        PawlBuffer {
            data: Box::into_raw(b).cast::<u8>(),
            len,
        }
    }

    fn from_string(s: String) -> Self {
        PawlBuffer::from_vec(s.into_bytes())
    }

    /// Release (zeroed first). Safe on an empty buffer; leaves `self` empty.
    unsafe fn release(&mut self) {
        if !self.data.is_null() && self.len > 0 {
            let mut b = Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.data, self.len));
            b.zeroize();
        }
        *self = PawlBuffer::empty();
    }

    /// The borrowed bytes of a buffer passed in.
    unsafe fn borrowed(&self, what: &str) -> Result<Vec<u8>, PawlError> {
        bytes_arg(self.data, self.len, what)
    }
}

/// A list of buffers (strings), released with [`pawl_buffer_list_free`].
#[repr(C)]
#[derive(Debug)]
pub struct PawlBufferList {
    /// The first item.
    pub items: *mut PawlBuffer,
    /// The number of items.
    pub len: usize,
}

/// Run a release (a `pawl_*_free`): it returns nothing to report a panic through, so a
/// panic is swallowed rather than unwound into the caller.
fn release_quietly(f: impl FnOnce()) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
}

/// Release what `Box::into_raw` handed out (a handle); null is ignored.
unsafe fn free_box<T>(p: *mut T) {
    if !p.is_null() {
        release_quietly(|| drop(Box::from_raw(p)));
    }
}

/// Box a vector of C structs as (pointer, length).
fn boxed<T>(v: Vec<T>) -> (*mut T, usize) {
    let b = v.into_boxed_slice();
    let len = b.len();
    (Box::into_raw(b).cast::<T>(), len)
}

/// Take back a vector boxed by [`boxed`].
unsafe fn unboxed<T>(items: *mut T, len: usize) -> Option<Box<[T]>> {
    if items.is_null() {
        return None;
    }
    Some(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
        items, len,
    )))
}

/// Release a buffer returned by Pawl (its bytes are zeroed first). A buffer with a null
/// `data` is ignored.
#[no_mangle]
pub unsafe extern "C" fn pawl_buffer_free(buffer: PawlBuffer) {
    let mut b = buffer;
    release_quietly(|| b.release());
}

/// Release a list of buffers returned by Pawl.
#[no_mangle]
pub unsafe extern "C" fn pawl_buffer_list_free(list: PawlBufferList) {
    release_quietly(|| {
        if let Some(mut items) = unboxed(list.items, list.len) {
            items.iter_mut().for_each(|b| b.release());
        }
    });
}

// ---------------------------------------------------------------------------------
// Errors and arguments

thread_local! {
    static LAST_ERROR: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Run an export body: `0` on success; on failure (or a panic) the error's code, with
/// its message kept for [`pawl_last_error_message`].
fn call(f: impl FnOnce() -> Result<(), PawlError>) -> u32 {
    match guard(f) {
        Ok(()) => 0,
        Err(e) => {
            let code = e.code();
            let message = match &e {
                PawlError::Relay { relay_code, .. } => format!("{e} [relay code {relay_code}]"),
                _ => e.to_string(),
            };
            LAST_ERROR.with(|l| *l.borrow_mut() = Some(message));
            code
        }
    }
}

fn invalid(what: impl Into<String>) -> PawlError {
    PawlError::invalid_argument(what)
}

unsafe fn str_arg(p: *const c_char, what: &str) -> Result<String, PawlError> {
    if p.is_null() {
        return Err(invalid(format!("{what} is null")));
    }
    CStr::from_ptr(p)
        .to_str()
        .map(str::to_owned)
        .map_err(|_| invalid(format!("{what} is not UTF-8")))
}

unsafe fn bytes_arg(p: *const u8, len: usize, what: &str) -> Result<Vec<u8>, PawlError> {
    if len == 0 {
        return Ok(Vec::new());
    }
    if p.is_null() {
        return Err(invalid(format!("{what} is null with length {len}")));
    }
    Ok(std::slice::from_raw_parts(p, len).to_vec())
}

/// An out-pointer, checked before any work is done.
unsafe fn out<'a, T>(p: *mut T, what: &str) -> Result<&'a mut std::mem::MaybeUninit<T>, PawlError> {
    p.cast::<std::mem::MaybeUninit<T>>()
        .as_mut()
        .ok_or_else(|| invalid(format!("the out-pointer {what} is null")))
}

unsafe fn handle<'a, T>(p: *const T, what: &str) -> Result<&'a T, PawlError> {
    p.as_ref()
        .ok_or_else(|| invalid(format!("the {what} handle is null")))
}

fn block<T>(f: impl Future<Output = Result<T, PawlError>>) -> Result<T, PawlError> {
    runtime()?.block_on(f)
}

/// The message of the calling thread's last error (UTF-8; empty if there was none).
/// Release with [`pawl_buffer_free`].
#[no_mangle]
pub extern "C" fn pawl_last_error_message() -> PawlBuffer {
    LAST_ERROR
        .with(|l| l.borrow().clone())
        .map(PawlBuffer::from_string)
        .unwrap_or_else(PawlBuffer::empty)
}

/// Pawl's version, e.g. `0.1.0`. Release with [`pawl_buffer_free`].
#[no_mangle]
pub extern "C" fn pawl_version() -> PawlBuffer {
    PawlBuffer::from_string(crate::version())
}

/// The SHA-256 of a DER certificate (32 bytes): the pin [`pawl_client_open`] takes.
#[no_mangle]
pub unsafe extern "C" fn pawl_cert_sha256(
    der: *const u8,
    der_len: usize,
    out_hash: *mut PawlBuffer,
) -> u32 {
    call(|| {
        let o = out(out_hash, "out_hash")?;
        let der = bytes_arg(der, der_len, "der")?;
        o.write(PawlBuffer::from_vec(crate::cert_sha256(der)));
        Ok(())
    })
}

// ---------------------------------------------------------------------------------
// Records

/// A stored message. Part of a [`PawlMessageList`] or a [`PawlEvent`]; released with them.
#[repr(C)]
#[derive(Debug)]
pub struct PawlMessage {
    /// Id in the store.
    pub id: i64,
    /// The chat it belongs to.
    pub chat_id: i64,
    /// The sender's user name (ours for outgoing messages).
    pub sender: PawlBuffer,
    /// The sender's device.
    pub sender_device: u32,
    /// 1 if sent by this device, 0 if received.
    pub outgoing: u8,
    /// 1 if the body is UTF-8 text (then `text` holds it), else 0.
    pub has_text: u8,
    /// The body as text (when `has_text`).
    pub text: PawlBuffer,
    /// The body, byte for byte.
    pub body: PawlBuffer,
    /// The sender's timestamp, ms since the Unix epoch.
    pub sent_at: i64,
    /// When this device received it (incoming), ms since the Unix epoch; 0 if not.
    pub received_at: i64,
    /// Delivery state: one of the `PAWL_STATUS_*` values.
    pub status: u32,
    /// 1 for a media message (then `media` describes it and `text` is the caption).
    pub has_media: u8,
    /// The media message (when `has_media`).
    pub media: PawlMedia,
}

/// An image.
pub const PAWL_MEDIA_IMAGE: u32 = 1;
/// A video.
pub const PAWL_MEDIA_VIDEO: u32 = 2;
/// Audio.
pub const PAWL_MEDIA_AUDIO: u32 = 3;
/// Any other file.
pub const PAWL_MEDIA_DOCUMENT: u32 = 4;

/// A media message: the attachment (kind .. file_length, from
/// [`pawl_client_upload_attachment`]) and what the app shows before downloading it.
/// Returned inside messages and by the upload (release with [`pawl_media_free`] when
/// returned on its own); passed to [`pawl_client_send_media`] and
/// [`pawl_client_download_attachment`] with buffers borrowed from the caller.
#[repr(C)]
#[derive(Debug)]
pub struct PawlMedia {
    /// One of the `PAWL_MEDIA_*` values.
    pub kind: u32,
    /// The blob's id at the relay.
    pub blob_id: PawlBuffer,
    /// The 32-byte media key.
    pub media_key: PawlBuffer,
    /// SHA-256 of the file (32 bytes).
    pub file_sha256: PawlBuffer,
    /// SHA-256 of the encrypted blob (32 bytes).
    pub file_enc_sha256: PawlBuffer,
    /// The file's length.
    pub file_length: u64,
    /// MIME type (text).
    pub mime_type: PawlBuffer,
    /// File name (text).
    pub file_name: PawlBuffer,
    /// Caption (text).
    pub caption: PawlBuffer,
    /// A small preview image (at most 64 KiB).
    pub thumbnail: PawlBuffer,
    /// Pixel width (0 if unknown).
    pub width: u32,
    /// Pixel height (0 if unknown).
    pub height: u32,
}

fn media_kind_code(k: MediaKind) -> u32 {
    match k {
        MediaKind::Image => PAWL_MEDIA_IMAGE,
        MediaKind::Video => PAWL_MEDIA_VIDEO,
        MediaKind::Audio => PAWL_MEDIA_AUDIO,
        MediaKind::Document => PAWL_MEDIA_DOCUMENT,
    }
}

fn media_kind(code: u32) -> Result<MediaKind, PawlError> {
    Ok(match code {
        PAWL_MEDIA_IMAGE => MediaKind::Image,
        PAWL_MEDIA_VIDEO => MediaKind::Video,
        PAWL_MEDIA_AUDIO => MediaKind::Audio,
        PAWL_MEDIA_DOCUMENT => MediaKind::Document,
        k => return Err(invalid(format!("unknown media kind {k}"))),
    })
}

impl PawlMedia {
    fn empty() -> Self {
        PawlMedia {
            kind: 0,
            blob_id: PawlBuffer::empty(),
            media_key: PawlBuffer::empty(),
            file_sha256: PawlBuffer::empty(),
            file_enc_sha256: PawlBuffer::empty(),
            file_length: 0,
            mime_type: PawlBuffer::empty(),
            file_name: PawlBuffer::empty(),
            caption: PawlBuffer::empty(),
            thumbnail: PawlBuffer::empty(),
            width: 0,
            height: 0,
        }
    }

    fn from_attachment(a: Attachment) -> Self {
        PawlMedia {
            kind: media_kind_code(a.kind),
            blob_id: PawlBuffer::from_vec(a.blob_id),
            media_key: PawlBuffer::from_vec(a.media_key),
            file_sha256: PawlBuffer::from_vec(a.file_sha256),
            file_enc_sha256: PawlBuffer::from_vec(a.file_enc_sha256),
            file_length: a.file_length,
            ..PawlMedia::empty()
        }
    }

    fn from_media(m: MediaMessage) -> Self {
        PawlMedia {
            mime_type: PawlBuffer::from_string(m.mime_type),
            file_name: PawlBuffer::from_string(m.file_name),
            caption: PawlBuffer::from_string(m.caption),
            thumbnail: PawlBuffer::from_vec(m.thumbnail),
            width: m.width,
            height: m.height,
            ..PawlMedia::from_attachment(m.attachment)
        }
    }

    /// The attachment part of a media description passed in (borrowed buffers).
    unsafe fn attachment(&self) -> Result<Attachment, PawlError> {
        Ok(Attachment {
            kind: media_kind(self.kind)?,
            blob_id: self.blob_id.borrowed("blob_id")?,
            media_key: self.media_key.borrowed("media_key")?,
            file_sha256: self.file_sha256.borrowed("file_sha256")?,
            file_enc_sha256: self.file_enc_sha256.borrowed("file_enc_sha256")?,
            file_length: self.file_length,
        })
    }

    unsafe fn text(b: &PawlBuffer, what: &str) -> Result<String, PawlError> {
        String::from_utf8(b.borrowed(what)?).map_err(|_| invalid(format!("{what} is not UTF-8")))
    }

    /// A media message passed in (borrowed buffers).
    unsafe fn media(&self) -> Result<MediaMessage, PawlError> {
        Ok(MediaMessage {
            attachment: self.attachment()?,
            mime_type: Self::text(&self.mime_type, "mime_type")?,
            file_name: Self::text(&self.file_name, "file_name")?,
            caption: Self::text(&self.caption, "caption")?,
            thumbnail: self.thumbnail.borrowed("thumbnail")?,
            width: self.width,
            height: self.height,
        })
    }

    unsafe fn release(&mut self) {
        for b in [
            &mut self.blob_id,
            &mut self.media_key,
            &mut self.file_sha256,
            &mut self.file_enc_sha256,
            &mut self.mime_type,
            &mut self.file_name,
            &mut self.caption,
            &mut self.thumbnail,
        ] {
            b.release();
        }
    }
}

/// Release a media description returned on its own (by the upload).
#[no_mangle]
pub unsafe extern "C" fn pawl_media_free(media: PawlMedia) {
    let mut m = media;
    release_quietly(|| m.release());
}

/// Stored, not yet accepted by the relay.
pub const PAWL_STATUS_PENDING: u32 = 0;
/// Accepted by the relay.
pub const PAWL_STATUS_SENT: u32 = 1;
/// Delivered to a device of the recipient.
pub const PAWL_STATUS_DELIVERED: u32 = 2;
/// Read by the recipient (incoming messages: read by us).
pub const PAWL_STATUS_READ: u32 = 3;
/// Could not be sent.
pub const PAWL_STATUS_FAILED: u32 = 4;

fn status_code(s: MessageStatus) -> u32 {
    match s {
        MessageStatus::Pending => PAWL_STATUS_PENDING,
        MessageStatus::Sent => PAWL_STATUS_SENT,
        MessageStatus::Delivered => PAWL_STATUS_DELIVERED,
        MessageStatus::Read => PAWL_STATUS_READ,
        MessageStatus::Failed => PAWL_STATUS_FAILED,
    }
}

impl PawlMessage {
    fn empty() -> Self {
        PawlMessage {
            id: 0,
            chat_id: 0,
            sender: PawlBuffer::empty(),
            sender_device: 0,
            outgoing: 0,
            has_text: 0,
            text: PawlBuffer::empty(),
            body: PawlBuffer::empty(),
            sent_at: 0,
            received_at: 0,
            status: 0,
            has_media: 0,
            media: PawlMedia::empty(),
        }
    }

    unsafe fn release(&mut self) {
        self.sender.release();
        self.text.release();
        self.body.release();
        self.media.release();
    }
}

impl From<ChatMessage> for PawlMessage {
    fn from(m: ChatMessage) -> Self {
        PawlMessage {
            id: m.id,
            chat_id: m.chat_id,
            sender: PawlBuffer::from_string(m.sender),
            sender_device: m.sender_device,
            outgoing: u8::from(m.outgoing),
            has_text: u8::from(m.text.is_some()),
            text: m
                .text
                .map(PawlBuffer::from_string)
                .unwrap_or_else(PawlBuffer::empty),
            body: PawlBuffer::from_vec(m.body),
            sent_at: m.sent_at,
            received_at: m.received_at.unwrap_or(0),
            status: status_code(m.status),
            has_media: u8::from(m.media.is_some()),
            media: m
                .media
                .map(PawlMedia::from_media)
                .unwrap_or_else(PawlMedia::empty),
        }
    }
}

/// Messages, newest first. Release with [`pawl_message_list_free`].
#[repr(C)]
#[derive(Debug)]
pub struct PawlMessageList {
    /// The first message.
    pub items: *mut PawlMessage,
    /// The number of messages.
    pub len: usize,
}

fn message_list(v: Vec<ChatMessage>) -> PawlMessageList {
    let (items, len) = boxed(v.into_iter().map(PawlMessage::from).collect());
    PawlMessageList { items, len }
}

/// Release a list of messages.
#[no_mangle]
pub unsafe extern "C" fn pawl_message_list_free(list: PawlMessageList) {
    release_quietly(|| {
        if let Some(mut items) = unboxed(list.items, list.len) {
            items.iter_mut().for_each(|m| m.release());
        }
    });
}

/// The safety number with a peer and its QR code. Release with
/// [`pawl_safety_number_free`].
#[repr(C)]
#[derive(Debug)]
pub struct PawlSafetyNumber {
    /// The 60 digits (text), identical on both sides.
    pub digits: PawlBuffer,
    /// The payload of the QR code the peer scans.
    pub scannable: PawlBuffer,
    /// The QR code as a PNG image.
    pub qr_png: PawlBuffer,
    /// The QR code as an SVG document (text).
    pub qr_svg: PawlBuffer,
}

/// Release a safety number.
#[no_mangle]
pub unsafe extern "C" fn pawl_safety_number_free(number: PawlSafetyNumber) {
    let mut n = number;
    release_quietly(|| {
        n.digits.release();
        n.scannable.release();
        n.qr_png.release();
        n.qr_svg.release();
    });
}

// ---------------------------------------------------------------------------------
// Events

/// No event arrived before the timeout.
pub const PAWL_EVENT_NONE: u32 = 0;
/// Connected to the relay and authenticated.
pub const PAWL_EVENT_CONNECTED: u32 = 1;
/// The connection dropped (`text`: why); the client reconnects by itself.
pub const PAWL_EVENT_DISCONNECTED: u32 = 2;
/// A new message, already committed to the store (`message`).
pub const PAWL_EVENT_MESSAGE: u32 = 3;
/// The relay accepted our message (`message_id`).
pub const PAWL_EVENT_SENT: u32 = 4;
/// A device (`peer`, `peer_device`) of the recipient received our message (`message_id`).
pub const PAWL_EVENT_DELIVERED: u32 = 5;
/// The recipient's device (`peer`, `peer_device`) read our message (`message_id`).
pub const PAWL_EVENT_READ: u32 = 6;
/// A contact's device (`peer`, `peer_device`) started (`flag` 1) or stopped typing.
pub const PAWL_EVENT_TYPING: u32 = 7;
/// A contact's device (`peer`, `peer_device`) came online (`flag` 1) or went offline.
pub const PAWL_EVENT_PRESENCE: u32 = 8;
/// A message could not be sent (`message_id` when `flag` is 1; `text`: why).
pub const PAWL_EVENT_FAILED: u32 = 9;
/// A message from `peer`, `peer_device` could not be decrypted (`text`: why).
pub const PAWL_EVENT_DECRYPT_FAILED: u32 = 10;
/// `count` one-time prekeys were uploaded to the relay.
pub const PAWL_EVENT_PREKEYS_UPLOADED: u32 = 11;
/// A companion was linked (`peer_device`: its id).
pub const PAWL_EVENT_DEVICE_LINKED: u32 = 12;
/// A history chunk was imported (`progress` of `total` chunks, `count` messages).
pub const PAWL_EVENT_HISTORY_SYNCED: u32 = 13;
/// Synced state changed on another device (`text`: the collection).
pub const PAWL_EVENT_APP_STATE_CHANGED: u32 = 14;
/// A device of `peer` failed the checks and gets nothing (`text`: why).
pub const PAWL_EVENT_DEVICE_LIST_REJECTED: u32 = 15;
/// A group was created or changed, or this account was removed from it (`text`: the
/// group id, 16 bytes; `message_id`: its chat id).
pub const PAWL_EVENT_GROUP_UPDATED: u32 = 16;

/// One event of a client. Which fields are set depends on `kind` (see the
/// `PAWL_EVENT_*` constants). Release with [`pawl_event_free`].
#[repr(C)]
#[derive(Debug)]
pub struct PawlEvent {
    /// One of the `PAWL_EVENT_*` values.
    pub kind: u32,
    /// The message id (sent, delivered, read, failed).
    pub message_id: i64,
    /// The other user (delivered, read, typing, presence, decrypt failed).
    pub peer: PawlBuffer,
    /// The other user's device.
    pub peer_device: u32,
    /// Typing started / online / failed has a message id.
    pub flag: u8,
    /// A count (prekeys uploaded, messages of a history chunk).
    pub count: u32,
    /// History chunks imported so far (history synced).
    pub progress: u32,
    /// History chunks in all (history synced).
    pub total: u32,
    /// A reason or error text (disconnected, failed, decrypt failed).
    pub text: PawlBuffer,
    /// The message (kind message).
    pub message: PawlMessage,
}

impl PawlEvent {
    fn of(kind: u32) -> Self {
        PawlEvent {
            kind,
            message_id: 0,
            peer: PawlBuffer::empty(),
            peer_device: 0,
            flag: 0,
            count: 0,
            progress: 0,
            total: 0,
            text: PawlBuffer::empty(),
            message: PawlMessage::empty(),
        }
    }

    fn with_peer(kind: u32, a: crate::types::Address) -> Self {
        PawlEvent {
            peer: PawlBuffer::from_string(a.name),
            peer_device: a.device_id,
            ..PawlEvent::of(kind)
        }
    }
}

impl From<ClientEvent> for PawlEvent {
    fn from(e: ClientEvent) -> Self {
        match e {
            ClientEvent::Connected => PawlEvent::of(PAWL_EVENT_CONNECTED),
            ClientEvent::Disconnected { reason } => PawlEvent {
                text: PawlBuffer::from_string(reason),
                ..PawlEvent::of(PAWL_EVENT_DISCONNECTED)
            },
            ClientEvent::Message { message } => PawlEvent {
                message_id: message.id,
                message: message.into(),
                ..PawlEvent::of(PAWL_EVENT_MESSAGE)
            },
            ClientEvent::Sent { message_id } => PawlEvent {
                message_id,
                ..PawlEvent::of(PAWL_EVENT_SENT)
            },
            ClientEvent::Delivered { message_id, device } => PawlEvent {
                message_id,
                ..PawlEvent::with_peer(PAWL_EVENT_DELIVERED, device)
            },
            ClientEvent::Read { message_id, by } => PawlEvent {
                message_id,
                ..PawlEvent::with_peer(PAWL_EVENT_READ, by)
            },
            ClientEvent::Typing { peer, started } => PawlEvent {
                flag: u8::from(started),
                ..PawlEvent::with_peer(PAWL_EVENT_TYPING, peer)
            },
            ClientEvent::Presence { peer, online } => PawlEvent {
                flag: u8::from(online),
                ..PawlEvent::with_peer(PAWL_EVENT_PRESENCE, peer)
            },
            ClientEvent::Failed { message_id, reason } => PawlEvent {
                message_id: message_id.unwrap_or(0),
                flag: u8::from(message_id.is_some()),
                text: PawlBuffer::from_string(reason),
                ..PawlEvent::of(PAWL_EVENT_FAILED)
            },
            ClientEvent::DecryptFailed { peer, error } => PawlEvent {
                text: PawlBuffer::from_string(error),
                ..PawlEvent::with_peer(PAWL_EVENT_DECRYPT_FAILED, peer)
            },
            ClientEvent::PreKeysUploaded { count } => PawlEvent {
                count,
                ..PawlEvent::of(PAWL_EVENT_PREKEYS_UPLOADED)
            },
            ClientEvent::DeviceLinked { device_id } => PawlEvent {
                peer_device: device_id,
                ..PawlEvent::of(PAWL_EVENT_DEVICE_LINKED)
            },
            ClientEvent::HistorySynced {
                chunks_done,
                chunks,
                messages,
            } => PawlEvent {
                count: messages,
                progress: chunks_done,
                total: chunks,
                ..PawlEvent::of(PAWL_EVENT_HISTORY_SYNCED)
            },
            ClientEvent::AppStateChanged { collection } => PawlEvent {
                text: PawlBuffer::from_string(collection),
                ..PawlEvent::of(PAWL_EVENT_APP_STATE_CHANGED)
            },
            ClientEvent::GroupUpdated { group_id, chat_id } => PawlEvent {
                message_id: chat_id,
                text: PawlBuffer::from_vec(group_id),
                ..PawlEvent::of(PAWL_EVENT_GROUP_UPDATED)
            },
            ClientEvent::DeviceListRejected { user, reason } => PawlEvent {
                peer: PawlBuffer::from_string(user),
                text: PawlBuffer::from_string(reason),
                ..PawlEvent::of(PAWL_EVENT_DEVICE_LIST_REJECTED)
            },
        }
    }
}

/// Release an event's buffers (an event of kind `PAWL_EVENT_NONE` may be freed too).
#[no_mangle]
pub unsafe extern "C" fn pawl_event_free(event: PawlEvent) {
    let mut e = event;
    release_quietly(|| {
        e.peer.release();
        e.text.release();
        e.message.release();
    });
}

// ---------------------------------------------------------------------------------
// Client

/// A client (one device's database and its relay connection). Opaque.
pub struct PawlClientHandle {
    client: Arc<PawlClient>,
    events: Mutex<mpsc::Receiver<ClientEvent>>,
}

/// The client's listener: events go to the handle's queue.
struct Queue(mpsc::Sender<ClientEvent>);

impl EventListener for Queue {
    fn on_event(&self, event: ClientEvent) {
        let _ = self.0.send(event);
    }
}

/// Open (or create) a client: the database at `db_path` encrypted with the 32-byte
/// `db_key`, for the relay at `relay_url` (`wss://host:port/v1/ws`). `pin` is the
/// SHA-256 of the relay certificate's DER (32 bytes; `pin_len` 0 for none, `ws://`
/// only). Writes a handle to `out_client`; release it with [`pawl_client_free`].
/// Events are queued from now on: take them with [`pawl_client_next_event`].
#[no_mangle]
pub unsafe extern "C" fn pawl_client_open(
    db_path: *const c_char,
    db_key: *const u8,
    db_key_len: usize,
    relay_url: *const c_char,
    pin: *const u8,
    pin_len: usize,
    out_client: *mut *mut PawlClientHandle,
) -> u32 {
    call(|| {
        let o = out(out_client, "out_client")?;
        let path = str_arg(db_path, "db_path")?;
        let key = bytes_arg(db_key, db_key_len, "db_key")?;
        let url = str_arg(relay_url, "relay_url")?;
        let pin = bytes_arg(pin, pin_len, "pin")?;
        let pin = (!pin.is_empty()).then_some(pin);
        let client = PawlClient::open(path, key, url, pin)?;
        let (tx, rx) = mpsc::channel();
        client.set_listener(Box::new(Queue(tx)))?;
        o.write(Box::into_raw(Box::new(PawlClientHandle {
            client,
            events: Mutex::new(rx),
        })));
        Ok(())
    })
}

/// Release a client (its connection stops). Null is ignored.
#[no_mangle]
pub unsafe extern "C" fn pawl_client_free(client: *mut PawlClientHandle) {
    free_box(client);
}

/// A new device waiting to be linked (from [`pawl_client_start_linking`]). Opaque.
pub struct PawlLinkingHandle {
    linking: Arc<crate::devices::PawlLinking>,
}

/// On a new (unregistered) device: start linking; writes a handle to `out_linking`
/// (release with [`pawl_linking_free`]). Take codes with [`pawl_linking_next_code`].
/// Blocks.
#[no_mangle]
pub unsafe extern "C" fn pawl_client_start_linking(
    client: *const PawlClientHandle,
    out_linking: *mut *mut PawlLinkingHandle,
) -> u32 {
    call(|| {
        let o = out(out_linking, "out_linking")?;
        let c = handle(client, "client")?;
        let linking = block(c.client.start_linking())?;
        o.write(Box::into_raw(Box::new(PawlLinkingHandle { linking })));
        Ok(())
    })
}

/// The next code to show: its text (`pawl-link:1,...`) in `out_code` and the QR code as
/// a PNG in `out_png` (release both with [`pawl_buffer_free`]); both empty once the
/// primary has answered or the codes ran out. Blocks until there is one.
#[no_mangle]
pub unsafe extern "C" fn pawl_linking_next_code(
    linking: *const PawlLinkingHandle,
    out_code: *mut PawlBuffer,
    out_png: *mut PawlBuffer,
) -> u32 {
    call(|| {
        let oc = out(out_code, "out_code")?;
        let op = out(out_png, "out_png")?;
        let l = handle(linking, "linking")?;
        match block(l.linking.next_code())? {
            Some(c) => {
                oc.write(PawlBuffer::from_string(c.code));
                op.write(PawlBuffer::from_vec(c.qr_png));
            }
            None => {
                oc.write(PawlBuffer::empty());
                op.write(PawlBuffer::empty());
            }
        }
        Ok(())
    })
}

/// Wait until the link completes; writes this device's id (then start the client).
/// Blocks.
#[no_mangle]
pub unsafe extern "C" fn pawl_linking_finished(
    linking: *const PawlLinkingHandle,
    out_device_id: *mut u32,
) -> u32 {
    call(|| {
        let o = out(out_device_id, "out_device_id")?;
        let l = handle(linking, "linking")?;
        o.write(block(l.linking.finished())?.device_id);
        Ok(())
    })
}

/// Release a linking handle. Null is ignored.
#[no_mangle]
pub unsafe extern "C" fn pawl_linking_free(linking: *mut PawlLinkingHandle) {
    free_box(linking);
}

/// Check a scanned link code; writes the new device's identity key (33 bytes) for the
/// app to show before it calls [`pawl_client_link_device`]. A code that is not one is
/// `PAWL_ERROR_INVALID_ARGUMENT`.
#[no_mangle]
pub unsafe extern "C" fn pawl_parse_link_code(
    code: *const c_char,
    out_identity_key: *mut PawlBuffer,
) -> u32 {
    call(|| {
        let o = out(out_identity_key, "out_identity_key")?;
        let info = crate::devices::parse_link_code(str_arg(code, "code")?)?;
        o.write(PawlBuffer::from_vec(info.identity_key));
        Ok(())
    })
}

/// On the primary: link the device whose code was scanned; writes its device id once
/// it accepted (its keys and history are sent). Blocks.
#[no_mangle]
pub unsafe extern "C" fn pawl_client_link_device(
    client: *const PawlClientHandle,
    code: *const c_char,
    out_device_id: *mut u32,
) -> u32 {
    call(|| {
        let o = out(out_device_id, "out_device_id")?;
        let c = handle(client, "client")?;
        o.write(block(c.client.link_device(str_arg(code, "code")?))?);
        Ok(())
    })
}

/// Split a newline-separated list of user names (empty lines skipped).
fn lines(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Create a group named `name` with `members` (user names, one per line; this account
/// is added as admin); writes the group id (16 bytes, free with `pawl_buffer_free`).
/// Blocks.
#[no_mangle]
pub unsafe extern "C" fn pawl_client_create_group(
    client: *const PawlClientHandle,
    name: *const c_char,
    members: *const c_char,
    out_group_id: *mut PawlBuffer,
) -> u32 {
    call(|| {
        let o = out(out_group_id, "out_group_id")?;
        let c = handle(client, "client")?;
        let (name, members) = (str_arg(name, "name")?, str_arg(members, "members")?);
        let g = block(c.client.create_group(name, lines(&members)))?;
        o.write(PawlBuffer::from_vec(g.id));
        Ok(())
    })
}

/// Add (`add` = 1) or remove (`add` = 0) group members (user names, one per line);
/// admins only. Blocks.
#[no_mangle]
pub unsafe extern "C" fn pawl_client_change_group_members(
    client: *const PawlClientHandle,
    group_id: *const u8,
    group_id_len: usize,
    members: *const c_char,
    add: u8,
) -> u32 {
    call(|| {
        let c = handle(client, "client")?;
        let id = bytes_arg(group_id, group_id_len, "group_id")?;
        let users = lines(&str_arg(members, "members")?);
        if add != 0 {
            block(c.client.add_group_members(id, users))?;
        } else {
            block(c.client.remove_group_members(id, users))?;
        }
        Ok(())
    })
}

/// Send `text` to the group; writes the message id. Blocks.
#[no_mangle]
pub unsafe extern "C" fn pawl_client_send_group_text(
    client: *const PawlClientHandle,
    group_id: *const u8,
    group_id_len: usize,
    text: *const c_char,
    out_message_id: *mut i64,
) -> u32 {
    call(|| {
        let o = out(out_message_id, "out_message_id")?;
        let c = handle(client, "client")?;
        let id = bytes_arg(group_id, group_id_len, "group_id")?;
        o.write(block(c.client.send_group_text(id, str_arg(text, "text")?))?);
        Ok(())
    })
}

/// On the primary: unlink a device. Blocks.
#[no_mangle]
pub unsafe extern "C" fn pawl_client_unlink_device(
    client: *const PawlClientHandle,
    device_id: u32,
) -> u32 {
    call(|| {
        let c = handle(client, "client")?;
        block(c.client.unlink_device(device_id))
    })
}

/// Archive or unarchive the chat with `peer` on every device of the account. Blocks.
#[no_mangle]
pub unsafe extern "C" fn pawl_client_set_archived(
    client: *const PawlClientHandle,
    peer: *const c_char,
    archived: u8,
) -> u32 {
    call(|| {
        let c = handle(client, "client")?;
        block(c.client.set_archived(str_arg(peer, "peer")?, archived != 0))
    })
}

/// Whether the chat with `peer` is archived (synced state). Pulls what other devices
/// wrote first. Blocks.
#[no_mangle]
pub unsafe extern "C" fn pawl_client_is_archived(
    client: *const PawlClientHandle,
    peer: *const c_char,
    out_archived: *mut u8,
) -> u32 {
    call(|| {
        let o = out(out_archived, "out_archived")?;
        let c = handle(client, "client")?;
        block(c.client.sync_app_state())?;
        o.write(u8::from(
            c.client.chat_state(str_arg(peer, "peer")?)?.archived,
        ));
        Ok(())
    })
}

/// Ask the relay to send a verification code to `phone` (E.164). Blocks.
#[no_mangle]
pub unsafe extern "C" fn pawl_client_request_code(
    client: *const PawlClientHandle,
    phone: *const c_char,
) -> u32 {
    call(|| {
        let c = handle(client, "client")?;
        let phone = str_arg(phone, "phone")?;
        block(c.client.request_code(phone))
    })
}

/// Register this device as the primary device of `phone` with the code received. Blocks.
#[no_mangle]
pub unsafe extern "C" fn pawl_client_verify_code(
    client: *const PawlClientHandle,
    phone: *const c_char,
    code: *const c_char,
) -> u32 {
    call(|| {
        let c = handle(client, "client")?;
        let (phone, code) = (str_arg(phone, "phone")?, str_arg(code, "code")?);
        block(c.client.verify_code(phone, code))
    })
}

/// Start the connection (idempotent); it reconnects by itself until
/// [`pawl_client_shutdown`].
#[no_mangle]
pub unsafe extern "C" fn pawl_client_start(client: *const PawlClientHandle) -> u32 {
    call(|| handle(client, "client")?.client.start())
}

/// Stop the connection; unsent messages stay queued for the next start. Blocks.
#[no_mangle]
pub unsafe extern "C" fn pawl_client_shutdown(client: *const PawlClientHandle) -> u32 {
    call(|| block(handle(client, "client")?.client.shutdown()))
}

/// 1 if an authenticated connection to the relay is up, else 0 (also for null).
#[no_mangle]
pub unsafe extern "C" fn pawl_client_is_connected(client: *const PawlClientHandle) -> u8 {
    guard(|| Ok(u8::from(handle(client, "client")?.client.is_connected()))).unwrap_or(0)
}

/// This device's address: user name (phone) and device id.
#[no_mangle]
pub unsafe extern "C" fn pawl_client_address(
    client: *const PawlClientHandle,
    out_name: *mut PawlBuffer,
    out_device_id: *mut u32,
) -> u32 {
    call(|| {
        let (n, d) = (
            out(out_name, "out_name")?,
            out(out_device_id, "out_device_id")?,
        );
        let a = handle(client, "client")?.client.address()?;
        n.write(PawlBuffer::from_string(a.name));
        d.write(a.device_id);
        Ok(())
    })
}

/// This device's public identity key (33 bytes).
#[no_mangle]
pub unsafe extern "C" fn pawl_client_identity_key(
    client: *const PawlClientHandle,
    out_key: *mut PawlBuffer,
) -> u32 {
    call(|| {
        let o = out(out_key, "out_key")?;
        o.write(PawlBuffer::from_vec(
            handle(client, "client")?.client.identity_key()?,
        ));
        Ok(())
    })
}

/// Send `text` to every device of `peer`; writes the message id. Stored and queued
/// before this returns; `SENT`, `DELIVERED` and `READ` events follow. Blocks.
#[no_mangle]
pub unsafe extern "C" fn pawl_client_send_text(
    client: *const PawlClientHandle,
    peer: *const c_char,
    text: *const c_char,
    out_message_id: *mut i64,
) -> u32 {
    call(|| {
        let o = out(out_message_id, "out_message_id")?;
        let c = handle(client, "client")?;
        let (peer, text) = (str_arg(peer, "peer")?, str_arg(text, "text")?);
        o.write(block(c.client.send_text(peer, text))?);
        Ok(())
    })
}

/// Mark the chat with `peer` read and send read receipts; writes how many messages
/// were marked. Blocks.
#[no_mangle]
pub unsafe extern "C" fn pawl_client_mark_read(
    client: *const PawlClientHandle,
    peer: *const c_char,
    out_count: *mut u32,
) -> u32 {
    call(|| {
        let o = out(out_count, "out_count")?;
        let c = handle(client, "client")?;
        o.write(block(c.client.mark_read(str_arg(peer, "peer")?))?);
        Ok(())
    })
}

/// Encrypt the file at `path` as an attachment of `kind` (a `PAWL_MEDIA_*` value) and
/// upload it to the relay's blob store (chunked; resumes after a dropped connection).
/// Writes the attachment part of `out_media` (release with [`pawl_media_free`]); fill
/// in the rest and send it with [`pawl_client_send_media`]. Blocks.
#[no_mangle]
pub unsafe extern "C" fn pawl_client_upload_attachment(
    client: *const PawlClientHandle,
    kind: u32,
    path: *const c_char,
    out_media: *mut PawlMedia,
) -> u32 {
    call(|| {
        let o = out(out_media, "out_media")?;
        let c = handle(client, "client")?;
        let (kind, path) = (media_kind(kind)?, str_arg(path, "path")?);
        o.write(PawlMedia::from_attachment(block(
            c.client.upload_attachment(kind, path),
        )?));
        Ok(())
    })
}

/// Send a media message to every device of `peer`; writes the message id. Blocks.
#[no_mangle]
pub unsafe extern "C" fn pawl_client_send_media(
    client: *const PawlClientHandle,
    peer: *const c_char,
    media: *const PawlMedia,
    out_message_id: *mut i64,
) -> u32 {
    call(|| {
        let o = out(out_message_id, "out_message_id")?;
        let c = handle(client, "client")?;
        let m = media
            .as_ref()
            .ok_or_else(|| invalid("media is null"))?
            .media()?;
        o.write(block(c.client.send_media(str_arg(peer, "peer")?, m))?);
        Ok(())
    })
}

/// Download the attachment of `media`, check it (blob hash, MAC, file hash and length)
/// and decrypt it into the file at `path`; nothing is at `path` unless every check
/// passed (a tampered or wrong attachment: status 9). Blocks.
#[no_mangle]
pub unsafe extern "C" fn pawl_client_download_attachment(
    client: *const PawlClientHandle,
    media: *const PawlMedia,
    path: *const c_char,
) -> u32 {
    call(|| {
        let c = handle(client, "client")?;
        let a = media
            .as_ref()
            .ok_or_else(|| invalid("media is null"))?
            .attachment()?;
        block(c.client.download_attachment(a, str_arg(path, "path")?))
    })
}

/// Tell `peer` this user started (1) or stopped (0) typing. Blocks.
#[no_mangle]
pub unsafe extern "C" fn pawl_client_set_typing(
    client: *const PawlClientHandle,
    peer: *const c_char,
    started: u8,
) -> u32 {
    call(|| {
        let c = handle(client, "client")?;
        block(c.client.set_typing(str_arg(peer, "peer")?, started != 0))
    })
}

/// Tell `peer` whether this user is online (1) or not (0). Blocks.
#[no_mangle]
pub unsafe extern "C" fn pawl_client_set_presence(
    client: *const PawlClientHandle,
    peer: *const c_char,
    online: u8,
) -> u32 {
    call(|| {
        let c = handle(client, "client")?;
        block(c.client.set_presence(str_arg(peer, "peer")?, online != 0))
    })
}

/// Which of `phones` (`count` strings) are registered; writes the registered ones.
/// Release the list with [`pawl_buffer_list_free`]. Blocks.
#[no_mangle]
pub unsafe extern "C" fn pawl_client_discover(
    client: *const PawlClientHandle,
    phones: *const *const c_char,
    count: usize,
    out_registered: *mut PawlBufferList,
) -> u32 {
    call(|| {
        let o = out(out_registered, "out_registered")?;
        let c = handle(client, "client")?;
        if phones.is_null() && count > 0 {
            return Err(invalid("phones is null"));
        }
        let mut list = Vec::with_capacity(count);
        for i in 0..count {
            list.push(str_arg(*phones.add(i), "a phone number")?);
        }
        let found = block(c.client.discover(list))?;
        let (items, len) = boxed(found.into_iter().map(PawlBuffer::from_string).collect());
        o.write(PawlBufferList { items, len });
        Ok(())
    })
}

/// The latest `limit` messages of the chat with `peer`, newest first. Release with
/// [`pawl_message_list_free`].
#[no_mangle]
pub unsafe extern "C" fn pawl_client_messages(
    client: *const PawlClientHandle,
    peer: *const c_char,
    limit: u32,
    out_messages: *mut PawlMessageList,
) -> u32 {
    call(|| {
        let o = out(out_messages, "out_messages")?;
        let c = handle(client, "client")?;
        o.write(message_list(
            c.client.messages(str_arg(peer, "peer")?, limit)?,
        ));
        Ok(())
    })
}

/// Full-text search over all messages (SQLite FTS5 syntax), newest first. Release with
/// [`pawl_message_list_free`].
#[no_mangle]
pub unsafe extern "C" fn pawl_client_search(
    client: *const PawlClientHandle,
    query: *const c_char,
    limit: u32,
    out_messages: *mut PawlMessageList,
) -> u32 {
    call(|| {
        let o = out(out_messages, "out_messages")?;
        let c = handle(client, "client")?;
        o.write(message_list(
            c.client.search(str_arg(query, "query")?, limit)?,
        ));
        Ok(())
    })
}

/// The delivery state of a message (a `PAWL_STATUS_*` value); invalid argument for an
/// unknown id.
#[no_mangle]
pub unsafe extern "C" fn pawl_client_message_status(
    client: *const PawlClientHandle,
    message_id: i64,
    out_status: *mut u32,
) -> u32 {
    call(|| {
        let o = out(out_status, "out_status")?;
        let s = handle(client, "client")?
            .client
            .message_status(message_id)?;
        o.write(status_code(s));
        Ok(())
    })
}

/// The safety number with `peer` (after a session exists) and its QR code. Release with
/// [`pawl_safety_number_free`].
#[no_mangle]
pub unsafe extern "C" fn pawl_client_safety_number(
    client: *const PawlClientHandle,
    peer: *const c_char,
    out_number: *mut PawlSafetyNumber,
) -> u32 {
    call(|| {
        let o = out(out_number, "out_number")?;
        let c = handle(client, "client")?;
        let n = c.client.safety_number(str_arg(peer, "peer")?)?;
        o.write(PawlSafetyNumber {
            digits: PawlBuffer::from_string(n.digits),
            scannable: PawlBuffer::from_vec(n.scannable),
            qr_png: PawlBuffer::from_vec(n.qr_png),
            qr_svg: PawlBuffer::from_string(n.qr_svg),
        });
        Ok(())
    })
}

/// Compare the code scanned from `peer`'s screen with ours: writes 1 when both sides
/// see the same safety number, else 0. A payload that is not a safety-number code is an
/// invalid argument.
#[no_mangle]
pub unsafe extern "C" fn pawl_client_compare_scanned(
    client: *const PawlClientHandle,
    peer: *const c_char,
    scanned: *const u8,
    scanned_len: usize,
    out_match: *mut u8,
) -> u32 {
    call(|| {
        let o = out(out_match, "out_match")?;
        let c = handle(client, "client")?;
        let (peer, scanned) = (
            str_arg(peer, "peer")?,
            bytes_arg(scanned, scanned_len, "scanned")?,
        );
        o.write(u8::from(c.client.compare_scanned(peer, scanned)?));
        Ok(())
    })
}

/// Wait up to `timeout_ms` for the client's next event and write it (kind
/// `PAWL_EVENT_NONE` if none came). Events are kept from [`pawl_client_open`] on, in
/// order. Release the event with [`pawl_event_free`].
#[no_mangle]
pub unsafe extern "C" fn pawl_client_next_event(
    client: *const PawlClientHandle,
    timeout_ms: u32,
    out_event: *mut PawlEvent,
) -> u32 {
    call(|| {
        let o = out(out_event, "out_event")?;
        let c = handle(client, "client")?;
        let rx = c.events.lock().unwrap_or_else(|e| e.into_inner());
        let event = match rx.recv_timeout(Duration::from_millis(u64::from(timeout_ms))) {
            Ok(e) => PawlEvent::from(e),
            Err(_) => PawlEvent::of(PAWL_EVENT_NONE),
        };
        o.write(event);
        Ok(())
    })
}

// ---------------------------------------------------------------------------------
// Protocol (bring your own transport)

/// One device's protocol state (identity, prekeys, sessions). Opaque.
pub struct PawlProtocolHandle {
    protocol: Arc<PawlProtocol>,
}

/// A prekey bundle. Returned by [`pawl_protocol_prekey_bundle`] (release with
/// [`pawl_prekey_bundle_free`]); passed to [`pawl_protocol_process_prekey_bundle`]
/// with buffers that point at the caller's bytes (borrowed for the call).
#[repr(C)]
#[derive(Debug)]
pub struct PawlPreKeyBundle {
    /// The device's registration id.
    pub registration_id: u32,
    /// The device id.
    pub device_id: u32,
    /// 1 if the bundle has a one-time prekey (`prekey_id`, `prekey`).
    pub has_prekey: u8,
    /// The one-time prekey's id.
    pub prekey_id: u32,
    /// The one-time prekey (33 bytes).
    pub prekey: PawlBuffer,
    /// The signed prekey's id.
    pub signed_prekey_id: u32,
    /// The signed prekey (33 bytes).
    pub signed_prekey: PawlBuffer,
    /// The identity key's signature over the signed prekey (64 bytes).
    pub signed_prekey_signature: PawlBuffer,
    /// The identity key (33 bytes).
    pub identity_key: PawlBuffer,
}

/// Release a bundle returned by [`pawl_protocol_prekey_bundle`].
#[no_mangle]
pub unsafe extern "C" fn pawl_prekey_bundle_free(bundle: PawlPreKeyBundle) {
    let mut b = bundle;
    release_quietly(|| {
        b.prekey.release();
        b.signed_prekey.release();
        b.signed_prekey_signature.release();
        b.identity_key.release();
    });
}

/// Open (or create) the protocol database at `db_path` with its 32-byte key (`:memory:`
/// for a throwaway one). Release the handle with [`pawl_protocol_free`].
#[no_mangle]
pub unsafe extern "C" fn pawl_protocol_open(
    db_path: *const c_char,
    db_key: *const u8,
    db_key_len: usize,
    out_protocol: *mut *mut PawlProtocolHandle,
) -> u32 {
    call(|| {
        let o = out(out_protocol, "out_protocol")?;
        let path = str_arg(db_path, "db_path")?;
        let key = bytes_arg(db_key, db_key_len, "db_key")?;
        let protocol = PawlProtocol::open(path, key)?;
        o.write(Box::into_raw(Box::new(PawlProtocolHandle { protocol })));
        Ok(())
    })
}

/// Release a protocol handle. Null is ignored.
#[no_mangle]
pub unsafe extern "C" fn pawl_protocol_free(protocol: *mut PawlProtocolHandle) {
    free_box(protocol);
}

/// This device's public identity key (33 bytes).
#[no_mangle]
pub unsafe extern "C" fn pawl_protocol_identity_key(
    protocol: *const PawlProtocolHandle,
    out_key: *mut PawlBuffer,
) -> u32 {
    call(|| {
        let o = out(out_key, "out_key")?;
        o.write(PawlBuffer::from_vec(
            handle(protocol, "protocol")?.protocol.identity_key()?,
        ));
        Ok(())
    })
}

/// This device's registration id.
#[no_mangle]
pub unsafe extern "C" fn pawl_protocol_registration_id(
    protocol: *const PawlProtocolHandle,
    out_id: *mut u32,
) -> u32 {
    call(|| {
        let o = out(out_id, "out_id")?;
        o.write(handle(protocol, "protocol")?.protocol.registration_id()?);
        Ok(())
    })
}

/// The bundle to publish for `device_id`; with `with_prekey` 1, a new one-time prekey
/// with id `prekey_id` is generated, stored and included.
#[no_mangle]
pub unsafe extern "C" fn pawl_protocol_prekey_bundle(
    protocol: *const PawlProtocolHandle,
    device_id: u32,
    with_prekey: u8,
    prekey_id: u32,
    out_bundle: *mut PawlPreKeyBundle,
) -> u32 {
    call(|| {
        let o = out(out_bundle, "out_bundle")?;
        let p = handle(protocol, "protocol")?;
        let b = p
            .protocol
            .prekey_bundle(device_id, (with_prekey != 0).then_some(prekey_id))?;
        o.write(PawlPreKeyBundle {
            registration_id: b.registration_id,
            device_id: b.device_id,
            has_prekey: u8::from(b.prekey_id.is_some()),
            prekey_id: b.prekey_id.unwrap_or(0),
            prekey: b
                .prekey
                .map(PawlBuffer::from_vec)
                .unwrap_or_else(PawlBuffer::empty),
            signed_prekey_id: b.signed_prekey_id,
            signed_prekey: PawlBuffer::from_vec(b.signed_prekey),
            signed_prekey_signature: PawlBuffer::from_vec(b.signed_prekey_signature),
            identity_key: PawlBuffer::from_vec(b.identity_key),
        });
        Ok(())
    })
}

/// Start a session with device `device_id` of `name` from its bundle (verifies the
/// signature; trusts the identity on first use; untrusted identity if it changed).
#[no_mangle]
pub unsafe extern "C" fn pawl_protocol_process_prekey_bundle(
    protocol: *const PawlProtocolHandle,
    name: *const c_char,
    device_id: u32,
    bundle: *const PawlPreKeyBundle,
) -> u32 {
    call(|| {
        let p = handle(protocol, "protocol")?;
        let b = bundle
            .as_ref()
            .ok_or_else(|| invalid("the bundle is null"))?;
        let has = b.has_prekey != 0;
        let bundle = PreKeyBundle {
            registration_id: b.registration_id,
            device_id: b.device_id,
            prekey_id: has.then_some(b.prekey_id),
            prekey: if has {
                Some(b.prekey.borrowed("prekey")?)
            } else {
                None
            },
            signed_prekey_id: b.signed_prekey_id,
            signed_prekey: b.signed_prekey.borrowed("signed_prekey")?,
            signed_prekey_signature: b.signed_prekey_signature.borrowed("signature")?,
            identity_key: b.identity_key.borrowed("identity_key")?,
        };
        p.protocol
            .process_prekey_bundle(str_arg(name, "name")?, device_id, bundle)
    })
}

/// 1 if a session with the device exists, else 0.
#[no_mangle]
pub unsafe extern "C" fn pawl_protocol_has_session(
    protocol: *const PawlProtocolHandle,
    name: *const c_char,
    device_id: u32,
    out_exists: *mut u8,
) -> u32 {
    call(|| {
        let o = out(out_exists, "out_exists")?;
        let p = handle(protocol, "protocol")?;
        o.write(u8::from(
            p.protocol.has_session(str_arg(name, "name")?, device_id)?,
        ));
        Ok(())
    })
}

/// Encrypt for the device (a session must exist): writes the message type (3 =
/// PreKeySignalMessage, 2 = SignalMessage) and the serialized message. The new ratchet
/// state is stored before this returns.
#[no_mangle]
pub unsafe extern "C" fn pawl_protocol_encrypt(
    protocol: *const PawlProtocolHandle,
    name: *const c_char,
    device_id: u32,
    plaintext: *const u8,
    plaintext_len: usize,
    out_type: *mut u8,
    out_body: *mut PawlBuffer,
) -> u32 {
    call(|| {
        let (t, b) = (out(out_type, "out_type")?, out(out_body, "out_body")?);
        let p = handle(protocol, "protocol")?;
        let plain = bytes_arg(plaintext, plaintext_len, "plaintext")?;
        let c = p
            .protocol
            .encrypt(str_arg(name, "name")?, device_id, plain)?;
        t.write(c.message_type);
        b.write(PawlBuffer::from_vec(c.body));
        Ok(())
    })
}

/// Decrypt a message of type `message_type` from the device: writes the plaintext. A
/// failed decrypt changes nothing; a replay is a duplicate-message error (code 14).
#[no_mangle]
pub unsafe extern "C" fn pawl_protocol_decrypt(
    protocol: *const PawlProtocolHandle,
    name: *const c_char,
    device_id: u32,
    message_type: u8,
    body: *const u8,
    body_len: usize,
    out_plaintext: *mut PawlBuffer,
) -> u32 {
    call(|| {
        let o = out(out_plaintext, "out_plaintext")?;
        let p = handle(protocol, "protocol")?;
        let ciphertext = Ciphertext {
            message_type,
            body: bytes_arg(body, body_len, "body")?,
        };
        o.write(PawlBuffer::from_vec(p.protocol.decrypt(
            str_arg(name, "name")?,
            device_id,
            ciphertext,
        )?));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::types::Address;

    fn take(b: PawlBuffer) -> Vec<u8> {
        // A buffer Pawl returned (null when empty), released once.
        let v = unsafe { b.borrowed("b") }.unwrap();
        unsafe { pawl_buffer_free(b) };
        v
    }

    fn last_error() -> String {
        String::from_utf8(take(pawl_last_error_message())).unwrap()
    }

    #[test]
    fn every_event_kind_fills_its_fields() {
        let alice = Address {
            name: "+100".into(),
            device_id: 2,
        };
        let cases = vec![
            (ClientEvent::Connected, PAWL_EVENT_CONNECTED),
            (
                ClientEvent::Disconnected {
                    reason: "eof".into(),
                },
                PAWL_EVENT_DISCONNECTED,
            ),
            (ClientEvent::Sent { message_id: 7 }, PAWL_EVENT_SENT),
            (
                ClientEvent::Delivered {
                    message_id: 7,
                    device: alice.clone(),
                },
                PAWL_EVENT_DELIVERED,
            ),
            (
                ClientEvent::Read {
                    message_id: 7,
                    by: alice.clone(),
                },
                PAWL_EVENT_READ,
            ),
            (
                ClientEvent::Typing {
                    peer: alice.clone(),
                    started: true,
                },
                PAWL_EVENT_TYPING,
            ),
            (
                ClientEvent::Presence {
                    peer: alice.clone(),
                    online: false,
                },
                PAWL_EVENT_PRESENCE,
            ),
            (
                ClientEvent::Failed {
                    message_id: None,
                    reason: "gone".into(),
                },
                PAWL_EVENT_FAILED,
            ),
            (
                ClientEvent::DecryptFailed {
                    peer: alice.clone(),
                    error: "bad mac".into(),
                },
                PAWL_EVENT_DECRYPT_FAILED,
            ),
            (
                ClientEvent::PreKeysUploaded { count: 100 },
                PAWL_EVENT_PREKEYS_UPLOADED,
            ),
            (
                ClientEvent::DeviceLinked { device_id: 3 },
                PAWL_EVENT_DEVICE_LINKED,
            ),
            (
                ClientEvent::HistorySynced {
                    chunks_done: 2,
                    chunks: 5,
                    messages: 4000,
                },
                PAWL_EVENT_HISTORY_SYNCED,
            ),
            (
                ClientEvent::AppStateChanged {
                    collection: "regular_low".into(),
                },
                PAWL_EVENT_APP_STATE_CHANGED,
            ),
            (
                ClientEvent::DeviceListRejected {
                    user: "+100".into(),
                    reason: "device 7".into(),
                },
                PAWL_EVENT_DEVICE_LIST_REJECTED,
            ),
            (
                ClientEvent::GroupUpdated {
                    group_id: vec![5; 16],
                    chat_id: 12,
                },
                PAWL_EVENT_GROUP_UPDATED,
            ),
        ];
        for (event, kind) in cases {
            let e = PawlEvent::from(event.clone());
            assert_eq!(e.kind, kind, "{event:?}");
            let peer = unsafe { e.peer.borrowed("peer") }.unwrap();
            let text = String::from_utf8(unsafe { e.text.borrowed("text") }.unwrap()).unwrap();
            match event {
                ClientEvent::Delivered { message_id, .. }
                | ClientEvent::Read { message_id, .. } => {
                    assert_eq!(
                        (e.message_id, peer.as_slice(), e.peer_device),
                        (message_id, &b"+100"[..], 2)
                    );
                }
                ClientEvent::Typing { started, .. } => assert_eq!(e.flag, u8::from(started)),
                ClientEvent::Presence { online, .. } => assert_eq!(e.flag, u8::from(online)),
                ClientEvent::Failed { .. } => assert_eq!((e.flag, text.as_str()), (0, "gone")),
                ClientEvent::DecryptFailed { .. } => assert_eq!(text, "bad mac"),
                ClientEvent::Disconnected { .. } => assert_eq!(text, "eof"),
                ClientEvent::PreKeysUploaded { count } => assert_eq!(e.count, count),
                ClientEvent::Sent { message_id } => assert_eq!(e.message_id, message_id),
                ClientEvent::DeviceLinked { device_id } => assert_eq!(e.peer_device, device_id),
                ClientEvent::HistorySynced {
                    chunks_done,
                    chunks,
                    messages,
                } => assert_eq!(
                    (e.progress, e.total, e.count),
                    (chunks_done, chunks, messages)
                ),
                ClientEvent::AppStateChanged { collection } => assert_eq!(text, collection),
                ClientEvent::GroupUpdated { chat_id, .. } => {
                    let id = unsafe { e.text.borrowed("text") }.unwrap();
                    assert_eq!((id, e.message_id), (vec![5; 16], chat_id));
                }
                ClientEvent::DeviceListRejected { user, reason } => {
                    assert_eq!(
                        (peer.as_slice(), text.as_str()),
                        (user.as_bytes(), reason.as_str())
                    )
                }
                _ => {}
            }
            unsafe { pawl_event_free(e) };
        }
    }

    #[test]
    fn bad_arguments_are_refused_with_codes_and_messages() {
        let mut handle: *mut PawlProtocolHandle = std::ptr::null_mut();
        let path = c":memory:";
        let key = [7u8; 32];
        // Null out-pointer, null path, short key, null key with a length, bad UTF-8.
        let code =
            unsafe { pawl_protocol_open(path.as_ptr(), key.as_ptr(), 32, std::ptr::null_mut()) };
        assert_eq!(code, crate::codes::INVALID_ARGUMENT);
        assert!(last_error().contains("out_protocol"), "{}", last_error());
        let code = unsafe { pawl_protocol_open(std::ptr::null(), key.as_ptr(), 32, &mut handle) };
        assert_eq!(code, crate::codes::INVALID_ARGUMENT);
        let code = unsafe { pawl_protocol_open(path.as_ptr(), key.as_ptr(), 31, &mut handle) };
        assert_eq!(code, crate::codes::INVALID_ARGUMENT);
        assert!(last_error().contains("32 bytes"));
        let code = unsafe { pawl_protocol_open(path.as_ptr(), std::ptr::null(), 32, &mut handle) };
        assert_eq!(code, crate::codes::INVALID_ARGUMENT);
        let bad = [0xffu8, 0];
        let code =
            unsafe { pawl_protocol_open(bad.as_ptr().cast(), key.as_ptr(), 32, &mut handle) };
        assert_eq!(code, crate::codes::INVALID_ARGUMENT);
        assert!(last_error().contains("UTF-8"));
        assert!(handle.is_null(), "nothing written on failure");

        // A working handle; a decrypt of garbage fails without touching the out-pointer.
        assert_eq!(
            unsafe { pawl_protocol_open(path.as_ptr(), key.as_ptr(), 32, &mut handle) },
            0
        );
        let mut plain = PawlBuffer {
            data: std::ptr::NonNull::<u8>::dangling().as_ptr(),
            len: 12345,
        };
        let code = unsafe {
            pawl_protocol_decrypt(
                handle,
                c"bob".as_ptr(),
                1,
                2,
                [1u8, 2].as_ptr(),
                2,
                &mut plain,
            )
        };
        assert_ne!(code, 0);
        assert_eq!(plain.len, 12345);
        let mut registration = 0u32;
        assert_eq!(
            unsafe { pawl_protocol_registration_id(handle, &mut registration) },
            0
        );
        assert!(registration > 0);
        unsafe { pawl_protocol_free(handle) };
        // Empty buffers and lists are fine to free.
        unsafe {
            pawl_buffer_free(PawlBuffer::empty());
            pawl_message_list_free(message_list(Vec::new()));
            pawl_buffer_list_free(PawlBufferList {
                items: std::ptr::null_mut(),
                len: 0,
            });
        }
    }

    #[test]
    fn errors_are_per_thread() {
        let key = [7u8; 32];
        let mut h: *mut PawlProtocolHandle = std::ptr::null_mut();
        unsafe { pawl_protocol_open(c":memory:".as_ptr(), key.as_ptr(), 3, &mut h) };
        assert!(last_error().contains("32 bytes"));
        let other =
            std::thread::spawn(|| String::from_utf8(take(pawl_last_error_message())).unwrap())
                .join()
                .unwrap();
        assert_eq!(other, "", "another thread has no error");
    }
}
