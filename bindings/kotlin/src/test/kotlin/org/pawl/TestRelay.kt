package org.pawl

import java.io.File
import java.net.InetSocketAddress
import java.net.ServerSocket
import java.net.Socket
import java.nio.file.Files

/**
 * A pawl-relay process on loopback with a self-signed certificate, shared by the tests
 * of this JVM (started on first use, stopped at exit). The binary comes from the
 * system property `pawl.relay.bin` or the environment variable PAWL_RELAY_BIN
 * (run-tests.sh sets the property).
 */
object TestRelay {
    class Relay(val url: String, val pin: ByteArray, private val codes: File, val log: File) {
        /** The registration code the relay wrote for [phone]. */
        fun codeFor(phone: String): String = File(codes, "$phone.code").readText().trim()

        /** A client of this relay with its database [name] in [dir], under a random key. */
        fun open(dir: File, name: String): PawlClient =
            PawlClient.open(File(dir, name).path, ByteArray(32).also { java.security.SecureRandom().nextBytes(it) }, url, pin)

        /** Register [client] as [phone] with the code the relay wrote, start it, wait for its prekeys. */
        suspend fun register(client: PawlClient, phone: String, events: EventChannel) {
            client.requestCode(phone)
            client.verifyCode(phone, codeFor(phone))
            client.start()
            events.waitFor { it is ClientEvent.PreKeysUploaded }
        }
    }

    val relay: Relay by lazy { start() }

    private fun binary(): File {
        val path = System.getProperty("pawl.relay.bin") ?: System.getenv("PAWL_RELAY_BIN")
            ?: error("set -Dpawl.relay.bin or PAWL_RELAY_BIN to the pawl-relay binary (run-tests.sh does)")
        return File(path).also { check(it.canExecute()) { "$it is not an executable pawl-relay" } }
    }

    private fun freePort(): Int = ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress()).use { it.localPort }

    private fun start(): Relay {
        val bin = binary()
        val dir = Files.createTempDirectory("pawl-kotlin-relay").toFile()
        val codes = File(dir, "codes").apply { mkdir() }
        val pem = File(dir, "relay.pem")
        val log = File(dir, "relay.log")
        var lastFailure = ""
        // A port picked as free can be taken before the relay binds it: retry then.
        repeat(3) {
            pem.delete()
            val port = freePort()
            val proc = ProcessBuilder(
                bin.path,
                "--db", "sqlite:${File(dir, "relay.db")}",
                "--listen", "127.0.0.1:$port",
                "--tls-self-signed", pem.path,
                "--code-dir", codes.path,
            ).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectError(ProcessBuilder.Redirect.appendTo(log))
                .start()
            Runtime.getRuntime().addShutdownHook(Thread {
                proc.destroy()
                if (!proc.waitFor(10, java.util.concurrent.TimeUnit.SECONDS)) proc.destroyForcibly()
            })
            val deadline = System.nanoTime() + 20_000_000_000L
            while (System.nanoTime() < deadline) {
                if (!proc.isAlive) break
                if (pem.length() > 0 && canConnect(port)) {
                    // The pin: SHA-256 of the certificate's DER encoding.
                    return Relay("wss://127.0.0.1:$port/v1/ws", pinFromPem(pem.readText()), codes, log)
                }
                Thread.sleep(50)
            }
            proc.destroyForcibly()
            lastFailure = if (log.exists()) log.readText() else "(no log)"
        }
        error("pawl-relay did not start: $lastFailure")
    }

    private fun canConnect(port: Int): Boolean = try {
        Socket().use { it.connect(InetSocketAddress("127.0.0.1", port), 1000) }
        true
    } catch (e: java.io.IOException) {
        false
    }
}
