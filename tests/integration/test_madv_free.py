"""examples/madv_free (field scenario 2): 256 MiB mapped and touched, 192 MiB
released with MADV_FREE. The report shows the released bytes exactly and
~192 MiB of them still resident, beside a 1 MiB heap."""

import os

import lwtest
from lwtest import Case

MIB = 1024 * 1024


class MadvFreeTest(Case):
    def test_released_but_resident(self):
        prog = lwtest.PROGS["madv_free"]
        out = os.path.join(self.tmpdir(), "snaps")
        lwtest.leakwatch_run([prog, "300"], out, check_rc=0)
        rep = lwtest.report(out)
        self.assertReconciles(rep)
        m = rep["mappings"]
        self.assertEqual(m["mapped_bytes"], 256 * MIB)
        self.assertEqual(m["madv_free_bytes"], 192 * MIB)
        self.assertEqual(m["madv_dontneed_bytes"], 0)
        # no memory pressure: the kernel keeps the lazily freed pages; allow
        # 5% for pages reclaimed or not yet accounted
        self.assertLessEqual(m["released_resident_bytes"], 192 * MIB)
        self.assertGreaterEqual(m["released_resident_bytes"], 192 * MIB * 95 // 100)
        self.assertFunction(rep, "arena_reserve", "mmap", 1, 256 * MIB)
        self.assertFunction(rep, "session_state", "heap", 64, 1 * MIB, 64, 1 * MIB)
        top_heap = lwtest.stacks_of_kind(rep, "heap")[0]
        self.assertEqual(lwtest.frame0(top_heap), "session_state")
        # the human report says it in words
        text = lwtest.run([lwtest.TOOL, "report", out], check_rc=0).stdout.decode()
        self.assertIn("MADV_FREE", text)


if __name__ == "__main__":
    lwtest.main()
