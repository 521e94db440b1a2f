"""Why aiohttp for the serve load balancer: the same figures as ``bench/serve.py``'s
latency and throughput parts, for ``skyplan.serve.lb`` and for a Starlette + uvicorn +
httpx proxy written the usual way, in front of the same replica, in the same run.

Starlette, uvicorn and httpx are not skyplan dependencies: give an interpreter that has
them (a throwaway venv; ``uvicorn[standard]`` for the uvloop/httptools variant):

    python3 -m venv /tmp/stacks && /tmp/stacks/bin/pip install starlette 'uvicorn[standard]' httpx
    .venv/bin/python bench/serve_compare.py --other-python /tmp/stacks/bin/python [--seconds 8] [--rounds 2]

Prints, per proxy and round: added p50/p99 (paced, sequential, interleaved with direct
requests) and requests/s at saturation against the replica alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import serve as bench  # noqa: E402

STARLETTE_PROXY = '''
import socket, sys
import httpx, uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse
from starlette.routing import Route

UP, LOOP, HTTP = sys.argv[1], sys.argv[2], sys.argv[3]
HOP = {b"connection", b"keep-alive", b"proxy-connection", b"proxy-authenticate", b"proxy-authorization", b"te",
       b"trailer", b"transfer-encoding", b"upgrade", b"host"}
client = httpx.AsyncClient(base_url=UP, timeout=httpx.Timeout(None, connect=5.0),
                           limits=httpx.Limits(max_connections=256, max_keepalive_connections=256))

async def proxy(request):
    url = httpx.URL(path=request.url.path, query=request.url.query.encode())
    headers = [(k, v) for k, v in request.headers.raw if k.lower() not in HOP]
    has_body = request.headers.get("content-length") or request.headers.get("transfer-encoding")
    r = await client.send(client.build_request(request.method, url, headers=headers,
                                               content=request.stream() if has_body else None), stream=True)
    out = {k.decode(): v.decode() for k, v in r.headers.raw if k.lower() not in HOP}
    return StreamingResponse(r.aiter_raw(), status_code=r.status_code, headers=out,
                             background=BackgroundTask(r.aclose))

app = Starlette(routes=[Route("/{p:path}", proxy, methods=["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"])])
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
print(port, flush=True)
uvicorn.run(app, host="127.0.0.1", port=port, loop=LOOP, http=HTTP, log_level="warning", access_log=False)
'''


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--other-python", required=True, help="an interpreter with starlette, uvicorn and httpx")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--rate", type=float, default=200.0)
    args = ap.parse_args()
    procs: list[subprocess.Popen[str]] = []
    with tempfile.TemporaryDirectory(prefix="skyplan-bench-serve-compare-") as tmp:
        try:
            rep, rport = bench._spawn("_replica")
            procs.append(rep)
            ours, oport = bench._spawn("_lb", str(Path(tmp) / "lb.log"))
            procs.append(ours)
            assert ours.stdin is not None and ours.stdout is not None
            ours.stdin.write(json.dumps({"op": "push", "ready": {"1": f"http://127.0.0.1:{rport}"}}) + "\n")
            ours.stdin.flush()
            ours.stdout.readline()
            script = Path(tmp) / "starlette_proxy.py"
            script.write_text(STARLETTE_PROXY)
            proxies = [("aiohttp (skyplan.serve.lb)", oport)]
            for loop, impl in (("asyncio", "h11"), ("uvloop", "httptools")):
                p = subprocess.Popen([args.other_python, str(script), f"http://127.0.0.1:{rport}", loop, impl],
                                     stdout=subprocess.PIPE, text=True)
                procs.append(p)
                assert p.stdout is not None
                proxies.append((f"starlette + uvicorn ({loop}, {impl}) + httpx", int(p.stdout.readline())))
            for rnd in range(args.rounds):
                for name, port in proxies:
                    fleet = types.SimpleNamespace(replica_port=lambda _rid: rport, port=port)
                    lat = bench.latency(fleet, args.rate, args.seconds)  # type: ignore[arg-type]
                    thr = asyncio.run(bench._saturate(f"http://127.0.0.1:{port}/", 32, 5.0))
                    alone = asyncio.run(bench._saturate(f"http://127.0.0.1:{rport}/", 32, 5.0))
                    print(f"round {rnd + 1} {name}: added p50 {lat['added_p50_ms']:.3f} ms, p99 "
                          f"{lat['added_p99_ms']:.3f} ms; saturation {thr['requests_per_s']:.0f} req/s against the "
                          f"replica alone {alone['requests_per_s']:.0f} ({thr['requests_per_s'] / alone['requests_per_s']:.2f}x, "
                          f"failed {thr['failed']}); load average {os.getloadavg()[0]:.2f}", flush=True)
        finally:
            for p in procs:
                if p.poll() is None:
                    if p.stdin is not None:
                        p.stdin.close()
                    p.terminate()
                    p.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
