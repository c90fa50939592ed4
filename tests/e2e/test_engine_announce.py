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

    def test_bad_uses_are_one_line_with_the_contracts_code(self):
        self.fails(2, "engine", "start", "--route-table", "7", mentions="needs --announce")
        self.fails(2, "engine", "start", "--announce", "--route-table", "254", mentions="254")
        self.fails(2, "engine", "start", "--announce", "--route-table", "x", mentions="'x'")
        self.fails(1, "engine", "withdraw", mentions="no engine runs")
        self.start_in_namespace()
        self.fails(2, "engine", "withdraw", mentions="without --announce")
        self.fails(2, "engine", "announce", mentions="without --announce")
        self.fails(2, "engine", "withdraw", "--wait", "-1", mentions="'-1'")
