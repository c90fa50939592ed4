"""Where a request's time goes, per balancer: with bench/run.py's backends
and balancers (same configs, one worker each), wrk loads one balancer at a
time while `perf stat` counts, on that balancer's processes only, the system
calls, io_uring submissions, context switches and CPU time; then `perf
record` splits azlb's own CPU between the kernel, azlb and its libraries.
Needs root (tracepoints) and perf. Prints a Markdown table per mode.

  python3 bench/per_request.py        # about a minute and a half
"""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import balancer_calls as calls  # noqa: E402
import run as R  # noqa: E402  (bench/run.py: backends, balancers, their ports)

WINDOW = 4  # seconds counted, inside a wrk run of WINDOW + 2


def pids(name):
    if name == "nginx":  # the balancer's workers, not the backends' (its master runs nginx-lb.conf)
        return R.pids_of("nginx")[1:]
    return R.pids_of(name)


def measure(name, close):
    _, port, _, _ = R.target(name)
    return calls.count(pids(name), f"http://127.0.0.1:{port}/", close, WINDOW)


def split_of_azlb(close):
    """Shares of azlb's CPU samples: the kernel, azlb itself, and its libraries."""
    _, port, _, _ = R.target("azlb")
    cmd = ["wrk", "-t1", "-c64", f"-d{WINDOW + 2}s", f"http://127.0.0.1:{port}/"]
    if close:
        cmd[1:1] = ["-H", "Connection: close"]
    load = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    time.sleep(1)
    data = os.path.join(R.work, "perf.data")
    subprocess.run(["perf", "record", "-o", data, "-p", ",".join(map(str, pids("azlb"))), "--", "sleep",
                    str(WINDOW)], capture_output=True)
    load.wait(timeout=60)
    rep = subprocess.run(["perf", "report", "-i", data, "--sort", "dso", "--stdio"], capture_output=True,
                         text=True).stdout
    shares = {}
    for line in rep.splitlines():
        m = re.match(r"\s+([\d.]+)%\s+(\S+)", line)
        if m:
            shares[m.group(2)] = float(m.group(1))
    return shares


def main():
    if os.geteuid() != 0:
        sys.exit("per_request.py needs root: perf counts kernel tracepoints")
    try:
        R.backends()
        R.balancers()
        for close, title in ((False, "keep-alive"), (True, "new connection per request")):
            rows = {name: measure(name, close) for name in ("azlb", "haproxy", "nginx")}
            print(f"\n{title}: wrk -t1 -c64, {WINDOW} s counted, per request\n")
            print("| balancer | requests/s | system calls | io_uring submissions | context switches | CPU (µs) |")
            print("|---|---|---|---|---|---|")
            for name, r in rows.items():
                print(f"| {name} | {r['rps']:,.0f} | {r['syscalls']:.2f} | {r['ring']:.2f} | {r['switches']:.2f} | "
                      f"{r['cpu_us']:.1f} |")
            shares = split_of_azlb(close)
            print("\nazlb's CPU samples: " + ", ".join(f"{k} {v:.1f}%" for k, v in sorted(
                shares.items(), key=lambda kv: -kv[1])[:4]))
    finally:
        R.stop_all()


if __name__ == "__main__":
    main()
