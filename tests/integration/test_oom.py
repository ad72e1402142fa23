"""Scenario 3, pre-OOM: examples/burst climbs to its memory limit in a few
seconds. A threshold snapshot must be on disk before the kill, and its top
heap stack must be the map builder (build_id_map).
- in a child memory cgroup with a limit (root, cgroup v1), --threshold 80%:
  the OOM killer really kills it;
- with a plain byte threshold on RSS (no cgroup): burst kills itself with
  SIGKILL past a given RSS, as the OOM killer would;
- with --heap-threshold: the allocating thread writes the snapshot."""

import os
import signal
import time

import lwsnap
import lwtest
from lwtest import Case

MIB = 1 << 20
BURST = ["--threads", "4", "--ids", "50000", "--requests", "400", "--request-ms", "20",
         "--send-ms", "1000"]


def own_memory_cgroup():
    """(mountpoint/path of our v1 memory cgroup, effective limit or 0), or None."""
    rel = None
    with open("/proc/self/cgroup") as f:
        lines = f.read().splitlines()
    for line in lines:
        num, ctrls, path = line.split(":", 2)
        if "memory" in ctrls.split(","):
            rel = path
    if rel is None:
        return None
    with open("/proc/self/mountinfo") as f:
        mounts = f.read().splitlines()
    for line in mounts:
        pre, _, post = line.partition(" - ")
        f, g = pre.split(), post.split()
        if g and g[0] == "cgroup" and "memory" in g[2].split(","):
            root, mnt = f[3], f[4]
            sub = rel[len(root):] if root != "/" and rel.startswith(root) else rel
            return mnt + (sub if sub != "/" else "")
    return None


def heap_stacks(rep):
    return [s for s in rep["stacks"] if s["kind"] == "heap"]


class OomTest(Case):
    def make_child_cgroup(self, limit):
        base = own_memory_cgroup()
        if base is None or not os.path.isdir(base):
            self.skipTest("no cgroup v1 memory controller for this process")
        child = os.path.join(base, f"lw-oom-{os.getpid()}")
        try:
            os.mkdir(child)
        except OSError as e:
            self.skipTest(f"cannot create a child memory cgroup under {base}: {e}")

        def remove():
            for _ in range(50):
                try:
                    os.rmdir(child)
                    return
                except OSError:
                    time.sleep(0.1)
        self.addCleanup(remove)
        try:
            with open(os.path.join(child, "memory.limit_in_bytes"), "w") as f:
                f.write(str(limit))
        except OSError as e:
            self.skipTest(f"cannot set memory.limit_in_bytes in {child}: {e}")
        return child

    def check_snapshot(self, path, trigger, source, line, limit=0):
        snap = lwsnap.parse(path)
        self.assertEqual(snap["trigger"], trigger, path)
        t = snap["trigger_rec"]
        self.assertIsNotNone(t, f"{path}: no TRIGGER record")
        self.assertEqual((t["trigger"], t["source"], t["threshold"], t["limit"]),
                         (trigger, source, line, limit), t)
        self.assertGreaterEqual(t["observed"], line, t)
        rep = lwtest.report(path)
        self.assertReconciles(rep)
        top = heap_stacks(rep)[0]
        self.assertEqual(lwtest.frame0(top), "build_id_map", top)
        # most of the heap is maps under construction or queued
        self.assertGreater(top["inuse_bytes"], rep["heap"]["inuse_bytes"] // 2, top)
        # every live block of the map builder has an age. The AGE scan and
        # the stack counters are read moments apart while 4 threads
        # allocate: they agree to within what the threads allocate
        # meanwhile (measured up to 7% of this stack on the 2-core VM). The
        # exact check of AGE sums is in tests/lib/test_snapshot.c, with no
        # thread allocating during the write.
        ages = snap["ages"].get(top["id"])
        self.assertIsNotNone(ages, "no AGE record for the top stack")
        self.assertAlmostEqual(sum(b for _, b, _ in ages), top["inuse_bytes"],
                               delta=top["inuse_bytes"] * 15 // 100)
        self.assertEqual(ages[0][0], 0, "the youngest blocks are less than a second old")
        return snap, rep

    def test_cgroup_limit_oom_kill_comes_after_the_snapshot(self):
        if os.geteuid() != 0:
            self.skipTest("creating a memory cgroup needs root")
        limit = 96 * MIB
        cg = self.make_child_cgroup(limit)
        out = os.path.join(self.tmpdir(), "snaps")
        res = lwtest.run(["sh", "-c", f'echo $$ > {cg}/cgroup.procs && exec "$@"', "sh",
                          lwtest.TOOL, "run", "--output", out, "--threshold", "80%", "--",
                          lwtest.PROGS["burst"], *BURST])
        with open(os.path.join(cg, "memory.oom_control")) as f:
            oom = dict(l.split() for l in f)
        self.assertGreaterEqual(int(oom.get("oom_kill", 0)), 1,
                                f"not OOM-killed: rc {res.returncode} {res.stderr[-500:]!r}")
        self.assertEqual(res.returncode, 128 + signal.SIGKILL, res.stderr[-500:])
        snaps = [f for f in lwtest.snapshot_files(out) if ".threshold." in f]
        self.assertTrue(snaps, f"no threshold snapshot in {os.listdir(out)}")
        self.check_snapshot(snaps[0], "threshold", 1, limit * 80 // 100, limit)

    def test_byte_threshold_on_rss(self):
        if lwsnap.memory_limit():
            self.skipTest("this process has a memory cgroup limit: the threshold watches the "
                          "cgroup's usage, not RSS (the cgroup test covers that)")
        out = os.path.join(self.tmpdir(), "snaps")
        res = lwtest.leakwatch_run([lwtest.PROGS["burst"], *BURST, "--kill-at-rss", "160"], out,
                                   ["--threshold", "100M", "--threshold-step", "1G"])
        self.assertEqual(res.returncode, 128 + signal.SIGKILL, res.stderr[-500:])
        snaps = lwtest.snapshot_files(out)
        self.assertEqual(len(snaps), 1, snaps)
        self.assertIn(".threshold.lwsnap", snaps[0])
        self.check_snapshot(snaps[0], "threshold", 2, 100 * MIB)

    def test_percentage_without_a_limit(self):
        if lwsnap.memory_limit():
            self.skipTest("this process has a memory cgroup limit")
        out = os.path.join(self.tmpdir(), "snaps")
        # leakwatch run refuses before starting anything
        res = lwtest.leakwatch_run([lwtest.PROGS["burst"], "--thread-exits"], out,
                                   ["--threshold", "80%"], check_rc=2)
        self.assertEqual(res.stdout, b"")
        self.assertIn(b"--threshold 80%: a percentage needs a memory cgroup limit", res.stderr)
        # a bare preload warns once and runs with that trigger off
        res = lwtest.run([lwtest.PROGS["burst"], "--thread-exits"],
                         env=lwtest.preload_env(out, LEAKWATCH_THRESHOLD="80%"), check_rc=0)
        self.assertEqual(res.stderr.count(b"no memory cgroup limit; threshold snapshots are off"),
                         1, res.stderr)
        self.assertEqual(len(lwtest.snapshot_files(out)), 1)

    def test_heap_threshold_written_by_the_allocating_thread(self):
        out = os.path.join(self.tmpdir(), "snaps")
        res = lwtest.leakwatch_run([lwtest.PROGS["burst"], *BURST, "--kill-at-rss", "200"], out,
                                   ["--heap-threshold", "40M", "--threshold-step", "1G"])
        self.assertEqual(res.returncode, 128 + signal.SIGKILL, res.stderr[-500:])
        snaps = lwtest.snapshot_files(out)
        self.assertEqual(len(snaps), 1, snaps)
        snap, rep = self.check_snapshot(snaps[0], "heap-threshold", 3, 40 * MIB)
        # exact: the snapshot's heap is the line plus at most what other
        # threads allocated while it was written (chunks of 64 KiB each)
        self.assertGreaterEqual(rep["heap"]["inuse_bytes"], 40 * MIB - 4 * 65536)


if __name__ == "__main__":
    lwtest.main()
