#!/usr/bin/env python3
"""countersign beside nginx and a direct connection, in one interleaved run.

    python3 benches/compare.py [--reps 3] [--duration 5] [--bin PATH]

Loopback only. Installs nginx-light and wrk from Debian's packages when they
are missing. Builds nothing: pass --bin, or it uses target/release/countersign
(`cargo build --release` first). Every process it starts is stopped by its
PID on exit, also on Ctrl-C. The run is bounded: about
(4 + 4 * 3/5 + 4 + 1) * reps * duration seconds, plus a few for S6 and S8.

Targets, all in front of the same upstream (nginx returning "ok", 1 worker):
  direct      wrk straight to the upstream
  nginx       nginx 1 worker, access log off, proxy_pass + Authorization
  cs          countersign as shipped (RUST_LOG=info, human log to a file)
  cs-warn     countersign with RUST_LOG=warn (no per-request log line)

Each repetition runs every target once, in turn (A B C D A B C D ...), and
ratios are taken within a repetition; medians are printed with min-max.
"""

import argparse
import atexit
import hashlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FIX = os.path.join(HERE, "fixtures")
CLK = os.sysconf("SC_CLK_TCK")
STARTED = []  # Popen objects, stopped by PID at exit


def stop_all():
    for p in reversed(STARTED):
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
    deadline = time.time() + 5
    for p in reversed(STARTED):
        try:
            p.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()


def on_signal(signum, _frame):
    stop_all()
    sys.exit(128 + signum)


def ensure_tools():
    missing = [pkg for tool, pkg in (("nginx", "nginx-light"), ("wrk", "wrk"))
               if shutil.which(tool) is None and not os.path.exists("/usr/sbin/" + tool)]
    if not missing:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq"] + missing, check=True, env=env)


def nginx_bin():
    return shutil.which("nginx") or "/usr/sbin/nginx"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what):
    deadline = time.time() + 20
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited at start (code {proc.returncode}); see its log")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{what} did not listen on 127.0.0.1:{port} within 20s")


def start(argv, what, port, log, env=None):
    out = open(log, "wb")
    p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                         stdin=subprocess.DEVNULL)
    STARTED.append(p)
    wait_port(port, p, what)
    return p


def fill(template, dest, **values):
    with open(os.path.join(FIX, template)) as f:
        text = f.read().format(**values)
    with open(dest, "w") as f:
        f.write(text)
    return dest


def pids_of(pid):
    """The process and its children (nginx's workers)."""
    found = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    found.append(int(entry))
            except (OSError, IndexError):
                pass
    return found


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / CLK


def rss_kib(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


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


def wrk(port, conns, duration, script=None):
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency", "--timeout", "10s"]
    if script:
        argv += ["-s", script]
    argv.append(f"http://127.0.0.1:{port}/bench")
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


def accepts(status_port):
    with urllib.request.urlopen(f"http://127.0.0.1:{status_port}/", timeout=5) as r:
        text = r.read().decode()
    return int(text.splitlines()[2].split()[0])


def med(values):
    return statistics.median(values), min(values), max(values)


def fmt(values, spec):
    m, lo, hi = med(values)
    return f"{m:{spec}} ({lo:{spec}}-{hi:{spec}})"


def interleaved(reps, targets, run):
    """run(target) -> dict per target per repetition, A B C A B C ..."""
    results = {t: [] for t in targets}
    for _ in range(reps):
        for t in targets:
            results[t].append(run(t))
    return results


def md5_mbps():
    body = b"x" * (10 * 1024 * 1024)
    started = time.perf_counter()
    for _ in range(10):
        hashlib.md5(body).digest()
    return 10 * len(body) / (time.perf_counter() - started) / 1e6


def idle_per_conn(port, pids, n):
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--idle", type=int, default=500, help="idle connections for S8")
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/countersign"))
    args = ap.parse_args()
    if args.reps < 3:
        sys.exit("--reps must be at least 3")
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"{args.bin}: not found; run `cargo build --release` first")
    ensure_tools()
    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    work = tempfile.mkdtemp(prefix="countersign-bench-")
    atexit.register(shutil.rmtree, work, True)
    user = "user root root;" if os.geteuid() == 0 else ""

    up, up_status = free_port(), free_port()
    conf = fill("nginx-upstream.conf", f"{work}/upstream.conf", user=user, dir=work,
                port=up, status_port=up_status)
    # -e: the error log before the config is read (not /var/log, which a
    # user other than root cannot open).
    start([nginx_bin(), "-e", f"{work}/upstream-error.log", "-c", conf, "-p", work],
          "upstream nginx", up, f"{work}/upstream.out")

    ngx = free_port()
    conf = fill("nginx-proxy.conf", f"{work}/proxy.conf", user=user, dir=work, port=ngx,
                upstream_port=up)
    nginx = start([nginx_bin(), "-e", f"{work}/proxy-error.log", "-c", conf, "-p", work],
                  "proxy nginx", ngx, f"{work}/proxy.out")

    cs = {}
    idle = {}
    for name, level in (("cs", "info"), ("cs-warn", "warn")):
        ports = {"bearer_port": free_port(), "paypay_port": free_port(),
                 "plain_port": free_port()}
        # Not beside its log: countersign watches its config's folder, and a
        # log written there would wake the watcher on every line.
        os.makedirs(f"{work}/conf", exist_ok=True)
        conf = fill("countersign.toml", f"{work}/conf/{name}.toml", upstream_port=up, **ports)
        env = dict(os.environ, RUST_LOG=level)
        env.pop("COUNTERSIGN_LOG_FORMAT", None)
        p = start([args.bin, "--config", conf], name, ports["bearer_port"],
                  f"{work}/{name}.log", env=env)
        for port in ports.values():
            wait_port(port, p, name)
        time.sleep(0.5)
        cs[name] = (p.pid, ports)
        idle[name] = rss_kib([p.pid])

    nginx_pids = pids_of(nginx.pid)
    port = {"direct": up, "nginx": ngx, "cs": cs["cs"][1]["bearer_port"],
            "cs-warn": cs["cs-warn"][1]["bearer_port"]}
    pids = {"direct": [], "nginx": nginx_pids, "cs": [cs["cs"][0]],
            "cs-warn": [cs["cs-warn"][0]]}
    d = args.duration
    print(f"countersign {args.bin}; nginx {subprocess.run([nginx_bin(), '-v'], capture_output=True, text=True).stderr.strip()}; "
          f"{os.cpu_count()} cpus; load average {os.getloadavg()[0]:.2f}; reps {args.reps} x {d}s")

    # S8 first, on fresh processes: idle RSS and RSS per idle keep-alive conn.
    s8 = {}
    for t in ("nginx", "cs", "cs-warn"):
        s8[t] = idle_per_conn(port[t], pids[t], args.idle)

    def timed(t, conns, secs, script=None, p=None):
        use = pids[t]
        cpu0 = cpu_seconds(use) if use else 0
        a0 = accepts(up_status)
        r = wrk(p or port[t], conns, secs, script)
        a1 = accepts(up_status)
        r["cpu_us"] = (cpu_seconds(use) - cpu0) * 1e6 / r["requests"] if use else 0
        r["upstream_conns"] = a1 - a0 - 1
        return r

    targets = ["direct", "nginx", "cs", "cs-warn"]
    s1 = interleaved(args.reps, targets, lambda t: timed(t, args.conns, d))
    s1c1 = interleaved(args.reps, targets, lambda t: timed(t, 1, max(2, d * 3 // 5)))

    post1k = lua_post(f"{work}/post1k.lua", 1024)
    s2_ports = {"direct": up, "nginx": ngx, "cs-plain": cs["cs"][1]["plain_port"],
                "cs-paypay": cs["cs"][1]["paypay_port"]}
    pids["cs-plain"] = pids["cs-paypay"] = pids["cs"]
    s2 = interleaved(args.reps, list(s2_ports),
                     lambda t: timed(t, args.conns, d, post1k, s2_ports[t]))

    post10m = lua_post(f"{work}/post10m.lua", 10 * 1024 * 1024)
    s3 = {"cs-paypay": [], "md5": []}
    for _ in range(args.reps):
        s3["cs-paypay"].append(timed("cs", 1, d, post10m, cs["cs"][1]["paypay_port"]))
        s3["md5"].append(md5_mbps())

    report(args, s1, s1c1, s2, s3, s8, idle)


def report(args, s1, s1c1, s2, s3, s8, idle):
    reps = range(args.reps)
    print("\n## S1: small GET, bearer header added "
          f"(wrk c={args.conns}; latency at c=1)\n")
    print("| target | req/s | vs direct | proxy CPU µs/req | added p50 c=1 (µs) | added p99 c=1 (µs) | upstream conns/req |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for t in s1:
        rps = [s1[t][i]["rps"] for i in reps]
        ratio = [s1[t][i]["rps"] / s1["direct"][i]["rps"] for i in reps]
        cpu = [s1[t][i]["cpu_us"] for i in reps]
        p50 = [s1c1[t][i]["p50"] - s1c1["direct"][i]["p50"] for i in reps]
        p99 = [s1c1[t][i]["p99"] - s1c1["direct"][i]["p99"] for i in reps]
        conns = sum(s1[t][i]["upstream_conns"] for i in reps)
        reqs = sum(s1[t][i]["requests"] for i in reps)
        direct = t == "direct"
        print(f"| {t} | {fmt(rps, '.0f')} | {'1' if direct else fmt(ratio, '.2f')} | "
              f"{'-' if direct else fmt(cpu, '.1f')} | {'-' if direct else fmt(p50, '+.0f')} | "
              f"{'-' if direct else fmt(p99, '+.0f')} | "
              f"{'-' if direct else f'{conns} / {reqs} = {conns / reqs:.6f}'} |")
    ng = [s1["nginx"][i]["cpu_us"] for i in reps]
    for t in ("cs", "cs-warn"):
        r = [s1[t][i]["cpu_us"] / ng[i] for i in reps]
        print(f"\n{t}: CPU per request {fmt(r, '.2f')} x nginx's", end="")
    print()

    print(f"\n## S2: 1 KiB POST (wrk c={args.conns})\n")
    print("| target | req/s | vs direct | proxy CPU µs/req |")
    print("| --- | --- | --- | --- |")
    for t in s2:
        rps = [s2[t][i]["rps"] for i in reps]
        ratio = [s2[t][i]["rps"] / s2["direct"][i]["rps"] for i in reps]
        cpu = [s2[t][i]["cpu_us"] for i in reps]
        print(f"| {t} | {fmt(rps, '.0f')} | {fmt(ratio, '.2f')} | "
              f"{'-' if t == 'direct' else fmt(cpu, '.1f')} |")
    hmac = [s2["cs-paypay"][i]["cpu_us"] - s2["cs-plain"][i]["cpu_us"] for i in reps]
    print(f"\nPayPay HMAC signing adds {fmt(hmac, '+.1f')} µs CPU per request over the unsigned POST (target: at most +3)")

    print("\n## S3: 10 MiB POST, PayPay-signed (wrk c=1)\n")
    mib = 10 * 1024 * 1024
    signed = [s3["cs-paypay"][i]["rps"] * mib / 1e6 for i in reps]
    md5 = s3["md5"]
    ratio = [signed[i] / md5[i] for i in reps]
    cpu = [s3["cs-paypay"][i]["cpu_us"] / 1000 for i in reps]
    print("| | MB/s |\n| --- | --- |")
    print(f"| countersign, signed | {fmt(signed, '.0f')} |")
    print(f"| MD5 limit (hashlib, same run) | {fmt(md5, '.0f')} |")
    print(f"\nsigned / MD5 limit: {fmt(ratio, '.2f')} (target: at least 0.80); "
          f"countersign CPU per 10 MiB body: {fmt(cpu, '.1f')} ms")

    print(f"\n## S8: memory ({args.idle} idle keep-alive client connections)\n")
    print("| target | RSS at start (KiB) | RSS per idle connection (bytes) |")
    print("| --- | --- | --- |")
    for t, (before, per) in s8.items():
        start_rss = idle.get(t, before)
        print(f"| {t} | {start_rss} | {per:.0f} |")


if __name__ == "__main__":
    main()
