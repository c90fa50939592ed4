"""The proxy plane across hosts, IPv4 and IPv6, as root, in network
namespaces the test makes: a client behind a router, three balancer hosts
that own a proxied VIP of each family and follow one state in etcd, and a
member host. The router's route to each VIP goes to h1; the test moves it to
h2 (as ECMP does when a path comes or goes), so the packets of h1's
connections reach h2, which holds none of them: h2 copies them to h1 and h3
(nat/handoff.hpp); h1 takes them, h3 drops its copies without a reset, and
every connection goes on both ways and ends cleanly, while new ones are
h2's own."""
import os
import random
import shutil
import socket
import subprocess
import tempfile
import unittest

from backends import wait_until
from harness import AZLB
from netns_cluster import greeted, in_ns

PREFIX = f"fd00:{random.randint(0x100, 0xfff):x}"
HOSTS = {"h1": ("198.18.1.2", f"{PREFIX}:6::2"), "h2": ("198.18.1.3", f"{PREFIX}:6::3"),
         "h3": ("198.18.1.4", f"{PREFIX}:6::4")}
ROUTER = ("198.18.1.1", f"{PREFIX}:6::1")
CLIENT = ("198.18.0.2", f"{PREFIX}:5::2")
MEMBER = ("198.18.1.21", f"{PREFIX}:6::21")  # the VMs' private addresses, on the member host
VIPS = ("198.18.3.1", f"{PREFIX}:7::1")
PORT, PRIVATE_PORT = 80, 8080

SERVER = """
import socket, sys, threading
def serve(c):
    c.sendall(b"hello\\n")
    while data := c.recv(65536):
        c.sendall(data)
    c.close()
def listen(addr, family):
    s = socket.create_server((addr, int(sys.argv[3])), family=family)
    while True:
        threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
threading.Thread(target=listen, args=(sys.argv[1], socket.AF_INET), daemon=True).start()
listen(sys.argv[2], socket.AF_INET6)
"""


def ready():
    return os.geteuid() == 0 and all(shutil.which(tool) for tool in ("ip", "nft", "etcd"))


def sh(*args, check=True):
    return subprocess.run(args, capture_output=True, text=True, check=check)


@unittest.skipUnless(ready(), "needs root, ip, nft and etcd (scripts/deps.sh; CI runs as root)")
class HandOffBetweenHosts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="azlb-handoff-")
        tag = f"{os.getpid() % 10000}x{random.randint(0, 999)}"
        cls.ns = {n: f"azho{n}{tag}" for n in ("c", "r", *HOSTS, "m")}
        cls.procs = []
        cls.etcd_port = 24000 + random.randint(0, 999)
        try:
            cls.build()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def build(cls):
        ns = cls.ns
        for n in ns.values():
            sh("ip", "netns", "add", n)
            sh("ip", "-n", n, "link", "set", "lo", "up")
        c, r = ns["c"], ns["r"]
        sh("ip", "link", "add", "c0", "netns", c, "type", "veth", "peer", "name", "r0", "netns", r)
        for n, dev, v4, v6 in ((c, "c0", CLIENT[0] + "/30", CLIENT[1] + "/64"),
                               (r, "r0", "198.18.0.1/30", f"{PREFIX}:5::1/64")):
            sh("ip", "-n", n, "addr", "add", v4, "dev", dev)
            sh("ip", "-n", n, "addr", "add", v6, "dev", dev, "nodad")
            sh("ip", "-n", n, "link", "set", dev, "up")
        sh("ip", "-n", c, "route", "add", "default", "via", "198.18.0.1")
        sh("ip", "-n", c, "-6", "route", "add", "default", "via", f"{PREFIX}:5::1")
        sh("ip", "-n", r, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", r, "addr", "add", ROUTER[0] + "/24", "dev", "br0")
        sh("ip", "-n", r, "addr", "add", ROUTER[1] + "/64", "dev", "br0", "nodad")
        sh("ip", "-n", r, "link", "set", "br0", "up")
        for name, (v4, v6) in {**HOSTS, "m": MEMBER}.items():
            n = ns[name]
            sh("ip", "link", "add", "eth0", "netns", n, "type", "veth", "peer", "name", f"p{name}", "netns", r)
            sh("ip", "-n", r, "link", "set", f"p{name}", "master", "br0")
            sh("ip", "-n", r, "link", "set", f"p{name}", "up")
            sh("ip", "-n", n, "addr", "add", v4 + "/24", "dev", "eth0")
            sh("ip", "-n", n, "addr", "add", v6 + "/64", "dev", "eth0", "nodad")
            sh("ip", "-n", n, "link", "set", "eth0", "up")
            sh("ip", "-n", n, "route", "add", "default", "via", ROUTER[0])
            sh("ip", "-n", n, "-6", "route", "add", "default", "via", ROUTER[1])
            if name in HOSTS:
                sh("ip", "-n", n, "addr", "add", VIPS[0] + "/32", "dev", "lo")
                sh("ip", "-n", n, "addr", "add", VIPS[1] + "/128", "dev", "lo", "nodad")
        for key in ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"):
            sh("ip", "netns", "exec", r, "sysctl", "-qw", key)
        cls.route_vips_via("h1")
        url = f"http://{ROUTER[0]}:{cls.etcd_port}"
        peer = f"http://{ROUTER[0]}:{cls.etcd_port + 1000}"
        cls.spawn(r, ["etcd", "--name", "e", "--data-dir", os.path.join(cls.dir, "etcd"), "--listen-client-urls", url,
                      "--advertise-client-urls", url, "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                      "--initial-cluster", f"e={peer}", "--log-level", "error"])
        cls.spawn(ns["m"], [shutil.which("python3"), "-c", SERVER, MEMBER[0], MEMBER[1], str(PRIVATE_PORT)])
        wait_until(lambda: cls.azlb("h1", "service", "list", check=False).returncode == 0, timeout=20, what="etcd")
        for svc, vip, subnet, vm, addr in (("front4", VIPS[0], "198.18.1.0/24", "app4", MEMBER[0]),
                                           ("front6", VIPS[1], f"{PREFIX}:6::/64", "app6", MEMBER[1])):
            cls.azlb("h1", "service", "create", svc, "--vip", vip, "--subnet", subnet)
            cls.azlb("h1", "vm", "create", vm, "--cloud-service", svc, "--private-ip", addr, "--no-default-endpoints")
            cls.azlb("h1", "endpoint", "add", vm, "--name", "http", "--protocol", "tcp", "--public-port", str(PORT),
                     "--private-port", str(PRIVATE_PORT))
        for h in HOSTS:
            cls.azlb(h, "engine", "start", "--threads", "1", "--announce")

    @classmethod
    def route_vips_via(cls, host):
        for vip, gw in ((VIPS[0], HOSTS[host][0]), (VIPS[1], HOSTS[host][1])):
            sh("ip", "-n", cls.ns["r"], "route", "replace", vip, "via", gw)

    @classmethod
    def spawn(cls, n, args):
        with open(os.path.join(cls.dir, f"{len(cls.procs)}.log"), "w") as log:
            cls.procs.append(subprocess.Popen(["ip", "netns", "exec", n, *args], stdout=log, stderr=subprocess.STDOUT))

    @classmethod
    def azlb(cls, host, *args, check=True):
        run = os.path.join(cls.dir, host)
        os.makedirs(run, exist_ok=True)
        env = dict(os.environ, AZLB_STATE=f"etcd://{ROUTER[0]}:{cls.etcd_port}/azlb/handoff", AZLB_HOST_NAME=host,
                   AZLB_RUN_DIR=run)
        p = subprocess.run(["ip", "netns", "exec", cls.ns[host], AZLB, *args], capture_output=True, text=True,
                           env=env, timeout=60)
        if check and p.returncode != 0:
            raise AssertionError(f"azlb {' '.join(args)} on {host}: exit {p.returncode}: {p.stderr}")
        return p

    @classmethod
    def tearDownClass(cls):
        for h in HOSTS:
            if os.path.isdir(os.path.join(cls.dir, h)):
                cls.azlb(h, "engine", "stop", check=False)
        for p in cls.procs:
            p.kill()
            p.wait()
        for n in cls.ns.values():
            for pid in sh("ip", "netns", "pids", n, check=False).stdout.split():
                subprocess.run(["kill", "-9", pid], capture_output=True)
            sh("ip", "netns", "del", n, check=False)
        shutil.rmtree(cls.dir, ignore_errors=True)

    def table_name(self, host, family):
        tables = sh("ip", "netns", "exec", self.ns[host], "nft", "list", "tables", family).stdout
        return next((line.split()[-1] for line in tables.splitlines() if line.endswith("_handoff")), None)

    def counters(self, host, family):
        """(copies dropped, packets handed on) by `host`, from its hand-off table's two counters."""
        name = self.table_name(host, family)
        text = sh("ip", "netns", "exec", self.ns[host], "nft", "list", "chain", family, name, "unknown").stdout
        dropped, handed = (int(part.split()[0]) for part in text.split("counter packets ")[1:3])
        return dropped, handed

    def test_connections_go_on_when_the_routers_move_them_to_a_host_that_does_not_hold_them(self):
        def peers(h):
            out = self.azlb(h, "status", check=False).stdout
            return all(a in out for other in HOSTS if other != h for a in HOSTS[other])
        for h in HOSTS:
            wait_until(lambda: peers(h), timeout=15, what=f"{h}'s hand-off to the other hosts")
        # Another program deletes h1's hand-off key in etcd: it is put back, and h2 keeps h1 as a peer.
        def handoff_keys():
            out = sh("ip", "netns", "exec", self.ns["r"], "etcdctl", "--endpoints", f"{ROUTER[0]}:{self.etcd_port}",
                     "get", "--prefix", "--keys-only", "/azlb/handoff/handoff/").stdout
            return [k for k in out.split() if k.startswith("/azlb/handoff/handoff/h1/")]
        key = handoff_keys()[0]
        sh("ip", "netns", "exec", self.ns["r"], "etcdctl", "--endpoints", f"{ROUTER[0]}:{self.etcd_port}", "del", key)
        wait_until(lambda: handoff_keys() == [key], timeout=10, what="h1's hand-off key put back")
        wait_until(lambda: peers("h2"), timeout=10, what="h2 to hand off to h1 again")
        # Another program removes h2's IPv4 table (nft flush ruleset, a firewall's reload): it is put back.
        name = self.table_name("h2", "ip")
        sh("ip", "netns", "exec", self.ns["h2"], "nft", "delete", "table", "ip", name)
        wait_until(lambda: self.table_name("h2", "ip") == name, timeout=10, what="h2's hand-off table put back")
        for family, vip, kind in ((0, VIPS[0], "ip"), (1, VIPS[1], "ip6")):
            with self.subTest(vip=vip):
                self.route_vips_via("h1")
                conns = [in_ns(self.ns["c"], greeted, vip, PORT, 5)[0] for _ in range(8)]
                handed_before = self.counters("h2", kind)[1]
                dropped_before = self.counters("h3", kind)[0]
                self.route_vips_via("h2")
                try:
                    for i, s in enumerate(conns):
                        want = f"ping {i} ".encode() + b"y" * 30000
                        s.sendall(want)
                        got = b""
                        while len(got) < len(want):
                            chunk = s.recv(65536)
                            self.assertTrue(chunk, f"connection {i} to {vip} closed after the move")
                            got += chunk
                        self.assertEqual(got, want)
                    for s in conns:
                        s.shutdown(socket.SHUT_WR)
                        self.assertEqual(s.recv(100), b"", "the connection did not end cleanly")
                    self.assertGreater(self.counters("h2", kind)[1], handed_before, "h2 handed nothing on")
                    self.assertGreater(self.counters("h3", kind)[0], dropped_before, "h3 dropped no copy")
                    # New connections are h2's own.
                    s, line = in_ns(self.ns["c"], greeted, vip, PORT, 5)
                    self.assertEqual(line, "hello")
                    s.close()
                finally:
                    for s in conns:
                        s.close()


if __name__ == "__main__":
    unittest.main()
