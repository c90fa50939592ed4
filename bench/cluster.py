"""Direct server return against direct, and the table's rebuild for 1,000
members (bench/cluster.sh runs it). Every load is bounded in time."""
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import admin_socket  # noqa: E402
AZLB = os.path.join(ROOT, "build", "cli", "azlb")
CLUSTER = os.path.join(ROOT, "scripts", "netns-cluster.sh")
NAME = "azb"
ENV = dict(os.environ, AZLB=AZLB, AZLB_CLUSTER_NAME=NAME, AZLB_CLUSTER_DIR="/tmp/azlb-bench-cluster")
DURATION = 4
ROUNDS = 3


def machine():
    cpu = re.search(r"model name\s+: (.*)", open("/proc/cpuinfo").read())
    return f"{os.cpu_count()} cores ({cpu.group(1) if cpu else 'unknown CPU'}), kernel {os.uname().release}"


def wrk(url, close):
    cmd = ["ip", "netns", "exec", f"{NAME}-client", "wrk", "-t1", "-c32", f"-d{DURATION}s", url]
    if close:
        cmd[6:6] = ["-H", "Connection: close"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=DURATION + 30).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    # With Connection: close every response ends in a read of 0 bytes, which
    # wrk counts as a read error: only the others are worth a note.
    errors = re.search(r"Socket errors: connect (\d+), read \d+, write (\d+), timeout (\d+)", out)
    bad = errors and any(int(x) for x in errors.groups())
    return float(m.group(1)) if m else 0.0, errors.group(0) if bad else ""


def paths():
    targets = {"direct": "http://198.18.1.11:8080/", "DSR": "http://198.18.2.1:8080/"}
    res = {(t, c): [] for t in targets for c in (False, True)}
    notes = []
    for rnd in range(ROUNDS):
        order = list(targets) if rnd % 2 == 0 else list(reversed(targets))
        for close in (False, True):
            for t in order:
                rps, err = wrk(targets[t], close)
                res[(t, close)].append(rps)
                if err:
                    notes.append(f"{t} {'new connections' if close else 'keep-alive'} round {rnd + 1}: {err}")
    return res, notes


def engine_members(state):
    """The engine's members, from its admin socket."""
    return admin_socket.status(state + ".engine.sock", timeout=30)["members"]


def table_rebuild():
    """A nat service with one DSR set of 1,000 members, in a namespace of
    its own: the engine's reload after one weight changes (a new table of
    65,537 slots built and applied as an nftables map)."""
    ns = "azb-table"
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    d = tempfile.mkdtemp(prefix="azlb-bench-table-")
    state = os.path.join(d, "state.toml")
    out = ["schema_version = 2\nhash_seed = 12345\n",
           '[[cloud_service]]\nname = "big"\nvip = "198.18.4.1"\nsubnet = "198.18.8.0/21"\ndataplane = "nat"\n',
           '  [[cloud_service.lbset]]\n  name = "s"\n  protocol = "tcp"\n  public_port = 80\n'
           '  distribution = "five-tuple"\n  when_all_down = "refuse"\n  direct_server_return = true\n']
    for i in range(1000):
        out.append(f'[[vm]]\nname = "vm{i}"\ncloud_service = "big"\nprivate_ip = "198.18.{8 + (i + 4) // 256}.{(i + 4) % 256}"\n'
                   f'  [[vm.endpoint]]\n  name = "http"\n  private_port = 80\n  idle_timeout_min = 4\n  lbset = "s"\n')
    with open(state, "w") as f:
        f.write("".join(out))
    az = lambda *a: subprocess.run(["ip", "netns", "exec", ns, AZLB, "--state", state, "-q", *a], check=True,
                                   capture_output=True, text=True, timeout=120)
    try:
        t = time.perf_counter()
        az("engine", "start", "--threads", "1")
        start_s = time.perf_counter() - t
        times = []
        for w in (2, 3, 4):
            # From the change to the engine's status showing it: the state
            # read, the config and its table built, the nftables map applied
            # (the control thread answers status only after all of it).
            t = time.perf_counter()
            az("lbset", "weight", "s", "--vm", "vm7", "--weight", str(w))
            while True:
                if any(m.get("vm") == "vm7" and m.get("weight") == w for m in engine_members(state)):
                    break
                if time.perf_counter() - t > 60:
                    raise RuntimeError("the engine did not apply the weight within 60 s")
                time.sleep(0.01)
            times.append(time.perf_counter() - t)
        az("engine", "stop")
        return start_s, statistics.median(times)
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def main():
    subprocess.run([CLUSTER, "up"], check=True, env=ENV, stdout=subprocess.DEVNULL)
    try:
        res, notes = paths()
    finally:
        subprocess.run([CLUSTER, "down"], env=ENV)
    start_s, reload_s = table_rebuild()
    med = {k: statistics.median(v) for k, v in res.items()}
    lines = [
        "# Cluster benchmark",
        "",
        f"Machine: {machine()}. `bench/cluster.sh`, {ROUNDS} alternating rounds of {DURATION} s, wrk -t1 -c32 in the",
        "client's namespace of `scripts/netns-cluster.sh`; medians. *direct*: to vm1's own address through the",
        "router; *DSR*: to the VIP, through the router (ECMP over both hosts), a balancer host (policy routing",
        "by mark, the packet unchanged) and a member, which answers the client directly. The members are",
        "`azlb vm serve` (one thread each); the client, router, hosts and members share the machine's cores.",
        "",
        "| | direct | DSR | DSR / direct |",
        "|---|---|---|---|",
        f"| keep-alive requests/s | {med[('direct', False)]:,.0f} | {med[('DSR', False)]:,.0f} | "
        f"{med[('DSR', False)] / med[('direct', False)]:.2f} |",
        f"| new connections/s | {med[('direct', True)]:,.0f} | {med[('DSR', True)]:,.0f} | "
        f"{med[('DSR', True)] / med[('direct', True)]:.2f} |",
        "",
        f"A set of 1,000 members (a nat service, DSR): `engine start` took {start_s:.2f} s; from `lbset weight` to",
        "the engine's status showing it (the state read, the table of 65,537 slots built again and applied as an",
        f"nftables map) {reload_s:.2f} s (median of 3).",
    ]
    if notes:
        lines += ["", "Notes:"] + [f"- {n}" for n in notes]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(ROOT, "bench", "cluster-results.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
