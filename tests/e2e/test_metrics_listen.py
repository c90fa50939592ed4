"""/metrics over TCP for Prometheus (engine start --metrics-listen), read-only,
and the scrape example, alerts and Grafana dashboard of dist/, checked against
the metric names the engine really serves."""
import json
import os
import re
import socket
import unittest
import urllib.error
import urllib.request

from backends import free_port, random_subnet
from engine_case import EngineCase
from harness import SOURCE
from test_engine_nat import Member, nat_ready

DIST = os.path.join(SOURCE, "dist")


def get(url, method="GET"):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class MetricsListen(EngineCase):
    def test_metrics_over_tcp_serve_only_metrics_and_dist_uses_real_names(self):
        self.farm(2)
        if nat_ready():  # the NAT plane's families too (CI runs as root)
            net = random_subnet()
            self.ok("service", "create", "fast", "--subnet", f"{net}.0/24", "--dataplane", "nat")
            self.ok("vm", "create", "n1", "--cloud-service", "fast", "--no-default-endpoints")
            bport = free_port()
            m = Member(f"{net}.4", bport, "n1")
            self.addCleanup(m.stop)
            self.ok("endpoint", "add", "n1", "--name", "app", "--protocol", "tcp", "--public-port", str(free_port()),
                    "--private-port", str(bport))
        port = free_port()
        self.start_engine("--metrics-listen", f"127.0.0.1:{port}", "--access-log", os.path.join(self.dir, "access.log"))
        code, text = get(f"http://127.0.0.1:{port}/metrics")
        self.assertEqual(code, 200)
        served = set(re.findall(r"^# TYPE (azlb_\w+) ", text, re.M))
        self.assertIn("azlb_member_up", served)
        # Nothing else: no status (it names addresses), no reload.
        self.assertEqual(get(f"http://127.0.0.1:{port}/v1/status")[0], 404)
        self.assertEqual(get(f"http://127.0.0.1:{port}/v1/reload", "POST")[0], 404)
        # Every metric the dist files use is one the engine serves.
        with open(os.path.join(DIST, "grafana-dashboard.json")) as f:
            dashboard = json.load(f)
        used = {name for p in dashboard["panels"] for t in p["targets"] for name in re.findall(r"azlb_\w+", t["expr"])}
        with open(os.path.join(DIST, "azlb-alerts.yml")) as f:
            used |= set(re.findall(r"expr: .*?(azlb_\w+)", f.read()))
        self.assertGreater(len(used), 10)
        if not nat_ready():
            used = {n for n in used if not n.startswith("azlb_nat_")}
        self.assertEqual(used - served, set(), "dist names metrics the engine does not serve")
        with open(os.path.join(DIST, "prometheus.yml")) as f:
            self.assertIn("azlb-alerts.yml", f.read())

    def test_a_bad_or_taken_metrics_address_fails_the_start_with_one_line(self):
        self.farm(1)
        self.fails(2, "engine", "start", "--metrics-listen", "127.0.0.1", mentions="ADDR:PORT")
        self.fails(2, "engine", "start", "--metrics-listen", "127.0.0.300:9", mentions="127.0.0.300")
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        self.addCleanup(taken.close)
        r = self.azlb("engine", "start", "--metrics-listen", f"127.0.0.1:{taken.getsockname()[1]}")
        self.assertEqual(r.rc, 1, r)
        self.assertIn("cannot listen for metrics", r.err)
        self.assertFalse(self.engine_status()["engine"]["running"])


if __name__ == "__main__":
    unittest.main()


class StatusWatch(EngineCase):
    """azlb status --watch: the live view, its rates and totals."""

    def test_rates_totals_and_last_probes(self):
        import subprocess
        import threading
        import time
        from backends import http_get
        from harness import AZLB
        self.farm(2)
        self.ok("engine", "start")
        self.addCleanup(self.azlb, "engine", "stop")
        self.wait_health({"vm1": "up", "vm2": "up"})
        stop = threading.Event()

        def load():
            while not stop.is_set():
                http_get(self.port)
                time.sleep(0.01)
        t = threading.Thread(target=load)
        t.start()
        try:
            env = dict(os.environ, AZLB_STATE=self.state)
            p = subprocess.run([AZLB, "-o", "json", "status", "--watch", "1", "--count", "2"], capture_output=True,
                               text=True, env=env, timeout=30)
            table = self.ok("status", "--watch", "1", "--count", "2").out
        finally:
            stop.set()
            t.join()
        self.assertEqual(p.returncode, 0, p.stderr)
        rounds = [json.loads(line) for line in p.stdout.splitlines()]
        self.assertEqual(len(rounds), 2)
        self.assertIsNone(rounds[0]["members"][0]["new_per_s"])  # one sample: no rate yet
        second = {m["vm"]: m for m in rounds[1]["members"]}
        self.assertGreater(sum(m["new_per_s"] for m in second.values()), 1)
        self.assertGreater(second["vm1"]["bytes_out_per_s"], 0)
        self.assertTrue(second["vm1"]["last_probe"]["ok"])
        self.assertIsNotNone(second["vm1"]["health_since"])
        sets = {s["name"]: s for s in rounds[1]["sets"]}
        self.assertEqual(sets["web/webset"]["up"], 2)
        self.assertEqual(sets["web/webset"]["total"], sum(m["total"] for m in second.values()))
        # Piped: two blocks of plain lines, no terminal codes.
        self.assertEqual(table.count("azlb status --watch: every 1 s"), 2)
        self.assertNotIn("\033[", table)
        self.assertIn("set web/webset", table)
        self.assertRegex(table, r"ok: HTTP 200")

    def test_without_an_engine_it_says_so_and_goes_on(self):
        self.farm(1)
        r = self.ok("status", "--watch", "1", "--count", "2")
        self.assertEqual(r.out.count("no engine runs"), 2)
        self.fails(2, "status", "--watch", "0", "--count", "1", mentions="0")
