#!/usr/bin/env python3
"""countersign beside nginx and a direct connection, in one interleaved run.

    python3 benches/compare.py [--reps 3] [--duration 5] [--only S1,S5] [--bin PATH]

Loopback only. Installs nginx-light, haproxy, wrk and openssl from Debian's packages
when they are missing, and builds the fixed-rate load generator
(`cargo build --release --example loadgen`) when it is missing; it builds
no countersign: pass --bin, or it uses target/release/countersign (`cargo
build --release` first). Every process it starts is stopped by its PID on
exit, also on Ctrl-C. About 8 minutes with the defaults.

Targets, all in front of the same upstream (nginx returning "ok", 1 worker):
  direct      straight to the upstream
  nginx       nginx 1 worker, access log off, proxy_pass + Authorization
  nginx-log   the same with its access log on (buffer=64k flush=1s)
  haproxy     HAProxy 1 thread, log off, http-reuse always + Authorization (S1)
  cs          countersign as shipped (RUST_LOG=info, human log to a file)
  cs-warn     countersign with RUST_LOG=warn (no per-request log line)
  cs-1w       countersign as shipped on one runtime worker (COUNTERSIGN_WORKERS=1;
              S1 only)

Scenarios (--only takes a comma-separated list):
  S1  small GET with a bearer header: req/s (wrk c=32), proxy CPU per
      request, added p50/p99 at c=1 (wrk) and at a fixed rate (loadgen)
  S2  1 KiB POST: PayPay HMAC against the same POST unsigned
  S3  10 MiB PayPay-signed POSTs against the MD5 limit (same run)
  S4  one 1 GiB PayPay-signed POST: countersign's peak RSS, MB/s
  S5  TLS and mutual TLS upstream: countersign against nginx proxy_ssl_*
  S6  upstream connection reuse: counted during S1 (runs S1), and over the
      TLS upstream and across reloads (SIGHUP every second)
  S7  OAuth2 token renewals under fixed-rate load
  S8  idle RSS and RSS per idle keep-alive connection (fresh processes)
  S9  CONNECT-intercepted HTTPS against direct TLS

Each repetition runs every target once, in turn (A B C D A B C D ...), and
ratios are taken within a repetition; medians are printed with min-max.
"""

import argparse
import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from compare import base, bodies, load, procs, report, reuse, tls, tokens

ALL = ["S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8", "S9"]


def parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="\n\n".join(__doc__.split("\n\n")[3:]),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3, help="repetitions (default 3; fewer only to try it out)")
    ap.add_argument("--duration", type=int, default=5, help="seconds per load run (default 5)")
    ap.add_argument("--conns", type=int, default=32, help="wrk connections (default 32)")
    ap.add_argument("--rate", type=float, default=2000,
                    help="fixed rate for S1, S7 and S9's latency, req/s (default 2000)")
    ap.add_argument("--idle", type=int, default=500, help="idle connections for S8 (default 500)")
    ap.add_argument("--big-mib", type=int, default=1024, help="S4's body in MiB (default 1024)")
    ap.add_argument("--expires-in", type=int, default=4,
                    help="S7's token lifetime in seconds (default 4: renewed about every 3 s)")
    ap.add_argument("--only", default=",".join(ALL),
                    help="scenarios to run, comma-separated (default all: " + ",".join(ALL) + ")")
    ap.add_argument("--bin", default=os.path.join(procs.ROOT, "target/release/countersign"),
                    help="countersign binary (default target/release/countersign)")
    ap.add_argument("--loadgen", default=load.LOADGEN,
                    help="load generator (default target/release/examples/loadgen, built if missing)")
    args = ap.parse_args()
    args.only = {s.strip().upper() for s in args.only.split(",") if s.strip()}
    if args.only - set(ALL):
        ap.error(f"--only: unknown {','.join(sorted(args.only - set(ALL)))}; known: {','.join(ALL)}")
    if "S6" in args.only:
        args.only.add("S1")
    if args.reps < 1:
        ap.error("--reps must be at least 1")
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"{args.bin}: not found; run `cargo build --release` first")
    return args


def main():
    args = parse()
    only = args.only
    procs.ensure_tools()
    if only & {"S1", "S7", "S9"}:
        load.ensure_loadgen(args.loadgen)
    atexit.register(procs.stop_all)
    signal.signal(signal.SIGTERM, procs.on_signal)
    signal.signal(signal.SIGINT, procs.on_signal)
    work = tempfile.mkdtemp(prefix="countersign-bench-")
    atexit.register(shutil.rmtree, work, True)

    b = base.Bench(args, work)
    nginx_v = subprocess.run([procs.nginx_bin(), "-v"], capture_output=True, text=True).stderr.strip()
    print(f"countersign {args.bin}; {nginx_v}; {os.cpu_count()} cpus; load average "
          f"{os.getloadavg()[0]:.2f}; reps {args.reps} x {args.duration}s; {','.join(sorted(only))}",
          flush=True)
    if args.reps < 3:
        print("fewer than 3 repetitions: a trial run, not a measurement")

    out = {}
    if only & {"S1", "S2", "S3", "S8"}:
        b.start_proxies()
    # S8 first, on fresh processes: idle RSS and RSS per idle keep-alive conn.
    steps = [("S8", base.s8, b), ("S1", base.s1, b), ("S2", base.s2, b), ("S3", bodies.s3, b),
             ("S4", bodies.s4, b), ("S7", tokens.s7, b)]
    for name, run, arg in steps:
        if name in only:
            print(f"{name}...", file=sys.stderr, flush=True)
            out[name] = run(arg)
    if only & {"S5", "S6", "S9"}:
        t = tls.Tls(b)
        for name, run in (("S5", tls.s5), ("S9", tls.s9)):
            if name in only:
                print(f"{name}...", file=sys.stderr, flush=True)
                out[name] = run(t)
        if "S6" in only:
            print("S6 (TLS, reloads)...", file=sys.stderr, flush=True)
            out["S6"] = reuse.s6(b, t)

    if "S1" in out:
        base.report_s1(args, out["S1"], "S6" in only)
    if "S2" in out:
        base.report_s2(args, out["S2"])
    if "S3" in out:
        bodies.report_s3(args, out["S3"])
    if "S4" in out:
        bodies.report_s4(args, out["S4"])
    if "S5" in out:
        tls.report_s5(args, out["S5"])
    if "S6" in out:
        reuse.report_s6(args, out["S6"])
    if "S7" in out:
        tokens.report_s7(args, out["S7"])
    if "S8" in out:
        base.report_s8(args, out["S8"], b.idle)
    if "S9" in out:
        tls.report_s9(args, out["S9"])
    report.print_targets()


if __name__ == "__main__":
    main()
