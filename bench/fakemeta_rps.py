"""Benchmark: requests/s that `manage.py fakemeta` answers on POST /{v}/{pnid}/messages, next to a ceiling
measured in the same run: a bare asyncio server (same raw-protocol HTTP loop, constant 200 JSON, no engine)
hit by the same client. Loopback only, bounded in time; each server runs in its own process.

    .venv/bin/python bench/fakemeta_rps.py --seconds 5 --concurrency 64

Every send is a valid text message to a distinct recipient (window check and pair limit disabled, mps
raised to 1e6, so every answer is a 200 with a wamid); the fake also batches and POSTs the status webhooks
(sent/delivered/read) to a sink in this process, as it would in a real run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server on port {port} did not start")


def cpu_seconds(pid: int) -> float:
    """user+system CPU time of a process (Linux /proc), to report capacity per CPU-second: on a shared,
    busy machine wall-clock req/s mostly measures the neighbours."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


# -- the ceiling: same parsing loop, constant answer -------------------------------------------------------
class _Bare(asyncio.Protocol):
    BODY = json.dumps({"messaging_product": "whatsapp", "contacts": [{"input": "+1", "wa_id": "1"}],
                       "messages": [{"id": "wamid.HBgLconstant"}]}).encode()
    HEAD = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n").encode()

    def connection_made(self, transport):
        self.t, self.buf = transport, bytearray()

    def data_received(self, data):
        self.buf.extend(data)
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            length = 0
            for line in bytes(self.buf[:end]).split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v)
            if len(self.buf) < end + 4 + length:
                return
            json.loads(bytes(self.buf[end + 4:end + 4 + length]))  # parse the body like the fake does
            del self.buf[:end + 4 + length]
            self.t.write(self.HEAD + self.BODY)


def serve_bare(port: int) -> None:
    async def main():
        server = await asyncio.get_running_loop().create_server(_Bare, HOST, port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# -- load generator ----------------------------------------------------------------------------------------
async def _raw_connection(port: int, path: str, stop_at: float, measure_from: float, counter, latencies, errors):
    """One keep-alive connection, one request in flight: a raw-socket client, so the load generator costs
    far less CPU than the server under test (aiohttp's client tops out well below the fake)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at:
                return
            n = next(counter)
            body = json.dumps({"messaging_product": "whatsapp", "recipient_type": "individual",
                               "to": f"+1666{n % 10_000_000:07d}", "type": "text",
                               "text": {"body": f"bench {n}"}}).encode()
            writer.write(f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nAuthorization: Bearer bench\r\n"
                         f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v)
            await reader.readexactly(length)
            t1 = time.perf_counter()
            if t0 >= measure_from:
                if status == 200:
                    latencies.append(t1 - t0)
                else:
                    errors["non200"] += 1
    except (OSError, asyncio.IncompleteReadError):
        errors["exc"] += 1
    finally:
        writer.close()


async def run_load(port: int, seconds: float, concurrency: int, warmup: float) -> dict:
    counter = iter(range(10**9))
    latencies: list[float] = []
    errors = {"non200": 0, "exc": 0}
    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + seconds
    await asyncio.gather(*(_raw_connection(port, "/v23.0/1061/messages", stop_at, measure_from, counter,
                                           latencies, errors) for _ in range(concurrency)))
    latencies.sort()
    n = len(latencies)
    return {"ok": n, "rps": n / seconds, **errors,
            "p50_ms": 1000 * latencies[n // 2] if n else None,
            "p99_ms": 1000 * latencies[min(n - 1, int(n * 0.99))] if n else None,
            "mean_ms": 1000 * statistics.fmean(latencies) if n else None}


async def start_sink(port: int):
    received = {"posts": 0, "bytes": 0}

    class Sink(asyncio.Protocol):
        def connection_made(self, transport):
            self.t, self.buf = transport, bytearray()

        def data_received(self, data):
            self.buf.extend(data)
            while True:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                length = 0
                for line in bytes(self.buf[:end]).split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        length = int(v)
                if len(self.buf) < end + 4 + length:
                    return
                received["posts"] += 1
                received["bytes"] += length
                del self.buf[:end + 4 + length]
                self.t.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    server = await asyncio.get_running_loop().create_server(Sink, HOST, port)
    return server, received


async def bench(args) -> None:
    results = {}
    sink_port = free_port()
    sink, received = await start_sink(sink_port)
    procs = []
    try:
        fake_port, bare_port = free_port(), free_port()
        fake = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "manage.py"), "fakemeta", "--host", HOST, "--port", str(fake_port),
             "--webhook-url", f"http://{HOST}:{sink_port}/webhooks/meta", "--app-secret", "bench-secret",
             "--mps", "1000000", "--no-pair-limit", "--no-window-check", "--status-delays", "0.05,0.2,0.5"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        procs.append(fake)
        bare = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve-bare", str(bare_port)],
                                cwd=ROOT)
        procs.append(bare)
        wait_port(fake_port)
        wait_port(bare_port)
        for name, port, proc in (("ceiling (bare asyncio, same client)", bare_port, bare),
                                 ("fakemeta", fake_port, fake)):
            cpu0 = cpu_seconds(proc.pid)
            results[name] = await run_load(port, args.seconds + args.warmup, args.concurrency, 0.0)
            if name == "fakemeta":
                await asyncio.sleep(1.5)  # the status webhooks of the last sends are part of the cost
            results[name]["server_cpu_s"] = cpu_seconds(proc.pid) - cpu0
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        sink.close()
    for name, r in results.items():
        per_cpu = r["ok"] / r["server_cpu_s"] if r["server_cpu_s"] else float("nan")
        print(f"{name:38s} {r['rps']:7.0f} req/s  p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  "
              f"ok {r['ok']}  non200 {r['non200']}  errors {r['exc']}  server CPU {r['server_cpu_s']:.2f} s "
              f"-> {per_cpu:.0f} req per server CPU-second")
    ceiling, fake = results["ceiling (bare asyncio, same client)"], results["fakemeta"]
    print(f"fakemeta / ceiling = {fake['rps'] / ceiling['rps']:.2f}; status webhooks received: "
          f"{received['posts']} POSTs, {received['bytes'] / 1e6:.1f} MB "
          f"(concurrency {args.concurrency}, {args.seconds:.0f} s each, {os.cpu_count()} CPUs shared by client "
          f"and server)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--serve-bare", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return
    if args.seconds > 120 or args.concurrency > 1024:
        raise SystemExit("bounded benchmark: --seconds <= 120, --concurrency <= 1024")
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
