"""`leakwatch report --format html` in headless Chromium (Debian chromium;
--headless --no-sandbox --disable-gpu, network blocked): the page loads
with no console output and no errors, the flame graph's top function is
the program's leak, a click zooms, the sections for JSON keys other
engineers add (waterfall, series, leak candidates, diff, ...) render from a
hand-made report, 100 k stacks still render with tiny frames collapsed,
and screenshots are written to the build directory. Skips, saying so,
where chromium is not installed."""

import html
import json
import os
import random
import re
import shutil
import unittest

import lwtest
from lwtest import Case

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
OUTDIR = os.environ.get("LW_TEST_OUTDIR") or os.getcwd()
DATA_RE = re.compile(r'(<script type="application/json" id="lw-data">)(.*?)(</script>)', re.S)


def chromium(args, tmp, timeout=240):
    """Run headless Chromium with no network; returns CompletedProcess."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-extensions", "--disable-background-networking", "--disable-sync",
           "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
           f"--user-data-dir={os.path.join(tmp, 'chromium-profile')}",
           "--enable-logging=stderr", "--v=0", "--window-size=1280,1800", *args]
    env = lwtest.clean_env(HOME=tmp, XDG_CONFIG_HOME=tmp, XDG_CACHE_HOME=tmp)
    return lwtest.run(cmd, env=env, timeout=timeout)


def load(page, tmp, hash_=""):
    """Open page; returns (status dict written by the page, DOM text, console lines)."""
    res = chromium(["--dump-dom", "file://" + page + hash_], tmp)
    dom = res.stdout.decode("utf-8", "replace")
    if res.returncode != 0 or "lw-status" not in dom:
        raise AssertionError(f"chromium failed ({res.returncode}): {res.stderr[-3000:]!r}")
    m = re.search(r'<pre id="lw-status"[^>]*>(.*?)</pre>', dom, re.S)
    assert m, dom[:2000]
    status = json.loads(html.unescape(m.group(1)))
    console = [l for l in res.stderr.decode("utf-8", "replace").splitlines()
               if "CONSOLE" in l and "file://" in l]
    return status, dom, console


def screenshot(page, tmp, name):
    path = os.path.join(OUTDIR, name)
    if os.path.exists(path):
        os.unlink(path)
    chromium([f"--screenshot={path}", "file://" + page], tmp)
    return path


def with_data(page_text, data):
    """The same page holding another JSON report (as output_html.c embeds it)."""
    blob = json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")
    out, n = DATA_RE.subn(lambda m: m.group(1) + blob + m.group(3), page_text, count=1)
    assert n == 1
    return out


def frame(fn, addr="0x401000", module="/usr/bin/prog"):
    return {"address": addr, "module": module, "function": fn, "file": "", "line": 0}


def stack(id_, inuse, frames, kind="heap"):
    return {"id": id_, "kind": kind, "inuse_bytes": inuse, "inuse_objects": 1,
            "alloc_bytes": inuse, "alloc_objects": 1, "truncated": False, "frames": frames}


@unittest.skipUnless(CHROMIUM, "chromium not installed (Debian chromium): HTML browser tests skipped")
class HtmlTest(Case):
    def demo_page(self):
        d = self.tmpdir()
        snaps = os.path.join(d, "snaps")
        lwtest.leakwatch_run([lwtest.PROGS["demo"]], snaps, check_rc=0)
        page = os.path.join(d, "report.html")
        res = lwtest.run([lwtest.TOOL, "report", "--format", "html", "-o", page, snaps], check_rc=0)
        self.assertEqual(res.stdout, b"")
        self.assertEqual(res.stderr, b"")  # not a terminal: no progress lines
        return d, page, lwtest.report(snaps)

    def test_demo_page_flame_graph_and_zoom(self):
        d, page, rep = self.demo_page()
        status, dom, console = load(page, d, "#lwtest-click=cache_insert&lwtest-hover=main"
                                              "&lwtest-search=cache_ins")
        self.assertEqual(status["errors"], [])
        self.assertEqual(console, [])
        for sec in ("totals", "flame", "stacks"):
            self.assertIn(sec, status["sections"])
        # Sections the JSON report has today (the kernel's view) are drawn from it.
        for key, sec in (("waterfall", "waterfall"), ("process_memory", "process-memory"),
                         ("page_cache", "page-cache"), ("allocator_stats", "allocator-stats")):
            if rep.get(key):
                self.assertIn(sec, status["sections"], key)
            else:
                self.assertNotIn(sec, status["sections"], key)
        if rep.get("waterfall"):
            table = re.search(r'<table id="lw-waterfall">(.*?)</table>', dom, re.S).group(1)
            self.assertEqual(table.count("<tr>") - 1, len(rep["waterfall"]))
            heap = next(w for w in rep["waterfall"] if w["name"] == "heap_in_use")
            self.assertEqual(heap["bytes"], rep["heap"]["inuse_bytes"])
            self.assertIn("heap in use", table)
        self.assertNotIn("other", status["sections"])  # every key of today's report is known
        fl = status["flame"]
        before = fl["before_click"]  # the page as drawn before the test hook's click
        self.assertEqual(before["top"], "cache_insert")  # the leak, as in the JSON report
        self.assertEqual(before["top"], lwtest.frame0(rep["stacks"][0]))
        self.assertEqual(before["zoom"], "all")
        self.assertEqual(before["collapsed"], 0)
        self.assertIn(f"pid {rep['process']['pid']}", dom)
        self.assertIn("1000.0 KiB", dom)  # cache_insert's bytes in the stacks table
        # The click on cache_insert zoomed: it now spans the whole width.
        self.assertEqual(fl["click"], "cache_insert")
        self.assertNotIn("click_missed", fl)
        self.assertEqual(fl["zoom"], "cache_insert")
        self.assertEqual(fl["zoom_width"], 1)
        self.assertGreater(fl["zoom_depth"], 1)
        self.assertIn("zoomed on cache_insert (1000.0 KiB, 99.6%)", dom)
        # Hover (after the click, on main, now an ancestor row): bytes and share.
        self.assertEqual(fl["hover"], "main\n1004.0 KiB (1,028,096 bytes), 100.0% of all")
        # Search (applied after the click): the bytes under matching frames.
        self.assertEqual(fl["matched_bytes"], 1024000)
        self.assertIn('"cache_ins" matches 1000.0 KiB (99.6%)', dom)

        shot = screenshot(page, d, "test_html_demo.png")
        with open(shot, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        self.assertGreater(os.path.getsize(shot), 10000)

    def test_sections_from_future_keys(self):
        d, page, rep = self.demo_page()
        with open(page, encoding="utf-8") as f:
            text = f.read()
        data = dict(rep)
        data["stacks"] = [stack(1, 5 << 20, [frame("grow_cache"), frame("main")]),
                          stack(2, 1 << 20, [frame("parse"), frame("main")]),
                          stack(3, 2 << 20, [frame("map_arena")], kind="mmap")]
        data["waterfall"] = [{"name": "RSS", "bytes": 300 << 20, "note": "kernel"},
                             {"name": "heap in use", "bytes": 120 << 20, "note": "tracked"},
                             {"name": "released but resident", "bytes": 80 << 20,
                              "note": "MADV_FREE <pages>"}]
        data["process_memory"] = {"rss_bytes": 300 << 20, "anon_bytes": 250 << 20,
                                  "file_bytes": 40 << 20, "shmem_bytes": 0,
                                  "lazyfree_bytes": 80 << 20, "swap_bytes": None}
        data["cgroup"] = None
        data["page_cache"] = [{"path": "/var/log/big.log", "cached_bytes": 40 << 20,
                               "dirty_bytes": 1 << 20}]
        t0 = 1700000000 * 10**9
        data["series"] = [{"seq": i, "time_ns": t0 + i * 10**9, "trigger": "interval",
                           "heap_inuse_bytes": (10 + 5 * i) << 20, "rss_bytes": (50 + 6 * i) << 20,
                           "released_resident_bytes": None if i == 2 else i << 20,
                           "file_cache_bytes": 20 << 20, "working_set_bytes": (60 + 6 * i) << 20}
                          for i in range(6)]
        data["leak_candidates"] = [{"stack": 1, "score": 0.97, "growth_bytes": 25 << 20,
                                    "growth_bytes_per_s": 5 << 20, "intervals_grown": 5,
                                    "intervals": 5, "reason": "grew in every interval </td>"}]
        data["diff"] = {"stacks": [{"frames": [frame("grow_cache"), frame("main")],
                                    "delta_inuse_bytes": 5 << 20, "delta_inuse_objects": 10,
                                    "base_inuse_bytes": 0, "new_inuse_bytes": 5 << 20},
                                   {"frames": [frame("parse")], "delta_inuse_bytes": -(1 << 20),
                                    "delta_inuse_objects": -2, "base_inuse_bytes": 2 << 20,
                                    "new_inuse_bytes": 1 << 20}]}
        data["threads"] = {"count": 4, "stack_bytes": 32 << 20}
        data["something_new"] = {"answer": 42}
        page2 = os.path.join(d, "future.html")
        with open(page2, "w", encoding="utf-8") as f:
            f.write(with_data(text, data))
        status, dom, console = load(page2, d)
        self.assertEqual(status["errors"], [])
        self.assertEqual(console, [])
        for sec in ("totals", "waterfall", "process-memory", "page-cache", "threads", "series",
                    "leaks", "flame", "diff", "stacks", "other"):
            self.assertIn(sec, status["sections"])
        self.assertNotIn("cgroup", status["sections"])  # null: section hidden
        self.assertEqual(status["flame"]["top"], "grow_cache")
        self.assertIn("released but resident", dom)
        self.assertIn("MADV_FREE &lt;pages&gt;", dom)  # text, not markup
        self.assertIn("grew in every interval &lt;/td&gt;", dom)
        self.assertIn("grow_cache ← main", dom)  # the candidate's stack, by id
        self.assertIn("+5.0 MiB", dom)
        self.assertIn("-1.0 MiB", dom)
        self.assertIn("/var/log/big.log", dom)
        self.assertIn("something_new", dom)
        self.assertNotIn("[object", dom)  # every cell is text or an element, never a cast
        self.assertEqual(dom.count('class="bar grow"'), 1)
        self.assertEqual(dom.count('class="bar shrink"'), 1)
        self.assertEqual(dom.count('<div class="bar"'), 3)  # the waterfall's bars
        # 5 lines; the released-but-resident one broken by its null in two.
        self.assertEqual(dom.count("<polyline"), 6)
        self.assertIn("6 snapshot(s)", dom)
        screenshot(page2, d, "test_html_sections.png")

        # The same page with no optional key at all still renders, with no error.
        bare = {"format": "leakwatch-report/1", "stacks": []}
        page3 = os.path.join(d, "bare.html")
        with open(page3, "w", encoding="utf-8") as f:
            f.write(with_data(text, bare))
        status, dom, console = load(page3, d)
        self.assertEqual(status["errors"], [])
        self.assertEqual(console, [])
        self.assertEqual(status["flame"]["nodes"], 0)

    def test_100k_stacks(self):
        d, page, rep = self.demo_page()
        with open(page, encoding="utf-8") as f:
            text = f.read()
        rnd = random.Random(5)
        names = [f"fn_{i}" for i in range(4000)]
        stacks = [stack(1, 50 << 20, [frame("big_leak"), frame("main")])]
        for i in range(2, 100001):
            depth = rnd.randint(3, 8)
            fr = [frame(rnd.choice(names)) for _ in range(depth)]
            fr.append(frame("main"))
            stacks.append(stack(i, rnd.randint(1, 4096), fr))
        data = {"format": "leakwatch-report/1", "process": rep["process"],
                "snapshot": rep["snapshot"], "heap": rep["heap"], "modules": [],
                "stacks": stacks}
        big = os.path.join(d, "big.html")
        with open(big, "w", encoding="utf-8") as f:
            f.write(with_data(text, data))
        status, dom, console = load(big, d, "#lwtest-click=big_leak&lwtest-hover=big_leak")
        self.assertEqual(status["errors"], [])
        self.assertEqual(console, [])
        fl = status["flame"]
        before = fl["before_click"]
        self.assertEqual(before["top"], "big_leak")
        self.assertGreater(fl["nodes"], 100000)
        # Before the click most frames were too narrow to draw, and said so.
        self.assertGreater(before["collapsed"], 100000)
        self.assertLess(before["drawn"], 20000)
        self.assertEqual(fl["zoom"], "big_leak")
        self.assertEqual(fl["zoom_width"], 1)
        self.assertRegex(before["info"], r"^[\d.]+ MiB in use in the graph, [\d,]+ frames; [\d,]+ frames "
                                         r"narrower than a pixel collapsed \([\d.]+ MiB\), zoom in")
        self.assertRegex(dom, r"zoomed on big_leak \(50\.0 MiB, [\d.]+%\)")
        self.assertRegex(fl["hover"], r"^big_leak\n50\.0 MiB \(52,428,800 bytes\), [\d.]+% of all, "
                                      r"100\.0% of the zoomed frame\nallocated here: 50\.0 MiB$")
        screenshot(big, d, "test_html_100k.png")


if __name__ == "__main__":
    lwtest.main()
