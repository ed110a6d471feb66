"""`sinklab serve` under load: 8 clients x 20 requests at once give the same
greedy replies as one client asking in turn (latency printed, not asserted),
and SIGTERM in the middle of streams exits 0 with every stream ended."""
import concurrent.futures
import json
import statistics
import threading
import time
import urllib.request

from serve_util import Server

PROMPTS = ["Once upon a time", "The cat", "Lily wanted", "One day, Tom", "The sun was",
           "A little bird", "Mom said", "They went to"]


def ask(server, prompt, i):
    body = {"prompt": f"{prompt} {i}", "max_tokens": 8 + i % 5, "temperature": 0}
    t0 = time.perf_counter()
    status, reply, _ = server.post("/v1/completions", body, timeout=300)
    assert status == 200, reply
    return reply["choices"][0]["text"], reply["usage"]["completion_tokens"], time.perf_counter() - t0


def test_eight_clients_twenty_requests_each_match_sequential():
    with Server("--parallel", "4") as s:
        jobs = [(p, i) for p in PROMPTS for i in range(20)]
        sequential = {(p, i): ask(s, p, i)[:2] for p, i in jobs[:: 4]}  # a quarter of them, one by one

        def client(prompt):
            return [(prompt, i, ask(s, prompt, i)) for i in range(20)]

        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = [r for rows in pool.map(client, PROMPTS) for r in rows]
        wall = time.perf_counter() - t0
        assert len(results) == 160
        for prompt, i, (text, n, _) in results:
            assert n >= 1
            if (prompt, i) in sequential:
                assert (text, n) == sequential[(prompt, i)], (prompt, i)
        latencies = sorted(r[2][2] for r in results)
        p50 = statistics.median(latencies)
        p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
        print(f"8 clients x 20 requests: {wall:.1f} s wall, latency p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")


def test_sigterm_under_load_ends_streams_and_exits_zero():
    s = Server("--parallel", "2", "--shutdown-grace", "1")
    outcomes = []

    def stream():
        req = urllib.request.Request(s.url + "/v1/completions", method="POST",
                                     data=json.dumps({"prompt": "Once", "max_tokens": 5000, "stream": True}).encode(),
                                     headers={"Content-Type": "application/json"})
        last = None
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                for raw in r:
                    line = raw.decode().strip()
                    if line.startswith("data: "):
                        last = line[6:]
            outcomes.append(last)
        except Exception as e:  # a request still queued may be refused or cut
            outcomes.append(repr(e))

    threads = [threading.Thread(target=stream) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(2)
    code = s.stop(timeout=60)
    for t in threads:
        t.join(60)
    assert code == 0, s.proc.stderr.read()
    assert len(outcomes) == 4
    # The active streams end with their last chunk and [DONE].
    assert sum(o == "[DONE]" for o in outcomes) >= 2, outcomes
    err = s.proc.stderr.read()
    assert "SIGTERM" in err and "stopped" in err
