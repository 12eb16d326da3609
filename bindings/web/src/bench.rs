//! Bench support, only with the `bench` feature (not in the shipped wasm, not part of
//! `@pawl/web`'s API): the browser side of the browser-against-native benchmark
//! (issue 13). The workloads are `pawl_core::bench_support`'s, the same code the
//! native bench (`core/benches/web_compare.rs`) runs; here they are timed with
//! `performance.now()`. `bench.sh` builds this copy of the wasm; `bench.mjs` drives it
//! from a dedicated Worker (`tests/bench-worker.js`), after `installStorage` so the
//! burst goes into a real store on OPFS.

use std::path::Path;

use pawl_core::bench_support;
use pawl_core::sqlite::SqliteStore;
use rand_core::OsRng;
use wasm_bindgen::prelude::*;

use crate::convert::{err, JsResult};

#[wasm_bindgen]
extern "C" {
    /// `performance.now()` (a Worker's or the page's): milliseconds, monotonic.
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
}

/// Bench support: run every workload of `pawl_core::bench_support` (medians of its
/// rounds), the bursts into the encrypted store `store_name` in the installed
/// storage. Returns the figures as one line of JSON, the same as the native bench's.
#[doc(hidden)]
#[wasm_bindgen(js_name = benchRun)]
pub fn bench_run(store_name: String) -> JsResult<String> {
    let mut store = SqliteStore::open(Path::new(&store_name), Some(&bench_support::STORE_KEY))
        .map_err(|e| err(e.into()))?;
    let mut now = performance_now;
    bench_support::run(&mut store, &mut OsRng, &mut now)
        .map(|f| f.json())
        .map_err(|e| err(e.into()))
}
