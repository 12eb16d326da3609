# Sourced by run-tests.sh and bench.sh: the Kotlin toolchain, installed when missing.
#
# - JNA and the JUnit 5 console launcher from Debian (apt-get, only when missing);
# - kotlinc 2.4.20 from npm (the full JetBrains distribution, which also ships
#   kotlinx-coroutines-core-jvm.jar in its lib/) into PAWL_KOTLIN_HOME, by default
#   ${XDG_CACHE_HOME:-$HOME/.cache}/pawl/kotlin, outside the repository; reused when
#   present.
#
# Sets KOTLINC, KOTLIN_LIB, JNA_JAR, JUNIT_JAR and KOTLIN_RUNTIME_CP (stdlib,
# coroutines, JNA: what the binding needs at run time).

PAWL_KOTLINC_VERSION=2.4.20

pawl_kotlin_toolchain() {
    JNA_JAR=/usr/share/java/jna.jar
    JUNIT_JAR=/usr/share/java/junit-platform-console-standalone.jar
    if [ ! -e "$JNA_JAR" ] || [ ! -e "$JUNIT_JAR" ]; then
        echo "== apt-get install libjna-java junit5"
        local sudo=""
        [ "$(id -u)" = 0 ] || sudo="sudo"
        export DEBIAN_FRONTEND=noninteractive
        if ! $sudo apt-get install -y -q --no-install-recommends libjna-java junit5 </dev/null; then
            $sudo apt-get update -q </dev/null
            $sudo apt-get install -y -q --no-install-recommends libjna-java junit5 </dev/null
        fi
    fi
    command -v java >/dev/null || { echo "java (a JDK >= 17) is needed" >&2; return 1; }

    local home="${PAWL_KOTLIN_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/pawl/kotlin}"
    local dist="$home/node_modules/kotlin-compiler"
    if [ ! -x "$dist/bin/kotlinc" ] || [ "$(cat "$home/.version" 2>/dev/null)" != "$PAWL_KOTLINC_VERSION" ]; then
        echo "== npm install kotlin-compiler@$PAWL_KOTLINC_VERSION into $home"
        mkdir -p "$home"
        (cd "$home" && npm install --no-audit --no-fund --no-save --loglevel=error \
            "kotlin-compiler@$PAWL_KOTLINC_VERSION" </dev/null)
        chmod +x "$dist/bin/"* 2>/dev/null || true
        echo "$PAWL_KOTLINC_VERSION" >"$home/.version"
    fi
    KOTLINC="$dist/bin/kotlinc"
    KOTLIN_LIB="$dist/lib"
    local f
    for f in kotlin-stdlib.jar kotlinx-coroutines-core-jvm.jar; do
        [ -e "$KOTLIN_LIB/$f" ] || { echo "$KOTLIN_LIB/$f missing" >&2; return 1; }
    done
    KOTLIN_RUNTIME_CP="$KOTLIN_LIB/kotlin-stdlib.jar:$KOTLIN_LIB/kotlinx-coroutines-core-jvm.jar:$JNA_JAR"
}

# pawl_compile_jar OUT.jar CLASSPATH SRC_DIR... : compile the .kt files under the
# source directories into OUT.jar, unless it is already built from exactly these
# sources, this classpath and this compiler (kotlinc takes tens of seconds).
pawl_compile_jar() {
    local out="$1" cp="$2"
    shift 2
    local srcs
    srcs="$(find "$@" -name '*.kt' | LC_ALL=C sort)"
    [ -n "$srcs" ] || { echo "no Kotlin sources in $*" >&2; return 1; }
    local stamp
    # shellcheck disable=SC2086
    stamp="$( { echo "$PAWL_KOTLINC_VERSION $cp"; sha256sum $srcs; for j in ${cp//:/ }; do [ -f "$j" ] && sha256sum "$j"; done; } | sha256sum | cut -d' ' -f1)"
    if [ -f "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$stamp" ]; then
        echo "   $(basename "$out"): up to date"
        return 0
    fi
    echo "   $(basename "$out"): kotlinc $(echo "$srcs" | wc -l) files"
    rm -f "$out" "$out.stamp"
    # shellcheck disable=SC2086
    "$KOTLINC" -nowarn -jvm-target 17 -cp "$cp" -d "$out" $srcs
    echo "$stamp" >"$out.stamp"
}
