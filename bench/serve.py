"""The serve load balancer's figures, on loopback, with a bounded load. Prints figures;
asserts nothing about time.

    .venv/bin/python bench/serve.py [--part latency,throughput,drain,kill,replicas] [--rate 200] [--seconds 10]
                                    [--concurrency 32] [--poll-s 1] [--json]

Processes: two replica HTTP servers (aiohttp, ``GET /`` -> ``ok``, ``GET /sleep?ms=N``),
each in its own process; the ``skyplan.serve.lb.LoadBalancer`` in its own process, driven
as the service daemon drives it (a thread calls ``push`` / ``wait_drained`` / ``metrics``
while the loop serves); the load generator is this process.

1. **latency**: the proxy's added latency. Paced and sequential (closed loop, one request
   at a time on one keep-alive connection each, ``--rate`` pairs per second for
   ``--seconds``): each tick sends one request straight to replica 1 and one through the
   load balancer (alternating which goes first), so both see the same machine at the same
   moment. Prints p50/p99 of both and the difference. Targets: p50 <= 1 ms, p99 <= 5 ms added.
2. **throughput**: at saturation (``--concurrency`` requests in flight, for ``--seconds``):
   replica 1 alone, then through the load balancer over both replicas. Client, proxy
   and replicas share this machine's cores: the ratio is what the extra hop costs here.
3. **drain**: a steady load (``--rate`` requests/s, at most 100, of ``POST /sleep?ms=50``: some
   are always in flight, and a POST is never retried) while replica 1 leaves the READY set, drains (``wait_drained``), and is stopped,
   then a new replica 3 joins. Target: 0 failed requests.
4. **kill**: the same load, as ``GET``, while replica 2 is SIGKILLed *without* leaving the set first
   (a preemption the controller has not seen yet): idempotent requests that it drops before
   any response byte are retried on another replica. Prints the failed requests (target 0
   for GET) and the retries the proxy logged.

5. **replicas**: the whole service through the controller process and the real engine on
   ``sim`` (``serve up`` / ``serve update`` / ``serve down`` through the CLI; replicas are
   ``tests/fixtures/serve/replica.py``; seed 002's policy: spot with dynamic on-demand
   fallback, 1 to 2 replicas), under ``--rate`` (at most 40) requests/s of ``/slow?ms=50``:
   a spot replica preempted (``sim preempt``): how long until it is out of the READY set,
   until 2 replicas are READY again (full capacity, the fallback), until 2 spot replicas
   are; a rolling update (duration, most live replicas); a scale-down when the rate drops
   to a quarter. Failed requests during each (target 0). ``--poll-s`` is the controller's
   probe interval.

Parts 1-4 are functions over a ``Fleet`` (replicas + the proxy process); part 5 runs its own
skyplan home under the temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# --- the processes ---------------------------------------------------------------------------


def replica_main() -> None:
    """A replica: a small aiohttp server on a free loopback port; prints the port."""
    from aiohttp import web

    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def sleep(request: web.Request) -> web.Response:
        await asyncio.sleep(float(request.query.get("ms", "0")) / 1000.0)
        return web.Response(text="ok")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/", ok)
        app.router.add_route("*", "/sleep", sleep)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(main())


def lb_main(log_path: str) -> None:
    """The proxy process: the loop serves; a control thread reads JSON lines on stdin and
    calls ``push`` / ``wait_drained`` / ``metrics`` from outside the loop, as the daemon's
    controller thread does."""
    import logging

    from skyplan.serve.lb import LoadBalancer

    log = logging.getLogger("bench.lb")
    log.propagate = False
    handler = logging.FileHandler(log_path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        lb = LoadBalancer(log=log)
        port = await lb.start()
        done = asyncio.Event()

        def control() -> None:
            for line in sys.stdin:
                cmd = json.loads(line)
                if cmd["op"] == "push":
                    lb.push({int(k): v for k, v in cmd["ready"].items()}, loop)
                    out: Any = {"ok": True}
                elif cmd["op"] == "drained":
                    t = time.monotonic()
                    ok = lb.wait_drained(int(cmd["id"]), float(cmd["timeout"]), loop)
                    out = {"drained": ok, "waited_s": time.monotonic() - t}
                elif cmd["op"] == "metrics":
                    m = lb.metrics()
                    out = {"qps": m.qps, "p50_ms": m.p50_ms, "p99_ms": m.p99_ms, "requests": m.requests,
                           "failures": m.failures, "inflight": m.inflight}
                else:
                    break
                sys.stdout.write(json.dumps(out) + "\n")
                sys.stdout.flush()
            loop.call_soon_threadsafe(done.set)

        print(port, flush=True)
        threading.Thread(target=control, daemon=True).start()
        await done.wait()
        await lb.stop()

    asyncio.run(main())


def _spawn(*args: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.strip():
        raise SystemExit(f"{' '.join(args)}: did not start")
    return proc, int(line)


class Fleet:
    """Replica processes and the proxy process; ``push``/``wait_drained``/``metrics`` go to
    the proxy's control thread."""

    def __init__(self, base: Path, replicas: int = 2) -> None:
        self.base = base
        self.log_path = base / "lb.log"
        self.replicas: dict[int, tuple[subprocess.Popen[str], str]] = {}
        self._next = 1
        self.lb, port = _spawn("_lb", str(self.log_path))
        self.url = f"http://127.0.0.1:{port}"
        self.port = port
        for _ in range(replicas):
            self.add_replica()
        self.push(self.replicas)

    def add_replica(self) -> int:
        proc, port = _spawn("_replica")
        rid, self._next = self._next, self._next + 1
        self.replicas[rid] = (proc, f"http://127.0.0.1:{port}")
        return rid

    def replica_port(self, rid: int) -> int:
        return int(self.replicas[rid][1].rsplit(":", 1)[1])

    def _call(self, cmd: dict[str, Any]) -> dict[str, Any]:
        assert self.lb.stdin is not None and self.lb.stdout is not None
        self.lb.stdin.write(json.dumps(cmd) + "\n")
        self.lb.stdin.flush()
        return json.loads(self.lb.stdout.readline())

    def push(self, ids: Any) -> None:
        self._call({"op": "push", "ready": {str(r): self.replicas[r][1] for r in ids}})

    def wait_drained(self, rid: int, timeout_s: float) -> dict[str, Any]:
        return self._call({"op": "drained", "id": rid, "timeout": timeout_s})

    def metrics(self) -> dict[str, Any]:
        return self._call({"op": "metrics"})

    def stop_replica(self, rid: int, sig: int = signal.SIGTERM) -> None:
        proc, _ = self.replicas.pop(rid)
        proc.send_signal(sig)
        proc.wait(30)

    def retries_logged(self) -> int:
        """Access-log lines of requests that failed once and were retried on another replica."""
        if not self.log_path.exists():
            return 0
        return sum(1 for line in self.log_path.read_text().splitlines() if "failed:" in line and '" 200 ' in line)

    def close(self) -> None:
        for rid in list(self.replicas):
            self.stop_replica(rid)
        if self.lb.poll() is None:
            assert self.lb.stdin is not None
            self.lb.stdin.close()
            try:
                self.lb.wait(30)
            except subprocess.TimeoutExpired:
                self.lb.kill()


# --- measuring -------------------------------------------------------------------------------


def _percentiles(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    return {"p50_ms": s[len(s) // 2], "p99_ms": s[min(len(s) - 1, int(len(s) * 0.99))], "n": len(s)}


def latency(fleet: Fleet, rate: float, seconds: float) -> dict[str, Any]:
    """Direct vs through the proxy, interleaved, one request at a time."""
    direct = http.client.HTTPConnection("127.0.0.1", fleet.replica_port(1))
    proxied = http.client.HTTPConnection("127.0.0.1", fleet.port)

    def once(conn: http.client.HTTPConnection) -> float:
        t = time.perf_counter()
        conn.request("GET", "/")
        r = conn.getresponse()
        body = r.read()
        took = (time.perf_counter() - t) * 1000.0
        if r.status != 200 or body != b"ok":
            raise SystemExit(f"unexpected answer {r.status} {body[:80]!r}")
        return took

    for _ in range(200):  # warm both paths (connections, the proxy's pool)
        once(direct), once(proxied)
    d: list[float] = []
    p: list[float] = []
    interval = 1.0 / rate
    start = time.perf_counter()
    tick = 0
    while (now := time.perf_counter()) - start < seconds:
        due = start + tick * interval
        if now < due:
            time.sleep(due - now)
        if tick % 2:
            d.append(once(direct)), p.append(once(proxied))
        else:
            p.append(once(proxied)), d.append(once(direct))
        tick += 1
    direct.close(), proxied.close()
    dd, pp = _percentiles(d), _percentiles(p)
    return {"mode": "paced, sequential, keep-alive; direct and proxied interleaved", "rate_pairs_per_s": rate,
            "seconds": seconds, "direct": dd, "proxied": pp,
            "added_p50_ms": pp["p50_ms"] - dd["p50_ms"], "added_p99_ms": pp["p99_ms"] - dd["p99_ms"],
            "target_added_p50_ms": 1.0, "target_added_p99_ms": 5.0}


async def _saturate(url: str, concurrency: int, seconds: float) -> dict[str, Any]:
    import aiohttp

    ok = failed = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        end = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal ok, failed
            while time.perf_counter() < end:
                try:
                    async with session.get(url) as r:
                        await r.read()
                        ok, failed = (ok + 1, failed) if r.status == 200 else (ok, failed + 1)
                except aiohttp.ClientError:
                    failed += 1

        t = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        took = time.perf_counter() - t
    return {"requests_per_s": ok / took, "ok": ok, "failed": failed}


def throughput(fleet: Fleet, concurrency: int, seconds: float) -> dict[str, Any]:
    alone = asyncio.run(_saturate(fleet.replicas[1][1] + "/", concurrency, seconds))
    proxied = asyncio.run(_saturate(fleet.url + "/", concurrency, seconds))
    return {"concurrency": concurrency, "seconds": seconds, "replica_alone": alone,
            "through_lb_two_replicas": proxied, "ratio": proxied["requests_per_s"] / alone["requests_per_s"]}


async def _steady(url: str, rate: float, seconds: float, events: list[tuple[float, Any]],
                  method: str = "GET") -> dict[str, Any]:
    """``rate`` requests/s (open loop, each its own task) for ``seconds``; ``events`` are
    (at_s, callable) run in a thread at those times. Returns counts and the failures' reasons."""
    import aiohttp

    ok = 0
    failures: list[str] = []
    tasks: list[asyncio.Task[None]] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one() -> None:
            nonlocal ok
            try:
                async with session.request(method, url) as r:
                    body = await r.read()
                    if r.status == 200:
                        ok += 1
                    else:
                        failures.append(f"{r.status} {body[:60]!r}")
            except aiohttp.ClientError as exc:
                failures.append(f"{type(exc).__name__}: {exc}")

        async def scheduled() -> list[Any]:
            out = []
            t0 = time.perf_counter()
            for at, fn in events:
                await asyncio.sleep(max(0.0, t0 + at - time.perf_counter()))
                out.append(await asyncio.to_thread(fn))
            return out

        side = asyncio.create_task(scheduled())
        start = time.perf_counter()
        n = 0
        while (now := time.perf_counter()) - start < seconds:
            due = start + n / rate
            if now < due:
                await asyncio.sleep(due - now)
            tasks.append(asyncio.create_task(one()))
            n += 1
        await asyncio.gather(*tasks)
        results = await side
    return {"sent": n, "ok": ok, "failed": len(failures), "failure_samples": failures[:5], "events": results}


def drain(fleet: Fleet, rate: float, seconds: float) -> dict[str, Any]:
    """Replica 1 leaves the set, drains, stops; replica 3 joins."""
    added: dict[str, Any] = {}

    def scale_down() -> dict[str, Any]:
        fleet.push([r for r in fleet.replicas if r != 1])
        got = fleet.wait_drained(1, 30.0)
        fleet.stop_replica(1)
        return {"replica": 1, **got}

    def scale_up() -> dict[str, Any]:
        added["id"] = fleet.add_replica()
        fleet.push(fleet.replicas)
        return {"replica_added": added["id"]}

    # POST: not retried, so any request sent to the leaving replica after the swap, or
    # cut by its stop before it finished, would show as a failure.
    out = asyncio.run(_steady(fleet.url + "/sleep?ms=50", rate, seconds,
                              [(seconds / 3, scale_down), (2 * seconds / 3, scale_up)], method="POST"))
    return {"rate": rate, "seconds": seconds, "request": "POST /sleep?ms=50", **out, "target_failed": 0}


def kill(fleet: Fleet, rate: float, seconds: float) -> dict[str, Any]:
    """Replica 2 dies (SIGKILL) while still in the set; the set catches up 1 s later."""
    before = fleet.retries_logged()
    victim = 2 if 2 in fleet.replicas else min(fleet.replicas)

    def die() -> dict[str, Any]:
        fleet.stop_replica(victim, signal.SIGKILL)
        return {"killed": victim}

    def catch_up() -> dict[str, Any]:
        fleet.push([r for r in fleet.replicas])
        return {"set": sorted(fleet.replicas)}

    out = asyncio.run(_steady(fleet.url + "/sleep?ms=50", rate, seconds,
                              [(seconds / 3, die), (seconds / 3 + 1.0, catch_up)]))
    return {"rate": rate, "seconds": seconds, "request": "GET /sleep?ms=50", **out,
            "retried_on_another_replica": fleet.retries_logged() - before, "target_failed": 0}


# --- replicas: preemption, update and scale-down under load (the controller, the engine, sim) -------

#: The replica every service of this part runs (the engine tests' own).
REPLICA = ROOT / "tests" / "fixtures" / "serve" / "replica.py"

SERVICE = """\
name: bench
service:
  readiness_probe:
    path: /health
    initial_delay_seconds: 120
    timeout_seconds: 2
  replica_policy:
    min_replicas: 1
    max_replicas: 2
    target_qps_per_replica: {target_qps}
    upscale_delay_seconds: 1
    downscale_delay_seconds: 5
    dynamic_ondemand_fallback: true
resources:
  cloud: gcp
  region: us-central1
  instance_type: e2-standard-2
  ports: 8081
  use_spot: true
envs:
  VERSION: '{version}'
run: exec python3 {replica}
"""


class Traffic:
    """A fixed rate of GETs through the endpoint (loopback), each one's start, end and
    outcome kept; the rate can change while it runs."""

    def __init__(self, url: str, rate: float, workers: int = 32) -> None:
        import concurrent.futures as cf
        import threading

        self.url = url
        self.rate = rate
        self.done: list[tuple[float, float, bool, str]] = []  # (start, end, ok, what)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = cf.ThreadPoolExecutor(max_workers=workers)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _one(self) -> None:
        import urllib.error
        import urllib.request

        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        t0 = time.time()
        try:
            with opener.open(self.url, timeout=30) as resp:
                resp.read()
                ok, what = resp.status == 200, str(resp.status)
        except urllib.error.HTTPError as exc:
            ok, what = False, str(exc.code)
        except Exception as exc:  # noqa: BLE001 - a failed request, counted
            ok, what = False, type(exc).__name__
        with self._lock:
            self.done.append((t0, time.time(), ok, what))

    def _run(self) -> None:
        nxt = time.monotonic()
        while not self._stop.is_set():
            self._pool.submit(self._one)
            nxt += 1.0 / self.rate
            self._stop.wait(max(0.0, nxt - time.monotonic()))

    def between(self, t0: float, t1: float) -> tuple[int, int, list[str]]:
        """(requests, failed, what failed) among those started in [t0, t1]."""
        with self._lock:
            sel = [d for d in self.done if t0 <= d[0] <= t1]
        bad = [d[3] for d in sel if not d[2]]
        return len(sel), len(bad), sorted(set(bad))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._pool.shutdown(wait=True)


def replicas(base: Path, rate: float, poll_s: float) -> dict[str, object]:
    """Seed 002's policy (spot with dynamic on-demand fallback), 2 replicas under
    ``rate`` requests/s of ``/slow?ms=50``: a spot replica preempted (failed requests;
    time to 2 READY again, and to 2 spot READY), a rolling update (failed requests,
    duration, never more than 3 replicas), a scale-down to 1 when the rate drops
    below one replica's target (failed requests)."""
    from skyplan.clouds.sim.preempt import preempt_cluster
    from skyplan.serve.store import ServeStore

    home = base / "serve-replicas"
    home.mkdir()
    saved = dict(os.environ)
    os.environ.update({"SKYPLAN_HOME": str(home), "SKYPLAN_JOBS_DB_URL": f"sqlite:///{home / 'jobs.db'}",
                       "SKYPLAN_SERVE_POLL_S": str(poll_s), "SKYPLAN_SERVE_LB_WINDOW_S": "4",
                       "SKYPLAN_SERVE_SPOT_RETRY_S": "2"})
    scenario = home / "scenario.yaml"
    scenario.write_text("default: ok\nlatency_s: 0\n")
    target_qps = max(1.0, rate * 0.75)  # the rate wants 2 replicas; a quarter of it wants 1

    def service(version: int) -> Path:
        p = home / f"bench-v{version}.yaml"
        p.write_text(SERVICE.format(target_qps=target_qps, version=version, replica=REPLICA))
        return p

    def cli(*args: str) -> str:
        r = subprocess.run([sys.executable, "-m", "skyplan", *args], capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise SystemExit(f"skyplan {' '.join(args)}: {r.stderr}")
        return r.stdout

    store = ServeStore()

    def reps() -> list:
        return store.replicas("bench")

    def wait(cond, what: str, deadline_s: float = 300.0):  # noqa: ANN001, ANN202
        end = time.monotonic() + deadline_s
        while True:
            got = cond()
            if got:
                return got
            if time.monotonic() > end:
                raise SystemExit(f"timed out waiting for {what}: {[(r.id, r.status.value) for r in reps()]}")
            time.sleep(0.05)

    def ready(spot: bool | None = None, version: int | None = None) -> list:
        return [r for r in reps() if r.status.value == "READY" and (spot is None or r.use_spot is spot)
                and (version is None or r.version == version)]

    out: dict[str, object] = {"rate_rps": rate, "poll_s": poll_s}
    traffic = None
    try:
        endpoint = json.loads(cli("serve", "up", str(service(1)), "-n", "bench", "--simulate", str(scenario),
                                  "--yes", "--detach", "--json"))["endpoint"]
        wait(lambda: ready(), "a READY replica")
        traffic = Traffic(endpoint + "/slow?ms=50", rate)
        wait(lambda: len(ready(spot=True)) == 2 and len(reps()) == 2, "2 spot READY under load")
        time.sleep(2)
        # 1. preemption
        victim = ready(spot=True)[0]
        t0 = time.time()
        preempt_cluster(victim.cluster)
        wait(lambda: victim.id not in {r.id for r in ready()}, "the victim out")
        t_out = time.time()
        wait(lambda: len(ready()) == 2, "2 READY again")
        t_full = time.time()
        by = "the on-demand fallback" if any(not r.use_spot for r in ready()) else "spot"
        wait(lambda: len(ready(spot=True)) == 2 and len(reps()) == 2, "2 spot READY again", 600)
        t_spot = time.time()
        n, bad, what = traffic.between(t0, t_spot)
        out["preemption"] = {"out_of_ready_set_s": round(t_out - t0, 2), "full_capacity_s": round(t_full - t0, 2),
                             "full_capacity_by": by,
                             "spot_again_s": round(t_spot - t0, 2), "requests": n, "failed": bad, "errors": what}
        # 2. rolling update
        live_max = 0
        t1 = time.time()
        cli("serve", "update", "bench", str(service(2)), "--yes", "--json")

        def rolled() -> bool:
            nonlocal live_max
            rs = reps()
            live_max = max(live_max, sum(1 for r in rs if r.status.live))
            return len([r for r in rs if r.version == 2 and r.status.value == "READY"]) == 2 and \
                all(r.version == 2 for r in rs)

        wait(rolled, "version 2 rolled out", 600)
        t2 = time.time()
        n, bad, what = traffic.between(t1, t2)
        out["update"] = {"duration_s": round(t2 - t1, 2), "max_live_replicas": live_max, "requests": n,
                         "failed": bad, "errors": what}
        # 3. scale-down: a quarter of the rate wants one replica
        traffic.rate = rate / 4
        t3 = time.time()
        wait(lambda: len(reps()) == 1 and len(ready()) == 1, "scaled down to 1", 600)
        t4 = time.time()
        n, bad, what = traffic.between(t3, t4)
        out["scale_down"] = {"duration_s": round(t4 - t3, 2), "requests": n, "failed": bad, "errors": what}
    finally:
        if traffic is not None:
            traffic.stop()
        try:
            cli("serve", "down", "bench", "--yes", "--json")
        finally:
            store.close()
            os.environ.clear()
            os.environ.update(saved)
    return out


# --- the command -----------------------------------------------------------------------------

PARTS = ("latency", "throughput", "drain", "kill", "replicas")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_replica":
        replica_main()
        return 0
    if len(sys.argv) > 2 and sys.argv[1] == "_lb":
        lb_main(sys.argv[2])
        return 0
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", default=",".join(PARTS), help=f"comma-separated: {','.join(PARTS)}")
    ap.add_argument("--rate", type=float, default=200.0, help="latency: pairs/s; drain, kill: requests/s")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--poll-s", type=float, default=1.0, help="replicas: the controller's probe interval "
                    "(SKYPLAN_SERVE_POLL_S)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    parts = [p for p in args.part.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        ap.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    out: dict[str, Any] = {"loadavg_start": os.getloadavg()[0], "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="skyplan-bench-serve-") as tmp:
        for part in parts:
            (Path(tmp) / part).mkdir()
            if part == "replicas":  # the controller's path: no Fleet, the engine on sim
                out[part] = replicas(Path(tmp) / part, min(args.rate, 40.0), args.poll_s)
                _print_part(part, out[part], args.json)
                continue
            fleet = Fleet(Path(tmp) / part)
            try:
                if part == "latency":
                    out[part] = latency(fleet, args.rate, args.seconds)
                elif part == "throughput":
                    out[part] = throughput(fleet, args.concurrency, min(args.seconds, 5.0))
                elif part == "drain":
                    out[part] = drain(fleet, min(args.rate, 100.0), args.seconds)
                else:
                    out[part] = kill(fleet, min(args.rate, 100.0), args.seconds)
                out[part]["lb_metrics"] = fleet.metrics()
            finally:
                fleet.close()
            _print_part(part, out[part], args.json)
    out["loadavg_end"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(out, indent=2, default=str))
    else:
        print(f"load average: {out['loadavg_start']:.2f} at start, {out['loadavg_end']:.2f} at end "
              f"({out['cpus']} CPUs)")
    return 0


def _print_part(name: str, d: dict[str, Any], as_json: bool) -> None:
    if as_json:
        return
    if name == "latency":
        print(f"added latency ({d['mode']}; {d['rate_pairs_per_s']:.0f} pairs/s for {d['seconds']:.0f} s, "
              f"{d['proxied']['n']} each): p50 {d['direct']['p50_ms']:.3f} ms direct, {d['proxied']['p50_ms']:.3f} "
              f"ms via the LB: +{d['added_p50_ms']:.3f} ms (target <= 1); p99 {d['direct']['p99_ms']:.3f} ms, "
              f"{d['proxied']['p99_ms']:.3f} ms: +{d['added_p99_ms']:.3f} ms (target <= 5)")
    elif name == "throughput":
        a, p = d["replica_alone"], d["through_lb_two_replicas"]
        print(f"throughput at saturation ({d['concurrency']} in flight, {d['seconds']:.0f} s): replica alone "
              f"{a['requests_per_s']:.0f} req/s, through the LB over 2 replicas {p['requests_per_s']:.0f} req/s "
              f"({d['ratio']:.2f}x; failed {a['failed']} / {p['failed']})")
    elif name == "drain":
        print(f"scale-down with drain under {d['rate']:.0f} req/s of {d['request']} for {d['seconds']:.0f} s: "
              f"{d['failed']} failed of {d['sent']} (target 0); {json.dumps(d['events'])}"
              + (f"; e.g. {d['failure_samples']}" if d["failed"] else ""))
    elif name == "replicas":
        p, u, sd = d["preemption"], d["update"], d["scale_down"]
        print(f"replicas through the controller (sim, real engine; {d['rate_rps']:.0f} req/s of GET /slow?ms=50, "
              f"probe every {d['poll_s']:g} s):")
        print(f"  spot replica preempted: out of the READY set after {p['out_of_ready_set_s']:.2f} s, full capacity "
              f"again after {p['full_capacity_s']:.2f} s ({p['full_capacity_by']}), spot again after "
              f"{p['spot_again_s']:.2f} s; {p['failed']} failed of {p['requests']} (target 0) {p['errors'] or ''}")
        print(f"  rolling update: {u['duration_s']:.2f} s, at most {u['max_live_replicas']} live replicas (max 2 + "
              f"surge 1); {u['failed']} failed of {u['requests']} (target 0) {u['errors'] or ''}")
        print(f"  scale-down 2 -> 1 (rate / 4): {sd['duration_s']:.2f} s; {sd['failed']} failed of {sd['requests']} "
              f"(target 0) {sd['errors'] or ''}")
    else:
        print(f"replica SIGKILLed while in the set under {d['rate']:.0f} req/s of {d['request']} for "
              f"{d['seconds']:.0f} s: {d['failed']} failed of {d['sent']} (target 0); "
              f"{d['retried_on_another_replica']} retried on another replica"
              + (f"; e.g. {d['failure_samples']}" if d["failed"] else ""))


if __name__ == "__main__":
    sys.exit(main())
