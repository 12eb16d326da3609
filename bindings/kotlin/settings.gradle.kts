// Pawl's Android library (AAR) as a standalone Gradle build. Apps use it as an included
// build (see README.md): `includeBuild("path/to/pawl/bindings/kotlin")` in the app's
// settings.gradle.kts, then `implementation("org.pawl:pawl:0.1.0")`.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "pawl"
