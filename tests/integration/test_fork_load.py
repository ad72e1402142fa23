"""examples/fork_load: fork while other threads make the allocator map and
unmap memory (with glibc's malloc and with jemalloc, whose fork handlers
take its locks: leakwatch's must not wait on a thread inside it), and a
snapshot request sent to a child the instant it exists (it must not be
wiped out when the child resets its state)."""

import os

import lwtest
from lwtest import Case


class ForkLoadTest(Case):
    def forks_while_allocator_maps(self, name):
        if name not in lwtest.PROGS:
            self.skipTest(f"{name} not built (no jemalloc)")
        out = os.path.join(self.tmpdir(), "snaps")
        # A deadlock shows as a timeout, which lwtest turns into a failure.
        res = lwtest.leakwatch_run([lwtest.PROGS[name], "forks", "60"], out, check_rc=0, timeout=120)
        self.assertEqual(res.stdout, b"done\n")
        by_pid = lwtest.reports_by_pid(out)
        self.assertEqual(len(by_pid), 61, "the parent and each of its 60 children")
        for pid, reps in by_pid.items():
            for rep in reps:
                self.assertReconciles(rep)

    def test_glibc(self):
        self.forks_while_allocator_maps("fork_load")

    def test_jemalloc(self):
        self.forks_while_allocator_maps("fork_load_jemalloc")

    def test_request_sent_to_a_new_child_is_served(self):
        out = os.path.join(self.tmpdir(), "snaps")
        res = lwtest.leakwatch_run([lwtest.PROGS["fork_load"], "signal-child", "8"], out,
                                   check_rc=0, timeout=120)
        self.assertEqual(res.stdout, b"done\n")
        by_pid = lwtest.reports_by_pid(out)
        # only the children were sent the signal
        children = [pid for pid, reps in by_pid.items()
                    if any(r["snapshot"]["trigger"] == "signal" for r in reps)]
        self.assertEqual(len(children), 8, f"children with a signal snapshot: {sorted(by_pid)}")
        for pid in children:
            triggers = sorted((r["snapshot"]["seq"], r["snapshot"]["trigger"]) for r in by_pid[pid])
            self.assertEqual(triggers, [(0, "signal"), (1, "exit")], pid)


if __name__ == "__main__":
    lwtest.main()
