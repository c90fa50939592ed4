"""A cluster of azlb hosts in network namespaces that the tests make and
remove (addresses from 198.18.0.0/15 inside them only), as the README's
"Several hosts" section builds it by hand:

    client 198.18.0.2 --- router 198.18.0.1 | 198.18.1.1 (bridge, BIRD: ECMP)
                                              |-- h1 198.18.1.2 (BIRD, azlb engine --announce)
                                              |-- h2 198.18.1.3 (BIRD, azlb engine --announce)
                                              |-- m1..m3 198.18.1.11-13 (members, the VIP on lo)

One etcd member on the router's bridge address keeps the state; every host's
azlb reads it. BIRD runs the configs of dist/bird as they ship, with the
lines they mark CHANGE changed. Code runs inside a namespace on a thread of
its own (setns), so the test's sockets live in the client's namespace."""
import ctypes
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from harness import AZLB, SOURCE

CLONE_NEWNET = 0x40000000
VIP = "198.18.2.1"
PROXY_VIP, PROXY_PORT = "198.18.3.1", 80  # a proxy service's: each host owns it (lo) and accepts its connections
# Its VMs: second addresses of the members' hosts (a private address is one VM's).
PROXY_MEMBERS = {"p1": ("vm1", "198.18.1.21"), "p2": ("vm2", "198.18.1.22"), "p3": ("vm3", "198.18.1.23")}
ROUTER, CLIENT = "198.18.1.1", "198.18.0.2"
HOSTS = {"h1": "198.18.1.2", "h2": "198.18.1.3"}
MEMBERS = {"vm1": "198.18.1.11", "vm2": "198.18.1.12", "vm3": "198.18.1.13"}
TCP_PORT, UDP_PORT = 8080, 5353
_libc = ctypes.CDLL(None, use_errno=True)


FRR_LIBEXEC = "/usr/lib/frr"


def frr_ready():
    """FRR's daemons and vtysh (Debian's frr): a host may then run FRR instead of BIRD."""
    return shutil.which("vtysh") is not None and os.access(os.path.join(FRR_LIBEXEC, "bgpd"), os.X_OK)


def ready():
    return (os.geteuid() == 0 and shutil.which("ip") and shutil.which("bird") and shutil.which("birdc")
            and shutil.which("etcd") and shutil.which("nft"))


def in_ns(ns, fn, *args):
    """fn(*args) on a thread inside network namespace `ns`; its result, or its exception."""
    out = {}

    def run():
        try:
            fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            finally:
                os.close(fd)
            out["value"] = fn(*args)
        except BaseException as e:  # handed to the caller
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def greeted(address, port, timeout):
    """A connection to a server that speaks first: (socket, its first line)."""
    s = socket.create_connection((address, port), timeout=timeout)
    line = b""
    while not line.endswith(b"\n"):
        chunk = s.recv(100)
        if not chunk:
            raise OSError("closed before the greeting")
        line += chunk
    return s, line.decode().strip()


def sh(*args, check=True):
    return subprocess.run(args, capture_output=True, text=True, check=check)


class Cluster:
    def __init__(self):
        self.id = f"{os.getpid() % 10000}{random.randint(0, 999)}"
        self.dir = tempfile.mkdtemp(prefix="azlb-cluster-")
        self.procs = {}
        self.frr_dirs = {}
        self.ns = {n: f"az{self.id}{n}" for n in ("c", "r", *HOSTS, *MEMBERS)}
        self.prefix = f"/azlb/cluster{self.id}"
        self.etcd_port = 23000 + random.randint(0, 999)
        try:
            self._build()
        except BaseException:
            self.stop()
            raise

    # --- the network -------------------------------------------------------
    def _build(self):
        for ns in self.ns.values():
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        r, c = self.ns["r"], self.ns["c"]
        sh("ip", "link", "add", "c0", "netns", c, "type", "veth", "peer", "name", "r0", "netns", r)
        sh("ip", "-n", c, "addr", "add", CLIENT + "/30", "dev", "c0")
        sh("ip", "-n", r, "addr", "add", "198.18.0.1/30", "dev", "r0")
        for ns, dev in ((c, "c0"), (r, "r0")):
            sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", c, "route", "add", "default", "via", "198.18.0.1")
        sh("ip", "-n", r, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", r, "addr", "add", ROUTER + "/24", "dev", "br0")
        sh("ip", "-n", r, "link", "set", "br0", "up")
        for name, addr in {**HOSTS, **MEMBERS}.items():
            ns = self.ns[name]
            port = f"p{name}"
            sh("ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", port, "netns", r)
            sh("ip", "-n", r, "link", "set", port, "master", "br0")
            sh("ip", "-n", r, "link", "set", port, "up")
            sh("ip", "-n", ns, "addr", "add", addr + "/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "route", "add", "default", "via", ROUTER)
        for host, addr in PROXY_MEMBERS.values():
            sh("ip", "-n", self.ns[host], "addr", "add", addr + "/24", "dev", "eth0")
        self.sysctl(r, "net.ipv4.ip_forward", "1")
        self.sysctl(r, "net.ipv4.fib_multipath_hash_policy", "1")
        for h in HOSTS:
            # A balancer host forwards DSR flows back out of the link they came
            # in on: no ICMP redirects, or the router learns to skip it.
            self.sysctl(self.ns[h], "net.ipv4.ip_forward", "1")
            for dev in ("all", "default", "eth0"):
                self.sysctl(self.ns[h], f"net.ipv4.conf.{dev}.send_redirects", "0")
            # The proxy service's VIP is each host's own: its engine accepts
            # there. A local route, not an address: FRR's zebra makes a
            # connected route of every address, which would hide from BGP
            # the route azlb announces (dist/frr/frr.conf).
            sh("ip", "-n", self.ns[h], "route", "add", "local", PROXY_VIP + "/32", "dev", "lo")

    def sysctl(self, ns, key, value):
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"{key}={value}")

    # --- processes ---------------------------------------------------------
    def spawn(self, key, ns, args, env=None):
        e = dict(os.environ)
        e.update(env or {})
        with open(os.path.join(self.dir, key + ".log"), "w") as log:
            p = subprocess.Popen(["ip", "netns", "exec", self.ns[ns], *args], stdout=log, stderr=subprocess.STDOUT,
                                 env=e)
        self.procs[key] = p
        return p

    def kill(self, key):
        p = self.procs.pop(key, None)
        if p and p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()

    def start_etcd(self):
        url = f"http://{ROUTER}:{self.etcd_port}"
        self.spawn("etcd", "r", ["etcd", "--name", "e", "--data-dir", os.path.join(self.dir, "etcd"),
                                 "--listen-client-urls", url, "--advertise-client-urls", url,
                                 "--listen-peer-urls", f"http://{ROUTER}:{self.etcd_port + 1000}",
                                 "--initial-advertise-peer-urls", f"http://{ROUTER}:{self.etcd_port + 1000}",
                                 "--initial-cluster", f"e=http://{ROUTER}:{self.etcd_port + 1000}",
                                 "--log-level", "error"])

    def state(self):
        return f"etcd://{ROUTER}:{self.etcd_port}{self.prefix}"

    def host_env(self, host):
        run = os.path.join(self.dir, host + "-run")
        os.makedirs(run, exist_ok=True)
        return {"AZLB_STATE": self.state(), "AZLB_HOST_NAME": host, "AZLB_RUN_DIR": run}

    def azlb(self, host, *args, check=True, timeout=60):
        """azlb on a host (its namespace, its run folder, its host name)."""
        e = dict(os.environ)
        e.update(self.host_env(host))
        p = subprocess.run(["ip", "netns", "exec", self.ns[host], AZLB, *args], capture_output=True, text=True, env=e,
                           timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"azlb {' '.join(args)} on {host}: exit {p.returncode}: {p.stderr}")
        return p

    def shipped_conf(self, path, name, *changes):
        """A config of dist/ with the lines it marks CHANGE changed for host
        `name`: each (old, new) pair, new formatted with its {address} and {asn}."""
        with open(os.path.join(SOURCE, path)) as f:
            text = f.read()
        asn = 65000 + list(HOSTS).index(name) + 1
        for old, new in changes:
            text = text.replace(old, new.format(address=HOSTS[name], asn=asn))
        return text

    def bird_conf(self, name):
        if name == "r":
            with open(os.path.join(SOURCE, "dist/bird/router-example.conf")) as f:
                return f.read()
        return self.shipped_conf("dist/bird/azlb-host.conf", name, ("router id 198.18.1.2;", "router id {address};"),
                                 ("local as 65001;", "local as {asn};"))

    def start_bird(self, name):
        conf = os.path.join(self.dir, f"bird-{name}.conf")
        with open(conf, "w") as f:
            f.write(self.bird_conf(name))
        self.spawn("bird-" + name, name, ["bird", "-f", "-c", conf, "-s", os.path.join(self.dir, f"bird-{name}.ctl")])

    def frr_conf(self, name):
        return self.shipped_conf("dist/frr/frr.conf", name, ("bgp router-id 198.18.1.2", "bgp router-id {address}"),
                                 ("router bgp 65001", "router bgp {asn}"))

    def start_frr(self, name):
        """FRR on host `name`: zebra, bgpd and bfdd, each in the foreground as
        FRR's own user, with their sockets in a folder of their own; then the
        shipped integrated config, applied by vtysh as `vtysh -b` applies
        /etc/frr/frr.conf at boot."""
        d = os.path.join(self.dir, f"frr-{name}")
        os.makedirs(d)
        os.chmod(self.dir, 0o755)  # the daemons leave root's privileges: they must reach `d`
        os.chmod(d, 0o777)
        empty, conf = os.path.join(d, "empty.conf"), os.path.join(d, "frr.conf")
        for path, text in ((empty, ""), (conf, self.frr_conf(name))):
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o644)
        for daemon in ("zebra", "bgpd", "bfdd"):
            extra = ["--bfdctl", os.path.join(d, "bfdd.sock")] if daemon == "bfdd" else []
            self.spawn(f"frr-{daemon}-{name}", name, [os.path.join(FRR_LIBEXEC, daemon), "-f", empty, "-i",
                                                      os.path.join(d, daemon + ".pid"), "-z",
                                                      os.path.join(d, "zserv.api"), "--vty_socket", d, "-P", "0",
                                                      "--log", "stdout", *extra])
            vty = os.path.join(d, daemon + ".vty")
            deadline = time.monotonic() + 20
            while not os.path.exists(vty):
                if time.monotonic() > deadline:
                    raise AssertionError(f"FRR's {daemon} did not start on {name}")
                time.sleep(0.05)
        p = subprocess.run(["ip", "netns", "exec", self.ns[name], "vtysh", "--vty_socket", d, "-f", conf],
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise AssertionError(f"vtysh -f {conf} on {name}: {p.stdout}{p.stderr}")
        self.frr_dirs[name] = d

    def vtysh(self, name, *commands):
        args = [a for c in commands for a in ("-c", c)]
        return sh("ip", "netns", "exec", self.ns[name], "vtysh", "--vty_socket", self.frr_dirs[name], *args).stdout

    def router_paths(self, vip=VIP):
        """The hosts the router's route to the VIP goes through now."""
        out = sh("ip", "-n", self.ns["r"], "route", "show", vip, check=False).stdout
        return sorted(h for h, a in HOSTS.items() if f"via {a} " in out)

    def start_engine(self, host):
        return self.azlb(host, "engine", "start", "--threads", "1", "--announce")

    def member_servers(self):
        """Each member: the VIP on lo (vm dsr-setup --apply, run there), a TCP
        server that greets with its name and echoes, a UDP one that answers
        its name, from the VIP."""
        for vm, addr in MEMBERS.items():
            e = dict(os.environ)
            e.update(self.host_env("h1"))
            p = subprocess.run(["ip", "netns", "exec", self.ns[vm], AZLB, "vm", "dsr-setup", vm, "--apply"],
                               capture_output=True, text=True, env=e)
            if p.returncode != 0:
                raise AssertionError(p.stderr)
            in_ns(self.ns[vm], self._serve, vm)

    @staticmethod
    def _serve(vm):
        tcp = socket.create_server(("0.0.0.0", TCP_PORT), reuse_port=True)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind((VIP, UDP_PORT))

        def echo(c):
            with c:
                c.sendall(f"{vm}\n".encode())
                try:
                    while data := c.recv(4096):
                        c.sendall(data)
                except OSError:
                    pass

        def accept():
            while True:
                c, _ = tcp.accept()
                threading.Thread(target=echo, args=(c,), daemon=True).start()

        def answer():
            while True:
                data, peer = udp.recvfrom(2048)
                udp.sendto(vm.encode(), peer)

        threading.Thread(target=accept, daemon=True).start()
        threading.Thread(target=answer, daemon=True).start()

    # --- the client --------------------------------------------------------
    def connect(self, timeout=3, vip=VIP, port=TCP_PORT):
        """A connection from the client to the VIP: (socket, the member that greeted)."""
        return in_ns(self.ns["c"], greeted, vip, port, timeout)

    def ask_udp(self, sport=0):
        def go():
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.settimeout(2)
                u.bind((CLIENT, sport))
                u.sendto(b"q", (VIP, UDP_PORT))
                return u.recvfrom(100)[0].decode()
        return in_ns(self.ns["c"], go)

    def stop(self):
        for key in list(self.procs):
            if key.startswith(("bird-", "frr-")) or key == "etcd":
                self.kill(key)
        for host in HOSTS:
            # An engine started by `engine start` is a daemon: stop it by pid.
            try:
                self.azlb(host, "engine", "stop", check=False, timeout=20)
            except Exception:
                pass
        for key in list(self.procs):
            self.kill(key)
        for ns in self.ns.values():
            # Whatever still runs there (a daemon that outlived its parent) goes with the namespace.
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        if not os.environ.get("AZLB_KEEP_TMP"):
            shutil.rmtree(self.dir, ignore_errors=True)
