package org.pawl

import java.io.File
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir

/**
 * Groups from Kotlin: Alice creates a group with Bob and Carol, both get the update and
 * the message in the group's chat, a non-admin cannot rename it, and after Carol is
 * removed she gets nothing sent to the group.
 */
class GroupsTest {
    @TempDir
    lateinit var tmp: File

    private val relay get() = TestRelay.relay

    private fun open(name: String): PawlClient = relay.open(tmp, name)

    @Test
    fun aGroupWithARemoval(): Unit = runBlocking {
        withTimeout(120.seconds) {
            val users = listOf(ALICE, BOB, CAROL).map { number ->
                val c = open("$number.db")
                val events = EventChannel()
                c.setListener(events)
                relay.register(c, number, events)
                Pair(c, events)
            }
            val (alice, _) = users[0]
            val (bob, bEvents) = users[1]
            val (carol, cEvents) = users[2]

            val g = alice.createGroup("Climbing", listOf(BOB, CAROL))
            assertEquals(16, g.id.size)
            assertEquals(listOf(ALICE, BOB, CAROL).sorted(), g.members)
            assertEquals(listOf(ALICE), g.admins)
            for ((c, events) in listOf(Pair(bob, bEvents), Pair(carol, cEvents))) {
                val u = events.waitFor { it is ClientEvent.GroupUpdated } as ClientEvent.GroupUpdated
                assertArrayEquals(g.id, u.groupId)
                val got = c.group(g.id)!!
                assertEquals(Triple("Climbing", 1uL, u.chatId), Triple(got.name, got.version, got.chatId))
            }

            alice.sendGroupText(g.id, "hello group")
            for ((c, events) in listOf(Pair(bob, bEvents), Pair(carol, cEvents))) {
                val m = events.waitFor { it is ClientEvent.Message } as ClientEvent.Message
                assertEquals(Pair("hello group", ALICE), Pair(m.message.text, m.message.sender))
                assertEquals(listOf("hello group"), c.messages(g.peer, 10u).map { it.text })
            }

            val err = assertThrows<PawlException.InvalidArgument> { runBlocking { bob.renameGroup(g.id, "Bob's") } }
            assertEquals(ErrorCode.INVALID_ARGUMENT, (err as PawlException).errorCode)

            val g2 = alice.removeGroupMembers(g.id, listOf(CAROL))
            assertEquals(listOf(ALICE, BOB).sorted(), g2.members)
            cEvents.waitFor { it is ClientEvent.GroupUpdated }
            assertFalse(carol.group(g.id)!!.isMember)
            bEvents.waitFor { it is ClientEvent.GroupUpdated }
            alice.sendGroupText(g.id, "without carol")
            val m = bEvents.waitFor { it is ClientEvent.Message } as ClientEvent.Message
            assertEquals("without carol", m.message.text)
            delay(300)
            assertEquals(listOf("hello group"), carol.messages(g.peer, 10u).map { it.text })
            assertTrue(alice.groups().any { it.id.contentEquals(g.id) })
            for ((c, _) in users) c.shutdown()
        }
    }

    companion object {
        const val ALICE = "+4915100000081"
        const val BOB = "+4915100000082"
        const val CAROL = "+4915100000083"
    }
}
