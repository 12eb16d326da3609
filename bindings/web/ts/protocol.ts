// The messages between the page (index.ts) and the Worker (worker.ts) that owns the
// client and its store. Private to @pawl/web: apps use the Pawl class.

/** A call from the page: `op` names a WebClient method (or open / close / linking). */
export interface Call {
  id: number;
  op: string;
  args: unknown[];
}

/** The Worker's answer to a call. */
export type Reply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: { code: number; message: string; relayCode?: string } };

/** An event pushed by the Worker (not an answer). */
export interface Push {
  event: unknown;
}
