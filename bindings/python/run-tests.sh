#!/usr/bin/env bash
# The Python suite: build the library and the bindings once, install the package into
# a venv outside the repository (created on first use), start nothing else: the tests
# start their own pawl-relay on loopback. Idempotent; extra arguments go to pytest.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
venv="${PAWL_PYTHON_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/pawl/venv}"

# (Re)install the test requirements when the venv is new or the list changed.
if [ ! -x "$venv/bin/python" ]; then
    echo "== python venv at $venv"
    python3 -m venv "$venv"
fi
if ! cmp -s "$here/requirements-test.txt" "$venv/.pawl-requirements-test.txt"; then
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$here/requirements-test.txt"
    cp "$here/requirements-test.txt" "$venv/.pawl-requirements-test.txt"
fi

echo "== python bindings: build"
bash "$here/build.sh"
# shellcheck source=../lib.sh
. "$here/../lib.sh"
relay="$(pawl_relay_bin)"
# Install the package as an app would (a regular, non-editable install of the folder).
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-build-isolation \
    --no-deps --force-reinstall "$here"
rm -rf "$here/build" "$here"/*.egg-info

echo "== python bindings: pytest"
export PAWL_RELAY_BIN="$relay"
cd "$here"
exec "$venv/bin/pytest" -q -p no:cacheprovider tests "$@"
