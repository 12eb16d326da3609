//! The runtime in the browser (page or Worker): the event loop, `setTimeout`, and the
//! JavaScript clocks. One thread: nothing needs to be `Send`.

use std::future::Future;
use std::time::Duration;

use wasm_bindgen::{JsCast, JsValue};

/// In the browser there is one thread: any future may be spawned.
pub(crate) trait MaybeSend {}
impl<T> MaybeSend for T {}

pub(super) fn spawn<F: Future<Output = ()> + 'static>(f: F) {
    wasm_bindgen_futures::spawn_local(f);
}

pub(super) async fn sleep(d: Duration) {
    let ms = d.as_millis().min(i32::MAX as u128) as i32;
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        // `setTimeout` of whichever global this is (Window or WorkerGlobalScope).
        let global = js_sys::global();
        let set_timeout = js_sys::Reflect::get(&global, &JsValue::from_str("setTimeout"))
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
        match set_timeout {
            Some(f) => {
                let _ = f.call2(&global, &resolve, &JsValue::from(ms));
            }
            // No timers at all: resolve at once rather than hang.
            None => {
                let _ = resolve.call0(&JsValue::NULL);
            }
        }
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

/// A monotonic instant (`performance.now()`, or `Date.now()` without it).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Monotonic(f64);

fn performance_now() -> f64 {
    let global = js_sys::global();
    js_sys::Reflect::get(&global, &JsValue::from_str("performance"))
        .ok()
        .and_then(|p| {
            let now = js_sys::Reflect::get(&p, &JsValue::from_str("now")).ok()?;
            let now: js_sys::Function = now.dyn_into().ok()?;
            now.call0(&p).ok()?.as_f64()
        })
        .unwrap_or_else(js_sys::Date::now)
}

impl Monotonic {
    pub(crate) fn now() -> Self {
        Monotonic(performance_now())
    }

    pub(crate) fn elapsed(&self) -> Duration {
        Duration::from_secs_f64(((performance_now() - self.0) / 1000.0).max(0.0))
    }
}
