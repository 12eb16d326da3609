// The dedicated Worker that owns one Pawl client and its store. OPFS's synchronous
// file handles (the store's persistence) exist only in a Worker; the WebSocket, the
// timers and WebCrypto work here too, so the page's thread never runs protocol code.
//
// One owner per store: the Worker takes the Web Lock `pawl-store:<name>` before it
// opens the store and holds it until it closes. A second tab asking for the same
// store gets error 15 (STORE_IN_USE) instead of a second client forking the ratchets.

import init, { WebClient, WebLinking, installStorage } from "./wasm/pawl_web.js";
import { databaseKey } from "./keystore.js";
import type { Call, Reply } from "./protocol.js";

const STORE_IN_USE = 15;
const INVALID_ARGUMENT = 1;

interface OpenArgs {
  name: string;
  relayUrl: string;
  databaseKey?: Uint8Array;
  wasmUrl?: string;
}

const scope = self as unknown as {
  postMessage(m: unknown): void;
  onmessage: ((e: MessageEvent<Call>) => void) | null;
  close(): void;
};

let client: WebClient | undefined;
let releaseLock: (() => void) | undefined;
const linkings = new Map<number, WebLinking>();
let nextLinking = 1;

function coded(code: number, message: string): Error {
  return Object.assign(new Error(message), { name: "PawlError", code });
}

/** Take the store's lock, or fail at once when another tab holds it. */
function lock(name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    navigator.locks
      .request(`pawl-store:${name}`, { ifAvailable: true }, (held) => {
        if (!held) {
          reject(coded(STORE_IN_USE, `the store "${name}" is open in another tab`));
          return undefined;
        }
        resolve();
        return new Promise<void>((release) => (releaseLock = release));
      })
      .catch(reject);
  });
}

async function pumpEvents(c: WebClient): Promise<void> {
  for (;;) {
    const event = await c.nextEvent();
    if (event === undefined || c !== client) return;
    scope.postMessage({ event });
  }
}

/**
 * Install the OPFS storage. A Worker of this origin that just closed the store (a
 * reload, another tab that let go) may still be releasing its file handles: retry
 * for a few seconds.
 */
async function installStorageRetrying(): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await installStorage("pawl");
    } catch (e) {
      if (attempt >= 40) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function open(a: OpenArgs): Promise<unknown> {
  if (client) throw coded(INVALID_ARGUMENT, "this worker has a client open already");
  const t0 = performance.now();
  await init(a.wasmUrl ? { module_or_path: a.wasmUrl } : undefined);
  const tInit = performance.now();
  await lock(a.name);
  try {
    await installStorageRetrying();
    const key = a.databaseKey ?? (await databaseKey(a.name));
    client = WebClient.open(a.name, key, a.relayUrl);
    key.fill(0);
  } catch (e) {
    releaseLock?.();
    releaseLock = undefined;
    throw e;
  }
  void pumpEvents(client);
  return { wasmMs: tInit - t0, openMs: performance.now() - tInit };
}

async function close(): Promise<void> {
  const c = client;
  client = undefined;
  if (c) {
    await c.shutdown();
    c.free();
  }
  releaseLock?.();
  releaseLock = undefined;
}

async function dispatch(call: Call): Promise<unknown> {
  const args = call.args;
  switch (call.op) {
    case "open":
      return open(args[0] as OpenArgs);
    case "close":
      return close();
    case "linkingNextCode":
      return linkings.get(args[0] as number)?.nextCode();
    case "linkingFinished": {
      const l = linkings.get(args[0] as number);
      if (!l) throw coded(INVALID_ARGUMENT, "unknown linking");
      linkings.delete(args[0] as number);
      return l.finished();
    }
  }
  if (!client) throw coded(INVALID_ARGUMENT, "open() first");
  if (call.op === "startLinking") {
    const id = nextLinking++;
    linkings.set(id, await client.startLinking());
    return id;
  }
  const method = (client as unknown as Record<string, unknown>)[call.op];
  if (typeof method !== "function" || call.op === "free" || call.op === "nextEvent") {
    throw coded(INVALID_ARGUMENT, `unknown operation ${call.op}`);
  }
  return await (method as (...a: unknown[]) => unknown).apply(client, args);
}

scope.onmessage = (e: MessageEvent<Call>) => {
  const call = e.data;
  dispatch(call).then(
    (value) => scope.postMessage({ id: call.id, ok: true, value } satisfies Reply),
    (err: unknown) => {
      const x = err as { code?: number; message?: string; relayCode?: string };
      const error = {
        code: typeof x?.code === "number" ? x.code : 99,
        message: x?.message ?? String(err),
        ...(x?.relayCode ? { relayCode: x.relayCode } : {}),
      };
      scope.postMessage({ id: call.id, ok: false, error } satisfies Reply);
    },
  );
};
