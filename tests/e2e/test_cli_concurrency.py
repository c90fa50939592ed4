"""Concurrent writers never lose an update; a writer killed mid-way never
leaves a torn file."""
import os
import signal
import subprocess
import time

from harness import AZLB, AzlbCase


class Concurrency(AzlbCase):
    def spawn(self, *args, stderr=subprocess.PIPE):
        env = dict(os.environ, AZLB_STATE=self.state)
        return subprocess.Popen([AZLB, *args], env=env, stdout=subprocess.DEVNULL, stderr=stderr)

    def test_32_concurrent_writers_lose_no_update(self):
        self.ok("vm", "create", "vm1", "--cloud-service", "web", "--no-default-endpoints")
        writers = [self.spawn("endpoint", "add", "vm1", "--name", f"e{i}", "--protocol", "tcp",
                              "--public-port", str(10000 + i), "--private-port", "80") for i in range(32)]
        for w in writers:
            _, err = w.communicate(timeout=60)
            self.assertEqual(w.returncode, 0, err)
        names = {e["name"] for e in self.ok("endpoint", "list", "vm1", "-o", "json").json()["endpoints"]}
        self.assertEqual(names, {f"e{i}" for i in range(32)})

    def test_racing_writers_for_one_port_give_exactly_one_winner(self):
        self.ok("vm", "create", "vm1", "--cloud-service", "web", "--no-default-endpoints")
        writers = [self.spawn("endpoint", "add", "vm1", "--name", f"e{i}", "--protocol", "tcp",
                              "--public-port", "7000", "--private-port", "80") for i in range(16)]
        codes = sorted(w.wait(timeout=60) for w in writers)
        for w in writers:
            w.stderr.close()
        self.assertEqual(codes, [0] + [4] * 15)

    def test_writers_killed_at_random_moments_leave_a_valid_file(self):
        self.ok("vm", "create", "vm1", "--cloud-service", "web", "--no-default-endpoints")
        deadline = time.monotonic() + 20
        for i in range(60):
            if time.monotonic() > deadline:
                break
            w = self.spawn("endpoint", "add", "vm1", "--name", f"k{i}", "--protocol", "tcp",
                           "--public-port", str(20000 + i), "--private-port", "80", stderr=subprocess.DEVNULL)
            time.sleep((i % 7) * 0.0005)
            w.send_signal(signal.SIGKILL)
            w.wait()
            listed = self.azlb("endpoint", "list", "vm1", "-o", "json")
            self.assertEqual(listed.rc, 0, f"after kill {i}: {listed}")
        # A later writer still gets through: the lock died with its holder.
        self.ok("endpoint", "add", "vm1", "--name", "after", "--protocol", "tcp", "--public-port", "30000",
                "--private-port", "80")
        # ...and swept away the temp files that killed writers left.
        self.assertEqual([f for f in os.listdir(self.dir) if ".tmp." in f], [])
