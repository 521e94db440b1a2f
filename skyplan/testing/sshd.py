"""A throwaway OpenSSH server on a loopback port, for tests and the README try-out.

``Sshd.start(dir)`` writes into ``dir`` a host key, a client key
(``id_ed25519``) authorised for the current user, a ``known_hosts`` holding
the host key, and an ``sshd_config``, then runs the system's ``sshd -D -e -f``
on a free port of 127.0.0.1 (as root it also needs the privilege-separation
directory ``/run/sshd``, created here). ``stop()`` ends it. Keys are made with
asyncssh, so only the server binary is needed.

From the command line (the README's try-out of the ``ssh`` cloud)::

    python -m skyplan.testing.sshd start --dir D    # prints the config.yaml snippet
    python -m skyplan.testing.sshd start --dir D --config   # ... and writes it as the pool `try` of
                                                            # $SKYPLAN_HOME/config.yaml (other settings kept)
    python -m skyplan.testing.sshd stop --dir D

``SSHD`` (default ``/usr/sbin/sshd``) names the binary; ``available()`` says
whether it is there.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import asyncssh


def binary() -> str:
    return os.environ.get("SSHD", "/usr/sbin/sshd")


def available() -> bool:
    return os.access(binary(), os.X_OK)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc)."""
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k)
    return out


@dataclass
class Sshd:
    """A running sshd: where it listens and how to log in."""

    dir: Path
    host: str
    port: int
    user: str
    identity_file: str
    known_hosts: str
    pid: int

    @classmethod
    def start(cls, directory: str | os.PathLike[str], port: int | None = None) -> Sshd:
        d = Path(directory).absolute()
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(d, 0o700)
        host_key = d / "ssh_host_ed25519_key"
        client_key = d / "id_ed25519"
        if not host_key.exists():
            asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(host_key))
            os.chmod(host_key, 0o600)
        if not client_key.exists():
            key = asyncssh.generate_private_key("ssh-ed25519", comment="skyplan-test")
            key.write_private_key(str(client_key))
            key.write_public_key(str(client_key) + ".pub")
            os.chmod(client_key, 0o600)
        (d / "authorized_keys").write_bytes(Path(str(client_key) + ".pub").read_bytes())
        os.chmod(d / "authorized_keys", 0o600)
        port = port or _free_port()
        user = getpass.getuser()
        pub = asyncssh.read_private_key(str(host_key)).export_public_key("openssh").decode().split()[:2]
        (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {pub[0]} {pub[1]}\n")
        os.chmod(d / "known_hosts", 0o600)
        cfg = d / "sshd_config"
        cfg.write_text("\n".join([
            f"Port {port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {host_key}",
            f"PidFile {d / 'sshd.pid'}",
            f"AuthorizedKeysFile {d / 'authorized_keys'}",
            f"AllowUsers {user}",
            # The keys live in a temporary directory that sshd's ownership checks would refuse.
            "StrictModes no",
            "UsePAM no",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            # Tests open many connections at once (a controller watching 50 nodes).
            "MaxStartups 500",
            "MaxSessions 100",
            "PrintMotd no",
            "Subsystem sftp internal-sftp",
            "LogLevel ERROR",
            "",
        ]))
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        log = open(d / "sshd.log", "ab")
        try:
            proc = subprocess.Popen([binary(), "-D", "-e", "-f", str(cfg)], stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"sshd exited {proc.returncode}: {(d / 'sshd.log').read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    proc.kill()
                    raise RuntimeError(f"sshd did not listen on port {port}: {(d / 'sshd.log').read_text()[-2000:]}")
                time.sleep(0.05)
        me = cls(d, "127.0.0.1", port, user, str(client_key), str(d / "known_hosts"), proc.pid)
        (d / "sshd.json").write_text(json.dumps({**me.__dict__, "dir": str(d)}))
        return me

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> Sshd:
        data = json.loads((Path(directory).absolute() / "sshd.json").read_text())
        data["dir"] = Path(data["dir"])
        return cls(**data)

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        try:  # a zombie (our own child) is not alive
            return Path(f"/proc/{self.pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
        except OSError:
            return False

    def kill(self) -> None:
        """``kill -9`` the server and every session it serves (the machine vanished)."""
        for pid in [self.pid, *_children(self.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._reap()

    def stop(self) -> None:
        """TERM the server and its sessions (KILL after a grace)."""
        pids = [self.pid, *_children(self.pid)]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while self.alive() and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.05)
        if self.alive():
            self.kill()
        self._reap()

    def _reap(self) -> None:
        try:
            os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pass

    def host_entry(self) -> dict[str, object]:
        """This server as one host of a pool. Its known_hosts is the host's own, so
        replacing this one line with a machine of yours checks that machine against
        ``~/.ssh/known_hosts`` (the default)."""
        return {"host": self.host, "port": self.port, "user": self.user, "identity_file": self.identity_file,
                "known_hosts": self.known_hosts}

    def config_snippet(self, pool: str = "try") -> str:
        """The ``ssh:`` section of ``$SKYPLAN_HOME/config.yaml`` for this server."""
        entry = ", ".join(f"{k}: {v}" for k, v in self.host_entry().items())
        return f"ssh:\n  pools:\n    {pool}:\n      hosts:\n        - {{{entry}}}\n"

    def write_config(self, path: str | os.PathLike[str] | None = None, pool: str = "try") -> Path:
        """Make this server the pool ``pool`` of the config file (default
        ``$SKYPLAN_HOME/config.yaml``), keeping its other settings and pools."""
        import yaml

        from skyplan.config import config_path, load_config

        p = Path(path) if path is not None else config_path()
        data = load_config(p)
        pools = data.setdefault("ssh", {}).setdefault("pools", {})
        pools[pool] = {"hosts": [self.host_entry()]}
        p.parent.mkdir(parents=True, exist_ok=True)
        # Wide lines: each host stays on one line, the one to change for a machine of yours.
        p.write_text(yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=1000))
        os.chmod(p, 0o600)
        return p


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m skyplan.testing.sshd",
                                 description="A throwaway sshd on 127.0.0.1 for trying the ssh cloud.")
    ap.add_argument("action", choices=["start", "stop"])
    ap.add_argument("--dir", required=True, help="where its keys, config and log go")
    ap.add_argument("--port", type=int, default=None)
    ap.add_argument("--config", nargs="?", const="", default=None, metavar="PATH",
                    help="write it as the pool `try` of the config file (default: $SKYPLAN_HOME/config.yaml)")
    args = ap.parse_args(argv)
    if args.action == "start":
        if not available():
            sys.stderr.write(f"{binary()} not found: install openssh-server (apt-get install openssh-server)\n")
            return 1
        sshd = Sshd.start(args.dir, args.port)
        if args.config is not None:
            written = sshd.write_config(args.config or None)
            sys.stdout.write(f"sshd pid {sshd.pid} on {sshd.host}:{sshd.port} is the pool `try` in {written}\n")
            return 0
        sys.stdout.write(f"# sshd pid {sshd.pid} on {sshd.host}:{sshd.port}; add to $SKYPLAN_HOME/config.yaml:\n")
        sys.stdout.write(sshd.config_snippet())
        return 0
    try:
        sshd = Sshd.load(args.dir)
    except FileNotFoundError:
        sys.stderr.write(f"no sshd started in {args.dir}\n")
        return 1
    sshd.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
