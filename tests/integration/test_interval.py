"""Interval snapshots: N snapshots in about N intervals, named "interval",
on the original time grid; --keep leaves only the newest N of a process."""

import os
import signal
import subprocess
import time

import lwsnap
import lwtest
from lwtest import Case


class IntervalTest(Case):
    def run_idle(self, seconds, run_args):
        out = os.path.join(self.tmpdir(), "snaps")
        p = subprocess.Popen([lwtest.TOOL, "run", "--output", out, *run_args, "--",
                              lwtest.PROGS["burst"], "--idle", "--ids", "100"],
                             env=lwtest.clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertTrue(p.stdout.readline().startswith(b"burst: idle"))
        time.sleep(seconds)
        # SIGTERM to the program (run forwards it): it exits normally
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, err)
        return out

    def test_every_interval(self):
        out = self.run_idle(2.1, ["--interval", "0.4"])
        files = [os.path.basename(f) for f in lwtest.snapshot_files(out)]
        inter = [f for f in files if f.endswith(".interval.lwsnap")]
        self.assertEqual(len(files), len(inter) + 1, files)  # + the exit snapshot
        # 2.1 s / 0.4 s: 5 ticks; a loaded machine may be a tick late
        self.assertIn(len(inter), (4, 5), files)
        snaps = [lwsnap.parse(os.path.join(out, f)) for f in inter]
        self.assertEqual([s["seq"] for s in snaps], list(range(len(snaps))))
        self.assertTrue(all(s["trigger"] == "interval" for s in snaps))
        # on the grid of the writer's start: never early, one write per tick
        ticks = [int(s["elapsed_ns"] // 400e6) for s in snaps]
        self.assertEqual(ticks, sorted(set(ticks)), [s["elapsed_ns"] for s in snaps])
        self.assertGreaterEqual(ticks[0], 1)
        rep = lwtest.report(os.path.join(out, inter[-1]))
        self.assertFunction(rep, "build_id_map", "heap", 100 + 2, 100 * 16 + 8 * 51 + 24)

    def test_keep(self):
        out = self.run_idle(1.3, ["--interval", "0.1", "--keep", "3"])
        files = [os.path.basename(f) for f in lwtest.snapshot_files(out)]
        self.assertEqual(len(files), 3, files)
        self.assertTrue(files[-1].endswith(".exit.lwsnap"), files)
        seqs = [lwsnap.parse(os.path.join(out, f))["seq"] for f in files]
        self.assertGreaterEqual(seqs[0], 8, f"the oldest were deleted: {files}")
        self.assertEqual(seqs, list(range(seqs[0], seqs[0] + 3)))


if __name__ == "__main__":
    lwtest.main()
