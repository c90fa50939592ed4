"""The bash completion, loaded into a real bash, offers commands, flags and
names from the state file."""
import os
import shutil
import subprocess
import unittest

from harness import AZLB, SOURCE, AzlbCase


@unittest.skipUnless(shutil.which("bash"), "bash is needed")
class BashCompletion(AzlbCase):
    def complete(self, line):
        """What bash offers for the last word of `line` (a trailing space starts a new word)."""
        words = line.split(" ")
        script = f"""
            source {os.path.join(SOURCE, 'completions', 'azlb.bash')}
            COMP_WORDS=({' '.join(repr(w) for w in [AZLB] + words[1:])})
            COMP_CWORD={len(words) - 1}
            _azlb
            printf '%s\\n' "${{COMPREPLY[@]}}"
        """
        env = dict(os.environ, AZLB_STATE=self.state)
        out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, check=True).stdout
        return sorted(w for w in out.split("\n") if w)

    def setUp(self):
        super().setUp()
        self.four_steps()
        self.ok("vm", "create", "db1", "--cloud-service", "data")

    def test_offers_groups_and_their_commands(self):
        self.assertEqual(self.complete("azlb "), ["endpoint", "engine", "lbset", "service", "state", "status", "vm"])
        self.assertEqual(self.complete("azlb state "), ["export", "history", "import", "undo"])
        self.assertEqual(self.complete("azlb state import x --"), ["--help", "--replace"])
        self.assertEqual(self.complete("azlb engine "), ["announce", "check", "reload", "start", "stop", "withdraw"])
        for flag in ("--threads", "--udp-flows", "--buffers", "--pipes", "--fd-reserve"):
            self.assertIn(flag, self.complete("azlb engine start --"))
        self.assertEqual(self.complete("azlb lbset j"), ["join"])
        self.assertEqual(self.complete("azlb lbset d"), ["delete", "drain"])
        self.assertIn("--access-log", self.complete("azlb engine start --"))
        self.assertEqual(self.complete("azlb lbset drain "), ["webset"])
        self.assertEqual(self.complete("azlb lbset drain webset --"), ["--help", "--vm", "--wait"])
        self.assertEqual(self.complete("azlb endpoint acl "), ["add", "list", "remove"])

    def test_offers_vm_names_from_the_state(self):
        self.assertEqual(self.complete("azlb vm show "), ["db1", "vm1", "vm2", "vm3"])
        self.assertEqual(self.complete("azlb lbset join webset --vm v"), ["vm1", "vm2", "vm3"])

    def test_offers_endpoints_of_the_named_vm_and_sets(self):
        self.assertEqual(self.complete("azlb endpoint show db1 "), ["SSH"])
        self.assertEqual(self.complete("azlb endpoint set db1 "), ["SSH"])
        self.assertEqual(self.complete("azlb endpoint acl add vm1 "), ["http"])
        self.assertEqual(self.complete("azlb lbset show "), ["webset"])
        self.assertEqual(self.complete("azlb status --cloud-service "), ["data", "web"])

    def test_offers_flags_and_their_values(self):
        self.assertIn("--probe-interval", self.complete("azlb lbset create s --"))
        self.assertIn("--no-default-endpoints", self.complete("azlb vm create x --"))
        self.assertEqual(self.complete("azlb lbset set webset --distribution "),
                         ["five-tuple", "source-ip", "source-ip-protocol"])
        self.assertEqual(self.complete("azlb -o "), ["json", "table"])
        self.assertEqual(self.complete("azlb lbset set webset --proxy-protocol "), ["none", "v1", "v2"])
        self.assertEqual(self.complete("azlb service set web --dataplane "), ["nat", "proxy"])
        self.assertIn("--dataplane", self.complete("azlb service create x --"))

    def test_reads_the_state_named_by_the_state_flag(self):
        other = os.path.join(self.dir, "other.toml")
        self.ok("--state", other, "vm", "create", "zed", "--cloud-service", "z")
        self.assertEqual(self.complete(f"azlb --state {other} vm show "), ["zed"])
