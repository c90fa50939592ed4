"""Run inside a network namespace of its own (by test_engine_nat): the NAT
plane over IPv6, with a VIP, two members and a client on addresses of the
namespace's loopback. Prints one JSON object: what the client saw and what
the engine said."""
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

import admin_socket  # beside this script, so on sys.path

AZLB = sys.argv[1]
PREFIX = "fd00:a21b::"
VIP, CLIENT = PREFIX + "1", PREFIX + "77"
MEMBERS = {"vm1": PREFIX + "4", "vm2": PREFIX + "5"}
PORT, BPORT = 8080, 9090

subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
for addr in [VIP, CLIENT, *MEMBERS.values()]:
    subprocess.run(["ip", "-6", "addr", "add", addr + "/128", "dev", "lo", "nodad"], check=True)


def serve(name, addr):
    s = socket.create_server((addr, BPORT), family=socket.AF_INET6)
    while True:
        c, peer = s.accept()
        c.sendall(f"{name} {peer[0]}\n".encode())
        c.close()


for name, addr in MEMBERS.items():
    threading.Thread(target=serve, args=(name, addr), daemon=True).start()

state = os.path.join(tempfile.mkdtemp(prefix="azlb-v6-"), "state.toml")
az = lambda *a: subprocess.run([AZLB, "--state", state, "-q", *a], check=True, capture_output=True, text=True)
az("service", "create", "v6", "--vip", VIP, "--subnet", PREFIX + "/64", "--dataplane", "nat")
for name, addr in MEMBERS.items():
    az("vm", "create", name, "--cloud-service", "v6", "--private-ip", addr, "--no-default-endpoints")
az("endpoint", "add", "vm1", "--name", "app", "--protocol", "tcp", "--public-port", str(PORT), "--private-port",
   str(BPORT), "--lbset", "set", "--no-probe")
az("lbset", "join", "set", "--vm", "vm2")
az("engine", "start", "--threads", "1")
try:
    seen = []
    for _ in range(40):
        with socket.socket(socket.AF_INET6) as c:
            c.settimeout(5)
            c.bind((CLIENT, 0))
            c.connect((VIP, PORT))
            seen.append(c.recv(100).decode().split())
    def engine_status():
        return admin_socket.status(state + ".engine.sock")

    # Status reads the kernel's counters at most every 200 ms, and less often
    # when a read is slow (a sanitizer build): asked until they show.
    deadline = time.monotonic() + 10
    while True:
        status = engine_status()
        if all(m.get("packets_in", 0) > 0 for m in status["members"]) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
finally:
    stop = subprocess.run([AZLB, "--state", state, "engine", "stop"], capture_output=True, text=True)
tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
print(json.dumps({"seen": seen, "status": status, "stop_rc": stop.returncode, "tables": tables}))
