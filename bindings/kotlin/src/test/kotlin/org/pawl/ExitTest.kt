package org.pawl

import java.io.File
import java.nio.file.Files
import java.util.concurrent.TimeUnit
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.params.ParameterizedTest
import org.junit.jupiter.params.provider.ValueSource

/**
 * A JVM ends cleanly while clients are still running and calling their listeners
 * (same as bindings/python/tests/test_exit.py): by returning from main (the JVM waits
 * for its non-daemon threads, so a Pawl thread attached as one would hang it) and by
 * System.exit.
 */
class ExitTest {
    @ParameterizedTest
    @ValueSource(strings = ["return", "exit"])
    fun exitWithLiveClientsAndListenersIsClean(how: String) {
        val cp = System.getProperty("pawl.test.classpath") ?: error("-Dpawl.test.classpath not set (run-tests.sh sets it)")
        val java = File(System.getProperty("java.home"), "bin/java").path
        repeat(3) {
            val proc = ProcessBuilder(
                java, "-cp", cp,
                "-Djna.library.path=${System.getProperty("jna.library.path")}",
                "org.pawl.ExitProbe", how,
            ).redirectErrorStream(true).start()
            val finished = proc.waitFor(60, TimeUnit.SECONDS)
            if (!finished) proc.destroyForcibly()
            val out = proc.inputStream.readBytes().decodeToString()
            assertTrue(finished, "the JVM did not exit ($how): $out")
            assertEquals(0, proc.exitValue(), out)
            assertTrue(out.trim().endsWith("exiting"), out)
        }
    }
}

/** The child JVM of [ExitTest]: six unregistered clients (so the connection task
 *  reports Disconnected and retries), each with a listener, then the end of main. */
object ExitProbe {
    @JvmStatic
    fun main(args: Array<String>) {
        val dir = Files.createTempDirectory("pawl-exit").toFile()
        val clients = (0 until 6).map { i ->
            PawlClient.open(File(dir, "$i.db").path, ByteArray(32) { i.toByte() }, "ws://127.0.0.1:9/v1/ws", null).also {
                it.setListener(object : EventListener {
                    override fun onEvent(event: ClientEvent) {}
                })
                it.start()
            }
        }
        Thread.sleep(200)
        check(clients.size == 6)
        println("exiting")
        System.out.flush()
        if (args.firstOrNull() == "exit") System.exit(0)
    }
}
