"""S6 beyond S1's plain runs: upstream connections countersign opens to a
TLS upstream, and across reloads (SIGHUP every second while wrk runs), per
request; counted from the upstream nginx's accepts (`stub_status`), as in
S1 (the TLS pool filled by a 1 s run first). Whether each SIGHUP made a
reload is read from countersign's log (`config reloaded`). Run with S6
(`--only S6`)."""

import os
import signal
import threading

from . import load
from .report import fmt, table, target


def reloads_logged(log):
    """How many reloads countersign's log (RUST_LOG=info) says it made."""
    with open(log, errors="replace") as f:
        return sum(1 for line in f if "config reloaded" in line)


def counted(port, status_port, conns, secs, reload_pid=None, log=None):
    """wrk c=conns against `port`; upstream connections opened meanwhile
    (less the status request's own), SIGHUPs sent to `reload_pid`, and the
    reloads its `log` says it made."""
    stop, sent = threading.Event(), [0]
    done0 = reloads_logged(log) if log else 0

    def reload_every_second():
        while not stop.wait(1.0):
            os.kill(reload_pid, signal.SIGHUP)
            sent[0] += 1

    a0 = load.accepts(status_port)
    sender = threading.Thread(target=reload_every_second) if reload_pid else None
    if sender:
        sender.start()
    try:
        r = load.wrk(port, conns, secs)
    finally:
        stop.set()
        if sender:
            sender.join()
    opened = load.accepts(status_port) - a0 - 1
    return {"requests": r["requests"], "opened": opened, "reloads": sent[0],
            "reloaded": reloads_logged(log) - done0 if log else 0}


def s6(b, t):
    """Per repetition: plain upstream across reloads, TLS upstream, TLS
    upstream across reloads."""
    a, w = b.args, b.work
    cs_tls = t.pids["cs-tls"][0]
    # The TLS pool filled first (S1's runs filled the plain one): what is
    # counted is reuse, not the first c connections.
    load.wrk(t.port["cs-tls"], a.conns, 1)
    runs = {
        "cs, plain, reloads": lambda: counted(b.port["cs"], b.up_status, a.conns, a.duration,
                                              reload_pid=b.pids["cs"][0], log=f"{w}/cs.log"),
        "cs-tls": lambda: counted(t.port["cs-tls"], t.status_port, a.conns, a.duration),
        "cs-tls, reloads": lambda: counted(t.port["cs-tls"], t.status_port, a.conns, a.duration,
                                           reload_pid=cs_tls, log=f"{w}/cs-tls.log"),
    }
    out = {name: [] for name in runs}
    for _ in range(a.reps):
        for name, run in runs.items():
            out[name].append(run())
    return out


def report_s6(a, res):
    reps = range(a.reps)
    print(f"\n## S6: upstream connection reuse beyond S1 (wrk c={a.conns}; "
          "reloads: SIGHUP every second during the run)\n")
    rows = []
    for name, runs in res.items():
        opened = sum(r["opened"] for r in runs)
        reqs = sum(r["requests"] for r in runs)
        reloads = f'{sum(r["reloads"] for r in runs)} / {sum(r["reloaded"] for r in runs)}'
        rows.append([name, fmt([runs[i]["requests"] for i in reps], ".0f"), reloads,
                     f"{opened} / {reqs} = {opened / reqs:.6f}", f"{100 * (1 - opened / reqs):.4f}%"])
        target(f"S6 >= 99.9% upstream connection reuse ({name})",
               f"{100 * (1 - opened / reqs):.4f}% ({opened} opened in {reqs})",
               100 * (1 - opened / reqs), 99.9, at_most=False, unit="%")
    table(["run", "requests per run", "SIGHUPs sent / reloads logged", "upstream conns/req", "reuse"],
          rows)
