"""A tiny reader of the .lwsnap records the trigger side writes (PROCESS,
STACK kinds, THREAD, AGE, TRIGGER), for tests that check them before the
report shows them. Layouts from include/lw_format.h; checks lengths."""

import os
import struct

TAG_PROCESS, TAG_STACK, TAG_THREAD, TAG_AGE, TAG_TRIGGER, TAG_END = 1, 4, 9, 10, 11, 0x454E44
TRIGGERS = {1: "exit", 2: "signal", 3: "interval", 4: "threshold", 5: "heap-threshold"}


def records(path):
    """[(tag, payload bytes)] of a complete snapshot; raises on a bad file."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"LWSNAP\r\n", f"{path}: not a snapshot"
    major, minor, hsize = struct.unpack_from("<HHI", data, 8)
    assert major == 1, f"{path}: major {major}"
    off, out = hsize, []
    while off + 8 <= len(data):
        tag, ln = struct.unpack_from("<II", data, off)
        assert off + 8 + ln <= len(data), f"{path}: record at {off} runs past the end"
        out.append((tag, data[off + 8:off + 8 + ln]))
        off += 8 + ((ln + 7) & ~7)
        if tag == TAG_END:
            break
    assert out and out[-1][0] == TAG_END, f"{path}: no END record (truncated)"
    return out


def parse(path):
    """dict: trigger, seq, pid, stacks {id: (kind, alloc_b, alloc_o, free_b, free_o)},
    threads [dict], ages {stack: [(min_age_ns, bytes, objects)]}, trigger_rec dict or None."""
    res = {"stacks": {}, "threads": [], "ages": {}, "trigger_rec": None}
    for tag, p in records(path):
        if tag == TAG_PROCESS:
            pid, ppid, t, st, mono, seq, trig = struct.unpack_from("<IIQQQII", p, 0)
            res.update(pid=pid, seq=seq, trigger=TRIGGERS.get(trig, "unknown"), mono_ns=mono,
                       elapsed_ns=t - st)
        elif tag == TAG_STACK:
            sid, kind, flags, nframes, ab, ao, fb, fo = struct.unpack_from("<IBBHQQQQ", p, 0)
            assert len(p) == 40 + 8 * nframes
            res["stacks"][sid] = (kind, ab, ao, fb, fo)
        elif tag == TAG_THREAD:
            assert len(p) == 40, len(p)
            stack, tid, start, size, resident, born = struct.unpack_from("<IIQQQQ", p, 0)
            res["threads"].append(dict(stack=stack, tid=tid, stack_start=start, stack_size=size,
                                       resident=resident, start_mono_ns=born))
        elif tag == TAG_AGE:
            stack, nb, _ = struct.unpack_from("<IIQ", p, 0)
            assert len(p) == 16 + 24 * nb, len(p)
            res["ages"][stack] = [struct.unpack_from("<QQQ", p, 16 + 24 * i) for i in range(nb)]
        elif tag == TAG_TRIGGER:
            assert len(p) == 48, len(p)
            trig, source, line, seen, limit = struct.unpack_from("<IIQQQ", p, 0)
            res["trigger_rec"] = dict(trigger=TRIGGERS.get(trig), source=source, threshold=line,
                                      observed=seen, limit=limit)
    return res


def memory_limit():
    """The memory cgroup limit that applies to this process (the tightest
    from its cgroup up), in bytes, or 0: the same rule as lib/cgroup.c, for
    tests that watch RSS (which leakwatch does only without a limit)."""
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
        with open("/proc/self/mountinfo") as f:
            mounts = f.read().splitlines()
    except OSError:
        return 0
    for v2 in (False, True):
        rel = None
        for line in lines:
            num, ctrls, path = line.split(":", 2)
            if (v2 and num == "0" and ctrls == "") or (not v2 and "memory" in ctrls.split(",")):
                rel = path
        if rel is None:
            continue
        for m in mounts:
            pre, _, post = m.partition(" - ")
            f, g = pre.split(), post.split()
            if not g or (g[0] != ("cgroup2" if v2 else "cgroup")) or \
                    (not v2 and "memory" not in g[2].split(",")):
                continue
            root, mnt = f[3], f[4]
            sub = rel[len(root):] if root != "/" and rel.startswith(root) else rel
            d = mnt + (sub if sub != "/" else "")
            usage = "memory.current" if v2 else "memory.usage_in_bytes"
            if not os.path.exists(os.path.join(d, usage)):
                break
            lim = 0
            while d.startswith(mnt):
                try:
                    with open(os.path.join(d, "memory.max" if v2 else "memory.limit_in_bytes")) as lf:
                        t = lf.read().strip()
                    val = 0 if t == "max" else int(t)
                    if 0 < val < (1 << 60) and (not lim or val < lim):
                        lim = val
                except (OSError, ValueError):
                    pass
                if d == mnt:
                    break
                d = os.path.dirname(d)
            return lim
    return 0
