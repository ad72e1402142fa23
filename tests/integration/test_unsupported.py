"""What leakwatch cannot see, pinned so the README stays true (Known
limitations): a library loaded with RTLD_DEEPBIND binds malloc to libc in
its own scope, so its blocks never reach the preload (the program is not
disturbed); a static program cannot be preloaded at all (under a bare
LD_PRELOAD it runs and leaves no snapshot; `leakwatch run` refuses it with
exit 2, see test_cli_errors.py)."""

import os

import lwtest
from lwtest import Case


class UnsupportedTest(Case):
    def deepbind(self, *mode):
        out = os.path.join(self.tmpdir(), "snaps")
        res = lwtest.run([lwtest.PROGS["deepbind"], lwtest.PROGS["deepbind_lib"], *mode],
                         env=lwtest.preload_env(out), check_rc=0)
        self.assertEqual((res.stdout, res.stderr), (b"kept 10\n", b""))
        rep = lwtest.report(out)
        self.assertReconciles(rep)
        return lwtest.by_function(rep, "deep_alloc")

    def test_plain_dlopen_is_seen(self):
        agg = self.deepbind()
        self.assertEqual((agg.inuse_objects, agg.inuse_bytes), (11, 80 + 1000), agg)

    def test_rtld_deepbind_bypasses_the_preload(self):
        agg = self.deepbind("deep")
        self.assertEqual(agg.stacks, 0, f"RTLD_DEEPBIND blocks were seen after all: {agg}; "
                         "update README (Known limitations)")

    def test_static_program_under_bare_preload(self):
        d = self.tmpdir()
        src, exe = os.path.join(d, "s.c"), os.path.join(d, "static_hello")
        with open(src, "w") as f:
            f.write('#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n')
        if lwtest.run(["cc", "-static", "-o", exe, src]).returncode != 0:
            self.skipTest("cannot link a static program here (no libc.a)")
        out = os.path.join(d, "snaps")
        res = lwtest.run([exe], env=lwtest.preload_env(out), check_rc=0)
        self.assertEqual((res.stdout, res.stderr), (b"hello\n", b""))
        self.assertFalse(os.path.exists(out), "a static program cannot have been traced")


if __name__ == "__main__":
    lwtest.main()
