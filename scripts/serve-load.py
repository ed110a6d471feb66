#!/usr/bin/env python3
"""Load on a running `sinklab serve`: N clients send R greedy completions each
(max_tokens M) at once; prints wall time, throughput and latency percentiles,
then the server's own decode rate from /metrics. Standard library only.

usage: scripts/serve-load.py URL [--clients 8] [--requests 20] [--max-tokens 10] [--stream]
"""
import argparse
import concurrent.futures
import json
import statistics
import time
import urllib.request


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=20, help="per client")
    ap.add_argument("--max-tokens", type=int, default=10)
    ap.add_argument("--stream", action="store_true")
    a = ap.parse_args()
    url = a.url.rstrip("/")

    def ask(i):
        body = {"prompt": f"Once upon a time {i}", "max_tokens": a.max_tokens, "temperature": 0, "stream": a.stream}
        req = urllib.request.Request(url + "/v1/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        t0 = time.perf_counter()
        with urllib.request.urlopen(req, timeout=600) as r:
            r.read()
        return time.perf_counter() - t0

    def client(c):
        return [ask(c * a.requests + i) for i in range(a.requests)]

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(a.clients) as ex:
        lat = sorted(x for rows in ex.map(client, range(a.clients)) for x in rows)
    wall = time.perf_counter() - t0
    n = len(lat)
    p99 = lat[min(n - 1, int(0.99 * n))]
    print(f"{a.clients} clients x {a.requests} requests, max_tokens {a.max_tokens}{' (streamed)' if a.stream else ''}: "
          f"{wall:.2f} s wall, {n / wall:.1f} requests/s, latency p50 {statistics.median(lat) * 1000:.0f} ms, "
          f"p99 {p99 * 1000:.0f} ms")
    with urllib.request.urlopen(url + "/metrics") as r:
        for line in r.read().decode().splitlines():
            if line.startswith(("sinklab_decode_tokens_per_second", "sinklab_generated_tokens_total")):
                print("  server", line)


if __name__ == "__main__":
    main()
