"""The serve load balancer (skyplan.serve.lb) against real aiohttp replica servers on
loopback ports: streaming both ways, the two policies, READY-set swaps and drain,
the one retry on another replica, 503 without replicas, headers, metrics, and
in-flight counters that stay exact under errors, cut streams and clients that leave."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skyplan.errors import InputError
from skyplan.serve.lb import LoadBalancer

GUARD_S = 10.0  # a deadlock guard, not a measured time: a buffering proxy never gets there


class Replica:
    """A replica: a real aiohttp server on a free loopback port.

    ``mode`` "ok" serves the paths below; "reset" aborts every connection as soon as
    a request's headers arrive (before any response byte). ``hits`` lists (method,
    path) of every request it saw."""

    def __init__(self, name: str, mode: str = "ok") -> None:
        self.name, self.mode = name, mode
        self.hits: list[tuple[str, str]] = []
        self.gate = asyncio.Event()  # /hold waits for it
        self.held = 0  # /hold requests waiting now
        self.arrived: dict[str, asyncio.Event] = {}  # /hold?key=K: set when K arrives
        self.first_seen = asyncio.Event()  # /stream: the client has the first chunk
        self.runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def arrival(self, key: str) -> asyncio.Event:
        return self.arrived.setdefault(key, asyncio.Event())

    async def start(self) -> Replica:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        # handler_cancellation: a /hold whose client (the proxy) went away stops holding.
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5,
                                    handler_cancellation=True)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        self.gate.set()
        self.first_seen.set()
        if self.runner is not None:
            await self.runner.cleanup()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.hits.append((request.method, request.path))
        if self.mode == "reset":
            assert request.transport is not None
            request.transport.abort()
            await asyncio.sleep(3600)  # cancelled: the connection is gone
        path = request.path
        if path == "/hold":
            key = request.query.get("key", "")
            self.arrival(key).set()
            self.held += 1
            try:
                await self.gate.wait()
            finally:
                self.held -= 1
            return web.Response(text=self.name)
        if path == "/stream":
            resp = web.StreamResponse()
            await resp.prepare(request)
            await resp.write(b"first;")
            await self.first_seen.wait()  # only after the client has the first chunk
            await resp.write(b"rest")
            await resp.write_eof()
            return resp
        if path == "/upload":
            first = await request.content.readany()
            resp = web.StreamResponse()
            await resp.prepare(request)
            await resp.write(b"got:" + first)
            rest = await request.content.read()  # the client sends it only after reading "got:"
            await resp.write(b"|rest:" + rest)
            await resp.write_eof()
            return resp
        if path == "/headers":
            body = json.dumps({"headers": [[k, v] for k, v in request.headers.items()],
                               "body": (await request.read()).decode()})
            return web.Response(text=body, headers={"X-Private": "1", "Connection": "X-Private",
                                                   "Keep-Alive": "timeout=5", "Proxy-Authenticate": "Basic",
                                                   "Set-Cookie": "s=1", "X-Replica": self.name})
        if path == "/gzip":
            return web.Response(body=gzip.compress(b"hello " * 100),
                                headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"})
        if path == "/broken":
            resp = web.StreamResponse(headers={"Content-Length": "100"})
            await resp.prepare(request)
            await resp.write(b"0123456789")
            await asyncio.sleep(0)
            assert request.transport is not None
            request.transport.abort()
            return resp
        return web.Response(text=self.name)


def dead_url() -> str:
    """A loopback address nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


class Setup:
    def __init__(self, lb: LoadBalancer, port: int, replicas: list[Replica], session: aiohttp.ClientSession) -> None:
        self.lb, self.port, self.replicas, self.session = lb, port, replicas, session
        self.url = f"http://127.0.0.1:{port}"

    async def get(self, path: str, method: str = "GET", **kw: Any) -> tuple[int, str]:
        async with self.session.request(method, self.url + path, **kw) as r:
            return r.status, await r.text()


def run(body: Callable[[Setup], Awaitable[None]], *modes: str, policy: str = "least_load",
        lb_kwargs: dict[str, Any] | None = None, ready: dict[int, str] | None = None) -> None:
    """Start replicas (one per mode), a LoadBalancer over them (ids 1..n) and a client; run ``body``."""

    async def go() -> None:
        replicas = [await Replica(f"r{i}", mode).start() for i, mode in enumerate(modes, 1)]
        lb = LoadBalancer(policy=policy, **(lb_kwargs or {}))
        port = await lb.start()
        lb.set_ready(ready if ready is not None else {i: r.url for i, r in enumerate(replicas, 1)})
        session = aiohttp.ClientSession(auto_decompress=False)
        try:
            await asyncio.wait_for(body(Setup(lb, port, replicas, session)), GUARD_S)
        finally:
            await session.close()
            for r in replicas:
                r.gate.set()
            await lb.stop()
            for r in replicas:
                await r.stop()

    asyncio.run(go())


async def until(cond: Callable[[], bool]) -> None:
    while not cond():
        await asyncio.sleep(0.001)


# --- streaming -------------------------------------------------------------------------------


def test_a_response_streams_chunk_by_chunk() -> None:
    """The replica sends the rest only after the client has the first chunk: a proxy that
    buffered the response would never deliver that chunk (the guard would fire)."""

    async def body(s: Setup) -> None:
        async with s.session.get(s.url + "/stream") as r:
            assert r.status == 200
            assert await r.content.readexactly(len(b"first;")) == b"first;"
            s.replicas[0].first_seen.set()
            assert await r.read() == b"rest"
        assert s.lb.metrics().failures == 0

    run(body, "ok")


def test_a_request_body_streams_while_the_response_does() -> None:
    """The client sends the second part of its body only after it has read the replica's
    answer to the first part: both bodies must flow at once through the proxy."""

    async def body(s: Setup) -> None:
        answered = asyncio.Event()

        async def upload() -> AsyncIterator[bytes]:
            yield b"one"
            await answered.wait()
            yield b"two"

        async with s.session.post(s.url + "/upload", data=upload()) as r:
            assert await r.content.readexactly(len(b"got:one")) == b"got:one"
            answered.set()
            assert await r.read() == b"|rest:two"

    run(body, "ok")


def test_a_body_with_a_length_keeps_it_and_encoded_bodies_pass_untouched() -> None:
    async def body(s: Setup) -> None:
        status, text = await s.get("/headers", "POST", data=b"x" * 10)
        seen = {k.lower(): v for k, v in json.loads(text)["headers"]}
        assert status == 200 and json.loads(text)["body"] == "x" * 10
        assert seen["content-length"] == "10" and "transfer-encoding" not in seen
        async with s.session.get(s.url + "/gzip") as r:
            assert r.headers["Content-Encoding"] == "gzip"
            assert await r.read() == gzip.compress(b"hello " * 100)  # not decompressed on the way

    run(body, "ok")


def test_a_replica_that_breaks_off_mid_body_cuts_the_clients_stream() -> None:
    async def body(s: Setup) -> None:
        async with s.session.get(s.url + "/broken") as r:
            assert r.status == 200
            with pytest.raises(aiohttp.ClientPayloadError):
                await r.read()
        await until(lambda: s.lb.metrics().failures == 1)
        assert s.lb.inflight(1) == 0

    run(body, "ok")


def test_a_client_that_leaves_mid_stream_frees_the_replica_and_is_no_failure() -> None:
    async def body(s: Setup) -> None:
        replica = s.replicas[0]
        async with s.session.get(s.url + "/stream") as r:
            assert await r.content.readexactly(len(b"first;")) == b"first;"
            assert s.lb.inflight(1) == 1
            r.close()  # the client hangs up; the replica would send the rest only later
        await until(lambda: s.lb.inflight(1) == 0)
        assert s.lb.metrics().failures == 0
        # The proxy let go of the replica's stream too: a new request is served at once.
        assert await s.get("/who") == (200, replica.name)

    run(body, "ok")


# --- policies --------------------------------------------------------------------------------


def test_least_load_sends_new_requests_to_the_idle_replica() -> None:
    async def body(s: Setup) -> None:
        a, b = s.replicas
        held = asyncio.create_task(s.get("/hold"))
        await until(lambda: a.held + b.held == 1)
        busy = 1 if a.held else 2
        assert s.lb.inflight(busy) == 1 and s.lb.inflight(3 - busy) == 0
        names = [(await s.get("/who"))[1] for _ in range(4)]
        assert names == [f"r{3 - busy}"] * 4  # never the busy one
        a.gate.set(), b.gate.set()
        assert (await held)[0] == 200
        assert s.lb.metrics().inflight == {1: 0, 2: 0}

    run(body, "ok", "ok")


def test_round_robin_takes_each_replica_in_turn_busy_or_not() -> None:
    async def body(s: Setup) -> None:
        a, b = s.replicas
        held = asyncio.create_task(s.get("/hold"))
        await until(lambda: a.held + b.held == 1)
        names = [(await s.get("/who"))[1] for _ in range(4)]
        assert names in (["r2", "r1", "r2", "r1"], ["r1", "r2", "r1", "r2"])
        assert names[1] == ("r1" if a.held else "r2")  # the busy one still gets its turn
        a.gate.set(), b.gate.set()
        await held

    run(body, "ok", "ok", policy="round_robin")


def test_an_unknown_policy_is_refused() -> None:
    with pytest.raises(InputError, match="policy"):
        LoadBalancer(policy="fastest")


# --- the READY set and drain -----------------------------------------------------------------


def test_a_swapped_out_replica_gets_no_new_request_and_drains() -> None:
    async def body(s: Setup) -> None:
        a, b = s.replicas
        loop = asyncio.get_running_loop()
        s.lb.set_ready({1: a.url})
        held = asyncio.create_task(s.get("/hold"))
        await until(lambda: a.held == 1)
        # From another thread, as the controller does: applied when push returns.
        seen = await loop.run_in_executor(None, lambda: (s.lb.push({2: b.url}, loop), s.lb.ready())[1])
        assert seen == {2: b.url}
        assert s.lb.inflight(1) == 1
        for _ in range(5):
            assert await s.get("/who") == (200, "r2")
        assert a.hits == [("GET", "/hold")]
        assert await loop.run_in_executor(None, s.lb.wait_drained, 1, 0.05, loop) is False
        drained = loop.run_in_executor(None, s.lb.wait_drained, 1, GUARD_S, loop)
        a.gate.set()
        assert await held == (200, "r1")  # the in-flight request finished on the old replica
        assert await drained is True
        assert s.lb.inflight(1) == 0 and s.lb.metrics().inflight == {2: 0}

    run(body, "ok", "ok")


def test_only_replicas_in_the_set_are_used() -> None:
    async def body(s: Setup) -> None:
        a, b = s.replicas
        s.lb.set_ready({1: a.url})
        assert {(await s.get("/who"))[1] for _ in range(4)} == {"r1"}
        s.lb.set_ready({2: b.url})
        assert {(await s.get("/who"))[1] for _ in range(4)} == {"r2"}
        assert len(a.hits) == 4 and len(b.hits) == 4

    run(body, "ok", "ok")


def test_no_ready_replica_is_a_503_with_retry_after() -> None:
    async def body(s: Setup) -> None:
        async with s.session.get(s.url + "/who") as r:
            assert r.status == 503
            assert await r.text() == "no ready replica\n"
            assert int(r.headers["Retry-After"]) > 0
        m = s.lb.metrics()
        assert (m.requests, m.failures, m.inflight) == (1, 1, {})

    run(body, ready={})


# --- retry -----------------------------------------------------------------------------------


def test_an_idempotent_request_is_retried_once_on_another_replica() -> None:
    async def body(s: Setup) -> None:
        bad, good = s.replicas
        results = [await s.get("/who") for _ in range(4)]
        assert results == [(200, "r2")] * 4
        assert bad.hits == [("GET", "/who")] * 2  # round robin: every other request went there first, once
        assert good.hits == [("GET", "/who")] * 4
        assert s.lb.metrics().failures == 0
        assert s.lb.metrics().inflight == {1: 0, 2: 0}

    run(body, "reset", "ok", policy="round_robin")


def test_a_replica_nobody_listens_on_is_retried_elsewhere() -> None:
    async def body(s: Setup) -> None:
        for method in ("GET", "HEAD", "DELETE", "OPTIONS"):
            status, _ = await s.get("/who", method)
            assert status == 200
        assert s.lb.metrics().failures == 0

    async def wrapped(s: Setup) -> None:
        s.lb.set_ready({1: dead_url(), 2: s.replicas[0].url})
        await body(s)

    run(wrapped, "ok", policy="round_robin")


def test_a_post_is_not_retried_and_gets_502() -> None:
    async def body(s: Setup) -> None:
        bad, good = s.replicas
        statuses = sorted([(await s.get("/who", "POST", data=b"payload"))[0] for _ in range(4)])
        assert statuses == [200, 200, 502, 502]
        assert bad.hits == [("POST", "/who")] * 2 and good.hits == [("POST", "/who")] * 2  # no second try
        assert s.lb.metrics().failures == 2

    run(body, "reset", "ok", policy="round_robin")


def test_a_post_whose_connection_could_not_be_made_is_retried_elsewhere() -> None:
    """Nothing reached the replica (connection refused): safe for any method."""

    async def body(s: Setup) -> None:
        s.lb.set_ready({1: dead_url(), 2: s.replicas[0].url})
        results = [await s.get("/who", "POST", data=b"payload") for _ in range(4)]
        assert results == [(200, "r1")] * 4 and len(s.replicas[0].hits) == 4
        assert s.lb.metrics().failures == 0

    run(body, "ok", policy="round_robin")


def test_the_retry_happens_once_only() -> None:
    async def body(s: Setup) -> None:
        first, second, good = s.replicas
        status, text = await s.get("/who")
        assert status == 502 and "failed before responding" in text
        assert len(first.hits) == 1 and len(second.hits) == 1 and good.hits == []

    run(body, "reset", "reset", "ok", policy="round_robin")


# --- headers ---------------------------------------------------------------------------------


def test_hop_by_hop_headers_are_dropped_and_forwarding_headers_set() -> None:
    async def body(s: Setup) -> None:
        headers = {"Connection": "keep-alive, X-Hop", "X-Hop": "1", "Keep-Alive": "timeout=9", "TE": "trailers",
                   "Proxy-Authorization": "Basic eA==", "X-Forwarded-For": "10.1.1.1", "X-Kept": "yes",
                   "Host": "api.example.test"}
        async with s.session.get(s.url + "/headers", headers=headers) as r:
            seen = {k.lower(): v for k, v in json.loads(await r.text())["headers"]}
            for name in ("x-private", "keep-alive", "proxy-authenticate"):
                assert name not in {k.lower() for k in r.headers}, name
            assert r.headers["X-Replica"] == "r1" and r.headers["Set-Cookie"].startswith("s=1")
        for name in ("x-hop", "keep-alive", "te", "proxy-authorization"):
            assert name not in seen, name
        assert seen["x-kept"] == "yes"
        assert seen["x-forwarded-for"] == "10.1.1.1, 127.0.0.1"
        assert seen["x-forwarded-proto"] == "http"
        assert seen["x-forwarded-host"] == "api.example.test"
        assert seen["host"] == s.replicas[0].url.removeprefix("http://")
        # Nothing the client did not send: no Accept-Encoding, no cookie from another client's answer.
        async with aiohttp.ClientSession(skip_auto_headers=("Accept-Encoding", "Accept", "User-Agent")) as other:
            async with other.get(s.url + "/headers") as r:
                seen = {k.lower() for k, _ in json.loads(await r.text())["headers"]}
        assert "cookie" not in seen and "accept-encoding" not in seen and "user-agent" not in seen

    run(body, "ok")


# --- metrics ---------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 0.001  # each reading 1 ms later: latencies are known
        return self.now


def test_metrics_count_requests_rate_latency_and_failures_over_the_window() -> None:
    clock = Clock()

    async def body(s: Setup) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(5):
            assert (await s.get("/who"))[0] == 200
        m = await loop.run_in_executor(None, s.lb.metrics)  # from another thread, as the controller reads it
        assert (m.requests, m.failures) == (5, 0)
        assert m.qps == pytest.approx(5.0)  # 5 starts in the first second of the window
        assert m.p50_ms is not None and m.p99_ms is not None and 0 < m.p50_ms <= m.p99_ms
        s.lb.set_ready({})
        assert (await s.get("/who"))[0] == 503
        clock.now += 61.0  # the window has moved past them all
        m = s.lb.metrics()
        assert (m.qps, m.p50_ms, m.p99_ms) == (0.0, None, None)
        assert (m.requests, m.failures) == (6, 1)
        clock.now += 1.0
        assert (await s.get("/who"))[0] == 503
        assert s.lb.metrics().qps == pytest.approx(1 / 60)

    run(body, "ok", lb_kwargs={"clock": clock})


# --- counters under errors and concurrency ---------------------------------------------------

OPS = ("ok", "hold", "get_reset", "post_reset", "get_dead", "client_leaves", "broken", "swap")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(st.sampled_from(OPS), min_size=1, max_size=14),
       policy=st.sampled_from(("least_load", "round_robin")))
def test_inflight_counts_stay_exact_under_errors_and_concurrency(ops: list[str], policy: str) -> None:
    """Whatever mix of successes, resets, dead replicas, cut streams, clients that leave
    and set swaps runs at once: no count is ever negative, while requests are held the
    counts are exactly the held requests, and at the end every count is zero."""

    async def body(s: Setup) -> None:
        good1, good2, bad = s.replicas
        dead = dead_url()
        s.lb.set_ready({1: good1.url, 2: good2.url, 3: bad.url})
        lowest = [0]
        stop = asyncio.Event()

        async def sample() -> None:
            while not stop.is_set():
                counts = s.lb.metrics().inflight.values()
                lowest[0] = min([lowest[0], *counts])
                await asyncio.sleep(0)

        async def one(i: int, op: str) -> None:
            if op == "swap":
                s.lb.set_ready({1: good1.url, 4: dead, 3: bad.url} if i % 2 else {2: good2.url, 3: bad.url})
            elif op == "hold":
                await s.get(f"/hold?key={i}")
            elif op == "client_leaves":
                task = asyncio.create_task(s.get(f"/hold?key={i}"))
                waits = [asyncio.create_task(r.arrival(str(i)).wait()) for r in (good1, good2)]
                await asyncio.wait([task, *waits], return_when=asyncio.FIRST_COMPLETED)
                for w in waits:
                    w.cancel()
                task.cancel()  # the client goes away while its request is held
                await asyncio.gather(task, *waits, return_exceptions=True)
            elif op == "get_reset":
                await s.get("/who")
            elif op == "post_reset":
                await s.get("/who", "POST", data=b"p")
            elif op == "get_dead":
                await s.get("/who", "PUT")
            elif op == "broken":
                try:
                    await s.get("/broken")
                except aiohttp.ClientPayloadError:
                    pass
            else:
                await s.get("/who")

        sampler = asyncio.create_task(sample())
        holds = [i for i, op in enumerate(ops) if op == "hold"]
        tasks = [asyncio.create_task(one(i, op)) for i, op in enumerate(ops)]
        await asyncio.gather(*[t for i, t in enumerate(tasks) if i not in holds])
        # Only held requests remain (those that found a good replica): the counts are
        # exactly those, once every client that left has been noticed by the proxy.
        await until(lambda: good1.held + good2.held == len([i for i in holds if not tasks[i].done()]))
        await until(lambda: sum(s.lb.metrics().inflight.values()) == good1.held + good2.held)
        good1.gate.set(), good2.gate.set()
        await asyncio.gather(*tasks)
        await until(lambda: not any(s.lb.metrics().inflight.values()))
        stop.set()
        await sampler
        assert lowest[0] >= 0
        assert s.lb.inflight(1) == s.lb.inflight(2) == s.lb.inflight(3) == s.lb.inflight(4) == 0

    run(body, "ok", "ok", "reset", policy=policy)

