#!/usr/bin/env bash
# One-command setup on a fresh machine that has Python 3.11 and Go 1.24+:
#   1. a venv in .venv (kept if present)
#   2. skyplan installed editable with its cloud SDKs and test tools
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

# 2. the package ------------------------------------------------------------------------
# Re-install only when pyproject.toml changed since the last successful install.
stamp="$venv/.skyplan-setup"
want="$("$python" -c 'import hashlib; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest())')"
if [ "$(cat "$stamp" 2>/dev/null || true)" = "$want" ] && "$python" -c 'import skyplan, pulumi' 2>/dev/null; then
    step "skyplan already installed in .venv"
else
    step "installing skyplan and its dependencies into .venv (pip)"
    log="$venv/pip-install.log"
    if ! "$python" -m pip install --disable-pip-version-check -e ".[clouds,test]" >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        die "pip install failed (full log: $log)"
    fi
    printf '%s\n' "$want" >"$stamp"
fi

# 3. the engine ---------------------------------------------------------------------------
step "pulumi engine"
bash "$repo/tools/build-pulumi.sh" --python "$python"
"$python" -m skyplan.provision.engine info >/dev/null ||
    die "the engine was installed but skyplan cannot use it: run .venv/bin/python -m skyplan.provision.engine info"

step "ready: .venv/bin/skyplan (try: .venv/bin/skyplan doctor)"
