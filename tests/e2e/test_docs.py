"""The man pages agree with the tool: every option a command's --help lists
is named in its group's man page."""
import os
import re
import shutil
import subprocess
import unittest

from harness import AZLB, SOURCE

GLOBAL = {"--help", "--state", "--output", "--quiet", "--dry-run", "--yes", "--version"}


def commands(path=()):
    """Every command path, from --help's Subcommands section, depth first."""
    out = subprocess.run([AZLB, *path, "--help"], capture_output=True, text=True).stdout
    subs = re.findall(r"^  ([a-z][a-z-]*)\s", out.split("Subcommands:", 1)[1], re.M) if "Subcommands:" in out else []
    if not subs:
        yield path, out
    for sub in subs:
        yield from commands((*path, sub))


class Docs(unittest.TestCase):
    def test_every_option_in_help_is_in_the_man_page(self):
        missing, seen = [], 0
        for path, help_text in commands():
            if not path or path[0] == "__complete":
                continue
            page = os.path.join(SOURCE, "man", f"azlb-{path[0]}.1")
            if not os.path.exists(page):
                missing.append(f"{' '.join(path)}: no man page {page}")
                continue
            with open(page) as f:
                man = f.read().replace("\\-", "-")
            for opt in sorted(set(re.findall(r"(--[a-z][a-z-]+)", help_text)) - GLOBAL):
                seen += 1
                if opt not in man:
                    missing.append(f"azlb {' '.join(path)} {opt}")
        self.assertGreater(seen, 40)
        self.assertEqual(missing, [])
        with open(os.path.join(SOURCE, "man", "azlb.1")) as f:
            top = f.read().replace("\\-", "-")
        for opt in GLOBAL - {"--help", "--version"}:
            self.assertIn(opt, top)


if __name__ == "__main__":
    unittest.main()


class TestSuites(unittest.TestCase):
    def test_every_test_class_runs_under_ctest(self):
        # A module split into parts in tests/CMakeLists.txt (NAME=module.Class
        # ...) runs only the classes it names: a class added to the module and
        # not to a part would never run.
        cmake = open(os.path.join(SOURCE, "tests", "CMakeLists.txt")).read()
        parts = re.findall(r'"[a-z_]+=([^"]+)"', cmake)
        named = {c for p in parts for c in p.split()}
        for module in {c.split(".")[0] for c in named}:
            text = open(os.path.join(SOURCE, "tests", "e2e", module + ".py")).read()
            for cls in re.findall(r"^class (\w+)\((?:\w+Case|unittest\.TestCase)\)", text, re.M):
                if "def test_" in text.split(f"class {cls}(", 1)[1].split("\nclass ", 1)[0]:
                    self.assertIn(f"{module}.{cls}", named, f"{module}.{cls} is in no ctest suite")


class ShippedConfigs(unittest.TestCase):
    """dist/'s BGP configs as they ship are valid for the daemons they are for
    (BIRD's is also run by test_engine_announce and test_cluster)."""

    @unittest.skipUnless(shutil.which("bird"), "BIRD 2 is not installed (scripts/deps.sh)")
    def test_bird_configs_parse(self):
        for conf in ("azlb-host.conf", "router-example.conf"):
            p = subprocess.run(["bird", "-p", "-c", os.path.join(SOURCE, "dist/bird", conf)], capture_output=True,
                               text=True)
            self.assertEqual(p.returncode, 0, f"{conf}: {p.stderr}")

    @unittest.skipUnless(shutil.which("vtysh"), "FRR is not installed")
    def test_frr_config_checks(self):
        p = subprocess.run(["vtysh", "-C", "-f", os.path.join(SOURCE, "dist/frr/frr.conf")], capture_output=True,
                           text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
