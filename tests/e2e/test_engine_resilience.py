"""The engine on a big host and through what other programs and the host do
to it: thousands of descriptors at start, a NAT table deleted by another
program, a freeze (SIGSTOP), a crowd of idle admin clients, stray signals."""
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time
import unittest

from backends import HttpBackend, TcpBackend, UdpEcho, free_port, http_get, random_subnet, wait_until
from engine_case import EngineCase
from harness import TIME_SCALE
from test_engine_nat import Member, ask, nat_ready, nft


def many_endpoints(path, n, vip, base_port, private_port, nat_port=None, nat_private_port=None):
    """A state of `n` plain tcp endpoints on `vip` (100 per VM, every one to
    private_port on its VM), and with nat_port one `nat` service besides."""
    out = ["schema_version = 2\n",
           f'[[cloud_service]]\nname = "web"\nvip = "{vip}"\nsubnet = "127.0.9.0/24"\n']
    if nat_port:
        out.append('[[cloud_service]]\nname = "fast"\nvip = "127.0.0.1"\nsubnet = "127.0.10.0/24"\n'
                   'dataplane = "nat"\n')
    for v in range((n + 99) // 100):
        out.append(f'[[vm]]\nname = "vm{v}"\ncloud_service = "web"\nprivate_ip = "127.0.9.{v + 4}"\n')
        for i in range(v * 100, min(n, v * 100 + 100)):
            out.append(f'  [[vm.endpoint]]\n  name = "e{i}"\n  protocol = "tcp"\n  public_port = {base_port + i}\n'
                       f'  private_port = {private_port}\n')
    if nat_port:
        out.append('[[vm]]\nname = "natvm"\ncloud_service = "fast"\nprivate_ip = "127.0.10.4"\n'
                   f'  [[vm.endpoint]]\n  name = "app"\n  protocol = "tcp"\n  public_port = {nat_port}\n'
                   f'  private_port = {nat_private_port}\n')
    with open(path, "w") as f:
        f.write("".join(out))


class BigHost(EngineCase):
    """A 16-core host: 16 workers, each with a listener per endpoint, start
    with thousands of descriptors open. libnftables (select(): descriptors
    below 1024 only) must never see one of them."""

    def big_state(self, nat):
        vip = f"127.{random.randint(20, 250)}.{random.randint(1, 250)}.1"
        self.vip, self.base, self.bport = vip, random.randint(10000, 31000), free_port()  # below the ephemeral ports
        self.nat_port, self.nat_bport = (free_port(), free_port()) if nat else (None, None)
        many_endpoints(self.state, 1000, vip, self.base, self.bport, self.nat_port, self.nat_bport)
        backend = HttpBackend("127.0.9.4", self.bport, "vm0")
        self.addCleanup(backend.stop)
        last = HttpBackend("127.0.9.13", self.bport, "vm9")
        self.addCleanup(last.stop)

    def start_16(self):
        r = self.ok("engine", "start", "--threads", "16", timeout=60 * TIME_SCALE)
        self.addCleanup(self.check_engine_log)
        self.addCleanup(self.azlb, "engine", "stop")
        return r

    def serves_first_and_last(self):
        self.assertEqual(http_get(self.base, host=self.vip), "vm0")
        self.assertEqual(http_get(self.base + 999, host=self.vip), "vm9")
        log = self.read(self.state + ".engine.log")
        self.assertNotIn("FD_SETSIZE", log)
        self.assertEqual(len(self.admin_json()["listeners"]), 1000)

    def test_1000_endpoints_on_16_threads_start_and_serve(self):
        self.big_state(nat=False)
        r = self.start_16()
        self.assertIn("1000 listeners", r.out)
        self.serves_first_and_last()

    def test_2000_endpoints_on_16_threads_start_within_the_descriptor_limit(self):
        """A socket per worker for each of 2,000 addresses would be 32,000
        descriptors, over the 20,000 a process may have here: past a quarter
        of the limit an address gets one socket that every worker accepts from."""
        vip = f"127.{random.randint(20, 250)}.{random.randint(1, 250)}.1"
        base, bport = random.randint(10000, 29000), free_port()
        many_endpoints(self.state, 2000, vip, base, bport)
        for ip, name in (("127.0.9.4", "vm0"), ("127.0.9.23", "vm19")):
            b = HttpBackend(ip, bport, name)
            self.addCleanup(b.stop)
        r = self.ok("engine", "start", "--threads", "16", timeout=60 * TIME_SCALE, nofile=20000)
        self.addCleanup(self.check_engine_log)
        self.addCleanup(self.azlb, "engine", "stop")
        self.assertIn("2000 listeners", r.out)
        for _ in range(8):  # whichever worker takes the connection
            self.assertEqual(http_get(base, host=vip), "vm0")
            self.assertEqual(http_get(base + 1999, host=vip), "vm19")
        pid = int(self.read(self.state + ".engine.pid"))
        self.assertLess(len(os.listdir(f"/proc/{pid}/fd")), 10000)
        self.assertIn("one socket for every worker", self.read(self.state + ".engine.log"))
        limits = self.admin_json()["limits"]
        self.assertGreater(limits["descriptors_for_connections"], 10000)

    def test_more_addresses_than_the_limit_of_open_files_fail_the_start_saying_so(self):
        many_endpoints(self.state, 100, "127.0.0.1", random.randint(10000, 29000), free_port())
        r = self.azlb("engine", "start", "--threads", "1", nofile=64)
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(len(r.err.strip().splitlines()), 1, r.err)
        self.assertIn("100 listening addresses do not fit in the engine's limit of open files (64", r.err)

    def test_shared_listeners_serve_tcp_and_keep_a_udp_clients_datagrams_in_one_flow(self):
        """Under a low limit most addresses get one socket: a TCP one every
        worker accepts from, a UDP one a single worker serves, so that a
        client's datagrams all go through the same flow to its member."""
        net = random_subnet()
        tports, uports = [free_port() for _ in range(8)], [free_port() for _ in range(8)]
        bport, uport = free_port(), free_port()
        lines = ["schema_version = 2\n", f'[[cloud_service]]\nname = "web"\nvip = "127.0.0.1"\nsubnet = "{net}.0/24"\n',
                 f'[[vm]]\nname = "vm1"\ncloud_service = "web"\nprivate_ip = "{net}.4"\n']
        for i, p in enumerate(tports):
            lines.append(f'  [[vm.endpoint]]\n  name = "t{i}"\n  protocol = "tcp"\n  public_port = {p}\n'
                         f'  private_port = {bport}\n')
        for i, p in enumerate(uports):
            lines.append(f'  [[vm.endpoint]]\n  name = "u{i}"\n  protocol = "udp"\n  public_port = {p}\n'
                         f'  private_port = {uport}\n')
        self.write("".join(lines))
        web = HttpBackend(f"{net}.4", bport, "vm1")
        self.addCleanup(web.stop)
        member = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        member.bind((f"{net}.4", uport))
        self.addCleanup(member.close)
        peers = []

        def answer():
            while True:
                try:
                    data, peer = member.recvfrom(100)
                except OSError:
                    return
                peers.append(peer)
                member.sendto(b"vm1: " + data, peer)
        threading.Thread(target=answer, daemon=True).start()
        self.ok("engine", "start", "--threads", "16", nofile=256)
        self.addCleanup(self.check_engine_log)
        self.addCleanup(self.azlb, "engine", "stop")
        self.assertIn("one socket for every worker", self.read(self.state + ".engine.log"))
        for p in tports:
            for _ in range(4):
                self.assertEqual(http_get(p), "vm1")
        for p in uports:
            client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.addCleanup(client.close)
            client.settimeout(2)
            del peers[:]
            for i in range(5):
                client.sendto(b"d%d" % i, ("127.0.0.1", p))
                data, src = client.recvfrom(100)
                self.assertEqual((data, src), (b"vm1: d%d" % i, ("127.0.0.1", p)))
            self.assertEqual(len(set(peers)), 1, f"port {p}: the member saw {set(peers)}")

    @unittest.skipUnless(nat_ready(), "needs root and nftables with NAT (CI runs as root)")
    def test_1000_endpoints_on_16_threads_with_a_nat_service_and_a_table_left_over(self):
        self.big_state(nat=True)
        member = Member("127.0.10.4", self.nat_bport, "natvm")
        self.addCleanup(member.stop)
        self.start_16()
        self.serves_first_and_last()
        self.assertEqual(ask(self.nat_port)[0], "natvm")
        table = self.admin_json()["nat"]["table"]
        self.addCleanup(nft, "delete", "table", "inet", table)
        # An engine killed leaves its table; the next one, on a state with no
        # nat service left, removes it, with 16,000 listeners open.
        pid = int(self.read(self.state + ".engine.pid"))
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not os.path.exists(f"/proc/{pid}"), timeout=5, what="the engine's end")
        self.assertEqual(nft("list", "table", "inet", table).returncode, 0)
        many_endpoints(self.state, 1000, self.vip, self.base, self.bport)
        self.start_16()
        self.serves_first_and_last()
        self.assertNotEqual(nft("list", "table", "inet", table).returncode, 0, "the table left over is still there")
        self.assertIn(f"NAT table {table} removed", self.read(self.state + ".engine.log"))


@unittest.skipUnless(nat_ready(), "needs root and nftables with NAT (CI runs as root)")
class NatTableRestored(EngineCase):
    """Another program deletes or changes the engine's table (an admin's nft
    flush ruleset, a firewall reload): the engine puts it back within
    seconds, says so in its log and counts it; status never claims a table
    the kernel does not hold."""

    def setUp(self):
        super().setUp()
        net = random_subnet()
        self.ok("service", "create", "fast", "--subnet", f"{net}.0/24", "--dataplane", "nat")
        self.ok("vm", "create", "vm1", "--cloud-service", "fast", "--no-default-endpoints")
        self.port, bport = free_port(), free_port()
        m = Member(f"{net}.4", bport, "vm1")
        self.addCleanup(m.stop)
        self.ok("endpoint", "add", "vm1", "--name", "app", "--protocol", "tcp", "--public-port", str(self.port),
                "--private-port", str(bport))
        self.start_engine()
        self.table = self.admin_json()["nat"]["table"]
        self.assertEqual(ask(self.port)[0], "vm1")

    def restores(self):
        metrics = self.admin("/metrics")[1]
        line = next(l for l in metrics.splitlines() if l.startswith("azlb_nat_table_restores_total "))
        return int(line.split()[1])

    def test_a_deleted_table_comes_back_and_the_vip_serves_again(self):
        self.assertEqual(nft("delete", "table", "inet", self.table).returncode, 0)
        # Asked at once, status must not say the table is in force.
        st = self.admin_json()
        self.assertTrue(st["nat"]["ok"])
        self.assertEqual(nft("list", "table", "inet", self.table).returncode, 0, "status claimed a missing table")
        self.assertEqual(st["nat"]["restores"], 1)
        self.assertEqual(ask(self.port)[0], "vm1")
        self.assertIn(f"NAT table {self.table} was deleted or changed by another program",
                      self.read(self.state + ".engine.log"))

    def test_a_table_emptied_by_another_program_is_noticed_without_asking(self):
        self.assertEqual(nft("flush", "table", "inet", self.table).returncode, 0)
        wait_until(lambda: self.restores() >= 1, timeout=5 * TIME_SCALE, what="the table's restore")
        self.assertEqual(ask(self.port)[0], "vm1")
        # Changes to other tables are not ours: nothing is restored for them.
        before = self.restores()
        self.addCleanup(nft, "delete", "table", "inet", "azlb_test_other")  # gone already, unless a step failed
        nft("add", "table", "inet", "azlb_test_other")
        nft("delete", "table", "inet", "azlb_test_other")
        time.sleep(2.5)
        self.assertEqual(self.restores(), before)
        # One rule deleted (by its handle) is a change of ours too.
        listing = nft("-a", "list", "table", "inet", self.table).stdout
        chain, handle = self.rules_with_handles(listing)[0]
        self.assertEqual(nft("delete", "rule", "inet", self.table, chain, "handle", handle).returncode, 0)
        wait_until(lambda: self.restores() > before, timeout=5 * TIME_SCALE, what="the restore after a rule deleted")
        self.assertEqual(ask(self.port)[0], "vm1")

    @staticmethod
    def rules_with_handles(listing):
        """(chain, handle) of each rule in `nft -a list table` output."""
        out, chain = [], None
        for line in listing.splitlines():
            words = line.split()
            if words[:1] == ["chain"]:
                chain = words[1]
            elif chain and "# handle" in line and not line.strip().startswith(("chain", "type", "set", "map")):
                out.append((chain, line.rsplit("# handle", 1)[1].strip()))
        return out


class Frozen(EngineCase):
    def test_a_frozen_engine_keeps_its_healthy_members_up_and_serves_the_clients_that_waited(self):
        self.farm(3)
        self.start_engine()
        self.wait_health({"vm1": "up", "vm2": "up", "vm3": "up"})
        pid = int(self.read(self.state + ".engine.pid"))
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(4)  # twice the probe timeout (2 s)
            results = []
            def client():
                try:
                    results.append(http_get(self.port, timeout=15))
                except OSError as e:
                    results.append(e)
            clients = [threading.Thread(target=client) for _ in range(5)]
            for c in clients:
                c.start()
            time.sleep(0.5)  # they wait in the backlog
        finally:
            os.kill(pid, signal.SIGCONT)
        for c in clients:
            c.join()
        self.assertTrue(all(r in self.backends for r in results), results)
        # The time it did not run proves nothing: no member goes down.
        until = time.monotonic() + 1.5
        while time.monotonic() < until:
            self.assertEqual(self.member_health("webset"), {"vm1": "up", "vm2": "up", "vm3": "up"})
            time.sleep(0.1)
        log = self.read(self.state + ".engine.log")
        self.assertNotIn(" is down", log)
        self.assertIn("the prober did not run for", log)
        # A member that really fails is still taken out.
        self.backends["vm2"].healthy = False
        self.wait_health({"vm1": "up", "vm2": "down", "vm3": "up"}, timeout=5 * TIME_SCALE)


class AdminCrowd(EngineCase):
    def test_2000_idle_admin_clients_leave_status_and_reload_working(self):
        self.farm(2)
        self.start_engine()
        self.wait_health({"vm1": "up", "vm2": "up"})
        idle = []
        self.addCleanup(lambda: [s.close() for s in idle])
        for _ in range(2000):
            s = socket.socket(socket.AF_UNIX)
            s.setblocking(False)
            try:
                s.connect(self.state + ".engine.sock")
            except BlockingIOError:
                pass  # the backlog is full: it waits, or fails later; either way it holds a descriptor
            except OSError:
                s.close()
                continue
            idle.append(s)
        self.assertGreater(len(idle), 1000)
        st = self.ok("status", "-o", "json").json()
        self.assertTrue(st["engine"]["running"], st["engine"])
        self.assertNotIn("error", st["engine"])
        self.assertEqual(self.member_health("webset"), {"vm1": "up", "vm2": "up"})
        self.ok("engine", "reload")


class DeepFile(EngineCase):
    """A hand edit nested a million levels deep (inline tables, a dotted key,
    a header, arrays) is refused with its place by every command, and a
    running engine keeps its last good configuration."""

    DEEP = {
        "inline tables": "x = " + "{a = " * 1000000 + "1" + "}" * 1000000 + "\n",
        "dotted key": "a." * 1000000 + "a = 1\n",
        "header": "[" + "a." * 100000 + "a]\n",
        "arrays": "x = " + "[" * 100000 + "]" * 100000 + "\n",
    }

    def test_every_command_refuses_it_with_its_place_and_the_engine_serves_on(self):
        self.farm(2)
        self.start_engine()
        self.wait_health({"vm1": "up", "vm2": "up"})
        good = self.read()
        pid = int(self.read(self.state + ".engine.pid"))
        for what, deep in self.DEEP.items():
            with self.subTest(what):
                self.write(good + deep)
                for args in (("engine", "check"), ("vm", "create", "vm9", "--cloud-service", "web")):
                    r = self.fails(2, *args, mentions="nested deeper than 64 levels")
                    self.assertRegex(r.err, r"state\.toml:\d+:\d+: ")
                    self.assertLess(len(r.err), 500)
                # status still shows what the running engine serves, then the file's error.
                r = self.azlb("status")
                self.assertEqual(r.rc, 2, r)
                self.assertIn("nested deeper than 64 levels", r.err)
                self.assertIn(f"the engine (pid {pid}) serves its last good configuration", r.out)
                self.assertEqual(len(re.findall(r"^  web +webset +vm[12] +http .* up ", r.out, re.M)), 2, r.out)
                r = self.azlb("engine", "reload")
                self.assertEqual(r.rc, 2, r)
                self.assertIn("nested deeper", r.err)
                os.kill(pid, 0)  # still there
                self.assertIn(http_get(self.port), self.backends)
        self.write(good)
        self.ok("engine", "reload")
        self.assertEqual(int(self.read(self.state + ".engine.pid")), pid)

    def test_a_long_name_is_quoted_in_a_short_message(self):
        r = self.fails(2, "vm", "create", "v" * 100000, "--cloud-service", "web")
        self.assertIn("(100000 bytes)", r.err)
        self.assertLess(len(r.err), 500)


class StraySignals(EngineCase):
    def test_signals_that_would_end_the_process_are_logged_and_ignored_and_quit_stops_cleanly(self):
        self.farm(1, probe=())
        self.start_engine()
        pid = int(self.read(self.state + ".engine.pid"))
        stray = [signal.SIGUSR2, signal.SIGALRM, signal.SIGVTALRM, signal.SIGPROF, signal.SIGIO, signal.SIGPWR,
                 signal.SIGSTKFLT, signal.SIGXCPU, signal.SIGTRAP, signal.SIGSEGV, signal.SIGBUS, signal.SIGSYS,
                 signal.SIGRTMIN, signal.SIGRTMIN + 5, signal.SIGRTMAX]
        for sig in stray:
            for _ in range(3):
                os.kill(pid, sig)
            time.sleep(0.05)
            self.assertTrue(os.path.exists(f"/proc/{pid}"), f"signal {sig} ended the engine")
            self.assertEqual(http_get(self.port), "vm1")
        log = self.read(self.state + ".engine.log")
        self.assertIn("ignoring signal 12 (User defined signal 2)", log)
        self.assertIn("ignoring signal 14 (Alarm clock)", log)
        os.kill(pid, signal.SIGQUIT)
        wait_until(lambda: not os.path.exists(self.state + ".engine.pid"), timeout=10, what="the pid file's removal")
        wait_until(lambda: not os.path.exists(f"/proc/{pid}") or "Z" in open(f"/proc/{pid}/stat").read().split()[2],
                   timeout=10, what="the engine's end")
        self.assertFalse(os.path.exists(self.state + ".engine.sock"))
        self.assertIn("stopping on Quit", self.read(self.state + ".engine.log"))


class LogWords(EngineCase):
    def test_a_tcp_probe_is_called_one_counts_agree_and_a_failed_start_is_logged_once(self):
        self.farm(1, probe=("--probe-protocol", "tcp", "--probe-interval", "1", "--probe-timeout", "2"))
        r = self.start_engine()
        self.assertIn("1 listener)", r.out)
        self.wait_health({"vm1": "up"})
        log = self.read(self.state + ".engine.log")
        self.assertIn(f"(tcp probe {self.backends['vm1'].server.server_address[0]}:{self.bport}: connected)", log)
        self.assertNotIn("probe http://", log)
        self.assertIn("1 listener, 1 probed member", log)
        self.ok("engine", "stop")
        r = self.azlb("engine", "start", "--access-log", self.dir)  # a folder: this start fails
        self.assertEqual(r.rc, 1, r)
        reason = r.err.strip().removeprefix("azlb: ")
        after = self.read(self.state + ".engine.log")[len(log):]
        self.assertEqual(after.count(reason), 1, after)


if __name__ == "__main__":
    unittest.main()
