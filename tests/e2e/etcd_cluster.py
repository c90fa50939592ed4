"""A real etcd cluster (Debian's etcd-server) on loopback ports, started and
stopped by pid, for the tests of a state kept in etcd."""
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

from backends import free_port

ETCD = shutil.which("etcd") or "/usr/bin/etcd"
ETCDCTL = shutil.which("etcdctl") or "/usr/bin/etcdctl"


class EtcdCluster:
    """n members; member i serves clients on self.client[i]. `tls`: a dict of
    PEM files (ca, server_cert, server_key) to serve HTTPS with client
    certificates required."""

    def __init__(self, n=3, tls=None, extra=()):
        self.dir = tempfile.mkdtemp(prefix="azlb-etcd-")
        self.n, self.tls, self.extra = n, tls, list(extra)
        self.names = [f"m{i}" for i in range(n)]
        self.client = [free_port() for _ in range(n)]
        self.peer = [free_port() for _ in range(n)]
        self.procs = [None] * n
        scheme = "https" if tls else "http"
        self.scheme = scheme
        self.initial = ",".join(f"{self.names[i]}=http://127.0.0.1:{self.peer[i]}" for i in range(n))
        try:
            for i in range(n):
                self.start(i)
            self.wait_healthy()
        except BaseException:
            self.stop()  # no member outlives a cluster that did not come up
            raise

    def endpoints(self, order=None):
        order = range(self.n) if order is None else order
        return ",".join(f"127.0.0.1:{self.client[i]}" for i in order)

    def url(self, prefix, order=None):
        return f"etcd{'+https' if self.tls else ''}://{self.endpoints(order)}{prefix}"

    def start(self, i):
        """Starts member i unless it runs."""
        if self.procs[i] and self.procs[i].poll() is None:
            return
        cmd = [ETCD, "--name", self.names[i], "--data-dir", os.path.join(self.dir, self.names[i]),
               "--listen-client-urls", f"{self.scheme}://127.0.0.1:{self.client[i]}",
               "--advertise-client-urls", f"{self.scheme}://127.0.0.1:{self.client[i]}",
               "--listen-peer-urls", f"http://127.0.0.1:{self.peer[i]}",
               "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.peer[i]}",
               "--initial-cluster", self.initial, "--initial-cluster-token", os.path.basename(self.dir),
               "--heartbeat-interval", "50", "--election-timeout", "500", "--log-level", "error", *self.extra]
        if self.tls:
            cmd += ["--cert-file", self.tls["server_cert"], "--key-file", self.tls["server_key"],
                    "--trusted-ca-file", self.tls["ca"], "--client-cert-auth"]
        log = open(os.path.join(self.dir, f"{self.names[i]}.log"), "a")
        self.procs[i] = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)
        log.close()

    def kill(self, i):
        p = self.procs[i]
        if p and p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait(10)
        self.procs[i] = None

    def ctl(self, *args, member=None, check=True, env=None):
        """etcdctl against one member (or all)."""
        eps = self.endpoints() if member is None else f"127.0.0.1:{self.client[member]}"
        e = dict(os.environ, ETCDCTL_API="3")
        e.update(env or {})
        cmd = [ETCDCTL, "--endpoints", eps, "--dial-timeout", "2s", "--command-timeout", "5s"]
        if self.tls:
            cmd += ["--cacert", self.tls["ca"], "--cert", self.tls["client_cert"], "--key", self.tls["client_key"]]
        p = subprocess.run(cmd + list(args), capture_output=True, text=True, env=e, timeout=30)
        if check and p.returncode != 0:
            raise AssertionError(f"etcdctl {' '.join(args)}: {p.stderr}")
        return p

    def wait_healthy(self, members=None, timeout=30):
        members = range(self.n) if members is None else members
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.ctl("endpoint", "health", member=i, check=False).returncode == 0 for i in members):
                return
            time.sleep(0.2)
        raise AssertionError(f"etcd members {list(members)} not healthy within {timeout}s")

    def revision(self):
        out = self.ctl("get", "/", "-w", "json").stdout
        import json
        return int(json.loads(out)["header"]["revision"])

    def stop(self):
        for i in range(self.n):
            self.kill(i)
        shutil.rmtree(self.dir, True)


def make_certs(folder):
    """A CA, a server certificate for 127.0.0.1, a client certificate, and a second CA that signed nothing."""
    def ssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)
    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=azlb test CA")
    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other-ca.key", "-out", "other-ca.pem", "-days",
        "2", "-subj", "/CN=another CA")
    ext = os.path.join(folder, "san.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n")
    for name in ("server", "client"):
        ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj",
            f"/CN={name}")
        ssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out",
            f"{name}.pem", "-days", "2", "-extfile", ext)
    p = lambda n: os.path.join(folder, n)
    return {"ca": p("ca.pem"), "other_ca": p("other-ca.pem"), "server_cert": p("server.pem"),
            "server_key": p("server.key"), "client_cert": p("client.pem"), "client_key": p("client.key")}
