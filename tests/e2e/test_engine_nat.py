"""The NAT data plane, as root on loopback: the engine compiles a `nat`
cloud service into an nftables table of its own, the kernel rewrites each
new flow's destination to a member, and the member sees the client's own
address. Members on 127.0.x.y addresses; the output chain carries this
host's own traffic."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest

from backends import TcpBackend, UdpEcho, free_port, random_subnet, wait_until
from engine_case import EngineCase
from harness import AZLB, TIME_SCALE

CLIENT_IP = "127.0.0.77"


def nft(*args):
    return subprocess.run(["nft", *args], capture_output=True, text=True)


def nat_ready():
    """Root, nftables with NAT in the kernel: what the NAT plane needs."""
    if os.geteuid() != 0 or not shutil.which("nft"):
        return False
    probe = ("table inet azlb_selftest {\n  chain c {\n    type nat hook output priority -100; policy accept;\n  }\n}\n"
             "delete table inet azlb_selftest\n")
    return subprocess.run(["nft", "-f", "-"], input=probe, capture_output=True, text=True).returncode == 0


class Member:
    """A TCP server on a member's private IP that answers with its name and
    the address it sees, then echoes until the client closes."""

    def __init__(self, ip, port, name):
        def serve(c):
            peer = c.getpeername()
            c.sendall(f"{name} {peer[0]}:{peer[1]}\n".encode())
            while data := c.recv(4096):
                c.sendall(data)

        self.backend = TcpBackend(ip, port, serve)

    def stop(self):
        self.backend.stop()


def ask(port, source=CLIENT_IP, sport=0):
    """One connection to the VIP: the member's greeting (its name and the client it saw)."""
    with socket.socket() as s:
        s.settimeout(5)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((source, sport))
        s.connect(("127.0.0.1", port))
        return s.recv(200).decode().split()


@unittest.skipUnless(nat_ready(), "needs root and nftables with NAT (CI runs as root)")
class NatPlane(EngineCase):
    def nat_farm(self, n=3, probe=("--probe-interval", "1", "--probe-timeout", "2"), extra=()):
        self.net = random_subnet()
        self.ok("service", "create", "web", "--subnet", f"{self.net}.0/24", "--dataplane", "nat")
        self.port, self.bport = free_port(), free_port()
        self.members = {}
        for i in range(1, n + 1):
            self.ok("vm", "create", f"vm{i}", "--cloud-service", "web", "--no-default-endpoints")
            m = Member(f"{self.net}.{i + 3}", self.bport, f"vm{i}")
            self.addCleanup(m.stop)
            self.members[f"vm{i}"] = m
        self.ok("endpoint", "add", "vm1", "--name", "app", "--protocol", "tcp", "--public-port", str(self.port),
                "--private-port", str(self.bport), "--lbset", "appset", *probe, *extra)
        for i in range(2, n + 1):
            self.ok("lbset", "join", "appset", "--vm", f"vm{i}")

    def table(self):
        return self.engine_status()["engine"]  # running, pid

    def nat_table_name(self):
        st = self.admin_json()
        return st["nat"]["table"]

    def test_members_see_the_clients_own_address_and_five_tuple_spreads_evenly(self):
        self.nat_farm()
        self.start_engine()
        self.wait_health({"vm1": "up", "vm2": "up", "vm3": "up"}, lbset="appset")
        counts = {}
        for _ in range(300):
            name, seen = ask(self.port)
            self.assertTrue(seen.startswith(CLIENT_IP + ":"), seen)
            counts[name] = counts.get(name, 0) + 1
        self.assertEqual(sorted(counts), ["vm1", "vm2", "vm3"])
        for name, n in counts.items():
            self.assertGreater(n, 60, counts)  # 100 expected each
        sport = free_port()
        self.assertEqual(ask(self.port, sport=sport)[1], f"{CLIENT_IP}:{sport}")
        st = self.ok("service", "show", "web", "-o", "json").json()
        self.assertEqual(st["dataplane"], "nat")
        # Each member's packets and bytes, from the table's counters: every
        # connection carried a SYN and a FIN each way, and a greeting back.
        # (status reads them at most every 200 ms.)
        nat_members = lambda: {m["vm"]: m for m in self.admin_json()["members"]}
        wait_until(lambda: all(nat_members()[vm]["packets_in"] >= 3 * n for vm, n in counts.items()), timeout=3,
                   what="the counters of every member")
        members = nat_members()
        for vm, n in counts.items():
            m = members[vm]
            self.assertEqual(m["dataplane"], "nat")
            self.assertGreaterEqual(m["packets_in"], 3 * n, m)
            self.assertGreaterEqual(m["packets_out"], 3 * n, m)
            self.assertGreater(m["bytes_out"], m["bytes_in"] - 40 * m["packets_in"], m)
        metrics = self.admin("/metrics")[1]
        self.assertIn('azlb_nat_member_packets_in_total{service="web",lbset="appset",vm="vm1",endpoint="app"}', metrics)
        # A reload rebuilds the table: the counters carry on.
        before = members["vm1"]["packets_in"]
        self.ok("lbset", "set", "appset", "--probe-interval", "2", "--probe-timeout", "4")
        self.ok("engine", "reload")
        self.assertGreaterEqual({m["vm"]: m for m in self.admin_json()["members"]}["vm1"]["packets_in"], before)

    def test_weights_share_out_new_flows_through_the_slot_map(self):
        """The kernel picks by the same Maglev table as the proxy (its slots
        in an nftables map): weights 1:1:3, and status says each share."""
        self.nat_farm()
        self.ok("lbset", "weight", "appset", "--vm", "vm3", "--weight", "3")
        self.start_engine()
        self.wait_health({"vm1": "up", "vm2": "up", "vm3": "up"}, lbset="appset")
        n = 500
        counts = {}
        for _ in range(n):
            name = ask(self.port)[0]
            counts[name] = counts.get(name, 0) + 1
        expected = {"vm1": n / 5, "vm2": n / 5, "vm3": 3 * n / 5}
        chi2 = sum((counts.get(vm, 0) - e) ** 2 / e for vm, e in expected.items())
        self.assertLess(chi2, 13.8, f"not 1:1:3: {counts}")
        members = {m["vm"]: m for m in self.admin_json()["members"]}
        self.assertAlmostEqual(members["vm3"]["share"], 0.6, delta=0.01)
        self.assertEqual(sum(m["hash_slots"] for m in members.values()), 1031)
        listing = nft("list", "map", "inet", self.nat_table_name(), "slots0").stdout
        self.assertIn("typeof numgen random mod 1031 : ct mark", listing)

    def test_source_ip_keeps_each_client_on_one_member(self):
        self.nat_farm(extra=("--distribution", "source-ip"))
        self.start_engine()
        self.wait_health({"vm1": "up", "vm2": "up", "vm3": "up"}, lbset="appset")
        chosen = {}
        for c in range(20):
            ip = f"127.0.0.{100 + c}"
            names = {ask(self.port, source=ip)[0] for _ in range(5)}
            self.assertEqual(len(names), 1, f"client {ip} moved: {names}")
            chosen[ip] = names.pop()
        self.assertGreater(len(set(chosen.values())), 1, "every client on one member")

    def test_source_ip_sends_a_clients_tcp_and_udp_to_one_vm(self):
        tport, uport = self.tcp_and_udp_sets("source-ip", dataplane="nat")
        self.start_engine()
        self.check_source_ip_pairs_tcp_and_udp(tport, uport)

    def test_a_member_that_fails_its_probe_leaves_the_map_and_comes_back(self):
        self.nat_farm(n=2)
        self.start_engine()
        self.wait_health({"vm1": "up", "vm2": "up"}, lbset="appset")
        self.members["vm2"].stop()
        self.wait_health({"vm1": "up", "vm2": "down"}, lbset="appset")
        for _ in range(30):
            self.assertEqual(ask(self.port)[0], "vm1")
        m = Member(f"{self.net}.5", self.bport, "vm2")
        self.addCleanup(m.stop)
        self.wait_health({"vm1": "up", "vm2": "up"}, lbset="appset")
        wait_until(lambda: "vm2" in {ask(self.port)[0] for _ in range(20)}, what="vm2 back in the map")

    def test_with_every_member_down_refuse_resets_at_once(self):
        self.nat_farm(n=1)
        self.start_engine()
        self.wait_health({"vm1": "up"}, lbset="appset")
        self.members["vm1"].stop()
        self.wait_health({"vm1": "down"}, lbset="appset")
        started = time.monotonic()
        with self.assertRaises(ConnectionRefusedError):
            ask(self.port)
        self.assertLess(time.monotonic() - started, 1.0 * TIME_SCALE)

    def test_acl_deny_and_permit(self):
        self.nat_farm(n=1, probe=("--no-probe",))
        self.ok("endpoint", "acl", "add", "vm1", "app", "--order", "10", "--action", "deny",
                "--remote-subnet", "127.0.0.66/32")
        self.start_engine()
        self.assertEqual(ask(self.port)[0], "vm1")
        with self.assertRaises((socket.timeout, TimeoutError)):
            with socket.socket() as s:
                s.settimeout(1)
                s.bind(("127.0.0.66", 0))
                s.connect(("127.0.0.1", self.port))
                s.recv(10)
        # A permit rule: whoever it does not match is denied.
        self.ok("endpoint", "acl", "remove", "vm1", "app", "--order", "10")
        self.ok("endpoint", "acl", "add", "vm1", "app", "--order", "10", "--action", "permit",
                "--remote-subnet", "127.0.0.66/32")
        self.ok("engine", "reload")
        self.assertEqual(ask(self.port, source="127.0.0.66")[0], "vm1")
        with self.assertRaises((socket.timeout, TimeoutError)):
            with socket.socket() as s:
                s.settimeout(1)
                s.bind((CLIENT_IP, 0))
                s.connect(("127.0.0.1", self.port))
                s.recv(10)

    def test_idle_timeout_becomes_the_flows_conntrack_timeout_and_drain_empties_the_map(self):
        self.nat_farm(n=2, probe=("--no-probe",))
        # A "minute" of idle timeout lasts 1 s here: established flows expire after 4 s.
        self.start_engine(env={"AZLB_IDLE_TIMEOUT_UNIT_MS": "1000"})
        with socket.socket() as s:
            s.settimeout(5)
            s.bind((CLIENT_IP, 0))
            s.connect(("127.0.0.1", self.port))
            s.recv(200)
            sport = s.getsockname()[1]
            out = subprocess.run(["conntrack", "-L", "-p", "tcp", "--orig-src", CLIENT_IP, "--sport", str(sport)],
                                 capture_output=True, text=True).stdout
            self.assertIn("ESTABLISHED", out)
            timeout = int(out.split()[2])  # tcp 6 TIMEOUT ESTABLISHED ...
            self.assertLessEqual(timeout, 4, out)
        # vm2 drained: every new flow goes to vm1, and its conntrack count is in status.
        self.ok("lbset", "drain", "appset", "--vm", "vm2")
        self.ok("engine", "reload")
        for _ in range(20):
            self.assertEqual(ask(self.port)[0], "vm1")
        members = {m["vm"]: m for m in self.admin_json()["members"]}
        self.assertEqual(members["vm2"]["admin_state"], "drain")

    def test_drain_wait_counts_the_members_flows_in_conntrack(self):
        self.nat_farm(n=2, probe=("--no-probe",))
        self.start_engine()
        held = socket.socket()
        self.addCleanup(held.close)
        held.settimeout(5)
        held.bind((CLIENT_IP, 0))
        held.connect(("127.0.0.1", self.port))
        vm = held.recv(200).decode().split()[0]
        r = self.azlb("lbset", "drain", "appset", "--vm", vm, "--wait", "1")
        self.assertEqual(r.rc, 1, r)
        self.assertIn("1 active connection remains", r.err)
        for _ in range(10):
            self.assertNotEqual(ask(self.port)[0], vm)
        held.sendall(b"still here")
        self.assertEqual(held.recv(100), b"still here")  # the held flow keeps its member
        held.close()
        r = self.azlb("lbset", "drain", "appset", "--vm", vm, "--wait", "10")
        self.assertEqual(r.rc, 0, r)

    def test_udp_flows_are_rewritten_too(self):
        self.net = random_subnet()
        self.ok("service", "create", "dns", "--subnet", f"{self.net}.0/24", "--dataplane", "nat")
        port, bport = free_port(), free_port()
        for i in (1, 2):
            self.ok("vm", "create", f"vm{i}", "--cloud-service", "dns", "--no-default-endpoints")
            e = UdpEcho(f"{self.net}.{i + 3}", bport, f"vm{i}",
                        answer=lambda data, n=f"vm{i}": n.encode())
            self.addCleanup(e.stop)
        self.ok("endpoint", "add", "vm1", "--name", "dns", "--protocol", "udp", "--public-port", str(port),
                "--private-port", str(bport), "--lbset", "dnsset", "--no-probe")
        self.ok("lbset", "join", "dnsset", "--vm", "vm2")
        self.start_engine()
        seen = set()
        for _ in range(40):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(5)
                s.bind((CLIENT_IP, 0))
                s.sendto(b"q", ("127.0.0.1", port))
                data, peer = s.recvfrom(100)
                self.assertEqual(peer, ("127.0.0.1", port))  # the answer comes from the VIP
                seen.add(data.decode())
        self.assertEqual(seen, {"vm1", "vm2"})

    def test_a_wildcard_vip_takes_this_hosts_own_addresses_and_nothing_it_only_routes_to(self):
        # A host beyond this one: a network namespace on a veth pair, with a
        # server of its own on the VIP's port. Traffic to it is not the VIP's.
        ns, host_if = f"azlb{os.getpid() % 100000}", f"azlbv{os.getpid() % 100000}"
        third = 1 + os.getpid() % 250
        outside = f"10.213.{third}.2"
        for cmd in (["ip", "netns", "add", ns],
                    ["ip", "link", "add", host_if, "type", "veth", "peer", "name", "peer0", "netns", ns],
                    ["ip", "addr", "add", f"10.213.{third}.1/30", "dev", host_if], ["ip", "link", "set", host_if, "up"],
                    ["ip", "-n", ns, "addr", "add", f"{outside}/30", "dev", "peer0"],
                    ["ip", "-n", ns, "link", "set", "peer0", "up"]):
            subprocess.run(cmd, check=True, capture_output=True)
            if cmd[:3] == ["ip", "netns", "add"]:
                self.addCleanup(subprocess.run, ["ip", "netns", "del", ns], capture_output=True)
        self.net = random_subnet()
        port, bport = free_port(), free_port()
        server = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c",
             "import socket\ns = socket.create_server((%r, %d))\nprint('ready', flush=True)\n"
             "while True:\n    c, _ = s.accept(); c.sendall(b'outside\\n'); c.close()" % (outside, port)],
            stdout=subprocess.PIPE, text=True)
        self.addCleanup(server.wait)
        self.addCleanup(server.kill)
        self.assertEqual(server.stdout.readline().strip(), "ready")
        self.ok("service", "create", "any", "--vip", "0.0.0.0", "--subnet", f"{self.net}.0/24", "--dataplane", "nat")
        self.ok("vm", "create", "vm1", "--cloud-service", "any", "--no-default-endpoints")
        m = Member(f"{self.net}.4", bport, "vm1")
        self.addCleanup(m.stop)
        self.ok("endpoint", "add", "vm1", "--name", "app", "--protocol", "tcp", "--public-port", str(port),
                "--private-port", str(bport))
        self.start_engine()

        def greeting(addr):
            with socket.create_connection((addr, port), timeout=5) as c:
                return c.recv(200).decode().split()[0]

        for local in ("127.0.0.1", "127.0.0.9", f"10.213.{third}.1"):  # any address of this host
            self.assertEqual(greeting(local), "vm1", local)
        self.assertEqual(greeting(outside), "outside")  # routed through, never rewritten

    def test_two_engines_with_the_same_names_count_only_their_own_flows(self):
        self.nat_farm(n=1, probe=("--no-probe",))
        self.start_engine()
        # Another state file, another engine, the same service, set, VM and endpoint names.
        first, other = self.state, os.path.join(self.dir, "other.toml")
        net2 = random_subnet()
        while net2 == self.net:
            net2 = random_subnet()
        az = lambda *a: self.ok("--state", other, *a)
        az("service", "create", "web", "--subnet", f"{net2}.0/24", "--dataplane", "nat")
        az("vm", "create", "vm1", "--cloud-service", "web", "--no-default-endpoints")
        az("endpoint", "add", "vm1", "--name", "app", "--protocol", "tcp", "--public-port", str(free_port()),
           "--private-port", str(self.bport), "--lbset", "appset", "--no-probe")
        az("engine", "start", "--threads", "1")
        self.addCleanup(self.azlb, "--state", other, "engine", "stop")
        held = []
        self.addCleanup(lambda: [c.close() for c in held])
        for _ in range(5):
            c = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            c.recv(200)
            held.append(c)
        member = lambda: self.admin_json()["members"][0]
        wait_until(lambda: member()["active"] == 5 and member()["packets_in"] >= 15, timeout=3,
                   what="the first engine's count of its flows")
        time.sleep(0.3)  # status reads the kernel at most every 200 ms: past the reading made at its start
        self.state = other
        try:
            theirs = member()
        finally:
            self.state = first
        self.assertEqual((theirs["active"], theirs["packets_in"], theirs["bytes_out"]), (0, 0, 0), theirs)

    def test_ipv6_in_a_namespace_of_its_own(self):
        ns = f"azlb6{os.getpid() % 100000}"
        subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True)
        self.addCleanup(subprocess.run, ["ip", "netns", "del", ns], capture_output=True)
        here = os.path.dirname(os.path.abspath(__file__))
        r = subprocess.run(["ip", "netns", "exec", ns, sys.executable, os.path.join(here, "netns_nat_v6.py"), AZLB],
                           capture_output=True, text=True, timeout=60 * TIME_SCALE)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        names = {name for name, _ in out["seen"]}
        self.assertEqual(names, {"vm1", "vm2"})
        self.assertEqual({client for _, client in out["seen"]}, {"fd00:a21b::77"})  # the client's own address
        members = {m["vm"]: m for m in out["status"]["members"]}
        self.assertEqual(sum(m["packets_in"] > 0 for m in members.values()), 2, members)
        self.assertEqual(out["stop_rc"], 0)
        self.assertNotIn("azlb_", out["tables"])  # stop removed the table

    def test_established_connections_survive_kill_9_and_a_new_start_and_stop_leaves_nothing(self):
        self.nat_farm(n=2, probe=("--no-probe",))
        self.start_engine()
        table = self.nat_table_name()
        conns = []
        for _ in range(20):
            s = socket.socket()
            s.settimeout(5)
            s.bind((CLIENT_IP, 0))
            s.connect(("127.0.0.1", self.port))
            s.recv(200)
            conns.append(s)
        self.addCleanup(lambda: [c.close() for c in conns])
        pid = int(self.engine_status()["engine"]["pid"])
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z",
                   what="the engine gone")
        for i, s in enumerate(conns):  # the table and conntrack carry them without the engine
            s.sendall(f"ping{i}".encode())
            self.assertEqual(s.recv(100), f"ping{i}".encode())
        self.assertEqual(ask(self.port)[1].split(":")[0], CLIENT_IP)  # new flows too
        self.ok("engine", "start", "--threads", "1")  # adopts the table
        for i, s in enumerate(conns):
            s.sendall(f"again{i}".encode())
            self.assertEqual(s.recv(100), f"again{i}".encode())
        members = self.admin_json()["members"]
        self.assertEqual(sum(m["active"] for m in members), 20 + 0)  # conntrack's count of the held flows
        # stop: no new flows while the held ones finish (its drain), then no table.
        stopper = subprocess.Popen([AZLB, "--state", self.state, "engine", "stop"], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        time.sleep(0.5 * TIME_SCALE)
        with self.assertRaises(ConnectionRefusedError):
            ask(self.port)
        for i, s in enumerate(conns):
            s.sendall(f"draining{i}".encode())
            self.assertEqual(s.recv(100), f"draining{i}".encode())
            s.close()
        out, err = stopper.communicate(timeout=20 * TIME_SCALE)
        self.assertEqual(stopper.returncode, 0, err)
        self.assertIn("Draining: waiting for 0 connections and flows and 20 NAT TCP connections (up to 10 s)", out)
        self.assertNotIn(table, nft("list", "tables").stdout)
        with self.assertRaises(OSError):
            ask(self.port)

    def test_stop_does_not_wait_for_udp_flows_which_have_no_end_and_says_so(self):
        tport, uport = self.tcp_and_udp_sets("five-tuple", dataplane="nat", vms=2)
        self.start_engine()
        for c in range(3):
            self.vms_of_client(tport, uport, f"127.0.0.{100 + c}")  # a UDP flow each, replied
        started = time.monotonic()
        r = self.ok("engine", "stop", "-o", "json")
        self.assertLess(time.monotonic() - started, 3 * TIME_SCALE, "stop waited for UDP flows (drain timeout 10 s)")
        self.assertIn("3 NAT UDP flows are not waited for", r.json()["waited_for"])
        log = self.read(self.state + ".engine.log")
        self.assertIn("3 NAT UDP flows are not waited for", log)

    def test_without_cap_net_admin_start_fails_with_one_line_saying_so(self):
        self.nat_farm(n=1, probe=("--no-probe",))
        os.chmod(self.dir, 0o777)
        os.chmod(self.state, 0o666)
        r = subprocess.run(["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups",
                            "--inh-caps=-all", AZLB, "--state", self.state, "engine", "start"],
                           capture_output=True, text=True, timeout=30)
        self.addCleanup(self.azlb, "engine", "stop")
        self.assertEqual(r.returncode, 1, r)
        self.assertEqual(r.stdout, "")
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertIn("CAP_NET_ADMIN", r.stderr)

    def test_without_libnftables_the_cli_works_and_a_nat_engine_says_which_library(self):
        """libnftables and libnetfilter_conntrack are loaded when the NAT plane
        first needs them: a host without them runs every command, and only a
        NAT engine fails, in one line naming the library."""
        self.nat_farm(n=1, probe=("--no-probe",))
        lib = subprocess.run(["sh", "-c", "ldconfig -p | awk '/libnftables.so.1 /{print $NF; exit}'"],
                             capture_output=True, text=True).stdout.strip()
        self.assertTrue(lib, "ldconfig knows no libnftables.so.1")
        empty = os.path.join(self.dir, "empty.so")
        open(empty, "w").close()
        # In a mount namespace of its own, the library is an empty file.
        hide = f"mount --bind {empty} {lib} && exec \"$@\""
        without = lambda *a: subprocess.run(["unshare", "-m", "sh", "-c", hide, "sh", AZLB, "--state", self.state, *a],
                                            capture_output=True, text=True, timeout=60)
        r = without("vm", "list")
        self.assertEqual(r.returncode, 0, r)
        self.assertIn("vm1", r.stdout)
        r = without("-q", "endpoint", "add", "vm1", "--name", "other", "--protocol", "tcp", "--public-port",
                    str(free_port()), "--private-port", "81")
        self.assertEqual(r.returncode, 0, r)
        self.addCleanup(self.azlb, "engine", "stop")
        r = without("engine", "start")
        self.assertEqual(r.returncode, 1, r)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertIn("libnftables.so.1", r.stderr)
        stop = self.azlb("engine", "stop")  # nothing was left running
        self.assertEqual(stop.rc, 1, stop)
        self.assertIn("no engine runs", stop.err)


if __name__ == "__main__":
    unittest.main()
