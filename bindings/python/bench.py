"""The Python side of the binding-overhead measurement (Rust side:
`cargo run -p pawl-ffi --example overhead`). Run after build.sh / run-tests.sh:

    ~/.cache/pawl/venv/bin/python bindings/python/bench.py
"""

import time

import pawl


def per_call(n, f):
    t = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - t) * 1e6 / n


def main():
    # In-memory databases: disk flushes would drown the per-call cost in noise.
    alice = pawl.PawlProtocol.open(":memory:", b"\x07" * 32)
    bob = pawl.PawlProtocol.open(":memory:", b"\x07" * 32)
    alice.process_prekey_bundle("bob", 1, bob.prekey_bundle(1, 1))
    bob.decrypt("alice", 1, alice.encrypt("bob", 1, b"hi"))
    alice.decrypt("bob", 1, bob.encrypt("alice", 1, b"yo"))

    n = 2000
    version = per_call(100_000, pawl.version)
    sha = per_call(100_000, lambda: pawl.cert_sha256(b"\x01" * 32))
    plaintext = b"x" * 100
    msgs = []
    enc = per_call(n, lambda: msgs.append(alice.encrypt("bob", 1, plaintext)))
    it = iter(msgs)
    dec = per_call(n, lambda: bob.decrypt("alice", 1, next(it)))
    print(f"python version()        {version:8.2f} us/call")
    print(f"python cert_sha256(32B) {sha:8.2f} us/call")
    print(f"python encrypt(100B)    {enc:8.2f} us/call")
    print(f"python decrypt(100B)    {dec:8.2f} us/call")


if __name__ == "__main__":
    main()
