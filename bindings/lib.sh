# Sourced by every binding's build.sh / run-tests.sh: where the built library and the
# relay come from. One definition for all four languages.
#
#   PAWL_LIB_DIR=<dir>   take libpawl_ffi, uniffi-bindgen, pawl-capi-gen and pawl-relay
#                        from <dir>: no cargo at all
#   otherwise            cargo builds them in CARGO_TARGET_DIR (default: the workspace's
#                        target/); PAWL_PROFILE=release for a release library

PAWL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# The host's library file name.
pawl_lib_name() {
    case "$(uname -s)" in
        Darwin) echo libpawl_ffi.dylib ;;
        MINGW* | MSYS* | CYGWIN*) echo pawl_ffi.dll ;;
        *) echo libpawl_ffi.so ;;
    esac
}

# The cargo target directory (absolute).
pawl_target() {
    local target="${CARGO_TARGET_DIR:-$PAWL_ROOT/target}"
    case "$target" in /*) ;; *) target="$PAWL_ROOT/$target" ;; esac
    echo "$target"
}

# The directory holding the library and the generator binaries (building them first
# unless PAWL_LIB_DIR names one); checks that the files named as arguments are there.
pawl_lib_dir() {
    local dir
    if [ -n "${PAWL_LIB_DIR:-}" ]; then
        dir="$(cd "$PAWL_LIB_DIR" && pwd)"
    else
        local flags=(-p pawl-ffi --features cli --locked)
        [ "${PAWL_PROFILE:-debug}" = release ] && flags+=(--release)
        (cd "$PAWL_ROOT" && cargo build "${flags[@]}" >&2)
        dir="$(pawl_target)/${PAWL_PROFILE:-debug}"
    fi
    local f
    for f in "$@"; do
        [ -e "$dir/$f" ] || { echo "bindings: $dir/$f missing" >&2; return 1; }
    done
    echo "$dir"
}

# The pawl-relay binary the tests start (a debug build unless PAWL_LIB_DIR names one).
pawl_relay_bin() {
    local relay
    if [ -n "${PAWL_LIB_DIR:-}" ]; then
        relay="$(cd "$PAWL_LIB_DIR" && pwd)/pawl-relay"
    else
        (cd "$PAWL_ROOT" && cargo build -p pawl-relay --locked >&2)
        relay="$(pawl_target)/debug/pawl-relay"
    fi
    [ -x "$relay" ] || { echo "bindings: $relay missing" >&2; return 1; }
    echo "$relay"
}

# For the chroot scripts: what a run mounts goes in `mounted`; everything in it is
# unmounted, last first, when the script exits (an interrupt or TERM included).
pawl_unmount_on_exit() {
    mounted=()
    trap pawl_unmount_all EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}
pawl_unmount_all() {
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        umount "${mounted[$i]}" 2>/dev/null || umount -l "${mounted[$i]}" 2>/dev/null || true
    done
}
