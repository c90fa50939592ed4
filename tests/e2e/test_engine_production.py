"""What operators ask of a load balancer first: the client's address for the
members (PROXY protocol, checked byte for byte and by nginx), draining a
member, and the access log. The real engine, real backends, real sockets."""
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest

from backends import TcpBackend, UdpEcho, free_port, http_get, random_subnet, wait_until
from engine_case import EngineCase
from harness import TIME_SCALE

CLIENT_IP = "127.0.0.77"  # a source address of the test's own, not the engine's 127.0.0.1


class FirstBytes:
    """A member that speaks first: it records the first bytes it gets within
    a moment (the PROXY header, if any) without waiting for the client, then
    greets and echoes one message."""

    def __init__(self, ip, port, name):
        self.got = []
        self.name = name

        def handler(c):
            c.settimeout(0.3 * TIME_SCALE)
            try:
                first = c.recv(4096)
            except socket.timeout:
                first = b""
            self.got.append(first)
            c.sendall(f"220 {name}\r\n".encode())
            c.settimeout(5)
            data = c.recv(4096)
            c.sendall(data)

        self.backend = TcpBackend(ip, port, handler)

    def stop(self):
        self.backend.stop()


def connect_from(port, source_port, host="127.0.0.1", source=CLIENT_IP):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(5)
    s.bind((source, source_port))
    s.connect((host, port))
    return s


def v2_header(src, dst, sport, dport):
    return (b"\r\n\r\n\x00\r\nQUIT\n" + b"\x21\x11" + struct.pack("!H", 12) + socket.inet_aton(src) +
            socket.inet_aton(dst) + struct.pack("!HH", sport, dport))


class ProxyProtocolTest(EngineCase):
    def single_vm(self, proxy):
        self.net = random_subnet()
        self.ok("service", "create", "web", "--subnet", f"{self.net}.0/24")
        self.ok("vm", "create", "vm1", "--cloud-service", "web", "--no-default-endpoints")
        self.port, self.bport = free_port(), free_port()
        self.member = FirstBytes(f"{self.net}.4", self.bport, "vm1")
        self.addCleanup(self.member.stop)
        self.ok("endpoint", "add", "vm1", "--name", "smtp", "--protocol", "tcp", "--public-port", str(self.port),
                "--private-port", str(self.bport), "--lbset", "mail", "--no-probe", "--proxy-protocol", proxy)

    def talk(self, source_port):
        """Connects from CLIENT_IP:source_port, sends nothing until greeted."""
        with connect_from(self.port, source_port) as s:
            greeting = s.recv(100)
            s.sendall(b"EHLO x\r\n")
            echo = s.recv(100)
        return greeting, echo

    def test_v1_header_reaches_a_server_that_speaks_first_before_any_client_byte(self):
        self.single_vm("v1")
        self.start_engine()
        sport = free_port()
        greeting, echo = self.talk(sport)
        self.assertEqual(greeting, b"220 vm1\r\n")
        self.assertEqual(echo, b"EHLO x\r\n")
        self.assertEqual(self.member.got, [f"PROXY TCP4 {CLIENT_IP} 127.0.0.1 {sport} {self.port}\r\n".encode()])

    def test_v2_header_is_byte_exact_and_lbset_set_switches_it_live(self):
        self.single_vm("v2")
        self.start_engine()
        sport = free_port()
        self.talk(sport)
        self.assertEqual(self.member.got, [v2_header(CLIENT_IP, "127.0.0.1", sport, self.port)])
        show = self.ok("lbset", "show", "mail", "-o", "json").json()
        self.assertEqual(show["proxy_protocol"], "v2")
        self.ok("lbset", "set", "mail", "--proxy-protocol", "none")
        self.ok("engine", "reload")
        self.talk(free_port())
        self.assertEqual(self.member.got[-1], b"")  # nothing but the client's own bytes

    def test_v1_over_ipv6(self):
        self.ok("service", "create", "six", "--vip", "::1", "--subnet", "::1/128")
        self.ok("vm", "create", "v6", "--cloud-service", "six", "--private-ip", "::1", "--no-default-endpoints")
        port, bport = free_port(), free_port()
        got = []

        def handler(c):
            got.append(c.recv(4096))
            c.sendall(b"ok")

        srv = socket.socket(socket.AF_INET6)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("::1", bport))
        srv.listen()
        self.addCleanup(srv.close)
        threading.Thread(target=lambda: handler(srv.accept()[0]), daemon=True).start()
        self.ok("endpoint", "add", "v6", "--name", "pp", "--protocol", "tcp", "--public-port", str(port),
                "--private-port", str(bport), "--proxy-protocol", "v1")
        self.start_engine()
        with connect_from(port, 0, host="::1", source="::1") as s:
            sport = s.getsockname()[1]
            s.sendall(b"hello")
            self.assertEqual(s.recv(10), b"ok")
        self.assertTrue(got[0].startswith(f"PROXY TCP6 ::1 ::1 {sport} {port}\r\n".encode()), got)

    @unittest.skipUnless(shutil.which("nginx") or os.path.exists("/usr/sbin/nginx"), "nginx is not installed")
    def test_nginx_behind_the_set_logs_the_clients_own_address(self):
        """A real consumer: nginx with `listen ... proxy_protocol` records
        $proxy_protocol_addr, for v1 and then v2."""
        self.net = random_subnet()
        self.ok("service", "create", "web", "--subnet", f"{self.net}.0/24")
        self.ok("vm", "create", "vm1", "--cloud-service", "web", "--no-default-endpoints")
        self.port, bport = free_port(), free_port()
        work = tempfile.mkdtemp(prefix="azlb-nginx-")
        self.addCleanup(shutil.rmtree, work, True)
        log = os.path.join(work, "pp.log")
        with open(os.path.join(work, "nginx.conf"), "w") as f:
            f.write(f"""
daemon off; master_process off; pid {work}/nginx.pid; error_log {work}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {work}; proxy_temp_path {work}; fastcgi_temp_path {work};
  uwsgi_temp_path {work}; scgi_temp_path {work};
  log_format pp '$proxy_protocol_addr $proxy_protocol_port $proxy_protocol_server_addr $proxy_protocol_server_port';
  server {{
    listen {self.net}.4:{bport} proxy_protocol;
    access_log {log} pp;
    location / {{ return 200 "vm1\\n"; }}
  }}
}}
""")
        nginx = subprocess.Popen([shutil.which("nginx") or "/usr/sbin/nginx", "-p", work, "-c", "nginx.conf"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(nginx.wait)
        self.addCleanup(nginx.terminate)
        self.ok("endpoint", "add", "vm1", "--name", "http", "--protocol", "tcp", "--public-port", str(self.port),
                "--private-port", str(bport), "--lbset", "webset", "--probe-protocol", "tcp", "--probe-interval",
                "1", "--probe-timeout", "2", "--proxy-protocol", "v1")
        self.start_engine()
        wait_until(lambda: self.member_health("webset") == {"vm1": "up"}, what="nginx up")
        lines = []
        for version in ("v1", "v2"):
            if version == "v2":
                self.ok("lbset", "set", "webset", "--proxy-protocol", "v2")
                self.ok("engine", "reload")
            sport = free_port()
            with connect_from(self.port, sport) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
            self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:80])
            lines.append(f"{CLIENT_IP} {sport} 127.0.0.1 {self.port}")
            wait_until(lambda: os.path.exists(log) and len(open(log).read().splitlines()) == len(lines),
                       what="nginx's log line")
        self.assertEqual(open(log).read().splitlines(), lines)

    def test_proxy_protocol_on_udp_and_unknown_versions_are_usage_errors(self):
        self.ok("vm", "create", "vm1", "--cloud-service", "web", "--no-default-endpoints")
        self.fails(2, "endpoint", "add", "vm1", "--name", "dns", "--protocol", "udp", "--public-port", "5353",
                   "--private-port", "53", "--proxy-protocol", "v1", mentions="udp")
        self.fails(2, "endpoint", "add", "vm1", "--name", "web", "--protocol", "tcp", "--public-port", "8080",
                   "--private-port", "80", "--proxy-protocol", "v3", mentions="'v3'")


class DrainTest(EngineCase):
    def member_of(self, sock):
        """The VM that answers a keep-alive request on `sock`."""
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while not data.partition(b"\r\n\r\n")[2].endswith(b"\n"):  # the body is the VM's name and a newline
            chunk = sock.recv(4096)
            if not chunk:
                raise OSError(f"connection closed after {data!r}")
            data += chunk
        return data.partition(b"\r\n\r\n")[2].decode().strip()

    def members_json(self):
        st = self.engine_status()
        return {m["vm"]: m for s in st["cloud_services"][0]["lbsets"] for m in s["members"]}

    def test_drain_keeps_established_connections_stops_new_ones_and_survives_a_restart(self):
        self.farm(2)
        self.start_engine()
        self.wait_health({"vm1": "up", "vm2": "up"})
        held = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        self.addCleanup(held.close)
        vm = self.member_of(held)
        other = "vm2" if vm == "vm1" else "vm1"

        r = self.azlb("lbset", "drain", "webset", "--vm", vm, "--wait", "1")
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(r.out, "")
        self.assertEqual(len(r.err.strip().splitlines()), 1, r)
        self.assertIn("1 active connection remains", r.err)
        self.assertIn("admin_state = \"drain\"", self.read())

        members = self.members_json()
        self.assertEqual(members[vm]["admin_state"], "drain")
        self.assertEqual(members[vm]["active_connections"], 1)
        self.assertEqual(members[other]["admin_state"], "up")
        table = self.ok("status").out
        self.assertRegex(table, rf"{vm} .* drain +1\n")

        for _ in range(30):
            self.assertEqual(http_get(self.port), other)
        self.assertEqual(self.member_of(held), vm)  # the established connection carries on

        waiter = subprocess.Popen([os.environ.get("AZLB_BIN", "../../build/cli/azlb"), "--state", self.state,
                                   "lbset", "drain", "webset", "--vm", vm, "--wait", "20"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.3 * TIME_SCALE)
        self.assertIsNone(waiter.poll(), "--wait returned while a connection was open")
        held.close()
        out, err = waiter.communicate(timeout=10 * TIME_SCALE)
        self.assertEqual(waiter.returncode, 0, err)
        self.assertIn("no active connections", out)

        # The admin state is in the state file: a new engine keeps the drain.
        self.ok("engine", "stop")
        self.start_engine()
        self.wait_health({"vm1": "up", "vm2": "up"})
        for _ in range(20):
            self.assertEqual(http_get(self.port), other)
        self.ok("lbset", "undrain", "webset", "--vm", vm)
        self.ok("engine", "reload")
        wait_until(lambda: vm in {http_get(self.port) for _ in range(10)}, what=f"{vm} serving again")

    def test_a_drained_udp_member_keeps_its_flows_and_gets_no_new_ones(self):
        self.net = random_subnet()
        self.ok("service", "create", "dns", "--subnet", f"{self.net}.0/24")
        port, bport = free_port(), free_port()
        for i in (1, 2):
            self.ok("vm", "create", f"vm{i}", "--cloud-service", "dns", "--no-default-endpoints")
            e = UdpEcho(f"{self.net}.{i + 3}", bport, f"vm{i}")
            self.addCleanup(e.stop)
        self.ok("endpoint", "add", "vm1", "--name", "dns", "--protocol", "udp", "--public-port", str(port),
                "--private-port", str(bport), "--lbset", "dnsset", "--no-probe")
        self.ok("lbset", "join", "dnsset", "--vm", "vm2")
        self.start_engine()

        def ask(s):
            s.sendto(b"q", ("127.0.0.1", port))
            return s.recvfrom(100)[0].split(b":")[0].decode()

        flow = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        flow.settimeout(5)
        self.addCleanup(flow.close)
        vm = ask(flow)
        self.ok("lbset", "drain", "dnsset", "--vm", vm)
        self.ok("engine", "reload")
        for _ in range(5):
            self.assertEqual(ask(flow), vm)
        for _ in range(20):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(5)
                self.assertNotEqual(ask(s), vm)

    def test_drain_errors_name_the_bad_value(self):
        self.farm(2)
        self.fails(3, "lbset", "drain", "webset", "--vm", "vm9", mentions="vm9")
        self.fails(3, "lbset", "drain", "nosuch", "--vm", "vm1", mentions="nosuch")
        self.fails(2, "lbset", "drain", "webset", "--vm", "vm1", "--wait", "-1", mentions="-1")
        # Without an engine there is nothing to wait for.
        r = self.ok("lbset", "drain", "webset", "--vm", "vm1", "--wait", "5", "-o", "json")
        self.assertEqual(r.json()["active_connections"], 0)


class AccessLogTest(EngineCase):
    def lines(self, path):
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [json.loads(line) for line in f]

    def test_tcp_connections_denied_clients_and_udp_flows_each_get_one_line(self):
        self.farm(2)
        self.ok("endpoint", "acl", "add", "vm1", "http", "--order", "10", "--action", "deny",
                "--remote-subnet", "127.0.0.66/32")
        uport, ubport = free_port(), free_port()
        self.ok("endpoint", "add", "vm2", "--name", "dns", "--protocol", "udp", "--public-port", str(uport),
                "--private-port", str(ubport))
        echo = UdpEcho(f"{self.net}.5", ubport, "vm2")
        self.addCleanup(echo.stop)
        log = os.path.join(self.dir, "access.log")
        # A "minute" of idle timeout lasts 100 ms here, so the UDP flow ends soon.
        self.start_engine("--access-log", log, env={"AZLB_IDLE_TIMEOUT_UNIT_MS": "100"})
        self.wait_health({"vm1": "up", "vm2": "up"})

        sport = free_port()
        with connect_from(self.port, sport) as s:
            request = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            s.sendall(request)
            response = b""
            while chunk := s.recv(4096):
                response += chunk
        with self.assertRaises(OSError):
            http_get(self.port, source="127.0.0.66")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(5)
            u.sendto(b"hello", ("127.0.0.1", uport))
            answer = u.recvfrom(100)[0]
            uport_client = u.getsockname()[1]

        wait_until(lambda: len(self.lines(log)) >= 3, timeout=10 * TIME_SCALE, what="three log lines")
        by_end = {}
        for line in self.lines(log):
            by_end.setdefault(line["end"], []).append(line)
        tcp = [line for line in by_end["closed"] if line["client"] == f"{CLIENT_IP}:{sport}"][0]
        self.assertEqual(tcp["protocol"], "tcp")
        self.assertEqual(tcp["vip"], f"127.0.0.1:{self.port}")
        self.assertEqual((tcp["service"], tcp["lbset"], tcp["endpoint"]), ("web", "webset", "http"))
        self.assertEqual(tcp["member"], f"{self.net}.{3 + int(tcp['vm'][2])}:{self.bport}")
        self.assertEqual((tcp["bytes_in"], tcp["bytes_out"]), (len(request), len(response)))
        self.assertGreaterEqual(tcp["duration_ms"], 0)
        denied = by_end["denied"][0]
        self.assertTrue(denied["client"].startswith("127.0.0.66:"))
        self.assertIsNone(denied["member"])
        udp = by_end["idle_timeout"][0]
        self.assertEqual(udp["protocol"], "udp")
        self.assertEqual(udp["client"], f"127.0.0.1:{uport_client}")
        self.assertEqual((udp["vm"], udp["endpoint"], udp["lbset"]), ("vm2", "dns", None))
        self.assertEqual((udp["bytes_in"], udp["bytes_out"]), (5, len(answer)))

        status = self.admin_json()
        self.assertEqual(status["access_log"]["path"], log)
        self.assertGreaterEqual(status["access_log"]["lines_written"], 3)
        self.assertEqual(status["access_log"]["lines_lost"], 0)

    def test_sigusr1_reopens_the_access_log_for_logrotate(self):
        self.farm(1, probe=("--no-probe",))
        log = os.path.join(self.dir, "access.log")
        self.start_engine("--access-log", log)
        http_get(self.port)
        wait_until(lambda: len(self.lines(log)) == 1, what="the first line")
        os.rename(log, log + ".1")
        pid = int(self.engine_status()["engine"]["pid"])
        os.kill(pid, signal.SIGUSR1)
        wait_until(lambda: os.path.exists(log), what="a new access log")
        http_get(self.port)
        http_get(self.port)
        wait_until(lambda: len(self.lines(log)) == 2, what="two lines in the new file")
        self.assertEqual(len(self.lines(log + ".1")), 1)

    def test_an_access_log_path_that_is_a_symlink_is_refused(self):
        self.farm(1, probe=("--no-probe",))
        target = os.path.join(self.dir, "victim")
        with open(target, "w") as f:
            f.write("keep me\n")
        link = os.path.join(self.dir, "access.log")
        os.symlink(target, link)
        r = self.azlb("engine", "start", "--access-log", link)
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(len(r.err.strip().splitlines()), 1, r)
        self.assertIn("symbolic link", r.err)
        self.assertEqual(open(target).read(), "keep me\n")


if __name__ == "__main__":
    unittest.main()
