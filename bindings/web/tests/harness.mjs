// What the browser tests stand on: a real pawl-relay on loopback (plain ws://, dev
// code sender writing codes to a folder), a static server for dist/ and the test page,
// and Debian's Chromium driven by playwright-core (never a downloaded browser).
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { mkdtempSync, mkdirSync, readFileSync, existsSync, rmSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, extname, normalize } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import net from "node:net";
import { chromium } from "playwright-core";

export const WEB = new URL("..", import.meta.url).pathname;
export const ROOT = join(WEB, "..", "..");
const TARGET = process.env.CARGO_TARGET_DIR ?? join(ROOT, "target");
export const BIN = process.env.PAWL_BIN_DIR ?? join(TARGET, "debug");

export async function freePort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

async function waitFor(what, f, ms = 20000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** A pawl-relay on loopback; `code(phone)` reads the code it "sent". */
export async function startRelay() {
  const dir = mkdtempSync(join(tmpdir(), "pawl-web-relay-"));
  mkdirSync(join(dir, "codes"));
  const port = await freePort();
  const proc = spawn(
    join(BIN, "pawl-relay"),
    ["--db", `sqlite:${join(dir, "relay.db")}`, "--listen", `127.0.0.1:${port}`, "--code-dir", join(dir, "codes"), "--plain"],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let log = "";
  proc.stderr.on("data", (d) => (log += d));
  await waitFor("the relay", () => new Promise((r) => {
    const c = net.connect(port, "127.0.0.1", () => { c.end(); r(true); });
    c.on("error", () => r(false));
  }));
  return {
    url: `ws://127.0.0.1:${port}/v1/ws`,
    dir,
    log: () => log,
    async code(phone) {
      const f = join(dir, "codes", `${phone}.code`);
      await waitFor(`the code for ${phone}`, () => existsSync(f));
      return readFileSync(f, "utf8").trim();
    },
    stop() { proc.kill("SIGTERM"); rmSync(dir, { recursive: true, force: true }); },
  };
}

const TYPES = { ".js": "text/javascript", ".mjs": "text/javascript", ".html": "text/html", ".wasm": "application/wasm", ".map": "application/json" };

/** Serves dist/ at /pkg/, tests/ at /, and each of `mounts` ({ "/prefix/": dir }). */
export async function startServer(mounts = {}) {
  const server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname));
    const mount = Object.keys(mounts).find((m) => path.startsWith(m));
    const file = mount
      ? join(mounts[mount], path.slice(mount.length))
      : path.startsWith("/pkg/")
        ? join(WEB, "dist", path.slice(5))
        : join(WEB, "tests", path === "/" ? "page.html" : path.slice(1));
    try {
      // Revalidated on every load (no-cache), answered 304 when unchanged: a reload
      // finds the browser's HTTP cache warm (and its compiled wasm), as in production.
      const st = await stat(file);
      const etag = `"${st.size}-${st.mtimeMs}"`;
      const headers = { "content-type": TYPES[extname(file)] ?? "application/octet-stream", "cache-control": "no-cache", etag };
      if (req.headers["if-none-match"] === etag) {
        res.writeHead(304, headers).end();
        return;
      }
      const body = await readFile(file);
      res.writeHead(200, headers);
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => server.close() };
}

/** Debian's Chromium, headless, with the flags this machine's closed network needs. */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.PAWL_CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** A page (own profile unless `context` is given) with @pawl/web loaded as window.Pawl. */
export async function openPage(browser, server, context) {
  const ctx = context ?? (await browser.newContext());
  const page = await ctx.newPage();
  page.on("pageerror", (e) => console.error("page error:", e));
  await page.goto(server.url);
  await page.waitForFunction(() => window.ready === true);
  return page;
}

/**
 * Inside the page: open a client as window.pawl (or window[slot]) and collect its events
 * in window.events[slot]. Returns the open timings.
 */
export function open(page, options, slot = "pawl") {
  return page.evaluate(async ({ options, slot }) => {
    if (options.databaseKey) options.databaseKey = new Uint8Array(options.databaseKey);
    const pawl = await window.Pawl.open(options);
    window[slot] = pawl;
    window.events ??= {};
    window.events[slot] = [];
    pawl.addEventListener("event", (e) => window.events[slot].push(e.detail));
    return pawl.timings;
  }, { options, slot });
}

/** Wait in the page until an event of `slot` matches `pred` (a function's source). */
export function waitEvent(page, pred, slot = "pawl", ms = 20000) {
  return page.waitForFunction(
    ({ pred, slot }) => (window.events?.[slot] ?? []).find(eval(pred)),
    { pred, slot },
    { timeout: ms, polling: 50 },
  ).then((h) => h.jsonValue());
}

/** The error a call in the page throws: `{ name, code, relayCode, message }`, or null. */
export function errorOf(page, body, arg) {
  return page.evaluate(async ({ body, arg }) => {
    try {
      await eval(body)(arg);
      return null;
    } catch (e) {
      return { name: e.name, code: e.code, relayCode: e.relayCode, message: e.message };
    }
  }, { body, arg });
}

/** Register `phone` as a primary in `page` and connect. */
export async function register(page, relay, phone, slot = "pawl") {
  await page.evaluate(({ phone, slot }) => window[slot].requestCode(phone), { phone, slot });
  const code = await relay.code(phone);
  await page.evaluate(async ({ phone, code, slot }) => {
    await window[slot].verifyCode(phone, code);
    await window[slot].start();
  }, { phone, code, slot });
  await waitEvent(page, "(e) => e.type === 'connected'", slot);
}

/** Every byte of this origin's OPFS, as one latin1 string (the store's raw files). */
export function opfsBytes(page) {
  return page.evaluate(async () => {
    const parts = [];
    async function walk(dir) {
      for await (const [, h] of dir.entries()) {
        if (h.kind === "directory") await walk(h);
        else parts.push(new Uint8Array(await (await h.getFile()).arrayBuffer()));
      }
    }
    await walk(await navigator.storage.getDirectory());
    let s = "";
    for (const p of parts) for (let i = 0; i < p.length; i += 8192) s += String.fromCharCode(...p.subarray(i, i + 8192));
    return s;
  });
}
