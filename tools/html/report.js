/*
 * report.js - renders leakwatch's HTML report from the JSON report embedded
 * in the page (<script id="lw-data">, schema leakwatch-report/1, plus the
 * page's own "growth_parts" and "diff" for a series: output_html.c). Hand
 * written, no library: every section is drawn only when its key is present,
 * and keys this script does not know are listed at the end, so what the
 * JSON gains later still shows. The flame graph is an icicle on a canvas;
 * frames narrower than a pixel are collapsed and counted.
 *
 * Test hooks: #lw-status receives {errors, sections, flame, chart} as JSON
 * once drawn (chart: points, and per line the points drawn); a location hash "#lwtest-click=NAME" clicks the widest frame
 * called NAME and records the zoom that resulted, "lwtest-hover=NAME" moves
 * the mouse over it and records the tooltip, "lwtest-search=TEXT" searches.
 */
"use strict";
(function () {
  var t0 = performance.now();
  var status = { errors: [], sections: [], flame: null, parse_ms: 0, render_ms: 0, ms: {} };
  var app = document.getElementById("lw-app");
  var data = null;

  /* ---------- small helpers ---------- */
  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    if (attrs) {
      for (var k in attrs) {
        if (!Object.prototype.hasOwnProperty.call(attrs, k)) continue;
        if (k === "text") e.textContent = attrs[k];
        else if (k === "cls") e.className = attrs[k];
        else e.setAttribute(k, attrs[k]);
      }
    }
    (kids || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return e;
  }
  function isNum(v) { return typeof v === "number" && isFinite(v); }
  function fmtInt(n) { return isNum(n) ? Math.round(n).toLocaleString("en-US") : "–"; }
  function fmtBytes(n) {
    if (!isNum(n)) return "–";
    var neg = n < 0, v = Math.abs(n);
    var units = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    var s = i === 0 ? String(Math.round(v)) + " B" : v.toFixed(1) + " " + units[i];
    return (neg ? "-" : "") + s;
  }
  function fmtSigned(n) { return isNum(n) ? (n > 0 ? "+" : "") + fmtBytes(n) : "–"; }
  function pct(part, whole) {
    if (!isNum(part) || !isNum(whole) || whole <= 0) return "–";
    return (100 * part / whole).toFixed(part / whole < 0.001 ? 3 : 1) + "%";
  }
  function basename(p) {
    if (typeof p !== "string") return "";
    var i = p.lastIndexOf("/");
    return i >= 0 ? p.slice(i + 1) : p;
  }
  function section(id, title, note) {
    var s = el("section", { id: "lw-" + id }, [el("h2", { text: title })]);
    if (note) s.appendChild(el("p", { cls: "note", text: note }));
    app.appendChild(s);
    status.sections.push(id);
    return s;
  }
  function table(head, rows, numericCols) {
    var t = el("table");
    var tr = el("tr");
    head.forEach(function (h, i) {
      tr.appendChild(el("th", { text: h, cls: numericCols && numericCols.indexOf(i) >= 0 ? "num" : "" }));
    });
    t.appendChild(el("thead", null, [tr]));
    var tb = el("tbody");
    rows.forEach(function (r) {
      var row = el("tr");
      r.forEach(function (c, i) {
        var td = el("td", { cls: numericCols && numericCols.indexOf(i) >= 0 ? "num" : "" });
        if (c instanceof Node) td.appendChild(c); else td.textContent = c === null || c === undefined ? "–" : String(c);
        row.appendChild(td);
      });
      tb.appendChild(row);
    });
    t.appendChild(tb);
    return t;
  }
  /* A value of unknown shape: bytes when the key says so, else as is. */
  function fmtValue(key, v) {
    if (v === null || v === undefined) return "–";
    if (isNum(v) && /bytes/.test(key)) return fmtBytes(v) + " (" + fmtInt(v) + " bytes)";
    if (isNum(v)) return fmtInt(v);
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }
  function kvTable(obj) {
    var rows = [];
    Object.keys(obj).forEach(function (k) { rows.push([k.replace(/_/g, " "), fmtValue(k, obj[k])]); });
    return table(["", "value"], rows, [1]);
  }

  /* Module base addresses, for "module+0xoffset" names of unknown functions. */
  var moduleBase = {};
  function frameName(f) {
    if (typeof f === "string") return f;
    if (!f || typeof f !== "object") return "??";
    if (f.function) return f.function;
    var mod = f.module || "";
    if (mod && typeof f.address === "string" && moduleBase[mod] !== undefined) {
      try {
        var off = BigInt(f.address) - BigInt(moduleBase[mod]);
        if (off >= 0n) return basename(mod) + "+0x" + off.toString(16);
      } catch (e) { /* an address that is not a number: fall through */ }
    }
    return f.address ? String(f.address) : "??";
  }
  var stackById = null;
  function framesOf(st) {
    /* A stack given as frames, {frames}, a stack id, or text. */
    if (Array.isArray(st)) return st;
    if (st && typeof st === "object" && Array.isArray(st.frames)) return st.frames;
    if (isNum(st) && data && Array.isArray(data.stacks)) {
      if (!stackById) {
        stackById = new Map();
        data.stacks.forEach(function (x) { if (x && isNum(x.id)) stackById.set(x.id, x); });
      }
      var found = stackById.get(st);
      return found && Array.isArray(found.frames) ? found.frames : [];
    }
    if (typeof st === "string") return [st];
    return [];
  }
  function stackLabel(frames, n) {
    var names = frames.slice(0, n).map(frameName);
    if (frames.length > n) names.push("…");
    return names.length ? names.join(" ← ") : "(no frames)";
  }

  /* ---------- sections ---------- */
  function header() {
    var p = data.process || {}, s = data.snapshot || {};
    var h = el("header", null, [el("h1", { text: "leakwatch report" })]);
    var line = [];
    if (p.exe) line.push(p.exe);
    if (isNum(p.pid)) line.push("pid " + p.pid);
    if (s.time) line.push(s.time);
    if (s.trigger) line.push("trigger " + s.trigger);
    if (isNum(s.seq)) line.push("snapshot #" + s.seq);
    h.appendChild(el("p", { cls: "sub", text: line.join(" · ") }));
    if (Array.isArray(p.cmdline) && p.cmdline.length)
      h.appendChild(el("p", { cls: "cmd", text: p.cmdline.join(" ") }));
    var sm = data.sampling;
    if (sm && sm.mode === "sampled")
      h.appendChild(el("p", { cls: "sub", text: "Sampled: one allocation per " + fmtBytes(sm.interval_bytes) +
        " on average. Heap totals are exact; per-stack figures are estimates whose sum matches the totals only on average." }));
    app.appendChild(h);
    threshold(s.threshold);
  }

  /* snapshot.threshold: what a threshold snapshot watched and saw. */
  var WATCHED = { cgroup: "memory cgroup usage", rss: "process RSS", heap: "heap in use" };
  function threshold(t) {
    if (!t || typeof t !== "object") return;
    var s = section("threshold", "Threshold crossed");
    var what = WATCHED[t.source] || "unknown source (" + String(t.source) + ")";
    var line = "This snapshot was written because " + what + " crossed " + fmtBytes(t.threshold_bytes) +
      ": " + fmtBytes(t.observed_bytes) + " seen";
    if (isNum(t.limit_bytes)) line += " (cgroup limit " + fmtBytes(t.limit_bytes) + ", " + pct(t.observed_bytes, t.limit_bytes) + " of it)";
    s.appendChild(el("p", { id: "lw-threshold-line", text: line + "." }));
    var rows = [["watched", what, ""], ["threshold", fmtBytes(t.threshold_bytes), fmtInt(t.threshold_bytes) + " bytes"],
      ["seen", fmtBytes(t.observed_bytes), fmtInt(t.observed_bytes) + " bytes"]];
    if (isNum(t.limit_bytes)) rows.push(["cgroup limit", fmtBytes(t.limit_bytes), fmtInt(t.limit_bytes) + " bytes"]);
    var tb = table(["", "", ""], rows, [1, 2]);
    tb.id = "lw-threshold";
    s.appendChild(tb);
  }

  function totals() {
    var s = section("totals", "Totals");
    var rows = [];
    var hp = data.heap || {};
    if (isNum(hp.inuse_bytes)) rows.push(["heap in use (malloc family)", fmtBytes(hp.inuse_bytes), fmtInt(hp.inuse_objects) + " blocks"]);
    if (isNum(hp.alloc_bytes)) rows.push(["heap allocated, ever", fmtBytes(hp.alloc_bytes), fmtInt(hp.alloc_objects) + " calls"]);
    var lwm = data.leakwatch;
    if (lwm && isNum(lwm.metadata_bytes) && lwm.metadata_bytes)
      rows.push(["leakwatch's own memory", fmtBytes(lwm.metadata_bytes), "tables and stacks; not in the figures above"]);
    [["mappings", "program's mappings (mmap)"], ["allocator", "allocator's mappings"]].forEach(function (m) {
      var o = data[m[0]];
      if (!o || typeof o !== "object") return;
      rows.push([m[1] + ": mapped", fmtBytes(o.mapped_bytes), ""]);
      if (o.madv_free_bytes) rows.push([m[1] + ": advised MADV_FREE", fmtBytes(o.madv_free_bytes), ""]);
      if (o.released_resident_bytes) rows.push([m[1] + ": released but resident", fmtBytes(o.released_resident_bytes), "still counted in RSS"]);
    });
    if (rows.length) s.appendChild(table(["", "bytes", ""], rows, [1]));
    var d = data.dropped;
    if (d && typeof d === "object") {
      var lost = Object.keys(d).filter(function (k) { return d[k]; });
      if (lost.length)
        s.appendChild(el("p", { cls: "warn", text: "Not tracked (figures are lower bounds): " +
          lost.map(function (k) { return k.replace(/_/g, " ") + " " + fmtInt(d[k]); }).join(", ") }));
    }
    if (typeof data.largest_part === "string" && data.largest_part)
      s.appendChild(el("p", { id: "lw-largest", text: "Largest part of the memory: " + data.largest_part.replace(/_/g, " ") }));
    if (Array.isArray(data.waterfall) && data.waterfall.length) {
      status.sections.push("waterfall");
      var max = 0;
      data.waterfall.forEach(function (w) { if (w && isNum(w.bytes)) max = Math.max(max, Math.abs(w.bytes)); });
      var wrows = data.waterfall.map(function (w) {
        w = w || {};
        var bar = el("div", { cls: "bar" });
        bar.style.width = (max > 0 && isNum(w.bytes) ? (100 * Math.abs(w.bytes) / max) : 0).toFixed(2) + "%";
        var name = String(w.name || "").replace(/_/g, " ");
        var cell = w.name && w.name === data.largest_part ? el("strong", { text: name + " (largest part)" }) : name;
        return [cell, fmtBytes(w.bytes), el("div", { cls: "barbox" }, [bar]), w.note || ""];
      });
      var wt = table(["where the memory is", "bytes", "", "note"], wrows, [1]);
      wt.id = "lw-waterfall";
      s.appendChild(el("h3", { text: "Waterfall" }));
      s.appendChild(wt);
    }
  }

  function memoryTables() {
    if (data.process_memory && typeof data.process_memory === "object") {
      var s = section("process-memory", "Process memory (kernel's view)");
      s.appendChild(kvTable(data.process_memory));
    }
    if (data.cgroup && typeof data.cgroup === "object") {
      var c = section("cgroup", "Cgroup");
      c.appendChild(kvTable(data.cgroup));
    }
    if (Array.isArray(data.page_cache) && data.page_cache.length) {
      var pc = section("page-cache", "Page cache by file");
      pc.appendChild(table(["file", "cached", "dirty", "file size", "state"], data.page_cache.map(function (f) {
        f = f || {};
        return [f.path || "", fmtBytes(f.cached_bytes), fmtBytes(f.dirty_bytes), fmtBytes(f.size_bytes), f.state || ""];
      }), [1, 2, 3]));
    }
    if (data.allocator_stats && typeof data.allocator_stats === "object") {
      var as = section("allocator-stats", "The allocator's own view");
      as.appendChild(kvTable(data.allocator_stats));
    }
    if (data.threads && typeof data.threads === "object") threads(data.threads);
  }

  /* "threads": live / created / exited, and per creation stack. */
  function threads(th) {
    var t = section("threads", "Threads");
    if (Array.isArray(th)) { t.appendChild(el("pre", { text: JSON.stringify(th, null, 1) })); return; }
    var by = Array.isArray(th.by_stack) ? th.by_stack : null;
    if (isNum(th.live)) {
      t.appendChild(el("p", { id: "lw-threads-line", text: fmtInt(th.live) + " live thread(s): " + fmtInt(th.created) +
        " created, " + fmtInt(th.exited) + " exited (threads the program started while traced)" }));
    }
    var rest = {};
    Object.keys(th).forEach(function (k) { if (["live", "created", "exited", "by_stack"].indexOf(k) < 0) rest[k] = th[k]; });
    if (Object.keys(rest).length) t.appendChild(kvTable(rest));
    if (!by || !by.length) return;
    var tb = table(["live", "created", "exited", "stacks (configured)", "resident", "started from (innermost first)"],
      by.map(function (x) {
        x = x || {};
        return [fmtInt(x.live), fmtInt(x.created), fmtInt(x.exited), fmtBytes(x.stack_bytes),
          isNum(x.resident_bytes) ? fmtBytes(x.resident_bytes) : "not measured", stackLabel(framesOf(x.stack), 4)];
      }), [0, 1, 2, 3, 4]);
    tb.id = "lw-threads";
    t.appendChild(tb);
  }

  var SERIES = [
    ["heap_inuse_bytes", "heap in use", "#d9480f"],
    ["rss_bytes", "RSS", "#1c7ed6"],
    ["released_resident_bytes", "released but resident", "#ae3ec9"],
    ["file_cache_bytes", "file cache", "#2b8a3e"],
    ["working_set_bytes", "working set", "#495057"],
  ];
  function timeChart() {
    var pts = (data.series || []).filter(function (p) { return p && typeof p === "object"; });
    if (!pts.length) return;
    var s = section("series", "Over time", pts.length + " snapshot(s)");
    /* x: seconds since the first snapshot (t_s, monotonic), else from the
     * wall clock, else the snapshot's index. */
    var t0 = null, allT = pts.every(function (p) { return isNum(p.t_s); });
    pts.forEach(function (p) { if (isNum(p.time_ns) && (t0 === null || p.time_ns < t0)) t0 = p.time_ns; });
    var xs = pts.map(function (p, i) {
      if (allT) return p.t_s;
      return isNum(p.time_ns) && t0 !== null ? (p.time_ns - t0) / 1e9 : i;
    });
    var chartSt = { points: pts.length, lines: {} };
    status.chart = chartSt;
    var xmax = Math.max.apply(null, xs.concat([1e-9])), ymax = 0;
    var present = SERIES.filter(function (d) {
      var any = false;
      pts.forEach(function (p) { if (isNum(p[d[0]])) { any = true; ymax = Math.max(ymax, p[d[0]]); } });
      return any;
    });
    if (ymax <= 0) ymax = 1;
    var W = 900, H = 280, L = 80, R = 20, T = 10, B = 40;
    var NS = "http://www.w3.org/2000/svg";
    function svg(tag, attrs) {
      var e = document.createElementNS(NS, tag);
      for (var k in attrs) e.setAttribute(k, attrs[k]);
      return e;
    }
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, "class": "chart", id: "lw-chart" });
    function X(x) { return L + (W - L - R) * x / xmax; }
    function Y(y) { return T + (H - T - B) * (1 - y / ymax); }
    for (var i = 0; i <= 4; i++) {
      var yv = ymax * i / 4;
      root.appendChild(svg("line", { x1: L, x2: W - R, y1: Y(yv), y2: Y(yv), "class": "grid" }));
      var lab = svg("text", { x: L - 6, y: Y(yv) + 4, "text-anchor": "end", "class": "axis" });
      lab.textContent = fmtBytes(yv);
      root.appendChild(lab);
    }
    for (var j = 0; j <= 4; j++) {
      var xv = xmax * j / 4;
      var xl = svg("text", { x: X(xv), y: H - B + 18, "text-anchor": "middle", "class": "axis" });
      xl.textContent = xv.toFixed(xv < 10 ? 1 : 0) + " s";
      root.appendChild(xl);
    }
    present.forEach(function (d) {
      var seg = [], n = 0;
      function flush() {
        if (seg.length > 1) root.appendChild(svg("polyline", { points: seg.join(" "), fill: "none", stroke: d[2], "stroke-width": 2 }));
        seg = [];
      }
      pts.forEach(function (p, k) {
        if (!isNum(p[d[0]])) { flush(); return; } /* null: a gap, not a zero */
        seg.push(X(xs[k]).toFixed(1) + "," + Y(p[d[0]]).toFixed(1));
        n++;
        if (pts.length <= 400) {
          var c = svg("circle", { cx: X(xs[k]), cy: Y(p[d[0]]), r: 3, fill: d[2] });
          var tt = svg("title", {});
          tt.textContent = d[1] + ": " + fmtBytes(p[d[0]]) + " at " + xs[k].toFixed(2) + " s" +
            (p.trigger ? " (" + p.trigger + ")" : "");
          c.appendChild(tt);
          root.appendChild(c);
        }
      });
      flush();
      chartSt.lines[d[0]] = n;
    });
    s.appendChild(root);
    var legend = el("p", { cls: "legend" });
    present.forEach(function (d) {
      var sw = el("span", { cls: "swatch" });
      sw.style.background = d[2];
      legend.appendChild(el("span", { cls: "key" }, [sw, d[1]]));
    });
    s.appendChild(legend);
  }

  function leakCandidates() {
    var lc = data.leak_candidates;
    if (!Array.isArray(lc)) return;
    var s = section("leaks", "Leak candidates", lc.length ? "Stacks whose bytes in use kept growing, most likely first." : "No stack grew steadily over the snapshots.");
    if (!lc.length) return;
    s.appendChild(table(["#", "stack (innermost first)", "score", "growth", "per second", "grew in", "why"],
      lc.map(function (c, i) {
        c = c || {};
        return [String(i + 1), stackLabel(framesOf(c.stack), 4) + (c.kind && c.kind !== "heap" ? " [" + c.kind + "]" : ""),
          isNum(c.score) ? c.score.toFixed(2) : fmtValue("", c.score), fmtBytes(c.growth_bytes),
          isNum(c.growth_bytes_per_s) ? fmtBytes(c.growth_bytes_per_s) + "/s" : "–",
          (isNum(c.intervals_grown) ? c.intervals_grown : "?") + " of " + (isNum(c.intervals) ? c.intervals : "?") + " intervals",
          c.reason || ""];
      }), [2, 3, 4]));
  }

  /* "growth" (the series' span) and "growth_parts" (the page's: where
   * the growth from the first to the last snapshot went). */
  function growth() {
    var g = data.growth, gp = data.growth_parts;
    if ((!g || typeof g !== "object") && (!gp || typeof gp !== "object")) return;
    g = g && typeof g === "object" ? g : {};
    var s = section("growth", "Growth");
    var pts = Array.isArray(data.series) ? data.series : [];
    var line = "";
    if (isNum(g.snapshots)) line = "Over " + fmtInt(g.snapshots) + " snapshot(s)";
    if (gp && isNum(gp.from_seq)) line += (line ? " " : "From ") + "(#" + gp.from_seq + " to #" + gp.to_seq + (isNum(g.seconds) ? ", " + g.seconds.toFixed(1) + " s" : "") + ")";
    else if (isNum(g.seconds) && g.snapshots > 1) line += ", " + g.seconds.toFixed(1) + " s";
    if (gp && isNum(gp.heap_from_bytes)) line += ": heap in use " + fmtBytes(gp.heap_from_bytes) + " → " + fmtBytes(gp.heap_to_bytes);
    if (line) s.appendChild(el("p", { id: "lw-growth-line", text: line }));
    if (typeof g.note === "string" && g.note) s.appendChild(el("p", { cls: "note", text: g.note }));
    if (!gp || typeof gp !== "object") return;
    if (typeof gp.summary === "string" && gp.summary) {
      var notHeap = / is not heap/.test(gp.summary);
      s.appendChild(el("p", { id: "lw-growth-summary", cls: notHeap ? "warn" : "", text: gp.summary }));
    }
    var lines = (Array.isArray(gp.lines) ? gp.lines : []).filter(function (x) { return x && typeof x === "object"; });
    if (!lines.length) return;
    var max = 0;
    lines.forEach(function (x) { if (x.part && isNum(x.delta_bytes)) max = Math.max(max, Math.abs(x.delta_bytes)); });
    var tb = table(["part of the memory", "change", "", ""], lines.map(function (x) {
      var label = String(x.label || x.name || "");
      var cell = x.name && x.name === gp.largest_growth ? el("strong", { text: label + " (grew most)" }) : label;
      var box = null;
      if (x.part && isNum(x.delta_bytes)) {
        var bar = el("div", { cls: "bar " + (x.delta_bytes >= 0 ? "grow" : "shrink") });
        bar.style.width = (max > 0 ? 100 * Math.abs(x.delta_bytes) / max : 0).toFixed(2) + "%";
        box = el("div", { cls: "barbox" }, [bar]);
      }
      return [cell, isNum(x.delta_bytes) ? fmtSigned(x.delta_bytes) : "not known", box || "", x.part ? "" : "total"];
    }), [1]);
    tb.id = "lw-growth";
    s.appendChild(tb);
  }

  function fmtAge(ns) {
    if (!isNum(ns)) return "–";
    var sec = ns / 1e9;
    if (sec < 60) return sec.toFixed(1) + " s";
    if (sec < 3600) return (sec / 60).toFixed(1) + " min";
    return (sec / 3600).toFixed(1) + " h";
  }
  /* "age_profile": how old the last snapshot's live heap blocks are. */
  function ageProfile() {
    var ap = data.age_profile;
    if (!ap || typeof ap !== "object") return;
    var s = section("ages", "Age of the live heap blocks",
      "How long the blocks still in use at this snapshot have been alive. Blocks that are only ever old, " +
      "and keep accumulating in the oldest bucket, are what a leak looks like in a single snapshot.");
    var b = (Array.isArray(ap.buckets) ? ap.buckets : []).filter(function (x) { return x && isNum(x.min_age_ns); });
    b.sort(function (x, y) { return x.min_age_ns - y.min_age_ns; });
    var total = 0, max = 0;
    b.forEach(function (x) { if (isNum(x.bytes)) { total += x.bytes; max = Math.max(max, x.bytes); } });
    function range(list, i) {
      return i + 1 < list.length ? fmtAge(list[i].min_age_ns) + " to " + fmtAge(list[i + 1].min_age_ns) + " old"
        : fmtAge(list[i].min_age_ns) + " old or more";
    }
    var tb = table(["age", "bytes", "", "share", "blocks"], b.map(function (x, i) {
      var bar = el("div", { cls: "bar" });
      bar.style.width = (max > 0 && isNum(x.bytes) ? 100 * x.bytes / max : 0).toFixed(2) + "%";
      return [range(b, i), fmtBytes(x.bytes), el("div", { cls: "barbox" }, [bar]), pct(x.bytes, total), fmtInt(x.objects)];
    }), [1, 3, 4]);
    tb.id = "lw-ages";
    s.appendChild(tb);
    var per = (Array.isArray(ap.stacks) ? ap.stacks : []).filter(function (x) { return x && typeof x === "object"; });
    if (!per.length) return;
    var rows = per.map(function (x) {
      var bk = (Array.isArray(x.buckets) ? x.buckets : []).filter(function (q) { return q && isNum(q.min_age_ns); });
      var bytes = 0, objs = 0, oldBytes = 0;
      bk.forEach(function (q) {
        bytes += isNum(q.bytes) ? q.bytes : 0;
        objs += isNum(q.objects) ? q.objects : 0;
        if (q.min_age_ns === x.oldest_age_ns) oldBytes += isNum(q.bytes) ? q.bytes : 0;
      });
      return { x: x, bytes: bytes, objs: objs, oldBytes: oldBytes };
    });
    rows.sort(function (p, q) { return q.bytes - p.bytes; });
    var shown = rows.slice(0, 20);
    s.appendChild(el("h3", { text: "By call stack" + (rows.length > shown.length ? " (the " + shown.length + " holding the most of " + rows.length + ")" : "") }));
    var ts = table(["in use", "blocks", "oldest blocks", "in the oldest bucket", "stack (innermost first)"], shown.map(function (r) {
      return [fmtBytes(r.bytes), fmtInt(r.objs), "≥ " + fmtAge(r.x.oldest_age_ns), fmtBytes(r.oldBytes), stackLabel(framesOf(r.x.stack), 4)];
    }), [0, 1, 2, 3]);
    ts.id = "lw-ages-stacks";
    s.appendChild(ts);
  }

  function diff() {
    var d = data.diff;
    if (!d || typeof d !== "object" || !Array.isArray(d.stacks)) return;
    /* As `leakwatch diff --format json` writes it: largest growth first,
     * largest shrink last. Past 50, the 40 first and the 10 last. */
    var st = d.stacks.filter(function (x) { return x && typeof x === "object"; });
    var shown = st.length > 50 ? st.slice(0, 40).concat(st.slice(st.length - 10)) : st;
    var c = d.counts && typeof d.counts === "object" ? d.counts : null;
    var note = c ? "call stacks: " + fmtInt(c.grown) + " grew, " + fmtInt(c.shrunk) + " shrank, " + fmtInt(c.new) +
      " new, " + fmtInt(c.vanished) + " vanished, " + fmtInt(c.unchanged) + " unchanged" : st.length + " stack(s) changed";
    if (st.length > shown.length) note += "; the 40 largest growths and the 10 largest shrinks shown";
    var s = section("diff", "Change since the previous snapshot", note);
    function side(x) {
      if (!x || typeof x !== "object") return "?";
      return "#" + (isNum(x.seq) ? x.seq : "?") + (x.trigger ? " (" + x.trigger + ")" : "") + (x.time ? " " + x.time : "");
    }
    if (d.base || d.new) {
      var hl = "Snapshot " + side(d.base) + " → " + side(d.new);
      if (d.heap && isNum(d.heap.delta_inuse_bytes)) hl += ": heap in use " + fmtSigned(d.heap.delta_inuse_bytes) +
        (isNum(d.heap.delta_inuse_objects) ? " (" + (d.heap.delta_inuse_objects > 0 ? "+" : "") + fmtInt(d.heap.delta_inuse_objects) + " blocks)" : "");
      s.insertBefore(el("p", { id: "lw-diff-line", text: hl }), s.lastChild);
    }
    if (!st.length) { s.appendChild(el("p", { text: "No call stack changed." })); return; }
    var max = 0;
    shown.forEach(function (x) { if (isNum(x.delta_inuse_bytes)) max = Math.max(max, Math.abs(x.delta_inuse_bytes)); });
    var dt = table(["change", "", "before", "after", "objects", "", "stack (innermost first)"], shown.map(function (x) {
      var bar = el("div", { cls: "bar " + ((x.delta_inuse_bytes || 0) >= 0 ? "grow" : "shrink") });
      bar.style.width = (max > 0 && isNum(x.delta_inuse_bytes) ? 100 * Math.abs(x.delta_inuse_bytes) / max : 0).toFixed(2) + "%";
      return [fmtSigned(x.delta_inuse_bytes), el("div", { cls: "barbox" }, [bar]), fmtBytes(x.base_inuse_bytes),
        fmtBytes(x.new_inuse_bytes), isNum(x.delta_inuse_objects) ? (x.delta_inuse_objects > 0 ? "+" : "") + fmtInt(x.delta_inuse_objects) : "–",
        (typeof x.status === "string" && x.status !== "grown" && x.status !== "shrunk" ? x.status : "") +
          (x.kind && x.kind !== "heap" ? " [" + x.kind + "]" : ""),
        stackLabel(framesOf(x.frames !== undefined ? x.frames : x.stack), 4)];
    }), [0, 2, 3, 4]);
    dt.id = "lw-diff";
    s.appendChild(dt);
  }

  function topStacks() {
    if (!Array.isArray(data.stacks) || !data.stacks.length) return;
    var st = data.stacks.filter(function (x) { return x && isNum(x.inuse_bytes) && x.inuse_bytes > 0; });
    st.sort(function (a, b) { return b.inuse_bytes - a.inuse_bytes; }); /* ranked already; keep it so */
    var shown = st.slice(0, 20);
    var s = section("stacks", "Call stacks holding the most memory",
      st.length + " stack(s) hold memory" + (st.length > shown.length ? "; the first " + shown.length + " shown (the flame graph has all)" : ""));
    s.appendChild(table(["#", "in use", "objects", "kind", "stack (innermost first)"], shown.map(function (x, i) {
      return [String(i + 1), fmtBytes(x.inuse_bytes), fmtInt(x.inuse_objects), x.kind || "", stackLabel(x.frames || [], 5)];
    }), [1, 2]));
  }

  /* ---------- flame graph (icicle: callers on top) ---------- */
  function FNode(name, parent) {
    this.name = name; this.value = 0; this.self = 0; this.parent = parent;
    this.kids = new Map(); this.list = null; this.count = 1; this.depth = parent ? parent.depth + 1 : 0;
  }
  function buildTree(kinds) {
    var root = new FNode("all", null);
    (data.stacks || []).forEach(function (st) {
      if (!st || !isNum(st.inuse_bytes) || st.inuse_bytes <= 0) return;
      var kind = st.kind || "heap";
      if (!kinds[kind] && !(kinds.other && !(kind in kinds))) return;
      var path = [];
      if (kind !== "heap") path.push("[" + kind + "]");
      if (st.truncated) path.push("[truncated]");
      var fr = Array.isArray(st.frames) ? st.frames : [];
      if (!fr.length) path.push("[no frames]");
      for (var i = fr.length - 1; i >= 0; i--) path.push(frameName(fr[i]));
      var v = st.inuse_bytes, n = root;
      root.value += v;
      for (var k = 0; k < path.length; k++) {
        var c = n.kids.get(path[k]);
        if (!c) { c = new FNode(path[k], n); n.kids.set(path[k], c); }
        c.value += v;
        n = c;
      }
      n.self += v;
    });
    /* Children sorted by bytes (widest first), subtree sizes; no recursion. */
    var order = [root], nodes = 0;
    for (var i = 0; i < order.length; i++) {
      var nd = order[i];
      nd.list = Array.from(nd.kids.values()).sort(function (a, b) { return b.value - a.value || (a.name < b.name ? -1 : 1); });
      nd.kids = null;
      for (var j = 0; j < nd.list.length; j++) order.push(nd.list[j]);
    }
    for (var q = order.length - 1; q > 0; q--) order[q].parent.count += order[q].count;
    nodes = order.length - 1;
    return { root: root, nodes: nodes, all: order };
  }

  function hue(name) {
    var h = 0;
    for (var i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) | 0;
    return h;
  }
  function colour(node) {
    if (node.name.charAt(0) === "[") return "#adb5bd";
    var h = Math.abs(hue(node.name));
    return "hsl(" + (10 + h % 40) + "," + (60 + h % 25) + "%," + (55 + (h >> 8) % 15) + "%)";
  }

  function flameGraph() {
    if (!Array.isArray(data.stacks)) return;
    var s = section("flame", "Live bytes by call stack",
      "Icicle graph: callers on top, the allocating call at the bottom of each column; width is bytes in use. " +
      "Click a frame to zoom, click an upper frame (or Reset) to zoom out, hover for bytes and share.");
    var kinds = { heap: true, mmap: true, allocator: false, other: true };
    var controls = el("div", { cls: "controls" });
    var search = el("input", { type: "search", placeholder: "search functions", id: "lw-search" });
    var reset = el("button", { type: "button", id: "lw-reset", text: "Reset zoom" });
    controls.appendChild(search);
    controls.appendChild(reset);
    [["heap", "heap blocks"], ["mmap", "program mappings"], ["allocator", "allocator mappings (hold heap blocks: counted twice)"]].forEach(function (k) {
      var cb = el("input", { type: "checkbox", id: "lw-kind-" + k[0] });
      cb.checked = kinds[k[0]];
      cb.addEventListener("change", function () { kinds[k[0]] = cb.checked; rebuild(); });
      controls.appendChild(el("label", null, [cb, " " + k[1]]));
    });
    s.appendChild(controls);
    var info = el("p", { cls: "note", id: "lw-flame-info" });
    s.appendChild(info);
    var wrap = el("div", { cls: "flamewrap" });
    var canvas = el("canvas", { id: "lw-flame" });
    var tip = el("div", { cls: "tip", id: "lw-tip" });
    tip.hidden = true;
    wrap.appendChild(canvas);
    wrap.appendChild(tip);
    s.appendChild(wrap);

    var ROW = 18, MINW = 1;
    var tree = null, zoom = null, rows = [], query = "", layout = null;
    var st = { nodes: 0, top: null, drawn: 0, collapsed: 0, collapsed_bytes: 0, zoom: "all", zoom_width: 0, matched_bytes: 0 };
    status.flame = st;

    function rebuild() {
      tree = buildTree(kinds);
      zoom = tree.root;
      st.nodes = tree.nodes;
      st.top = null;
      /* The function holding the most bytes by itself: the flame graph's "top". */
      var best = null;
      tree.all.forEach(function (n) { if (n !== tree.root && n.self > 0 && (!best || n.self > best.self)) best = n; });
      st.top = best ? best.name : null;
      draw();
    }

    function draw() {
      var W = Math.max(300, Math.floor(wrap.clientWidth || 1000));
      var scale = zoom.value > 0 ? W / zoom.value : 0;
      rows = [];
      var collapsed = 0, collapsedBytes = 0, drawn = 0;
      function put(n, x, w, d, kind) {
        (rows[d] = rows[d] || []).push({ x: x, w: w, n: n, kind: kind || "" });
        drawn++;
      }
      /* Ancestors of the zoomed frame span the whole width. */
      var anc = [];
      for (var a = zoom; a; a = a.parent) anc.unshift(a);
      anc.forEach(function (n, d) { if (n !== zoom) put(n, 0, W, d, "anc"); });
      var stack = [{ n: zoom, x: 0, d: anc.length - 1 }];
      while (stack.length) {
        var it = stack.pop(), n = it.n, w = n.value * scale;
        put(n, it.x, w, it.d);
        var cx = it.x;
        for (var i = 0; i < n.list.length; i++) {
          var c = n.list[i], cw = c.value * scale;
          if (cw < MINW) {
            /* The rest are narrower still (sorted): one grey box for them all. */
            var restBytes = 0, restCount = 0;
            for (var j = i; j < n.list.length; j++) { restBytes += n.list[j].value; restCount += n.list[j].count; }
            collapsed += restCount;
            collapsedBytes += restBytes;
            if (restBytes * scale >= 0.5) put({ name: restCount + " frame(s) under 1 px", value: restBytes, self: 0, list: [], parent: n, count: restCount, depth: n.depth + 1, collapsed: true }, cx, restBytes * scale, it.d + 1, "rest");
            break;
          }
          stack.push({ n: c, x: cx, d: it.d + 1 });
          cx += cw;
        }
      }
      var H = rows.length * ROW;
      var dpr = window.devicePixelRatio || 1;
      canvas.width = W * dpr;
      canvas.height = H * dpr;
      canvas.style.width = W + "px";
      canvas.style.height = H + "px";
      var g = canvas.getContext("2d");
      g.setTransform(dpr, 0, 0, dpr, 0, 0);
      g.clearRect(0, 0, W, H);
      g.font = "12px sans-serif";
      g.textBaseline = "middle";
      var q = query.toLowerCase();
      rows.forEach(function (row, d) {
        row.forEach(function (r) {
          var hit = q && !r.n.collapsed && r.n.name.toLowerCase().indexOf(q) >= 0;
          g.fillStyle = r.kind === "rest" ? "#dee2e6" : hit ? "#e64980" : r.kind === "anc" ? "#ced4da" : colour(r.n);
          g.fillRect(r.x, d * ROW, Math.max(r.w - 0.5, 0.5), ROW - 1);
          if (r.w > 30) {
            g.fillStyle = "#111";
            var label = r.n.name, maxc = Math.floor((r.w - 6) / 6.5);
            if (label.length > maxc) label = label.slice(0, Math.max(maxc - 1, 1)) + "…";
            g.save();
            g.beginPath();
            g.rect(r.x, d * ROW, r.w, ROW);
            g.clip();
            g.fillText(label, r.x + 3, d * ROW + ROW / 2);
            g.restore();
          }
        });
      });
      st.drawn = drawn;
      st.collapsed = collapsed;
      st.collapsed_bytes = collapsedBytes;
      st.zoom = zoom.name;
      st.zoom_depth = zoom.depth;
      st.zoom_width = W > 0 ? Math.round(zoom.value * scale) / W : 0;
      /* Width of the first-level frames as drawn, for the tests. */
      st.first_row = (rows[anc.length] || []).slice(0, 5).map(function (r) { return { name: r.n.name, x: Math.round(r.x), w: Math.round(r.w) }; });
      var txt = fmtBytes(tree.root.value) + " in use in the graph, " + fmtInt(tree.nodes) + " frames";
      if (zoom !== tree.root) txt += "; zoomed on " + zoom.name + " (" + fmtBytes(zoom.value) + ", " + pct(zoom.value, tree.root.value) + ")";
      txt += collapsed ? "; " + fmtInt(collapsed) + " frames narrower than a pixel collapsed (" + fmtBytes(collapsedBytes) + "), zoom in to see them" : "";
      if (q) {
        st.matched_bytes = matched(q);
        txt += "; \"" + query + "\" matches " + fmtBytes(st.matched_bytes) + " (" + pct(st.matched_bytes, tree.root.value) + ")";
      }
      info.textContent = txt;
      writeStatus();
    }

    /* Bytes under frames whose name matches, not counting a match twice
     * when a matching frame calls another one. */
    function matched(q) {
      var total = 0, todo = [tree.root];
      while (todo.length) {
        var n = todo.pop();
        if (n !== tree.root && n.name.toLowerCase().indexOf(q) >= 0) { total += n.value; continue; }
        for (var i = 0; i < n.list.length; i++) todo.push(n.list[i]);
      }
      return total;
    }

    function at(ev) {
      var rect = canvas.getBoundingClientRect();
      var x = ev.clientX - rect.left, d = Math.floor((ev.clientY - rect.top) / ROW);
      var row = rows[d] || [];
      for (var i = 0; i < row.length; i++) if (x >= row[i].x && x < row[i].x + Math.max(row[i].w, 1)) return row[i];
      return null;
    }
    canvas.addEventListener("mousemove", function (ev) {
      var r = at(ev);
      if (!r) { tip.hidden = true; return; }
      var n = r.n;
      tip.textContent = n.name + "\n" + fmtBytes(n.value) + " (" + fmtInt(n.value) + " bytes), " +
        pct(n.value, tree.root.value) + " of all" + (zoom !== tree.root && r.kind !== "anc" ? ", " + pct(n.value, zoom.value) + " of the zoomed frame" : "") +
        (n.self ? "\nallocated here: " + fmtBytes(n.self) : "");
      tip.hidden = false;
      var wr = wrap.getBoundingClientRect();
      tip.style.left = Math.min(ev.clientX - wr.left + 12, wr.width - 260) + "px";
      tip.style.top = (ev.clientY - wr.top + 14) + "px";
    });
    canvas.addEventListener("mouseleave", function () { tip.hidden = true; });
    canvas.addEventListener("click", function (ev) {
      var r = at(ev);
      if (!r) return;
      if (r.n.collapsed) zoom = r.n.parent; /* zoom on the parent: its small callees get room */
      else zoom = r.n;
      draw();
    });
    reset.addEventListener("click", function () { zoom = tree.root; draw(); });
    search.addEventListener("input", function () { query = search.value; draw(); });
    window.addEventListener("resize", function () { draw(); });

    rebuild();

    /* Test hook: click the widest frame with this name, through the real handler. */
    var m = /lwtest-click=([^&]*)/.exec(location.hash || "");
    if (m) {
      var want = decodeURIComponent(m[1]), target = null;
      for (var d = 0; d < rows.length && !target; d++)
        rows[d].forEach(function (r) { if (!target && r.n.name === want) target = { r: r, d: d }; });
      st.click = want;
      st.before_click = { zoom: st.zoom, drawn: st.drawn, collapsed: st.collapsed, top: st.top, info: info.textContent };
      if (target) {
        var rect = canvas.getBoundingClientRect();
        canvas.dispatchEvent(new MouseEvent("click", {
          clientX: rect.left + target.r.x + Math.min(target.r.w / 2, 5),
          clientY: rect.top + target.d * ROW + ROW / 2, bubbles: true }));
      } else {
        st.click_missed = true;
      }
    }
    var hv = /lwtest-hover=([^&]*)/.exec(location.hash || "");
    if (hv) {
      var hname = decodeURIComponent(hv[1]), hit = null;
      for (var hd = 0; hd < rows.length && !hit; hd++)
        rows[hd].forEach(function (r) { if (!hit && r.n.name === hname) hit = { r: r, d: hd }; });
      if (hit) {
        var hr = canvas.getBoundingClientRect();
        canvas.dispatchEvent(new MouseEvent("mousemove", {
          clientX: hr.left + hit.r.x + Math.min(hit.r.w / 2, 5),
          clientY: hr.top + hit.d * ROW + ROW / 2, bubbles: true }));
      }
      st.hover = tip.hidden ? null : tip.textContent;
      writeStatus();
    }
    var sq = /lwtest-search=([^&]*)/.exec(location.hash || "");
    if (sq) { search.value = decodeURIComponent(sq[1]); query = search.value; draw(); }
  }

  function others() {
    var known = ["format", "process", "snapshot", "heap", "mappings", "allocator", "dropped", "modules", "stacks",
      "allocator_stats", "largest_part",
      "waterfall", "process_memory", "cgroup", "page_cache", "leak_candidates", "series", "diff", "threads",
      "growth", "growth_parts", "age_profile", "sampling", "leakwatch"];
    var extra = Object.keys(data).filter(function (k) { return known.indexOf(k) < 0; });
    if (!extra.length) return;
    var s = section("other", "Other data in this report");
    extra.forEach(function (k) {
      s.appendChild(el("details", null, [el("summary", { text: k }), el("pre", { text: JSON.stringify(data[k], null, 1) })]));
    });
  }

  function writeStatus() {
    status.errors = (window.lwErrors || []).slice();
    var e = document.getElementById("lw-status");
    if (e) e.textContent = JSON.stringify(status);
  }

  /* Each section on its own: one that throws is reported, the rest still render. */
  function guarded(name, fn) {
    var start = performance.now();
    try { fn(); status.ms[name] = Math.round(performance.now() - start); } catch (e) {
      (window.lwErrors = window.lwErrors || []).push(name + ": " + (e && e.message ? e.message : String(e)));
      app.appendChild(el("p", { cls: "warn", text: "Could not draw " + name + ": " + (e && e.message ? e.message : e) }));
    }
  }

  try {
    var dataEl = document.getElementById("lw-data");
    data = JSON.parse(dataEl.textContent);
    status.parse_ms = Math.round(performance.now() - t0);
    /* Tests dump the DOM: without the data it is small (the file keeps it). */
    if (/lwtest-/.test(location.hash || "")) dataEl.textContent = "";
  } catch (e) {
    (window.lwErrors = window.lwErrors || []).push("report data: " + e.message);
  }
  if (data && typeof data === "object") {
    (Array.isArray(data.modules) ? data.modules : []).forEach(function (m) {
      if (m && m.path && m.base) moduleBase[m.path] = m.base;
    });
    if (data.format && data.format !== "leakwatch-report/1")
      app.appendChild(el("p", { cls: "warn", text: "This page was made for leakwatch-report/1; the data says " + data.format + "." }));
    guarded("header", header);
    guarded("totals", totals);
    /* Over a series, what changed comes before the kernel's tables. */
    guarded("time chart", timeChart);
    guarded("growth", growth);
    guarded("leak candidates", leakCandidates);
    guarded("memory", memoryTables);
    guarded("ages", ageProfile);
    guarded("flame graph", flameGraph);
    guarded("diff", diff);
    guarded("stacks", topStacks);
    guarded("other data", others);
  } else {
    app.appendChild(el("p", { cls: "warn", text: "This page holds no readable report data." }));
  }
  status.render_ms = Math.round(performance.now() - t0);
  writeStatus();
})();
