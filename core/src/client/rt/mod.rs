//! The runtime the client's logic runs on: spawning tasks, sleeping, timeouts, the
//! clock and CPU-heavy work. One copy of the client's logic calls these; each platform
//! supplies them in one small file:
//!
//! * [`native`] (every target but wasm32): tokio tasks and timers, `SystemTime`,
//!   `spawn_blocking`.
//! * [`web`] (wasm32 in a browser page or Worker): `wasm_bindgen_futures::spawn_local`,
//!   the global `setTimeout`, `Date.now()` / `performance.now()`; heavy work runs
//!   inline (a Worker has no thread pool to hand it to).
//!
//! Tasks are detached when their [`Task`] is dropped and stopped by [`Task::abort`],
//! on both platforms. Futures given to [`spawn`] must be `Send` natively (tokio's
//! pool) and need not be in the browser (one thread): [`MaybeSend`] says which.

use std::future::Future;
use std::time::Duration;

use futures_util::future::{self, AbortHandle, Either};

#[cfg(not(target_arch = "wasm32"))]
mod native;
#[cfg(not(target_arch = "wasm32"))]
use native as platform;
#[cfg(target_arch = "wasm32")]
mod web;
#[cfg(target_arch = "wasm32")]
use web as platform;

pub(crate) use platform::{blocking, now_ms, MaybeSend, Monotonic};

/// A spawned task; dropping the handle detaches it.
pub(crate) struct Task(AbortHandle);

impl Task {
    /// Stop the task at its next await point.
    pub(crate) fn abort(&self) {
        self.0.abort();
    }
}

/// Run `f` in the background.
pub(crate) fn spawn<F>(f: F) -> Task
where
    F: Future<Output = ()> + MaybeSend + 'static,
{
    let (f, handle) = future::abortable(f);
    platform::spawn(async move {
        let _ = f.await;
    });
    Task(handle)
}

/// Wait for `d`.
pub(crate) async fn sleep(d: Duration) {
    platform::sleep(d).await
}

/// `f`'s output, or `Err(Elapsed)` when `d` passes first (`f` is dropped).
pub(crate) async fn timeout<F: Future>(d: Duration, f: F) -> Result<F::Output, Elapsed> {
    match first(f, sleep(d)).await {
        Either::Left(v) => Ok(v),
        Either::Right(()) => Err(Elapsed),
    }
}

/// Whichever of `a` and `b` finishes first (the other is dropped).
pub(crate) async fn first<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let a = std::pin::pin!(a);
    let b = std::pin::pin!(b);
    match future::select(a, b).await {
        Either::Left((v, _)) => Either::Left(v),
        Either::Right((v, _)) => Either::Right(v),
    }
}

/// Let other tasks run once.
pub(crate) async fn yield_now() {
    let mut yielded = false;
    future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}

/// A timeout passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Elapsed;

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn timeout_sleep_abort() {
        assert_eq!(
            timeout(Duration::from_millis(10), sleep(Duration::from_secs(5))).await,
            Err(Elapsed)
        );
        assert_eq!(timeout(Duration::from_secs(5), async { 7 }).await, Ok(7));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
        let t = spawn(async move {
            sleep(Duration::from_millis(200)).await;
            let _ = tx.send(1);
        });
        t.abort();
        assert_eq!(rx.recv().await, None, "an aborted task never runs on");
        let start = Monotonic::now();
        sleep(Duration::from_millis(30)).await;
        assert!(start.elapsed() >= Duration::from_millis(29));
        assert!(now_ms() > 1_700_000_000_000);
        assert_eq!(blocking(|| 6 * 7).await, 42);
    }
}
