#!/usr/bin/env python3
"""A state in etcd beside the same state in a file (issue 19's goals):
- load of a 50,000-VM state (ten services of 5,000 VMs, 8 MB of TOML): the
  median wall time of `azlb vm show` (a whole load and a tiny answer), goal < 2 s;
- `azlb endpoint add` on a state of 1,000 endpoints, goal < 20 ms: typed on a
  host with no engine (the command loads libcurl and reaches etcd itself), and
  on a host whose engine follows the state (the command's requests go through
  the engine's relay, store/etcd_relay.hpp).
Starts a 3-member etcd cluster (Debian's etcd-server) on loopback ports of its
own and removes it after. Usage: bench/etcd_state.py [path/to/azlb]"""
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from etcd_cluster import EtcdCluster  # noqa: E402
from state_load import state_text  # noqa: E402
from timing import run_ms  # noqa: E402

AZLB = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "cli", "azlb")


def endpoints_state(path):
    """100 VMs of 10 endpoints each, as bench/run.py's CLI figure has them."""
    lines = ["schema_version = 2", "", "[[cloud_service]]", 'name = "big"', 'vip = "127.0.0.9"',
             'subnet = "10.0.0.0/16"']
    for v in range(100):
        lines += ["", "[[vm]]", f'name = "vm{v}"', 'cloud_service = "big"', f'private_ip = "10.0.{v // 250}.{4 + v % 250}"',
                  'os = "linux"', 'image = "x"', 'created_by = "quick"']
        for e in range(10):
            lines += ["", "  [[vm.endpoint]]", f'  name = "e{e}"', '  protocol = "tcp"',
                      f"  public_port = {1000 + v * 10 + e}", "  private_port = 80", "  idle_timeout_min = 4"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def median_ms(cmd, env, runs, vary=None):
    return statistics.median(run_ms(vary(i) if vary else cmd, env) for i in range(runs))


def main():
    work = tempfile.mkdtemp(prefix="azlb-etcd-bench-")
    cluster = EtcdCluster(3, extra=["--quota-backend-bytes", str(4 << 30)])
    try:
        big = os.path.join(work, "big.toml")
        with open(big, "w") as f:
            f.write(state_text(50000))
        small = os.path.join(work, "small.toml")
        endpoints_state(small)
        os.sync()  # the 17 MB just written must not be in writeback while the fsyncs below are timed
        print(f"azlb: {AZLB}; etcd: 3 members on loopback; {os.cpu_count()} cores")
        print("| measure | file | etcd | goal (etcd) |")
        print("|---|---|---|---|")
        # `endpoint add` first, on a quiet cluster: after the 50,000-VM loads
        # (12 MB of JSON each) etcd's members spend seconds collecting garbage
        # on the same two cores, which is not what the figure is about.
        url = cluster.url("/bench/small")
        env = dict(os.environ, AZLB_STATE=url)
        subprocess.run([AZLB, "-q", "state", "import", small], check=True, env=env)
        add = lambda state: (lambda i: [AZLB, "--state", state, "-q", "endpoint", "add", "vm0", "--name", f"n{i}",
                                        "--protocol", "tcp", "--public-port", str(30000 + i), "--private-port", "80"])
        f_ms = median_ms(None, os.environ, 21, add(small))
        e_ms = median_ms(None, env, 21, lambda i: add(url)(i + 100))
        print(f"| `endpoint add` at 1,000 endpoints, no engine on the host (ms, median of 21) | {f_ms:.1f} | "
              f"{e_ms:.1f} | < 20{' ✓' if e_ms < 20 else ' ✗'} |", flush=True)
        # The same with this host's engine following the state: its 1,000
        # listeners on 127.0.0.9 (the state's VIP), its files in a folder of
        # the benchmark's own.
        env = dict(env, AZLB_RUN_DIR=os.path.join(work, "run"))
        subprocess.run([AZLB, "-q", "engine", "start"], check=True, env=env)
        try:
            r_ms = median_ms(None, env, 21, lambda i: add(url)(i + 200))
            s_ms = median_ms([AZLB, "-q", "vm", "show", "vm1"], env, 21)
        finally:
            subprocess.run([AZLB, "-q", "engine", "stop"], env=env)
        print(f"| `endpoint add` at 1,000 endpoints, this host's engine running (ms, median of 21) | | "
              f"{r_ms:.1f} | < 20{' ✓' if r_ms < 20 else ' ✗'} |", flush=True)
        print(f"| `vm show` at 1,000 endpoints, this host's engine running (ms, median of 21) | | {s_ms:.1f} | |",
              flush=True)
        name = "load of 50,000 VMs (`vm show`, ms, median of 5)"
        url = cluster.url("/bench/big")
        env = dict(os.environ, AZLB_STATE=url)
        imported = run_ms([AZLB, "-q", "state", "import", big], env, limit_s=600)
        f_ms = median_ms([AZLB, "--state", big, "-q", "vm", "show", "vm0-0"], os.environ, 5)
        e_ms = median_ms([AZLB, "-q", "vm", "show", "vm0-0"], env, 5)
        print(f"| {name} | {f_ms:,.0f} | {e_ms:,.0f} | < 2,000{' ✓' if e_ms < 2000 else ' ✗'} |", flush=True)
        print(f"| import of 50,000 VMs into etcd (ms, once) | | {imported:,.0f} | |", flush=True)
    finally:
        cluster.stop()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
