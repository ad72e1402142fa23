"""examples/logwriter (field scenario 1): a flat heap writing 256 MiB to a
log. The report names the log in the page cache with cached bytes within
10% of the bytes written, and says the largest part is page cache, not
heap (no heap leak: nothing is held)."""

import os

import lwtest
from lwtest import Case

MIB = 1024 * 1024
WRITTEN = 256 * MIB


class LogwriterTest(Case):
    def test_page_cache_names_the_log(self):
        d = self.tmpdir()
        log = os.path.join(d, "metrics.log")
        out = os.path.join(d, "snaps")
        lwtest.leakwatch_run([lwtest.PROGS["logwriter"], log, "256", "50"], out, check_rc=0)
        self.assertEqual(os.path.getsize(log), WRITTEN)
        rep = lwtest.report(out)
        files = {p["path"]: p for p in rep["page_cache"]}
        self.assertIn(log, files, f"page cache lists {sorted(files)}")
        pc = files[log]
        self.assertLessEqual(abs(pc["cached_bytes"] - WRITTEN), WRITTEN // 10, pc)
        self.assertEqual(pc["size_bytes"], WRITTEN)
        self.assertEqual(pc["state"], "open")
        self.assertEqual(rep["page_cache"][0]["path"], log)  # largest first
        if pc["dirty_bytes"] is not None:
            self.assertLessEqual(pc["dirty_bytes"], pc["cached_bytes"])
        # no heap leak: the one line buffer was freed; heap flat at zero
        self.assertEqual(rep["heap"]["inuse_bytes"], 0)
        self.assertEqual(rep["largest_part"], "page_cache")
        wf = {w["name"]: w for w in rep["waterfall"]}
        self.assertGreaterEqual(wf["page_cache"]["bytes"], pc["cached_bytes"])
        self.assertIn(log, wf["page_cache"]["note"])
        self.assertLess(wf["heap_in_use"]["bytes"], wf["page_cache"]["bytes"] // 100)
        text = lwtest.run([lwtest.TOOL, "report", out], check_rc=0).stdout.decode()
        self.assertIn("The largest part is file page cache", text)
        self.assertIn(log + " (open)", text)


if __name__ == "__main__":
    lwtest.main()
