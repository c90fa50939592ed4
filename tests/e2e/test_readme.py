"""The README's walk-through and its engine section, run verbatim by bash on
a host where another program (sshd, as on most hosts) holds port 22: the
first VM's SSH endpoint. Every command must succeed as a new user types it."""
import os
import re
import shutil
import socket
import subprocess
import tempfile
import unittest

from harness import AZLB, SOURCE, AzlbCase

WALKTHROUGH_STATE = "/tmp/azlb-walkthrough"


def readme_blocks(after_heading):
    """The first ```sh block after a heading of the README."""
    with open(os.path.join(SOURCE, "README.md")) as f:
        text = f.read()
    section = text[text.index(after_heading):]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


@unittest.skipUnless(os.geteuid() == 0, "the walk-through binds port 22 and the VMs' port 80: the README says as root")
class Readme(AzlbCase):
    def run_sections(self, *headings, folders=(WALKTHROUGH_STATE,), env=None):
        """The README's blocks under `headings`, run by bash as a user types them, with azlb on
        the PATH and another program holding port 22 (sshd, on most hosts)."""
        ssh = socket.socket()
        ssh.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            ssh.bind(("127.0.0.1", 22))
            ssh.listen()
        except OSError:
            pass  # a real sshd holds it already: just as good
        self.addCleanup(ssh.close)
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
            self.addCleanup(shutil.rmtree, folder, True)
        bin_dir = tempfile.mkdtemp(prefix="azlb-bin-")
        self.addCleanup(shutil.rmtree, bin_dir, True)
        os.symlink(os.path.abspath(AZLB), os.path.join(bin_dir, "azlb"))
        script = "set -euo pipefail\n" + "".join(readme_blocks(h) for h in headings)
        e = dict(os.environ, PATH=bin_dir + ":" + os.environ["PATH"], **(env or {}))
        e.pop("AZLB_STATE", None)
        p = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=e, timeout=120)
        self.assertEqual(p.returncode, 0, f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        self.assertIn("Engine stopped", p.stdout)
        return p

    def test_the_walk_through_and_the_engine_section_work_verbatim_beside_sshd(self):
        p = self.run_sections("## Walk-through", "## The engine")
        self.assertRegex(p.stdout, r"\bvm[123]\b\n")  # what curl got through the VIP
        self.assertIn("warning: cannot bind tcp 127.0.0.1:22", p.stderr)
        self.assertNotIn("azlb: error", p.stderr)

    def test_the_etcd_section_works_verbatim_after_the_walk_through(self):
        # The README's etcd members are killed at its end; killed here too if it fails half-way.
        self.addCleanup(subprocess.run, ["pkill", "-9", "-f", "/tmp/azlb-etcd/m"], check=False)
        p = self.run_sections("## Walk-through", "## Several hosts", folders=(WALKTHROUGH_STATE, "/tmp/azlb-etcd"),
                              env={"AZLB_RUN_DIR": os.path.join(self.dir, "run")})
        self.assertRegex(p.stdout, r"\bvm[1234]\b\n")
        self.assertIn("Engines of this state (1)", p.stdout)
        self.assertIn("schema_version = 2", p.stdout)

    @unittest.skipUnless(shutil.which("bird") and shutil.which("etcd"), "needs BIRD 2 and etcd (scripts/deps.sh)")
    def test_the_cluster_in_namespaces_works_verbatim(self):
        """`scripts/netns-cluster.sh` as the README runs it: a new user's two-host cluster."""
        name = f"azr{os.getpid() % 100000}"
        env = {"AZLB_CLUSTER_NAME": name, "AZLB_CLUSTER_DIR": os.path.join(self.dir, "cluster")}
        script = readme_blocks("scripts/netns-cluster.sh` builds").replace("azc-", name + "-")
        self.addCleanup(subprocess.run, [os.path.join(SOURCE, "scripts/netns-cluster.sh"), "down"],
                        env=dict(os.environ, **env), capture_output=True)
        bin_dir = tempfile.mkdtemp(prefix="azlb-bin-")
        self.addCleanup(shutil.rmtree, bin_dir, True)
        os.symlink(os.path.abspath(AZLB), os.path.join(bin_dir, "azlb"))
        e = dict(os.environ, PATH=bin_dir + ":" + os.environ["PATH"], **env)
        e.pop("AZLB_STATE", None)
        p = subprocess.run(["bash", "-c", "set -euo pipefail\n" + script], capture_output=True, text=True, env=e,
                           timeout=180, cwd=SOURCE)
        self.assertEqual(p.returncode, 0, f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        self.assertIn("cluster up", p.stdout)
        routes = re.findall(r"nexthop via (198\.18\.1\.\d+)", p.stdout)
        self.assertEqual(routes[:2], ["198.18.1.2", "198.18.1.3"], p.stdout)
        self.assertRegex(p.stdout, r"198\.18\.2\.1 via 198\.18\.1\.3 dev br0")  # h1 withdrawn
        served = re.findall(r"^(vm[123])$", p.stdout, re.M)
        self.assertEqual(len(served), 9, p.stdout)
        self.assertGreater(len(set(served)), 1, served)
        self.assertRegex(p.stdout, r"h1 .* 198\.18\.2\.1[ ,]")
        self.assertRegex(p.stdout, r"h2 .* 198\.18\.2\.1[ ,]")
        self.assertIn("Withdrawn", p.stdout)


if __name__ == "__main__":
    unittest.main()
