package org.pawl

import org.junit.jupiter.api.Assertions

/** `assertThrows<T> { ... }`: Debian's JUnit 5 jars leave out JUnit's Kotlin helpers. */
inline fun <reified T : Throwable> assertThrows(noinline body: () -> Unit): T =
    Assertions.assertThrows(T::class.java) { body() }
