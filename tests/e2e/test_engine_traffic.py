"""What the bytes go through: ACLs, idle timeouts, half-close, large
transfers, UDP flows and an IPv6 VIP."""
import collections
import hashlib
import socket
import struct
import threading
import time

from backends import HttpBackend, TcpBackend, UdpEcho, free_port, http_get, random_subnet, sha256_stream, wait_until
from engine_case import EngineCase


class Traffic(EngineCase):
    def plain_endpoint(self, handler, env=None, idle=None, nofile=None):
        """One VM with a TCP endpoint to `handler`; the engine started."""
        net = random_subnet()
        self.ok("service", "create", "app", "--subnet", f"{net}.0/24")
        self.ok("vm", "create", "vm1", "--cloud-service", "app", "--no-default-endpoints")
        self.port, bport = free_port(), free_port()
        b = TcpBackend(f"{net}.4", bport, handler)
        self.addCleanup(b.stop)
        args = ["endpoint", "add", "vm1", "--name", "t", "--protocol", "tcp", "--public-port", str(self.port),
                "--private-port", str(bport)]
        if idle:
            args += ["--idle-timeout", str(idle)]
        self.ok(*args)
        self.start_engine(env=env, nofile=nofile)

    def test_acl_permits_the_listed_client_and_denies_the_rest(self):
        self.farm()
        self.ok("endpoint", "acl", "add", "vm1", "http", "--order", "10", "--action", "permit",
                "--remote-subnet", "127.0.0.2/32")
        self.start_engine()
        self.wait_health({"vm1": "up", "vm2": "up", "vm3": "up"})
        self.assertIn(http_get(self.port, source="127.0.0.2"), self.backends)
        requests_before = sum(b.requests for b in self.backends.values())
        with self.assertRaises(OSError):
            http_get(self.port, source="127.0.0.3")
        self.assertEqual(sum(b.requests for b in self.backends.values()), requests_before)
        self.assertEqual(self.admin_json()["listeners"][0]["denied"], 1)
        # A deny rule before the permit wins for its subnet: first match by order.
        self.ok("endpoint", "acl", "add", "vm2", "http", "--order", "5", "--action", "deny",
                "--remote-subnet", "127.0.0.2/32")
        wait_until(lambda: self._denied("127.0.0.2"), what="the deny rule to take effect")

    def _denied(self, source):
        try:
            http_get(self.port, source=source, timeout=2)
            return False
        except OSError:
            return True

    def test_idle_timeout_closes_silent_connections_only(self):
        def echo(c):
            while data := c.recv(65536):
                c.sendall(data)

        # One idle-timeout minute lasts 250 ms here: 4 "minutes" are a second.
        self.plain_endpoint(echo, env={"AZLB_IDLE_TIMEOUT_UNIT_MS": "250"})
        silent = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        talker = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        self.addCleanup(silent.close)
        self.addCleanup(talker.close)
        for s in (silent, talker):
            s.sendall(b"x")
            self.assertEqual(s.recv(10), b"x")
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            talker.sendall(b"y")
            self.assertEqual(talker.recv(10), b"y")
            time.sleep(0.25)
        silent.settimeout(3)
        try:
            self.assertEqual(silent.recv(10), b"", "a silent connection outlived its idle timeout")
        except ConnectionResetError:
            pass

    def test_half_close_passes_the_fin_and_keeps_the_other_way_open(self):
        def digest_after_eof(c):
            h = hashlib.sha256()
            while data := c.recv(65536):
                h.update(data)
            c.sendall(h.hexdigest().encode())

        self.plain_endpoint(digest_after_eof)
        payload = bytes(range(256)) * 4096
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            reply = b""
            while chunk := s.recv(1024):
                reply += chunk
        self.assertEqual(reply.decode(), hashlib.sha256(payload).hexdigest())

    def test_a_response_and_the_members_fin_reach_the_client_in_one_segment(self):
        """A member that answers and closes: its FIN, already behind the
        answer, leaves the engine in the answer's segment, not in one more."""
        def answer_and_close(c):
            c.recv(1024)
            time.sleep(0.2)  # the engine's ACK of the request has long gone out on its own
            c.send(b"answer", socket.MSG_MORE)
            c.shutdown(socket.SHUT_WR)  # the answer and the FIN in one segment
            c.recv(1024)

        self.plain_endpoint(answer_and_close)
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
                s.sendall(b"question")
                got = b""
                while chunk := s.recv(1024):
                    got += chunk
                self.assertEqual(got, b"answer")
                info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 160)
                segs_in, data_segs_in = struct.unpack_from("<I", info, 140)[0], struct.unpack_from("<I", info, 152)[0]
                # The SYN-ACK and the ACK of the request; a FIN of its own would be a third.
                self.assertEqual((data_segs_in, segs_in - data_segs_in), (1, 2))

    def test_a_member_that_speaks_first_is_heard_at_once(self):
        """The engine holds the member's handshake ACK back for the client's
        first bytes; a server that speaks first (SSH, SMTP, MySQL) must not
        wait for a delayed-ACK timer (200 ms) before it can accept."""
        def greet(c):
            c.sendall(b"SSH-2.0-member\r\n")
            c.recv(1024)

        self.plain_endpoint(greet)
        waits = []
        for _ in range(10):
            started = time.monotonic()
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
                self.assertEqual(s.recv(1024), b"SSH-2.0-member\r\n")
                waits.append(time.monotonic() - started)
                s.sendall(b"bye")
        self.assertLess(max(waits), 0.1, f"greetings took {[round(w, 3) for w in waits]} s")

    def test_bursts_of_small_messages_and_a_fin_arrive_whole_and_in_order(self):
        """Segments that land while a send is still in flight queue behind it;
        a FIN right behind them must wait until they are all sent."""
        def echo(c):
            while data := c.recv(65536):
                c.sendall(data)

        self.plain_endpoint(echo)
        results = {}

        def client(k):
            sent = b"".join(f"{k:02d}:{i:05d}\n".encode() for i in range(3000))
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                for i in range(0, len(sent), 9 * 10):  # ten lines a segment
                    s.sendall(sent[i:i + 90])
                s.shutdown(socket.SHUT_WR)
                got = bytearray()
                while data := s.recv(65536):
                    got += data
            results[k] = bytes(got) == sent

        threads = [threading.Thread(target=client, args=(k,)) for k in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(results, {k: True for k in range(16)})

    def test_a_backend_that_stops_reading_stalls_the_client_not_the_engine(self):
        reading = threading.Event()
        got = {}

        def slow(c):
            reading.wait(30)
            h, n = hashlib.sha256(), 0
            while data := c.recv(1 << 20):
                h.update(data)
                n += len(data)
            got["backend"] = (n, h.hexdigest())

        self.plain_endpoint(slow)
        limit = 96 * 1024 * 1024
        block = bytes(range(256)) * 256  # 64 KiB
        h, sent = hashlib.sha256(), 0
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.setblocking(False)
            stalled_since = None
            while sent < limit:
                try:
                    n = s.send(block)
                    h.update(block[:n])
                    sent += n
                    stalled_since = None
                except BlockingIOError:
                    stalled_since = stalled_since or time.monotonic()
                    if time.monotonic() - stalled_since > 1.0:
                        break
                    time.sleep(0.01)
            # Socket buffers on both sides and the engine's few buffers and one
            # pipe hold a few MiB; an engine reading without limit takes it all.
            self.assertLess(sent, 48 * 1024 * 1024, "the engine kept reading what the backend did not take")
            reading.set()
            s.setblocking(True)
            s.shutdown(socket.SHUT_WR)
            wait_until(lambda: "backend" in got, timeout=20, what="the backend to read everything")
        self.assertEqual(got["backend"], (sent, h.hexdigest()))

    def test_100_mb_each_way_arrive_intact(self):
        size = 100 * 1024 * 1024
        down_chunks, down_digest = sha256_stream(size, seed=1)
        up_chunks, up_digest = sha256_stream(size, seed=2)
        got = {}

        def exchange(sock, chunks):
            """Sends `chunks` then a FIN while reading to EOF; returns (bytes read, digest)."""
            def send():
                for ch in chunks:
                    sock.sendall(ch)
                sock.shutdown(socket.SHUT_WR)
            t = threading.Thread(target=send)
            t.start()
            h, n = hashlib.sha256(), 0
            while data := sock.recv(1 << 20):
                h.update(data)
                n += len(data)
            t.join()
            return n, h.hexdigest()

        def both_ways(c):
            got["backend"] = exchange(c, down_chunks)[1]

        self.plain_endpoint(both_ways)
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as s:
            n, digest = exchange(s, up_chunks)
        self.assertEqual(n, size)
        self.assertEqual(digest, down_digest)
        wait_until(lambda: "backend" in got, what="the backend to finish")
        self.assertEqual(got["backend"], up_digest)

    def test_a_connection_past_its_bulk_phase_still_relays_small_messages_at_once(self):
        def echo(c):
            while data := c.recv(65536):
                c.sendall(data)

        self.plain_endpoint(echo)
        bulk = bytes(range(256)) * (16 * 1024)  # 4 MiB: fills whole buffers, so both halves splice
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            got = bytearray()
            t = threading.Thread(target=s.sendall, args=(bulk,))
            t.start()
            while len(got) < len(bulk):
                got += s.recv(1 << 20)
            t.join()
            self.assertEqual(bytes(got), bulk)
            # Small messages must not wait for more data behind them (a corked
            # splice holds each one for ~200 ms: 20 of them would take seconds).
            started = time.monotonic()
            for i in range(20):
                msg = f"ping {i}".encode()
                s.sendall(msg)
                self.assertEqual(s.recv(100), msg)
            self.assertLess(time.monotonic() - started, 2.0, "small messages were held back")
        self.assertGreaterEqual(self.admin_json()["listeners"][0]["spliced"], 2)

    def test_udp_flows_spread_and_replies_come_from_the_vip(self):
        net = random_subnet()
        self.ok("service", "create", "dns", "--subnet", f"{net}.0/24")
        port, bport = free_port(), free_port()
        for i in (1, 2, 3):
            self.ok("vm", "create", f"ns{i}", "--cloud-service", "dns", "--no-default-endpoints")
            b = UdpEcho(f"{net}.{3 + i}", bport, f"ns{i}")
            self.addCleanup(b.stop)
        self.ok("endpoint", "add", "ns1", "--name", "dns", "--protocol", "udp", "--public-port", str(port),
                "--private-port", str(bport), "--lbset", "dnsset", "--no-probe")
        for i in (2, 3):
            self.ok("lbset", "join", "dnsset", "--vm", f"ns{i}")
        self.start_engine()
        counts = collections.Counter()
        for i in range(90):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(3)
                s.sendto(f"q{i}".encode(), ("127.0.0.1", port))
                data, peer = s.recvfrom(1000)
                self.assertEqual(peer, ("127.0.0.1", port))
                name, _, echo = data.decode().partition(": ")
                self.assertEqual(echo, f"q{i}")
                # A flow stays on its member: a second datagram gets the same one.
                s.sendto(b"again", ("127.0.0.1", port))
                self.assertEqual(s.recvfrom(1000)[0].decode(), f"{name}: again")
                counts[name] += 1
        self.assertEqual(set(counts), {"ns1", "ns2", "ns3"})
        self.assertGreater(min(counts.values()), 10, dict(counts))

    def test_an_ipv6_vip_serves_ipv6_clients(self):
        net = random_subnet()
        self.ok("service", "create", "six", "--vip", "::1", "--subnet", f"{net}.0/24")
        self.ok("vm", "create", "v1", "--cloud-service", "six", "--no-default-endpoints")
        port, bport = free_port(), free_port()
        b = HttpBackend(f"{net}.4", bport, "v1")
        self.addCleanup(b.stop)
        self.ok("endpoint", "add", "v1", "--name", "web", "--protocol", "tcp", "--public-port", str(port),
                "--private-port", str(bport))
        self.start_engine()
        self.assertEqual(http_get(port, host="::1"), "v1")

    def test_a_wildcard_vip_listens_on_every_address_and_replies_from_the_one_used(self):
        net = random_subnet()
        self.ok("service", "create", "any", "--vip", "0.0.0.0", "--subnet", f"{net}.0/24")
        self.ok("vm", "create", "v1", "--cloud-service", "any", "--no-default-endpoints")
        port, bport = free_port(), free_port()
        web, dns = HttpBackend(f"{net}.4", bport, "v1"), UdpEcho(f"{net}.4", bport, "v1")
        self.addCleanup(web.stop)
        self.addCleanup(dns.stop)
        for proto in ("tcp", "udp"):
            self.ok("endpoint", "add", "v1", "--name", proto, "--protocol", proto, "--public-port", str(port),
                    "--private-port", str(bport))
        self.start_engine()
        for host in ("127.0.0.1", "127.0.0.2", f"{net}.1"):
            self.assertEqual(http_get(port, host=host), "v1")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(3)
                s.sendto(b"hello", (host, port))
                data, peer = s.recvfrom(1000)
                self.assertEqual(data, b"v1: hello")
                # A client only accepts the answer from where it asked.
                self.assertEqual(peer, (host, port))

    def test_at_the_fd_limit_it_keeps_serving_and_accepts_again_once_descriptors_free_up(self):
        def echo(c):
            while data := c.recv(65536):
                c.sendall(data)

        def echoes(s, msg):
            s.sendall(msg)
            return s.recv(100) == msg

        # 64 descriptors: about 20 for the engine itself, 2 per proxied connection.
        self.plain_endpoint(echo, nofile=64)
        first = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        self.addCleanup(first.close)
        self.assertTrue(echoes(first, b"first"))
        crowd, answered = [], 0
        for i in range(40):
            try:
                # Past the limit a client waits in the backlog: a short wait tells (the log below says
                # the engine paused accepting, so a slow answer cannot pass for the limit).
                s = socket.create_connection(("127.0.0.1", self.port), timeout=0.3)
                crowd.append(s)
                self.addCleanup(s.close)
                answered += echoes(s, b"crowd")
            except OSError:  # left in the backlog, or reset: the engine has no descriptor for it
                pass
        self.assertLess(answered, 40, "the limit was never reached")
        self.assertTrue(echoes(first, b"still served"))
        for s in crowd:
            s.close()
        # Once the crowd is gone the engine accepts again (it retries every tick).
        def served():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    return echoes(s, b"again")
            except OSError:
                return False
        wait_until(served, timeout=10, what="a new connection to be served")
        self.assertIn("accepting paused", self.read(self.state + ".engine.log"))
