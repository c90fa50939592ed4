"""The systemd unit and the logrotate file that `cmake --install` puts in place."""
import os
import shutil
import subprocess
import unittest

from harness import AZLB, SOURCE, AzlbCase

BUILD = os.path.dirname(os.path.dirname(os.path.abspath(AZLB)))
UNIT = os.path.join(BUILD, "dist", "azlb.service")
LOGROTATE = os.path.join(SOURCE, "dist", "azlb.logrotate")


class ServiceFiles(AzlbCase):
    def unit_text(self):
        with open(UNIT) as f:
            return f.read()

    def test_the_unit_runs_the_engine_in_the_foreground_checked_first_and_hardened(self):
        text = self.unit_text()
        lines = dict(l.split("=", 1) for l in text.splitlines() if "=" in l and not l.startswith("#"))
        # $AZLB_ENGINE_ARGS unquoted: systemd splits it into words (more engine options).
        self.assertTrue(lines["ExecStart"].endswith("/azlb engine start --foreground $AZLB_ENGINE_ARGS"),
                        lines["ExecStart"])
        self.assertTrue(lines["ExecStartPre"].endswith("/azlb --quiet engine check"))
        self.assertTrue(lines["ExecReload"].endswith("/azlb --quiet engine reload"))
        environment = [l.split("=", 1)[1] for l in text.splitlines() if l.startswith("Environment=")]
        self.assertEqual(environment, ["AZLB_STATE=/var/lib/azlb/state.toml", "AZLB_ENGINE_ARGS="])
        self.assertEqual(lines["LogsDirectory"], "azlb")
        for key, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                           ("AmbientCapabilities", "CAP_NET_BIND_SERVICE"),
                           ("CapabilityBoundingSet", "CAP_NET_BIND_SERVICE")):
            self.assertEqual(lines[key], value, key)
        # The commands it runs exist and mean what the unit says: check and reload on a real state.
        self.ok("vm", "create", "vm1", "--cloud-service", "web", "--no-default-endpoints")
        self.ok("--quiet", "engine", "check")

    def test_systemd_analyze_verify_finds_nothing_to_say(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze is not installed")
        # verify wants the binaries to exist: point the unit at the one just built.
        installed = self.unit_text().split("ExecStart=", 1)[1].split(" ", 1)[0]
        unit = os.path.join(self.dir, "azlb.service")
        with open(unit, "w") as f:
            f.write(self.unit_text().replace(installed, os.path.abspath(AZLB)))
        p = subprocess.run(["systemd-analyze", "verify", "--man=no", unit], capture_output=True, text=True, timeout=60)
        mentions = [l for l in (p.stdout + p.stderr).splitlines() if "azlb.service" in l]
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(mentions, [])

    def test_logrotate_accepts_its_file(self):
        if not shutil.which("logrotate"):
            self.skipTest("logrotate is not installed")
        state = os.path.join(self.dir, "logrotate.state")
        p = subprocess.run(["logrotate", "-d", "-s", state, LOGROTATE], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn("error", (p.stdout + p.stderr).lower())
        self.assertIn("/var/lib/azlb/*.engine.log", p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main()
