//! Pawl's FFI layer: uniffi exports (proc macros, no UDL) for Swift, Kotlin and Python
//! over `pawl-core`'s relay client. Each export is a few lines over core.
//!
//! # Async
//! Network operations are `async` exports: Python gets coroutines (asyncio), Swift
//! `async` functions, Kotlin `suspend` functions. Their work runs on one Tokio runtime
//! owned by this library ([`runtime`]: multi-threaded, 2 workers, created on first use):
//! each async export spawns its future there and the foreign side awaits the
//! `JoinHandle` through uniffi's future protocol. So the client's background connection
//! task (which `Client::start` spawns with `tokio::spawn`) always has a runtime, the
//! foreign event loop never runs SQLite or crypto work itself, and a panic in the
//! spawned future comes back as a `JoinError` that becomes [`PawlError::Internal`].
//! (uniffi's `async_runtime = "tokio"` would poll the futures on the foreign thread
//! inside `async-compat`'s fallback current-thread runtime instead; the connection task
//! would then live on that single hidden thread.)
//!
//! Cancelling the foreign coroutine drops the `JoinHandle` only: an operation already
//! started (a send) completes in the background, which is what a chat app wants.
//!
//! # Panics
//! uniffi 0.32 already wraps every call (and every poll of an async call) in
//! `catch_unwind`, but reports a panic as its generic `InternalError` (Python:
//! `InternalError`, Kotlin: `InternalException`) carrying only the panic message. This
//! layer catches panics itself first ([`guard`] for synchronous exports, the
//! `JoinError` for async ones) so they arrive as `PawlError::Internal` with code 99,
//! like every other error. A panic inside the app's event listener (uniffi turns a
//! foreign exception in a callback without a `Result` into a panic) is caught in the
//! event task and the event dropped.
//!
//! # Process exit
//! Listener calls come from this library's threads. A foreign runtime that is shutting
//! down may not accept them: CPython ends a thread that calls in during finalization
//! with `pthread_exit`, and that forced unwind aborts the process when it reaches Rust
//! frames. [`detach_foreign_callbacks`] stops all calls into foreign code (waiting for
//! the ones under way); the Python package registers it with `atexit`.
//!
//! # Unsafe code
//! None is written here: the workspace's `unsafe_code = "deny"` applies to this crate
//! unchanged. uniffi's macros generate `extern "C"` scaffolding with raw pointers; the
//! lint does not fire on that expanded code (clippy with `-D warnings` passes with no
//! `allow` anywhere in this crate), so none is added.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use tokio::runtime::Runtime;

pub mod capi;
mod client;
mod devices;
pub mod error;
mod groups;
mod protocol;
mod types;

pub use client::{detach_foreign_callbacks, EventListener, PawlClient};
pub use devices::{parse_link_code, ChatState, LinkCode, LinkRequestInfo, PawlLinking};
pub use error::{codes, PawlError};
pub use protocol::{Ciphertext, PawlProtocol, PreKeyBundle};
pub use types::{
    Address, Attachment, ChatMessage, ClientEvent, MediaKind, MediaMessage, MessageStatus,
    SafetyNumber,
};

uniffi::setup_scaffolding!("pawl_ffi");

/// Pawl's version (the core crate's), e.g. `"0.1.0"`.
#[uniffi::export]
pub fn version() -> String {
    pawl_core::VERSION.to_string()
}

/// The SHA-256 of a DER-encoded certificate: the value `PawlClient.open` pins.
#[uniffi::export]
pub fn cert_sha256(der: Vec<u8>) -> Vec<u8> {
    pawl_core::client::cert_fingerprint(&der).to_vec()
}

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// The library's Tokio runtime (created on first use).
pub(crate) fn runtime() -> Result<&'static Runtime, PawlError> {
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("pawl-ffi")
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the Tokio runtime: {e}"))
        })
        .as_ref()
        .map_err(|e| PawlError::internal(e.clone()))
}

fn panic_message(cause: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = cause.downcast_ref::<&'static str>() {
        format!("panic: {s}")
    } else if let Some(s) = cause.downcast_ref::<String>() {
        format!("panic: {s}")
    } else {
        "panic".to_string()
    }
}

/// Run a synchronous export body; a panic becomes [`PawlError::Internal`].
pub(crate) fn guard<T>(f: impl FnOnce() -> Result<T, PawlError>) -> Result<T, PawlError> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|cause| Err(PawlError::internal(panic_message(cause))))
}

/// Run an async export body on the library's runtime; a panic becomes
/// [`PawlError::Internal`].
pub(crate) async fn run<T, F>(fut: F) -> Result<T, PawlError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, PawlError>> + Send + 'static,
{
    match runtime()?.spawn(fut).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => Err(PawlError::internal(panic_message(e.into_panic()))),
        Err(e) => Err(PawlError::internal(format!("task ended: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn panics_become_internal_errors() {
        let e = guard::<()>(|| panic!("boom")).unwrap_err();
        assert_eq!(e.code(), codes::INTERNAL);
        assert!(e.to_string().contains("boom"), "{e}");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let e = rt
            .block_on(run::<(), _>(async { panic!("async boom") }))
            .unwrap_err();
        assert!(matches!(e, PawlError::Internal { code: 99, .. }), "{e}");
        assert!(e.to_string().contains("async boom"), "{e}");
    }

    #[test]
    fn wrong_key_and_bad_arguments_are_typed() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db").display().to_string();
        let url = "ws://127.0.0.1:1/v1/ws".to_string();
        let e = PawlClient::open(db.clone(), vec![1; 31], url.clone(), None).unwrap_err();
        assert_eq!(e.code(), codes::INVALID_ARGUMENT);
        let e =
            PawlClient::open(db.clone(), vec![1; 32], url.clone(), Some(vec![0; 3])).unwrap_err();
        assert_eq!(e.code(), codes::INVALID_ARGUMENT);
        drop(PawlClient::open(db.clone(), vec![1; 32], url.clone(), None).unwrap());
        let e = PawlClient::open(db, vec![2; 32], url, None).unwrap_err();
        assert!(
            matches!(e, PawlError::WrongDatabaseKey { code: 2, .. }),
            "{e}"
        );
    }

    #[test]
    fn unregistered_client_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db").display().to_string();
        let c = PawlClient::open(db, vec![1; 32], "ws://127.0.0.1:1/v1/ws".into(), None).unwrap();
        assert_eq!(c.address().unwrap_err().code(), codes::NOT_REGISTERED);
        assert_eq!(c.identity_key().unwrap().len(), 33);
        assert!(c.messages("+100".into(), 10).unwrap().is_empty());
        assert_eq!(
            c.message_status(42).unwrap_err().code(),
            codes::INVALID_ARGUMENT
        );
    }
}
