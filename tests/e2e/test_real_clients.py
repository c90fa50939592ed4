"""Real client programs through the engine, as users run them: redis-benchmark
(plain and pipelined) against redis-server, TLS passed through to openssl
s_server and verified end to end, dig against dnsmasq over UDP, and 50
long-lived connections that see 10 live changes of the state. Zero errors."""
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
import unittest

from backends import TcpBackend, free_port, random_subnet, wait_until
from engine_case import EngineCase


def need(*programs):
    missing = [p for p in programs if not shutil.which(p)]
    if missing:  # scripts/deps.sh installs them; a bare machine says what is missing
        raise unittest.SkipTest(f"not installed: {', '.join(missing)} (run scripts/deps.sh)")


class RealClients(EngineCase):
    def service(self, n):
        self.net = random_subnet()
        self.ok("service", "create", "svc", "--subnet", f"{self.net}.0/24")
        for i in range(1, n + 1):
            self.ok("vm", "create", f"vm{i}", "--cloud-service", "svc", "--no-default-endpoints")
        return [f"{self.net}.{3 + i}" for i in range(1, n + 1)]

    def spawn(self, *cmd):
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(p.wait, 10)
        self.addCleanup(p.terminate)
        return p

    def lbset(self, proto, port, bport, name="set", probe=("--probe-protocol", "tcp", "--probe-interval", "1",
                                                             "--probe-timeout", "2")):
        self.ok("endpoint", "add", "vm1", "--name", name, "--protocol", proto, "--public-port", str(port),
                "--private-port", str(bport), "--lbset", name, *probe)
        self.ok("lbset", "join", name, "--vm", "vm2")

    def test_redis_benchmark_plain_and_pipelined(self):
        need("redis-server", "redis-benchmark", "redis-cli")
        ips = self.service(2)
        port, bport = free_port(), free_port()
        for ip in ips:
            self.spawn("redis-server", "--bind", ip, "--port", str(bport), "--save", "", "--appendonly", "no",
                       "--protected-mode", "no", "--daemonize", "no")
        self.lbset("tcp", port, bport)
        self.start_engine()
        self.wait_health({"vm1": "up", "vm2": "up"}, lbset="set")
        for extra in ((), ("-P", "16")):
            r = subprocess.run(["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-n", "20000", "-c", "20",
                                "-t", "set,get,incr,lpush", "-q", *extra], capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            out = r.stdout + r.stderr
            self.assertNotIn("rror", out)
            for test in ("SET", "GET", "INCR", "LPUSH"):
                self.assertRegex(out, rf"{test}: [0-9.]+ requests per second", out)
        pong = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), "ping"], capture_output=True,
                              text=True, timeout=10)
        self.assertEqual(pong.stdout.strip(), "PONG")

    def test_tls_is_passed_through_and_verified_end_to_end(self):
        need("openssl")
        ips = self.service(2)
        port, bport = free_port(), free_port()
        cert, key = os.path.join(self.dir, "cert.pem"), os.path.join(self.dir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                        "/CN=azlb-test", "-addext", "subjectAltName=DNS:azlb-test", "-keyout", key, "-out", cert],
                       check=True, capture_output=True, timeout=60)
        for ip in ips:
            self.spawn("openssl", "s_server", "-accept", f"{ip}:{bport}", "-cert", cert, "-key", key, "-www",
                       "-quiet")
        self.lbset("tcp", port, bport)
        self.start_engine()
        self.wait_health({"vm1": "up", "vm2": "up"}, lbset="set")
        ctx = ssl.create_default_context(cafile=cert)
        for _ in range(20):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                with ctx.wrap_socket(raw, server_hostname="azlb-test") as tls:
                    # The certificate checked is the member's own: the engine never terminates TLS.
                    self.assertEqual(dict(x[0] for x in tls.getpeercert()["subject"])["commonName"], "azlb-test")
                    tls.sendall(b"GET / HTTP/1.0\r\n\r\n")
                    data = b""
                    while chunk := tls.recv(65536):
                        data += chunk
            self.assertTrue(data.startswith(b"HTTP/1.0 200"), data[:100])

    def test_dig_through_the_vip_to_dnsmasq(self):
        need("dnsmasq", "dig")
        ips = self.service(2)
        port, bport, hport = free_port(), free_port(), free_port()
        for i, ip in enumerate(ips, 1):
            self.spawn("dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts", "--user=root", "--bind-interfaces",
                       f"--listen-address={ip}", f"--port={bport}", f"--address=/azlb.test/10.0.0.{i}",
                       f"--pid-file={self.dir}/dnsmasq{i}.pid")
        # dnsmasq answers TCP on the same port: the probe checks it.
        self.lbset("udp", port, bport, probe=("--probe-protocol", "tcp", "--probe-interval", "1",
                                              "--probe-timeout", "2"))
        self.start_engine()
        self.wait_health({"vm1": "up", "vm2": "up"}, lbset="set")
        answers = []
        for _ in range(40):
            # A source port of its own each time: a port dig picks at random may be one that another suite
            # running beside this one uses (seen once: dig got back a datagram that was not its answer).
            r = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "-b", f"127.0.0.1#{free_port()}", "azlb.test",
                                "+short", "+tries=1", "+time=3"], capture_output=True, text=True, timeout=10)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            answers.append(r.stdout.strip())
        self.assertEqual(set(answers), {"10.0.0.1", "10.0.0.2"}, answers)
        # A resolver on a fixed source port stays on its member.
        src = free_port()
        fixed = {subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "-b", f"127.0.0.1#{src}", "azlb.test",
                                 "+short", "+tries=1", "+time=3"], capture_output=True, text=True,
                                timeout=10).stdout.strip() for _ in range(5)}
        self.assertEqual(len(fixed), 1, fixed)

    def test_fifty_long_lived_connections_survive_ten_live_changes(self):
        ips = self.service(3)
        port, bport, other = free_port(), free_port(), free_port()

        def echo(c):
            while data := c.recv(65536):
                c.sendall(data)

        for ip in ips:
            b = TcpBackend(ip, bport, echo)
            self.addCleanup(b.stop)
        self.lbset("tcp", port, bport)
        self.start_engine()
        self.wait_health({"vm1": "up", "vm2": "up"}, lbset="set")
        errors, stop = [], threading.Event()
        conns = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(50)]
        for c in conns:
            self.addCleanup(c.close)
        rounds = [0] * 50

        def talk(i, c):
            try:
                while not stop.is_set():
                    msg = f"conn {i} round {rounds[i]}\n".encode()
                    c.sendall(msg)
                    got = b""
                    while len(got) < len(msg):
                        chunk = c.recv(len(msg) - len(got))
                        if not chunk:
                            raise OSError("closed by the engine")
                        got += chunk
                    if got != msg:
                        raise OSError(f"got {got!r}")
                    rounds[i] += 1
                    time.sleep(0.05)
            except OSError as e:
                errors.append(f"connection {i}: {e}")

        threads = [threading.Thread(target=talk, args=(i, c)) for i, c in enumerate(conns)]
        for t in threads:
            t.start()
        changes = [
            ("lbset", "join", "set", "--vm", "vm3"),
            ("endpoint", "add", "vm3", "--name", "extra", "--protocol", "tcp", "--public-port", str(other),
             "--private-port", str(bport)),
            ("lbset", "set", "set", "--probe-interval", "2", "--probe-timeout", "5"),
            ("endpoint", "acl", "add", "vm1", "set", "--order", "1", "--action", "permit", "--remote-subnet",
             "127.0.0.0/8"),
            ("endpoint", "acl", "remove", "vm1", "set", "--order", "1"),
            ("lbset", "leave", "set", "--vm", "vm3"),
            ("endpoint", "remove", "vm3", "extra"),
            ("lbset", "set", "set", "--distribution", "source-ip"),
            ("lbset", "set", "set", "--distribution", "five-tuple"),
            ("lbset", "set", "set", "--probe-interval", "1", "--probe-timeout", "2"),
        ]
        generation = self.admin_json()["generation"]
        for change in changes:
            self.ok(*change)
            wait_until(lambda: self.admin_json()["generation"] > generation, what=f"{change} to be applied")
            generation = self.admin_json()["generation"]
            time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])
        self.assertTrue(all(r > 10 for r in rounds), rounds)
