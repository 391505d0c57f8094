"""TLS to the upstream: S5 (TLS and mutual TLS upstreams, countersign's
route listeners against nginx with proxy_ssl_*) and S9 (CONNECT-intercepted
HTTPS through countersign's forward proxy, against direct TLS; nginx has no
CONNECT interception). Certificates are made here with openssl."""

import os
import subprocess

from . import load, procs
from .report import fmt, interleaved, table

HOST = "upstream.bench"


def openssl(*argv, cwd):
    subprocess.run(["openssl", *argv], cwd=cwd, check=True, capture_output=True)


def make_pki(work, binary):
    """A bench CA, a server certificate for upstream.bench and 127.0.0.1, a
    client certificate (all P-256, PKCS#8 keys), and countersign's
    interception CA (`countersign ca init`)."""
    pki = f"{work}/pki"
    os.makedirs(pki, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "30",
            "-subj", "/CN=countersign bench CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=pki)
    for name, ext in (("server", f"subjectAltName=DNS:{HOST},IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
                      ("client", "subjectAltName=DNS:bench-client\nextendedKeyUsage=clientAuth")):
        with open(f"{pki}/{name}.ext", "w") as f:
            f.write("basicConstraints=CA:FALSE\n" + ext + "\n")
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={name}", cwd=pki)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "30", "-out", f"{name}.pem", "-extfile", f"{name}.ext",
                cwd=pki)
    subprocess.run([binary, "ca", "init", "--out", f"{work}/mitm-ca"], check=True,
                   capture_output=True)


class Tls:
    """The TLS upstream nginx, the TLS peer nginx and a countersign with the
    S5 routes and the S9 interception."""

    def __init__(self, b):
        self.b = b
        w = b.work
        make_pki(w, b.args.bin)
        self.tls_port, self.mtls_port = procs.free_port(), procs.free_port()
        self.status_port = procs.free_port()
        procs.start_nginx(w, "upstream-tls", "nginx-upstream-tls.conf", self.tls_port,
                          mtls_port=self.mtls_port, status_port=self.status_port)
        ng, ng_m = procs.free_port(), procs.free_port()
        p = procs.start_nginx(w, "nginx-tls", "nginx-proxy-tls.conf", ng, mtls_listen=ng_m,
                              tls_port=self.tls_port, mtls_port=self.mtls_port)
        procs.wait_port(ng_m, p, "nginx-tls")
        ports = {"tls_listen": procs.free_port(), "mtls_listen": procs.free_port(),
                 "proxy_port": procs.free_port()}
        cs = procs.start_countersign(b.args.bin, w, "cs-tls", "countersign-tls.toml", "info",
                                     ports, dir=w, tls_port=self.tls_port, mtls_port=self.mtls_port)
        self.proxy_port = ports["proxy_port"]
        ngx_pids, cs_pids = procs.pids_of(p.pid), [cs.pid]
        self.port = {"direct-tls": self.tls_port, "nginx-tls": ng, "cs-tls": ports["tls_listen"],
                     "nginx-mtls": ng_m, "cs-mtls": ports["mtls_listen"]}
        for t in ("nginx-tls", "cs-tls", "nginx-mtls", "cs-mtls"):
            load.check_credential(t, self.port[t], "Bearer bench-token")
        load.check_credential("cs-connect", self.proxy_port, "Bearer bench-token",
                              tunnel=(HOST, 443), ca=f"{w}/mitm-ca/ca.pem")
        self.pids = {"direct-tls": [], "nginx-tls": ngx_pids, "cs-tls": cs_pids,
                     "nginx-mtls": ngx_pids, "cs-mtls": cs_pids}

    def wrk(self, t):
        a, use = self.b.args, self.pids[t]
        cpu0 = procs.cpu_seconds(use) if use else 0
        r = load.wrk(self.port[t], a.conns, a.duration, scheme="https" if t == "direct-tls" else "http")
        r["cpu_us"] = (procs.cpu_seconds(use) - cpu0) * 1e6 / r["requests"] if use else 0
        return r

    def gen(self, t, rate):
        """S9: the load generator, direct TLS or CONNECT then TLS."""
        a = self.b.args
        if t == "direct-tls":
            opts = {"tls_ca": f"{self.b.work}/pki/ca.pem"}
            addr, use = f"127.0.0.1:{self.tls_port}", []
        else:
            opts = {"tls_ca": f"{self.b.work}/mitm-ca/ca.pem", "connect": f"{HOST}:443"}
            addr, use = f"127.0.0.1:{self.proxy_port}", self.pids["cs-tls"]
        cpu0 = procs.cpu_seconds(use) if use else 0
        conns = a.conns if rate == 0 else 16
        r = load.loadgen(a.loadgen, addr, rate, a.duration, conns=conns, host=HOST, **opts)
        r["cpu_us"] = (procs.cpu_seconds(use) - cpu0) * 1e6 / r["requests"] if use else 0
        return r


def s5(tls):
    return interleaved(tls.b.args.reps, list(tls.port), tls.wrk)


def s9(tls):
    a = tls.b.args
    targets = ["direct-tls", "cs-connect"]
    return {"closed": interleaved(a.reps, targets, lambda t: tls.gen(t, 0)),
            "rate": interleaved(a.reps, targets, lambda t: tls.gen(t, a.rate))}


def report_s5(a, res):
    reps = range(a.reps)
    print(f"\n## S5: TLS and mutual TLS upstream (wrk c={a.conns}, plain HTTP in, TLS out; "
          "direct = wrk over TLS to the upstream)\n")
    rows = []
    for t in res:
        rows.append([t, fmt([res[t][i]["rps"] for i in reps], ".0f"),
                     fmt([res[t][i]["rps"] / res["direct-tls"][i]["rps"] for i in reps], ".2f"),
                     "-" if t == "direct-tls" else fmt([res[t][i]["cpu_us"] for i in reps], ".1f")])
    table(["target", "req/s", "vs direct TLS", "proxy CPU µs/req"], rows)
    print("\nThe proxies' clients speak plain HTTP while direct's wrk does TLS itself, so a proxy "
          "can pass 1.00 x direct; the figures to read are countersign against nginx:\n")
    for kind in ("tls", "mtls"):
        cs, ng = res[f"cs-{kind}"], res[f"nginx-{kind}"]
        rps = [cs[i]["rps"] / ng[i]["rps"] for i in reps]
        cpu = [cs[i]["cpu_us"] / ng[i]["cpu_us"] for i in reps]
        print(f"{kind}: countersign req/s {fmt(rps, '.2f')} x nginx's, "
              f"CPU per request {fmt(cpu, '.2f')} x nginx's  ")


def report_s9(a, res):
    reps = range(a.reps)
    closed, rate = res["closed"], res["rate"]
    print(f"\n## S9: CONNECT-intercepted HTTPS (load generator; closed loop c={a.conns}, "
          f"then {a.rate:.0f} req/s open loop, 16 connections)\n")
    print("cs-connect: CONNECT upstream.bench:443 to countersign's forward proxy, TLS with "
          "countersign's minted certificate, keep-alive requests in the tunnel; countersign "
          "signs and sends them over its own TLS to the upstream. direct-tls: TLS straight to "
          "the upstream. nginx has no CONNECT interception, so no nginx row.\n")
    rows = []
    for t in closed:
        d = t == "direct-tls"
        rows.append([t, fmt([closed[t][i]["rps"] for i in reps], ".0f"),
                     "1" if d else fmt([closed[t][i]["rps"] / closed["direct-tls"][i]["rps"] for i in reps], ".2f"),
                     "-" if d else fmt([closed[t][i]["cpu_us"] for i in reps], ".1f"),
                     fmt([rate[t][i]["p50_us"] for i in reps], ".0f"),
                     fmt([rate[t][i]["p99_us"] for i in reps], ".0f"),
                     "-" if d else fmt([rate[t][i]["p50_us"] - rate["direct-tls"][i]["p50_us"] for i in reps], "+.0f"),
                     "-" if d else fmt([rate[t][i]["p99_us"] - rate["direct-tls"][i]["p99_us"] for i in reps], "+.0f")])
    table(["target", "req/s", "vs direct TLS", "proxy CPU µs/req", f"p50 at {a.rate:.0f}/s (µs)",
           "p99 (µs)", "added p50", "added p99"], rows)
