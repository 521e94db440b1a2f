"""Sandboxes: how the local and sim clouds run a task on this machine.

One node is one directory, ``<SKYPLAN_HOME>/sandboxes/<stack>/node-<rank>``::

    node.json        what to run (written by start)
    proc.json        the supervisor's pid / process group (written by start)
    status.json      phase: starting | setup | run | done | failed | stopped
    workdir/         a copy of the task's workdir; cwd of setup and run
    fs/              the node's own root for file mounts at absolute paths
                     (``SKYPLAN_FS_ROOT``): ``/data`` is ``fs/data``
    logs/setup.log   setup's stdout+stderr
    logs/run.log     run's stdout+stderr
    logs/combined.log  both, in order (what ``skyplan logs`` follows)
    logs/supervisor.log  the supervisor's own errors, if any

Buckets (``file_mounts`` entries ``{name: B, mode: MOUNT}``) are directories
beside the sandboxes, ``<base>/buckets/<B>`` (``<base>`` is the skyplan home
here, ``~/.skyplan`` on an ssh host), that outlive every sandbox: a node sees
its bucket at the exact path it asked for (``/checkpoint`` included) through a
bind mount in a private mount namespace of its own (``unshare --mount``, the
supervisor and everything it runs). The host's mountpoint stays an empty
directory, so no other task sees the bucket. ``<base>/buckets/.<B>.json``
records who created a bucket (``ensure_bucket``): a managed job deletes the
buckets made for it when it ends (``release_owned``).

``start`` is ``prepare`` (the sandbox and its copies: workdir, file mounts)
then ``launch``. ``launch`` starts a small supervisor (this file, run as a script) in a new
session, so the node's processes are one process group that outlives the
short-lived dynamic-provider process that started it (the engine kills its
plugins' process groups when an operation ends). The supervisor runs ``setup``
then ``run`` through ``bash -c`` and records each phase in ``status.json``; a
failed setup skips run. ``stop`` signals the whole group.

Stdlib only, and runnable as a script: the supervisor must not depend on how
the package happens to be installed, and the SSH transport
(``skyplan.runtime.ssh``) uploads this very file to a host and drives a
sandbox there with it (the workdir arrives there as a tar stream instead of
``prepare``)::

    python3 -I runner.py supervise ROOT
    python3 -I runner.py start ROOT      node spec (JSON, envs and secrets too) on stdin
    python3 -I runner.py status ROOT     each prints one JSON object on stdout
    python3 -I runner.py stop ROOT
    python3 -I runner.py remove ROOT
    python3 -I runner.py serve           the same requests as JSON lines (``serve``)

ROOT may start with ``~`` (the login's home).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Mapping

LOG_NAMES = ("setup", "run", "combined")
#: The only variables a task gets from the environment skyplan runs in. The
#: dynamic provider that starts a node runs in the engine's provider process,
#: which inherits the operator's whole environment (cloud credentials, the stack
#: passphrase, tokens): a task's environment is built from scratch instead.
BASE_ENV = ("PATH", "HOME", "LANG", "TERM")


class SandboxError(Exception):
    """A sandbox could not be created. The text starts with a stable code
    (``LocalWorkdirMissing: ...``) that the local cloud's classifier reads."""


def log_paths(root: str | os.PathLike[str]) -> dict[str, str]:
    logs = Path(root) / "logs"
    return {name: str(logs / f"{name}.log") for name in LOG_NAMES}


def task_env(spec: Mapping[str, Any], base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a node's processes, built from scratch: ``BASE_ENV``
    taken from ``base`` (default os.environ; PATH defaults to the system's),
    then the task's envs, then its secrets, then the SKYPLAN_* variables (which
    the task cannot override: they describe where it runs). Nothing else of
    ``base`` reaches the task."""
    outer = os.environ if base is None else base
    env = {k: outer[k] for k in BASE_ENV if k in outer}
    env.setdefault("PATH", os.defpath)
    for section in ("envs", "secrets"):
        for k, v in (spec.get(section) or {}).items():
            env[str(k)] = "" if v is None else str(v)
    num_nodes = int(spec.get("num_nodes") or 1)
    env.update(
        # A managed job's task keeps one id across its recoveries (each a new stack):
        # the jobs controller hands it in as an env (``skyplan.jobs.executor.run_env``).
        SKYPLAN_TASK_ID=str((spec.get("envs") or {}).get("SKYPLAN_TASK_ID") or spec.get("task_id")
                            or spec.get("stack") or ""),
        SKYPLAN_NODE_RANK=str(int(spec.get("node_rank") or 0)),
        SKYPLAN_NUM_NODES=str(num_nodes),
        SKYPLAN_CLUSTER=str(spec.get("cluster") or ""),
        # Every node of a local cluster is this machine; other transports pass node_ips.
        SKYPLAN_NODE_IPS="\n".join(spec.get("node_ips") or ["127.0.0.1"] * num_nodes),
    )
    return env


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, sort_keys=True))
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _make_private(top: Path) -> None:
    """Drop group and other permission bits under ``top``: copytree copies each
    file's mode, and sandboxes live in the private skyplan home (0700/0600)."""
    for dirpath, dirnames, filenames in os.walk(top):
        for p in [dirpath] + [os.path.join(dirpath, n) for n in dirnames + filenames]:
            st = os.lstat(p)
            if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o077:
                os.chmod(p, stat.S_IMODE(st.st_mode) & 0o700)


def start(spec: Mapping[str, Any], root: str | os.PathLike[str]) -> dict[str, Any]:
    """Create the sandbox at ``root`` and launch the node's setup + run:
    ``prepare`` then ``launch``.

    ``spec`` keys: cluster, stack, task_id, node_rank, num_nodes, workdir (the
    source directory, absolute, or None), file_mounts (destination -> absolute
    source, copied in: see ``mount_path``), setup, run, envs, secrets (these two
    reach the task's environment only: see ``task_env``), node_ips (optional),
    buckets (optional: ``[{"dst", "name", "owner"}]``, see ``launch``; ``owner``:
    the managed job a bucket made now belongs to, ``ensure_bucket``),
    loopback_port (optional: the task gets a free loopback port as
    ``SKYPLAN_PORT``, so several nodes of this machine can serve at once).
    Returns the info the provider exports: sandbox, workdir, pid, pgid, logs,
    status_file, and ``port`` with ``loopback_port``. Raises SandboxError.
    """
    prepare(root, spec.get("workdir"), spec.get("file_mounts") or {})
    return launch(spec, root)


def prepare(
    root: str | os.PathLike[str], src: str | None, file_mounts: Mapping[str, str]
) -> None:
    """Create a fresh sandbox at ``root`` holding a copy of the workdir ``src``
    (or an empty one) and the file mounts, with nothing running yet.

    A leftover directory at ``root`` (an earlier attempt of the same stack that
    died before its delete, or the task this one replaces) is stopped and
    replaced. The workdir is copied under ``skyplan.clouds.workdir``'s link
    policy (links leaving it are refused). Raises SandboxError.
    """
    root = Path(root).absolute()
    if root.exists():
        remove(root)
    if src and not Path(src).is_dir():
        raise SandboxError(f"LocalWorkdirMissing: workdir '{src}' is not a directory")
    workdir = root / "workdir"
    logs = root / "logs"
    try:
        logs.mkdir(parents=True)
        if src:
            # Not at module level: the supervisor runs this file as a stdlib-only script.
            from skyplan.clouds.workdir import ADVICE, WorkdirLinkError, copy_workdir

            try:
                copy_workdir(src, workdir)
            except WorkdirLinkError as e:
                shutil.rmtree(root, ignore_errors=True)
                raise SandboxError(f"LocalWorkdirSymlink: {e}; {ADVICE}") from None
            _make_private(workdir)
        else:
            workdir.mkdir()
        try:
            _copy_mounts(file_mounts, root)
        except SandboxError:
            shutil.rmtree(root, ignore_errors=True)
            raise
    except OSError as e:
        shutil.rmtree(root, ignore_errors=True)
        raise _disk_error(root, e) from e


def _disk_error(root: Path, e: OSError) -> SandboxError:
    code = "LocalDiskFull" if e.errno in (errno.ENOSPC, errno.EDQUOT) else "LocalSandboxFailed"
    return SandboxError(f"{code}: cannot create sandbox {root}: {e}")


def launch(spec: Mapping[str, Any], root: str | os.PathLike[str]) -> dict[str, Any]:
    """Launch the node's setup + run in the sandbox at ``root``, which
    ``prepare`` (or a transport's own sync) has filled: ``workdir/`` is the
    task's current directory, ``fs/`` its ``SKYPLAN_FS_ROOT``. A task still
    running there is stopped first (a re-run). ``spec`` as for ``start``; its
    ``workdir`` is only recorded. Returns what ``start`` returns. Raises
    SandboxError.

    With ``spec["buckets"]``, each bucket's directory is made if missing
    (``ensure_bucket``), and so is its mountpoint (an absolute destination is
    that very path on this machine, an empty directory; ``~/x`` or ``x`` lies
    in the workdir); the supervisor then starts in a private mount namespace
    (``namespace_command``) and binds each bucket onto its mountpoint before
    setup."""
    root = Path(root).absolute()
    workdir = root / "workdir"
    logs = root / "logs"
    if (root / "proc.json").exists():
        stop(root)
    try:
        buckets = _prepare_buckets(spec, root)
    except SandboxError:
        shutil.rmtree(root, ignore_errors=True)
        raise
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        (root / "fs").mkdir(exist_ok=True)
        logs.mkdir(exist_ok=True)
        for name in LOG_NAMES:
            (logs / f"{name}.log").write_bytes(b"")
        node = {
            "cluster": spec.get("cluster"),
            "stack": spec.get("stack"),
            "task_id": spec.get("task_id") or spec.get("stack"),
            "node_rank": int(spec.get("node_rank") or 0),
            "num_nodes": int(spec.get("num_nodes") or 1),
            "workdir_source": spec.get("workdir"),
            "setup": spec.get("setup") or None,
            "run": spec.get("run") or None,
            "created_at": time.time(),
        }
        env = _launch_env(spec, root)
        if spec.get("loopback_port"):
            node["port"] = _free_port()  # picked as the node starts; the task binds it after
            env["SKYPLAN_PORT"] = str(node["port"])
        if buckets:
            node["buckets"] = buckets
            # The supervisor refuses to bind in this namespace: only in a private one.
            node["launcher_mnt_ns"] = _mnt_ns("self")
        _write_json(root / "node.json", node)
        _write_json(root / "status.json", {"phase": "starting", "returncode": None})
        with open(logs / "supervisor.log", "ab") as sup_log:
            proc = subprocess.Popen(
                # -I: the supervisor is stdlib-only; keep the task's PYTHON* variables
                # and the script's directory off its own import path.
                [*(namespace_command() if buckets else []),
                 sys.executable, "-I", os.path.abspath(__file__), "supervise", str(root)],
                cwd=str(workdir),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=sup_log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
    except OSError as e:
        shutil.rmtree(root, ignore_errors=True)
        raise _disk_error(root, e) from e
    # start_new_session makes the supervisor a session and group leader.
    _write_json(root / "proc.json", {"pid": proc.pid, "pgid": proc.pid, "started_at": time.time()})
    return {
        "sandbox": str(root),
        "workdir": str(workdir),
        "pid": proc.pid,
        "pgid": proc.pid,
        "logs": log_paths(root),
        "status_file": str(root / "status.json"),
        **({"port": node["port"]} if "port" in node else {}),
    }


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _launch_env(spec: Mapping[str, Any], root: Path) -> dict[str, str]:
    env = task_env(spec)
    # A node whose file mounts are at their real paths (a VM: ``mounts_at_root``) has no
    # SKYPLAN_FS_ROOT, so ``${SKYPLAN_FS_ROOT}/data`` is ``/data`` there.
    if not spec.get("mounts_at_root"):
        env["SKYPLAN_FS_ROOT"] = str(root / "fs")
    return env


def mount_path(root: str | os.PathLike[str], dst: str) -> Path:
    """Where a file mount's destination lies in the node's sandbox at ``root``.

    A node on this machine has no filesystem of its own, so a destination is read
    inside its sandbox: an absolute path under ``fs/`` (``/data`` is
    ``$SKYPLAN_FS_ROOT/data``; on a VM, where the variable is unset, the same
    ``${SKYPLAN_FS_ROOT}/data`` is ``/data``), a ``~/`` or relative one in the
    workdir, the task's current directory (``~/data`` and ``data`` are ``./data``).
    A destination that would leave the sandbox (``/../x``) raises SandboxError.
    """
    root = Path(root).absolute()
    if dst.startswith("/"):
        base, rel = root / "fs", dst.lstrip("/")
    else:
        base, rel = root / "workdir", dst[2:] if dst.startswith("~/") else ("" if dst == "~" else dst)
    target = Path(os.path.normpath(base / rel))
    if target != base and base not in target.parents:
        raise SandboxError(f"LocalFileMountInvalid: file mount '{dst}' would lie outside the node's sandbox")
    return target


def _copy_mounts(mounts: Mapping[str, str], root: Path) -> None:
    """Copy each file mount's source into the sandbox (``mount_path``): a directory
    under the workdir's link policy (links that leave it are refused), a file as
    it is. A mount inside the workdir lands over the workdir's copy."""
    from skyplan.clouds.workdir import ADVICE, WorkdirLinkError, copy_workdir

    (root / "fs").mkdir()
    for dst, src in sorted(mounts.items()):
        target = mount_path(root, dst)
        if not os.path.exists(src):
            raise SandboxError(f"LocalFileMountMissing: file mount '{dst}': source '{src}' does not exist")
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        if os.path.isdir(src):
            try:
                copy_workdir(src, target)
            except WorkdirLinkError as e:
                raise SandboxError(f"LocalWorkdirSymlink: file mount '{dst}': {e}; {ADVICE}") from None
            _make_private(target)
        else:
            shutil.copyfile(src, target)
            os.chmod(target, stat.S_IMODE(os.stat(target).st_mode) & 0o700)


def _group_members(pgid: int) -> list[int] | None:
    """Pids of live (non-zombie) processes in group ``pgid``; None without /proc."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return None
    out = []
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            stat = (proc / entry / "stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: split after the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) >= 3 and fields[0] != "Z" and fields[0] != "X" and int(fields[2]) == pgid:
            out.append(int(entry))
    return out


def _leads_group(pgid: int) -> bool | None:
    """Whether process ``pgid`` is alive (not a zombie) and still leads group ``pgid``;
    None without /proc."""
    try:
        stat = Path(f"/proc/{pgid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return len(fields) >= 3 and fields[0] not in ("Z", "X") and int(fields[2]) == pgid


def group_alive(pgid: int | None) -> bool:
    if not pgid:
        return False
    # The supervisor leads its group and lives as long as the task: one read answers the
    # common case (status is polled often); only without it are all processes scanned.
    if _leads_group(pgid):
        return True
    members = _group_members(pgid)
    if members is not None:
        return bool(members)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def status(root: str | os.PathLike[str]) -> dict[str, Any]:
    """The node's state: phase, returncode, pid/pgid, alive, logs. ``phase`` is
    ``absent`` when there is no sandbox. A supervisor that died without
    recording an end (killed from outside) shows as ``lost``."""
    root = Path(root)
    if not root.is_dir():
        return {"phase": "absent", "sandbox": str(root), "alive": False}
    st = _read_json(root / "status.json")
    proc = _read_json(root / "proc.json")
    node = _read_json(root / "node.json")
    pgid = proc.get("pgid")
    alive = group_alive(pgid)
    phase = st.get("phase", "starting")
    if phase in ("starting", "setup", "run") and not alive and proc:
        phase = "lost"
    return {
        **st,
        "phase": phase,
        "pid": proc.get("pid"),
        "pgid": pgid,
        "alive": alive,
        "node_rank": node.get("node_rank"),
        "sandbox": str(root),
        "logs": log_paths(root),
    }


def stop(root: str | os.PathLike[str], grace_s: float = 5.0) -> dict[str, Any]:
    """SIGTERM the node's process group, wait up to ``grace_s``, then SIGKILL.

    Idempotent: a finished or absent node is left as it is. Returns ``status``.
    """
    root = Path(root)
    proc = _read_json(root / "proc.json")
    pgid = proc.get("pgid")
    if pgid and group_alive(pgid):
        _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if group_alive(pgid):
            _signal_group(pgid, signal.SIGKILL)
            deadline = time.monotonic() + 5.0
            while group_alive(pgid) and time.monotonic() < deadline:
                time.sleep(0.02)
        _reap(proc.get("pid"))
        st = _read_json(root / "status.json")
        if root.is_dir() and st.get("phase") not in ("done", "failed"):
            _write_json(root / "status.json", {**st, "phase": "stopped", "stopped_at": time.time()})
    return status(root)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _reap(pid: int | None) -> None:
    # Only matters when the caller is the supervisor's parent and lives on (tests).
    if not pid:
        return
    try:
        os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, OSError):
        pass


def remove(root: str | os.PathLike[str], grace_s: float = 5.0) -> None:
    """Stop the node and delete its sandbox. Idempotent. The stack's directory
    goes too once its last node is gone."""
    root = Path(root)
    if not root.exists():
        return
    stop(root, grace_s=grace_s)
    shutil.rmtree(root, ignore_errors=True)
    if root.exists():  # something recreated files while we deleted; one more pass
        shutil.rmtree(root)
    try:
        root.parent.rmdir()
    except OSError:
        pass


# --- buckets: directories bound in a private mount namespace -------------------------

#: The owner recorded for a bucket that a launch outside a managed job created.
NO_OWNER = ""


def base_of(root: str | os.PathLike[str]) -> Path:
    """The skyplan base (home) of the node sandbox at ``root``
    (``<base>/sandboxes/<stack>/node-<rank>``)."""
    return Path(root).absolute().parent.parent.parent


def bucket_dir(base: str | os.PathLike[str], name: str, record: bool = False) -> Path:
    """Where bucket ``name`` lives under the skyplan ``base``, ``<base>/buckets/<name>``;
    ``record``: its creation record beside it, ``.<name>.json`` (the task sees none of it)."""
    return Path(os.path.expanduser(str(base))) / "buckets" / (f".{name}.json" if record else name)


def bucket_record(base: str | os.PathLike[str], name: str) -> Path:
    return bucket_dir(base, name, record=True)


def _check_bucket_name(name: str) -> None:
    if not name or "/" in name or name.startswith("."):  # checked at launch; never a path here
        raise SandboxError(f"LocalBucketInvalid: bucket name {name!r} is not a plain name")


def ensure_bucket(base: str | os.PathLike[str], name: str, owner: str = NO_OWNER, cluster: str = "") -> bool:
    """Make bucket ``name`` under ``base`` if it does not exist; True if this call
    made it. Whoever makes it records ``owner`` (a managed job's id, or
    ``NO_OWNER``) and the time in ``bucket_record``: a bucket that existed before
    a job started is never that job's. ``mkdir`` decides, so two nodes starting
    at once make it once."""
    _check_bucket_name(name)
    d = bucket_dir(base, name)
    d.parent.mkdir(parents=True, exist_ok=True)
    try:
        d.mkdir()
    except FileExistsError:
        if not d.is_dir():
            raise SandboxError(f"LocalBucketInvalid: {d} exists and is not a directory") from None
        return False
    _write_json(bucket_record(base, name), {"name": name, "owner": owner or NO_OWNER, "cluster": cluster,
                                            "created_at": time.time()})
    return True


def release_bucket(base: str | os.PathLike[str], name: str, owner: str, since: float = 0.0) -> bool:
    """Delete bucket ``name`` under ``base`` if ``owner`` created it at or after
    ``since`` (its record says so); True if deleted. A bucket without a record,
    made by someone else, or before ``since`` (a job id reused after its
    database was reset) is kept. Idempotent."""
    _check_bucket_name(name)
    if not owner:
        return False
    record = bucket_record(base, name)
    info = _read_json(record)
    if info.get("owner") != owner or float(info.get("created_at") or 0) < since:
        return False
    if bucket_dir(base, name).exists():
        shutil.rmtree(bucket_dir(base, name))
    record.unlink(missing_ok=True)
    return True


def release_owned(base: str | os.PathLike[str], owner: str, since: float = 0.0) -> list[str]:
    """``release_bucket`` for every bucket under ``base`` whose record names
    ``owner``; the names deleted. A bucket that cannot be deleted now is kept."""
    out = []
    for record in sorted(bucket_dir(base, "").glob(".*.json")):
        info = _read_json(record)
        try:
            if info.get("owner") == owner and release_bucket(base, str(info.get("name")), owner, since):
                out.append(str(info["name"]))
        except (OSError, SandboxError):
            continue  # kept: the next release tries again
    return out


def namespace_command() -> list[str]:
    """The command prefix that runs a program in a private mount namespace of its
    own: as root, ``unshare --mount --propagation private``; otherwise in a user
    namespace too, mapped to root inside it (``--user --map-root-user``), which
    lets it bind mount. ``unshare`` execs the program: the pid stays the same."""
    cmd = ["unshare", "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        cmd[1:1] = ["--user", "--map-root-user"]
    return cmd


_probed: dict[str, str | None] = {}


def namespace_problem() -> str | None:
    """Why this machine cannot give a node a private mount namespace with its
    buckets bound in it, or None when it can (tried once per process: the
    command of ``namespace_command`` running ``true``)."""
    key = "uid-%d" % os.geteuid()
    if key in _probed:
        return _probed[key]
    problem: str | None = None
    if not os.path.exists("/proc/self/ns/mnt"):
        problem = "this system has no mount namespaces (Linux only)"
    elif shutil.which("unshare") is None or shutil.which("mount") is None:
        problem = "util-linux's `unshare` and `mount` are not on PATH"
    else:
        try:
            r = subprocess.run([*namespace_command(), "true"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, timeout=20)
            if r.returncode != 0:
                why = r.stderr.decode("utf-8", "replace").strip().splitlines()
                problem = f"`{' '.join(namespace_command())}` failed: {why[-1] if why else 'exit %d' % r.returncode}"
                if os.geteuid() != 0:
                    problem += " (not root, and unprivileged user namespaces are off)"
        except (OSError, subprocess.SubprocessError) as e:
            problem = f"`unshare` could not run: {e}"
    _probed[key] = problem
    return problem


def mountpoint_problem(dst: str) -> str | None:
    """Why the mountpoint ``dst`` (absolute) cannot be made on this machine, or None."""
    path = parent = Path(os.path.normpath(dst))
    if path.exists():
        return None if path.is_dir() else f"{path} exists and is not a directory"
    while not parent.exists():
        parent = parent.parent
    if os.geteuid() != 0 and not os.access(parent, os.W_OK):
        return f"{path} does not exist and {parent} is not writable (not root)"
    return None


def bucket_target(root: Path, dst: str) -> Path:
    """Where bucket mount ``dst`` is bound: an absolute destination at that very
    path; ``~/x`` or ``x`` in the workdir (``mount_path``)."""
    if dst.startswith("/"):
        target = Path(os.path.normpath(dst))
        if target == Path("/"):
            raise SandboxError("LocalBucketInvalid: a bucket cannot be mounted at /")
        return target
    return mount_path(root, dst)


def _prepare_buckets(spec: Mapping[str, Any], root: Path) -> list[dict[str, str]]:
    """Each bucket of ``spec`` made if missing, and its mountpoint; what the
    supervisor binds (``[{"name", "dir", "target"}]``). Raises SandboxError."""
    wanted = spec.get("buckets") or []
    if not wanted:
        return []
    problem = namespace_problem()
    if problem:
        raise SandboxError(f"LocalBucketUnsupported: cannot mount buckets here: {problem}")
    base = base_of(root)
    out = []
    for b in wanted:
        name, dst = str(b.get("name") or ""), str(b.get("dst") or "")
        target = bucket_target(root, dst)
        try:
            ensure_bucket(base, name, str(b.get("owner") or NO_OWNER), str(spec.get("cluster") or ""))
            why = mountpoint_problem(str(target))
            if why:
                raise SandboxError(f"LocalBucketMountpoint: bucket '{name}' at {dst}: {why}")
            # An empty directory on this machine: what the node sees there is its bind mount.
            target.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SandboxError(f"LocalBucketMountpoint: bucket '{name}' at {dst}: {e}") from None
        out.append({"name": name, "dir": str(bucket_dir(base, name)), "target": str(target)})
    return out


def _mnt_ns(pid: str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return ""


def _bind_buckets(node: Mapping[str, Any]) -> str | None:
    """In the supervisor: bind each bucket onto its target, in the private
    namespace ``launch`` started it in; the reason when it could not."""
    buckets = node.get("buckets") or []
    if not buckets:
        return None
    mine = _mnt_ns("self")
    if not mine or mine == node.get("launcher_mnt_ns"):
        return "buckets are bound only in a private mount namespace, and this node is not in one"
    for b in buckets:
        try:
            r = subprocess.run(["mount", "--bind", b["dir"], b["target"]], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        except (OSError, subprocess.SubprocessError) as e:
            return f"cannot mount bucket '{b['name']}' at {b['target']}: {e}"
        if r.returncode != 0:
            return (f"cannot mount bucket '{b['name']}' at {b['target']}: "
                    f"{r.stdout.decode('utf-8', 'replace').strip()}")
    return None


# --- the supervisor (runs detached, as a script) -----------------------------------


def _run_phase(cmd: str, workdir: Path, log: Path, combined: Any) -> int:
    with open(log, "ab") as own:
        p = subprocess.Popen(
            ["bash", "-c", cmd],
            cwd=str(workdir),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert p.stdout is not None
        fd = p.stdout.fileno()
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            own.write(chunk)
            own.flush()
            combined.write(chunk)
            combined.flush()
        return p.wait()


def supervise(root: str | os.PathLike[str]) -> int:
    root = Path(root)
    node = _read_json(root / "node.json")
    me = {"pid": os.getpid(), "pgid": os.getpgid(0)}
    logs = root / "logs"
    workdir = root / "workdir"
    with open(logs / "combined.log", "ab") as combined:
        problem = _bind_buckets(node)
        if problem:
            # The task cannot run as written: a setup failure, with the reason in its log.
            for name in ("setup", "combined"):
                with open(logs / f"{name}.log", "ab") as fh:
                    fh.write(f"skyplan: {problem}\n".encode())
            _write_json(root / "status.json", {**me, "phase": "failed", "failed_phase": "setup", "returncode": 1,
                                               "detail": problem, "updated_at": time.time()})
            return 1
        for phase in ("setup", "run"):
            cmd = node.get(phase)
            if not cmd:
                continue
            _write_json(root / "status.json", {**me, "phase": phase, "returncode": None, "updated_at": time.time()})
            rc = _run_phase(cmd, workdir, logs / f"{phase}.log", combined)
            if rc != 0:
                _write_json(
                    root / "status.json",
                    {**me, "phase": "failed", "failed_phase": phase, "returncode": rc, "updated_at": time.time()},
                )
                return rc
    _write_json(root / "status.json", {**me, "phase": "done", "returncode": 0, "updated_at": time.time()})
    return 0


def handle(op: str, root: str, request: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One request of the script's protocol: ``start`` (``request["spec"]``),
    ``status``, ``stop``, ``remove`` or ``read`` (``request["offset"]``, at most
    ``request["limit"]`` bytes of the combined log, base64). Raises
    SandboxError, OSError or ValueError."""
    request = request or {}
    if op == "start":
        return launch(request.get("spec") or {}, root)
    if op == "status":
        return status(root)
    if op == "stop":
        return stop(root)
    if op == "remove":
        remove(root)
        return {"removed": True, "sandbox": root}
    if op == "release_owned":
        return {"released": release_owned(root, str(request.get("owner")), float(request.get("since") or 0))}
    if op == "read":
        import base64

        offset, limit = int(request.get("offset") or 0), int(request.get("limit") or 1 << 20)
        try:
            with open(Path(root) / "logs" / "combined.log", "rb") as fh:
                fh.seek(offset)
                data = fh.read(limit)
        except FileNotFoundError:
            data = b""
        return {"data": base64.b64encode(data).decode(), "offset": offset + len(data)}
    raise ValueError(f"unknown request {op!r}")


def serve() -> int:
    """Answer requests, one JSON object per line on stdin (``{"op", "root", ...}``),
    each with one JSON line on stdout, until stdin ends. The SSH transport keeps
    one such process per connection, so a ``status`` costs a round trip on an
    open channel instead of a new channel, shell and interpreter. Supervisors
    this process launched are reaped as it goes (they outlive it)."""
    while True:
        line = sys.stdin.buffer.readline()
        if not line:
            return 0
        try:
            req = json.loads(line)
            out: dict[str, Any] = handle(str(req.get("op")), os.path.expanduser(str(req.get("root"))), req)
        except (SandboxError, OSError, ValueError) as e:
            out = {"error": str(e)}
        _reap_children()
        sys.stdout.write(json.dumps(out, sort_keys=True) + "\n")
        sys.stdout.flush()


def _reap_children() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if not pid:
            return


def main(argv: list[str]) -> int:
    """The script's subcommands (see the module docstring). ``start``,
    ``status``, ``stop`` and ``remove`` print one JSON object; a sandbox error
    prints ``{"error": "Code: message"}`` and exits 3."""
    if argv == ["serve"]:
        return serve()
    if len(argv) != 2 or argv[0] not in ("supervise", "start", "status", "stop", "remove"):
        sys.stderr.write("usage: runner.py supervise|start|status|stop|remove ROOT | runner.py serve\n")
        return 2
    cmd, root = argv[0], os.path.expanduser(argv[1])
    if cmd == "supervise":
        return supervise(root)
    try:
        # start's spec (envs and secrets among it) comes on stdin: never on a command line.
        req = {"spec": json.loads(sys.stdin.read() or "{}")} if cmd == "start" else None
        out = handle(cmd, root, req)
    except (SandboxError, OSError, ValueError) as e:
        sys.stdout.write(json.dumps({"error": str(e)}) + "\n")
        return 3
    sys.stdout.write(json.dumps(out, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
