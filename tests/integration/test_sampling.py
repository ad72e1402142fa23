"""Sampling mode (--sample) and the frame-pointer unwinder (--unwind fp) under
the real preload, on tests/integration/sampling_prog.c, which sums the usable
size of everything it allocates and frees. Heap totals must equal the
program's sums plus the baseline (what the C library allocates around main,
measured by a run that allocates nothing) to the byte; per-stack estimates
must lie within 5 standard deviations of the truth (the program computes the
variance of the estimator for each site); the seed is fixed, so the run is
deterministic. Mappings are recorded in full whatever the mode."""

import os

import lwtest
from lwtest import PAGE, Case, by_function

INTERVAL = 16384  # small, so the test's few MiB give hundreds of samples


def parse(stdout):
    total, sites, var = None, {}, {}
    for line in stdout.splitlines():
        f = line.split()
        if f[0] == "total":
            total = tuple(int(x) for x in f[1:5])
        elif f[0] == "site":
            sites[f[1]] = tuple(int(x) for x in f[2:5])
        elif f[0] == "var":
            var[f[1]] = (int(f[2]), int(f[3]))
    return total, sites, var


class SamplingTest(Case):
    def run_prog(self, mode, run_args):
        out = os.path.join(self.tmpdir(), "snaps")
        res = lwtest.leakwatch_run([lwtest.PROGS["sampling"], mode, str(INTERVAL)], out,
                                   run_args=run_args, check_rc=0,
                                   env=lwtest.clean_env(LEAKWATCH_SAMPLE_SEED="7"))
        files = lwtest.snapshot_files(out)
        self.assertEqual(len(files), 1, files)
        return lwtest.report(out), parse(res.stdout.decode())

    def test_totals_exact_estimates_bounded(self):
        args = ["--sample", str(INTERVAL)]
        base, _ = self.run_prog("none", args)
        rep, (total, sites, var) = self.run_prog("exact", args)
        self.assertEqual(rep["sampling"], {"mode": "sampled", "interval_bytes": INTERVAL})
        heap, bh = rep["heap"], base["heap"]
        a_bytes, a_objs, f_bytes, f_objs = total
        # exact to the byte and the object: usable sizes, every block
        self.assertEqual(heap["alloc_bytes"], bh["alloc_bytes"] + a_bytes)
        self.assertEqual(heap["alloc_objects"], bh["alloc_objects"] + a_objs)
        self.assertEqual(heap["free_objects"], bh["free_objects"] + f_objs)
        self.assertEqual(heap["inuse_bytes"], bh["inuse_bytes"] + a_bytes - f_bytes)
        self.assertEqual(heap["inuse_objects"], bh["inuse_objects"] + a_objs - f_objs)
        # blocks at or above the interval: always recorded, exact
        objs, live_b, _ = sites["keep_big"]
        big = by_function(rep, "keep_big")
        self.assertEqual((big.inuse_objects, big.inuse_bytes), (objs, live_b))
        # estimates: within 5 standard deviations of the program's truth
        for name in ("keep_small", "keep_varied", "grow_chain"):
            objs, live_b, _ = sites[name]
            vb, vo = var[name]
            agg = by_function(rep, name)
            self.assertLessEqual(abs(agg.inuse_bytes - live_b), 5 * vb ** 0.5 + 1,
                                 f"{name}: estimate {agg.inuse_bytes} B, truth {live_b} B")
            self.assertLessEqual(abs(agg.inuse_objects - objs), 5 * vo ** 0.5 + 1,
                                 f"{name}: estimate {agg.inuse_objects} blocks, truth {objs}")
            self.assertGreater(agg.inuse_objects, 0, name)
        # churn freed everything it allocated: nothing of it in use
        self.assertEqual(by_function(rep, "churn").inuse_bytes, 0)
        # mappings: recorded in full
        self.assertEqual(rep["mappings"]["mapped_bytes"], 64 * PAGE)

    def test_text_report_says_estimates(self):
        out = os.path.join(self.tmpdir(), "snaps")
        lwtest.leakwatch_run([lwtest.PROGS["sampling"], "exact", str(INTERVAL)], out,
                             run_args=["--sample", "16K"], check_rc=0)
        res = lwtest.run([lwtest.TOOL, "report", out], check_rc=0)
        text = res.stdout.decode()
        self.assertIn("one sample per 16384 bytes", text)
        self.assertIn("estimates", text)

    def test_full_mode_is_default_and_says_so(self):
        rep, (total, _, _) = self.run_prog("exact", [])
        self.assertEqual(rep["sampling"], {"mode": "full", "interval_bytes": 0})
        self.assertReconciles(rep)
        # full mode counts requested sizes: keep_small is 100000 blocks of 100 bytes
        agg = by_function(rep, "keep_small")
        self.assertEqual((agg.inuse_objects, agg.inuse_bytes), (100000, 100000 * 100))

    def test_fp_walk_matches_libunwind_on_frame_pointer_code(self):
        stacks = {}
        for unwind in ("libunwind", "fp"):
            rep, _ = self.run_prog("fp", ["--unwind", unwind])
            s = [s for s in rep["stacks"] if s["frames"] and s["frames"][0]["function"] == "deep"]
            self.assertEqual(len(s), 1, f"{unwind}: one stack for the deep chain")
            self.assertEqual((s[0]["inuse_objects"], s[0]["inuse_bytes"]), (50, 50 * 5000))
            stacks[unwind] = [f["function"] for f in s[0]["frames"]]
        want = ["deep"] * 25 + ["main"]
        self.assertEqual(stacks["libunwind"][:26], want)
        self.assertEqual(stacks["fp"][:26], want, "the fp walk follows the same chain")


if __name__ == "__main__":
    lwtest.main()
