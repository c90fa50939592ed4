"""Runs the real azlb binary against a state file in a fresh temp folder."""
import hashlib
import json
import os
import resource
import shutil
import subprocess
import tempfile
import unittest

AZLB = os.environ.get("AZLB_BIN", os.path.join(os.path.dirname(__file__), "../../build/cli/azlb"))
SOURCE = os.environ.get("AZLB_SOURCE", os.path.join(os.path.dirname(__file__), "../.."))
# How much slower this build runs than a release build (a sanitizer build: 4).
TIME_SCALE = float(os.environ.get("AZLB_TIME_SCALE", "1"))


class Run:
    def __init__(self, proc):
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def json(self):
        return json.loads(self.out)

    def __repr__(self):
        return f"rc={self.rc}\nstdout:\n{self.out}\nstderr:\n{self.err}"


class AzlbCase(unittest.TestCase):
    """Each test gets its own folder and state file."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="azlb-e2e-")
        self.state = os.path.join(self.dir, "state.toml")
        if not os.environ.get("AZLB_KEEP_TMP"):
            self.addCleanup(shutil.rmtree, self.dir, True)

    def azlb(self, *args, env=None, timeout=30, nofile=None):
        """Runs azlb; `nofile` lowers its limit of open files (a daemon inherits it)."""
        e = dict(os.environ)
        e["AZLB_STATE"] = self.state
        e.update(env or {})
        limit = (lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))) if nofile else None
        # surrogateescape: a path that is not UTF-8 comes back as it was written.
        p = subprocess.run([AZLB, *args], capture_output=True, text=True, errors="surrogateescape", env=e,
                           timeout=timeout, preexec_fn=limit)
        return Run(p)

    def ok(self, *args, **kw):
        r = self.azlb(*args, **kw)
        self.assertEqual(r.rc, 0, f"azlb {' '.join(args)} failed:\n{r}")
        return r

    def read(self, path=None):
        with open(path or self.state, errors="surrogateescape") as f:
            return f.read()

    def write(self, text, path=None):
        with open(path or self.state, "w") as f:
            f.write(text)

    def state_digest(self):
        if not os.path.exists(self.state):
            return None
        with open(self.state, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()

    def fails(self, code, *args, mentions=None):
        """The command exits with `code`, says one line naming `mentions`, and leaves the file alone."""
        before = self.state_digest()
        r = self.azlb(*args)
        self.assertEqual(r.rc, code, f"azlb {' '.join(args)}:\n{r}")
        self.assertEqual(r.out, "", r)
        lines = r.err.strip("\n").split("\n")
        self.assertEqual(len(lines), 1, f"expected one line on stderr:\n{r.err}")
        if mentions:
            self.assertIn(mentions, r.err)
        self.assertEqual(self.state_digest(), before, "the state file changed on a failure")
        return r

    def start_engine(self, *extra, env=None, nofile=None):
        r = self.ok("engine", "start", "--threads", "2", *extra, env=env, nofile=nofile)
        self.addCleanup(self.check_engine_log)
        self.addCleanup(self.azlb, "engine", "stop")
        return r

    def check_engine_log(self):
        """A sanitizer build reports into the daemon's log: any report fails the test."""
        log = self.state + ".engine.log"
        if os.path.exists(log):
            text = self.read(log)
            for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                self.assertNotIn(marker, text, f"sanitizer report in the engine log:\n{text[-3000:]}")

    def engine_status(self):
        """The engine's own /v1/status document, through `azlb status -o json`'s source."""
        return self.ok("status", "-o", "json").json()

    def member_health(self, lbset):
        st = self.engine_status()
        for svc in st["cloud_services"]:
            for s in svc["lbsets"]:
                if s["name"] == lbset:
                    return {m["vm"]: m["health"] for m in s["members"]}
        raise AssertionError(f"no set {lbset}")

    def four_steps(self):
        """The portal's four steps for three VMs behind one set."""
        self.ok("vm", "create", "vm1", "--cloud-service", "web", "--no-default-endpoints")
        self.ok("vm", "create", "vm2", "--cloud-service", "web", "--no-default-endpoints")
        self.ok("vm", "create", "vm3", "--cloud-service", "web", "--no-default-endpoints")
        self.ok("endpoint", "add", "vm1", "--name", "http", "--protocol", "tcp",
                "--public-port", "8080", "--private-port", "80")
        self.ok("lbset", "create", "webset", "--vm", "vm1", "--endpoint", "http",
                "--probe-protocol", "http", "--probe-path", "/")
        self.ok("lbset", "join", "webset", "--vm", "vm2")
        self.ok("lbset", "join", "webset", "--vm", "vm3")
