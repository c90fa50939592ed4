"""The four portal steps typed as a user would, and what azlb shows after."""
import os
import tempfile

from harness import AzlbCase


class FourSteps(AzlbCase):
    def test_first_vm_makes_its_cloud_service_with_an_ssh_endpoint(self):
        r = self.ok("vm", "create", "vm1", "--cloud-service", "web")
        self.assertIn("VM 'vm1' created in new cloud service 'web'", r.out)
        self.assertIn("web.cloudapp.net", r.out)
        vm = self.ok("vm", "show", "vm1", "-o", "json").json()
        self.assertEqual(vm["private_ip"], "127.0.1.4")
        self.assertEqual(vm["created_by"], "gallery")
        self.assertEqual([(e["name"], e["public_port"], e["private_port"]) for e in vm["endpoints"]],
                         [("SSH", 22, 22)])

    def test_more_vms_join_the_service_with_distinct_ssh_ports(self):
        self.ok("vm", "create", "vm1", "--cloud-service", "web")
        r = self.ok("vm", "create", "vm2", "--cloud-service", "web")
        self.assertIn("in cloud service 'web'", r.out)
        self.assertNotIn("new cloud service", r.out)
        ports = [v["endpoints"][0]["public_port"] for v in self.ok("vm", "list", "-o", "json").json()["vms"]]
        self.assertEqual(len(set(ports)), 2)

    def test_the_four_steps_give_a_set_of_three_members_in_status(self):
        self.four_steps()
        st = self.ok("status", "-o", "json").json()
        self.assertEqual(st["engine"]["running"], False)
        (svc,) = st["cloud_services"]
        self.assertEqual((svc["name"], svc["vip"], svc["dns"]), ("web", "127.0.0.1", "web.cloudapp.net"))
        (lbset,) = svc["lbsets"]
        self.assertEqual(lbset["name"], "webset")
        self.assertEqual(lbset["protocol"], "tcp")
        self.assertEqual(lbset["public_port"], 8080)
        self.assertEqual(lbset["distribution"], "five-tuple")
        self.assertEqual(lbset["when_all_down"], "refuse")
        self.assertEqual(lbset["probe"], {"protocol": "http", "port": 80, "path": "/",
                                          "interval_s": 15, "timeout_s": 31})
        self.assertEqual([(m["vm"], m["endpoint"], m["private_ip"], m["private_port"], m["health"])
                          for m in lbset["members"]],
                         [("vm1", "http", "127.0.1.4", 80, "unknown"),
                          ("vm2", "http", "127.0.1.5", 80, "unknown"),
                          ("vm3", "http", "127.0.1.6", 80, "unknown")])
        ep = svc["vms"][1]["endpoints"][0]
        self.assertEqual(ep, {"name": "http", "protocol": "tcp", "public_port": 8080, "private_port": 80,
                              "idle_timeout_min": 4, "lbset": "webset", "acl": [], "proxy_protocol": "none"})

    def test_status_table_has_a_load_balanced_set_column(self):
        self.four_steps()
        out = self.ok("status").out
        self.assertIn("LOAD-BALANCED SET", out)
        rows = [l.split() for l in out.splitlines() if l.strip().startswith("vm")]
        self.assertEqual(len(rows), 3)
        for row in rows:
            self.assertIn("webset", row)
        self.assertIn("Engine: not running", out)

    def test_join_confirms_like_the_portal(self):
        self.ok("vm", "create", "vm1", "--cloud-service", "web", "--no-default-endpoints")
        self.ok("vm", "create", "vm2", "--cloud-service", "web", "--no-default-endpoints")
        self.ok("endpoint", "add", "vm1", "--name", "web", "--protocol", "tcp", "--public-port", "80",
                "--private-port", "8000", "--lbset", "webset")
        r = self.ok("endpoint", "add", "vm2", "--name", "web", "--protocol", "tcp", "--public-port", "80",
                    "--private-port", "8000", "--lbset", "webset")
        self.assertIn("Endpoint 'web' (tcp 80->8000) added to VM 'vm2' in load-balanced set 'webset'", r.out)

    def test_quick_create_names_the_service_after_the_vm(self):
        r = self.ok("vm", "create", "fast", "--quick", "--os", "windows")
        self.assertIn("new cloud service 'fast'", r.out)
        vm = self.ok("vm", "show", "fast", "-o", "json").json()
        self.assertEqual(vm["created_by"], "quick")
        self.assertEqual([e["name"] for e in vm["endpoints"]], ["RemoteDesktop", "PowerShell"])

    def public_ports(self):
        return sorted(e["public_port"] for vm in ("vm1", "vm2", "vm3")
                      for e in self.ok("endpoint", "list", vm, "-o", "json").json()["endpoints"])

    def test_leave_and_delete_never_publish_a_member_unless_asked(self):
        self.four_steps()
        before = self.public_ports()
        r = self.ok("lbset", "leave", "webset", "--vm", "vm2")
        self.assertIn("its endpoint 'http' was removed with it", r.out)
        self.assertIn("--public-port", r.out)
        self.assertEqual(self.ok("endpoint", "list", "vm2", "-o", "json").json()["endpoints"], [])
        self.assertTrue(set(self.public_ports()) <= set(before), "leaving published a new public port")
        # Asked for: on that port, which must be free.
        self.fails(4, "lbset", "leave", "webset", "--vm", "vm3", "--public-port", "8080", mentions="8080")
        r = self.ok("lbset", "leave", "webset", "--vm", "vm3", "--public-port", "9003", "-o", "json").json()
        self.assertEqual((r["removed"], r["public_port"]), (False, 9003))
        r = self.ok("lbset", "delete", "webset", "--remove-endpoints", "-o", "json").json()
        self.assertEqual([(e["vm"], e["removed"], e["public_port"]) for e in r["endpoints"]], [("vm1", True, None)])
        self.assertEqual(self.ok("lbset", "list", "-o", "json").json(), {"lbsets": []})
        self.assertNotIn(8080, self.public_ports())

    def test_history_and_undo(self):
        self.four_steps()
        self.ok("lbset", "leave", "webset", "--vm", "vm3")
        self.ok("vm", "delete", "vm2", "--yes")
        h = self.ok("state", "history", "-o", "json").json()["history"]
        self.assertEqual([e["vms"] for e in h[:3]], [2, 3, 3])
        self.assertEqual(h[0]["current"], True)
        self.assertEqual([e["id"] for e in h], list(range(len(h))))
        # Undo puts vm2 back; undo again takes it away (an undo is a change of its own).
        before = self.read()
        self.assertIn("vm2", self.ok("state", "undo").out)
        self.assertIn("vm2", [v["name"] for v in self.ok("vm", "list", "-o", "json").json()["vms"]])
        self.ok("state", "undo", "--yes")
        self.assertEqual(self.read(), before)
        # Dry run: the diff, nothing written.
        r = self.ok("--dry-run", "state", "undo")
        self.assertIn('+name = "vm2"', r.out)
        self.assertEqual(self.read(), before)
        # Bounded: 20 earlier states at most.
        for i in range(25):
            self.ok("endpoint", "add", "vm1", "--name", f"e{i}", "--protocol", "tcp", "--public-port", str(9100 + i),
                    "--private-port", "80")
        self.assertEqual(len(self.ok("state", "history", "-o", "json").json()["history"]), 21)
        self.assertEqual(len(os.listdir(self.state + ".history")), 20)

    def test_nothing_to_undo_and_a_history_folder_that_is_not_ours(self):
        self.fails(1, "state", "undo", mentions="nothing to undo")
        self.ok("vm", "create", "vm1", "--cloud-service", "web")
        other = os.path.join(self.dir, "elsewhere")
        os.mkdir(other)
        os.symlink(other, self.state + ".history")
        self.fails(1, "vm", "create", "vm2", "--cloud-service", "web", mentions=".history")
        self.assertEqual(os.listdir(other), [])

    def test_delete_keeps_the_endpoints_on_their_vms_as_the_contract_says(self):
        self.four_steps()
        before = self.read()
        r = self.ok("lbset", "delete", "webset", "-o", "json").json()
        self.assertIn("unpublished", r["message"])
        self.assertEqual([(e["vm"], e["removed"], e["public_port"]) for e in r["endpoints"]],
                         [("vm1", False, None), ("vm2", False, None), ("vm3", False, None)])
        for vm in ("vm1", "vm2", "vm3"):
            eps = self.ok("endpoint", "list", vm, "-o", "json").json()["endpoints"]
            self.assertEqual([(e["name"], e["lbset"], e["public_port"]) for e in eps], [("http", None, None)])
        self.assertIn("published = false", self.read())
        # Asked for: each on a port of its own.
        self.write(before)
        r = self.ok("lbset", "delete", "webset", "--publish", "-o", "json").json()
        self.assertEqual([(e["vm"], e["public_port"]) for e in r["endpoints"]],
                         [("vm1", 8080), ("vm2", 8081), ("vm3", 8082)])
        self.write(before)
        self.fails(2, "lbset", "delete", "webset", "--publish", "--remove-endpoints", mentions="--publish")
        self.assertEqual(self.read(), before)

    def test_acl_rules_are_added_listed_and_removed_in_order(self):
        self.four_steps()
        self.ok("endpoint", "acl", "add", "vm1", "http", "--order", "200", "--action", "deny",
                "--remote-subnet", "10.0.0.0/8")
        r = self.ok("endpoint", "acl", "add", "vm1", "http", "--order", "100", "--action", "permit",
                    "--remote-subnet", "10.1.0.0/16", "--description", "office")
        self.assertIn("applied to vm1/http, vm2/http, vm3/http", r.out)
        acl = self.ok("endpoint", "acl", "list", "vm3", "http", "-o", "json").json()["acl"]
        self.assertEqual([(a["order"], a["action"], a["remote_subnet"]) for a in acl],
                         [(100, "permit", "10.1.0.0/16"), (200, "deny", "10.0.0.0/8")])
        self.ok("endpoint", "acl", "remove", "vm2", "http", "--order", "100")
        acl = self.ok("endpoint", "acl", "list", "vm1", "http", "-o", "json").json()["acl"]
        self.assertEqual([a["order"] for a in acl], [200])

    def test_lbset_set_changes_the_probe_and_distribution(self):
        self.four_steps()
        self.ok("lbset", "set", "webset", "--probe-protocol", "tcp", "--probe-interval", "5",
                "--distribution", "source-ip", "--when-all-down", "serve-all")
        s = self.ok("lbset", "show", "webset", "-o", "json").json()
        self.assertEqual(s["probe"], {"protocol": "tcp", "port": 80, "path": None, "interval_s": 5, "timeout_s": 31})
        self.assertEqual(s["distribution"], "source-ip")
        self.assertEqual(s["when_all_down"], "serve-all")
        self.ok("lbset", "set", "webset", "--no-probe")
        self.assertIsNone(self.ok("lbset", "show", "webset", "-o", "json").json()["probe"])

    def test_quiet_prints_nothing_and_every_command_speaks_json(self):
        r = self.ok("-q", "vm", "create", "vm1", "--cloud-service", "web")
        self.assertEqual(r.out, "")
        for args in (["vm", "list"], ["vm", "show", "vm1"], ["service", "list"], ["service", "show", "web"],
                     ["endpoint", "list", "vm1"], ["endpoint", "show", "vm1", "SSH"], ["lbset", "list"],
                     ["endpoint", "acl", "list", "vm1", "SSH"], ["status"],
                     ["service", "create", "two", "--vip", "127.0.0.2"], ["vm", "delete", "vm1"]):
            self.ok(*args, "-o", "json").json()

    def test_state_path_comes_from_flag_then_env_then_xdg(self):
        xdg = os.path.join(self.dir, "xdg")
        env = {"AZLB_STATE": "", "XDG_STATE_HOME": xdg}
        self.ok("service", "create", "a", env=env)
        self.assertTrue(os.path.exists(os.path.join(xdg, "azlb", "state.toml")))
        flag = os.path.join(self.dir, "other.toml")
        self.ok("--state", flag, "service", "create", "b")
        self.assertIn('name = "b"', self.read(flag))
        self.assertFalse(os.path.exists(self.state))

    def test_a_hand_edit_is_read_back(self):
        self.ok("vm", "create", "vm1", "--cloud-service", "web")
        self.write(self.read().replace('image = "Ubuntu Server 24.04 LTS"', 'image = "Debian 12"'))
        self.assertEqual(self.ok("vm", "show", "vm1", "-o", "json").json()["image"], "Debian 12")

    def test_an_empty_file_made_for_the_state_is_an_empty_state(self):
        """mktemp, touch or a test's temporary file: the first command fills it."""
        fd, path = tempfile.mkstemp(dir=self.dir)
        os.close(fd)
        self.assertEqual(self.ok("--state", path, "vm", "list", "-o", "json").json(), {"vms": []})
        self.ok("--state", path, "vm", "create", "vm1", "--cloud-service", "web")
        self.assertIn('name = "vm1"', self.read(path))
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)  # mkstemp's mode, kept
        # A file of blanks too; one of anything else is not a state and stays as it is.
        self.write("\n  \r\n")
        self.ok("service", "create", "a")
        self.write("# my notes\n")
        r = self.fails(2, "service", "create", "b")
        self.assertIn("no schema_version", r.err)
        self.assertEqual(self.read(), "# my notes\n")

    def test_version_and_help(self):
        self.assertIn("azlb", self.ok("--version").out)
        out = self.ok("lbset", "create", "--help").out
        for flag in ("--probe-protocol", "--probe-interval", "--no-probe", "--when-all-down", "--distribution"):
            self.assertIn(flag, out)


class SchemaUpgrade(AzlbCase):
    """A state file written by azlb before schema 2 (tests/fuzz/corpus/state_loader/four_steps.toml:
    members repeat the set's protocol, public port and ACL) keeps working, and the next change saves
    it as schema 2, with the set's facts on the set."""

    def test_a_schema_1_file_loads_and_the_next_write_saves_schema_2(self):
        old = os.path.join(os.path.dirname(__file__), "..", "fuzz", "corpus", "state_loader", "four_steps.toml")
        with open(old) as f:
            text = f.read()
        self.assertIn("schema_version = 1\n", text)
        with open(self.state, "w") as f:
            f.write(text)
        # Reads leave the file as it is.
        s = self.ok("-o", "json", "lbset", "show", "webset").json()
        self.assertEqual([r["remote_subnet"] for r in s["acl"]], ["10.0.0.0/8"])
        self.assertEqual([m["vm"] for m in s["members"]], ["vm1", "vm2"])
        ep = self.ok("-o", "json", "endpoint", "show", "vm2", "http").json()
        self.assertEqual((ep["protocol"], ep["public_port"], len(ep["acl"])), ("tcp", 8080, 1))
        with open(self.state) as f:
            self.assertEqual(f.read(), text)
        # A change saves schema 2: the ACL once, on the set; members without the set's facts.
        self.ok("vm", "create", "vm3", "--cloud-service", "web")
        self.ok("lbset", "join", "webset", "--vm", "vm3")
        with open(self.state) as f:
            new = f.read()
        self.assertIn("schema_version = 2\n", new)
        self.assertEqual(new.count('remote_subnet = "10.0.0.0/8"'), 1)
        lbset = new.index("[[cloud_service.lbset]]")
        self.assertLess(lbset, new.index('remote_subnet = "10.0.0.0/8"'))
        self.assertLess(new.index('remote_subnet = "10.0.0.0/8"'), new.index("[[vm]]"))
        member = new[new.rindex("[[vm.endpoint]]"):]  # vm3's http, the last endpoint
        self.assertIn('lbset = "webset"', member)
        self.assertNotIn("public_port", member)
        self.assertNotIn("protocol", member)
        # The joined VM is under the set's ACL, as every member is.
        self.assertEqual(len(self.ok("-o", "json", "endpoint", "show", "vm3", "http").json()["acl"]), 1)
        self.assertEqual(len(self.ok("-o", "json", "lbset", "show", "webset").json()["members"]), 3)

    def test_dry_run_shows_each_change_as_a_diff_and_writes_nothing(self):
        self.four_steps()
        before = self.state_digest()
        changes = [
            ("endpoint", "add", "vm2", "--name", "dns", "--protocol", "udp", "--public-port", "53", "--private-port", "53"),
            ("lbset", "leave", "webset", "--vm", "vm3"),
            ("lbset", "set", "webset", "--distribution", "source-ip"),
            ("vm", "delete", "vm2"),
            ("service", "create", "other"),
            ("endpoint", "acl", "add", "vm1", "http", "--order", "1", "--action", "deny", "--remote-subnet", "10.0.0.0/8"),
        ]
        for args in changes:
            with self.subTest(args):
                r = self.ok("--dry-run", *args)
                self.assertTrue(r.out.startswith("Dry run, nothing written: "), r.out)
                self.assertRegex(r.out, r"\n@@ line \d+\n[-+]")
                j = self.ok("--dry-run", "-o", "json", *args).json()
                self.assertTrue(j["dry_run"])
                self.assertTrue(any(l.startswith(("+", "-")) for l in j["diff"]), j)
                self.assertEqual(self.state_digest(), before, "a dry run wrote the state")
        r = self.ok("--dry-run", "lbset", "set", "webset", "--distribution", "source-ip")
        self.assertIn('-  distribution = "five-tuple"\n+  distribution = "source-ip"', r.out)
        # A dry run that the model refuses fails as the change would.
        self.fails(4, "--dry-run", "vm", "create", "vm1", "--cloud-service", "web")

    def test_on_a_terminal_a_change_that_removes_something_asks_first(self):
        import os
        import pty
        import select
        from harness import AZLB

        def on_terminal(answer, *args):
            pid, fd = pty.fork()
            if pid == 0:
                os.execv(AZLB, [AZLB, "--state", self.state, *args])
            out, sent = b"", False
            while select.select([fd], [], [], 10)[0]:
                try:
                    data = os.read(fd, 1024)
                except OSError:
                    break
                if not data:
                    break
                out += data
                if b"[y/N]" in out and not sent:
                    os.write(fd, answer)
                    sent = True
            return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), out.decode()

        self.four_steps()
        before = self.state_digest()
        rc, out = on_terminal(b"n\n", "lbset", "delete", "webset")
        self.assertEqual(rc, 1, out)
        self.assertIn("This removes load-balanced set 'webset'. Go on? [y/N]", out)
        self.assertIn("cancelled: nothing changed", out)
        self.assertEqual(self.state_digest(), before)
        rc, out = on_terminal(b"y\n", "vm", "delete", "vm3")
        self.assertEqual(rc, 0, out)
        self.assertIn("This removes VM 'vm3' with 1 endpoint", out)
        rc, out = on_terminal(b"", "--yes", "vm", "delete", "vm2")  # --yes: no question
        self.assertEqual(rc, 0, out)
        self.assertNotIn("[y/N]", out)
        rc, out = on_terminal(b"", "lbset", "set", "webset", "--distribution", "source-ip")  # removes nothing
        self.assertEqual(rc, 0, out)
        self.assertNotIn("[y/N]", out)
        self.ok("vm", "delete", "vm1")  # no terminal (a script): no question

    def test_removing_a_member_says_that_its_set_shrank(self):
        self.four_steps()
        r = self.ok("vm", "delete", "vm3")
        self.assertIn("VM 'vm3' deleted; load-balanced set 'webset' now has 2 members (was 3)", r.out)
        r = self.ok("endpoint", "remove", "vm2", "http", "-o", "json").json()
        self.assertEqual(r["sets_shrunk"], ["load-balanced set 'webset' now has 1 member (was 2)"])
        r = self.ok("vm", "delete", "vm1")
        self.assertIn("now has no member: its port refuses every client (was 1)", r.out)
