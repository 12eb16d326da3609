// @pawl/web: Pawl's end-to-end encrypted messaging client in the browser.
//
// The client (Signal-protocol sessions, the relay connection, the encrypted store)
// runs in a dedicated Worker as WebAssembly; this module is the page's side: promises
// for every operation, typed events (an EventTarget and an async iterator), and
// errors with the same stable numeric codes as Pawl's Swift, Kotlin, C#, Python and C
// bindings.
//
//   const pawl = await Pawl.open({ relayUrl: "wss://relay.example/v1/ws" });
//   await pawl.requestCode("+4915112345678");
//   await pawl.verifyCode("+4915112345678", code);
//   await pawl.start();
//   await pawl.sendText("+4915187654321", "hello");
//   for await (const e of pawl.events()) if (e.type === "message") show(e.message);

import type { Call, Reply, Push } from "./protocol.js";

/** Stable error codes (the same numbers in every Pawl binding). */
export const ErrorCode = {
  InvalidArgument: 1,
  WrongDatabaseKey: 2,
  NotRegistered: 3,
  NotConnected: 4,
  Relay: 5,
  Tls: 6,
  Config: 7,
  Transport: 8,
  Protocol: 9,
  UntrustedIdentity: 10,
  NoSession: 11,
  Store: 12,
  DatabaseBusy: 13,
  DuplicateMessage: 14,
  StoreInUse: 15,
  Internal: 99,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Every failure: `code` is one of {@link ErrorCode}; `relayCode` names a relay refusal. */
export class PawlError extends Error {
  readonly code: number;
  readonly relayCode?: string;
  constructor(code: number, message: string, relayCode?: string) {
    super(message);
    this.name = "PawlError";
    this.code = code;
    this.relayCode = relayCode;
  }
}

/** A device: its account's user name (phone number) and device id (1 = the phone). */
export interface Address {
  user: string;
  deviceId: number;
}

export type MessageStatus = "pending" | "sent" | "delivered" | "read" | "failed";

/** A message as stored (already decrypted; never stored in the clear). */
export interface Message {
  id: number;
  chatId: number;
  sender: string;
  senderDevice: number;
  outgoing: boolean;
  /** The text, or null when the body is not UTF-8. */
  text: string | null;
  body: Uint8Array;
  sentAt: number;
  receivedAt: number | null;
  status: MessageStatus;
  /** An attachment descriptor, for media messages. */
  media: Uint8Array | null;
}

export interface Chat {
  id: number;
  peer: string;
  title: string | null;
  unread: number;
}

export interface SafetyNumber {
  /** 60 digits to compare aloud. */
  digits: string;
  /** The QR code's payload (compare with {@link Pawl.compareScanned}). */
  scannable: Uint8Array;
  /** The QR code as an SVG document. */
  qrSvg: string;
}

export interface LinkCode {
  /** The text to show as a QR code for the phone to scan. */
  code: string;
  expiresAtMs: number;
}

/** Everything the client reports. */
export type PawlEvent =
  | { type: "connected" }
  | { type: "disconnected"; reason: string }
  | { type: "message"; message: Message }
  | { type: "sent"; messageId: number }
  | { type: "delivered"; messageId: number; device: Address }
  | { type: "read"; messageId: number; by: Address }
  | { type: "typing"; from: Address; started: boolean }
  | { type: "presence"; from: Address; online: boolean }
  | { type: "failed"; messageId: number | null; reason: string }
  | { type: "decryptFailed"; from: Address; error: string }
  | { type: "preKeysUploaded"; count: number }
  | { type: "deviceLinked"; deviceId: number }
  | { type: "deviceListRejected"; user: string; reason: string }
  | { type: "historySynced"; chunksDone: number; chunks: number; messages: number }
  | { type: "appStateRejected"; collection: string; reason: string }
  | { type: "groupUpdated"; groupId: Uint8Array; chatId: number }
  | { type: "appStateChanged"; collection: string }
  | { type: "other"; debug: string };

export interface OpenOptions {
  /** `wss://host/v1/ws` (the browser checks the certificate), or `ws://` on loopback. */
  relayUrl: string;
  /** The store's name in this origin (one per account on this browser). Default "pawl". */
  name?: string;
  /**
   * The 32-byte database key. Default: a random key kept in IndexedDB wrapped by a
   * non-extractable WebCrypto key (see README: what the browser profile reveals).
   */
  databaseKey?: Uint8Array;
  /** Where worker.js is (default: beside this module). */
  workerUrl?: string | URL;
  /** Where pawl_web_bg.wasm is (default: beside the worker's wasm glue). */
  wasmUrl?: string | URL;
}

/** How long opening took, for the curious: wasm compile and store open, in ms. */
export interface OpenTimings {
  wasmMs: number;
  openMs: number;
}

/** A companion link in progress: show each code as a QR code until the phone scans one. */
export class Linking {
  constructor(
    private readonly pawl: Pawl,
    private readonly id: number,
  ) {}
  /** The next code to show, or undefined once linking ended. */
  nextCode(): Promise<LinkCode | undefined> {
    return this.pawl.call("linkingNextCode", this.id) as Promise<LinkCode | undefined>;
  }
  /** Resolves with this browser's address once the phone has linked it. */
  finished(): Promise<Address> {
    return this.pawl.call("linkingFinished", this.id) as Promise<Address>;
  }
}

/**
 * One device's Pawl client, running in its own Worker. Also an EventTarget: each
 * {@link PawlEvent} is dispatched as a CustomEvent named after its type, and as "event".
 */
export class Pawl extends EventTarget {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void }>();
  private nextId = 1;
  private readonly queue: PawlEvent[] = [];
  private readonly readers: ((e: IteratorResult<PawlEvent>) => void)[] = [];
  private closed = false;
  /** How long opening took. */
  timings: OpenTimings = { wasmMs: 0, openMs: 0 };

  private constructor(worker: Worker) {
    super();
    this.worker = worker;
    worker.onmessage = (e: MessageEvent<Reply | Push>) => this.receive(e.data);
    worker.onerror = (e) => this.fail(new PawlError(ErrorCode.Internal, `worker: ${e.message}`));
  }

  /** Start the Worker, take the store (one tab at a time), open or create it. */
  static async open(options: OpenOptions): Promise<Pawl> {
    const url = options.workerUrl ?? new URL("./worker.js", import.meta.url);
    const pawl = new Pawl(new Worker(url, { type: "module" }));
    try {
      pawl.timings = (await pawl.call("open", {
        name: options.name ?? "pawl",
        relayUrl: options.relayUrl,
        databaseKey: options.databaseKey,
        wasmUrl: options.wasmUrl?.toString(),
      })) as OpenTimings;
    } catch (e) {
      pawl.worker.terminate();
      throw e;
    }
    return pawl;
  }

  /** @internal */
  call(op: string, ...args: unknown[]): Promise<unknown> {
    if (this.closed) return Promise.reject(new PawlError(ErrorCode.InvalidArgument, "closed"));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, op, args } satisfies Call);
    });
  }

  private receive(m: Reply | Push): void {
    if ("event" in m) {
      const event = m.event as PawlEvent;
      this.dispatchEvent(new CustomEvent(event.type, { detail: event }));
      this.dispatchEvent(new CustomEvent("event", { detail: event }));
      const reader = this.readers.shift();
      if (reader) reader({ value: event, done: false });
      else this.queue.push(event);
      return;
    }
    const w = this.waiting.get(m.id);
    if (!w) return;
    this.waiting.delete(m.id);
    if (m.ok) w.resolve(m.value);
    else w.reject(new PawlError(m.error.code, m.error.message, m.error.relayCode));
  }

  private fail(e: PawlError): void {
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
  }

  /** Events as an async iterator (one consumer); ends when the client is closed. */
  events(): AsyncIterableIterator<PawlEvent> {
    const self = this;
    return {
      next(): Promise<IteratorResult<PawlEvent>> {
        const e = self.queue.shift();
        if (e) return Promise.resolve({ value: e, done: false });
        if (self.closed) return Promise.resolve({ value: undefined, done: true });
        return new Promise((r) => self.readers.push(r));
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  /** Ask the relay to send a verification code to `phone` (E.164). */
  requestCode(phone: string): Promise<void> {
    return this.call("requestCode", phone) as Promise<void>;
  }
  /** Register this browser as the primary device of `phone`. */
  verifyCode(phone: string, code: string): Promise<void> {
    return this.call("verifyCode", phone, code) as Promise<void>;
  }
  /** Become a companion of the account whose phone scans the codes. */
  async startLinking(): Promise<Linking> {
    return new Linking(this, (await this.call("startLinking")) as number);
  }
  /** Connect, and stay connected (reconnecting with backoff). */
  async start(): Promise<void> {
    await this.call("start");
  }
  /** Disconnect (the store stays open). */
  async shutdown(): Promise<void> {
    await this.call("shutdown");
  }
  isConnected(): Promise<boolean> {
    return this.call("isConnected") as Promise<boolean>;
  }
  address(): Promise<Address> {
    return this.call("address") as Promise<Address>;
  }
  /** Send a text to every device of `peer`; resolves with the stored message's id. */
  sendText(peer: string, text: string): Promise<number> {
    return this.call("sendText", peer, text) as Promise<number>;
  }
  /** Mark the chat read (an end-to-end encrypted read receipt); how many messages. */
  markRead(peer: string): Promise<number> {
    return this.call("markRead", peer) as Promise<number>;
  }
  setTyping(peer: string, started: boolean): Promise<void> {
    return this.call("setTyping", peer, started) as Promise<void>;
  }
  /** The newest `limit` messages with `peer`, newest first. */
  messages(peer: string, limit = 50): Promise<Message[]> {
    return this.call("messages", peer, limit) as Promise<Message[]>;
  }
  message(id: number): Promise<Message | undefined> {
    return this.call("message", id) as Promise<Message | undefined>;
  }
  search(query: string, limit = 50): Promise<Message[]> {
    return this.call("search", query, limit) as Promise<Message[]>;
  }
  chats(): Promise<Chat[]> {
    return this.call("chats") as Promise<Chat[]>;
  }
  safetyNumber(peer: string): Promise<SafetyNumber> {
    return this.call("safetyNumber", peer) as Promise<SafetyNumber>;
  }
  compareScanned(peer: string, scanned: Uint8Array): Promise<boolean> {
    return this.call("compareScanned", peer, scanned) as Promise<boolean>;
  }
  /** The SQLCipher version encrypting the store. */
  cipherVersion(): Promise<string> {
    return this.call("cipherVersion") as Promise<string>;
  }
  /** Disconnect, close the store, release it for another tab, and stop the Worker. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.call("close");
    } finally {
      this.closed = true;
      this.worker.terminate();
      this.fail(new PawlError(ErrorCode.InvalidArgument, "closed"));
      for (const r of this.readers.splice(0)) r({ value: undefined, done: true });
    }
  }
}
