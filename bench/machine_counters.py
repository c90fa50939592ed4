"""What the machine did around one load run, from /proc: how long its CPUs
stood idle, how often a task was switched out, how many interrupts went
from one CPU to another to wake a task (rescheduling and function-call
IPIs), and how many TCP segments were sent. Per request, these say where a
request's time went besides the balancer's own CPU."""
import os


def snapshot():
    s = {}
    with open("/proc/stat") as f:
        for line in f:
            p = line.split()
            if p[0] == "cpu":
                v = [int(x) for x in p[1:]]
                s["idle"], s["all"] = v[3] + v[4], sum(v)  # idle and iowait: nothing ran
            elif p[0] == "ctxt":
                s["switches"] = int(p[1])
    ncpu = os.cpu_count() or 1
    with open("/proc/interrupts") as f:
        for line in f:
            p = line.split()
            if p and p[0] in ("RES:", "CAL:"):
                s["ipis"] = s.get("ipis", 0) + sum(int(x) for x in p[1:1 + ncpu] if x.isdigit())
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Tcp:")]
    s["segments"] = int(rows[1][rows[0].index("OutSegs")])
    return s


def per_request(before, after, requests):
    """The differences, per request; idle as a share of all CPU time (%)."""
    d = {k: after.get(k, 0) - before.get(k, 0) for k in before}
    out = {"idle": 100.0 * d["idle"] / d["all"] if d["all"] else 0.0}
    for k in ("switches", "ipis", "segments"):
        out[k] = d.get(k, 0) / requests if requests else 0.0
    return out


def ticks(stat_path):
    """User plus system CPU ticks of a process or thread (/proc/.../stat)."""
    with open(stat_path) as f:
        fields = f.read().rsplit(")", 1)[1].split()  # the name may hold spaces and parentheses
    return int(fields[11]) + int(fields[12])


def thread_ticks(pids, prefix=None):
    """CPU ticks so far of each thread of the processes (only those whose
    name starts with prefix, if given): {(pid, tid): ticks}."""
    out = {}
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    comm = f.read().strip()
                used = ticks(f"/proc/{pid}/task/{tid}/stat")
            except OSError:
                continue
            if prefix is None or comm.startswith(prefix):
                out[(pid, tid)] = used
    return out


def busiest_share(before, after):
    """The busiest worker's share of the CPU its group of workers used
    between the snapshots (threads or processes seen in both): 1/n is an
    even spread over n workers, 1.0 all of it on one."""
    used = [after[k] - before[k] for k in after if k in before]
    total = sum(used)
    if len(used) < 2 or total <= 0:
        return None
    return max(used) / total
