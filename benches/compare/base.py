"""The shared upstream, the proxies in front of it, and the scenarios on
plain HTTP: S1 (small GET: req/s, CPU per request, latency at c=1 and at a
fixed rate), S6 (upstream connection reuse, from S1's runs), S2 (1 KiB
POST, PayPay HMAC against unsigned) and S8 (idle memory)."""

import time

from . import load, procs
from .report import fmt, interleaved, table, target

# nginx's access log when on: the usual buffered form. countersign writes
# its log in batches from a thread of its own, so the fair peer is nginx's
# buffered log (flushed at 64 KiB or every second), not a write per request.
ACCESS_LOG = "access_log {dir}/{name}-access.log combined buffer=64k flush=1s;"


class Bench:
    """What every scenario shares: options, the temp folder, the upstream."""

    def __init__(self, args, work):
        self.args, self.work = args, work
        self.up, self.up_status = procs.free_port(), procs.free_port()
        procs.start_nginx(work, "upstream", "nginx-upstream.conf", self.up,
                          status_port=self.up_status)
        self.port, self.pids = {"direct": self.up}, {"direct": []}
        self.cs_ports = {}
        self.idle = {}

    def start_proxies(self):
        """nginx (log off), nginx-log (log on), HAProxy (log off) and
        countersign with the per-request log (cs), without (cs-warn), and
        as shipped on one runtime worker (cs-1w, as nginx runs one worker)."""
        w = self.work
        for name, log in (("nginx", "access_log off;"), ("nginx-log", ACCESS_LOG.format(dir=w, name="nginx-log"))):
            port = procs.free_port()
            p = procs.start_nginx(w, name, "nginx-proxy.conf", port, upstream_port=self.up,
                                  access_log=log)
            self.port[name], self.pids[name] = port, procs.pids_of(p.pid)
        # HAProxy: S1's second peer (one thread, its log off).
        port = procs.free_port()
        p = procs.start_haproxy(w, "haproxy", port, upstream_port=self.up)
        self.port["haproxy"], self.pids["haproxy"] = port, [p.pid]
        for name, level, env in (("cs", "info", None), ("cs-warn", "warn", None),
                                 ("cs-1w", "info", {"COUNTERSIGN_WORKERS": "1"})):
            ports = {"bearer_port": procs.free_port(), "paypay_port": procs.free_port(),
                     "plain_port": procs.free_port()}
            p = procs.start_countersign(self.args.bin, w, name, "countersign.toml", level, ports,
                                        env_extra=env, upstream_port=self.up)
            self.port[name], self.pids[name], self.cs_ports[name] = ports["bearer_port"], [p.pid], ports
        time.sleep(0.5)
        for name in ("cs", "cs-warn"):
            self.idle[name] = procs.rss_kib(self.pids[name])
        # After the idle figures: these requests allocate.
        for name in ("nginx", "nginx-log", "haproxy", "cs", "cs-warn", "cs-1w"):
            load.check_credential(name, self.port[name], "Bearer bench-token")
        load.check_credential("cs paypay", self.cs_ports["cs"]["paypay_port"],
                              "hmac OPA-Auth:bench-key:", post=True)

    def timed(self, t, conns, secs, script=None, port=None, pids=None):
        """wrk against target t; its CPU per request and upstream accepts."""
        use = self.pids[t] if pids is None else pids
        cpu0 = procs.cpu_seconds(use) if use else 0
        a0 = load.accepts(self.up_status)
        r = load.wrk(port or self.port[t], conns, secs, script)
        a1 = load.accepts(self.up_status)
        r["cpu_us"] = (procs.cpu_seconds(use) - cpu0) * 1e6 / r["requests"] if use else 0
        r["upstream_conns"] = a1 - a0 - 1
        return r


S1_TARGETS = ["direct", "nginx", "nginx-log", "haproxy", "cs", "cs-warn", "cs-1w"]


def s8(b):
    """On fresh processes, before any load."""
    return {t: load.idle_per_conn(b.port[t], b.pids[t], b.args.idle, procs.rss_kib)
            for t in ("nginx", "cs", "cs-warn")}


def s1(b):
    a, d = b.args, b.args.duration
    res = {"c32": interleaved(a.reps, S1_TARGETS, lambda t: b.timed(t, a.conns, d)),
           "c1": interleaved(a.reps, S1_TARGETS, lambda t: b.timed(t, 1, max(2, d * 3 // 5)))}
    res["rate"] = interleaved(a.reps, S1_TARGETS, lambda t: load.loadgen(
        a.loadgen, f"127.0.0.1:{b.port[t]}", a.rate, d))
    return res


def s2(b):
    a = b.args
    post1k = load.lua_post(f"{b.work}/post1k.lua", 1024)
    ports = {"direct": b.up, "nginx": b.port["nginx"], "cs-plain": b.cs_ports["cs"]["plain_port"],
             "cs-paypay": b.cs_ports["cs"]["paypay_port"]}
    pids = dict(b.pids, **{"cs-plain": b.pids["cs"], "cs-paypay": b.pids["cs"]})
    return interleaved(a.reps, list(ports), lambda t: b.timed(
        t, a.conns, a.duration, post1k, ports[t], pids[t]))


def added(res, t, key, reps):
    return [res[t][i][key] - res["direct"][i][key] for i in reps]


def report_s1(a, res, s6_shown):
    reps = range(a.reps)
    c32, c1, rate = res["c32"], res["c1"], res["rate"]
    print(f"\n## S1: small GET, bearer header added (wrk c={a.conns}; latency at c=1)\n")
    rows = []
    for t in c32:
        if t == "direct":
            rows.append([t, fmt([c32[t][i]["rps"] for i in reps], ".0f"), "1", "-", "-", "-", "-"])
            continue
        ratio = [c32[t][i]["rps"] / c32["direct"][i]["rps"] for i in reps]
        conns = sum(c32[t][i]["upstream_conns"] for i in reps)
        reqs = sum(c32[t][i]["requests"] for i in reps)
        rows.append([t, fmt([c32[t][i]["rps"] for i in reps], ".0f"), fmt(ratio, ".2f"),
                     fmt([c32[t][i]["cpu_us"] for i in reps], ".1f"),
                     fmt(added(c1, t, "p50", reps), "+.0f"), fmt(added(c1, t, "p99", reps), "+.0f"),
                     f"{conns} / {reqs} = {conns / reqs:.6f}"])
    table(["target", "req/s", "vs direct", "proxy CPU µs/req", "added p50 c=1 (µs)",
           "added p99 c=1 (µs)", "upstream conns/req"], rows)
    cpu = {t: [c32[t][i]["cpu_us"] for i in reps] for t in c32}
    print()
    for t, peer in (("cs", "nginx"), ("cs-warn", "nginx"), ("cs", "nginx-log"), ("nginx-log", "nginx"),
                    ("cs-warn", "haproxy"), ("cs-1w", "nginx-log"), ("cs-1w", "cs")):
        r = [cpu[t][i] / cpu[peer][i] for i in reps]
        print(f"{t}: CPU per request {fmt(r, '.2f')} x {peer}'s  ")

    print(f"\n### S1 at a fixed rate ({a.rate:.0f} req/s, 16 connections, open loop: "
          "latency from the scheduled send time)\n")
    rows = []
    for t in rate:
        lat = [f"{fmt([rate[t][i][k] for i in reps], '.0f')}" for k in ("p50_us", "p99_us", "p999_us")]
        if t == "direct":
            rows.append([t] + lat + ["-", "-", "-",
                         fmt([rate[t][i]["overshoot_p99_us"] for i in reps], ".0f")])
            continue
        rows.append([t] + lat + [fmt(added(rate, t, k, reps), "+.0f") for k in ("p50_us", "p99_us", "p999_us")]
                    + [fmt([rate[t][i]["overshoot_p99_us"] for i in reps], ".0f")])
    table(["target", "p50 (µs)", "p99 (µs)", "p99.9 (µs)", "added p50", "added p99", "added p99.9",
           "generator's timer overshoot p99 (µs)"], rows)
    achieved = [rate["direct"][i]["rps"] for i in reps]
    print(f"\nrate achieved (direct): {fmt(achieved, '.0f')} req/s; \"direct\" is the generator's "
          "own floor (loopback, its threads, its timer).")

    # The targets for S1 and S6.
    med_ = lambda v: sorted(v)[len(v) // 2]
    r_warn = med_([cpu["cs-warn"][i] / cpu["nginx"][i] for i in reps])
    r_log = med_([cpu["cs"][i] / cpu["nginx-log"][i] for i in reps])
    target("S1 CPU/request <= nginx's (both logs off)", f"cs-warn {r_warn:.2f}x nginx", r_warn, 1.0, unit="x")
    target("S1 CPU/request <= 1.25x nginx's (both logs on)", f"cs {r_log:.2f}x nginx-log", r_log, 1.25, unit="x")
    rr = med_([c32["cs"][i]["rps"] / c32["nginx"][i]["rps"] for i in reps])
    target("S1 req/s >= nginx's", f"cs {rr:.2f}x nginx's req/s", rr, 1.0, at_most=False, unit="x")
    p50 = med_(added(c1, "cs", "p50", reps))
    target("S1 added p50 at c=1 <= +50 µs", f"cs {p50:+.0f} µs", p50, 50, unit=" µs")
    p50r = med_(added(rate, "cs", "p50_us", reps))
    target(f"S1 added p50 at {a.rate:.0f} req/s <= +50 µs", f"cs {p50r:+.0f} µs", p50r, 50, unit=" µs")
    if s6_shown:
        conns = sum(c32["cs"][i]["upstream_conns"] for i in reps)
        reqs = sum(c32["cs"][i]["requests"] for i in reps)
        reuse = 100 * (1 - conns / reqs)
        target("S6 >= 99.9% upstream connection reuse", f"cs {reuse:.4f}% ({conns} opened in {reqs})",
               reuse, 99.9, at_most=False, unit="%")


def report_s2(a, res):
    reps = range(a.reps)
    print(f"\n## S2: 1 KiB POST (wrk c={a.conns})\n")
    rows = []
    for t in res:
        rows.append([t, fmt([res[t][i]["rps"] for i in reps], ".0f"),
                     fmt([res[t][i]["rps"] / res["direct"][i]["rps"] for i in reps], ".2f"),
                     "-" if t == "direct" else fmt([res[t][i]["cpu_us"] for i in reps], ".1f")])
    table(["target", "req/s", "vs direct", "proxy CPU µs/req"], rows)
    hmac = [res["cs-paypay"][i]["cpu_us"] - res["cs-plain"][i]["cpu_us"] for i in reps]
    print(f"\nPayPay HMAC signing adds {fmt(hmac, '+.1f')} µs CPU per request over the unsigned POST")
    m = sorted(hmac)[len(hmac) // 2]
    target("S2 HMAC adds <= 3 µs CPU/request", f"{m:+.1f} µs", m, 3, unit=" µs")


def report_s8(a, res, idle):
    print(f"\n## S8: memory ({a.idle} idle keep-alive client connections)\n")
    rows = [[t, idle.get(t, before), f"{per:.0f}"] for t, (before, per) in res.items()]
    table(["target", "RSS at start (KiB)", "RSS per idle connection (bytes)"], rows)
    start_kib = idle["cs"]
    target("S8 idle RSS <= 8 MiB", f"cs {start_kib / 1024:.1f} MiB", start_kib / 1024, 8, unit=" MiB")
    per = res["cs"][1]
    target("S8 <= 8 KB per idle keep-alive connection", f"cs {per / 1000:.1f} KB", per / 1000, 8, unit=" KB")
