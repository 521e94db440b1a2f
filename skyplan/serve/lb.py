"""The service endpoint: a streaming HTTP reverse proxy in front of the READY replicas.

One ``LoadBalancer`` per service, on the service process's asyncio loop (aiohttp's
low-level server for clients, one pooled ``ClientSession`` towards the replicas).

Contract:

- **Streaming.** Request and response bodies are copied chunk by chunk as they
  arrive, in both directions at once; nothing is buffered whole, so token streams,
  server-sent events and large uploads pass with their own pacing. Bodies pass
  untouched (no decompression, no re-encoding); a body with a ``Content-Length``
  keeps it, others are sent chunked.
- **Choice.** ``least_load`` (the default): the READY replica with the fewest
  requests in flight through this proxy, ties broken in rotation; ``round_robin``:
  each READY replica in turn.
- **The READY set** is replaced whole by ``set_ready`` (on the loop) or ``push``
  (from another thread; returns once applied). A request picks its replica from
  the set current at that moment, so after the swap no new request reaches a
  replica left out; requests already in flight there finish (drain:
  ``inflight``/``wait_drained``).
- **Retry.** A request whose replica fails before any response byte (connect
  error or timeout, reset, EOF before the status line) is retried once, on a
  *different* READY replica, when its method is idempotent (GET HEAD OPTIONS PUT
  DELETE TRACE) and its body has not started to be read; any method is retried so
  when the connection to the replica could not even be made (nothing was sent).
  Otherwise the client gets ``502`` (``504`` for a connect timeout). aiohttp's own silent resend of an
  idempotent request on a fresh connection to the *same* replica is turned off:
  the one retry goes elsewhere.
- **No READY replica** -> ``503`` with the one-line body ``no ready replica`` and
  ``Retry-After``.
- **Headers.** Hop-by-hop headers (RFC 9110 7.6.1, and any named in
  ``Connection``) are dropped both ways. The replica sees its own address as
  ``Host``; the client's goes in ``X-Forwarded-Host``. ``X-Forwarded-For`` gets the
  client's address appended; ``X-Forwarded-Proto`` is kept if a proxy in front set
  it, else set to this endpoint's scheme. No cookie jar: a ``Set-Cookie`` from a
  replica goes to its client only. ``Upgrade`` (WebSocket) is not proxied.
- **Counters.** A replica's in-flight count is raised when it is picked and
  lowered in ``finally`` when that attempt ends, however it ends (error, client
  gone, cancellation); it never goes below zero.
- **Metrics** (``metrics()``, safe from any thread): requests/s over the last
  ``window_s`` and p50/p99 latency (request start to the last byte sent) of the
  requests completed in that window.
- **Logs.** One access line per request (INFO) to the given logger; nothing is
  printed.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass

from aiohttp import (
    ClientConnectorError,
    ClientError,
    ClientSession,
    ClientTimeout,
    ConnectionTimeoutError,
    DummyCookieJar,
    ServerTimeoutError,
    TCPConnector,
    web,
)
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from skyplan.errors import InputError

POLICIES = ("least_load", "round_robin")
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
# RFC 9110 7.6.1, plus the legacy names still seen in the wild.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
                        "proxy-authorization", "te", "trailer", "trailers", "transfer-encoding", "upgrade"})
# Set by us (Host from the replica URL) or handled by our own server (Expect: the
# 100-continue exchange is with the client, not forwarded).
_REQUEST_DROP = HOP_BY_HOP | {"host", "expect"}
NO_REPLICA_BODY = b"no ready replica\n"
RETRY_AFTER_S = 1
#: Latency samples kept for the percentiles: beyond this many completions in the
#: window, the percentiles are those of the latest ones.
MAX_SAMPLES = 100_000
# Idle pooled connections to a replica are closed after this long: below the
# keep-alive of common servers (gunicorn 2 s, uvicorn 5 s), so a pooled connection
# is almost never one the replica is closing (which a POST could not survive).
POOL_KEEPALIVE_S = 1.5


@dataclass(frozen=True)
class LBMetrics:
    """A snapshot of the proxy's figures."""

    qps: float  # requests started per second over the last window
    p50_ms: float | None  # latency of requests completed in the window; None without any
    p99_ms: float | None
    requests: int  # total since start
    failures: int  # total since start: error responses made by the proxy itself (no replica, 502/504), cut streams
    inflight: dict[int, int]  # replica id -> requests in flight (READY ones, and draining ones with some)


class _Attempt:
    """One request's journey: which replicas it went to, and whether its body started."""

    __slots__ = ("tried", "body_started", "replica", "note")

    def __init__(self) -> None:
        self.tried: list[int] = []
        self.body_started = False
        self.replica: int | None = None
        self.note = ""


class _Response(web.StreamResponse):
    """Headers held back until the first body bytes or the end (``_forward`` sends them
    itself when neither has come yet): one send instead of two for most answers."""

    _send_headers_immediately = False


class _Failed(Exception):
    """An attempt failed before any response byte: the client may still get a retry."""

    def __init__(self, exc: BaseException, status: int) -> None:
        super().__init__(str(exc))
        self.exc = exc
        self.status = status


class LoadBalancer:
    """A reverse proxy over a READY set of replicas (see the module's contract)."""

    def __init__(self, *, policy: str = "least_load", window_s: float = 60.0, connect_timeout_s: float = 5.0,
                 log: logging.Logger | None = None, max_connections_per_replica: int = 256,
                 shutdown_timeout_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        if policy not in POLICIES:
            raise InputError(f"unknown load balancing policy {policy!r}",
                             hint=f"use one of: {', '.join(POLICIES)}")
        if window_s <= 0:
            raise InputError(f"the metrics window must be positive, got {window_s}")
        self.policy = policy
        self.window_s = float(window_s)
        self.connect_timeout_s = connect_timeout_s
        self.log = log or logging.getLogger("skyplan.serve.lb")
        self._per_replica = max_connections_per_replica
        self._shutdown_timeout_s = shutdown_timeout_s
        self._clock = clock
        # Only the loop reads and replaces these two: the swap is one assignment.
        self._ready: dict[int, str] = {}
        self._ids: tuple[int, ...] = ()
        self._cursor = -1
        self._inflight: dict[int, int] = {}
        self._drain_waiters: dict[int, list[asyncio.Future[None]]] = {}
        # What metrics() reads from other threads.
        self._lock = threading.Lock()
        self._started_at = clock()
        self._starts: collections.deque[list[float]] = collections.deque()  # [second, count]
        self._latencies: collections.deque[tuple[float, float]] = collections.deque(maxlen=MAX_SAMPLES)
        self._requests = 0
        self._failures = 0
        self._session: ClientSession | None = None
        self._runner: web.ServerRunner | None = None

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host:port`` (0: a free port); returns the bound port."""
        # No cap on all connections together (each replica has its own); beyond a
        # replica's cap, requests wait for a pooled connection (backpressure, no timeout).
        connector = TCPConnector(limit=0, limit_per_host=self._per_replica, keepalive_timeout=POOL_KEEPALIVE_S)
        # No total or read timeout: a response may stream for as long as the replica
        # keeps sending. Only establishing the TCP connection is bounded.
        timeout = ClientTimeout(total=None, connect=None, sock_connect=self.connect_timeout_s, sock_read=None)
        self._session = ClientSession(connector=connector, timeout=timeout, auto_decompress=False,
                                      cookie_jar=DummyCookieJar(),
                                      skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent"))
        # aiohttp resends an idempotent request that failed on a reused connection to
        # the same host; our one retry goes to another replica instead (its own test
        # client turns this off the same way).
        self._session._retry_connection = False  # type: ignore[attr-defined]
        server = web.Server(self._handle, handler_cancellation=True, access_log=None)
        self._runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=self._shutdown_timeout_s)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        try:
            await site.start()
        except OSError:
            await self._close()
            raise
        self._started_at = self._clock()
        return int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop listening, let requests in flight finish (bounded), close the pool."""
        await self._close()

    async def _close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- the READY set ---------------------------------------------------------------------

    def set_ready(self, replicas: Mapping[int, str]) -> None:
        """Replace the READY set (replica id -> base URL ``http://host:port``). Call on the loop."""
        ready = {int(rid): str(url).rstrip("/") for rid, url in replicas.items()}
        self._ready = ready
        self._ids = tuple(sorted(ready))

    def push(self, replicas: Mapping[int, str], loop: asyncio.AbstractEventLoop) -> None:
        """``set_ready`` from another thread: returns once the loop has applied it."""
        if not loop.is_running() or _on_loop(loop):
            self.set_ready(replicas)
            return
        done = threading.Event()
        failure: list[BaseException] = []

        def apply() -> None:
            try:
                self.set_ready(replicas)
            except BaseException as exc:  # noqa: BLE001 (re-raised in the caller's thread)
                failure.append(exc)
            finally:
                done.set()

        loop.call_soon_threadsafe(apply)
        # The loop may stop before running it: do not wait forever for a dead loop.
        while not done.wait(0.5):
            if not loop.is_running():
                if not done.is_set():
                    self.set_ready(replicas)
                break
        if failure:
            raise failure[0]

    def ready(self) -> dict[int, str]:
        """The current READY set."""
        return dict(self._ready)

    # --- drain -----------------------------------------------------------------------------

    def inflight(self, replica_id: int) -> int:
        """Requests in flight to ``replica_id`` through this proxy (0 when none)."""
        return self._inflight.get(replica_id, 0)

    async def drained(self, replica_id: int, timeout_s: float) -> bool:
        """On the loop: wait until ``replica_id`` has nothing in flight; False on timeout."""
        if self._inflight.get(replica_id, 0) == 0:
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._drain_waiters.setdefault(replica_id, []).append(fut)
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout_s)
            return True
        except asyncio.TimeoutError:
            return self._inflight.get(replica_id, 0) == 0
        finally:
            waiters = self._drain_waiters.get(replica_id)
            if waiters and fut in waiters:
                waiters.remove(fut)
                if not waiters:
                    del self._drain_waiters[replica_id]

    def wait_drained(self, replica_id: int, timeout_s: float, loop: asyncio.AbstractEventLoop) -> bool:
        """From another thread: block until ``replica_id`` has nothing in flight (True) or
        ``timeout_s`` passed (False). Take it out of the READY set first."""
        if _on_loop(loop):
            raise RuntimeError("wait_drained blocks: call it from another thread (on the loop: await drained())")
        if not loop.is_running():
            return self.inflight(replica_id) == 0
        future = asyncio.run_coroutine_threadsafe(self.drained(replica_id, timeout_s), loop)
        try:
            return future.result(timeout_s + 5.0)
        except (TimeoutError, asyncio.CancelledError):
            future.cancel()
            return self.inflight(replica_id) == 0

    # --- metrics ---------------------------------------------------------------------------

    def metrics(self) -> LBMetrics:
        """A consistent snapshot; safe from any thread."""
        now = self._clock()
        with self._lock:
            self._prune(now)
            started = sum(count for _, count in self._starts)
            samples = [ms for _, ms in self._latencies]
            requests, failures = self._requests, self._failures
            inflight = {rid: 0 for rid in self._ids}
            inflight.update(self._inflight)
        samples.sort()  # outside the lock: the loop records every request under it
        # Early on, requests/s is over the time since start (at least 1 s), not the
        # whole window: a fresh endpoint under load must not read as nearly idle.
        span = max(1.0, min(self.window_s, now - self._started_at))
        return LBMetrics(qps=started / span, p50_ms=_percentile(samples, 50), p99_ms=_percentile(samples, 99),
                         requests=requests, failures=failures, inflight=inflight)

    def _prune(self, now: float) -> None:
        horizon = now - self.window_s
        while self._starts and self._starts[0][0] + 1.0 <= horizon:
            self._starts.popleft()
        while self._latencies and self._latencies[0][0] < horizon:
            self._latencies.popleft()

    def _record_start(self, now: float) -> None:
        second = math.floor(now)
        with self._lock:
            self._requests += 1
            if self._starts and self._starts[-1][0] == second:
                self._starts[-1][1] += 1
            else:
                self._starts.append([second, 1])
                self._prune(now)

    def _record_end(self, now: float, began: float, failed: bool) -> None:
        with self._lock:
            self._latencies.append((now, (now - began) * 1000.0))
            if failed:
                self._failures += 1

    # --- choosing a replica ----------------------------------------------------------------

    def _pick(self, exclude: list[int]) -> int | None:
        ids = self._ids
        n = len(ids)
        if not n:
            return None
        # The turn moves on first picks only: a retry does not take the next
        # replica's turn away from the next request.
        start = (self._cursor + 1) % n
        if not exclude:
            self._cursor = start
        best, best_load = None, 0
        for k in range(n):
            rid = ids[(start + k) % n]
            if rid in exclude:
                continue
            if self.policy == "round_robin":
                return rid
            load = self._inflight.get(rid, 0)
            if best is None or load < best_load:
                best, best_load = rid, load
                if load == 0:
                    break
        return best

    def _acquire(self, rid: int) -> None:
        with self._lock:
            self._inflight[rid] = self._inflight.get(rid, 0) + 1

    def _release(self, rid: int) -> None:
        with self._lock:
            left = self._inflight.get(rid, 0) - 1
            if left > 0:
                self._inflight[rid] = left
            else:
                self._inflight.pop(rid, None)
        if left <= 0:
            for fut in self._drain_waiters.pop(rid, []):
                if not fut.done():
                    fut.set_result(None)

    # --- the proxy -------------------------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        began = self._clock()
        self._record_start(began)
        attempt = _Attempt()
        response: web.StreamResponse | None = None
        failed = True
        try:
            response, failed = await self._proxy(request, attempt)
            return response
        except asyncio.CancelledError:
            # aiohttp cancels the handler when the client hangs up (or the server stops).
            failed = False
            attempt.note += " client went away"
            raise
        finally:
            end = self._clock()
            self._record_end(end, began, failed)
            status = response.status if response is not None else 499  # the client went away
            self.log.info('%s "%s %s" %d replica=%s %.2fms%s', request.remote, request.method, request.raw_path,
                          status, attempt.replica if attempt.replica is not None else "-",
                          (end - began) * 1000.0, attempt.note)

    async def _proxy(self, request: web.BaseRequest, attempt: _Attempt) -> tuple[web.StreamResponse, bool]:
        """Returns the response sent and whether it counts as the proxy's failure."""
        retryable = request.method in IDEMPOTENT
        first_failure: _Failed | None = None
        while True:
            rid = self._pick(attempt.tried)
            if rid is None:
                if not attempt.tried:
                    attempt.note = " no ready replica"
                    return _no_replica(), True
                break  # nowhere else to retry: report the first failure
            attempt.tried.append(rid)
            attempt.replica = rid
            self._acquire(rid)
            try:
                return await self._forward(request, rid, self._ready[rid], attempt)
            except _Failed as failure:
                attempt.note += f" replica {rid} failed: {_describe(failure.exc)};"
                # A connection that was never made carried nothing: safe to retry for any method.
                unsent = isinstance(failure.exc, (ClientConnectorError, ConnectionTimeoutError))
                if first_failure is None and (retryable or unsent) and not attempt.body_started:
                    first_failure = failure
                    continue
                return _error(failure.status, f"replica {rid} failed before responding"), True
            finally:
                self._release(rid)
        assert first_failure is not None
        return _error(first_failure.status, f"replica {attempt.tried[0]} failed before responding"), True

    async def _forward(self, request: web.BaseRequest, rid: int, base: str,
                       attempt: _Attempt) -> tuple[web.StreamResponse, bool]:
        assert self._session is not None
        url = URL(base + request.raw_path, encoded=True)
        headers = _forward_headers(request)
        body = _stream_body(request, attempt) if request.body_exists else None
        try:
            upstream = await self._session.request(request.method, url, headers=headers, data=body,
                                                   allow_redirects=False)
        except ServerTimeoutError as exc:
            raise _Failed(exc, 504) from exc
        except (ClientError, OSError) as exc:
            raise _Failed(exc, 502) from exc
        # From here the client may already have bytes: no retry, and a failure cuts the stream.
        response = _Response(status=upstream.status, reason=upstream.reason,
                             headers=_response_headers(upstream.headers))
        try:
            await response.prepare(request)
            content = upstream.content
            # What already came with the status line leaves with our headers, in one
            # send (a small answer: all of it); if nothing has, the headers leave now.
            first = content.read_nowait()
            if content.at_eof():
                await response.write_eof(first)
                return response, False
            if first:
                await response.write(first)
            else:
                request.writer.send_headers()  # type: ignore[attr-defined]
            async for chunk in content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response, False
        except ConnectionResetError:
            # Writing to the client failed: it went away. Not the replica's fault nor ours.
            attempt.note += " client went away"
            upstream.close()
            return response, False
        except (ClientError, asyncio.TimeoutError) as exc:
            # The replica broke off mid-body: the client must see a cut, not a
            # well-formed short response, so close without the final chunk.
            attempt.note += f" replica {rid} broke off: {_describe(exc)}"
            upstream.close()
            response.force_close()
            transport = request.transport
            if transport is not None:
                transport.close()
            return response, True
        except BaseException:
            upstream.close()  # the client went away (or we are stopping): stop reading the replica
            raise
        finally:
            upstream.release()


# --- helpers ---------------------------------------------------------------------------------


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _connection_tokens(headers: CIMultiDictProxy[str]) -> set[str]:
    tokens: set[str] = set()
    for value in headers.getall("Connection", ()):
        tokens.update(t.strip().lower() for t in value.split(",") if t.strip())
    return tokens


def _forward_headers(request: web.BaseRequest) -> CIMultiDict[str]:
    drop = _REQUEST_DROP
    if "Connection" in request.headers:
        drop = drop | _connection_tokens(request.headers)
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in request.headers.items():
        if name.lower() not in drop:
            out.add(name, value)
    remote = request.remote or ""
    prior = ", ".join(request.headers.getall("X-Forwarded-For", ()))
    if remote:
        out["X-Forwarded-For"] = f"{prior}, {remote}" if prior else remote
    if "X-Forwarded-Proto" not in out:
        out["X-Forwarded-Proto"] = request.scheme
    if "X-Forwarded-Host" not in out and request.host:
        out["X-Forwarded-Host"] = request.host
    return out


def _response_headers(upstream: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    drop = HOP_BY_HOP
    if "Connection" in upstream:
        drop = drop | _connection_tokens(upstream)
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in upstream.items():
        if name.lower() not in drop:
            out.add(name, value)
    return out


async def _stream_body(request: web.BaseRequest, attempt: _Attempt) -> AsyncIterator[bytes]:
    # Marked before the first read: from then on, the body cannot be sent again.
    attempt.body_started = True
    async for chunk in request.content.iter_any():
        yield chunk


def _no_replica() -> web.Response:
    return web.Response(status=503, body=NO_REPLICA_BODY, content_type="text/plain",
                        headers={"Retry-After": str(RETRY_AFTER_S)})


def _error(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message + "\n", content_type="text/plain")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _percentile(sorted_values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]
