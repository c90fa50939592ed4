"""A cloud service of HTTP backends behind one load-balanced set, served by
the real engine, for the engine's end-to-end tests."""
import json
import os
import socket

import admin_socket
from backends import HttpBackend, TcpBackend, UdpEcho, free_port, random_subnet, wait_until
from harness import AzlbCase

FAST_PROBE = ("--probe-protocol", "http", "--probe-path", "/health", "--probe-interval", "1", "--probe-timeout", "2")


class EngineCase(AzlbCase):
    def farm(self, n=3, probe=FAST_PROBE, extra=()):
        """n VMs with HTTP backends, all in set 'webset' on self.port; returns {vm: backend}."""
        self.net = random_subnet()
        self.ok("service", "create", "web", "--subnet", f"{self.net}.0/24")
        self.port, self.bport = free_port(), free_port()
        self.backends = {}
        for i in range(1, n + 1):
            self.add_vm(f"vm{i}")
        self.ok("endpoint", "add", "vm1", "--name", "http", "--protocol", "tcp", "--public-port", str(self.port),
                "--private-port", str(self.bport), "--lbset", "webset", *probe, *extra)
        for i in range(2, n + 1):
            self.ok("lbset", "join", "webset", "--vm", f"vm{i}")
        return self.backends

    def add_vm(self, vm):
        self.ok("vm", "create", vm, "--cloud-service", "web", "--no-default-endpoints")
        ip = self.ok("vm", "show", vm, "-o", "json").json()["private_ip"]
        b = HttpBackend(ip, self.bport, vm)
        self.addCleanup(b.stop)
        self.backends[vm] = b
        return b

    def tcp_and_udp_sets(self, distribution, dataplane="proxy", vms=4):
        """A tcp set ("control") and a udp set ("media") over the same VMs, as
        Azure's case for source-IP affinity: a TCP control channel and UDP
        media. Each VM answers its name on both. Returns their public ports."""
        net = random_subnet()
        self.ok("service", "create", "media", "--subnet", f"{net}.0/24", "--dataplane", dataplane)
        tport, uport, bport = free_port(), free_port(), free_port()
        for i in range(1, vms + 1):
            vm = f"vm{i}"
            self.ok("vm", "create", vm, "--cloud-service", "media", "--no-default-endpoints")
            t = TcpBackend(f"{net}.{i + 3}", bport, lambda c, n=vm: c.sendall(n.encode()))
            u = UdpEcho(f"{net}.{i + 3}", bport, vm, answer=lambda data, n=vm: n.encode())
            self.addCleanup(t.stop)
            self.addCleanup(u.stop)
        for name, proto, port in (("control", "tcp", tport), ("media", "udp", uport)):
            self.ok("endpoint", "add", "vm1", "--name", name, "--protocol", proto, "--public-port", str(port),
                    "--private-port", str(bport), "--lbset", name, "--no-probe", "--distribution", distribution)
            for i in range(2, vms + 1):
                self.ok("lbset", "join", name, "--vm", f"vm{i}")
        return tport, uport

    def vms_of_client(self, tport, uport, source):
        """The VM that a client at `source` reaches over tcp, and over udp."""
        with socket.socket() as s:
            s.settimeout(5)
            s.bind((source, 0))
            s.connect(("127.0.0.1", tport))
            tcp = s.recv(100).decode()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.bind((source, 0))
            s.sendto(b"q", ("127.0.0.1", uport))
            udp = s.recvfrom(100)[0].decode()
        return tcp, udp

    def check_source_ip_pairs_tcp_and_udp(self, tport, uport):
        """Azure's source-ip: each client's tcp and udp reach one VM, and the clients spread."""
        vms = set()
        for c in range(40):
            tcp, udp = self.vms_of_client(tport, uport, f"127.0.0.{100 + c}")
            self.assertEqual(tcp, udp, f"client 127.0.0.{100 + c}: tcp to {tcp}, udp to {udp}")
            vms.add(tcp)
        self.assertGreater(len(vms), 1, "every client on one VM")

    def wait_health(self, expected, lbset="webset", timeout=10):
        wait_until(lambda: self.member_health(lbset) == expected, timeout=timeout, what=f"health {expected}")

    def admin(self, path, method="GET"):
        """A request on the engine's admin socket: (status code, body)."""
        return admin_socket.request(self.state + ".engine.sock", path, method)

    def admin_json(self, path="/v1/status"):
        code, body = self.admin(path)
        self.assertEqual(code, 200, body)
        return json.loads(body)
