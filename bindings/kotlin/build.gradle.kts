// Pawl for Android: an AAR with the uniffi-generated Kotlin binding (package org.pawl),
// the hand-written conveniences (src/main/kotlin) and libpawl_ffi.so for each ABI
// (src/main/jniLibs/<abi>/, built with cargo-ndk by build-android.sh).
//
// Before the first Gradle build (and after every change to the Rust code):
//
//     bindings/kotlin/build-android.sh        # needs the Android NDK and cargo-ndk
//
// then `./gradlew assembleRelease` gives build/outputs/aar/pawl-release.aar.
// The generated Kotlin lives in generated/kotlin/ (git-ignored).
//
// Not run in Pawl's CI (no Maven repositories there); the tests run with run-tests.sh.

plugins {
    id("com.android.library") version "8.7.3"
    id("org.jetbrains.kotlin.android") version "2.1.20"
}

group = "org.pawl"
version = "0.1.0"

// Written by build.sh (outside build/, so `gradle clean` keeps it).
val generatedKotlin = layout.projectDirectory.dir("generated/kotlin")

android {
    namespace = "org.pawl"
    compileSdk = 35

    defaultConfig {
        minSdk = 24
        // JNA finds its classes and ours by reflection: keep them in apps that shrink.
        consumerProguardFiles("consumer-rules.pro")
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    sourceSets {
        getByName("main") {
            kotlin.srcDir(generatedKotlin.asFile)
            // jniLibs: the default src/main/jniLibs/<abi>/libpawl_ffi.so
        }
        // The JUnit 5 suite (src/test/kotlin) needs a host build of the library and a
        // pawl-relay binary; it runs with run-tests.sh, not as Android unit tests.
        getByName("test") {
            kotlin.setSrcDirs(emptyList<String>())
            java.setSrcDirs(emptyList<String>())
        }
    }
}

kotlin {
    compilerOptions {
        jvmTarget.set(org.jetbrains.kotlin.gradle.dsl.JvmTarget.JVM_17)
    }
}

dependencies {
    // The generated binding calls the library through JNA; the @aar artifact carries
    // JNA's own native dispatch library (libjnidispatch.so) for each Android ABI.
    api("net.java.dev.jna:jna:5.17.0@aar")
    // PawlClient's network calls are suspend functions; events() is a Flow.
    api("org.jetbrains.kotlinx:kotlinx-coroutines-core:1.10.2")
}

// A clear error instead of hundreds of "unresolved reference" lines when the
// generated sources or the native libraries are missing.
val checkPawlNative by tasks.registering {
    val kt = generatedKotlin.file("org/pawl/pawl_ffi.kt").asFile
    val jniLibs = layout.projectDirectory.dir("src/main/jniLibs").asFile
    doLast {
        if (!kt.exists() || jniLibs.walkTopDown().none { it.name == "libpawl_ffi.so" }) {
            throw GradleException(
                "Pawl: run bindings/kotlin/build-android.sh first (generates $kt and " +
                    "src/main/jniLibs/<abi>/libpawl_ffi.so)",
            )
        }
    }
}
tasks.named("preBuild") { dependsOn(checkPawlNative) }
