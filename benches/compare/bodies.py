"""Signed bodies: S3 (10 MiB PayPay-signed POSTs against the MD5 limit
measured in the same run) and S4 (one 1 GiB signed POST: peak RSS)."""

from . import load, procs
from .report import fmt, table, target

MIB = 1 << 20


def s3(b):
    post10m = load.lua_post(f"{b.work}/post10m.lua", 10 * MIB)
    res = {"cs-paypay": [], "md5": []}
    for _ in range(b.args.reps):
        res["cs-paypay"].append(b.timed("cs", 1, b.args.duration, post10m,
                                        b.cs_ports["cs"]["paypay_port"]))
        res["md5"].append(load.md5_mbps())
    return res


def s4(b):
    """A countersign of its own (max_body raised to 2 GiB); VmHWM reset
    before each upload, read after it."""
    ports = {"paypay_port": procs.free_port()}
    p = procs.start_countersign(b.args.bin, b.work, "cs-big", "countersign-big.toml", "info",
                                ports, upstream_port=b.up)
    load.check_credential("cs-big", ports["paypay_port"], "hmac OPA-Auth:bench-key:", post=True)
    size = b.args.big_mib * MIB
    res = []
    for _ in range(b.args.reps):
        procs.reset_peak(p.pid)
        before = procs.rss_kib([p.pid])
        cpu0 = procs.cpu_seconds([p.pid])
        secs = load.big_post(ports["paypay_port"], size, timeout=180)
        res.append({"secs": secs, "mbps": size / secs / 1e6, "rss_before": before,
                    "hwm": procs.status_kib([p.pid], "VmHWM"),
                    "cpu_s": procs.cpu_seconds([p.pid]) - cpu0})
    procs.stop(p)
    return res


def report_s3(a, res):
    reps = range(a.reps)
    print("\n## S3: 10 MiB POST, PayPay-signed (wrk c=1)\n")
    signed = [res["cs-paypay"][i]["rps"] * 10 * MIB / 1e6 for i in reps]
    md5 = res["md5"]
    ratio = [signed[i] / md5[i] for i in reps]
    cpu = [res["cs-paypay"][i]["cpu_us"] / 1000 for i in reps]
    table(["", "MB/s"], [["countersign, signed", fmt(signed, ".0f")],
                         ["MD5 limit (hashlib, same run)", fmt(md5, ".0f")]])
    print(f"\nsigned / MD5 limit: {fmt(ratio, '.2f')}; "
          f"countersign CPU per 10 MiB body: {fmt(cpu, '.1f')} ms")
    m = sorted(ratio)[len(ratio) // 2]
    target("S3 >= 80% of the MD5 limit", f"{100 * m:.0f}%", 100 * m, 80, at_most=False, unit=" points")


def report_s4(a, res):
    print(f"\n## S4: one {a.big_mib} MiB POST, PayPay-signed (one connection, 1 MiB writes)\n")
    col = lambda k, scale=1: [r[k] * scale for r in res]
    table(["RSS before (KiB)", "peak RSS during (VmHWM, KiB)", "MB/s", "countersign CPU (s)"],
          [[fmt(col("rss_before"), ".0f"), fmt(col("hwm"), ".0f"), fmt(col("mbps"), ".0f"),
            fmt(col("cpu_s"), ".2f")]])
    peak = max(col("hwm")) / 1024
    target("S4 peak RSS <= 32 MiB", f"{peak:.1f} MiB (highest)", peak, 32, unit=" MiB")
