package org.pawl

import java.io.File
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir

/**
 * Multi-device from Kotlin: a desktop shows a link code, the phone links it, both of
 * Alice's devices get Bob's message, an archived chat and a contact name sync, the phone
 * unlinks it; a malformed code is a typed error.
 */
class LinkingTest {
    @TempDir
    lateinit var tmp: File

    private val relay get() = TestRelay.relay

    private fun open(name: String): PawlClient = relay.open(tmp, name)

    @Test
    fun aDesktopIsLinkedByItsCode(): Unit = runBlocking {
        withTimeout(120.seconds) {
            val phone = open("phone.db")
            val bob = open("bob.db")
            val desktop = open("desktop.db")
            val pEvents = EventChannel()
            val bEvents = EventChannel()
            val dEvents = EventChannel()
            phone.setListener(pEvents)
            bob.setListener(bEvents)
            desktop.setListener(dEvents)
            for ((c, number, events) in listOf(Triple(phone, ALICE, pEvents), Triple(bob, BOB, bEvents))) {
                relay.register(c, number, events)
            }

            phone.sendText(BOB, "before the desktop")
            bEvents.waitFor { it is ClientEvent.Message }

            val linking = desktop.startLinking()
            val code = linking.nextCode()!!
            assertTrue(code.code.startsWith("pawl-link:1,"))
            assertArrayEquals(byteArrayOf(0x89.toByte(), 'P'.code.toByte(), 'N'.code.toByte(), 'G'.code.toByte()), code.qrPng.copyOf(4))
            assertArrayEquals(desktop.identityKey(), parseLinkCode(code.code).identityKey)
            assertEquals(2u, phone.linkDevice(code.code))
            assertEquals(Address(ALICE, 2u), linking.finished())
            desktop.start()
            dEvents.waitFor { it is ClientEvent.Connected }
            val linked = pEvents.waitFor { it is ClientEvent.DeviceLinked } as ClientEvent.DeviceLinked
            assertEquals(2u, linked.deviceId)
            val h = dEvents.waitFor { it is ClientEvent.HistorySynced } as ClientEvent.HistorySynced
            assertEquals(Triple(1u, 1u, 1u), Triple(h.chunksDone, h.chunks, h.messages))
            assertEquals(listOf("before the desktop"), desktop.messages(BOB, 10u).map { it.text })

            bob.sendText(ALICE, "to both devices")
            for (events in listOf(pEvents, dEvents)) {
                val m = events.waitFor { it is ClientEvent.Message && it.message.text == "to both devices" } as ClientEvent.Message
                assertEquals(BOB, m.message.sender)
            }
            assertEquals(listOf(2u), phone.ownDevices())

            desktop.setArchived(BOB, true)
            desktop.setContactName(BOB, "Bob")
            repeat(200) {
                phone.syncAppState()
                if (phone.chatState(BOB).archived && phone.contactName(BOB) == "Bob") return@repeat
                delay(50)
            }
            assertTrue(phone.chatState(BOB).archived)
            assertEquals("Bob", phone.contactName(BOB))

            phone.unlinkDevice(2u)
            assertEquals(emptyList<UInt>(), phone.ownDevices())

            val err = assertThrows<PawlException.InvalidArgument> { parseLinkCode("not a link code") }
            assertEquals(ErrorCode.INVALID_ARGUMENT, (err as PawlException).errorCode)
            for (c in listOf(phone, bob, desktop)) c.shutdown()
        }
    }

    companion object {
        const val ALICE = "+4915100000091"
        const val BOB = "+4915100000092"
    }
}
