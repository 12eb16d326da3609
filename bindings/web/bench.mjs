// The browser-against-native benchmark (issue 13), both sides in the same run:
//
//   native   `cargo bench -p pawl-core --bench web_compare` (release profile), or the
//            executable named by PAWL_NATIVE_BENCH
//   browser  the same workloads (pawl_core::bench_support) through @pawl/web's wasm,
//            built with the `bench` feature (its bench export) into BENCH_PKG, in a
//            dedicated Worker of headless Debian Chromium (tests/bench-worker.js), the
//            burst into an encrypted store on OPFS
//
// then the page-ready time (a registered client reloaded with a warm HTTP cache, from
// navigation start to its 'connected' event, against pawl-relay on loopback) and the
// size of everything the page loads (the shipped dist/, without the bench export).
// Prints a table; exits 1 when a bound fails. Needs dist/ (build.sh), BENCH_PKG and
// pawl-relay in PAWL_BIN_DIR: bench.sh builds them.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  ROOT, WEB, startRelay, startServer, launchBrowser, openPage, open, register,
} from "./tests/harness.mjs";

/** wasm-bindgen's output for the bench build (bench.sh writes it there). */
const BENCH_PKG = join(ROOT, "target", "web", "bench-pkg");
const BOUNDS = { x3dhRatio: 2.5, steadyRatio: 3, burstMs: 1000, readyMs: 300 };
const WARM_LOADS = 5;
const PHONE = "+4915100000901";

function native() {
  const out = process.env.PAWL_NATIVE_BENCH
    ? execFileSync(process.env.PAWL_NATIVE_BENCH, ["--bench"], { encoding: "utf8" })
    : execFileSync("cargo", ["bench", "--locked", "-p", "pawl-core", "--bench", "web_compare"],
      { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  const line = out.trim().split("\n").findLast((l) => l.startsWith("{"));
  if (!line) throw new Error(`no JSON from the native bench:\n${out}`);
  return JSON.parse(line);
}

/** The workloads in a dedicated Worker of a fresh context (empty OPFS). */
async function browserFigures(browser, server) {
  const ctx = await browser.newContext();
  try {
    const page = await openPage(browser, server, ctx);
    const r = await page.evaluate(() => new Promise((resolve) => {
      const w = new Worker("/bench-worker.js", { type: "module" });
      w.onmessage = (e) => { w.terminate(); resolve(e.data); };
      w.onerror = (e) => resolve({ ok: false, error: `worker: ${e.message}` });
      w.postMessage({ store: "bench.db" });
    }));
    if (!r.ok) throw new Error(`browser bench: ${r.error}`);
    return r.figures;
  } finally {
    await ctx.close();
  }
}

/** Wait for bench-ready.html's result, close its client, return the result. */
async function readyResult(page) {
  await page.waitForFunction(() => window.readyResult, null, { timeout: 30000, polling: 10 });
  const r = await page.evaluate(async () => {
    await window.pawl?.close();
    return window.readyResult;
  });
  if (r.error) throw new Error(`page ready: ${r.error}`);
  return r;
}

/**
 * Page ready: register a client once (that first load fills the HTTP cache), then load
 * bench-ready.html WARM_LOADS times in the same context; also once after clearing the
 * browser's cache (cold, for comparison).
 */
async function pageReady(browser, server, relay) {
  const ctx = await browser.newContext();
  try {
    const page = await openPage(browser, server, ctx);
    const first = await open(page, { relayUrl: relay.url, name: "ready" });
    await register(page, relay, PHONE);
    await page.evaluate(() => pawl.close());
    const url = `${server.url}bench-ready.html?relay=${encodeURIComponent(relay.url)}&name=ready`;
    const warm = [];
    for (let i = 0; i < WARM_LOADS; i++) {
      await page.goto(url);
      warm.push(await readyResult(page));
    }
    const cdp = await ctx.newCDPSession(page);
    await cdp.send("Network.clearBrowserCache");
    await page.goto(url);
    const cold = await readyResult(page);
    return { first, warm, cold };
  } finally {
    await ctx.close();
  }
}

function sizes() {
  const files = ["index.js", "worker.js", "keystore.js", "protocol.js", "wasm/pawl_web.js", "wasm/pawl_web_bg.wasm"];
  const rows = files.map((f) => {
    const p = join(WEB, "dist", f);
    return { file: f, raw: readFileSync(p).length, gzip: execFileSync("gzip", ["-9", "-c", p]).length };
  });
  rows.push({ file: "total", raw: rows.reduce((a, r) => a + r.raw, 0), gzip: rows.reduce((a, r) => a + r.gzip, 0) });
  return rows;
}

const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmt = (x, d = 2) => (x === undefined ? "" : x.toFixed(d));

const nat = native();
const burstKey = Object.keys(nat).find((k) => /^burst_\d+_ms$/.test(k));
const relay = await startRelay();
const server = await startServer({ "/bench-pkg/": BENCH_PKG });
const browser = await launchBrowser();
let web, ready;
try {
  web = await browserFigures(browser, server);
  ready = await pageReady(browser, server, relay);
} finally {
  await browser.close();
  server.close();
  relay.stop();
}

const readyMs = median(ready.warm.map((r) => r.readyMs));
const rows = [
  { what: "X3DH both sides + first message (ms)", n: nat.x3dh_ms, w: web.x3dh_ms, bound: `ratio <= ${BOUNDS.x3dhRatio}`,
    ok: web.x3dh_ms / nat.x3dh_ms <= BOUNDS.x3dhRatio },
  { what: "steady 100 B encrypt+decrypt (us)", n: nat.steady_us, w: web.steady_us, bound: `ratio <= ${BOUNDS.steadyRatio}`,
    ok: web.steady_us / nat.steady_us <= BOUNDS.steadyRatio },
  { what: "  of which HMAC/HKDF/AES-CBC alone (us)", n: nat.steady_primitives_us, w: web.steady_primitives_us, bound: "(floor, info)",
    ok: true, info: true },
  { what: `burst of ${burstKey.match(/\d+/)[0]} into the store (ms)`, n: nat[burstKey], w: web[burstKey], bound: `<= ${BOUNDS.burstMs} ms`,
    ok: web[burstKey] <= BOUNDS.burstMs },
  { what: `page ready, warm (ms, median of ${WARM_LOADS})`, n: undefined, w: readyMs, bound: `<= ${BOUNDS.readyMs} ms`,
    ok: readyMs <= BOUNDS.readyMs },
];

const pad = (s, n) => String(s).padEnd(n);
const lpad = (s, n) => String(s).padStart(n);
console.log(`\nbrowser vs native, same run (medians of ${nat.rounds} rounds; ${nat.x3dh_iterations} X3DH, ${nat.steady_iterations} steady per round)\n`);
console.log(`${pad("", 44)}${lpad("native", 10)}${lpad("browser", 10)}${lpad("ratio", 8)}   ${pad("bound", 14)}`);
for (const r of rows) {
  const ratio = r.n === undefined ? "" : fmt(r.w / r.n);
  const verdict = r.info ? "" : r.ok ? "ok" : "FAILED";
  console.log(`${pad(r.what, 44)}${lpad(fmt(r.n, 3), 10)}${lpad(fmt(r.w, 3), 10)}${lpad(ratio, 8)}   ${pad(r.bound, 14)}${verdict}`);
}
const t = (r) => `${fmt(r.readyMs, 1)} (script ${fmt(r.scriptMs, 1)}, opened ${fmt(r.openedMs, 1)} [wasm ${fmt(r.wasmMs, 1)}, open ${fmt(r.openMs, 1)}])`;
console.log("\npage ready: connected at (ms from navigation start; this module ran at 'script', Pawl.open resolved at 'opened',");
console.log("of which the worker's wasm fetch+compile and store open)");
for (const r of ready.warm) console.log(`  warm          ${t(r)}`);
console.log(`  cache cleared ${t(ready.cold)}`);
console.log(`  first load (new store, registering): wasm ${fmt(ready.first.wasmMs, 1)}, open ${fmt(ready.first.openMs, 1)}`);

console.log(`\nwhat the page loads (dist/):`);
console.log(`${pad("", 24)}${lpad("raw", 10)}${lpad("gzip -9", 10)}`);
for (const s of sizes()) console.log(`${pad(s.file, 24)}${lpad(s.raw, 10)}${lpad(s.gzip, 10)}`);

console.log(`\n${JSON.stringify({ native: nat, browser: web, ready: { warmMedianMs: readyMs, warm: ready.warm, cold: ready.cold } })}`);
const failed = rows.filter((r) => !r.ok);
if (failed.length) {
  console.error(`\nbound failed: ${failed.map((r) => r.what).join("; ")}`);
  process.exit(1);
}
