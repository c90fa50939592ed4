"""Every failure: the contract's exit code, one line naming the bad value, and
a state file that stays byte-identical."""
from harness import AzlbCase

USAGE, NOT_FOUND, CONFLICT = 2, 3, 4


class Errors(AzlbCase):
    def setUp(self):
        super().setUp()
        self.four_steps()

    def test_usage_errors_exit_2(self):
        self.fails(USAGE, "endpoint", "add", "vm1", "--name", "x", "--protocol", "tcp", "--public-port", "0",
                   "--private-port", "80", mentions="public port 0")
        self.fails(USAGE, "endpoint", "add", "vm1", "--name", "x", "--protocol", "sctp", "--public-port", "1",
                   "--private-port", "80", mentions="'sctp'")
        self.fails(USAGE, "endpoint", "acl", "add", "vm1", "http", "--order", "1", "--action", "permit",
                   "--remote-subnet", "10.0.0.300/8", mentions="10.0.0.300/8")
        self.fails(USAGE, "lbset", "set", "webset", "--probe-protocol", "tcp", "--probe-path", "/x",
                   mentions="'/x'")
        self.fails(USAGE, "lbset", "set", "webset", "--probe-interval", "0", mentions="probe interval 0")
        self.fails(USAGE, "lbset", "set", "webset", "--probe-interval", "20", "--probe-timeout", "20",
                   mentions="probe timeout 20")
        self.fails(USAGE, "vm", "create", "_bad", "--cloud-service", "web", mentions="_bad")
        self.fails(USAGE, "vm", "create", "bad name", "--cloud-service", "web", mentions="'bad name'")
        self.fails(USAGE, "vm", "create", "x", "--cloud-service", "web", "--private-ip", "10.0.0.1",
                   mentions="10.0.0.1")
        self.fails(USAGE, "endpoint", "add", "vm1", "--name", "x", "--protocol", "tcp", "--public-port", "9",
                   "--private-port", "9", "--idle-timeout", "3", mentions="3")
        self.fails(USAGE, "vm", "list", "--bogus", mentions="--bogus")
        self.fails(USAGE, "-o", "yaml", "vm", "list", mentions="yaml")
        self.fails(USAGE, "vm", mentions="create")
        # NAT rewrites within one IP family: an IPv6 VIP over an IPv4 subnet is refused.
        self.fails(USAGE, "service", "create", "mixed", "--vip", "::1", "--subnet", "10.9.0.0/24", "--dataplane", "nat",
                   mentions="::1")
        self.ok("lbset", "set", "webset", "--proxy-protocol", "v1")
        self.fails(USAGE, "service", "set", "web", "--dataplane", "nat", mentions="PROXY protocol v1")

    def test_a_flag_and_the_state_file_get_the_same_bounds_from_the_model(self):
        """Flags parse over the type's whole range; the bound and its message are the model's."""
        cases = [
            (("lbset", "set", "webset", "--probe-interval", "5000"), "invalid probe interval 5000: must be 1..3600"),
            (("lbset", "set", "webset", "--probe-interval", "0"), "invalid probe interval 0: must be 1..3600"),
            (("endpoint", "add", "vm1", "--name", "x", "--protocol", "tcp", "--public-port", "0", "--private-port",
              "80"), "invalid public port 0: must be 1..65535"),
            (("endpoint", "add", "vm1", "--name", "x", "--protocol", "tcp", "--public-port", "9", "--private-port",
              "9", "--idle-timeout", "31"), "invalid idle timeout (minutes) 31: must be 4..30"),
            (("vm", "create", "vmx", "--cloud-service", "web", "--endpoint", "x:tcp:0:80"),
             "invalid public port 0: must be 1..65535"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                self.assertEqual(self.fails(USAGE, *args).err.strip(), f"azlb: {message}")
        # The same value in the file: the same words, after the place.
        text = open(self.state).read()
        with open(self.state, "w") as f:
            f.write(text.replace("interval_s = 15", "interval_s = 5000", 1))
        r = self.fails(USAGE, "vm", "list")
        self.assertTrue(r.err.strip().endswith("invalid probe interval 5000: must be 1..3600"), r.err)

    def test_not_found_exits_3_with_a_suggestion(self):
        r = self.fails(NOT_FOUND, "vm", "show", "vm4", mentions="'vm4'")
        self.assertIn("did you mean", r.err)
        self.fails(NOT_FOUND, "endpoint", "show", "vm1", "htp", mentions="did you mean 'http'")
        self.fails(NOT_FOUND, "lbset", "join", "websett", "--vm", "vm2", mentions="did you mean 'webset'")
        self.fails(NOT_FOUND, "lbset", "leave", "webset", "--vm", "nope", mentions="'nope'")
        self.fails(NOT_FOUND, "service", "show", "wbe", mentions="did you mean 'web'")
        self.fails(NOT_FOUND, "endpoint", "acl", "remove", "vm1", "http", "--order", "7", mentions="order 7")

    def test_a_cloud_service_name_close_to_an_existing_one_is_a_typo_unless_said_new(self):
        r = self.fails(NOT_FOUND, "vm", "create", "vm4", "--cloud-service", "wbe", mentions="did you mean 'web'?")
        self.assertIn("--new-service", r.err)
        r = self.ok("vm", "create", "vm4", "--cloud-service", "wbe", "--new-service")
        self.assertIn("wbe", r.out)
        self.ok("vm", "create", "vm5", "--cloud-service", "accounting")  # far from every name: new
        self.ok("service", "create", "webb")
        self.ok("vm", "create", "vm6", "--cloud-service", "webb")  # made first: not a typo

    def test_a_private_address_is_never_given_twice_whatever_the_service(self):
        vm1 = self.ok("vm", "show", "vm1", "-o", "json").json()
        subnet = self.ok("service", "show", "web", "-o", "json").json()["subnet"]
        r = self.ok("service", "create", "web2", "--subnet", subnet, "--vip", "127.0.0.2")
        self.assertIn("warning: subnet", r.err)
        self.assertIn("overlaps cloud service 'web'", r.err)
        self.ok("vm", "create", "other", "--cloud-service", "web2", "--no-default-endpoints")
        used = {self.ok("vm", "show", v, "-o", "json").json()["private_ip"] for v in ("vm1", "vm2", "vm3")}
        self.assertNotIn(self.ok("vm", "show", "other", "-o", "json").json()["private_ip"], used)
        self.fails(CONFLICT, "vm", "create", "other2", "--cloud-service", "web2", "--private-ip", vm1["private_ip"],
                   mentions="already used by VM 'vm1' in cloud service 'web'")

    def test_a_mistyped_command_gets_a_did_you_mean(self):
        self.fails(USAGE, "vmm", "list", mentions="did you mean 'azlb vm'?")
        self.fails(USAGE, "lbset", "jion", "webset", "--vm", "vm2", mentions="did you mean 'azlb lbset join'?")
        self.fails(USAGE, "endpoint", "acl", "lst", "vm1", "http", mentions="did you mean 'azlb endpoint acl list'?")
        r = self.fails(USAGE, "frobnicate", mentions="'azlb' has: vm, service, endpoint, lbset, status, engine")
        self.assertNotIn("__complete", r.err)
        # Options and their values are not commands: a state path named like one is fine.
        self.ok("--state", self.state, "-o", "json", "vm", "list")
        self.ok("-q", "--dry-run", "vm", "ls")  # flags take no value: the next word is the command
        # Only the typed group is built (cli/main.cpp): an option's value that
        # names a group is still a value, and each group's help is whole.
        self.fails(USAGE, "-o", "vm", "list", mentions="'azlb list'")
        self.assertEqual(len(self.ok("vm", "list", "-o", "json").json()["vms"]), 3)  # a global option after the group
        help_text = self.ok("endpoint", "--help").out
        for cmd in ("add", "list", "show", "set", "remove", "acl"):
            self.assertIn(cmd, help_text)

    def test_under_json_output_an_error_is_a_json_object_on_stderr(self):
        import json
        for args, code, text in ((("vm", "show", "nope"), NOT_FOUND, "no VM 'nope'"),
                                 (("vmm", "list"), USAGE, "did you mean 'azlb vm'?"),
                                 (("vm", "list", "--bogus"), USAGE, "--bogus"),
                                 (("vm", "create", "vm1", "--cloud-service", "web"), CONFLICT, "already exists")):
            for where in ("before", "after"):
                with self.subTest(args=args, where=where):
                    r = self.azlb(*(("-o", "json", *args) if where == "before" else (*args, "-o", "json")))
                    self.assertEqual(r.rc, code, r)
                    self.assertEqual(r.out, "")
                    err = json.loads(r.err)
                    self.assertEqual(err["exit_code"], code)
                    self.assertIn(text, err["error"])
        self.assertTrue(self.azlb("vm", "show", "nope").err.startswith("azlb: no VM"))

    def test_ls_lists_in_every_group(self):
        for group, args in (("vm", ()), ("service", ()), ("lbset", ()), ("endpoint", ("vm1",)),
                            ("endpoint acl", ("vm1", "http"))):
            with self.subTest(group):
                self.assertEqual(self.ok(*group.split(), "ls", *args, "-o", "json").out,
                                 self.ok(*group.split(), "list", *args, "-o", "json").out)

    def test_a_services_vip_can_change_and_everything_moves_with_it(self):
        r = self.ok("service", "set", "web", "--vip", "127.0.0.9")
        self.assertIn("now answers on VIP 127.0.0.9 (was 127.0.0.1)", r.out)
        self.assertIn("1 load-balanced set moved", r.out)
        self.assertEqual(self.ok("service", "show", "web", "-o", "json").json()["vip"], "127.0.0.9")
        self.ok("service", "create", "two", "--vip", "127.0.0.3")
        self.ok("vm", "create", "t1", "--cloud-service", "two", "--no-default-endpoints")
        self.ok("endpoint", "add", "t1", "--name", "http", "--protocol", "tcp", "--public-port", "8080",
                "--private-port", "80")
        self.fails(CONFLICT, "service", "set", "two", "--vip", "127.0.0.9", mentions="8080")
        self.fails(USAGE, "service", "set", "two", "--vip", "127.0.0.300", mentions="127.0.0.300")
        self.fails(NOT_FOUND, "service", "set", "tow", "--vip", "127.0.0.4", mentions="did you mean 'two'?")

    def test_conflicts_exit_4(self):
        self.fails(CONFLICT, "vm", "create", "vm1", "--cloud-service", "web", mentions="'vm1' already exists")
        self.fails(CONFLICT, "endpoint", "add", "vm2", "--name", "other", "--protocol", "tcp", "--public-port",
                   "8080", "--private-port", "80", mentions="tcp/8080")
        self.fails(CONFLICT, "lbset", "join", "webset", "--vm", "vm2", mentions="already in load-balanced set")
        self.fails(CONFLICT, "service", "create", "web", mentions="'web' already exists")
        self.fails(CONFLICT, "service", "delete", "web", mentions="still has VMs")
        self.ok("vm", "create", "vm4", "--cloud-service", "web", "--no-default-endpoints")
        self.fails(CONFLICT, "endpoint", "add", "vm4", "--name", "http", "--protocol", "udp", "--public-port",
                   "8080", "--private-port", "80", "--lbset", "webset", mentions="udp/8080")

    def test_a_corrupt_state_file_is_reported_with_its_line_and_never_rewritten(self):
        self.write(self.read().replace('private_port = 80\n  idle_timeout_min = 4\n  lbset',
                                       'private_port = "eighty"\n  idle_timeout_min = 4\n  lbset', 1))
        line = next(i for i, l in enumerate(self.read().splitlines(), 1) if '"eighty"' in l)
        r = self.fails(USAGE, "vm", "list", mentions=f"state.toml:{line}:")
        self.assertIn("private_port", r.err)
        self.fails(USAGE, "vm", "create", "vm9", "--cloud-service", "web", mentions=f"state.toml:{line}:")

    def test_a_syntax_error_is_reported_with_line_and_column(self):
        self.write(self.read() + "\n[[vm]\n")
        n = len(self.read().splitlines())
        self.fails(USAGE, "status", mentions=f"state.toml:{n}:")
