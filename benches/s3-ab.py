#!/usr/bin/env python3
"""S3 side by side: 10 MiB PayPay-signed POSTs through one or more
countersign binaries, against the MD5 limit, in one interleaved run.

    python3 benches/s3-ab.py [--rounds 60] BIN [BIN ...]

Each round sends one body through each binary in turn (its `paypay` route,
one keep-alive connection per binary), then hashes 10 MiB with hashlib's MD5
(OpenSSL); it prints, per binary, the median time per body, the MD5 time
over it (the share of the MD5 limit) and the CPU per body (utime + stime
from /proc). Pairing body by body keeps the ratio meaningful on a shared,
noisy machine, where a block of bodies and a block of hashes minutes apart
are not. --refs adds the same body straight to the upstream and through the
unsigned `plain` route of the first binary (streamed, not spooled).

Loopback only; the upstream is benches/fixtures/nginx-upstream.conf (nginx
from Debian's nginx-light, as compare.py installs). Every process started
is stopped by its PID.
"""

import argparse
import atexit
import hashlib
import http.client
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "fixtures")
CLK = os.sysconf("SC_CLK_TCK")
BODY = b"x" * (10 << 20)
STARTED = []


def stop_all():
    for p in STARTED:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGTERM)
    for p in STARTED:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc):
    deadline = time.time() + 20
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{proc.args[0]} exited at start (code {proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on 127.0.0.1:{port} after 20s")


def fill(template, dest, **values):
    with open(os.path.join(FIX, template)) as f:
        text = f.read().format(**values)
    with open(dest, "w") as f:
        f.write(text)
    return dest


def start(argv, port, log, env=None):
    p = subprocess.Popen(argv, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, env=env)
    STARTED.append(p)
    wait_port(port, p)
    return p


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def post(conn):
    started = time.perf_counter()
    conn.request("POST", "/bench", body=BODY, headers={"Content-Type": "application/json"})
    answer = conn.getresponse()
    answer.read()
    if answer.status != 200:
        sys.exit(f"answer {answer.status}")
    return time.perf_counter() - started


def md5_seconds():
    started = time.perf_counter()
    hashlib.md5(BODY).digest()
    return time.perf_counter() - started


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bins", nargs="+", help="countersign binaries to compare")
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--refs", action="store_true",
                    help="also time the body sent direct and through an unsigned route")
    args = ap.parse_args()
    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, lambda n, _f: sys.exit(128 + n))
    work = tempfile.mkdtemp(prefix="countersign-s3-")
    atexit.register(shutil.rmtree, work, True)

    up, status = free_port(), free_port()
    user = "user root root;" if os.geteuid() == 0 else ""
    conf = fill("nginx-upstream.conf", f"{work}/upstream.conf", user=user, dir=work,
                port=up, status_port=status)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    start([nginx, "-e", f"{work}/upstream-error.log", "-c", conf, "-p", work], up,
          f"{work}/upstream.out")

    # (label, pid for CPU or None, port)
    targets = []
    os.makedirs(f"{work}/conf")
    for i, binary in enumerate(args.bins):
        ports = {"bearer_port": free_port(), "paypay_port": free_port(),
                 "plain_port": free_port()}
        conf = fill("countersign.toml", f"{work}/conf/{i}.toml", upstream_port=up, **ports)
        env = dict(os.environ, RUST_LOG="warn")
        p = start([binary, "--config", conf], ports["paypay_port"], f"{work}/{i}.log", env)
        targets.append((binary, p.pid, ports["paypay_port"]))
        if i == 0 and args.refs:
            refs = [("direct to the upstream", None, up),
                    ("unsigned route (streamed)", None, ports["plain_port"])]
    if args.refs:
        targets += refs

    conns = {label: http.client.HTTPConnection("127.0.0.1", port) for label, _, port in targets}
    for label, _, _ in targets:
        post(conns[label])  # connections open, upstream pool warm
    times = {label: [] for label, _, _ in targets}
    md5 = []
    cpu0 = {label: cpu_seconds(pid) for label, pid, _ in targets if pid}
    for _ in range(args.rounds):
        for label, _, _ in targets:
            times[label].append(post(conns[label]))
            md5.append(md5_seconds())
    cpu = {label: (cpu_seconds(pid) - cpu0[label]) * 1000 / args.rounds
           for label, pid, _ in targets if pid}

    m = statistics.median(md5)
    print(f"{args.rounds} rounds; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cpus; "
          f"MD5 of 10 MiB (hashlib): median {m * 1000:.1f} ms, {len(BODY) / m / 1e6:.0f} MB/s")
    for label, pid, _ in targets:
        t = sorted(times[label])
        med = statistics.median(t)
        line = (f"{label}: median {med * 1000:.1f} ms per body "
                f"(p25 {t[len(t) // 4] * 1000:.1f}, p75 {t[3 * len(t) // 4] * 1000:.1f}), "
                f"{len(BODY) / med / 1e6:.0f} MB/s, {m / med:.2f} of the MD5 limit")
        if pid:
            line += f", CPU {cpu[label]:.1f} ms per body"
        print(line)


if __name__ == "__main__":
    main()
