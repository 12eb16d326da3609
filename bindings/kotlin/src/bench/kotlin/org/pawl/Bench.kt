// The Kotlin side of the binding-overhead measurement: the same calls as
// bindings/python/bench.py and `cargo run -p pawl-ffi --example overhead` (the Rust side).
// Run with bindings/kotlin/bench.sh.

package org.pawl

/** Microseconds per call of [f] over [n] calls. */
private inline fun perCall(n: Int, f: () -> Unit): Double {
    val t = System.nanoTime()
    repeat(n) { f() }
    return (System.nanoTime() - t) / 1e3 / n
}

object Bench {
    @JvmStatic
    fun main(args: Array<String>) {
        // In-memory databases: disk flushes would drown the per-call cost in noise.
        val key = ByteArray(32) { 7 }
        val alice = PawlProtocol.open(":memory:", key)
        val bob = PawlProtocol.open(":memory:", key)
        alice.processPrekeyBundle("bob", 1u, bob.prekeyBundle(1u, 1u))
        bob.decrypt("alice", 1u, alice.encrypt("bob", 1u, "hi".toByteArray()))
        alice.decrypt("bob", 1u, bob.encrypt("alice", 1u, "yo".toByteArray()))

        val small = ByteArray(32) { 1 }
        val plaintext = ByteArray(100) { 'x'.code.toByte() }
        var sink = 0
        // Warm-up: load the classes, let the JIT compile the generated code's hot paths.
        repeat(20_000) { sink += version().length + certSha256(small).size }
        val warm = ArrayList<Ciphertext>()
        repeat(500) { warm.add(alice.encrypt("bob", 1u, plaintext)) }
        for (m in warm) sink += bob.decrypt("alice", 1u, m).size

        val n = 2000
        val version = perCall(100_000) { sink += version().length }
        val sha = perCall(100_000) { sink += certSha256(small).size }
        val msgs = ArrayList<Ciphertext>(n)
        val enc = perCall(n) { msgs.add(alice.encrypt("bob", 1u, plaintext)) }
        val it = msgs.iterator()
        val dec = perCall(n) { sink += bob.decrypt("alice", 1u, it.next()).size }
        check(sink > 0)
        println("kotlin version()        %8.2f us/call".format(version))
        println("kotlin cert_sha256(32B) %8.2f us/call".format(sha))
        println("kotlin encrypt(100B)    %8.2f us/call".format(enc))
        println("kotlin decrypt(100B)    %8.2f us/call".format(dec))
    }
}
