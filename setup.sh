#!/usr/bin/env bash
# One-command setup on a fresh machine that has Python 3.11 and Go 1.24+:
#   1. a venv in .venv (kept if present)
#   2. skyplan installed editable with its cloud SDKs, test and bench tools, exactly as uv.lock
#      pins them (uv itself is pinned by hash in tools/uv-requirements.txt), then
#      byte-compiled
#   3. the pulumi CLI built from Go modules into skyplan's engine dir, with the
#      dynamic-provider shim (tools/build-pulumi.sh; shared by every checkout on
#      the machine, so later runs take seconds)
# Safe to re-run. Environment: PYTHON picks the interpreter for a new venv.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
repo="$(pwd)"
venv="$repo/.venv"

step() { printf '==> %s\n' "$*"; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

# 1. venv ---------------------------------------------------------------------------
if [ ! -x "$venv/bin/python" ]; then
    py="${PYTHON:-}"
    if [ -z "$py" ]; then
        for cand in python3.11 python3; do
            if command -v "$cand" >/dev/null 2>&1 &&
                "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
                py="$cand"
                break
            fi
        done
    fi
    [ -n "$py" ] || die "Python 3.11 not found (set PYTHON=/path/to/python3.11)"
    step "creating .venv with $("$py" --version 2>&1)"
    "$py" -m venv "$venv"
fi
python="$venv/bin/python"
"$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' ||
    die ".venv is not Python 3.11; remove it and re-run"

# 2. the package, from the lock -------------------------------------------------------------
# uv.lock pins every dependency, direct and transitive, with hashes; `--locked` refuses a
# lock that no longer matches pyproject.toml. Site-packages are byte-compiled here because
# PYTHONDONTWRITEBYTECODE=1 (set on these machines and in CI) would otherwise leave every
# start-up compiling them again. A re-run re-syncs only when the lock, pyproject or the uv
# pin changed since the last sync (the stamp), or the venv drifted from the lock (`--check`,
# ~60 ms: e.g. a package installed by hand); the full sync's compile pass takes a second even
# when nothing changed.
stamp="$venv/.skyplan-setup"
want="$(cat pyproject.toml uv.lock tools/uv-requirements.txt | "$python" -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')"
sync=(sync --locked --extra clouds --extra test --extra bench)
if [ "$(cat "$stamp" 2>/dev/null || true)" = "$want" ] &&
    PYTHON="$python" bash tools/uv.sh "${sync[@]}" --check >/dev/null 2>&1; then
    step "skyplan already installed in .venv, as uv.lock pins it"
else
    step "installing skyplan and its locked dependencies into .venv (uv sync --locked)"
    log="$venv/uv-sync.log"
    if ! PYTHON="$python" bash tools/uv.sh "${sync[@]}" --compile-bytecode >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        die "uv sync failed (full log: $log). If uv.lock is out of date with pyproject.toml, run tools/uv.sh lock"
    fi
    printf '%s\n' "$want" >"$stamp"
fi

# The package itself is installed editable, so its sources are compiled here, every run
# (compileall skips what is up to date): the first `skyplan plan` is then not also a compile.
step "byte-compiling skyplan"
compile=(skyplan)
[ -d stacks ] && compile+=(stacks)
# A file that does not compile is reported, not fatal: the tests say more about it.
"$python" -m compileall -q -j 0 "${compile[@]}" >/dev/null ||
    printf 'setup: warning: some files in %s do not compile (see: %s -m compileall -q %s)\n' \
        "${compile[*]}" "$python" "${compile[*]}" >&2

# 3. the engine ---------------------------------------------------------------------------
step "pulumi engine"
bash "$repo/tools/build-pulumi.sh" --python "$python"
"$python" -m skyplan.provision.engine info >/dev/null ||
    die "the engine was installed but skyplan cannot use it: run .venv/bin/python -m skyplan.provision.engine info"

step "ready: .venv/bin/skyplan (try: .venv/bin/skyplan doctor)"
