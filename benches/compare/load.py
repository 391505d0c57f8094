"""Load: wrk (closed loop, req/s and c=1 latency), the fixed-rate generator
(examples/loadgen: open loop, CONNECT, TLS), big bodies, idle connections."""

import hashlib
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import time
import urllib.request

from .procs import ROOT

UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}
LOADGEN = os.path.join(ROOT, "target/release/examples/loadgen")


def parse_wrk(text):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    total = int(re.search(r"(\d+) requests in", text).group(1))
    lat = {}
    for pct, val, unit in re.findall(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", text, re.M):
        lat[pct] = float(val) * UNITS[unit] * 1e6
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if errors:
        sys.exit("wrk saw error answers:\n" + text)
    return {"rps": rps, "requests": total, "p50": lat.get("50"), "p99": lat.get("99")}


def wrk(port, conns, duration, script=None, scheme="http"):
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency", "--timeout", "10s"]
    if script:
        argv += ["-s", script]
    argv.append(f"{scheme}://127.0.0.1:{port}/bench")
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30)
    if out.returncode != 0:
        sys.exit("wrk failed:\n" + out.stdout + out.stderr)
    return parse_wrk(out.stdout)


def lua_post(path, size):
    with open(path, "w") as f:
        f.write('wrk.method = "POST"\n')
        f.write('wrk.headers["Content-Type"] = "application/json"\n')
        f.write(f'wrk.body = string.rep("x", {size})\n')
    return path


def ensure_loadgen(path):
    """Builds examples/loadgen when it is missing (the first time: minutes,
    since an example also builds the dev-dependencies' features)."""
    if path != LOADGEN or os.access(path, os.X_OK):
        if not os.access(path, os.X_OK):
            sys.exit(f"{path}: not found")
        return
    print("building the load generator: cargo build --release --example loadgen", flush=True)
    subprocess.run(["cargo", "build", "--release", "--example", "loadgen"], cwd=ROOT, check=True)


def loadgen(binary, addr, rate, duration, conns=16, timestamps=None, **opts):
    """Runs the generator; opts: host, path, body, tls_ca, connect."""
    argv = [binary, "--addr", addr, "--rate", str(rate), "--duration", str(duration),
            "--conns", str(conns)]
    for key, value in opts.items():
        if value is not None:
            argv += ["--" + key.replace("_", "-"), str(value)]
    if timestamps:
        argv += ["--timestamps", timestamps]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30)
    if out.returncode != 0:
        sys.exit("loadgen failed:\n" + out.stdout + out.stderr)
    r = json.loads(out.stdout)
    if r["errors"]:
        sys.exit(f"loadgen saw {r['errors']} errors on {addr} (first: {r['first_error']})")
    return r


def check_credential(what, port, prefix, post=False, tunnel=None, ca=None):
    """Before measuring a target: one request through it to the upstream's
    /auth, which answers the Authorization header it received. A proxy that
    dropped the credential would otherwise be measured doing less work."""
    if tunnel:
        c = http.client.HTTPSConnection("127.0.0.1", port, timeout=10,
                                        context=ssl.create_default_context(cafile=ca))
        c.set_tunnel(*tunnel)
    else:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        if post:
            c.request("POST", "/auth", body=b"{}", headers={"Content-Type": "application/json"})
        else:
            c.request("GET", "/auth")
        r = c.getresponse()
        got = r.read().decode(errors="replace").strip()
    finally:
        c.close()
    if r.status != 200 or not got.startswith(prefix):
        sys.exit(f"{what}: the upstream got Authorization {got[:len(prefix)]!r} (status {r.status}), "
                 f"expected {prefix!r}...")


def accepts(status_port):
    with urllib.request.urlopen(f"http://127.0.0.1:{status_port}/", timeout=5) as r:
        text = r.read().decode()
    return int(text.splitlines()[2].split()[0])


def md5_mbps():
    body = b"x" * (10 * 1024 * 1024)
    started = time.perf_counter()
    for _ in range(10):
        hashlib.md5(body).digest()
    return 10 * len(body) / (time.perf_counter() - started) / 1e6


def big_post(port, size, timeout):
    """One POST of `size` bytes sent in 1 MiB writes; seconds taken."""
    chunk = b"x" * (1 << 20)
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"POST /bench HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: application/octet-stream\r\n"
                  b"Content-Length: %d\r\n\r\n" % size)
        left = size
        while left:
            n = min(left, len(chunk))
            s.sendall(chunk[:n])
            left -= n
        got = b""
        while b"\r\n\r\n" not in got:
            part = s.recv(4096)
            if not part:
                break
            got += part
    if not got.startswith(b"HTTP/1.1 200"):
        sys.exit(f"the {size}-byte POST was answered: {got[:200]!r}")
    return time.perf_counter() - started


def idle_per_conn(port, pids, n, rss_kib):
    """RSS per idle keep-alive client connection: n connections that each
    made one request and stay open."""
    before = rss_kib(pids)
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /bench HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            socks.append(s)
        for s in socks:
            got = b""
            while b"ok\n" not in got:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        time.sleep(1)
        after = rss_kib(pids)
    finally:
        for s in socks:
            s.close()
    return before, (after - before) * 1024 / n
