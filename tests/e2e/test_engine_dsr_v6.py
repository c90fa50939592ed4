"""Direct server return over IPv6, as root, in network namespaces the test
makes: a client, a balancer host running the engine, and two members on a
bridge behind it that own the VIP and answer the client themselves. The
client's packets reach a member unchanged; the member sees the client's own
address; a flow's pin (the pins table, IPv6 keys) keeps it on its member when
the consistent-hash table changes under it."""
import os
import random
import shutil
import signal
import subprocess
import sys
import unittest

from backends import wait_until
from engine_case import EngineCase
from harness import AZLB
from netns_cluster import greeted, in_ns

PREFIX = f"fd00:{random.randint(0x100, 0xfff):x}"
CLIENT, HOST_C = f"{PREFIX}:5::2", f"{PREFIX}:5::1"
HOST_M, VIP = f"{PREFIX}:6::1", f"{PREFIX}:7::1"
MEMBERS = {"m1": f"{PREFIX}:6::11", "m2": f"{PREFIX}:6::12"}
PORT = 8080

# A member's server: its name and the client's address, then an echo of each line.
SERVER = """
import socket, sys, threading
s = socket.create_server((sys.argv[1], int(sys.argv[2])), family=socket.AF_INET6)
def serve(c, peer):
    c.sendall(f"{sys.argv[3]} {peer[0]}\\n".encode())
    while data := c.recv(4096):
        c.sendall(data)
    c.close()
while True:
    c, peer = s.accept()
    threading.Thread(target=serve, args=(c, peer), daemon=True).start()
"""


def ready():
    return os.geteuid() == 0 and shutil.which("ip") is not None and shutil.which("nft") is not None


@unittest.skipUnless(ready(), "needs root, ip and nft (CI runs as root)")
class DirectServerReturnV6(EngineCase):
    def setUp(self):
        super().setUp()
        tag = f"{os.getpid() % 10000}x{random.randint(0, 999)}"
        self.ns = {name: f"azlb6{name}{tag}" for name in ("c", "h", *MEMBERS)}
        for ns in self.ns.values():
            subprocess.run(["ip", "netns", "add", ns], check=True)
            self.addCleanup(self.remove_namespace, ns)
            self.ip(ns, "link", "set", "lo", "up")
        h = self.ns["h"]
        self.sh(h, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
        # client <-> host
        self.ip(h, "link", "add", "hc", "type", "veth", "peer", "name", "c0", "netns", self.ns["c"])
        self.ip(h, "addr", "add", f"{HOST_C}/64", "dev", "hc", "nodad")
        self.ip(self.ns["c"], "addr", "add", f"{CLIENT}/64", "dev", "c0", "nodad")
        for ns, dev in ((h, "hc"), (self.ns["c"], "c0")):
            self.ip(ns, "link", "set", dev, "up")
        self.ip(self.ns["c"], "route", "add", f"{PREFIX}:7::/64", "via", HOST_C)
        # host <-> members, one bridge
        self.ip(h, "link", "add", "br0", "type", "bridge")
        self.ip(h, "addr", "add", f"{HOST_M}/64", "dev", "br0", "nodad")
        self.ip(h, "link", "set", "br0", "up")
        for name, addr in MEMBERS.items():
            ns = self.ns[name]
            self.ip(h, "link", "add", f"h{name}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            self.ip(h, "link", "set", f"h{name}", "master", "br0", "up")
            self.ip(ns, "addr", "add", f"{addr}/64", "dev", "eth0", "nodad")
            self.ip(ns, "link", "set", "eth0", "up")
            self.ip(ns, "addr", "add", f"{VIP}/128", "dev", "lo", "nodad")  # what vm dsr-setup --apply does
            self.ip(ns, "route", "add", "default", "via", HOST_M)
            p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SERVER, VIP, str(PORT), name])
            self.addCleanup(p.wait)
            self.addCleanup(p.kill)
        self.ok("service", "create", "v6", "--vip", VIP, "--subnet", f"{PREFIX}:6::/64", "--dataplane", "nat")
        for name, addr in MEMBERS.items():
            self.ok("vm", "create", name, "--cloud-service", "v6", "--private-ip", addr, "--no-default-endpoints")
        self.ok("endpoint", "add", "m1", "--name", "app", "--protocol", "tcp", "--public-port", str(PORT),
                "--private-port", str(PORT), "--lbset", "app", "--direct-server-return", "--no-probe")
        self.ok("lbset", "join", "app", "--vm", "m2")
        r = subprocess.run(["ip", "netns", "exec", h, AZLB, "--state", self.state, "engine", "start", "--threads",
                            "1"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.addCleanup(self.azlb, "engine", "stop")

    def ip(self, ns, *args):
        subprocess.run(["ip", "-n", ns, *args], check=True, capture_output=True)

    def sh(self, ns, *args):
        return subprocess.run(["ip", "netns", "exec", ns, *args], check=True, capture_output=True, text=True).stdout

    @staticmethod
    def remove_namespace(ns):
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def connect(self):
        """A connection from the client's namespace: (socket, the member's name, the client address it saw)."""
        s, line = in_ns(self.ns["c"], greeted, VIP, PORT, 5)
        return s, *line.split()

    def test_members_answer_the_client_directly_and_pins_keep_flows_when_the_table_changes(self):
        long = [self.connect() for _ in range(24)]
        self.addCleanup(lambda: [s.close() for s, _, _ in long])
        self.assertEqual({name for _, name, _ in long}, set(MEMBERS), [n for _, n, _ in long])
        self.assertEqual({seen for _, _, seen in long}, {CLIENT})  # the client's own address
        table = self.sh(self.ns["h"], "nft", "list", "tables")
        pins = next(w for w in table.split() if w.endswith("_pins"))
        listing = self.sh(self.ns["h"], "nft", "list", "map", "inet", pins, "pins6_tcp")
        self.assertGreaterEqual(listing.count(" . 8080 timeout"), 24, listing)  # IID . client port . 8080
        # Most slots move to m1: the pinned flows stay where they are (on m2 a
        # moved flow would meet no connection and be reset).
        self.ok("lbset", "weight", "app", "--vm", "m1", "--weight", "20")
        def slots():
            return {m["vm"]: m["hash_slots"] or 0 for m in self.admin_json()["members"]}

        wait_until(lambda: slots()["m1"] > 10 * slots()["m2"], timeout=10, what="weight 20 in force")
        for i, (s, name, _) in enumerate(long):
            s.sendall(f"ping {i}\n".encode())
            self.assertEqual(s.recv(100), f"ping {i}\n".encode(), f"connection {i} to {name} broke")
        # New flows follow the new table: nearly all to m1.
        fresh = [self.connect() for _ in range(20)]
        for s, _, _ in fresh:
            s.close()
        self.assertGreater(sum(name == "m1" for _, name, _ in fresh), 14, [n for _, n, _ in fresh])


if __name__ == "__main__":
    unittest.main()
