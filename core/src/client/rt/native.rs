//! The runtime natively: tokio.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Natively, spawned futures run on tokio's pool: they must be `Send`.
pub(crate) trait MaybeSend: Send {}
impl<T: Send> MaybeSend for T {}

pub(super) fn spawn<F: Future<Output = ()> + Send + 'static>(f: F) {
    tokio::spawn(f);
}

pub(super) async fn sleep(d: Duration) {
    tokio::time::sleep(d).await
}

/// Wall-clock milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Run CPU-heavy `f` off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        // Only a panic inside `f` gets here: pass it on, as running it inline would.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// A monotonic instant.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Monotonic(std::time::Instant);

impl Monotonic {
    pub(crate) fn now() -> Self {
        Monotonic(std::time::Instant::now())
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}
