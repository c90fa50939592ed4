"""Real backends on loopback for the engine tests: HTTP servers that answer
their name (with a health switch), TCP echo/sink servers, UDP echo."""
import atexit
import hashlib
import http.server
import os
import random
import socket
import socketserver
import threading
import time


PORTS = "/tmp/azlb-e2e-ports"


def _reserve(port):
    """Claims `port` for this process across the suites ctest runs at once: two
    free_port() calls in two processes could otherwise pick the same port
    before either binds it."""
    os.makedirs(PORTS, exist_ok=True)
    path = f"{PORTS}/{port}"
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            with open(path) as f:
                os.kill(int(f.read() or 0), 0)
            return False  # its owner still runs
        except (OSError, ValueError):
            os.unlink(path)  # left by a process that is gone
            return _reserve(port)
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    atexit.register(lambda: os.path.exists(path) and os.unlink(path))
    return True


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A port free on 127.0.0.1 for both TCP and UDP, and not handed to another
    test process. Drawn below the kernel's ephemeral range: a port bind(0)
    hands out is one any outgoing connection of a concurrent test may take as
    its source port before the engine binds it (seen in CI: the engine's
    listener retried while the test connected and was refused)."""
    low = _ephemeral_low()
    for _ in range(200):
        port = random.randint(16384, max(16385, low - 1))
        try:
            with socket.socket() as s, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                s.bind(("127.0.0.1", port))
                u.bind(("127.0.0.1", port))
        except OSError:
            continue
        if _reserve(port):
            return port
    raise RuntimeError("no free port")


def random_subnet():
    """A 127.A.B.0/24 of its own, so parallel tests never share backend addresses."""
    return f"127.{random.randint(20, 250)}.{random.randint(1, 250)}"


class HttpBackend:
    """Answers GET / with its name; GET /health with 200, or 503 once marked unhealthy."""

    def __init__(self, ip, port, name):
        self.name, self.healthy, self.requests = name, True, 0
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                if self.path == "/health":
                    code = 200 if backend.healthy else 503
                else:
                    code = 200
                    backend.requests += 1
                body = (backend.name + "\n").encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server((ip, port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def _unblock_and_close(sock):
    """A thread blocked in accept() or recvfrom() keeps the socket open, and
    listening, past a plain close(): shut it down first so that it returns."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class TcpBackend:
    """Runs `handler(conn)` for every connection, each in a thread."""

    def __init__(self, ip, port, handler):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, port))
        self.sock.listen(128)
        self.handler, self.closed = handler, False
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            self.handler(c)
        except OSError:
            pass
        finally:
            c.close()

    def stop(self):
        self.closed = True
        _unblock_and_close(self.sock)


class UdpEcho:
    """Answers each datagram with `answer(data)`: by default its name and the data."""

    def __init__(self, ip, port, name, answer=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, port))
        self.name, self.closed = name, False
        self.answer = answer or (lambda data: self.name.encode() + b": " + data)
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while not self.closed:
            try:
                data, peer = self.sock.recvfrom(1 << 17)
                if peer is None:  # the socket was shut down
                    return
                self.sock.sendto(self.answer(data), peer)
            except OSError:
                return

    def stop(self):
        self.closed = True
        _unblock_and_close(self.sock)


def http_get(port, host="127.0.0.1", path="/", source=None, timeout=5):
    """One request on a new connection; returns the body's first line."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.settimeout(timeout)
        if source:
            s.bind((source, 0))
        s.connect((host, port))
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise OSError(f"bad response {head[:40]!r}")
    return body.decode().strip()


def wait_until(check, timeout=10, every=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def sha256_stream(n, seed):
    """n deterministic bytes in 64 KiB chunks, and their digest."""
    rnd = random.Random(seed)
    block = rnd.randbytes(65536)
    h = hashlib.sha256()
    chunks = []
    left = n
    i = 0
    while left:
        c = block[: min(left, 65536)]
        c = bytes([i & 0xFF]) + c[1:] if c else c
        chunks.append(c)
        h.update(c)
        left -= len(c)
        i += 1
    return chunks, h.hexdigest()


class Downloader:
    """Serves an endless download to every connection from one thread: each
    connection gets `chunk` bytes whenever its socket can take them, so a
    client that never reads fills every buffer between it and this server."""

    def __init__(self, ip, port, chunk=65536):
        import selectors
        self.sel = selectors.DefaultSelector()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, port))
        self.sock.listen(4096)
        self.sock.setblocking(False)
        self.sel.register(self.sock, selectors.EVENT_READ)
        self.block = b"x" * chunk
        self.closed = False
        self.connections = 0
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        import selectors
        while not self.closed:
            for key, _ in self.sel.select(0.2):
                if key.fileobj is self.sock:
                    try:
                        while True:
                            c, _ = self.sock.accept()
                            c.setblocking(False)
                            self.connections += 1
                            self.sel.register(c, selectors.EVENT_WRITE)
                    except (BlockingIOError, OSError):
                        pass
                    continue
                try:
                    key.fileobj.send(self.block)
                except BlockingIOError:
                    pass
                except OSError:
                    self.sel.unregister(key.fileobj)
                    key.fileobj.close()

    def stop(self):
        self.closed = True
        time.sleep(0.3)
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()


def UdpSizer(ip, port, name):
    """Answers each datagram with its name and the size it received."""
    return UdpEcho(ip, port, name, answer=lambda data: f"{name} {len(data)}".encode())


def engine_pid(state):
    with open(state + ".engine.pid") as f:
        return int(f.read())


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
