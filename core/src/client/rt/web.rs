//! The runtime in the browser (page or Worker): the event loop, `setTimeout`, and the
//! JavaScript clocks. One thread: nothing needs to be `Send`.

use std::future::Future;
use std::time::Duration;

use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// The global `setTimeout` (Window or WorkerGlobalScope).
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(callback: &js_sys::Function, ms: i32) -> JsValue;
    /// `performance.now()`: milliseconds, monotonic.
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
}

/// In the browser there is one thread: any future may be spawned.
pub(crate) trait MaybeSend {}
impl<T> MaybeSend for T {}

pub(super) fn spawn<F: Future<Output = ()> + 'static>(f: F) {
    wasm_bindgen_futures::spawn_local(f);
}

pub(super) async fn sleep(d: Duration) {
    let ms = d.as_millis().min(i32::MAX as u128) as i32;
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        set_timeout(&resolve, ms);
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// Wall-clock milliseconds since the Unix epoch (`Date.now()`).
pub(crate) fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// Run `f` (inline: a Worker has no pool to hand it to).
pub(crate) async fn blocking<T>(f: impl FnOnce() -> T) -> T {
    f()
}

/// A monotonic instant (`performance.now()`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Monotonic(f64);

impl Monotonic {
    pub(crate) fn now() -> Self {
        Monotonic(performance_now())
    }

    pub(crate) fn elapsed(&self) -> Duration {
        Duration::from_secs_f64(((performance_now() - self.0) / 1000.0).max(0.0))
    }
}
