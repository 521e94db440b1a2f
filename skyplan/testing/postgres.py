"""A throwaway PostgreSQL server on a loopback port, for the jobs tests and CI.

``Postgres.start(dir)`` runs Debian's ``initdb`` (trust authentication for
loopback, no fsync) on a fresh data directory and starts ``postgres`` on a
free port of 127.0.0.1; ``stop()`` shuts it down and removes the data. As
root (CI, this machine) both run as the ``postgres`` user, which cannot reach
a root-private directory such as pytest's: the data directory is then a
``/tmp/skyplan-pg-*`` directory of its own, owned by ``postgres``; ``dir``
keeps ``postgres.json`` (pid, port, url, data directory) and the server's log.

``create_database(url, name)`` makes an empty database on that server (one per
test, so tests never see each other's jobs); ``drop_database(url)`` removes it.

From the command line (``.ci/run``)::

    python -m skyplan.testing.postgres start --dir D   # prints the server's URL
    python -m skyplan.testing.postgres stop --dir D

``SKYPLAN_PG_BIN`` names the directory of the binaries (default: the newest
``/usr/lib/postgresql/<version>/bin``, 15 on Debian 12); ``available()``
says whether they are there.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

#: The user the server runs as when we are root (postgres refuses to run as root).
SERVICE_USER = "postgres"


def bin_dir() -> Path | None:
    env = os.environ.get("SKYPLAN_PG_BIN")
    if env:
        return Path(env)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return Path(found[-1]).parent if found else None


def available() -> bool:
    b = bin_dir()
    if b is None or not os.access(b / "initdb", os.X_OK) or not os.access(b / "postgres", os.X_OK):
        return False
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVICE_USER)
        except KeyError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_service_user() -> dict[str, object]:
    """Popen arguments that run the child as ``postgres`` when we are root (else as ourselves)."""
    if os.geteuid() != 0:
        return {}
    pw = pwd.getpwnam(SERVICE_USER)
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": [],
            "env": {**os.environ, "HOME": pw.pw_dir, "USER": SERVICE_USER, "LOGNAME": SERVICE_USER}}


@dataclass
class Postgres:
    """A running server: its URL (database ``postgres``, user ``postgres``, no password)."""

    dir: Path
    data_dir: Path
    port: int
    pid: int
    url: str

    @classmethod
    def start(cls, directory: str | os.PathLike[str], port: int | None = None) -> Postgres:
        bins = bin_dir()
        if bins is None or not available():
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        d = Path(directory).absolute()
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        user = _as_service_user()
        data = Path(tempfile.mkdtemp(prefix="skyplan-pg-"))  # /tmp: reachable by the service user
        if user:
            os.chown(data, user["user"], user["group"])  # type: ignore[arg-type]
        log_path = d / "postgres.log"
        with open(log_path, "ab") as log:
            init = subprocess.run([str(bins / "initdb"), "-D", str(data / "pgdata"), "-U", "postgres", "-A", "trust",
                                   "-E", "UTF8", "--no-locale", "--no-sync"], stdin=subprocess.DEVNULL,
                                  stdout=log, stderr=subprocess.STDOUT, cwd=data, **user)  # type: ignore[call-overload]
            if init.returncode != 0:
                shutil.rmtree(data, ignore_errors=True)
                raise RuntimeError(f"initdb exited {init.returncode}: {log_path.read_text()[-2000:]}")
            port = port or _free_port()
            proc = subprocess.Popen(
                [str(bins / "postgres"), "-D", str(data / "pgdata"), "-h", "127.0.0.1", "-p", str(port),
                 "-k", str(data),  # its Unix socket beside the data, not in /run/postgresql
                 # A throwaway server: durability off, room for tests' many connections.
                 "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                 "-c", "max_connections=300"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=data,
                **user)  # type: ignore[call-overload]
        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        me = cls(d, data, port, proc.pid, url)
        (d / "postgres.json").write_text(json.dumps({**me.__dict__, "dir": str(d), "data_dir": str(data)}))
        deadline = time.monotonic() + 30
        import psycopg

        while True:
            if proc.poll() is not None:
                me._cleanup()
                raise RuntimeError(f"postgres exited {proc.returncode}: {log_path.read_text()[-2000:]}")
            try:
                psycopg.connect(me.dsn(), connect_timeout=1).close()
                return me
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    me.stop()
                    raise RuntimeError(f"postgres did not accept connections on port {port}: "
                                       f"{log_path.read_text()[-2000:]}") from None
                time.sleep(0.1)

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> Postgres:
        data = json.loads((Path(directory).absolute() / "postgres.json").read_text())
        return cls(Path(data["dir"]), Path(data["data_dir"]), data["port"], data["pid"], data["url"])

    def dsn(self, database: str = "postgres") -> str:
        """A libpq connection string (psycopg's, without SQLAlchemy's driver name)."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        try:  # a zombie (our own child) is not alive
            return Path(f"/proc/{self.pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
        except OSError:
            return False

    def stop(self) -> None:
        """Fast shutdown (SIGINT; SIGKILL of its process group after a grace), then remove the data."""
        try:
            os.kill(self.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 15
        while self.alive() and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.05)
        if self.alive():
            try:
                os.killpg(self.pid, signal.SIGKILL)  # its own session: the postmaster and its backends
            except ProcessLookupError:
                pass
        self._reap()
        self._cleanup()

    def _reap(self) -> None:
        try:
            os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pass

    def _cleanup(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)
        try:
            (self.dir / "postgres.json").unlink()
        except FileNotFoundError:
            pass


def _admin(url: str):  # noqa: ANN202
    """An autocommit psycopg connection to ``url``'s server (CREATE/DROP DATABASE cannot run in a transaction)."""
    import psycopg
    from sqlalchemy import make_url

    u = make_url(url)
    return psycopg.connect(host=u.host, port=u.port, user=u.username, password=u.password,
                           dbname="postgres", autocommit=True, connect_timeout=10)


def create_database(url: str, name: str) -> str:
    """Create the empty database ``name`` on ``url``'s server; its URL."""
    from psycopg import sql
    from sqlalchemy import make_url

    with _admin(url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop ``url``'s database, closing its sessions (PostgreSQL 13+)."""
    from psycopg import sql
    from sqlalchemy import make_url

    name = make_url(url).database
    with _admin(url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m skyplan.testing.postgres",
                                 description="A throwaway PostgreSQL on 127.0.0.1 for the jobs tests.")
    ap.add_argument("action", choices=["start", "stop"])
    ap.add_argument("--dir", required=True, help="where its state file and log go")
    ap.add_argument("--port", type=int, default=None)
    args = ap.parse_args(argv)
    if args.action == "start":
        if not available():
            sys.stderr.write("PostgreSQL's initdb/postgres not found under /usr/lib/postgresql/*/bin "
                             "(apt-get install postgresql), or no 'postgres' user to run it as\n")
            return 1
        try:
            pg = Postgres.start(args.dir, args.port)
        except RuntimeError as exc:
            sys.stderr.write(f"{exc}\n")
            return 1
        sys.stdout.write(pg.url + "\n")
        return 0
    try:
        pg = Postgres.load(args.dir)
    except FileNotFoundError:
        sys.stderr.write(f"no PostgreSQL started in {args.dir}\n")
        return 1
    pg.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
