"""How long one command takes, measured without the error of a polling wait.

subprocess.run(..., timeout=T) waits by polling (waitpid with WNOHANG, then
sleeps of 0.5 ms doubling up to 50 ms): a command of 40 ms was reported as
63 ms, and one of 10 ms as 15.5. Here the wait blocks in waitpid, and a timer
kills the command if it outlives its limit, so the bound stays."""
import subprocess
import threading
import time


def run_ms(args, env=None, limit_s=300):
    """Runs `args` (stdout discarded); its wall time in ms. Raises on failure or after limit_s."""
    t = time.perf_counter()
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, env=env)
    timer = threading.Timer(limit_s, p.kill)
    timer.start()
    try:
        rc = p.wait()
    finally:
        timer.cancel()
    ms = (time.perf_counter() - t) * 1000
    if rc != 0:
        raise RuntimeError(f"{args[0]} exited {rc} after {ms:.0f} ms: {' '.join(args[1:])}")
    return ms
