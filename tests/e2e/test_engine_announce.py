"""engine start --announce, withdraw and announce, as root, in a network
namespace the test makes (addresses from 198.18.0.0/15 inside it only): the
host routes a BGP daemon exports appear, go and come back in azlb's table."""
import os
import random
import shutil
import signal
import subprocess
import unittest

from backends import wait_until
from engine_case import EngineCase
from harness import AZLB


def can_make_namespaces():
    return os.geteuid() == 0 and shutil.which("ip") is not None


@unittest.skipUnless(can_make_namespaces(), "needs root to make a network namespace (CI runs as root)")
class Announce(EngineCase):
    def setUp(self):
        super().setUp()
        self.ns = f"azlbt{os.getpid()}x{random.randint(0, 99999)}"
        subprocess.run(["ip", "netns", "add", self.ns], check=True)
        self.addCleanup(subprocess.run, ["ip", "netns", "del", self.ns])
        subprocess.run(["ip", "-n", self.ns, "link", "set", "lo", "up"], check=True)
        self.vip = f"198.18.{random.randint(1, 250)}.1"
        subprocess.run(["ip", "-n", self.ns, "addr", "add", f"{self.vip}/32", "dev", "lo"], check=True)
        self.table = str(random.randint(1000, 100000))
        self.ok("service", "create", "web", "--vip", self.vip)
        for vm in ("vm1", "vm2"):
            self.ok("vm", "create", vm, "--cloud-service", "web", "--no-default-endpoints")
        self.ok("endpoint", "add", "vm1", "--name", "http", "--protocol", "tcp", "--public-port", "8080",
                "--private-port", "80", "--lbset", "webset", "--no-probe")
        self.ok("lbset", "join", "webset", "--vm", "vm2")

    def start_in_namespace(self, *extra):
        p = subprocess.run(["ip", "netns", "exec", self.ns, AZLB, "--state", self.state, "engine", "start",
                            "--threads", "1", *extra], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.addCleanup(self.azlb, "engine", "stop")

    def routes(self):
        out = subprocess.run(["ip", "-n", self.ns, "route", "show", "table", self.table], capture_output=True,
                             text=True).stdout
        routes = []
        for line in out.splitlines():  # "198.18.3.1 dev lo proto 250 scope link"
            words = line.split()
            routes.append((words[0], words[words.index("proto") + 1] if "proto" in words else None))
        return routes

    def announced(self):
        return self.routes() == [(self.vip, "250")]

    def test_routes_follow_what_the_host_can_serve_and_withdraw_announce_and_stop(self):
        self.start_in_namespace("--announce", "--route-table", self.table)
        self.assertTrue(self.announced(), self.routes())
        st = self.admin_json()["announce"]
        self.assertEqual((st["enabled"], st["table"], st["announcing"], st["withdrawn"]),
                         (True, int(self.table), [self.vip], False))
        self.assertEqual(self.ok("status", "-o", "json").json()["engines"][0]["announcing"], [self.vip])
        self.assertIn(f"announcing {self.vip} (table {self.table})", self.ok("status").out)
        self.assertIn(f'azlb_vip_announced{{vip="{self.vip}"}} 1', self.admin("/metrics")[1])
        # No member may take a new flow: the VIP is not announced, and status says why.
        self.ok("lbset", "drain", "webset", "--vm", "vm1")
        self.ok("lbset", "drain", "webset", "--vm", "vm2")
        self.ok("engine", "reload")
        wait_until(lambda: self.routes() == [], what="the route withdrawn with every member drained")
        self.assertEqual(self.admin_json()["announce"]["not_announced"],
                         [{"vip": self.vip, "why": "no member may take new flows (down, drained or none)"}])
        self.assertIn(f'azlb_vip_announced{{vip="{self.vip}"}} 0', self.admin("/metrics")[1])
        self.ok("lbset", "undrain", "webset", "--vm", "vm2")
        self.ok("engine", "reload")
        wait_until(self.announced, what="the route back with a member undrained")
        # Planned maintenance: withdraw, nothing left to wait for; then back.
        r = self.ok("engine", "withdraw", "--wait", "5")
        self.assertIn("has no connections left", r.out)
        self.assertEqual(self.routes(), [])
        self.assertTrue(self.admin_json()["announce"]["withdrawn"])
        self.ok("engine", "announce")
        self.assertTrue(self.announced())
        # kill -9 leaves the route; the next start finds it, and a stop takes it.
        os.kill(self.admin_json()["pid"], signal.SIGKILL)
        wait_until(lambda: self.azlb("status", "-o", "json").json()["engine"]["running"] is False, what="the kill")
        self.assertTrue(self.announced())
        self.start_in_namespace("--announce", "--route-table", self.table)
        self.assertTrue(self.announced())
        self.ok("engine", "stop")
        self.assertEqual(self.routes(), [])

    @unittest.skipUnless(shutil.which("bird") and shutil.which("birdc"), "BIRD 2 is not installed (scripts/deps.sh)")
    def test_the_shipped_bird_config_learns_the_vips_azlb_announces(self):
        """dist/bird/azlb-host.conf as it ships (its router, absent here, only
        never answers): BIRD learns the VIP from azlb's table, and forgets it
        when azlb withdraws it."""
        shipped = os.path.join(os.path.dirname(__file__), "../../dist/bird/azlb-host.conf")
        conf = os.path.join(self.dir, "bird.conf")
        with open(shipped) as f:
            text = f.read().replace("kernel table 201;", f"kernel table {self.table};")
        with open(conf, "w") as f:
            f.write(text)
        sock = os.path.join(self.dir, "bird.ctl")
        bird = subprocess.Popen(["ip", "netns", "exec", self.ns, "bird", "-f", "-c", conf, "-s", sock],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(bird.wait)
        self.addCleanup(bird.kill)
        self.start_in_namespace("--announce", "--route-table", self.table)

        def learnt():
            out = subprocess.run(["birdc", "-s", sock, "show", "route", "table", "azlb_vips"], capture_output=True,
                                 text=True).stdout
            return f"{self.vip}/32" in out

        wait_until(learnt, timeout=10, what="BIRD to learn the VIP from azlb's table")
        self.ok("engine", "withdraw")
        wait_until(lambda: not learnt(), timeout=10, what="BIRD to forget the withdrawn VIP")

    def test_routes_and_rules_removed_by_another_program_are_put_back(self):
        """What azlb set up in the kernel and another program took away (ip
        route flush, a rule deleted) is noticed and put back within seconds:
        the announced VIP, and direct server return's rules and routes."""
        ns = ["ip", "-n", self.ns]
        # Members on a link of their own (a veth pair inside the namespace).
        subprocess.run([*ns, "link", "add", "m0", "type", "veth", "peer", "name", "m1"], check=True)
        subprocess.run([*ns, "addr", "add", "198.18.200.1/24", "dev", "m0"], check=True)
        for dev in ("m0", "m1"):
            subprocess.run([*ns, "link", "set", dev, "up"], check=True)
        dsr_vip = f"198.18.{random.randint(1, 250)}.2"
        subprocess.run([*ns, "addr", "add", f"{dsr_vip}/32", "dev", "lo"], check=True)
        self.ok("service", "create", "fast", "--vip", dsr_vip, "--subnet", "198.18.200.0/24", "--dataplane", "nat")
        for i in (1, 2):
            self.ok("vm", "create", f"d{i}", "--cloud-service", "fast", "--private-ip", f"198.18.200.{10 + i}",
                    "--no-default-endpoints")
        self.ok("endpoint", "add", "d1", "--name", "app", "--protocol", "tcp", "--public-port", "9000",
                "--private-port", "9000", "--lbset", "app", "--direct-server-return", "--no-probe")
        self.ok("lbset", "join", "app", "--vm", "d2")
        self.start_in_namespace("--announce", "--route-table", self.table)

        def rules():
            out = subprocess.run([*ns, "rule", "show"], capture_output=True, text=True).stdout
            return sorted(l.split()[-1] for l in out.splitlines() if l.startswith("3250:"))  # lookup TABLE

        def next_hops():
            return sorted(subprocess.run([*ns, "route", "show", "table", t], capture_output=True,
                                         text=True).stdout.split()[2] for t in rules())

        wait_until(lambda: len(rules()) == 2, what="two DSR rules")
        self.assertEqual(next_hops(), ["198.18.200.11", "198.18.200.12"])
        routes = subprocess.run([*ns, "route", "show", "table", rules()[0]], capture_output=True, text=True).stdout
        self.assertIn("proto 250", routes)
        announced = sorted([(self.vip, "250"), (dsr_vip, "250")])
        wait_until(lambda: sorted(self.routes()) == announced, what="both VIPs announced")
        # Another program takes them away.
        subprocess.run([*ns, "route", "flush", "table", self.table], check=True)
        table = rules()[0]
        subprocess.run([*ns, "rule", "del", "priority", "3250", "lookup", table], check=True)
        subprocess.run([*ns, "route", "flush", "table", rules()[0]], check=True)
        self.assertEqual(self.routes(), [])
        wait_until(lambda: sorted(self.routes()) == announced, timeout=6, what="the announced routes put back")
        wait_until(lambda: len(rules()) == 2 and next_hops() == ["198.18.200.11", "198.18.200.12"], timeout=6,
                   what="the DSR rules and routes put back")
        log = self.read(self.state + ".engine.log")
        self.assertIn(f"VIP {self.vip}'s route was removed from table {self.table} by another program", log)
        self.assertIn("direct server return: the rule", log)
        # The namespace does not forward: said once, not at every repair.
        self.assertEqual(log.count("does not forward (net.ipv4.ip_forward=0)"), 1, log)

    def test_an_ipv6_vip_is_announced_as_a_host_route_of_its_own(self):
        vip6 = f"fd00:{random.randint(0x100, 0xfff):x}::1"
        subprocess.run(["ip", "-n", self.ns, "addr", "add", f"{vip6}/128", "dev", "lo", "nodad"], check=True)
        self.ok("service", "create", "web6", "--vip", vip6, "--subnet", "fd00:1::/64")
        self.ok("vm", "create", "v6a", "--cloud-service", "web6", "--no-default-endpoints")
        self.ok("endpoint", "add", "v6a", "--name", "http", "--protocol", "tcp", "--public-port", "8080",
                "--private-port", "80", "--lbset", "web6set", "--no-probe")
        self.start_in_namespace("--announce", "--route-table", self.table)

        def routes6():
            return subprocess.run(["ip", "-n", self.ns, "-6", "route", "show", "table", self.table],
                                  capture_output=True, text=True).stdout

        wait_until(lambda: f"{vip6} dev lo proto 250" in routes6(), what="the IPv6 VIP's /128")
        self.assertTrue(self.announced(), self.routes())  # and the IPv4 one beside it
        self.assertEqual(sorted(self.admin_json()["announce"]["announcing"]), sorted([self.vip, vip6]))
        self.ok("engine", "withdraw")
        self.assertNotIn(vip6, routes6())

    def test_bad_uses_are_one_line_with_the_contracts_code(self):
        self.fails(2, "engine", "start", "--route-table", "7", mentions="needs --announce")
        self.fails(2, "engine", "start", "--announce", "--route-table", "254", mentions="254")
        self.fails(2, "engine", "start", "--announce", "--route-table", "x", mentions="'x'")
        self.fails(2, "engine", "start", "--handoff-address", "198.18.1.2", mentions="needs --announce")
        self.fails(2, "engine", "start", "--announce", "--handoff-address", "198.18.1.2,198.18.1.3",
                   mentions="one per family")
        self.fails(2, "engine", "start", "--announce", "--handoff-address", "198.18.1.2,", mentions="''")
        self.fails(2, "engine", "start", "--announce", "--handoff-address", "0.0.0.0", mentions="0.0.0.0")
        self.fails(2, "engine", "start", "--announce", "--handoff-address", "\xff\x01", mentions="hand-off address")
        self.fails(1, "engine", "withdraw", mentions="no engine runs")
        self.start_in_namespace()
        self.fails(2, "engine", "withdraw", mentions="without --announce")
        self.fails(2, "engine", "announce", mentions="without --announce")
        self.fails(2, "engine", "withdraw", "--wait", "-1", mentions="'-1'")
