"""Kernel truth on examples/madv_free (field scenario 2): the arena's
report shows released-but-resident within 10% of the 192 MiB released,
LazyFree agreeing, and with the remedy switch (--madv-free dontneed, or
LEAKWATCH_MADV_FREE=dontneed) the ledger records DONTNEED and RSS drops."""

import os

import lwtest
from lwtest import Case

MIB = 1024 * 1024
RELEASED = 192 * MIB


def line(rep, name):
    got = [w for w in rep["waterfall"] if w["name"] == name]
    assert len(got) == 1, f"waterfall line {name}: {[w['name'] for w in rep['waterfall']]}"
    return got[0]


class KernelTest(Case):
    def arena(self, run_args=(), env=None):
        out = os.path.join(self.tmpdir(), "snaps")
        if env is None:
            lwtest.leakwatch_run([lwtest.PROGS["madv_free"], "300"], out, run_args, check_rc=0)
        else:
            lwtest.run([lwtest.PROGS["madv_free"], "300"], env=lwtest.preload_env(out, **env),
                       check_rc=0)
        return out, lwtest.report(out)

    def assertNear(self, got, want, pct, what):
        self.assertIsNotNone(got, what)
        self.assertLessEqual(abs(got - want), want * pct // 100, f"{what}: {got} vs {want}")

    def test_released_but_resident(self):
        out, rep = self.arena()
        pm = rep["process_memory"]
        self.assertNear(pm["lazyfree_bytes"], RELEASED, 10, "LazyFree")
        self.assertNear(rep["mappings"]["released_resident_bytes"], RELEASED, 10, "ledger")
        rel = line(rep, "released_resident")
        self.assertEqual(rel["bytes"], pm["lazyfree_bytes"])
        self.assertIn("LEAKWATCH_MADV_FREE=dontneed", rel["note"])
        self.assertEqual(rep["largest_part"], "released_resident")
        self.assertEqual(line(rep, "heap_in_use")["bytes"], 1 * MIB)
        self.assertEqual(line(rep, "tracked_mappings")["bytes"], 64 * MIB)
        # RSS holds all of it: 256 MiB arena + heap + the rest
        self.assertGreaterEqual(pm["rss_bytes"], 256 * MIB)
        self.assertGreaterEqual(pm["anon_bytes"], 256 * MIB)
        # the allocator's view: glibc, its in-use bytes at least the live heap
        st = rep["allocator_stats"]
        self.assertEqual(st["allocator"], "glibc")
        self.assertGreaterEqual(st["in_use_bytes"], 1 * MIB)
        cg = rep["cgroup"]
        if cg is not None:  # the formula, as stated
            self.assertIn(cg["version"], (1, 2))
            self.assertEqual(cg["working_set_bytes"],
                             max(0, cg["usage_bytes"] - cg["inactive_file_bytes"]))
            self.assertEqual(line(rep, "cgroup_working_set")["bytes"], cg["working_set_bytes"])
            self.assertEqual(line(rep, "cgroup_usage")["bytes"], cg["usage_bytes"])
        text = lwtest.run([lwtest.TOOL, "report", out], check_rc=0).stdout.decode()
        self.assertIn("The largest part is released but resident", text)
        self.assertIn("usage - inactive_file", text)
        self.rss_kept = pm["rss_bytes"]

    def check_remedy(self, rep, keep_rss):
        m = rep["mappings"]
        self.assertEqual(m["madv_free_bytes"], 0)
        self.assertEqual(m["madv_dontneed_bytes"], RELEASED)
        pm = rep["process_memory"]
        self.assertLess(pm["lazyfree_bytes"], 1 * MIB)
        self.assertEqual(line(rep, "released_resident")["bytes"], pm["lazyfree_bytes"])
        # RSS follows: the 192 MiB left at once
        self.assertLess(pm["rss_bytes"], 100 * MIB)
        self.assertGreaterEqual(keep_rss - pm["rss_bytes"], RELEASED * 90 // 100)

    def test_remedy_switch(self):
        _, kept = self.arena()
        keep_rss = kept["process_memory"]["rss_bytes"]
        _, rep = self.arena(run_args=["--madv-free", "dontneed"])
        self.check_remedy(rep, keep_rss)
        _, rep = self.arena(env={"LEAKWATCH_MADV_FREE": "dontneed"})
        self.check_remedy(rep, keep_rss)

    def test_bad_remedy_value(self):
        res = lwtest.run([lwtest.TOOL, "run", "--madv-free", "later", "--", "true"])
        self.assertEqual(res.returncode, 2)
        self.assertEqual(res.stderr.decode(),
                         "leakwatch: --madv-free later: must be keep or dontneed\n")


if __name__ == "__main__":
    lwtest.main()
