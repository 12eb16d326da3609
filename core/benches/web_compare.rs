//! The native side of the browser benchmark (issue 13): the workloads of
//! `pawl_core::bench_support`, the same code the browser runs through `pawl-web`'s bench
//! export, timed with a monotonic clock. Prints one line of JSON (medians) to stdout:
//! `{"x3dh_ms":..,"steady_us":..,"burst_1000_ms":..,...}`. The burst goes into an
//! encrypted `SqliteStore` in a temporary folder (or `PAWL_BENCH_DIR`).
//!
//! Run: `cargo bench -p pawl-core --bench web_compare` (release profile); the whole
//! comparison with the browser: `bash bindings/web/bench.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // bench code

use std::time::Instant;

use pawl_core::bench_support;
use pawl_core::sqlite::SqliteStore;
use rand_core::OsRng;

fn main() {
    let dir = match std::env::var_os("PAWL_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .unwrap();
    let mut store = SqliteStore::open(
        &dir.path().join("bench.db"),
        Some(&bench_support::STORE_KEY),
    )
    .unwrap();
    let start = Instant::now();
    let mut now = move || start.elapsed().as_secs_f64() * 1000.0;
    let figures = bench_support::run(&mut store, &mut OsRng, &mut now).unwrap();
    println!("{}", figures.json());
}
