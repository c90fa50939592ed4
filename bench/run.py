#!/usr/bin/env python3
"""azlb against HAProxy (tcp mode) and nginx (stream) on the same backends, in
one run, alternating, with a direct connection as the limit. Writes
bench/results.md and bench/results.svg. Every process it starts is stopped;
every load is bounded in time. Run it through bench/run.sh."""
import json
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

import balancer_calls
import machine_counters as mc
from timing import run_ms

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AZLB = os.path.join(ROOT, "build", "cli", "azlb")
# AZLB_BASELINE=/path/to/an/older/azlb adds it as a row of its own ("before"),
# measured alternating with the others in the same run: an A/B of two builds.
BASELINE = os.environ.get("AZLB_BASELINE")
LATENCY = os.path.join(ROOT, "build", "bench-latency")
VMS = ["127.0.1.4", "127.0.1.5", "127.0.1.6"]
# The NAT plane's members are of their own: a DNATed SYN carries the
# timestamps of the client's connection to the VIP, and on a member still
# holding TIME_WAIT sockets of the other rows' connections it would fail PAWS
# and wait for a SYN retransmit (TcpExtPAWSTimewait).
NAT_VMS = ["127.0.2.4", "127.0.2.5", "127.0.2.6"]
# The NAT row needs root (CAP_NET_ADMIN); without it the row is left out.
NAT = os.geteuid() == 0
HTTP_PORT, IPERF_PORT = 8000, 5201
PP_PORT = 8001  # the same backends, expecting a PROXY protocol header
PORTS = {"azlb": (28101, 28201), "haproxy": (28102, 28202), "nginx": (28103, 28203), "before": (28104, 28204),
         "azlb-pp": (28105, 28205), "azlb-log": (28106, 28206), "nat": (28107, 28207),
         "azlb2": (28108, 28208), "haproxy2": (28109, 28209), "nginx2": (28110, 28210)}
# The cost of azlb's optional features, each an engine of its own beside a
# plain one: PROXY protocol v2 to the members, and the access log.
FEATURES = ["azlb", "azlb-pp", "azlb-log"]
# AZLB_BENCH_ONLY=features runs just that A/B (about two minutes).
ONLY_FEATURES = os.environ.get("AZLB_BENCH_ONLY") == "features"
FEATURE_ROUNDS = int(os.environ.get("AZLB_BENCH_FEATURE_ROUNDS", "3"))
NAT_ROUNDS = 3  # pairs of NAT and direct runs
THREADS = 1          # worker threads (processes) for every balancer
# The same job with two workers each (azlb --threads 2, HAProxy nbthread 2,
# nginx worker_processes 2): whether the ratios hold, and whether the
# listeners' SO_REUSEPORT spreads the connections evenly over the workers.
TWO = ["azlb2", "haproxy2", "nginx2"]
DURATION = 5         # seconds per throughput run
IDLE_CONNS = 8000
work = tempfile.mkdtemp(prefix="azlb-bench-")
procs = []


def start(cmd, **kw):
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, **kw)
    procs.append(p)
    return p


def stop_all():
    for state in ("state.toml", "state2.toml", "pp.toml", "log.toml", "nat.toml"):
        subprocess.run([AZLB, "--state", f"{work}/{state}", "engine", "stop"], capture_output=True)
    if BASELINE:
        subprocess.run([BASELINE, "--state", f"{work}/before.toml", "engine", "stop"], capture_output=True)
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


def wait_port(host, port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port}")


def write(name, text):
    path = os.path.join(work, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def backends():
    servers = "\n".join(f"""  server {{ listen {ip}:{HTTP_PORT} reuseport backlog=4096;
             listen {ip}:{PP_PORT} proxy_protocol reuseport backlog=4096; keepalive_requests 1000000;
             location / {{ return 200 "vm{i + 1}\\n"; }} }}""" for i, ip in enumerate(VMS + NAT_VMS))
    conf = write("backend.conf", f"""worker_processes 1; pid {work}/backend.pid; error_log {work}/backend.err;
worker_rlimit_nofile 20000;
events {{ worker_connections 19000; }}
http {{ access_log off; default_type text/plain;
{servers}
}}
""")
    start(["nginx", "-p", work, "-c", conf, "-g", "daemon off;"])
    start(["iperf3", "-s", "-B", VMS[0], "-p", str(IPERF_PORT)])
    start(["iperf3", "-s", "-B", NAT_VMS[0], "-p", str(IPERF_PORT)])
    for ip in VMS + NAT_VMS:
        wait_port(ip, HTTP_PORT)
    wait_port(VMS[0], IPERF_PORT)


def azlb_balancer(binary, state, name, set_args=(), start_args=(), private_port=HTTP_PORT, nat=False, threads=THREADS):
    az = lambda *a: subprocess.run([binary, "--state", state, "-q", *a], check=True)
    http, bulk = PORTS[name]
    if nat:
        az("service", "create", "bench", "--dataplane", "nat", "--subnet", "127.0.2.0/24")
    for i in range(3):
        az("vm", "create", f"vm{i + 1}", "--cloud-service", "bench", "--no-default-endpoints")
    az("endpoint", "add", "vm1", "--name", "http", "--protocol", "tcp", "--public-port", str(http),
       "--private-port", str(private_port), "--lbset", "farm", "--probe-interval", "1", "--probe-timeout", "3",
       *set_args)
    az("lbset", "join", "farm", "--vm", "vm2")
    az("lbset", "join", "farm", "--vm", "vm3")
    az("endpoint", "add", "vm1", "--name", "iperf", "--protocol", "tcp", "--public-port", str(bulk),
       "--private-port", str(IPERF_PORT))
    az("engine", "start", "--threads", str(threads), *start_args)


def nat_balancer():
    if NAT:
        azlb_balancer(AZLB, f"{work}/nat.toml", "nat", nat=True)


def feature_balancers():
    azlb_balancer(AZLB, f"{work}/pp.toml", "azlb-pp", ("--proxy-protocol", "v2"), private_port=PP_PORT)
    azlb_balancer(AZLB, f"{work}/log.toml", "azlb-log", start_args=("--access-log", f"{work}/access.log"))
    for name in ("azlb-pp", "azlb-log"):
        wait_port("127.0.0.1", PORTS[name][0])


def balancers(threads=THREADS):
    """The same job for each: random over the three backends with health
    checks, and a plain forward to the iperf3 server. With threads=2, the
    rows of TWO."""
    sfx = "" if threads == THREADS else str(threads)
    azlb_balancer(AZLB, f"{work}/state{sfx}.toml", "azlb" + sfx, threads=threads)
    if BASELINE and not sfx:
        azlb_balancer(BASELINE, f"{work}/before.toml", "before")
    http, bulk = PORTS["haproxy" + sfx]
    servers = "\n".join(f"  server vm{i + 1} {ip}:{HTTP_PORT} check inter 1s fall 3 rise 1" for i, ip in enumerate(VMS))
    conf = write(f"haproxy{sfx}.cfg", f"""global
  nbthread {threads}
  maxconn 9000   # haproxy reserves two descriptors a connection; 20,000 is the limit here
defaults
  mode tcp
  timeout connect 3s
  timeout client 4m
  timeout server 4m
frontend web
  bind 127.0.0.1:{http}
  default_backend farm
backend farm
  balance random
{servers}
listen bulk
  bind 127.0.0.1:{bulk}
  server vm1 {VMS[0]}:{IPERF_PORT}
""")
    start(["haproxy", "-db", "-f", conf])

    http, bulk = PORTS["nginx" + sfx]
    # nginx's open-source stream module checks passively: a failed connect
    # takes the server out for fail_timeout.
    servers = "\n".join(f"    server {ip}:{HTTP_PORT} max_fails=1 fail_timeout=3s;" for ip in VMS)
    conf = write(f"nginx-lb{sfx}.conf", f"""load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes {threads}; pid {work}/lb{sfx}.pid; error_log {work}/lb{sfx}.err;
worker_rlimit_nofile 20000;
events {{ worker_connections 19000; }}
stream {{
  upstream farm {{ random;
{servers}
  }}
  server {{ listen 127.0.0.1:{http} reuseport; proxy_pass farm; proxy_timeout 4m; }}
  server {{ listen 127.0.0.1:{bulk}; proxy_pass {VMS[0]}:{IPERF_PORT}; }}
}}
""")
    start(["nginx", "-p", work, "-c", conf, "-g", "daemon off;"])
    for name in ("azlb" + sfx, "haproxy" + sfx, "nginx" + sfx, *(["before"] if BASELINE and not sfx else [])):
        http, bulk = PORTS[name]
        wait_port("127.0.0.1", http)
        wait_port("127.0.0.1", bulk)
    time.sleep(1.5)  # first health checks


def target(name):
    if name == "direct":
        return VMS[0], HTTP_PORT, VMS[0], IPERF_PORT
    http, bulk = PORTS[name]
    return "127.0.0.1", http, "127.0.0.1", bulk


def wrk(host, port, close):
    cmd = ["wrk", "-t1", "-c64", f"-d{DURATION}s", f"http://{host}:{port}/"]
    if close:
        cmd[1:1] = ["-H", "Connection: close"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=DURATION + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, (errors.group(1) if errors else "") + (f" non-2xx {non2xx.group(1)}" if non2xx else "")


def iperf(host, port):
    out = subprocess.run(["iperf3", "-c", host, "-p", str(port), "-t", "4", "-J"], capture_output=True, text=True,
                         timeout=30).stdout
    return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e9


def latency(host, port, rate):
    out = subprocess.run([LATENCY, host, str(port), str(int(rate)), str(DURATION), "16"], capture_output=True,
                         text=True, timeout=DURATION + 30).stdout.split()
    return int(out[0]), int(out[1]), int(out[3])


def pids_of(name):
    states = {"azlb": "state.toml", "azlb2": "state2.toml", "before": "before.toml", "azlb-pp": "pp.toml",
              "azlb-log": "log.toml", "nat": "nat.toml"}
    if name in states:
        return [int(open(f"{work}/{states[name]}.engine.pid").read())]
    pat = {"haproxy": "haproxy.cfg", "haproxy2": "haproxy2.cfg", "nginx": "nginx-lb.conf",
           "nginx2": "nginx-lb2.conf"}[name]
    out = subprocess.run(["pgrep", "-f", pat], capture_output=True, text=True).stdout.split()
    root = [int(p) for p in out]
    kids = subprocess.run(["pgrep", "-P", ",".join(map(str, root))], capture_output=True, text=True).stdout.split()
    return root + [int(k) for k in kids]


def worker_ticks(name):
    """CPU ticks so far of each of a balancer's workers: azlb's worker
    threads, HAProxy's threads, nginx's worker processes."""
    pids = pids_of(name)
    if name.startswith("azlb"):
        return mc.thread_ticks(pids, "azlb-worker")
    if name.startswith("nginx"):
        return mc.thread_ticks(pids[1:])  # the master does no forwarding
    return mc.thread_ticks(pids)


def cpu_seconds(pids):
    """User plus system time the processes have used so far."""
    return sum(mc.ticks(f"/proc/{pid}/stat") for pid in pids) / os.sysconf("SC_CLK_TCK")


def rss_mib(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            total += int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
    return total / 1024


def idle_memory(name):
    """RSS with IDLE_CONNS proxied connections open and idle (each has carried one request)."""
    host, port, _, _ = target(name)
    socks = []
    try:
        for _ in range(IDLE_CONNS):
            s = socket.create_connection((host, port), timeout=5)
            s.sendall(b"GET / HTTP/1.1\r\nHost: b\r\n\r\n")
            socks.append(s)
        for s in socks:
            s.recv(4096)
        time.sleep(1)
        return rss_mib(pids_of(name))
    finally:
        for s in socks:
            s.close()
        time.sleep(1)


def cli_median_ms():
    """Median wall time of `azlb endpoint add` on a state of 1,000 endpoints."""
    state = f"{work}/cli.toml"
    lines = ["schema_version = 1", "", "[[cloud_service]]", 'name = "big"', 'vip = "127.0.0.9"',
             'subnet = "10.0.0.0/16"']
    for v in range(100):
        lines += ["", "[[vm]]", f'name = "vm{v}"', 'cloud_service = "big"', f'private_ip = "10.0.{v // 250}.{4 + v % 250}"']
        for e in range(10):
            lines += ["  [[vm.endpoint]]", f'  name = "e{e}"', '  protocol = "tcp"',
                      f"  public_port = {1000 + v * 10 + e}", "  private_port = 80"]
    with open(state, "w") as f:
        f.write("\n".join(lines) + "\n")
    return statistics.median(run_ms([AZLB, "--state", state, "-q", "endpoint", "add", "vm0", "--name", f"new{i}",
                                     "--protocol", "tcp", "--public-port", str(30000 + i), "--private-port", "80"],
                                    limit_s=30) for i in range(21))


def machine():
    cpu = re.search(r"model name\s+: (.*)", open("/proc/cpuinfo").read())
    return f"{os.cpu_count()} cores ({cpu.group(1) if cpu else 'unknown CPU'}), kernel {os.uname().release}"


def alternating(names, rounds=2):
    """Rounds in alternating order, so that no one always runs first or last."""
    for rnd in range(rounds):
        for n in (names if rnd % 2 == 0 else list(reversed(names))):
            yield rnd, n


def nat_pairs(res, notes):
    """The NAT row against direct, in pairs a few seconds apart: on this
    shared machine the same row moves 20-30% between minutes, which a ratio
    of two figures taken minutes apart would carry whole. NAT_ROUNDS pairs,
    each in the other order from the last; the medians, and the median of
    the pairs' ratios."""
    ratios = {"keepalive": [], "newconn": []}
    runs = {n: {"keepalive": [], "newconn": []} for n in ("direct", "nat")}
    for rnd in range(NAT_ROUNDS):
        for key, close in (("keepalive", False), ("newconn", True)):
            got = {}
            for n in (("direct", "nat") if rnd % 2 == 0 else ("nat", "direct")):
                host, port, _, _ = target(n)
                got[n], err = wrk(host, port, close)
                runs[n][key].append(got[n])
                if err.strip():
                    notes.append(f"{n} {key} pair {rnd + 1}: {err.strip()}")
            ratios[key].append(got["nat"] / got["direct"])
        print(f"nat pair {rnd + 1}: {runs}", file=sys.stderr)
    for key in ratios:
        res["nat"][key] = statistics.median(runs["nat"][key])
        res["nat"]["direct_" + key] = statistics.median(runs["direct"][key])
        res["nat"]["ratio_" + key] = statistics.median(ratios[key])


def kernel_calls(res, peers):
    """System calls and io_uring submissions per request of each balancer's
    own processes (perf stat), in a run of their own for each."""
    for _, n in alternating(["azlb", *peers], rounds=1):
        pids = pids_of(n)[1:] if n == "nginx" else pids_of(n)  # nginx's master forwards nothing
        _, port, _, _ = target(n)
        for key, close in (("keepalive", False), ("newconn", True)):
            res[n][key + "_calls"] = balancer_calls.count(pids, f"http://127.0.0.1:{port}/", close)
        print(f"kernel calls {n}: {res[n]['keepalive_calls']} {res[n]['newconn_calls']}", file=sys.stderr)


def two_workers(res, notes):
    """The rows of TWO, alternating, best of two rounds, with how much of
    the workers' CPU the busiest worker took in the run kept."""
    for rnd, n in alternating(TWO):
        res.setdefault(n, {})
        host, port, _, _ = target(n)
        for key, close in (("keepalive", False), ("newconn", True)):
            before = worker_ticks(n)
            rps, err = wrk(host, port, close)
            if rps > res[n].get(key, 0):
                res[n][key] = rps
                res[n][key + "_busiest"] = mc.busiest_share(before, worker_ticks(n))
            if err.strip():
                notes.append(f"{n} {key} round {rnd + 1}: {err.strip()}")
        print(f"two workers round {rnd + 1} {n}: {res[n]}", file=sys.stderr)


def features(res, notes):
    """Keep-alive and new connections through the three azlb engines,
    alternating, FEATURE_ROUNDS rounds each; the median of each."""
    runs = {n: {"keepalive": [], "newconn": [], "keepalive_cpu": []} for n in FEATURES}
    for rnd, n in alternating(FEATURES, rounds=FEATURE_ROUNDS):
        host, port, _, _ = target(n)
        for key, close in (("keepalive", False), ("newconn", True)):
            pids = pids_of(n)
            used, started = cpu_seconds(pids), time.monotonic()
            rps, err = wrk(host, port, close)
            runs[n][key].append(rps)
            if key == "keepalive":
                runs[n]["keepalive_cpu"].append((cpu_seconds(pids) - used) / (rps * (time.monotonic() - started)) * 1e6)
            if err.strip():
                notes.append(f"{n} {key} round {rnd + 1}: {err.strip()}")
        print(f"features round {rnd + 1} {n}: {runs[n]}", file=sys.stderr)
    for n in FEATURES:
        res.setdefault(n, {})
        for key, vals in runs[n].items():
            res[n]["f_" + key] = statistics.median(vals)
    res["azlb-log"]["log_lines"] = sum(1 for _ in open(f"{work}/access.log"))


def main():
    names = ["direct", "azlb", "haproxy", "nginx"] + (["nat"] if NAT else []) + (["before"] if BASELINE else [])
    peers = ["haproxy", "nginx"]
    res = {n: {} for n in names}
    notes = []
    try:
        backends()
        balancers()
        if not ONLY_FEATURES:
            balancers(threads=2)
        nat_balancer()
        feature_balancers()
        if ONLY_FEATURES:
            features(res, notes)
            return
        for rnd, n in alternating([n for n in names if n != "nat"]):
            host, port, _, _ = target(n)
            pids = pids_of(n) if n != "direct" else []
            for key, close in (("keepalive", False), ("newconn", True)):
                used, started, machine_before = cpu_seconds(pids), time.monotonic(), mc.snapshot()
                rps, err = wrk(host, port, close)
                took = time.monotonic() - started
                if pids:  # the balancer's own CPU time per request, kernel included
                    us = (cpu_seconds(pids) - used) / (rps * took) * 1e6
                    res[n][key + "_cpu"] = min(res[n].get(key + "_cpu", us), us)
                if rps > res[n].get(key, 0):  # what the machine did in the run whose figure is kept
                    res[n][key + "_machine"] = mc.per_request(machine_before, mc.snapshot(), rps * took)
                res[n][key] = max(res[n].get(key, 0), rps)
                if err.strip():
                    notes.append(f"{n} {key} round {rnd + 1}: {err.strip()}")
            print(f"round {rnd + 1} {n}: {res[n]}", file=sys.stderr)
        if NAT:
            nat_pairs(res, notes)
        for _, n in alternating(names):
            _, _, bhost, bport = target(n)
            res[n]["bulk"] = max(res[n].get("bulk", 0), iperf(bhost, bport))
        rate = 0.5 * min(res[n]["keepalive"] for n in ("azlb", *peers))
        if BASELINE:
            res["before"]["rss"] = idle_memory("before")
        # A tail varies between runs more than between balancers here: the
        # median of three alternating runs, not the luckiest.
        runs = {n: [] for n in names}
        for rnd, n in alternating(names, rounds=3):
            host, port, _, _ = target(n)
            p50, p99, lost = latency(host, port, rate)
            runs[n].append((p50, p99))
            if lost:
                notes.append(f"{n} latency round {rnd + 1}: {lost} requests unanswered")
        for n in names:
            res[n]["p50"] = statistics.median(r[0] for r in runs[n])
            res[n]["p99"] = statistics.median(r[1] for r in runs[n])
        for n in ("azlb", *peers):
            res[n]["rss"] = idle_memory(n)
        res["azlb"]["cli"] = cli_median_ms()
        two_workers(res, notes)
        if NAT and balancer_calls.available():  # perf's tracepoints need root
            kernel_calls(res, peers)
        features(res, notes)
    finally:
        stop_all()
        shutil.rmtree(work, ignore_errors=True)
        if ONLY_FEATURES and "f_keepalive" in res.get("azlb", {}):
            print(report_features(res))
    if not ONLY_FEATURES:
        report(res, peers, rate, notes)


def report_nat(res, peers):
    """The kernel's NAT against a direct connection (its limit) and the best proxy."""
    out = ["| figure | direct (limit) | azlb NAT | NAT / direct | goal | best proxy | NAT / best proxy | goal |",
           "|---|---|---|---|---|---|---|---|"]
    for label, key, fmt, higher, goal in (("keep-alive requests/s", "keepalive", "{:,.0f}", True, 0.85),
                                          ("new connections/s", "newconn", "{:,.0f}", True, 0.7),
                                          ("bulk throughput (Gbit/s)", "bulk", "{:.1f}", True, 0.85),
                                          ("latency p50 (µs)", "p50", "{:,.0f}", False, None),
                                          ("latency p99 (µs)", "p99", "{:,.0f}", False, None)):
        # Requests: the paired runs' medians, and the median of their ratios.
        d, n = res["nat"].get("direct_" + key, res["direct"].get(key)), res["nat"].get(key)
        proxies = [res[p].get(key) for p in ("azlb", *peers) if res[p].get(key)]
        best = max(proxies) if higher else min(proxies)
        vs_direct = res["nat"].get("ratio_" + key, n / d if higher else d / n)
        vs_proxy = n / best if higher else best / n
        mark = lambda r, g: "" if g is None else (" ✓" if r >= g else " ✗")
        out.append(f"| {label} | {fmt.format(d)} | {fmt.format(n)} | {vs_direct:.2f}{mark(vs_direct, goal)} | "
                   f"{'' if goal is None else '≥ ' + str(goal)} | {fmt.format(best)} | {vs_proxy:.2f}"
                   f"{mark(vs_proxy, 2.0 if higher else None)} | {'≥ 2' if higher else ''} |")
    return ("\n".join(out) + "\n\nThe same backends (nginx, iperf3) on addresses of the NAT row's own; "
            "the kernel does the NAT's work in the softirqs of the client's and the backends' own processes, so it "
            f"has no CPU row of its own. Requests: {NAT_ROUNDS} pairs of a direct and a NAT run, seconds apart, "
            "in alternating order; the medians, and the median of the pairs' ratios (NAT / direct). Bulk and latency "
            "as in the table above. The best proxy: of the table above (best of two rounds).\n")


def report_machine(res, peers):
    """Where a request's time went, per row: the balancer's CPU, and what the
    whole machine did around it (machine_counters.py), in the run whose
    figure the first table keeps."""
    cols = ["direct", "azlb", *peers]
    head = "| per request | " + " | ".join("direct" if c == "direct" else NAMES.get(c, c) for c in cols) + " |"
    out = []
    text = []
    for title, key in (("keep-alive", "keepalive"), ("new connection", "newconn")):
        m = {c: res[c].get(key + "_machine") for c in cols}
        if not all(m.values()):
            continue
        out += [f"**{title}**", "", head, "|---" * (len(cols) + 1) + "|"]
        cell = lambda c, v, fmt: "-" if v is None else fmt.format(v)
        for label, get, fmt in (("requests/s", lambda c: res[c][key], "{:,.0f}"),
                                ("balancer CPU (µs)", lambda c: res[c].get(key + "_cpu"), "{:.1f}"),
                                ("CPUs idle (%)", lambda c: m[c]["idle"], "{:.1f}"),
                                ("context switches (machine)", lambda c: m[c]["switches"], "{:.2f}"),
                                ("wake-up interrupts (machine)", lambda c: m[c]["ipis"], "{:.3f}"),
                                ("TCP segments sent (machine)", lambda c: m[c]["segments"], "{:.1f}")):
            out.append(f"| {label} | " + " | ".join(cell(c, get(c), fmt) for c in cols) + " |")
        if all(res[c].get(key + "_calls") for c in cols[1:]):
            for label, field in (("system calls (balancer) *", "syscalls"),
                                 ("io_uring submissions (balancer) *", "ring"),
                                 ("context switches (balancer) *", "switches")):
                vals = [None] + [res[c][key + "_calls"][field] for c in cols[1:]]
                out.append(f"| {label} | " + " | ".join(cell(c, v, "{:.2f}") for c, v in zip(cols, vals)) + " |")
        out.append("")
        peer = max(peers, key=lambda p: res[p][key])
        a, b = m["azlb"], m[peer]
        cpu_ratio = res["azlb"][key + "_cpu"] / res[peer][key + "_cpu"]
        served = res["azlb"][key] / res[peer][key]
        line = (f"{title.capitalize()}: azlb took {cpu_ratio:.2f} of {NAMES[peer]}'s CPU per request "
                f"({res['azlb'][key + '_cpu']:.1f} against {res[peer][key + '_cpu']:.1f} µs) and served "
                f"{served:.2f} as many; the CPUs stood idle {a['idle']:.0f}% of the run with azlb and "
                f"{b['idle']:.0f}% with {NAMES[peer]}, with {a['switches']:.2f} against {b['switches']:.2f} "
                f"context switches and {a['ipis']:.3f} against {b['ipis']:.3f} wake-up interrupts per request")
        ca, cb = res["azlb"].get(key + "_calls"), res[peer].get(key + "_calls")
        if ca and cb:
            line += (f"; azlb's own processes made {ca['syscalls']:.1f} system calls and {ca['ring']:.1f} "
                     f"io_uring submissions per request, {NAMES[peer]}'s {cb['syscalls']:.1f} system calls")
        if a["idle"] > b["idle"] + 2:
            busy = res["azlb"][key] * (1 - b["idle"] / 100) / (1 - a["idle"] / 100)
            line += (f". The time azlb saved went partly into waiting: wrk, the balancer and the backend "
                     f"share the CPUs, and each sleep of one is a wake-up another pays for. Had the CPUs been "
                     f"as busy as with {NAMES[peer]}, the same CPU per request would have served "
                     f"{busy:,.0f} requests/s ({busy / res[peer][key]:.2f} of {NAMES[peer]}).")
        else:
            line += "."
        text.append(line)
    if res["azlb"].get("newconn_calls"):
        text.append("\\* counted by `perf stat` on the balancer's own processes, in a run of "
                    "wrk -t1 -c64 of its own after the others (`bench/balancer_calls.py`); a new "
                    "connection's system calls include azlb's `io_uring_enter`, one for a batch.")
    if "newconn_machine" in res["azlb"]:
        segs = ", ".join(f"{'direct' if c == 'direct' else NAMES.get(c, c)} {res[c]['newconn_machine']['segments']:.1f}"
                         for c in cols)
        text.append(f"TCP segments per new connection, both sides' together: {segs}.")
    return "\n".join(out) + "\n" + "\n\n".join(text) + "\n"


def report_two(res):
    """The rows of TWO: requests against the best peer, and the spread."""
    if not all(res.get(n, {}).get("newconn") for n in TWO):
        return ""
    out = ["| figure | azlb | HAProxy | nginx | azlb / best peer |", "|---|---|---|---|---|"]
    for label, key in (("keep-alive requests/s", "keepalive"), ("new connections/s", "newconn")):
        best = max(res[n][key] for n in TWO[1:])
        out.append(f"| {label} | " + " | ".join(f"{res[n][key]:,.0f}" for n in TWO) + f" | {res[TWO[0]][key] / best:.2f} |")
    for label, key in (("busiest worker's share of the workers' CPU, keep-alive", "keepalive_busiest"),
                       ("busiest worker's share of the workers' CPU, new connections", "newconn_busiest")):
        vals = [res[n].get(key) for n in TWO]
        out.append(f"| {label} | " + " | ".join("-" if v is None else f"{v:.2f}" for v in vals) + " | |")
    return ("\n".join(out) + "\n\nThe same job with two workers each (azlb --threads 2, HAProxy nbthread 2, nginx "
            "worker_processes 2), wrk -t1 -c64 for {} s, best of two alternating rounds. An even spread of the "
            "work over two workers is a share of 0.50 (azlb's workers: the threads named azlb-worker*; HAProxy's "
            "threads; nginx's worker processes).\n".format(DURATION))


def report_features(res):
    base = res["azlb"]
    out = ["| figure | azlb | + PROXY v2 | ratio | + access log | ratio | goal |", "|---|---|---|---|---|---|---|"]
    for label, key, fmt, higher in (("keep-alive requests/s", "f_keepalive", "{:,.0f}", True),
                                    ("new connections/s", "f_newconn", "{:,.0f}", True),
                                    ("CPU per keep-alive request (µs)", "f_keepalive_cpu", "{:.1f}", False)):
        b, pp, lg = base[key], res["azlb-pp"][key], res["azlb-log"][key]
        ratio = (lambda v: v / b) if higher else (lambda v: b / v)
        goal = "≥ 0.95" if key == "f_keepalive" else ""
        out.append(f"| {label} | {fmt.format(b)} | {fmt.format(pp)} | {ratio(pp):.2f} | {fmt.format(lg)} | "
                   f"{ratio(lg):.2f} | {goal} |")
    return ("\n".join(out) + f"\n\nThe same build three times, each its own engine with {THREADS} worker, "
            f"alternating, median of {FEATURE_ROUNDS} rounds of wrk -t1 -c64 for {DURATION} s; the access log wrote "
            f"{res['azlb-log']['log_lines']:,} lines. Ratios: more is better for the feature.\n")


def report(res, peers, rate, notes):
    rows = [
        ("keep-alive requests/s", "keepalive", "{:,.0f}", True, 1.25),
        ("new connections/s", "newconn", "{:,.0f}", True, 1.25),
        ("bulk throughput (Gbit/s)", "bulk", "{:.1f}", True, 1.5),
        ("balancer CPU per keep-alive request (µs)", "keepalive_cpu", "{:.1f}", False, None),
        ("balancer CPU per new connection (µs)", "newconn_cpu", "{:.1f}", False, None),
        (f"latency p50 at {rate:,.0f} req/s (µs)", "p50", "{:,.0f}", False, None),
        (f"latency p99 at {rate:,.0f} req/s (µs)", "p99", "{:,.0f}", False, 1.0),
        (f"RSS with {IDLE_CONNS:,} idle connections (MiB)", "rss", "{:.1f}", False, 2.0),
    ]
    ab = "before" in res and res["before"]
    out = ["| figure | direct (limit) | azlb | HAProxy | nginx | azlb / best peer | goal |" +
           (" azlb before | azlb / before |" if ab else ""), "|---|---|---|---|---|---|---|" + ("---|---|" if ab else "")]
    chart = []
    for label, key, fmt, higher, goal in rows:
        vals = {n: res[n].get(key) for n in ("direct", "azlb", *peers)}
        best = max(vals[p] for p in peers) if higher else min(vals[p] for p in peers)
        if key == "rss":
            best = vals["haproxy"]  # the goal names HAProxy
        ratio = vals["azlb"] / best if higher else best / vals["azlb"]
        cell = lambda v: "-" if v is None else fmt.format(v)
        goal_text = "" if goal is None else (f"≥ {goal}" if key != "rss" else "≤ ½ HAProxy")
        met = "" if goal is None else (" ✓" if ratio >= goal else " ✗")
        line = (f"| {label} | {cell(vals['direct'])} | {cell(vals['azlb'])} | {cell(vals['haproxy'])} | "
                f"{cell(vals['nginx'])} | {ratio:.2f}{met} | {goal_text} |")
        if ab:
            b = res["before"].get(key)
            line += f" {cell(b)} | {(vals['azlb'] / b if higher else b / vals['azlb']):.2f} |" if b else " - | - |"
        out.append(line)
        chart.append((label, ratio, goal))
    cli = res["azlb"]["cli"]
    out.append(f"| `azlb endpoint add` at 1,000 endpoints (ms, median of 21) | | {cli:.1f} | | | | < 10{' ✓' if cli < 10 else ' ✗'} |")
    text = "\n".join(out)
    if ab:
        text += f"\n\nazlb before: {BASELINE}, measured in the same run, alternating with the others."
    text += (f"\n\nRatios are oriented so that more is better for azlb (for latency and memory: peer / azlb). "
             f"Machine: {machine()}; each balancer with {THREADS} worker; wrk -t1 -c64 for {DURATION} s and iperf3 "
             f"for 4 s, best of two alternating rounds; latency open-loop at half the slowest balancer's keep-alive "
             f"rate over 16 connections, median of three alternating runs.\n")
    text += "\n### Where a request's time goes\n\n" + report_machine(res, peers)
    two = report_two(res)
    if two:
        text += "\n### Two workers each\n\n" + two
    if "nat" in res and res["nat"]:
        text += "\n### The NAT data plane\n\n" + report_nat(res, peers)
    text += "\n### What the optional features cost\n\n" + report_features(res)
    if notes:
        text += "\nErrors seen: " + "; ".join(notes) + "\n"
    with open(os.path.join(ROOT, "bench", "results.md"), "w") as f:
        f.write(text)
    with open(os.path.join(ROOT, "bench", "results.svg"), "w") as f:
        f.write(svg(chart))
    print(text)


NAMES = {"azlb": "azlb", "haproxy": "HAProxy", "nginx": "nginx"}


def svg(chart):
    w, row, left = 760, 34, 330
    h = 50 + row * len(chart)
    top = max(2.2, max(r for _, r, _ in chart) * 1.1)
    x = lambda v: left + (w - left - 20) * v / top
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
             f'<text x="10" y="20" font-size="14">azlb / best peer (more is better; 1.0 = as good as the best peer)</text>']
    for i, (label, ratio, goal) in enumerate(chart):
        y = 40 + i * row
        color = "#2a7" if goal is None or ratio >= goal else "#d84"
        parts.append(f'<text x="10" y="{y + 15}">{label}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{x(ratio) - left:.1f}" height="20" fill="{color}"/>')
        parts.append(f'<text x="{x(ratio) + 4:.1f}" y="{y + 15}">{ratio:.2f}</text>')
        if goal:
            parts.append(f'<line x1="{x(goal):.1f}" x2="{x(goal):.1f}" y1="{y - 2}" y2="{y + 22}" stroke="#000" stroke-dasharray="3,2"/>')
    parts.append(f'<line x1="{x(1):.1f}" x2="{x(1):.1f}" y1="32" y2="{h - 8}" stroke="#888"/>')
    parts.append("</svg>\n")
    return "\n".join(parts)


if __name__ == "__main__":
    # run.sh's time limit (or Ctrl-C) ends the run through main's cleanup,
    # so no balancer or backend outlives it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("bench: out of time"))
    main()
