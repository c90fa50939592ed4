"""The engine under clients that never read, flows that outlive their
listener or member, oversized datagrams, a full flow table, a process at its
descriptor limit, a deleted state file, a path that is not UTF-8, and files
planted by another user. Each test fails on the engine before the fixes."""
import json
import os
import socket
import stat
import time
import unittest

from harness import TIME_SCALE
from backends import (Downloader, HttpBackend, UdpEcho, UdpSizer, cpu_seconds, engine_pid, free_port, http_get,
                      random_subnet, rss_kib, wait_until)
from engine_case import FAST_PROBE, EngineCase


def udp_ask(port, msg, source_port=None, timeout=3):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.settimeout(timeout)
        if source_port:
            s.bind(("127.0.0.1", source_port))
        s.sendto(msg, ("127.0.0.1", port))
        return s.recvfrom(1 << 17)[0].decode()


class Hostile(EngineCase):
    def service(self, n=2):
        self.net = random_subnet()
        self.ok("service", "create", "svc", "--subnet", f"{self.net}.0/24")
        for i in range(1, n + 1):
            self.ok("vm", "create", f"vm{i}", "--cloud-service", "svc", "--no-default-endpoints")
        return [f"{self.net}.{3 + i}" for i in range(1, n + 1)]

    def metrics(self):
        code, body = self.admin("/metrics")
        self.assertEqual(code, 200)
        return body

    def test_a_thousand_downloads_that_never_read_starve_no_other_client(self):
        ips = self.service(2)
        dl_port, web_port, bport = free_port(), free_port(), free_port()
        dl = Downloader(ips[0], bport)
        web = HttpBackend(ips[1], bport, "web")
        self.addCleanup(dl.stop)
        self.addCleanup(web.stop)
        self.ok("endpoint", "add", "vm1", "--name", "dl", "--protocol", "tcp", "--public-port", str(dl_port),
                "--private-port", str(bport))
        self.ok("endpoint", "add", "vm2", "--name", "web", "--protocol", "tcp", "--public-port", str(web_port),
                "--private-port", str(bport))
        # One worker: 256 buffers and 64 pipes for everybody.
        self.ok("engine", "start", "--threads", "1")
        self.addCleanup(self.check_engine_log)
        self.addCleanup(self.azlb, "engine", "stop")
        pid = engine_pid(self.state)
        rss_before = rss_kib(pid)
        stalled = []
        self.addCleanup(lambda: [s.close() for s in stalled])
        for _ in range(1000):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", dl_port))
            stalled.append(s)
        wait_until(lambda: dl.connections >= 1000, timeout=30, what="1000 downloads to reach the backend")
        time.sleep(2)  # every download fills what it can
        for listener in (web_port, dl_port):
            started = time.monotonic()
            if listener == web_port:
                self.assertEqual(http_get(web_port, timeout=5), "web")
            else:
                # A download's answer: its first 64 KiB arrive (the rest is the client's own pace).
                with socket.create_connection(("127.0.0.1", dl_port), timeout=5) as s:
                    got = 0
                    while got < 1 << 16:
                        got += len(s.recv(1 << 16))
            # Starved, a client waits for ever (the 5 s timeout); served, it takes
            # milliseconds, up to a second or so while other suites load both cores.
            self.assertLess(time.monotonic() - started, 2.0 * TIME_SCALE, f"a fresh client of port {listener} waited")
        grown = rss_kib(pid) - rss_before
        # Each stalled download holds at most its unsent bytes (a buffer or two), not the pool.
        self.assertLess(grown, 1000 * 200, f"engine RSS grew by {grown} KiB for 1000 stalled downloads")
        stalled_count = self.admin_json()["listeners"]
        self.assertTrue(any(l["stalled"] > 0 for l in stalled_count), stalled_count)

    def test_a_removed_udp_endpoints_flows_do_not_capture_a_new_endpoints_traffic(self):
        ips = self.service(2)
        p1, p2, bport = free_port(), free_port(), free_port()
        for i, ip in enumerate(ips, 1):
            b = UdpEcho(ip, bport, f"vm{i}")
            self.addCleanup(b.stop)
        self.ok("endpoint", "add", "vm1", "--name", "old", "--protocol", "udp", "--public-port", str(p1),
                "--private-port", str(bport))
        self.ok("engine", "start", "--threads", "1")
        self.addCleanup(self.check_engine_log)
        self.addCleanup(self.azlb, "engine", "stop")
        client = free_port()
        self.assertEqual(udp_ask(p1, b"a", client), "vm1: a")
        self.ok("endpoint", "remove", "vm1", "old")
        self.ok("endpoint", "add", "vm2", "--name", "new", "--protocol", "udp", "--public-port", str(p2),
                "--private-port", str(bport))
        wait_until(lambda: any(l["address"].endswith(f":{p2}") for l in self.admin_json()["listeners"]),
                   what="the new endpoint to listen")
        # Same client address and port, new endpoint: it belongs to vm2.
        self.assertEqual(udp_ask(p2, b"b", client), "vm2: b")

    def udp_set(self, probe=("--no-probe",)):
        ips = self.service(2)
        port, bport = free_port(), free_port()
        self.echo = {}
        for i, ip in enumerate(ips, 1):
            b = UdpEcho(ip, bport, f"vm{i}")
            self.addCleanup(b.stop)
        self.ok("endpoint", "add", "vm1", "--name", "dns", "--protocol", "udp", "--public-port", str(port),
                "--private-port", str(bport), "--lbset", "dnsset", *probe)
        self.ok("lbset", "join", "dnsset", "--vm", "vm2")
        return ips, port, bport

    def test_a_udp_flow_moves_when_its_member_leaves_the_set(self):
        _, port, _ = self.udp_set()
        self.ok("engine", "start", "--threads", "1")
        self.addCleanup(self.check_engine_log)
        self.addCleanup(self.azlb, "engine", "stop")
        client = free_port()
        first = udp_ask(port, b"q", client).split(":")[0]
        other = "vm2" if first == "vm1" else "vm1"
        self.ok("lbset", "leave", "dnsset", "--vm", first)
        wait_until(lambda: len([m for m in self.admin_json()["members"] if m["lbset"] == "dnsset"]) == 1,
                   what="the member to leave")
        for _ in range(3):
            self.assertEqual(udp_ask(port, b"q", client), f"{other}: q")

    def test_a_udp_flow_moves_when_its_member_goes_down(self):
        ips = self.service(2)
        port, bport, hport = free_port(), free_port(), free_port()
        health = {}
        for i, ip in enumerate(ips, 1):
            b = UdpEcho(ip, bport, f"vm{i}")
            self.addCleanup(b.stop)
            health[f"vm{i}"] = h = HttpBackend(ip, hport, f"vm{i}")
            self.addCleanup(h.stop)
        self.ok("endpoint", "add", "vm1", "--name", "dns", "--protocol", "udp", "--public-port", str(port),
                "--private-port", str(bport), "--lbset", "dnsset", "--probe-protocol", "http", "--probe-port",
                str(hport), "--probe-path", "/health", "--probe-interval", "1", "--probe-timeout", "2")
        self.ok("lbset", "join", "dnsset", "--vm", "vm2")
        self.ok("engine", "start", "--threads", "1")
        self.addCleanup(self.check_engine_log)
        self.addCleanup(self.azlb, "engine", "stop")
        self.wait_health({"vm1": "up", "vm2": "up"}, lbset="dnsset")
        client = free_port()
        first = udp_ask(port, b"q", client).split(":")[0]
        other = "vm2" if first == "vm1" else "vm1"
        health[first].healthy = False
        self.wait_health({first: "down", other: "up"}, lbset="dnsset")
        self.assertEqual(udp_ask(port, b"q", client), f"{other}: q")
        moved = sum(m["flows_moved"] for m in self.admin_json()["members"])
        self.assertEqual(moved, 1)

    def udp_endpoint(self, backend):
        """One VM with a UDP endpoint served by `backend`; returns its public port."""
        ips = self.service(1)
        port, bport = free_port(), free_port()
        b = backend(ips[0], bport, "vm1")
        self.addCleanup(b.stop)
        self.ok("endpoint", "add", "vm1", "--name", "udp", "--protocol", "udp", "--public-port", str(port),
                "--private-port", str(bport))
        return port

    def test_datagrams_up_to_the_protocol_maximum_arrive_whole(self):
        port = self.udp_endpoint(UdpSizer)
        self.start_engine()
        for size in (1, 1400, 65392, 65393, 65480, 65507):
            self.assertEqual(udp_ask(port, b"z" * size), f"vm1 {size}")
        self.assertEqual(self.admin_json()["listeners"][0]["truncated"], 0)

    def test_a_full_udp_flow_table_drops_new_clients_and_says_so(self):
        port = self.udp_endpoint(UdpEcho)
        self.fails(2, "engine", "start", "--udp-flows", "0", mentions="0")
        self.ok("engine", "start", "--threads", "1", "--udp-flows", "4")
        self.addCleanup(self.check_engine_log)
        self.addCleanup(self.azlb, "engine", "stop")
        clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(5)]
        for c in clients:
            self.addCleanup(c.close)
            c.settimeout(1)
        for c in clients[:4]:
            c.sendto(b"hi", ("127.0.0.1", port))
            self.assertEqual(c.recvfrom(100)[0], b"vm1: hi")
        clients[4].sendto(b"hi", ("127.0.0.1", port))
        with self.assertRaises(socket.timeout):
            clients[4].recvfrom(100)
        self.assertIn('azlb_listener_flow_table_full_total{listener="udp 127.0.0.1:%d"} 1' % port, self.metrics())
        self.assertIn("flow table is full", self.read(self.state + ".engine.log"))
        # A known client still gets through.
        clients[0].sendto(b"again", ("127.0.0.1", port))
        self.assertEqual(clients[0].recvfrom(100)[0], b"vm1: again")

    def test_a_flood_of_udp_clients_leaves_tcp_half_the_descriptors(self):
        """A datagram's source costs nothing to forge: however many UDP
        clients come, their flows take at most half of the descriptors, and
        TCP clients are still served."""
        port = self.udp_endpoint(UdpEcho)
        tport, bport = free_port(), free_port()
        web = HttpBackend(f"{self.net}.4", bport, "web")
        self.addCleanup(web.stop)
        self.ok("endpoint", "add", "vm1", "--name", "web", "--protocol", "tcp", "--public-port", str(tport),
                "--private-port", str(bport))
        self.ok("engine", "start", "--threads", "1", nofile=160)
        self.addCleanup(self.check_engine_log)
        self.addCleanup(self.azlb, "engine", "stop")
        flood = []
        self.addCleanup(lambda: [c.close() for c in flood])
        for _ in range(150):  # each its own client (source port): a flow each, for the 4-minute idle timeout
            c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            c.sendto(b"x", ("127.0.0.1", port))
            flood.append(c)
        limits = {}

        def flows_settled():
            limits.update(self.admin_json()["limits"])
            return limits["udp_flow_descriptors_in_use"] == limits["descriptors_for_udp_flows"]
        wait_until(flows_settled, timeout=10, what="the UDP flows to take their share")
        held = []
        self.addCleanup(lambda: [c.close() for c in held])
        for _ in range(15):  # fifteen TCP clients at once (30 descriptors), each served
            c = socket.create_connection(("127.0.0.1", tport), timeout=5)
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            held.append(c)
        for c in held:
            got = b""
            while b"\r\n\r\nweb" not in got:
                chunk = c.recv(4096)
                self.assertTrue(chunk, f"a TCP client got {got!r} and then the end")
                got += chunk
        self.assertIn("no descriptor for a new UDP flow", self.read(self.state + ".engine.log"))
        self.assertIn("azlb_udp_flow_descriptors_in_use %d" % limits["descriptors_for_udp_flows"], self.metrics())

    def test_an_idle_engine_of_16_workers_sleeps(self):
        """Sixteen workers with nothing to do use next to no CPU: a worker's
        wait for a batch of completions must never turn into a spin."""
        self.farm(2)
        self.ok("engine", "start", "--threads", "16")
        self.addCleanup(self.check_engine_log)
        self.addCleanup(self.azlb, "engine", "stop")
        self.wait_health({"vm1": "up", "vm2": "up"})
        self.assertEqual(http_get(self.port)[:2], "vm")  # every worker has had its start
        pid = engine_pid(self.state)
        cpu_before, started = cpu_seconds(pid), time.monotonic()
        time.sleep(3)
        cpu = (cpu_seconds(pid) - cpu_before) / (time.monotonic() - started)
        self.assertLess(cpu, 0.05, f"an idle engine used {cpu:.2f} cores")
        # Each worker is named, so that top -H and perf tell them apart.
        names = sorted(open(f"/proc/{pid}/task/{t}/comm").read().strip() for t in os.listdir(f"/proc/{pid}/task"))
        self.assertEqual([n for n in names if n.startswith("azlb-worker")],
                         sorted(f"azlb-worker{i}" for i in range(16)), names)

    def test_at_the_descriptor_limit_the_admin_socket_and_probes_keep_working(self):
        backends = self.farm(2)
        self.start_engine(nofile=64)
        self.wait_health({"vm1": "up", "vm2": "up"})
        pid = engine_pid(self.state)
        crowd = []
        self.addCleanup(lambda: [s.close() for s in crowd])
        for _ in range(80):  # more than the engine has descriptors for
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", self.port))
            crowd.append(s)
        silent_admins = []
        for _ in range(20):  # admin clients that never send a request
            a = socket.socket(socket.AF_UNIX)
            a.connect(self.state + ".engine.sock")
            silent_admins.append(a)
            self.addCleanup(a.close)
        time.sleep(1)
        cpu_before, started = cpu_seconds(pid), time.monotonic()
        # Probes still open sockets: members stay up for three probe timeouts.
        time.sleep(6)
        self.assertEqual(self.member_health("webset"), {"vm1": "up", "vm2": "up"})
        took = time.monotonic() - started
        r = self.ok("status", "-o", "json", timeout=15)
        self.assertTrue(r.json()["engine"]["running"])
        cpu = (cpu_seconds(pid) - cpu_before) / took
        self.assertLess(cpu, 0.5, f"the engine used {cpu:.2f} cores while at its limit (a spin uses 1)")
        # Idle admin connections are closed by the engine.
        silent_admins[0].settimeout(10)
        self.assertEqual(silent_admins[0].recv(10), b"")
        limits = self.admin_json()["limits"]
        self.assertGreater(limits["descriptors"], limits["descriptors_for_connections"])

    def test_deleting_the_state_file_keeps_the_vip_up(self):
        self.farm(2)
        self.start_engine()
        self.wait_health({"vm1": "up", "vm2": "up"})
        os.unlink(self.state)
        time.sleep(1.5)
        self.assertIn(http_get(self.port), ("vm1", "vm2"))
        log = self.read(self.state + ".engine.log")
        self.assertIn("is missing", log)
        st = self.admin_json()
        self.assertFalse(st["last_reload"]["ok"])
        self.assertEqual(len(st["listeners"]), 1)

    def test_emptying_the_state_file_keeps_the_vip_up(self):
        """An editor's truncating write, or `: > state.toml`, is not "serve nothing"."""
        self.farm(2)
        self.start_engine()
        self.wait_health({"vm1": "up", "vm2": "up"})
        with open(self.state, "w"):
            pass
        time.sleep(1.5)
        self.assertIn(http_get(self.port), ("vm1", "vm2"))
        self.assertIn("is empty", self.read(self.state + ".engine.log"))
        st = self.admin_json()
        self.assertFalse(st["last_reload"]["ok"])
        self.assertEqual(len(st["listeners"]), 1)

    def test_a_state_path_that_is_not_utf8_renders_safely(self):
        folder = os.path.join(self.dir, "caf\udcff\udcfe")  # bytes 0xff 0xfe in the file name
        os.mkdir(folder)
        self.state = os.path.join(folder, "state.toml")
        self.farm(1)
        self.start_engine()
        st = self.admin_json()
        self.assertIn("\ufffd", st["state"])
        r = self.ok("status", "-o", "json")
        self.assertTrue(r.json()["engine"]["running"])
        self.assertEqual(http_get(self.port), "vm1")
        self.assertEqual(self.admin("/metrics")[0], 200)

    def test_a_state_path_with_a_line_break_forges_no_log_line(self):
        folder = os.path.join(self.dir, "x\n2026-01-01T00:00:00.000Z azlb[1] FORGED \x1b[31mred")
        os.mkdir(folder)
        self.state = os.path.join(folder, "state.toml")
        self.farm(1)
        self.start_engine()
        self.assertEqual(http_get(self.port), "vm1")
        self.ok("engine", "reload")
        log = self.read(self.state + ".engine.log")
        self.assertIn("\\x0a2026-01-01", log)
        self.assertNotIn("\x1b", log)
        for line in log.splitlines():
            self.assertRegex(line, r"^\d{4}-\d\d-\d\dT[\d:.]+Z azlb\[\d+\] ", "a line the engine did not write")
            self.assertNotIn("azlb[1] FORGED", line.split("] ", 1)[0])

    def test_pid_lock_and_log_files_are_never_followed_through_a_link(self):
        victim = os.path.join(self.dir, "victim")
        with open(victim, "w") as f:
            f.write("secret-contents\n")
        self.farm(1)
        os.symlink(victim, self.state + ".engine.pid")
        self.start_engine()
        self.assertEqual(self.read(victim), "secret-contents\n")
        self.assertFalse(os.path.islink(self.state + ".engine.pid"))
        self.assertNotIn("secret-contents", self.read(self.state + ".engine.log"))
        self.assertEqual(stat.S_IMODE(os.stat(self.state + ".engine.log").st_mode) & 0o007, 0,
                         "the log is world-readable")
        self.ok("engine", "stop")
        for name in (".engine.log", ".engine.lock"):
            os.unlink(self.state + name)
            os.symlink(victim, self.state + name)
            r = self.azlb("engine", "start")
            self.assertEqual(r.rc, 1, r)
            self.assertIn("symbolic link", r.err)
            self.assertEqual(len(r.err.strip().splitlines()), 1, r.err)
            self.assertEqual(self.read(victim), "secret-contents\n")
            os.unlink(self.state + name)
        os.unlink(self.state + ".engine.log")
        os.mkfifo(self.state + ".engine.log")
        self.addCleanup(os.unlink, self.state + ".engine.log")  # before the log check reads it
        r = self.azlb("engine", "start", timeout=10)
        self.assertEqual(r.rc, 1, r)
        self.assertIn("FIFO", r.err)

    @unittest.skipUnless(os.geteuid() == 0, "needs root to make another user's file")
    def test_a_log_that_is_a_hard_link_or_another_users_file_is_refused(self):
        victim = os.path.join(self.dir, "victim")
        with open(victim, "w") as f:
            f.write("their-contents\n")
        os.chmod(victim, 0o644)
        os.chown(victim, 65534, 65534)  # nobody's
        os.chmod(self.dir, 0o755)
        self.farm(1)
        access = os.path.join(self.dir, "access.log")
        for log, args in ((self.state + ".engine.log", ()), (access, ("--access-log", access))):
            with self.subTest(log):
                os.link(victim, log)  # what another local user could plant
                r = self.azlb("engine", "start", *args)
                self.assertEqual(r.rc, 1, r)
                self.assertIn("hard link", r.err)
                self.assertEqual(len(r.err.strip().splitlines()), 1, r.err)
                os.unlink(log)
                with open(log, "w") as f:  # their own file at the log's name
                    f.write("theirs\n")
                os.chown(log, 65534, 65534)
                r = self.azlb("engine", "start", *args)
                self.assertEqual(r.rc, 1, r)
                self.assertIn("belongs to user 65534", r.err)
                os.unlink(log)
                self.assertEqual(self.read(victim), "their-contents\n")
                self.assertEqual(stat.S_IMODE(os.stat(victim).st_mode), 0o644)
        # A log of its own made earlier with a wider mode gets the documented 0640.
        with open(self.state + ".engine.log", "w") as f:
            f.write("")
        os.chmod(self.state + ".engine.log", 0o666)
        self.start_engine()
        self.assertEqual(stat.S_IMODE(os.stat(self.state + ".engine.log").st_mode), 0o640)

    def test_every_counter_in_the_status_is_in_the_metrics(self):
        self.farm(1)
        self.start_engine()
        http_get(self.port)
        st, metrics = self.admin_json(), self.metrics()
        families = {line.split()[2] for line in metrics.splitlines() if line.startswith("# TYPE")}
        for field, value in st["listeners"][0].items():
            if isinstance(value, int) and field != "members":
                self.assertTrue(any(f.startswith("azlb_listener_" + field) for f in families), field)
        for field, value in st["members"][0].items():
            if isinstance(value, int):
                self.assertTrue(any(f.startswith("azlb_member_") and field in f for f in families), field)
        self.assertIn("azlb_listener_dropped_total", families)
