"""`leakwatch report --format html` in headless Chromium (Debian chromium;
--headless --no-sandbox --disable-gpu, network blocked): the page loads
with no console output and no errors, the flame graph's top function is
the program's leak, a click zooms, the sections for JSON keys other
engineers add (waterfall, series, leak candidates, diff, ...) render from a
hand-made report, 100 k stacks still render with tiny frames collapsed,
and screenshots are written to the build directory. A real series
(examples/cache_pool under `leakwatch run --interval`) draws one chart
point per snapshot, its leak candidates with the culprit first, where the
growth went, and the diff of its last two snapshots exactly as `leakwatch
diff` computes it; a real threshold snapshot shows what it saw. Skips,
saying so, where chromium is not installed."""

import html
import json
import os
import random
import re
import shutil
import signal
import subprocess
import time
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


def fmt_bytes(n):
    """report.js's fmtBytes."""
    neg, v, i = n < 0, abs(n), 0
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    while v >= 1024 and i < len(units) - 1:
        v /= 1024
        i += 1
    s = f"{round(v)} B" if i == 0 else f"{v:.1f} {units[i]}"
    return ("-" if neg else "") + s


def fmt_signed(n):
    return ("+" if n > 0 else "") + fmt_bytes(n)


def section_html(dom, sec):
    m = re.search(r'<section id="lw-%s">(.*?)</section>' % re.escape(sec), dom, re.S)
    assert m, f"no section {sec}"
    return m.group(1)


def table_rows(dom, table_id):
    """The cells' text of each body row of the table with this id."""
    m = re.search(r'<table id="%s">(.*?)</table>' % re.escape(table_id), dom, re.S)
    assert m, f"no table {table_id}"
    body = m.group(1).split("<tbody>", 1)[1]
    return [[html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)]
            for r in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


def page_data(page):
    with open(page, encoding="utf-8") as f:
        return json.loads(DATA_RE.search(f.read()).group(2))


def snapshots_of(outdir):
    return sorted(f for f in os.listdir(outdir) if f.endswith(".lwsnap") and not f.startswith("."))


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
        self.check_ages(dom, status, rep)
        # One snapshot: growth says why it has nothing, and there is no diff.
        self.assertIn("growth", status["sections"])
        self.assertEqual(rep["growth"]["snapshots"], 1)
        self.assertIn(html.escape(rep["growth"]["note"], quote=False), dom)
        self.assertNotIn("diff", status["sections"])
        self.assertNotIn("threshold", status["sections"])
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

    def check_ages(self, dom, status, rep):
        """The age profile's buckets, as the JSON report has them."""
        ap = rep.get("age_profile")
        if not ap:
            self.assertNotIn("ages", status["sections"])
            return
        self.assertIn("ages", status["sections"])
        rows = table_rows(dom, "lw-ages")
        b = ap["buckets"]
        self.assertEqual(len(rows), len(b))
        self.assertGreater(len(b), 0)
        total = sum(x["bytes"] for x in b)
        for row, x in zip(rows, b):
            self.assertEqual(row[1], fmt_bytes(x["bytes"]))
            self.assertEqual(row[3], f"{100 * x['bytes'] / total:.1f}%")
            self.assertEqual(row[4], f"{x['objects']:,}")
        self.assertTrue(rows[0][0].startswith(f"{b[0]['min_age_ns'] / 1e9:.1f} s"), rows[0])
        self.assertTrue(rows[-1][0].endswith("old or more"), rows[-1])
        # By stack: the stack holding the most aged bytes first, by name.
        per = table_rows(dom, "lw-ages-stacks")
        sums = sorted(((sum(q["bytes"] for q in x["buckets"]), x["stack"]) for x in ap["stacks"]),
                      key=lambda t: -t[0])
        self.assertEqual(per[0][0], fmt_bytes(sums[0][0]))
        st = next(s for s in rep["stacks"] if s["id"] == sums[0][1])
        self.assertTrue(per[0][4].startswith(lwtest.frame0(st)), per[0])

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
        data["growth"] = {"snapshots": 6, "seconds": 5.0, "slope": "least squares over every snapshot"}
        data["growth_parts"] = {"from_seq": 0, "to_seq": 5, "heap_from_bytes": 10 << 20,
                                "heap_to_bytes": 35 << 20, "largest_growth": "page_cache",
                                "summary": "Most of the growth since snapshot #0 is not heap: file page "
                                           "cache grew +90.0 MiB, heap in use +25.0 MiB.",
                                "lines": [{"name": "heap_in_use", "label": "heap in use", "part": True,
                                           "delta_bytes": 25 << 20},
                                          {"name": "page_cache", "label": "file page cache", "part": True,
                                           "delta_bytes": 90 << 20},
                                          {"name": "rss", "label": "RSS (resident set)", "part": False,
                                           "delta_bytes": None}]}
        data["age_profile"] = None
        data["snapshot"] = dict(rep["snapshot"], threshold={
            "source": "cgroup", "threshold_bytes": 800 << 20, "observed_bytes": 820 << 20,
            "limit_bytes": 1000 << 20})
        data["something_new"] = {"answer": 42}
        page2 = os.path.join(d, "future.html")
        with open(page2, "w", encoding="utf-8") as f:
            f.write(with_data(text, data))
        status, dom, console = load(page2, d)
        self.assertEqual(status["errors"], [])
        self.assertEqual(console, [])
        for sec in ("threshold", "totals", "waterfall", "process-memory", "page-cache", "threads",
                    "series", "growth", "leaks", "flame", "diff", "stacks", "other"):
            self.assertIn(sec, status["sections"])
        self.assertNotIn("cgroup", status["sections"])  # null: section hidden
        self.assertNotIn("ages", status["sections"])
        # Growth that is not heap is said first, and marked.
        self.assertIn('<p id="lw-growth-summary" class="warn">Most of the growth since snapshot #0 is '
                      'not heap: file page cache grew +90.0 MiB, heap in use +25.0 MiB.</p>', dom)
        self.assertEqual(table_rows(dom, "lw-growth"),
                         [["heap in use", "+25.0 MiB", "", ""],
                          ["file page cache (grew most)", "+90.0 MiB", "", ""],
                          ["RSS (resident set)", "not known", "", "total"]])
        self.assertIn("Over 6 snapshot(s) (#0 to #5, 5.0 s): heap in use 10.0 MiB → 35.0 MiB", dom)
        self.assertIn("This snapshot was written because memory cgroup usage crossed 800.0 MiB: "
                      "820.0 MiB seen (cgroup limit 1000.0 MiB, 82.0% of it).", dom)
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
        self.assertEqual(dom.count('class="bar grow"'), 3)  # a diff line, two growth parts
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

    def run_series(self, rounds=6):
        """examples/cache_pool --step under `leakwatch run --interval 0.25`:
        each round waits for an interval snapshot taken after it, except the
        last, which only the exit snapshot sees (so the last two snapshots
        differ by one round of cache_put). Returns the output directory."""
        out = os.path.join(self.tmpdir(), "snaps")
        cmd = [lwtest.TOOL, "run", "--interval", "0.25", "--output", out, "--",
               lwtest.PROGS["cache_pool"], "--rounds", str(rounds), "--step"]
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=lwtest.clean_env(), start_new_session=True)
        self.addCleanup(lambda: p.poll() is None and os.killpg(p.pid, signal.SIGKILL))

        def readline():
            line = p.stdout.readline().decode()
            if not line:
                raise AssertionError(f"cache_pool ended early: {p.stderr.read()[-2000:]!r}")
            return line

        readline()  # "cache_pool: pid N"
        for r in range(rounds + 1):
            self.assertEqual(readline(), f"round {r}\n")
            if r < rounds:
                have = len(snapshots_of(out)) if os.path.isdir(out) else 0
                end = time.monotonic() + 60
                while (len(snapshots_of(out)) if os.path.isdir(out) else 0) <= have:
                    self.assertLess(time.monotonic(), end, f"no interval snapshot after round {r}")
                    time.sleep(0.01)
            p.stdin.write(b"\n")
            p.stdin.flush()
        p.stdin.close()
        p.stdin = None
        _, err = p.communicate(timeout=lwtest.TIMEOUT)
        self.assertEqual(p.returncode, 0, err[-2000:])
        return out

    def test_real_series(self):
        out = self.run_series()
        files = snapshots_of(out)
        self.assertGreaterEqual(len(files), 7)  # rounds 0-5 each seen, then the exit
        self.assertTrue(files[-1].endswith(".exit.lwsnap"), files)
        rep = lwtest.report(out)
        self.assertEqual(len(rep["series"]), len(files))
        d = os.path.dirname(out)
        page = os.path.join(d, "series.html")
        res = lwtest.run([lwtest.TOOL, "report", "--format", "html", "-o", page, out], check_rc=0)
        self.assertEqual(res.stderr, b"")
        status, dom, console = load(page, d)
        self.assertEqual(status["errors"], [])
        self.assertEqual(console, [])
        for sec in ("series", "growth", "leaks", "ages", "flame", "diff", "stacks"):
            self.assertIn(sec, status["sections"])
        self.assertNotIn("other", status["sections"])

        # The time chart: one point per snapshot on every line the series has.
        n = len(files)
        self.assertEqual(status["chart"]["points"], n)
        self.assertIn(f"{n} snapshot(s)", dom)
        for key in ("heap_inuse_bytes", "rss_bytes", "released_resident_bytes", "file_cache_bytes",
                    "working_set_bytes"):
            have = sum(1 for p in rep["series"] if p[key] is not None)
            if have:
                self.assertEqual(status["chart"]["lines"][key], have, key)
            else:
                self.assertNotIn(key, status["chart"]["lines"])
        self.assertEqual(status["chart"]["lines"]["heap_inuse_bytes"], n)
        chart = re.search(r'<svg[^>]*id="lw-chart".*?</svg>', dom, re.S).group(0)
        self.assertEqual(chart.count("<circle"), sum(status["chart"]["lines"].values()))

        # Leak candidates: the culprit first, as the JSON report ranks it.
        lc = rep["leak_candidates"]
        self.assertGreater(len(lc), 0)
        first = next(s for s in rep["stacks"] if s["id"] == lc[0]["stack"])
        self.assertEqual(lwtest.frame0(first), "cache_put")
        leaks = section_html(dom, "leaks")
        rows = re.findall(r"<tr>(.*?)</tr>", leaks.split("<tbody>", 1)[1], re.S)
        self.assertEqual(len(rows), len(lc))
        cells = [html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", rows[0], re.S)]
        self.assertEqual(cells[0], "1")
        self.assertTrue(cells[1].startswith("cache_put ← "), cells)
        self.assertEqual(cells[3], fmt_bytes(lc[0]["growth_bytes"]))
        self.assertEqual(cells[6], lc[0]["reason"])

        # Growth: the text report's sentence, and the heap's line from the series.
        text = lwtest.run([lwtest.TOOL, "report", out], check_rc=0).stdout.decode()
        sentence = re.search(r"^  (Most of the growth since snapshot #\d+ is .*|No part of memory grew .*)$",
                             text, re.M).group(1)
        self.assertIn(html.escape(sentence, quote=False), section_html(dom, "growth"))
        heap_growth = rep["series"][-1]["heap_inuse_bytes"] - rep["series"][0]["heap_inuse_bytes"]
        self.assertGreater(heap_growth, 6 * 200 * 1000)
        grow_rows = {r[0].replace(" (grew most)", ""): r for r in table_rows(dom, "lw-growth")}
        self.assertEqual(grow_rows["heap in use"][1], fmt_signed(heap_growth))
        self.assertIn(f"Over {n} snapshot(s) (#0 to #{rep['series'][-1]['seq']}", dom)
        self.check_ages(dom, status, rep)

        # The diff of the last two snapshots: what `leakwatch diff` says.
        data = page_data(page)
        base, new = os.path.join(out, files[-2]), os.path.join(out, files[-1])
        ref = json.loads(lwtest.run([lwtest.TOOL, "diff", "--format", "json", base, new],
                                    check_rc=0).stdout)
        self.assertEqual(data["diff"], ref)
        top = ref["stacks"][0]
        self.assertEqual(lwtest.frame0(top), "cache_put")
        self.assertEqual(top["delta_inuse_objects"], 200)  # one round of cache_put
        drows = table_rows(dom, "lw-diff")
        self.assertEqual(len(drows), len(ref["stacks"]))
        self.assertEqual(drows[0][0], fmt_signed(top["delta_inuse_bytes"]))
        self.assertEqual(drows[0][4], "+200")
        self.assertTrue(drows[0][6].startswith("cache_put ← "), drows[0])
        c = ref["counts"]
        self.assertIn(f"call stacks: {c['grown']} grew, {c['shrunk']} shrank, {c['new']} new, "
                      f"{c['vanished']} vanished, {c['unchanged']} unchanged", dom)
        self.assertIn(f"Snapshot #{ref['base']['seq']} (interval)", dom)
        shot = screenshot(page, d, "test_html_series.png")
        self.assertGreater(os.path.getsize(shot), 10000)

    def test_threshold_snapshot(self):
        out = os.path.join(self.tmpdir(), "snaps")
        lwtest.leakwatch_run([lwtest.PROGS["cache_pool"], "--rounds", "8"], out,
                             run_args=["--heap-threshold", "33M"], check_rc=0)
        thr = [f for f in snapshots_of(out) if ".heap-threshold." in f]
        self.assertEqual(len(thr), 1, snapshots_of(out))
        path = os.path.join(out, thr[0])
        rep = lwtest.report(path)
        t = rep["snapshot"]["threshold"]
        self.assertEqual((t["source"], t["threshold_bytes"], t["limit_bytes"]), ("heap", 33 << 20, None))
        self.assertGreaterEqual(t["observed_bytes"], 33 << 20)
        d = os.path.dirname(out)
        page = os.path.join(d, "threshold.html")
        lwtest.run([lwtest.TOOL, "report", "--format", "html", "-o", page, path], check_rc=0)
        status, dom, console = load(page, d)
        self.assertEqual(status["errors"], [])
        self.assertEqual(console, [])
        self.assertIn("threshold", status["sections"])
        self.assertIn(f"This snapshot was written because heap in use crossed {fmt_bytes(33 << 20)}: "
                      f"{fmt_bytes(t['observed_bytes'])} seen.", dom)
        self.assertEqual(table_rows(dom, "lw-threshold"),
                         [["watched", "heap in use", ""],
                          ["threshold", "33.0 MiB", f"{33 << 20:,} bytes"],
                          ["seen", fmt_bytes(t["observed_bytes"]), f"{t['observed_bytes']:,} bytes"]])
        self.assertNotIn("diff", status["sections"])  # one snapshot
        self.assertNotIn("diff", page_data(page))

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
