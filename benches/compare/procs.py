"""Processes the benchmark starts (every one stopped by its PID at exit),
ports, configs from templates, and what /proc says about them."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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


def stop(p):
    """Stops one process started here, by its PID."""
    if p.poll() is None:
        os.kill(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()


def on_signal(signum, _frame):
    stop_all()
    sys.exit(128 + signum)


def ensure_tools():
    missing = [pkg for tool, pkg in (("nginx", "nginx-light"), ("wrk", "wrk"), ("openssl", "openssl"),
                                     ("haproxy", "haproxy"))
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


def start_nginx(work, name, template, port, **values):
    """An nginx from a template (its pid file, logs and temp folders named
    after `name`), listening on `port`."""
    user = "user root root;" if os.geteuid() == 0 else ""
    conf = fill(template, f"{work}/{name}.conf", user=user, dir=work, name=name, port=port, **values)
    # -e: the error log before the config is read (not /var/log, which a
    # user other than root cannot open).
    return start([nginx_bin(), "-e", f"{work}/{name}-error.log", "-c", conf, "-p", work],
                 name, port, f"{work}/{name}.out")


def haproxy_bin():
    return shutil.which("haproxy") or "/usr/sbin/haproxy"


def start_haproxy(work, name, port, **values):
    """HAProxy from fixtures/haproxy-proxy.cfg, in the foreground (`-db`:
    one process, stopped by its PID like the others)."""
    conf = fill("haproxy-proxy.cfg", f"{work}/{name}.cfg", dir=work, name=name, port=port, **values)
    return start([haproxy_bin(), "-db", "-f", conf], name, port, f"{work}/{name}.out")


def start_countersign(binary, work, name, template, level, ports, env_extra=None, **values):
    """countersign from a template; waits for every port in `ports`.
    `env_extra`: more environment (COUNTERSIGN_WORKERS)."""
    # Not beside its log: countersign watches its config's folder, and a
    # log written there would wake the watcher on every line.
    os.makedirs(f"{work}/conf", exist_ok=True)
    conf = fill(template, f"{work}/conf/{name}.toml", **ports, **values)
    env = dict(os.environ, RUST_LOG=level, **(env_extra or {}))
    env.pop("COUNTERSIGN_LOG_FORMAT", None)
    first = next(iter(ports.values()))
    p = start([binary, "--config", conf], name, first, f"{work}/{name}.log", env=env)
    for port in ports.values():
        wait_port(port, p, name)
    return p


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


def status_kib(pids, key):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    total += int(line.split()[1])
    return total


def rss_kib(pids):
    return status_kib(pids, "VmRSS")


def reset_peak(pid):
    """Sets VmHWM back to the current RSS (Linux 4.0+: clear_refs 5)."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")
