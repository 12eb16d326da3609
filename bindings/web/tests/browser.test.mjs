// @pawl/web in a real browser (Debian's headless Chromium) against a real pawl-relay
// on loopback: the scenario every binding runs, reload persistence, one tab per store,
// the database key, nothing readable in the persisted files, and this browser linked
// as a companion of a native client (pawl-chat) with its history.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { join } from "node:path";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import {
  BIN, startRelay, startServer, launchBrowser, openPage, open, waitEvent, errorOf,
  register, opfsBytes,
} from "./harness.mjs";

const ALICE = "+4915100000101";
const BOB = "+4915100000102";
const PHONE = "+4915100000103";
let relay, server, browser;

before(async () => {
  relay = await startRelay();
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  server?.close();
  relay?.stop();
});

test("two browser users: messages both ways, delivered and read, safety number, typed errors, reload, one tab per store, nothing in the clear", async () => {
  const a = await openPage(browser, server);
  const b = await openPage(browser, server);
  await open(a, { relayUrl: relay.url, name: "alice" });
  await open(b, { relayUrl: relay.url, name: "bob" });
  assert.match(await a.evaluate(() => pawl.cipherVersion()), /^4\./, "SQLCipher 4 encrypts the store");

  // A typed error from the relay before registering: a wrong code.
  await a.evaluate((p) => pawl.requestCode(p), ALICE);
  const bad = await errorOf(a, "(p) => pawl.verifyCode(p, '000000')", ALICE);
  assert.equal(bad?.name, "PawlError");
  assert.equal(bad?.code, 5, JSON.stringify(bad));
  assert.equal(bad?.relayCode, "BadCode");
  const notReg = await errorOf(b, "() => pawl.address()");
  assert.equal(notReg?.code, 3, "not registered yet");

  await register(a, relay, ALICE);
  await register(b, relay, BOB);
  assert.deepEqual(await a.evaluate(() => pawl.address()), { user: ALICE, deviceId: 1 });

  const id = await a.evaluate((to) => pawl.sendText(to, "hello bob, from a browser"), BOB);
  const got = await waitEvent(b, "(e) => e.type === 'message'");
  assert.equal(got.message.text, "hello bob, from a browser");
  assert.equal(got.message.sender, ALICE);
  await waitEvent(a, `(e) => e.type === 'delivered' && e.messageId === ${id}`);
  await b.evaluate((to) => pawl.sendText(to, "hi alice, bob here"), ALICE);
  const back = await waitEvent(a, "(e) => e.type === 'message'");
  assert.equal(back.message.text, "hi alice, bob here");
  assert.equal(await b.evaluate((p) => pawl.markRead(p), ALICE), 1);
  await waitEvent(a, `(e) => e.type === 'read' && e.messageId === ${id}`);
  const status = await a.evaluate((i) => pawl.message(i).then((m) => m.status), id);
  assert.equal(status, "read");

  // Safety numbers agree, and each side's QR payload verifies on the other.
  const sa = await a.evaluate((p) => pawl.safetyNumber(p).then((s) => ({ d: s.digits, q: Array.from(s.scannable), svg: s.qrSvg })), BOB);
  const sb = await b.evaluate((p) => pawl.safetyNumber(p).then((s) => ({ d: s.digits, q: Array.from(s.scannable) })), ALICE);
  assert.equal(sa.d, sb.d);
  assert.match(sa.d, /^\d{60}$/);
  assert.ok(sa.svg.includes("<svg"), "the QR code renders as SVG");
  assert.equal(await b.evaluate(({ p, q }) => pawl.compareScanned(p, new Uint8Array(q)), { p: ALICE, q: sa.q }), true);
  const noSession = await errorOf(a, "(p) => pawl.safetyNumber(p)", "+4915199999999");
  assert.equal(noSession?.code, 11);

  // A second tab on the same store is refused (one owner: no forked ratchets).
  const a2 = await a.context().newPage();
  await a2.goto(server.url);
  await a2.waitForFunction(() => window.ready === true);
  const inUse = await errorOf(a2, "(o) => Pawl.open(o)", { relayUrl: relay.url, name: "alice" });
  assert.equal(inUse?.code, 15, JSON.stringify(inUse));
  await a2.close();

  // Reload: sessions and messages are still there, and the session still works.
  await a.evaluate(() => pawl.close());
  await a.reload();
  await a.waitForFunction(() => window.ready === true);
  await open(a, { relayUrl: relay.url, name: "alice" });
  const texts = await a.evaluate((p) => pawl.messages(p, 10).then((l) => l.map((m) => m.text)), BOB);
  assert.deepEqual(texts, ["hi alice, bob here", "hello bob, from a browser"], "newest first");
  await a.evaluate(() => pawl.start());
  await waitEvent(a, "(e) => e.type === 'connected'");
  await a.evaluate((to) => pawl.sendText(to, "still here after a reload"), BOB);
  await waitEvent(b, "(e) => e.type === 'message' && e.message.text === 'still here after a reload'");

  // The persisted files: present, and none of the texts (nor a plain SQLite header).
  await a.evaluate(() => pawl.close());
  const raw = await opfsBytes(a);
  assert.ok(raw.length > 16384, `the store is persisted in OPFS (${raw.length} bytes)`);
  for (const t of ["hello bob, from a browser", "hi alice, bob here", "still here after a reload", ALICE.slice(1), BOB.slice(1)]) {
    assert.ok(!raw.includes(t), `"${t}" must not be readable in the browser's files`);
  }
  assert.ok(!raw.includes("SQLite format 3"), "the database pages are encrypted");
  // Control: the same check finds text that is there (the OPFS walk reads real bytes).
  await a.evaluate(async () => {
    const d = await navigator.storage.getDirectory();
    const w = await (await d.getFileHandle("control.txt", { create: true })).createWritable();
    await w.write("control-plaintext-marker");
    await w.close();
  });
  assert.ok((await opfsBytes(a)).includes("control-plaintext-marker"));
  await b.evaluate(() => pawl.close());
});

test("the database key: a store written in the browser does not open with another key", async () => {
  const p = await openPage(browser, server);
  const key = Array.from({ length: 32 }, (_, i) => i + 1);
  await open(p, { relayUrl: relay.url, name: "keyed", databaseKey: key });
  await p.evaluate(() => pawl.close());
  const wrong = await errorOf(p, "(o) => Pawl.open({ ...o, databaseKey: new Uint8Array(32).fill(9) })", { relayUrl: relay.url, name: "keyed" });
  assert.equal(wrong?.code, 2, JSON.stringify(wrong));
  const short = await errorOf(p, "(o) => Pawl.open({ ...o, databaseKey: new Uint8Array(5) })", { relayUrl: relay.url, name: "other" });
  assert.equal(short?.code, 1);
  await open(p, { relayUrl: relay.url, name: "keyed", databaseKey: key });
  await p.evaluate(() => pawl.close());
  // Without a key given, the key comes from IndexedDB wrapped by a non-extractable key.
  await open(p, { relayUrl: relay.url, name: "wrapped" });
  await p.evaluate(() => pawl.close());
  const wrapping = await p.evaluate(() => new Promise((resolve, reject) => {
    const r = indexedDB.open("pawl-keys");
    r.onsuccess = () => {
      const g = r.result.transaction("keys").objectStore("keys").get("wrapped");
      g.onsuccess = () => resolve({ extractable: g.result.wrapping.extractable, wrappedLen: g.result.wrapped.byteLength });
      g.onerror = () => reject(g.error);
    };
    r.onerror = () => reject(r.error);
  }));
  assert.deepEqual(wrapping, { extractable: false, wrappedLen: 48 });
  await open(p, { relayUrl: relay.url, name: "wrapped" });
  await p.evaluate(() => pawl.close());
});

test("this browser linked as a companion of a native client: the code, the link, history, live messages", async () => {
  // The native primary: pawl-chat, registered by phone number, with one message sent.
  const dir = mkdtempSync(join(tmpdir(), "pawl-web-native-"));
  const chat = (args) => [join(BIN, "pawl-chat"), ["--db", join(dir, "phone.db"), "--relay", relay.url, ...args]];
  execFileSync(...chat(["register", PHONE]));
  execFileSync(...chat(["verify", PHONE, await relay.code(PHONE)]));
  const bob = await openPage(browser, server);
  await open(bob, { relayUrl: relay.url, name: "bob2" });
  const BOB2 = "+4915100000104";
  await register(bob, relay, BOB2);
  const [cmd, args] = chat(["chat"]);
  const phone = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  phone.stdout.on("data", (d) => (out += d));
  phone.stderr.on("data", (d) => (out += d));
  const until = async (what, re, ms = 30000) => {
    const end = Date.now() + ms;
    while (!re.test(out)) {
      if (Date.now() > end) throw new Error(`pawl-chat: no ${what}; output:\n${out}`);
      await sleep(50);
    }
  };
  try {
    await until("the chat prompt", /\/to \+NUMBER/);
    phone.stdin.write(`/to ${BOB2}\n`);
    await sleep(200);
    phone.stdin.write("history from the phone\n");
    await waitEvent(bob, "(e) => e.type === 'message' && e.message.text === 'history from the phone'")
      .catch((e) => { throw new Error(`${e.message}; pawl-chat said:\n${out}`); });

    const web = await openPage(browser, server);
    await open(web, { relayUrl: relay.url, name: "companion" });
    const code = await web.evaluate(async () => {
      window.linking = await pawl.startLinking();
      return (await window.linking.nextCode()).code;
    });
    assert.match(code, /^pawl-link:1,/);
    phone.stdin.write(`/link ${code}\n`);
    const me = await web.evaluate(() => window.linking.finished());
    assert.deepEqual(me, { user: PHONE, deviceId: 2 });
    await until("link confirmation", /device 2 linked/);
    await web.evaluate(() => pawl.start());
    await waitEvent(web, "(e) => e.type === 'historySynced' && e.chunksDone === e.chunks", "pawl", 30000);
    const history = await web.evaluate((p) => pawl.messages(p, 10).then((l) => l.map((m) => [m.text, m.outgoing])), BOB2);
    assert.deepEqual(history, [["history from the phone", true]]);

    // Live: Bob writes to the account; the browser companion gets it too.
    await bob.evaluate((to) => pawl.sendText(to, "to both of your devices"), PHONE);
    const live = await waitEvent(web, "(e) => e.type === 'message' && e.message.text === 'to both of your devices'");
    assert.equal(live.message.sender, BOB2);
    await until("the message on the phone", /to both of your devices/);
    await web.evaluate(() => pawl.close());
    await bob.evaluate(() => pawl.close());
  } finally {
    phone.stdin.end("/quit\n");
    phone.kill();
  }
});
