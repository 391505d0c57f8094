#!/usr/bin/env python3
"""The CI gate on instructions per request, counted by callgrind (the same
figure whatever else the machine is doing).

    python3 benches/callgrind-gate.py [--bin PATH] [--update]

For each scenario countersign runs under `valgrind --tool=callgrind` while a
client sends requests one after the other on one keep-alive connection:

  S1  small GET, a bearer header added (route `bearer`)
  S2  1 KiB POST signed with PayPay HMAC (route `paypay`)
  S2-plain  the same POST unsigned (route `plain`): S2 - S2-plain is what
      signing costs

One run with every scenario WARM times (base), then one per scenario with
it MORE times; a scenario's instructions per request are (its run - base) / (MORE -
WARM), so startup and shutdown cancel out. The figures are checked against
benches/callgrind-baseline.txt: above baseline * (1 + tolerance) fails.
--update writes the measured figures as the new baseline (commit it, saying
why the cost moved). Installs valgrind from Debian's packages if missing.

--store gates, instead of S1/S2, issue 11's hot-path promise: the same
small GET with an OAuth2 token held in memory, without [store] and with a
Redis [store] (a redis-server the script starts), each counted the same way
in the same run; the Redis figure must be within the baseline's tolerance
of the figure without [store] (either way: a far lower one means the two
runs did not do the same work), else the gate fails.
countersign runs as shipped: RUST_LOG=info, the human log format, to a file.

--rust-log VALUE runs the same scenarios with RUST_LOG=VALUE (say, warn: no
per-request line) and prints their figures without gating them (the baseline
is for info).
"""

import argparse
import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FIX = os.path.join(HERE, "fixtures")
BASELINE = os.path.join(HERE, "callgrind-baseline.txt")
WARM, MORE = 200, 1200
POST_1K = (b"POST /bench HTTP/1.1\r\nHost: app.test\r\nContent-Type: application/json\r\n"
           b"Content-Length: 1024\r\n\r\n" + b"x" * 1024)
SCENARIOS = {
    "S1": ("small GET, bearer header added", "bearer_port",
           b"GET /bench HTTP/1.1\r\nHost: app.test\r\n\r\n"),
    "S2": ("1 KiB POST, PayPay HMAC", "paypay_port", POST_1K),
    "S2-plain": ("the same POST, unsigned", "plain_port", POST_1K),
}
STARTED = []


def stop(p):
    if p.poll() is None:
        os.kill(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()


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
            sys.exit(f"callgrind gate: {what} exited at start (code {proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"callgrind gate: {what} did not listen on 127.0.0.1:{port} within {limit}s")


def drive(port, request, n):
    """n requests, one after the other, on one keep-alive connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        for i in range(n):
            s.sendall(request)
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    sys.exit(f"callgrind gate: connection closed after {i} requests")
                buf += chunk
            head, rest = buf.split(b"\r\n\r\n", 1)
            if not head.startswith(b"HTTP/1.1 200"):
                sys.exit(f"callgrind gate: request {i} answered {head.splitlines()[0]!r}")
            m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
            if not m:
                sys.exit("callgrind gate: answer without Content-Length")
            need = int(m.group(1)) - len(rest)
            while need > 0:
                chunk = s.recv(need)
                if not chunk:
                    sys.exit("callgrind gate: connection closed mid-body")
                need -= len(chunk)


def total_ir(path):
    with open(path) as f:
        for line in f:
            if line.startswith(("totals:", "summary:")):
                return int(line.split()[1])
    sys.exit(f"callgrind gate: no totals in {path}")


def one_run(binary, work, upstream, counts, label, fixture="countersign.toml",
            scenarios=None, rust_log="info", **extra):
    scenarios = SCENARIOS if scenarios is None else scenarios
    ports = {key: free_port() for _, key, _ in scenarios.values()}
    with open(os.path.join(FIX, fixture)) as f:
        conf = f.read().format(upstream_port=upstream, **ports, **extra)
    # Not beside the log: countersign watches its config's folder, and a log
    # written there wakes the watcher on every line.
    os.makedirs(os.path.join(work, "conf"), exist_ok=True)
    path = os.path.join(work, "conf", f"{label}.toml")
    with open(path, "w") as f:
        f.write(conf)
    out = os.path.join(work, f"callgrind.{label}")
    env = dict(os.environ, RUST_LOG=rust_log)
    env.pop("COUNTERSIGN_LOG_FORMAT", None)
    p = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no",
         binary, "--config", path],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=open(os.path.join(work, f"{label}.log"), "wb"), env=env)
    STARTED.append(p)
    for port in ports.values():
        wait_port(port, p, "countersign under callgrind")
    for name, (_, port_key, request) in scenarios.items():
        drive(ports[port_key], request, counts[name])
    stop(p)
    return total_ir(out)


def read_baseline():
    base, tolerance = {}, None
    if not os.path.exists(BASELINE):
        return base, 0.10
    with open(BASELINE) as f:
        for line in f:
            line = line.split("#", 1)[0].split()
            if len(line) == 2 and line[0] == "tolerance":
                tolerance = float(line[1].rstrip("%")) / 100
            elif len(line) == 2:
                base[line[0]] = int(line[1])
    return base, 0.10 if tolerance is None else tolerance


def store_comparison(binary, work, upstream):
    """Instructions per request of an OAuth2 route with and without a Redis
    [store]; fails when they differ by more than the baseline's tolerance."""
    if shutil.which("redis-server") is None:
        sys.exit("callgrind gate --store: redis-server not found (apt-get install redis-server)")
    sock = os.path.join(work, "redis.sock")
    redis = subprocess.Popen(
        ["redis-server", "--port", "0", "--unixsocket", sock, "--save", "", "--dir", work],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    STARTED.append(redis)
    deadline = time.time() + 30
    while not os.path.exists(sock):
        if time.time() > deadline or redis.poll() is not None:
            sys.exit("callgrind gate --store: redis-server did not start")
        time.sleep(0.05)
    scenario = {"S1-oauth2": ("small GET, OAuth2 token added", "oauth2_port",
                              b"GET /bench HTTP/1.1\r\nHost: app.test\r\n\r\n")}
    stores = {"memory": "", "redis": f'[store]\nurl = "unix://{sock}"\nkey_prefix = "bench:"'}
    measured = {}
    for name, store in stores.items():
        runs = [one_run(binary, work, upstream, {"S1-oauth2": n}, f"{name}-{n}",
                        "countersign-oauth2.toml", scenario, store=store)
                for n in (WARM, MORE)]
        measured[name] = round((runs[1] - runs[0]) / (MORE - WARM))
    keys = subprocess.run(["redis-cli", "-s", sock, "--scan", "--pattern", "bench:*"],
                          capture_output=True, text=True, check=True).stdout.split()
    if not keys:
        sys.exit("callgrind gate --store: the Redis run left nothing in Redis; was [store] used?")
    change = (measured["redis"] - measured["memory"]) / measured["memory"] * 100
    print(f"S1-oauth2 without [store]: {measured['memory']} instructions per request")
    print(f"S1-oauth2 with a Redis [store]: {measured['redis']} instructions per request "
          f"({change:+.1f}%); Redis holds {', '.join(sorted(keys))}")
    _, tolerance = read_baseline()
    verdict = "ok" if abs(change) <= tolerance * 100 else "FAIL"
    print(f"{verdict} S1-oauth2 with [store] against without, same run: {change:+.1f}%, "
          f"tolerance {tolerance * 100:g}% either way")
    if verdict != "ok":
        sys.exit("callgrind gate --store failed: the request path with a Redis [store] costs "
                 "more (or less) than without it; requests must not touch Redis (issue 11). "
                 "Profile both runs with callgrind_annotate.")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/countersign"))
    ap.add_argument("--update", action="store_true", help="write the measured figures as the baseline")
    ap.add_argument("--store", action="store_true",
                    help="compare an OAuth2 route with and without a Redis [store] instead")
    ap.add_argument("--rust-log", default="info", metavar="VALUE",
                    help="RUST_LOG for countersign; other than info, print the figures without gating")
    args = ap.parse_args()
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"callgrind gate: {args.bin}: not found; run `cargo build --release` first")
    if shutil.which("valgrind") is None:
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "valgrind"], check=True, env=env)
    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, lambda n, f: sys.exit(128 + n))
    signal.signal(signal.SIGINT, lambda n, f: sys.exit(128 + n))
    work = tempfile.mkdtemp(prefix="countersign-callgrind-")
    atexit.register(shutil.rmtree, work, True)

    upstream = free_port()
    up = subprocess.Popen([sys.executable, os.path.join(FIX, "upstream.py"), str(upstream)],
                          stdin=subprocess.DEVNULL)
    STARTED.append(up)
    wait_port(upstream, up, "the upstream")

    if args.store:
        store_comparison(args.bin, work, upstream)
        return
    started = time.time()
    warm = {name: WARM for name in SCENARIOS}
    base = one_run(args.bin, work, upstream, warm, "base", rust_log=args.rust_log)
    measured = {}
    for name in SCENARIOS:
        ir = one_run(args.bin, work, upstream, dict(warm, **{name: MORE}), name,
                     rust_log=args.rust_log)
        measured[name] = round((ir - base) / (MORE - WARM))
    print(f"callgrind gate: {args.bin}, RUST_LOG={args.rust_log}, {time.time() - started:.0f}s")
    print(f"PayPay signing: {measured['S2'] - measured['S2-plain']} instructions per request "
          "(S2 - S2-plain)")
    if args.rust_log != "info":
        if args.update:
            sys.exit("callgrind gate: the baseline is for RUST_LOG=info; --update only with it")
        for name, (what, _, _) in SCENARIOS.items():
            print(f"{name} ({what}): {measured[name]} instructions per request, "
                  f"RUST_LOG={args.rust_log} (not gated)")
        return

    baseline, tolerance = read_baseline()
    if args.update:
        with open(BASELINE, "w") as f:
            f.write("# Instructions per request counted by callgrind (benches/callgrind-gate.py),\n"
                    "# countersign release build as shipped (RUST_LOG=info, human log).\n"
                    "# Update with `python3 benches/callgrind-gate.py --update`; say why in the commit.\n")
            f.write(f"tolerance {tolerance * 100:g}%\n")
            for name, (what, _, _) in SCENARIOS.items():
                f.write(f"{name} {measured[name]}  # {what}\n")
        for name in SCENARIOS:
            print(f"{name}: {measured[name]} instructions per request (was {baseline.get(name, 'none')})")
        print(f"baseline written to {os.path.relpath(BASELINE, ROOT)}")
        return
    failed = False
    for name, (what, _, _) in SCENARIOS.items():
        got = measured[name]
        want = baseline.get(name)
        if want is None:
            print(f"FAIL {name} ({what}): no baseline in {os.path.relpath(BASELINE, ROOT)}; "
                  f"measured {got}; run with --update")
            failed = True
            continue
        limit = want * (1 + tolerance)
        change = (got - want) / want * 100
        verdict = "ok" if got <= limit else "FAIL"
        print(f"{verdict} {name} ({what}): {got} instructions per request, baseline {want} "
              f"({change:+.1f}%), tolerance +{tolerance * 100:g}% (at most {limit:.0f})")
        if got > limit:
            failed = True
        elif got < want * (1 - tolerance):
            print(f"   {name} is {-change:.1f}% below its baseline: lower it with --update")
    if failed:
        sys.exit("callgrind gate failed: instructions per request rose past the tolerance. Profile with "
                 "callgrind_annotate (see benches/README.md); if the rise is intended, run "
                 "`python3 benches/callgrind-gate.py --update` and commit the baseline saying why.")


if __name__ == "__main__":
    main()
