"""Thresholds re-arm with hysteresis: a process whose memory goes up and
down across the line writes a bounded number of snapshots - one while it
stays within a step of the line, one per excursion once it falls below
line - step."""

import os

import lwsnap
import lwtest
from lwtest import Case

MIB = 1 << 20


class HysteresisTest(Case):
    def oscillate(self, cycles, base, swing, run_args):
        out = os.path.join(self.tmpdir(), "snaps")
        res = lwtest.leakwatch_run([lwtest.PROGS["burst"], "--oscillate", str(cycles), "--base",
                                    str(base), "--swing", str(swing)], out, run_args, check_rc=0)
        self.assertIn(f"{cycles} cycles".encode(), res.stdout)
        files = lwtest.snapshot_files(out)
        return [f for f in files if not f.endswith(".exit.lwsnap")], files

    def test_heap_hovering_at_the_line_writes_one(self):
        # 33 MiB <-> 37 MiB around a 35 MiB line, 40 times; re-arm below 31.5
        snaps, _ = self.oscillate(40, 33, 4, ["--heap-threshold", "35M"])
        self.assertEqual(len(snaps), 1, snaps)
        t = lwsnap.parse(snaps[0])["trigger_rec"]
        self.assertEqual((t["trigger"], t["source"], t["threshold"]), ("heap-threshold", 3, 35 * MIB))
        self.assertGreaterEqual(t["observed"], 37 * MIB)

    def test_heap_falling_below_rearms(self):
        # 20 <-> 40 MiB: each cycle falls below 35 - 3.5 and crosses again
        snaps, _ = self.oscillate(6, 20, 20, ["--heap-threshold", "35M"])
        self.assertEqual(len(snaps), 6, snaps)
        # with --keep the files stay bounded whatever the cycles
        snaps, files = self.oscillate(6, 20, 20, ["--heap-threshold", "35M", "--keep", "2"])
        self.assertEqual(len(files), 2, files)

    def test_heap_threshold_on_a_thread_with_a_small_stack(self):
        # 64 KiB of stack cannot hold the writer: the thread hands the
        # snapshot to the writer thread and waits for it
        out = os.path.join(self.tmpdir(), "snaps")
        res = lwtest.leakwatch_run([lwtest.PROGS["burst"], "--small-stack", "32"], out,
                                   ["--heap-threshold", "16M"], check_rc=0)
        self.assertEqual(res.stdout, b"burst: 512 blocks on a 64 KiB stack\n")
        self.assertNotIn(b"skipped", res.stderr)
        snaps = [f for f in lwtest.snapshot_files(out) if ".heap-threshold." in f]
        self.assertGreaterEqual(len(snaps), 1)
        t = lwsnap.parse(snaps[0])["trigger_rec"]
        self.assertEqual((t["trigger"], t["threshold"]), ("heap-threshold", 16 * MIB))
        self.assertGreaterEqual(t["observed"], 16 * MIB)

    def test_rss_hovering_writes_a_bounded_number(self):
        if lwsnap.memory_limit():
            self.skipTest("this process has a memory cgroup limit: the threshold watches the "
                          "cgroup's usage, not RSS")
        # RSS ~ base + a few MiB of program and leakwatch; line 60 MiB, step
        # 30 MiB: re-armed only below 30 MiB, next high 90+: one snapshot
        snaps, _ = self.oscillate(40, 45, 30, ["--threshold", "60M", "--threshold-step", "30M"])
        self.assertEqual(len(snaps), 1, snaps)
        t = lwsnap.parse(snaps[0])["trigger_rec"]
        self.assertEqual((t["trigger"], t["threshold"]), ("threshold", 60 * MIB))


if __name__ == "__main__":
    lwtest.main()
