package org.pawl

import java.io.File
import java.security.MessageDigest
import java.security.SecureRandom
import kotlin.random.Random
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir

/**
 * The bindings scenario: two clients over a pawl-relay process on loopback register,
 * exchange messages both ways, see delivered and read states, agree on the safety
 * number, send an attachment as a media message, and get typed errors for bad input.
 * (The same scenario as every binding's tests; see bindings/README.md.)
 */
class ScenarioTest {
    @TempDir
    lateinit var tmp: File

    private val relay get() = TestRelay.relay

    private fun key(): ByteArray = ByteArray(32).also { SecureRandom().nextBytes(it) }

    private fun open(name: String, key: ByteArray = key()): PawlClient =
        PawlClient.open(File(tmp, name).path, key, relay.url, relay.pin)

    private suspend fun register(client: PawlClient, phone: String) {
        client.requestCode(phone)
        client.verifyCode(phone, relay.codeFor(phone))
    }

    @Test
    fun twoClientsChatThroughARelay(): Unit = runBlocking {
        withTimeout(120.seconds) {
            val alice = open("alice.db")
            val bob = open("bob.db")
            val aEvents = EventChannel()
            val bEvents = EventChannel()
            alice.setListener(aEvents)
            bob.setListener(bEvents)

            register(alice, ALICE)
            register(bob, BOB)
            assertEquals(Address(ALICE, 1u), alice.address())
            assertEquals(33, alice.identityKey().size)
            alice.start()
            bob.start()
            // Connected, then the first prekeys go up (others can start sessions after that).
            for (events in listOf(aEvents, bEvents)) {
                events.waitFor { it is ClientEvent.Connected }
                val up = events.waitFor { it is ClientEvent.PreKeysUploaded } as ClientEvent.PreKeysUploaded
                assertTrue(up.count > 0u)
            }
            assertTrue(alice.isConnected())
            assertEquals(listOf(BOB), alice.discover(listOf(BOB, "+4915100000099")))

            // Alice -> Bob: sent, received, delivered.
            val mid = alice.sendText(BOB, "hello bob")
            val got = bEvents.waitFor { it is ClientEvent.Message } as ClientEvent.Message
            assertEquals("hello bob", got.message.text)
            assertEquals(ALICE, got.message.sender)
            assertFalse(got.message.outgoing)
            val delivered = aEvents.waitFor { it is ClientEvent.Delivered && it.messageId == mid } as ClientEvent.Delivered
            assertEquals(Address(BOB, 1u), delivered.device)
            assertTrue(alice.messageStatus(mid) in setOf(MessageStatus.DELIVERED, MessageStatus.READ))

            // Bob reads: Alice sees the read receipt.
            assertEquals(1u, bob.markRead(ALICE))
            val read = aEvents.waitFor { it is ClientEvent.Read && it.messageId == mid } as ClientEvent.Read
            assertEquals(Address(BOB, 1u), read.by)
            assertEquals(MessageStatus.READ, alice.messageStatus(mid))

            // Bob -> Alice, with typing and presence first.
            bob.setTyping(ALICE, true)
            val typing = aEvents.waitFor { it is ClientEvent.Typing } as ClientEvent.Typing
            assertTrue(typing.started)
            assertEquals(BOB, typing.peer.name)
            bob.setPresence(ALICE, true)
            val presence = aEvents.waitFor { it is ClientEvent.Presence } as ClientEvent.Presence
            assertTrue(presence.online)
            val reply = bob.sendText(ALICE, "and back, alice")
            val back = aEvents.waitFor { it is ClientEvent.Message } as ClientEvent.Message
            assertEquals("and back, alice", back.message.text)
            assertEquals(BOB, back.message.sender)
            bEvents.waitFor { it is ClientEvent.Delivered && it.messageId == reply }
            assertTrue(bob.messageStatus(reply) in setOf(MessageStatus.DELIVERED, MessageStatus.READ))

            // The store: the chat newest first, search, one message by id.
            val chat = alice.messages(BOB, 10u)
            assertEquals(listOf("and back, alice", "hello bob"), chat.map { it.text })
            assertEquals(listOf(false, true), chat.map { it.outgoing })
            assertEquals(MessageStatus.READ, chat[1].status)
            assertEquals(listOf("hello bob"), bob.search("hello", 10u).map { it.text })
            assertArrayEquals("hello bob".toByteArray(), alice.message(mid)!!.body)
            assertNull(alice.message(1_000_000_000L))
            assertTrue(chat.all { it.media == null }) // text messages carry no media

            attachmentRoundTrip(alice, bob, bEvents)

            // The same safety number on both sides; each accepts the other's QR payload.
            val aSn = alice.safetyNumber(BOB)
            val bSn = bob.safetyNumber(ALICE)
            assertEquals(aSn.digits, bSn.digits)
            assertEquals(60, aSn.digits.length)
            assertTrue(aSn.digits.all { it in '0'..'9' })
            val pngSignature = byteArrayOf(0x89.toByte(), 'P'.code.toByte(), 'N'.code.toByte(), 'G'.code.toByte(), 13, 10, 26, 10)
            assertArrayEquals(pngSignature, aSn.qrPng.copyOf(8))
            assertTrue("<svg" in aSn.qrSvg)
            assertTrue(alice.compareScanned(BOB, bSn.scannable))
            assertTrue(bob.compareScanned(ALICE, aSn.scannable))
            assertFalse(alice.compareScanned(BOB, aSn.scannable)) // our own code

            // A malformed scanned QR payload is a typed error, not a crash.
            val err = assertThrows<PawlException.InvalidArgument> {
                alice.compareScanned(BOB, byteArrayOf(0) + "not a fingerprint".toByteArray())
            }
            assertEquals(1u, err.code)
            assertEquals(ErrorCode.INVALID_ARGUMENT, (err as PawlException).errorCode)
            assertTrue(err.detail.isNotEmpty())

            alice.shutdown()
            bob.shutdown()
            assertFalse(alice.isConnected())
            alice.close()
            bob.close()
        }
    }

    /**
     * Alice uploads a file (encrypted while uploaded) and sends it as a media message;
     * Bob gets the description in the Message event and the store, downloads and
     * decrypts it to a file with the same bytes; a wrong media key is a typed error
     * that leaves no file behind.
     */
    private suspend fun attachmentRoundTrip(alice: PawlClient, bob: PawlClient, bEvents: EventChannel) {
        // 300 KB (plus a few bytes: not a multiple of any chunk size) of deterministic,
        // incompressible bytes.
        val original = Random(20240601).nextBytes(300 * 1024 + 7)
        val source = File(tmp, "picture.png").apply { writeBytes(original) }
        val attachment = alice.uploadAttachment(MediaKind.IMAGE, source.path)
        assertEquals(MediaKind.IMAGE, attachment.kind)
        assertEquals(original.size.toULong(), attachment.fileLength)
        assertEquals(32, attachment.mediaKey.size)
        assertArrayEquals(MessageDigest.getInstance("SHA-256").digest(original), attachment.fileSha256)
        assertEquals(32, attachment.fileEncSha256.size)
        assertTrue(attachment.blobId.isNotEmpty())

        val thumbnail = byteArrayOf(0x89.toByte(), 'P'.code.toByte(), 'N'.code.toByte(), 'G'.code.toByte(), 1, 2, 3)
        val sent = MediaMessage(
            attachment = attachment,
            mimeType = "image/png",
            fileName = "picture.png",
            caption = "a picture",
            thumbnail = thumbnail,
            width = 640u,
            height = 480u,
        )
        val mediaId = alice.sendMedia(BOB, sent)
        assertMediaEquals(sent, alice.message(mediaId)!!.media)

        val got = bEvents.waitFor { it is ClientEvent.Message && it.message.media != null } as ClientEvent.Message
        assertEquals(ALICE, got.message.sender)
        assertFalse(got.message.outgoing)
        assertEquals("a picture", got.message.text)
        assertMediaEquals(sent, got.message.media)

        // Bob's store has it too, newest first, with the media set.
        val stored = bob.messages(ALICE, 10u).first()
        assertEquals(got.message.id, stored.id)
        assertEquals("a picture", stored.text)
        assertMediaEquals(sent, stored.media)

        // Download, check and decrypt into a file: Alice's bytes.
        val downloads = File(tmp, "downloads").apply { mkdirs() }
        val target = File(downloads, "received.png")
        bob.downloadAttachment(got.message.media!!.attachment, target.path)
        assertArrayEquals(original, target.readBytes())

        // A wrong media key: a typed error (the MAC does not match), and no file at the
        // target path (nor the partial download).
        val wrongKey = got.message.media!!.attachment.mediaKey.copyOf().also { it[0] = (it[0].toInt() xor 1).toByte() }
        val wrong = got.message.media!!.attachment.copy(mediaKey = wrongKey)
        val failed = File(downloads, "wrong-key.png")
        val err = assertThrows<PawlException.Protocol> {
            runBlocking { bob.downloadAttachment(wrong, failed.path) }
        }
        assertEquals(9u, err.code)
        assertEquals(ErrorCode.PROTOCOL, (err as PawlException).errorCode)
        assertFalse(failed.exists(), "a failed download left $failed")
        assertEquals(listOf("received.png"), downloads.list()!!.sorted())
    }

    /** Field by field: the generated data classes compare `ByteArray`s by identity. */
    private fun assertMediaEquals(expected: MediaMessage, actual: MediaMessage?) {
        assertNotNull(actual)
        actual!!
        assertEquals(expected.attachment.kind, actual.attachment.kind)
        assertArrayEquals(expected.attachment.blobId, actual.attachment.blobId)
        assertArrayEquals(expected.attachment.mediaKey, actual.attachment.mediaKey)
        assertArrayEquals(expected.attachment.fileSha256, actual.attachment.fileSha256)
        assertArrayEquals(expected.attachment.fileEncSha256, actual.attachment.fileEncSha256)
        assertEquals(expected.attachment.fileLength, actual.attachment.fileLength)
        assertEquals(expected.mimeType, actual.mimeType)
        assertEquals(expected.fileName, actual.fileName)
        assertEquals(expected.caption, actual.caption)
        assertArrayEquals(expected.thumbnail, actual.thumbnail)
        assertEquals(expected.width, actual.width)
        assertEquals(expected.height, actual.height)
    }

    @Test
    fun wrongDatabaseKeyIsATypedError() {
        val db = "keyed.db"
        open(db, ByteArray(32) { 1 }).close()
        val err = assertThrows<PawlException> { open(db, ByteArray(32) { 2 }) }
        assertTrue(err is PawlException.WrongDatabaseKey, "got $err")
        assertEquals(2u, err.code)
        assertEquals(ErrorCode.WRONG_DATABASE_KEY, err.errorCode)
        assertTrue(err.detail.isNotEmpty()) // the extension on the base class
        assertTrue(err.message!!.startsWith("code=2"), err.message)
        // The right key still opens it.
        open(db, ByteArray(32) { 1 }).close()
    }

    @Test
    fun badArgumentsAreTypedErrors() {
        val short = assertThrows<PawlException.InvalidArgument> { open("short.db", ByteArray(31) { 1 }) }
        assertEquals(ErrorCode.INVALID_ARGUMENT.code, short.code)
        assertThrows<PawlException.InvalidArgument> {
            PawlClient.open(File(tmp, "pin.db").path, ByteArray(32) { 1 }, relay.url, "short pin".toByteArray())
        }
        open("fresh.db").use { client ->
            val notRegistered = assertThrows<PawlException.NotRegistered> { client.address() }
            assertEquals(3u, notRegistered.code)
            assertThrows<PawlException.InvalidArgument> { client.messageStatus(12345L) }
            assertTrue(client.messages("+4915100000001", 10u).isEmpty())
        }
    }

    @Test
    fun relayRefusalCarriesTheRelayCode(): Unit = runBlocking {
        val phone = "+4915100000053"
        open("carol.db").use { client ->
            client.requestCode(phone)
            val right = relay.codeFor(phone)
            val wrong = if (right != "000000") "000000" else "111111"
            val err = assertThrows<PawlException.Relay> { runBlocking { client.verifyCode(phone, wrong) } }
            assertEquals(ErrorCode.RELAY.code, err.code)
            assertTrue(err.relayCode.isNotEmpty()) // the relay's own code, e.g. "BadCode"
        }
    }

    @Test
    fun wrongPinIsATlsError(): Unit = runBlocking {
        PawlClient.open(File(tmp, "pin.db").path, key(), relay.url, ByteArray(32)).use { client ->
            val err = assertThrows<PawlException.Tls> { runBlocking { client.requestCode("+4915100000054") } }
            assertEquals(6u, err.code)
        }
    }

    @Test
    fun versionAndPinHelpers() {
        assertEquals(2, version().count { it == '.' })
        val abc = "abc".toByteArray()
        assertArrayEquals(MessageDigest.getInstance("SHA-256").digest(abc), certSha256(abc))
        assertEquals(ErrorCode.DUPLICATE_MESSAGE, ErrorCode.of(14u))
        assertNull(ErrorCode.of(1000u))
    }

    /** An exception in the app's listener drops that event only; events from before the
     *  listener was set are kept for it. */
    @Test
    fun listenerExceptionsDoNotStopEvents(): Unit = runBlocking {
        class Flaky : EventListener {
            val queue = EventChannel()
            @Volatile var calls = 0
            override fun onEvent(event: ClientEvent) {
                calls += 1
                if (calls == 1) {
                    System.err.println("(ScenarioTest: the listener throws once on purpose; Pawl reports it as a caught panic)")
                    throw RuntimeException("listener bug")
                }
                queue.onEvent(event)
            }
        }
        // Not registered: the connection task reports Disconnected and retries.
        open("flaky.db").use { client ->
            client.start()
            delay(300) // events queue up before any listener is set
            val listener = Flaky()
            client.setListener(listener)
            val event = listener.queue.waitFor { it is ClientEvent.Disconnected } as ClientEvent.Disconnected
            assertTrue("not registered" in event.reason, event.reason)
            assertTrue(listener.calls >= 2)
            client.shutdown()
        }
    }

    /** The Flow form of the listener: collecting sets it, events arrive in order. */
    @Test
    fun eventsFlow(): Unit = runBlocking {
        open("flow.db").use { client ->
            client.start()
            val event = withTimeout(20.seconds) { client.events().first { it is ClientEvent.Disconnected } }
            assertTrue("not registered" in (event as ClientEvent.Disconnected).reason)
            client.shutdown()
        }
    }

    companion object {
        const val ALICE = "+4915100000061"
        const val BOB = "+4915100000062"
    }
}
