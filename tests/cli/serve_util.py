"""Starting `sinklab serve` for a test and talking to it with urllib."""
import json
import os
import pathlib
import signal
import subprocess
import time
import urllib.error
import urllib.request

import cli_util


class Server:
    """A `sinklab serve --port 0` process; the port is read from its first line."""

    def __init__(self, *args, env=None):
        self.proc = subprocess.Popen([cli_util.binary(), "serve", "--port", "0", *map(str, args)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, **(env or {})})
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.proc.kill()
            raise AssertionError("serve did not start: " + line + self.proc.stderr.read())
        self.url = line.split("listening on ")[1].split(" ")[0].rstrip("/")
        self.banner = line

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def rss_kib(self):
        for line in pathlib.Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def request(self, method, path, body=None, headers=None, raw=None, timeout=120):
        """(status, parsed JSON or text, headers) of one request."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, text, hdrs = r.status, r.read().decode(), r.headers
        except urllib.error.HTTPError as e:
            status, text, hdrs = e.code, e.read().decode(), e.headers
        ctype = hdrs.get("Content-Type", "")
        return status, (json.loads(text) if "json" in ctype else text), hdrs

    def post(self, path, body, **kw):
        return self.request("POST", path, body, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def events(self, path, body, timeout=120):
        """The data lines of a server-sent event stream, parsed ([DONE] kept as a string)."""
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        out = []
        with urllib.request.urlopen(req, timeout=timeout) as r:
            assert r.headers["Content-Type"].startswith("text/event-stream")
            for raw in r:
                line = raw.decode().strip()
                if line.startswith("data: "):
                    payload = line[len("data: "):]
                    out.append(payload if payload == "[DONE]" else json.loads(payload))
        return out


def wait_until(predicate, timeout=30, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        time.sleep(step)
    return False
