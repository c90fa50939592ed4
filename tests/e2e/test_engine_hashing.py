"""The consistent hash through the real engine: weights, the same member for
a flow on every host of a state (its hash_seed), and a member that goes down
moving only its own clients."""
import collections
import os
import re

from backends import http_get, wait_until
from engine_case import EngineCase


class Hashing(EngineCase):
    def test_weights_share_out_new_connections_and_status_shows_each_share(self):
        self.farm()
        self.ok("lbset", "weight", "webset", "--vm", "vm3", "--weight", "3")
        self.start_engine()
        self.wait_health({"vm1": "up", "vm2": "up", "vm3": "up"})
        n = 1000
        counts = collections.Counter(http_get(self.port) for _ in range(n))
        # Chi-square against 1:1:3 with 2 degrees of freedom (13.8: the 0.1% tail).
        expected = {"vm1": n / 5, "vm2": n / 5, "vm3": 3 * n / 5}
        chi2 = sum((counts[vm] - e) ** 2 / e for vm, e in expected.items())
        self.assertLess(chi2, 13.8, f"not 1:1:3: {dict(counts)}")
        members = {m["vm"]: m for m in self.ok("lbset", "show", "webset", "-o", "json").json()["members"]}
        self.assertEqual([members[vm]["weight"] for vm in ("vm1", "vm2", "vm3")], [1, 1, 3])
        self.assertAlmostEqual(members["vm3"]["share"], 0.6, delta=0.01)
        self.assertRegex(self.ok("lbset", "show", "webset").out, r"vm3 .* 3 +60\.\d% +up")
        engine = [m for m in self.admin_json()["members"] if m["lbset"] == "webset"]
        self.assertEqual(sum(m["hash_slots"] for m in engine), 65537)
        # A member that goes down gives its share to the others; they add up to 1.
        self.backends["vm3"].healthy = False
        self.wait_health({"vm1": "up", "vm2": "up", "vm3": "down"})
        members = {m["vm"]: m for m in self.ok("lbset", "show", "webset", "-o", "json").json()["members"]}
        self.assertEqual(members["vm3"]["share"], 0)
        self.assertAlmostEqual(members["vm1"]["share"] + members["vm2"]["share"], 1.0, delta=0.001)
        metrics = self.admin("/metrics")[1]
        self.assertRegex(metrics, r'azlb_member_share\{service="web",lbset="webset",vm="vm3",endpoint="http"\} 0\.0000')

    def clients(self, port):
        """The member each of 40 client addresses reaches."""
        return {c: http_get(port, source=f"127.0.0.{100 + c}") for c in range(40)}

    def test_two_hosts_of_one_state_send_each_client_to_the_same_member(self):
        """Two engines (two "hosts") on copies of one state: with source-ip,
        each client reaches the same VM through either; a copy with another
        seed sends many elsewhere."""
        self.farm(4, extra=("--distribution", "source-ip"))
        seed = re.search(r"^hash_seed = (\d+)$", self.read(), re.M)
        self.assertIsNotNone(seed, "a state gets a hash_seed with its first change")
        # The second host listens elsewhere on this machine: another VIP.
        other = os.path.join(self.dir, "host2.toml")
        text = self.read().replace('vip = "127.0.0.1"', 'vip = "127.0.0.2"')
        self.write(text, other)
        self.start_engine()
        env = {"AZLB_STATE": other}
        self.ok("engine", "start", "--threads", "2", env=env)
        self.addCleanup(self.azlb, "engine", "stop", env=env)
        self.wait_health({f"vm{i}": "up" for i in range(1, 5)})
        wait_until(lambda: http_get(self.port, host="127.0.0.2") in self.backends, what="the second host")
        first = self.clients(self.port)
        second = {c: http_get(self.port, host="127.0.0.2", source=f"127.0.0.{100 + c}") for c in range(40)}
        self.assertEqual(first, second)
        self.assertGreater(len(set(first.values())), 2, f"40 clients on {set(first.values())}")
        # The same clients, the same members, after a restart too.
        self.ok("engine", "stop")
        self.start_engine()
        self.wait_health({f"vm{i}": "up" for i in range(1, 5)})
        self.assertEqual(self.clients(self.port), first)
        # Another seed: another table.
        self.ok("engine", "stop", env=env)
        self.write(text.replace(f"hash_seed = {seed.group(1)}", f"hash_seed = {int(seed.group(1)) ^ 1}"), other)
        self.ok("engine", "start", "--threads", "2", env=env)
        wait_until(lambda: http_get(self.port, host="127.0.0.2") in self.backends, what="the second host again")
        moved = sum(http_get(self.port, host="127.0.0.2", source=f"127.0.0.{100 + c}") != first[c] for c in range(40))
        self.assertGreater(moved, 10)

    def test_a_member_that_goes_down_moves_only_its_own_clients(self):
        self.farm(4, extra=("--distribution", "source-ip"))
        self.start_engine()
        self.wait_health({f"vm{i}": "up" for i in range(1, 5)})
        before = self.clients(self.port)
        victim = collections.Counter(before.values()).most_common(1)[0][0]
        self.backends[victim].healthy = False
        self.wait_health({vm: "down" if vm == victim else "up" for vm in self.backends})
        after = self.clients(self.port)
        for c, vm in before.items():
            if vm == victim:
                self.assertNotEqual(after[c], victim)
            else:
                self.assertEqual(after[c], vm, f"client {c} moved from {vm} though {vm} stayed up")
