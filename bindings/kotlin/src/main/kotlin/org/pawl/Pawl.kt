// Hand-written conveniences over the uniffi-generated binding (generated/kotlin/
// org/pawl/pawl_ffi.kt, same package):
//
// - ErrorCode names the stable numeric codes every PawlException carries;
//   PawlException.code / .errorCode / .detail read them off any variant;
// - EventChannel is an EventListener that hands events to coroutines (a Channel),
//   PawlClient.events() the same as a cold Flow;
// - pinFromPem computes the certificate pin PawlClient.open takes.

package org.pawl

import java.util.Base64
import kotlin.time.Duration
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.ReceiveChannel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.withTimeout

/** The stable numeric codes of [PawlException] (`e.code`); never renumbered or reused. */
enum class ErrorCode(val code: UInt) {
    INVALID_ARGUMENT(1u),
    WRONG_DATABASE_KEY(2u),
    NOT_REGISTERED(3u),
    NOT_CONNECTED(4u),
    RELAY(5u),
    TLS(6u),
    CONFIG(7u),
    TRANSPORT(8u),
    PROTOCOL(9u),
    UNTRUSTED_IDENTITY(10u),
    NO_SESSION(11u),
    STORE(12u),
    DATABASE_BUSY(13u),
    DUPLICATE_MESSAGE(14u),
    INTERNAL(99u);

    companion object {
        /** The code's name, or null for a code this version does not know yet. */
        fun of(code: UInt): ErrorCode? = entries.firstOrNull { it.code == code }
    }
}

/** The stable numeric code of any [PawlException] variant (see [ErrorCode]). */
val PawlException.code: UInt
    get() = when (this) {
        is PawlException.InvalidArgument -> code
        is PawlException.WrongDatabaseKey -> code
        is PawlException.NotRegistered -> code
        is PawlException.NotConnected -> code
        is PawlException.Relay -> code
        is PawlException.Tls -> code
        is PawlException.Config -> code
        is PawlException.Transport -> code
        is PawlException.Protocol -> code
        is PawlException.UntrustedIdentity -> code
        is PawlException.NoSession -> code
        is PawlException.Store -> code
        is PawlException.DatabaseBusy -> code
        is PawlException.DuplicateMessage -> code
        is PawlException.Internal -> code
    }

/** [code] as an [ErrorCode] (null only for a code added after this binding). */
val PawlException.errorCode: ErrorCode?
    get() = ErrorCode.of(code)

/** Pawl's own message for logs (English; not for parsing). */
val PawlException.detail: String
    get() = when (this) {
        is PawlException.InvalidArgument -> detail
        is PawlException.WrongDatabaseKey -> detail
        is PawlException.NotRegistered -> detail
        is PawlException.NotConnected -> detail
        is PawlException.Relay -> detail
        is PawlException.Tls -> detail
        is PawlException.Config -> detail
        is PawlException.Transport -> detail
        is PawlException.Protocol -> detail
        is PawlException.UntrustedIdentity -> detail
        is PawlException.NoSession -> detail
        is PawlException.Store -> detail
        is PawlException.DatabaseBusy -> detail
        is PawlException.DuplicateMessage -> detail
        is PawlException.Internal -> detail
    }

/**
 * An [EventListener] that hands the client's events to coroutines.
 *
 * Pawl calls [onEvent] on one of its own threads, in order; this puts the event on an
 * unbounded [Channel] (never blocks that thread, never drops):
 *
 * ```
 * val events = EventChannel()
 * client.setListener(events)
 * for (event in events.channel) { if (event is ClientEvent.Message) show(event.message) }
 * ```
 */
class EventChannel : EventListener, AutoCloseable {
    private val queue = Channel<ClientEvent>(Channel.UNLIMITED)

    /** The events, in order. */
    val channel: ReceiveChannel<ClientEvent> get() = queue

    override fun onEvent(event: ClientEvent) { // on a Pawl thread
        queue.trySend(event)
    }

    /** The next event. */
    suspend fun receive(): ClientEvent = queue.receive()

    /**
     * The next event for which [predicate] is true (earlier ones are consumed and
     * skipped); a [kotlinx.coroutines.TimeoutCancellationException] after [timeout].
     */
    suspend fun waitFor(timeout: Duration = 20.seconds, predicate: (ClientEvent) -> Boolean): ClientEvent =
        withTimeout(timeout) {
            var event = queue.receive()
            while (!predicate(event)) event = queue.receive()
            event
        }

    /** Stop: later events are dropped, [channel] ends. */
    override fun close() {
        queue.close()
    }
}

/**
 * The client's events as a cold [Flow]: collecting it sets a listener (replacing any
 * other), cancelling the collection clears it. Buffered without limit, so Pawl's thread
 * never waits for the collector.
 */
fun PawlClient.events(): Flow<ClientEvent> = callbackFlow {
    setListener(object : EventListener {
        override fun onEvent(event: ClientEvent) {
            trySend(event)
        }
    })
    awaitClose { clearListener() }
}.buffer(Channel.UNLIMITED)

/** SHA-256 of the DER encoding of a PEM certificate: the relay pin for [PawlClient.open]. */
fun pinFromPem(pem: String): ByteArray {
    val begin = "-----BEGIN CERTIFICATE-----"
    val start = pem.indexOf(begin)
    val end = pem.indexOf("-----END CERTIFICATE-----", start + 1)
    require(start >= 0 && end > start) { "no PEM certificate found" }
    val b64 = pem.substring(start + begin.length, end).filterNot { it.isWhitespace() }
    return certSha256(Base64.getDecoder().decode(b64))
}
