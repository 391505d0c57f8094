#!/usr/bin/env python3
"""HTTP/1.1 against HTTP/2 to one HTTPS upstream, through countersign.

    cargo build --release
    python3 benches/upstream-h2.py [--bin PATH] [--reps 3] [--duration 5] [--conns 32]
                                   [--callgrind]

The upstream is nginx (1 worker, access log off, TLS with a CA this script
makes, `ssl http2` so it offers h2 and http/1.1 by ALPN, keep-alive without
a request limit) answering `ok`. countersign serves two route listeners to
it, alike but for `http2 = false` on one; RUST_LOG=warn (no per-request
line), a bearer header added.

For each repetition, each route in turn (h1 h2 h1 h2 ...): `wrk -t1 -cCONNS
-dDURATION` on a countersign restarted for the run, after a cold burst
(CONNS requests at once, each on a new app connection, on an empty pool);
printed per route: the upstream connections the burst opened, req/s and
countersign CPU per request over the wrk run (utime + stime from
/proc/PID/stat / requests wrk counted), and the upstream connections
opened during the wrk run, by protocol
(`countersign_upstream_connections_opened_total` on /metrics), and the
requests sent again (an h2 GOAWAY's unprocessed streams). Medians, min-max.
--upstream-limit N has nginx end each connection after N requests.

--callgrind: instructions per request instead, counted by valgrind's
callgrind (the same figure however busy the machine is): for each route a
run with WARM sequential requests (base) and one with WARM then `wrk -c
CONNS` for DURATION; (run - base) / wrk's requests. Under valgrind
countersign is ~50 times slower, so wrk counts far fewer requests.

Every process is stopped by PID at exit.
"""

import argparse
import atexit
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
STARTED = []
WARM = 200
TICK = os.sysconf("SC_CLK_TCK")


def stop(p):
    if p.poll() is None:
        os.kill(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()


@atexit.register
def stop_all():
    for p in reversed(STARTED):
        stop(p)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, limit=120):
    deadline = time.time() + limit
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"upstream-h2: {what} exited at start (code {proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"upstream-h2: {what} did not listen on 127.0.0.1:{port} within {limit}s")


def run(*cmd, **kw):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)


def make_pki(work):
    """A CA and a leaf for `localhost`, signed by it."""
    ca_key, ca, key, csr, crt = (os.path.join(work, n) for n in
                                 ("ca.key", "ca.pem", "leaf.key", "leaf.csr", "leaf.pem"))
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=bench CA")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", key, "-out", csr, "-subj", "/CN=localhost")
    ext = os.path.join(work, "leaf.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-out", crt, "-days", "2", "-extfile", ext)
    return ca, crt, key


def start_nginx(work, crt, key, limit):
    port = free_port()
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests {limit};
    keepalive_timeout 300s;
    http2_max_requests {limit};
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        location / {{ return 200 "ok"; }}
    }}
}}
""")
    p = subprocess.Popen(["nginx", "-c", conf, "-p", work], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    STARTED.append(p)
    wait_port(port, p, "nginx")
    return port


def write_config(work, upstream, ca):
    ports = {"h1": free_port(), "h2": free_port(), "admin": free_port()}
    routes = ""
    for name, extra in (("h1", "http2 = false"), ("h2", "")):
        routes += f"""
[[route]]
name = "{name}"
listen = "127.0.0.1:{ports[name]}"
upstream = "https://localhost:{upstream}"
ca_file = "{ca}"
credential = "bearer"
{extra}
"""
    conf = f"""
[proxy]
listen = "127.0.0.1:{free_port()}"
# Stopped by PID at the end of a run: a short drain keeps that bounded.
drain_timeout = "2s"

[admin]
listen = "127.0.0.1:{ports['admin']}"
control_listen = "127.0.0.1:0"

[credential.bearer]
type = "header"
bearer = "bench-token"
{routes}"""
    os.makedirs(os.path.join(work, "conf"), exist_ok=True)
    path = os.path.join(work, "conf", "countersign.toml")
    with open(path, "w") as f:
        f.write(conf)
    return path, ports


def start_countersign(cmd, path, ports, log):
    env = dict(os.environ, RUST_LOG="warn")
    p = subprocess.Popen(cmd + ["--config", path], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=open(log, "ab"), env=env)
    STARTED.append(p)
    for key in ("h1", "h2", "admin"):
        wait_port(ports[key], p, "countersign")
    return p


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def opened(ports):
    with socket.create_connection(("127.0.0.1", ports["admin"]), timeout=10) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
        text = b""
        while chunk := s.recv(65536):
            text += chunk
    found = {"resent": sum(int(n) for n in re.findall(
        rb'countersign_upstream_retries_total\{[^}]*\} (\d+)', text))}
    for proto in ("http/1.1", "h2"):
        m = re.search(rb'countersign_upstream_connections_opened_total\{protocol="'
                      + proto.encode() + rb'"\} (\d+)', text)
        found[proto] = int(m.group(1)) if m else 0
    return found


def wrk(port, conns, duration):
    out = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{duration}s",
                          f"http://127.0.0.1:{port}/bench"],
                         capture_output=True, text=True, check=True).stdout
    n = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        sys.exit(f"upstream-h2: {bad.group(1)} failed answers\n{out}")
    return n


def wrk_burst(port, conns):
    """CONNS requests at once, one per new connection; how many were sent."""
    def one(_):
        drive(port, 1)
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(conns) as pool:
        list(pool.map(one, range(conns)))
    return conns


def drive(port, n):
    """n GETs, one after the other, on one keep-alive connection."""
    req = b"GET /bench HTTP/1.1\r\nHost: app.test\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=120) as s:
        for _ in range(n):
            s.sendall(req)
            buf = b""
            while not (b"\r\n\r\n" in buf and buf.endswith(b"ok")):
                chunk = s.recv(65536)
                if not chunk:
                    sys.exit("upstream-h2: connection closed")
                buf += chunk
            if not buf.startswith(b"HTTP/1.1 200"):
                sys.exit(f"upstream-h2: answered {buf[:40]!r}")


def total_ir(path):
    with open(path) as f:
        for line in f:
            if line.startswith(("totals:", "summary:")):
                return int(line.split()[1])
    sys.exit(f"upstream-h2: no totals in {path}")


def med(xs):
    return f"{statistics.median(xs):.1f} ({min(xs):.1f}-{max(xs):.1f})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/countersign"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--callgrind", action="store_true")
    ap.add_argument("--upstream-limit", type=int, default=100000000,
                    help="requests nginx serves per connection before closing it "
                         "(h2: with a GOAWAY); nginx's own default is 1000")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="upstream-h2-")
    ca, crt, key = make_pki(work)
    upstream = start_nginx(work, crt, key, a.upstream_limit)
    path, ports = write_config(work, upstream, ca)
    log = os.path.join(work, "countersign.log")
    rows = {r: {"rps": [], "cpu": [], "cold": [], "conns": [], "ir": []} for r in ("h1", "h2")}
    for rep in range(a.reps):
        for route in ("h1", "h2"):
            if a.callgrind:
                runs = []
                for load in (False, True):
                    out = os.path.join(work, f"callgrind.{rep}.{route}.{load}")
                    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                           "--dump-instr=no", a.bin]
                    p = start_countersign(cmd, path, ports, log)
                    drive(ports[route], WARM)
                    n = wrk(ports[route], a.conns, a.duration) if load else 0
                    conns = opened(ports)
                    conns.pop("resent")
                    stop(p)
                    runs.append((total_ir(out), n, conns))
                (base, _, _), (loaded, n, conns) = runs
                rows[route]["ir"].append((loaded - base) / n)
                rows[route]["conns"].append(sum(conns.values()))
                print(f"rep {rep} {route}: {n} requests, {(loaded - base) / n:.0f} "
                      f"instructions/request, connections opened {conns}", flush=True)
                continue
            p = start_countersign([a.bin], path, ports, log)
            # A cold burst: CONNS requests at once on a fresh pool.
            burst = wrk_burst(ports[route], a.conns)
            cold = opened(ports)
            before = cpu_ticks(p.pid)
            n = wrk(ports[route], a.conns, a.duration)
            used = cpu_ticks(p.pid) - before
            warm = {k: v - cold[k] for k, v in opened(ports).items()}
            resent = warm.pop("resent")
            cold.pop("resent")
            stop(p)
            rows[route]["rps"].append(n / a.duration)
            rows[route]["cpu"].append(used / TICK / n * 1e6)
            rows[route]["cold"].append(sum(cold.values()))
            rows[route]["conns"].append(sum(warm.values()))
            print(f"rep {rep} {route}: cold burst of {burst} opened {cold}; then {n} requests, "
                  f"{used / TICK / n * 1e6:.1f} µs CPU/request, opened {warm}, "
                  f"{resent} sent again", flush=True)
    print()
    if a.callgrind:
        print("| route | instructions/request | upstream connections opened |")
        print("| --- | --- | --- |")
        for r, v in rows.items():
            print(f"| {r} | {med(v['ir'])} | {med(v['conns'])} |")
    else:
        print(f"| route | req/s | countersign CPU µs/request | upstream connections opened "
              f"by a cold burst of {a.conns} | then during the run |")
        print("| --- | --- | --- | --- | --- |")
        for r, v in rows.items():
            print(f"| {r} | {med(v['rps'])} | {med(v['cpu'])} | {med(v['cold'])} "
                  f"| {med(v['conns'])} |")


if __name__ == "__main__":
    main()
