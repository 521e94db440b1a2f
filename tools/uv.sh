#!/usr/bin/env bash
# Run the uv pinned in tools/uv-requirements.txt, with this repo as the project and
# .venv as its environment. The first call installs that uv, hash-checked, into a
# machine-wide tools dir (like the pulumi engine), so a fresh clone reuses it.
#
# usage: tools/uv.sh ARGS...          e.g.
#   tools/uv.sh lock --upgrade                  upgrade every pin in uv.lock (then ./setup.sh)
#   tools/uv.sh lock --upgrade-package typer    upgrade one package
#   tools/uv.sh lock                            re-lock after editing pyproject's dependencies
#   tools/uv.sh tree                            what pulls in what
# To move to another uv itself:
#   echo "uv==X.Y.Z" | tools/uv.sh pip compile - --generate-hashes --no-header --no-annotate -o tools/uv-requirements.txt
# Environment: SKYPLAN_TOOLS_DIR overrides the tools dir; PYTHON picks the interpreter
# whose pip installs uv (default: .venv/bin/python, else python3).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
req="$here/uv-requirements.txt"

version="$(sed -n 's/^uv==\([^ ]*\).*/\1/p' "$req")"
[ -n "$version" ] || { echo "uv.sh: no uv==VERSION line in $req" >&2; exit 1; }
tools="${SKYPLAN_TOOLS_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/skyplan/tools}"
dir="$tools/uv-$version"
uv="$dir/bin/uv"

if [ ! -x "$uv" ]; then
    py="${PYTHON:-}"
    if [ -z "$py" ]; then
        if [ -x "$repo/.venv/bin/python" ]; then py="$repo/.venv/bin/python"; else py=python3; fi
    fi
    mkdir -p "$tools"
    tmp="$(mktemp -d "$tools/.uv-$version.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    if ! "$py" -m pip install --quiet --disable-pip-version-check --no-deps --only-binary :all: \
        --require-hashes --target "$tmp" -r "$req" >&2; then
        echo "uv.sh: could not install uv $version with $py -m pip (is PyPI reachable?)" >&2
        exit 1
    fi
    # Atomic: two setups at once each install, one rename wins, the other is discarded.
    mv -T "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp"
    trap - EXIT
    [ -x "$uv" ] || { echo "uv.sh: uv $version did not install a bin/uv into $dir" >&2; exit 1; }
fi

cd "$repo"
# Never fetch an interpreter (setup checks for 3.11); this repo's .venv is the environment.
export UV_PYTHON_DOWNLOADS=never
export UV_PROJECT_ENVIRONMENT="$repo/.venv"
exec "$uv" "$@"
