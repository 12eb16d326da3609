// The database key in the browser, never stored in the clear: a random 32-byte key,
// kept in IndexedDB only wrapped (AES-256-GCM) by a WebCrypto key that is created
// non-extractable, so its bytes never exist in JavaScript or on disk in a usable form;
// the browser keeps it in the profile and uses it only inside WebCrypto.

const DB = "pawl-keys";
const STORE = "keys";

interface Entry {
  wrapping: CryptoKey;
  iv: Uint8Array;
  wrapped: ArrayBuffer;
}

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

async function database(): Promise<IDBDatabase> {
  const open = indexedDB.open(DB, 1);
  open.onupgradeneeded = () => open.result.createObjectStore(STORE);
  return request(open);
}

/** The database key for store `name`: unwrapped from IndexedDB, or made and wrapped. */
export async function databaseKey(name: string): Promise<Uint8Array> {
  const db = await database();
  try {
    const found = (await request(
      db.transaction(STORE, "readonly").objectStore(STORE).get(name),
    )) as Entry | undefined;
    if (found) {
      const key = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: found.iv as BufferSource },
        found.wrapping,
        found.wrapped,
      );
      return new Uint8Array(key);
    }
    const wrapping = await crypto.subtle.generateKey(
      { name: "AES-GCM", length: 256 },
      false, // non-extractable: its bytes cannot be read back, by us or anyone
      ["encrypt", "decrypt"],
    );
    const key = crypto.getRandomValues(new Uint8Array(32));
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const wrapped = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, wrapping, key);
    const entry: Entry = { wrapping, iv, wrapped };
    await request(db.transaction(STORE, "readwrite").objectStore(STORE).put(entry, name));
    return key;
  } finally {
    db.close();
  }
}
