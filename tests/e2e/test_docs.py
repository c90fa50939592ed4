"""The man pages agree with the tool: every option a command's --help lists
is named in its group's man page."""
import os
import re
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
