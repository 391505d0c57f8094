"""S7: an OAuth2 client_credentials route under steady fixed-rate load
while its short-lived token is renewed several times: token requests per
renewal (target: exactly one), and p99 latency in the second around each
renewal against the rest of the run."""

import os
import sys
import time

from . import load, procs
from .report import fmt, table, target


def s7(b):
    a, w = b.args, b.work
    token_port, log = procs.free_port(), f"{w}/token-grants.log"
    procs.start([sys.executable, os.path.join(procs.FIX, "token_endpoint.py"), str(token_port),
                 str(a.expires_in), log], "token endpoint", token_port, f"{w}/token-endpoint.out")
    ports = {"oauth2_port": procs.free_port()}
    p = procs.start_countersign(a.bin, w, "cs-token", "countersign-token.toml", "info", ports,
                                token_port=token_port, upstream_port=b.up)
    time.sleep(1)  # the first token, fetched at start
    load.check_credential("cs-token", ports["oauth2_port"], "Bearer bench-at-")
    secs = max(12, 3 * a.duration)
    res = []
    for rep in range(a.reps):
        stamps = f"{w}/s7-{rep}.txt"
        r = load.loadgen(a.loadgen, f"127.0.0.1:{ports['oauth2_port']}", a.rate, secs,
                         timestamps=stamps)
        with open(log) as f:
            grants = [float(x) for x in f.read().split()]
        start = r["start_unix"]
        grants = [g - start for g in grants if start <= g <= start + secs]
        with open(stamps) as f:
            samples = [tuple(int(x) for x in line.split()) for line in f]
        near, far = [], []
        for sched_us, lat_us in samples:
            s = sched_us / 1e6
            (near if any(abs(s - g) <= 0.5 for g in grants) else far).append(lat_us)
        # Grants less than a second apart belong to one renewal.
        renewals = []
        for g in grants:
            if renewals and g - renewals[-1][-1] < 1.0:
                renewals[-1].append(g)
            else:
                renewals.append([g])
        res.append({"secs": secs, "grants": len(grants), "renewals": len(renewals),
                    "max_per_renewal": max((len(x) for x in renewals), default=0),
                    "interval": (grants[-1] - grants[0]) / (len(grants) - 1) if len(grants) > 1 else 0,
                    "p99_near": pct(near, 0.99), "p99_far": pct(far, 0.99),
                    "n_near": len(near), "p99_all": r["p99_us"], "requests": r["requests"]})
    procs.stop(p)
    return res


def pct(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, max(0, int(q * len(values) + 0.999999) - 1))]


def report_s7(a, res):
    reps = range(a.reps)
    print(f"\n## S7: token expiry under load (OAuth2 client_credentials, expires_in {a.expires_in} s, "
          f"{a.rate:.0f} req/s for {res[0]['secs']} s per repetition)\n")
    col = lambda k: [r[k] for r in res]
    table(["token requests in the run", "renewals", "most token requests in one renewal",
           "seconds between renewals", "p99 within ±0.5 s of a renewal (µs)", "p99 elsewhere (µs)",
           "near/elsewhere"],
          [[fmt(col("grants"), ".0f"), fmt(col("renewals"), ".0f"), fmt(col("max_per_renewal"), ".0f"),
            fmt(col("interval"), ".2f"), fmt(col("p99_near"), ".0f"), fmt(col("p99_far"), ".0f"),
            fmt([r["p99_near"] / r["p99_far"] for r in res], ".2f")]])
    print(f"\ncountersign renews at 0.72-0.8 of the lifetime (refresh_at 0.8, jittered), so a "
          f"renewal every {0.72 * a.expires_in:.1f}-{0.8 * a.expires_in:.1f} s is one token "
          "request per token.")
    most = max(col("max_per_renewal"))
    target("S7 one token request per expiry", f"at most {most} per renewal", most, 1)
    spike = sorted(r["p99_near"] / r["p99_far"] for r in res)[len(res) // 2]
    target("S7 no p99 spike around renewal (near/elsewhere <= 1.5)", f"{spike:.2f}x", spike, 1.5, unit="x")
