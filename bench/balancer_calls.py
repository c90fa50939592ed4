"""What one balancer's processes asked of the kernel while wrk loaded it:
system calls, io_uring submissions, context switches and CPU time, counted
by `perf stat` on those processes only (root: tracepoints). Per request."""
import re
import shutil
import subprocess
import time

EVENTS = ["raw_syscalls:sys_enter", "io_uring:io_uring_submit_req", "sched:sched_switch", "task-clock"]


def available():
    if not shutil.which("perf"):
        return False
    probe = subprocess.run(["perf", "stat", "-e", EVENTS[0], "--", "true"], capture_output=True, text=True)
    return probe.returncode == 0


def count(pids, url, close, window=4):
    """wrk -t1 -c64 on url for window + 2 s; perf counts the middle window
    seconds. Returns requests/s and the counts per request."""
    cmd = ["wrk", "-t1", "-c64", f"-d{window + 2}s", url]
    if close:
        cmd[1:1] = ["-H", "Connection: close"]
    load = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1)
        stat = subprocess.run(["perf", "stat", "-x", ",", "-e", ",".join(EVENTS), "-p", ",".join(map(str, pids)),
                               "--", "sleep", str(window)], capture_output=True, text=True, timeout=window + 30).stderr
        out = load.communicate(timeout=window + 30)[0]
    finally:
        if load.poll() is None:
            load.kill()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    counts = {}
    for line in stat.splitlines():
        f = line.split(",")
        if len(f) > 2 and f[2] in EVENTS and f[0] not in ("<not counted>", "<not supported>"):
            counts[f[2]] = float(f[0])
    n = rps * window
    return {"rps": rps, "syscalls": counts.get(EVENTS[0], 0) / n, "ring": counts.get(EVENTS[1], 0) / n,
            "switches": counts.get(EVENTS[2], 0) / n, "cpu_us": counts.get(EVENTS[3], 0) * 1000 / n}
