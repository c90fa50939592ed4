"""The state file against another local user and odd files: planted links at
the temp file's and the lock's names, a FIFO or device in place of the state,
and a write that must keep the file's mode and owner."""
import os
import pwd
import stat

from harness import AzlbCase


class StoreHostile(AzlbCase):
    def victim(self):
        path = os.path.join(self.dir, "victim")
        with open(path, "w") as f:
            f.write("untouched\n")
        return path

    def test_a_link_planted_at_any_likely_temp_name_is_never_written_through(self):
        self.ok("vm", "create", "vm1", "--cloud-service", "web")
        victim = self.victim()
        # The next pids this machine will hand out: a predictable temp name
        # (state.toml.tmp.<pid>) would be among them.
        with open("/proc/sys/kernel/ns_last_pid") as f:
            last = int(f.read())
        # Links, and folders the stale-file sweep cannot remove: neither may be
        # reused (a predictable name made the write fail, or go through the link).
        for pid in range(last + 1, last + 2000):
            if pid % 2:
                os.symlink(victim, f"{self.state}.tmp.{pid}")
            else:
                os.makedirs(f"{self.state}.tmp.{pid}/x")
        for vm in ("vm2", "vm3", "vm4"):
            self.ok("vm", "create", vm, "--cloud-service", "web")
        self.assertEqual(self.read(victim), "untouched\n")
        self.assertIn("vm4", self.read())

    def test_a_state_file_that_is_a_link_is_read_through_it_and_replaced_not_written_through(self):
        target = os.path.join(self.dir, "elsewhere.toml")
        self.ok("--state", target, "vm", "create", "vm1", "--cloud-service", "web")
        before = self.read(target)
        os.symlink(target, self.state)
        self.assertEqual([v["name"] for v in self.ok("vm", "list", "-o", "json").json()["vms"]], ["vm1"])
        self.ok("vm", "create", "vm2", "--cloud-service", "web")
        self.assertEqual(self.read(target), before)
        self.assertFalse(os.path.islink(self.state))
        self.assertIn('name = "vm2"', self.read())

    def test_a_link_at_the_lock_file_is_refused(self):
        victim = self.victim()
        os.symlink(victim, self.state + ".lock")
        r = self.fails(1, "vm", "create", "vm1", "--cloud-service", "web", mentions="symbolic link")
        self.assertIn(".lock", r.err)
        self.assertEqual(self.read(victim), "untouched\n")

    def test_a_write_keeps_the_files_mode_and_owner_and_a_new_file_is_private(self):
        self.ok("vm", "create", "vm1", "--cloud-service", "web")
        self.assertEqual(stat.S_IMODE(os.stat(self.state).st_mode), 0o600)
        os.chmod(self.state, 0o640)
        nobody = pwd.getpwnam("nobody")
        if os.geteuid() == 0:
            os.chown(self.state, nobody.pw_uid, nobody.pw_gid)
        self.ok("vm", "create", "vm2", "--cloud-service", "web")
        st = os.stat(self.state)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o640)
        if os.geteuid() == 0:
            self.assertEqual((st.st_uid, st.st_gid), (nobody.pw_uid, nobody.pw_gid))

    def test_a_fifo_or_a_device_in_place_of_the_state_is_an_error_not_a_hang(self):
        os.mkfifo(self.state)
        r = self.azlb("vm", "list", timeout=10)
        self.assertEqual(r.rc, 1, r)
        self.assertIn("FIFO", r.err)
        self.assertEqual(len(r.err.strip().splitlines()), 1, r.err)
        os.unlink(self.state)
        os.symlink("/dev/zero", self.state)
        r = self.azlb("status", timeout=10)
        self.assertEqual(r.rc, 1, r)
        self.assertIn("device", r.err)

    def test_text_that_is_not_utf8_or_holds_control_characters_is_refused_before_anything_is_written(self):
        self.ok("vm", "create", "vm1", "--cloud-service", "web")
        self.ok("endpoint", "add", "vm1", "--name", "http", "--protocol", "tcp", "--public-port", "8080",
                "--private-port", "80")
        bad_image = "\udcff"  # the byte 0xff
        self.fails(2, "vm", "create", "x", "--cloud-service", "web", "--image", bad_image, mentions="\\xff")
        self.fails(2, "-o", "json", "vm", "create", "x", "--cloud-service", "web", "--image", bad_image,
                   mentions="not UTF-8")
        self.fails(2, "vm", "create", "x", "--cloud-service", "web", "--image", "a" * 300, mentions="at most 256")
        self.fails(2, "lbset", "create", "s", "--vm", "vm1", "--endpoint", "http", "--probe-protocol", "http",
                   "--probe-path", "/a\r\nb", mentions="\\x0d\\x0a")
        self.fails(2, "endpoint", "acl", "add", "vm1", "http", "--order", "1", "--action", "permit",
                   "--remote-subnet", "10.0.0.0/8", "--description", "line\nbreak", mentions="control characters")
        self.fails(2, "endpoint", "acl", "add", "vm1", "http", "--order", "1", "--action", "permit",
                   "--remote-subnet", "10.0.0.0/8", "--description", "nul\x01", mentions="control characters")
        # Every message shows what was typed on one line, as UTF-8: names, addresses, specs, sets,
        # and CLI11's own errors.
        for args in (("vm", "create", "a\nb", "--cloud-service", "web"),
                     ("vm", "create", "\udcff", "--cloud-service", "web"),
                     ("vm", "show", "no\nsuch"),
                     ("vm", "create", "x", "--cloud-service", "web", "--private-ip", "127.0.1.9\n"),
                     ("vm", "create", "x", "--cloud-service", "web", "--endpoint", "a\rb:tcp:1:2"),
                     ("endpoint", "acl", "add", "vm1", "http", "--order", "1", "--action", "permit",
                      "--remote-subnet", "10.0.0.0/8\x1b[2J"),
                     ("lbset", "show", "s\udcfe"),
                     ("vm", "list", "--bogus\nflag")):
            with self.subTest(args=args):
                r = self.fails(2 if args[1] != "show" else 3, *args)
                self.assertFalse(any(0xDC80 <= ord(ch) <= 0xDCFF for ch in r.err),
                                 f"a byte that is not UTF-8 reached the terminal: {r.err!r}")
                self.assertNotIn("\x1b", r.err, "an escape sequence reached the terminal")
        # Every later command still loads the file.
        self.ok("vm", "list")
        self.ok("-o", "json", "status")
