"""examples/forkstorm: fork children of a multi-threaded parent with a busy
allocating thread, plus vfork+exec and posix_spawn. Nothing hangs; every
process writes its own snapshot; the parent's numbers and each child's are
exact; the report of the directory picks the process `run` started. The
same with 64 children."""

import os
import shutil

import lwtest
from lwtest import Case

CHILDREN = 16


def parse_pids(stdout):
    roles = {"child": []}
    for line in stdout.decode().splitlines():
        role, value = line.split()
        if role == "child":
            roles["child"].append(int(value))
        else:
            roles[role] = int(value)
    return roles


class ForkStormTest(Case):
    def storm(self):
        prog = lwtest.PROGS["forkstorm"]
        out = os.path.join(self.tmpdir(), "snaps")
        res = lwtest.leakwatch_run([prog, "--pids", str(CHILDREN)], out, check_rc=0, timeout=180)
        return out, parse_pids(res.stdout)

    def assertBusyExact(self, parent, busy_count):
        """Every allocation of the busy thread is counted. One whose stack
        capture met a fork that took over 100 ms (a loaded machine) is
        recorded with an empty stack and counted as an unwind failure."""
        busy = self.assertFunction(parent, "busy_loop", "heap", 0, 0)
        empty = sum(s["alloc_objects"] for s in parent["stacks"] if not s["frames"])
        self.assertEqual(busy.alloc_objects + empty, busy_count, busy)
        self.assertEqual(parent["dropped"]["unwind_failures"], empty)

    def test_storm(self):
        out, pids = self.storm()
        self.assertEqual(len(pids["child"]), CHILDREN)
        by_pid = lwtest.reports_by_pid(out)
        expected = {pids["parent"], pids["exec"], pids["spawn"], *pids["child"]}
        self.assertEqual(set(by_pid), expected, "one snapshot per process, nobody else's")
        for pid, reps in by_pid.items():
            self.assertEqual(len(reps), 1, f"pid {pid}: exactly one (exit) snapshot")
            self.assertEqual(reps[0]["snapshot"]["trigger"], "exit")
            self.assertReconciles(reps[0])

        parent = by_pid[pids["parent"]][0]
        self.assertFunction(parent, "parent_keep", "heap", 7, 2331, 7, 2331)
        self.assertBusyExact(parent, pids["busy"])
        self.assertEqual(lwtest.by_function(parent, "child_keep").inuse_objects, 0)

        for child in pids["child"]:
            rep = by_pid[child][0]
            self.assertEqual(rep["process"]["ppid"], pids["parent"])
            # inherited from the parent, plus the child's own
            self.assertFunction(rep, "parent_keep", "heap", 7, 2331)
            self.assertFunction(rep, "child_keep", "heap", 10, 10000, 10, 10000)
            # at most the block the busy thread held at the fork
            self.assertLessEqual(lwtest.by_function(rep, "busy_loop").inuse_objects, 1)

        true_exe = os.path.realpath(shutil.which("true") or "/bin/true")
        for role in ("exec", "spawn"):
            rep = by_pid[pids[role]][0]
            self.assertEqual(os.path.realpath(rep["process"]["exe"]), true_exe, role)
            self.assertEqual(rep["process"]["cmdline"], ["true"], role)
            self.assertEqual(lwtest.by_function(rep, "parent_keep").stacks, 0,
                             f"{role}: an exec'd process starts with a fresh heap")

        # without --pid the report is about the process `run` started
        self.assertEqual(lwtest.report(out)["process"]["pid"], pids["parent"])
        for child in pids["child"][:3]:
            self.assertEqual(lwtest.report(out, pid=child)["process"]["pid"], child)

    def test_no_follow(self):
        prog = lwtest.PROGS["forkstorm"]
        out = os.path.join(self.tmpdir(), "snaps")
        res = lwtest.leakwatch_run([prog, "--pids", "4"], out,
                                   ["--no-follow-fork", "--no-follow-exec"], check_rc=0)
        pids = parse_pids(res.stdout)
        self.assertEqual(set(lwtest.reports_by_pid(out)), {pids["parent"]})

    def test_storm_64_children(self):
        """64 children: every process still its own snapshot (each read
        with --top 1), the parent exact, a sample of children in full."""
        prog = lwtest.PROGS["forkstorm"]
        out = os.path.join(self.tmpdir(), "snaps")
        res = lwtest.leakwatch_run([prog, "--pids", "64"], out, check_rc=0, timeout=300)
        pids = parse_pids(res.stdout)
        self.assertEqual(len(pids["child"]), 64)
        files = lwtest.snapshot_files(out)
        by_pid = {}
        for f in files:
            r = lwtest.report(f, extra=["--top", "1"])
            by_pid.setdefault(r["process"]["pid"], []).append(f)
        expected = {pids["parent"], pids["exec"], pids["spawn"], *pids["child"]}
        self.assertEqual(set(by_pid), expected, "one snapshot per process, nobody else's")
        self.assertTrue(all(len(v) == 1 for v in by_pid.values()), by_pid)
        parent = lwtest.report(by_pid[pids["parent"]][0])
        self.assertReconciles(parent)
        self.assertFunction(parent, "parent_keep", "heap", 7, 2331, 7, 2331)
        self.assertBusyExact(parent, pids["busy"])
        # a sample of the children in full (each is reported in ~0.3 s)
        for child in pids["child"][::8]:
            rep = lwtest.report(by_pid[child][0])
            self.assertReconciles(rep)
            self.assertFunction(rep, "child_keep", "heap", 10, 10000, 10, 10000)
            self.assertFunction(rep, "parent_keep", "heap", 7, 2331)


if __name__ == "__main__":
    lwtest.main()
