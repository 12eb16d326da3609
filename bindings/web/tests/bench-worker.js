// The browser side of bench.mjs: a dedicated Worker (OPFS's synchronous handles exist
// only in one) that loads the bench build of @pawl/web's wasm (feature `bench`, which
// bench.mjs serves at /bench-pkg/), installs the OPFS storage and runs the bench export
// (pawl_core::bench_support's workloads, the native bench's code).
// Posts { ok: true, figures } or { ok: false, error }.
import init, { installStorage, benchRun } from "/bench-pkg/pawl_web.js";

self.onmessage = async (e) => {
  try {
    await init();
    await installStorage("pawl-bench");
    const figures = JSON.parse(benchRun(e.data.store ?? "bench.db"));
    self.postMessage({ ok: true, figures });
  } catch (err) {
    self.postMessage({ ok: false, error: `${err?.message ?? err}` });
  }
};
