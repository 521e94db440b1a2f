#!/usr/bin/env bash
# Build the pulumi CLI from Go modules and install it, with the dynamic-provider
# shim, into skyplan's engine dir. Idempotent: an installed binary of the right
# version is kept as it is, and the Go caches (GOMODCACHE, GOCACHE) are left at
# their defaults so that a rebuild after a fresh clone is quick.
#
# usage: tools/build-pulumi.sh [--bin DIR] [--python PATH] [--force]
#   --bin     where to install (default: `$PYTHON -m skyplan.provision.engine path`)
#   --python  interpreter the shim runs (default: .venv/bin/python next to this repo)
#   --force   rebuild even when a matching binary is installed
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
module_dir="$here/pulumi-cli"

bin_dir=""
python=""
force=0
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bin_dir="$2"; shift 2 ;;
        --python) python="$2"; shift 2 ;;
        --force) force=1; shift ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "build-pulumi: unknown argument: $1" >&2; exit 2 ;;
    esac
done

if [ -z "$python" ]; then
    python="$repo/.venv/bin/python"
fi
if [ ! -x "$python" ]; then
    echo "build-pulumi: no python interpreter at $python (run ./setup.sh, or pass --python)" >&2
    exit 2
fi
# The shim must name an absolute interpreter: the engine runs it from any cwd.
# Not `realpath`: a venv's python is a symlink and must stay one, or the venv is lost.
case "$python" in
    /*) ;;
    *) python="$(cd "$(dirname "$python")" && pwd)/$(basename "$python")" ;;
esac

# One pin: the version tools/pulumi-cli requires is the version we build.
version="$(awk '$1 == "github.com/pulumi/pulumi/pkg/v3" { print $2; exit }' "$module_dir/go.mod")"
if [ -z "$version" ]; then
    echo "build-pulumi: cannot read the pulumi/pkg/v3 version from $module_dir/go.mod" >&2
    exit 1
fi

if [ -z "$bin_dir" ]; then
    bin_dir="$("$python" -m skyplan.provision.engine path)"
fi
mkdir -p "$bin_dir"
pulumi="$bin_dir/pulumi"
log="$bin_dir/build.log"

installed=""
if [ -x "$pulumi" ]; then
    installed="$(PULUMI_SKIP_UPDATE_CHECK=true "$pulumi" version 2>/dev/null || true)"
fi

if [ "$force" = 0 ] && [ "$installed" = "$version" ]; then
    echo "pulumi CLI $version already installed in $bin_dir"
else
    if ! command -v go >/dev/null 2>&1; then
        echo "build-pulumi: 'go' is not on PATH; Go 1.24+ is needed to build the pulumi CLI" >&2
        exit 1
    fi
    echo "building the pulumi CLI $version from Go modules (first time ~4 min; log: $log)"
    tmp="$pulumi.tmp.$$"
    trap 'rm -f "$tmp"' EXIT
    start=$(date +%s)
    if ! (
        cd "$module_dir" &&
        go build -trimpath -tags osusergo,grpcnotrace \
            -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$version" \
            -o "$tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
    ) >"$log" 2>&1; then
        echo "build-pulumi: FAILED: go build of github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@$version in $module_dir" >&2
        echo "build-pulumi: go $(go env GOVERSION), GOPROXY=$(go env GOPROXY); last lines of $log:" >&2
        tail -n 25 "$log" >&2
        exit 1
    fi
    got="$(PULUMI_SKIP_UPDATE_CHECK=true "$tmp" version 2>>"$log" || true)"
    if [ "$got" != "$version" ]; then
        echo "build-pulumi: FAILED: the built binary reports version '$got', expected $version (log: $log)" >&2
        exit 1
    fi
    # Rename into place so that a concurrent reader never sees a half-written binary.
    mv -f "$tmp" "$pulumi"
    trap - EXIT
    echo "built pulumi CLI $version in $(( $(date +%s) - start ))s -> $pulumi"
fi

# The dynamic-provider plugin the engine looks up on PATH. SKYPLAN_PYTHON lets a
# second checkout on the same machine run its own venv through the shared engine.
shim="$bin_dir/pulumi-resource-pulumi-python"
printf '#!/bin/sh\nexec "${SKYPLAN_PYTHON:-%s}" -u -m pulumi.dynamic "$@"\n' "$python" >"$shim.tmp.$$"
chmod 0755 "$shim.tmp.$$"
mv -f "$shim.tmp.$$" "$shim"
echo "dynamic provider shim -> $python"
