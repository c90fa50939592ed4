"""Starting, stopping and live reload of the engine."""
import collections
import http.client
import os
import signal
import socket
import subprocess

from backends import free_port, http_get, random_subnet, wait_until
from engine_case import EngineCase
from harness import AZLB, TIME_SCALE


def running(pid):
    """Alive and not a zombie waiting for whichever process adopted it."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class Lifecycle(EngineCase):
    def test_a_busy_port_is_named_and_retried_while_the_rest_is_served(self):
        self.farm()
        other = free_port()
        self.ok("endpoint", "add", "vm2", "--name", "direct", "--protocol", "tcp", "--public-port", str(other),
                "--private-port", str(self.bport))
        squatter = socket.socket()
        squatter.bind(("127.0.0.1", self.port))
        squatter.listen()
        self.addCleanup(squatter.close)
        r = self.start_engine()
        self.assertIn("1 listener, 1 not bound", r.out)
        self.assertEqual(len(r.err.strip().splitlines()), 1, r.err)
        self.assertIn(f"warning: cannot bind tcp 127.0.0.1:{self.port}", r.err)
        self.assertIn("in use", r.err)
        self.assertEqual(http_get(other), "vm2")
        self.assertIn(f"127.0.0.1:{self.port}", self.ok("status").out)
        squatter.close()
        self.wait_health({"vm1": "up", "vm2": "up", "vm3": "up"})
        wait_until(lambda: not self.admin_json()["unbound"], timeout=8 * TIME_SCALE, what="the retried bind")
        self.assertIn(http_get(self.port), self.backends)

    def test_a_port_under_1024_without_the_privilege_says_how_to_grant_it(self):
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            if int(f.read()) <= 80:
                self.skipTest("this kernel lets anyone bind port 80")
        net = random_subnet()
        self.ok("service", "create", "web", "--subnet", f"{net}.0/24", "--vip", f"{net}.1")
        self.ok("vm", "create", "vm1", "--cloud-service", "web", "--no-default-endpoints")
        self.ok("endpoint", "add", "vm1", "--name", "http", "--protocol", "tcp", "--public-port", "80",
                "--private-port", "8080")
        # As root, run the engine as nobody, without any capability.
        os.chmod(self.dir, 0o777)
        os.chmod(self.state, 0o666)
        drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                "--bounding-set=-all"] if os.geteuid() == 0 else []
        p = subprocess.run([*drop, AZLB, "--state", self.state, "engine", "start"], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assertIn(f"{net}.1:80", p.stderr)
        self.assertIn("CAP_NET_BIND_SERVICE", p.stderr)
        self.assertIn("setcap cap_net_bind_service=+ep", p.stderr)

    def test_a_change_whose_port_the_running_engine_cannot_bind_says_so(self):
        self.farm()
        self.start_engine()
        port = free_port()
        squatter = socket.socket()
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        self.addCleanup(squatter.close)
        r = self.ok("endpoint", "add", "vm2", "--name", "admin", "--protocol", "tcp", "--public-port", str(port),
                    "--private-port", str(self.bport))
        self.assertIn(f"warning: the engine cannot bind tcp 127.0.0.1:{port}", r.err)
        self.assertIn("in use", r.err)
        # The change is in force when the command returns, and others do not repeat the warning.
        self.assertEqual([u["address"] for u in self.admin_json()["unbound"]], [f"tcp 127.0.0.1:{port}"])
        r = self.ok("lbset", "set", "webset", "--distribution", "source-ip")
        self.assertEqual(r.err, "")

    def test_start_never_joins_a_port_another_program_shares_out(self):
        # SO_REUSEPORT would let the engine join this listener's group and
        # silently split its clients with it.
        self.farm()
        sharer = socket.socket()
        sharer.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sharer.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sharer.bind(("127.0.0.1", self.port))
        sharer.listen()
        self.addCleanup(sharer.close)
        r = self.start_engine()  # serves the rest; this port is named and retried, never shared
        self.assertIn(f"warning: cannot bind tcp 127.0.0.1:{self.port}", r.err)
        self.assertIn("in use", r.err)
        self.assertEqual([u["address"] for u in self.admin_json()["unbound"]], [f"tcp 127.0.0.1:{self.port}"])

    def test_one_engine_per_state_file_and_a_clean_stop(self):
        self.farm()
        self.start_engine()
        again = self.azlb("engine", "start")
        self.assertEqual(again.rc, 1)
        self.assertIn("already runs", again.err)
        self.wait_health({"vm1": "up", "vm2": "up", "vm3": "up"})  # first probes come within a second
        pid = self.engine_status()["engine"]["pid"]
        r = self.ok("engine", "stop")
        self.assertIn(str(pid), r.out)
        self.assertFalse(running(pid))
        self.assertFalse(os.path.exists(self.state + ".engine.sock"))
        with self.assertRaises(OSError):
            http_get(self.port, timeout=2)
        log = self.read(self.state + ".engine.log")
        for event in ("listening on tcp", "is up", "engine stopped"):
            self.assertIn(event, log)

    def test_sigusr1_reopens_the_log_so_logrotate_can_move_it(self):
        self.farm()
        self.start_engine()
        log = self.state + ".engine.log"
        os.rename(log, log + ".1")
        os.kill(self.engine_status()["engine"]["pid"], signal.SIGUSR1)
        wait_until(lambda: os.path.exists(log) and "log reopened on SIGUSR1" in self.read(log), timeout=5,
                   what="a new log at the old name")
        self.assertIn("engine started", self.read(log + ".1"))
        self.assertEqual(os.stat(log).st_mode & 0o777, 0o640)
        # What the engine logs next goes to the new file.
        self.ok("endpoint", "add", "vm1", "--name", "extra", "--protocol", "tcp", "--public-port", str(free_port()),
                "--private-port", "9")
        wait_until(lambda: "generation 2" in self.read(log), timeout=5, what="the reload logged in the new file")
        self.assertNotIn("generation 2", self.read(log + ".1"))

    def test_a_stale_pid_file_does_not_block_a_start(self):
        self.farm()
        self.write("999999\n", self.state + ".engine.pid")
        self.start_engine()
        self.assertIn("stale pid file", self.read(self.state + ".engine.log"))

    def test_join_and_leave_apply_live_without_dropping_established_connections(self):
        b = self.farm()
        self.start_engine()
        self.wait_health({"vm1": "up", "vm2": "up", "vm3": "up"})
        held = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        self.addCleanup(held.close)
        held.request("GET", "/")
        first = held.getresponse().read().decode().strip()
        self.add_vm("vm4")
        self.ok("lbset", "join", "webset", "--vm", "vm4")
        leaver = next(v for v in ("vm1", "vm2", "vm3") if v != first)
        self.ok("lbset", "leave", "webset", "--vm", leaver)
        expected = {v: "up" for v in ("vm1", "vm2", "vm3", "vm4") if v != leaver}
        self.wait_health(expected)
        # `status` shows the file's members at once; the engine follows within a second.
        in_force = lambda: {m["vm"] for m in self.admin_json()["members"] if m["lbset"] == "webset"}
        wait_until(lambda: in_force() == set(expected), what="the engine to apply the join and the leave")
        # The connection made before the change still works, on its member.
        held.request("GET", "/")
        self.assertEqual(held.getresponse().read().decode().strip(), first)
        before = b[leaver].requests
        got = collections.Counter(http_get(self.port) for _ in range(120))
        self.assertIn("vm4", got)
        self.assertNotIn(leaver, got)
        self.assertEqual(b[leaver].requests, before)

    def test_a_taken_port_does_not_hold_back_the_rest_of_a_change_and_is_retried(self):
        b = self.farm()
        self.start_engine()
        self.wait_health({"vm1": "up", "vm2": "up", "vm3": "up"})
        taken = free_port()
        squatter = socket.socket()
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        self.ok("endpoint", "add", "vm1", "--name", "other", "--protocol", "tcp", "--public-port", str(taken),
                "--private-port", str(self.bport))
        self.add_vm("vm4")
        self.ok("lbset", "join", "webset", "--vm", "vm4")
        # The join is in force although the other endpoint's port is taken...
        wait_until(lambda: "vm4" in {http_get(self.port) for _ in range(12)}, what="vm4 to get requests")
        unbound = self.admin_json()["unbound"]
        self.assertEqual([u["address"] for u in unbound], [f"tcp 127.0.0.1:{taken}"])
        self.assertIn("in use", unbound[0]["error"])
        self.assertIn(f"127.0.0.1:{taken}", self.engine_status()["engine"]["error"])
        # ...and the endpoint starts listening once its port is free.
        squatter.close()
        wait_until(lambda: self.admin_json()["unbound"] == [], timeout=15, what="the port to be retried")
        self.assertIn(http_get(taken), b)

    def test_a_broken_state_file_keeps_the_last_good_configuration(self):
        self.farm()
        self.start_engine()
        self.wait_health({"vm1": "up", "vm2": "up", "vm3": "up"})
        gen = self.admin_json()["generation"]
        good = self.read()
        self.write(good.replace("public_port = ", "public_port = \"oops\" #", 1))
        r = self.azlb("engine", "reload")
        self.assertEqual(r.rc, 2, r)
        self.assertRegex(r.err, r"state\.toml:\d+:\d+:")
        self.assertIn(http_get(self.port), self.backends)
        st = self.admin_json()
        self.assertEqual(st["generation"], gen)
        self.assertFalse(st["last_reload"]["ok"])
        self.write(good)
        wait_until(lambda: self.admin_json()["last_reload"]["ok"], what="the fixed file to load")

    def test_a_new_endpoint_starts_listening_and_a_removed_one_stops(self):
        self.farm()
        self.start_engine()
        extra = free_port()
        self.ok("endpoint", "add", "vm2", "--name", "direct", "--protocol", "tcp", "--public-port", str(extra),
                "--private-port", str(self.bport))
        wait_until(lambda: self._get(extra) == "vm2", what="the new endpoint to serve")
        self.ok("endpoint", "remove", "vm2", "direct")
        wait_until(lambda: self._get(extra) is None, what="the removed endpoint to stop")

    def test_deleting_a_set_exposes_no_member_and_endpoint_set_publishes_one(self):
        self.farm()
        self.start_engine()
        self.wait_health({"vm1": "up", "vm2": "up", "vm3": "up"})
        self.assertIn(http_get(self.port), self.backends)
        listening = lambda: {u["address"] for u in self.admin_json()["listeners"]}
        before = listening()
        r = self.ok("lbset", "delete", "webset", "-o", "json").json()
        self.assertEqual([(e["vm"], e["removed"], e["published"], e["public_port"]) for e in r["endpoints"]],
                         [(f"vm{i}", False, False, None) for i in (1, 2, 3)])
        self.assertIn("unpublished", r["message"])
        # The contract keeps the endpoints on their VMs; none is reachable, on the set's port or any other.
        for i in (1, 2, 3):
            eps = self.ok("endpoint", "list", f"vm{i}", "-o", "json").json()["endpoints"]
            self.assertEqual([(e["name"], e["public_port"], e["lbset"]) for e in eps], [("http", None, None)])
        self.assertIn("http  tcp       -", self.ok("endpoint", "list", "vm2").out)
        wait_until(lambda: self._get(self.port) is None, what="the set's port to stop")
        self.assertTrue(listening() < before, listening())
        # Published when asked, on the port asked; served at once.
        extra = free_port()
        r = self.ok("endpoint", "set", "vm2", "http", "--public-port", str(extra))
        self.assertIn("published", r.out)
        wait_until(lambda: self._get(extra) == "vm2", what="the published endpoint to serve")
        self.fails(4, "endpoint", "set", "vm3", "http", "--public-port", str(extra), mentions=str(extra))
        self.fails(2, "endpoint", "set", "vm3", "http", "--public-port", "0", mentions="0")
        # An unpublished endpoint joins a set as any other and takes the set's port.
        self.ok("lbset", "create", "again", "--vm", "vm2", "--endpoint", "http")
        self.ok("lbset", "join", "again", "--vm", "vm3")
        self.assertEqual(self.ok("endpoint", "show", "vm3", "http", "-o", "json").json()["public_port"], extra)
        self.fails(4, "lbset", "create", "third", "--vm", "vm1", "--endpoint", "http",
                   mentions="azlb endpoint set vm1 http --public-port")

    def _get(self, port):
        try:
            return http_get(port, timeout=2)
        except OSError:
            return None


class Check(EngineCase):
    """`azlb engine check`: what `haproxy -c` and `nginx -t` give their users."""

    def test_a_valid_state_lists_what_the_engine_would_listen_on(self):
        self.farm()
        self.ok("endpoint", "add", "vm1", "--name", "dns", "--protocol", "udp", "--public-port", str(self.port),
                "--private-port", "5353")
        r = self.ok("engine", "check")
        self.assertIn("is valid: 2 listeners, 4 members, 3 probed", r.out)
        self.assertIn(f"tcp 127.0.0.1:{self.port}", r.out)
        self.assertIn("web/webset", r.out)
        j = self.ok("-o", "json", "engine", "check").json()
        self.assertTrue(j["valid"])
        self.assertFalse(j["engine_running"])
        self.assertEqual(list(j["listeners"][0]), ["protocol", "address", "port", "route", "members", "distribution",
                                                   "acl_rules", "dataplane"])  # in order, as written
        by_route = {l["route"]: l for l in j["listeners"]}
        self.assertEqual(by_route["web/webset"]["members"], 3)
        self.assertEqual((by_route["web/webset"]["protocol"], by_route["web/webset"]["port"]), ("tcp", self.port))
        self.assertEqual(by_route["web/vm1/dns"]["protocol"], "udp")
        self.assertEqual(self.ok("-q", "engine", "check").out, "")
        # Its engine running, the ports are its own: still valid.
        self.start_engine()
        self.assertTrue(self.ok("-o", "json", "engine", "check").json()["engine_running"])

    def test_a_broken_file_fails_and_a_foreign_address_or_a_taken_port_is_named(self):
        self.farm()
        squatter = socket.socket()
        squatter.bind(("127.0.0.1", self.port))
        squatter.listen()
        # A busy port (or an address not this host's) is named, as engine
        # start would: it serves the rest and retries.
        r = self.ok("engine", "check")
        self.assertIn(f"warning: cannot bind tcp 127.0.0.1:{self.port}", r.err)
        self.assertIn("in use", r.err)
        self.assertEqual([u["address"] for u in self.ok("-o", "json", "engine", "check").json()["unbound"]],
                         [f"tcp 127.0.0.1:{self.port}"])
        squatter.close()
        self.assertEqual(self.ok("engine", "check").err, "")
        # 192.0.2.1 (TEST-NET-1) is no address of this host.
        self.ok("service", "create", "far", "--vip", "192.0.2.1", "--subnet", "10.99.0.0/24")
        self.ok("vm", "create", "farvm", "--cloud-service", "far", "--no-default-endpoints")
        self.ok("endpoint", "add", "farvm", "--name", "x", "--protocol", "tcp", "--public-port", "9",
                "--private-port", "9")
        self.assertIn("192.0.2.1:9", self.ok("engine", "check").err)
        self.write(self.read().replace('vip = "192.0.2.1"', 'vip = "192.0.2.300"'))
        self.fails(2, "engine", "check", mentions="192.0.2.300")
