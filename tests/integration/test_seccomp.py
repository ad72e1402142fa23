"""tests/integration/seccomp_late.c under the preload: a threaded program
installs, after start-up, a seccomp filter that kills it (SIGSYS) on
membarrier, through prctl(PR_SET_SECCOMP) or syscall(SYS_seccomp), then
grows the live-block table to 2,000,000 blocks (hundreds of shard
rehashes) and forks. leakwatch's fast gates call membarrier at each rehash
and fork; they must switch off before the filter exists, so the program
runs to the end and the report holds the exact numbers. (Without the
switch the program dies of SIGSYS at its first rehash.)"""

import os

import lwtest
from lwtest import Case, by_function

KEEP = 2000000  # blocks of 24 bytes from keep_blocks
CHILD = 1000    # blocks of 40 bytes from child_blocks, in the child


def filter_at_start():
    """A seccomp filter already on us (a container's profile): children
    inherit it, leakwatch never turns its fast gates on, and the late case
    cannot arise."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Seccomp:"):
                return line.split()[1] != "0"
    return False


class SeccompLateTest(Case):
    def setUp(self):
        if filter_at_start():
            self.skipTest("this process already runs under a seccomp filter: leakwatch's fast "
                          "gates stay off from the start, so a late filter cannot be tested")

    def test_native(self):
        for how in ("prctl", "syscall", "none"):
            res = lwtest.run([lwtest.PROGS["seccomp_late"], how], check_rc=0)
            self.assertEqual(res.stdout, b"done\n", how)

    def test_filter_proves_itself(self):
        """The filter really kills on membarrier (else the test below proves
        nothing): a child that calls it after installing the filter dies."""
        res = lwtest.run([lwtest.PROGS["seccomp_late"], "check"])
        self.assertEqual(res.returncode, -31, f"membarrier under the filter: {res!r}")

    def under_preload(self, how):
        out = os.path.join(self.tmpdir(), "snaps")
        res = lwtest.leakwatch_run([lwtest.PROGS["seccomp_late"], how], out, timeout=150)
        self.assertEqual(res.returncode, 0,
                         f"{how}: exit {res.returncode} (159, 128 + SIGSYS: a membarrier under "
                         f"the filter)\nstderr: {res.stderr[-2000:]!r}")
        self.assertEqual(res.stdout, b"done\n")
        by_pid = lwtest.reports_by_pid(out)
        self.assertEqual(len(by_pid), 2, f"{how}: the parent and its child: {sorted(by_pid)}")
        # the child is the one that has child_blocks; the other never has
        has = sorted(by_pid, key=lambda p: by_function(by_pid[p][0], "child_blocks").stacks)
        parent, child = has
        for pid, reps in by_pid.items():
            self.assertEqual(len(reps), 1, pid)
            rep = reps[0]
            self.assertEqual(rep["snapshot"]["trigger"], "exit")
            self.assertReconciles(rep)
            self.assertEqual(rep["dropped"]["blocks"], 0)
            k = by_function(rep, "keep_blocks")
            self.assertEqual((k.inuse_objects, k.inuse_bytes), (KEEP, KEEP * 24), f"{how} pid {pid}")
            self.assertEqual((k.alloc_objects, k.alloc_bytes), (KEEP, KEEP * 24), f"{how} pid {pid}")
        c = by_function(by_pid[child][0], "child_blocks")
        self.assertEqual((c.inuse_objects, c.inuse_bytes), (CHILD, CHILD * 40), how)
        self.assertEqual(by_function(by_pid[parent][0], "child_blocks").stacks, 0, how)

    def test_prctl(self):
        self.under_preload("prctl")

    def test_syscall(self):
        self.under_preload("syscall")

    def test_no_filter(self):
        self.under_preload("none")


if __name__ == "__main__":
    lwtest.main()
