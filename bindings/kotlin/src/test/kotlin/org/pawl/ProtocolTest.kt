package org.pawl

import java.io.File
import java.security.SecureRandom
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir

/** The low-level protocol API (apps with their own transport): bundle, session,
 *  encrypt, decrypt, typed errors. (Same as bindings/python/tests/test_protocol.py.) */
class ProtocolTest {
    @TempDir
    lateinit var tmp: File

    private fun key(): ByteArray = ByteArray(32).also { SecureRandom().nextBytes(it) }

    private fun open(name: String): PawlProtocol = PawlProtocol.open(File(tmp, name).path, key())

    @Test
    fun sessionsOverAnAppTransport() {
        val alice = open("a.db")
        val bob = open("b.db")
        val bundle = bob.prekeyBundle(1u, 7u) // what Bob publishes (device 1, one-time prekey 7)
        assertArrayEquals(bob.identityKey(), bundle.identityKey)
        assertEquals(33, bundle.identityKey.size)
        assertEquals(bob.registrationId(), bundle.registrationId)
        assertEquals(7u, bundle.prekeyId)
        assertFalse(alice.hasSession("bob", 1u))
        alice.processPrekeyBundle("bob", 1u, bundle)
        assertTrue(alice.hasSession("bob", 1u))

        val first = alice.encrypt("bob", 1u, "hello".toByteArray())
        assertEquals(3.toUByte(), first.messageType) // PreKeySignalMessage until Bob answers
        assertArrayEquals("hello".toByteArray(), bob.decrypt("alice", 1u, first))
        val replay = assertThrows<PawlException.DuplicateMessage> { bob.decrypt("alice", 1u, first) }
        assertEquals(14u, replay.code)
        assertEquals(ErrorCode.DUPLICATE_MESSAGE, (replay as PawlException).errorCode)

        val answer = bob.encrypt("alice", 1u, "hi alice".toByteArray())
        assertEquals(2.toUByte(), answer.messageType)
        assertArrayEquals("hi alice".toByteArray(), alice.decrypt("bob", 1u, answer))
        for (i in 0 until 20) {
            val m = alice.encrypt("bob", 1u, "n$i".toByteArray())
            assertArrayEquals("n$i".toByteArray(), bob.decrypt("alice", 1u, m))
        }

        // A tampered message (one bit flipped in the body) is a typed error, and the
        // session still works afterwards.
        val good = alice.encrypt("bob", 1u, "intact".toByteArray())
        val body = good.body.copyOf().also { it[it.size - 5] = (it[it.size - 5].toInt() xor 1).toByte() }
        val tampered = assertThrows<PawlException> { bob.decrypt("alice", 1u, good.copy(body = body)) }
        assertTrue(tampered is PawlException.Protocol, "got $tampered")
        assertEquals(ErrorCode.PROTOCOL.code, tampered.code)
        assertArrayEquals("intact".toByteArray(), bob.decrypt("alice", 1u, good))
    }

    @Test
    fun protocolErrorsAreTyped() {
        val p = open("p.db")
        assertEquals(11u, assertThrows<PawlException.NoSession> { p.encrypt("nobody", 1u, "x".toByteArray()) }.code)
        assertThrows<PawlException.InvalidArgument> { p.decrypt("nobody", 1u, Ciphertext(9u, ByteArray(0))) }
        assertThrows<PawlException.Protocol> {
            p.decrypt("nobody", 1u, Ciphertext(2u, byteArrayOf(0x33) + "garbage".toByteArray()))
        }
        val bundle = p.prekeyBundle(1u, null)
        val notAKey = byteArrayOf(5) + ByteArray(31) { 1 } // 32 bytes: not a key
        assertThrows<PawlException.InvalidArgument> { p.processPrekeyBundle("me", 2u, bundle.copy(signedPrekey = notAKey)) }
        val short = assertThrows<PawlException.InvalidArgument> { PawlProtocol.open(File(tmp, "q.db").path, "short".toByteArray()) }
        assertEquals(1u, short.code)
    }

    @Test
    fun wrongKeyForAProtocolDatabase() {
        val path = File(tmp, "k.db").path
        PawlProtocol.open(path, ByteArray(32) { 1 }).close()
        val err = assertThrows<PawlException.WrongDatabaseKey> { PawlProtocol.open(path, ByteArray(32) { 2 }) }
        assertEquals(2u, err.code)
    }
}
