#!/usr/bin/env python3
"""How long azlb takes to load a large state file: 5,000 to 50,000 VMs in ten
cloud services, each VM with an endpoint of its own and one in its service's
load-balanced set (5,000 members each at the top), in schema 2 as azlb writes it. Prints the median wall
time of `azlb vm show` (a load and a tiny answer) over 5 runs per size, and
the milliseconds per 1,000 VMs, which stay flat when loading is linear.
Usage: bench/state_load.py [path/to/azlb]"""
import os
import statistics
import subprocess
import sys
import tempfile

from timing import run_ms

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AZLB = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "cli", "azlb")
SERVICES = 10


def state_text(vms):
    per = vms // SERVICES
    out = ["schema_version = 2"]
    for s in range(SERVICES):
        out += ["", "[[cloud_service]]", f'name = "svc{s}"', f'vip = "127.0.{s}.1"', f'subnet = "10.{s}.0.0/16"',
                "", "  [[cloud_service.lbset]]", '  name = "web"', '  protocol = "tcp"', "  public_port = 80",
                '  distribution = "five-tuple"', '  when_all_down = "refuse"',
                '  probe = { protocol = "tcp", port = 8080, interval_s = 15, timeout_s = 31 }']
    for s in range(SERVICES):
        for i in range(per):
            out += ["", "[[vm]]", f'name = "vm{s}-{i}"', f'cloud_service = "svc{s}"',
                    f'private_ip = "10.{s}.{4 + i // 250}.{4 + i % 250}"', 'os = "linux"', 'image = "Ubuntu"',
                    'created_by = "gallery"',
                    "", "  [[vm.endpoint]]", '  name = "SSH"', '  protocol = "tcp"', f"  public_port = {10000 + i}",
                    "  private_port = 22", "  idle_timeout_min = 4",
                    "", "  [[vm.endpoint]]", '  name = "http"', "  private_port = 8080", "  idle_timeout_min = 4",
                    '  lbset = "web"']
    return "\n".join(out) + "\n"


def main():
    work = tempfile.mkdtemp(prefix="azlb-load-")
    print(f"azlb: {AZLB}")
    print("| VMs | state file (MB) | load, median of 5 (ms) | ms per 1,000 VMs |")
    print("|---|---|---|---|")
    try:
        for vms in (5000, 20000, 40000, 50000):
            path = os.path.join(work, f"state{vms}.toml")
            with open(path, "w") as f:
                f.write(state_text(vms))
            ms = statistics.median(run_ms([AZLB, "--state", path, "-q", "vm", "show", "vm0-0"], limit_s=120)
                                   for _ in range(5))
            print(f"| {vms:,} | {os.path.getsize(path) / 1e6:.1f} | {ms:,.0f} | {ms / vms * 1000:.1f} |", flush=True)
    finally:
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
