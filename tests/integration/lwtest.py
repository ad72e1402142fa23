"""Shared helpers for leakwatch's integration tests (stdlib only).

Each test script is started by meson as
    python3 test_x.py --tool PATH --lib PATH [--prog NAME PATH]... [unittest args]
runs programs under the real preload (through `leakwatch run`, or a bare
LD_PRELOAD), reads `leakwatch report --format json`, and asserts exact
numbers. Every child gets a timeout: a hang is a failure, never a wait.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import unittest

TOOL = None  # path of tools/leakwatch
LIB = None  # path of libleakwatch.so
PROGS = {}  # example name -> path
PAGE = os.sysconf("SC_PAGESIZE")
TIMEOUT = 120  # seconds for any one child; generous, but finite


def main():
    """Parse our arguments, then hand the rest to unittest."""
    global TOOL, LIB
    parser = argparse.ArgumentParser()
    parser.add_argument("--tool", required=True)
    parser.add_argument("--lib", required=True)
    parser.add_argument("--prog", nargs=2, action="append", default=[], metavar=("NAME", "PATH"))
    args, rest = parser.parse_known_args()
    TOOL = os.path.abspath(args.tool)
    LIB = os.path.abspath(args.lib)
    for name, path in args.prog:
        PROGS[name] = os.path.abspath(path)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


def clean_env(**extra):
    """The environment without any leakwatch or preload setting, plus extra."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("LEAKWATCH_") and k != "LD_PRELOAD"}
    env["LC_ALL"] = "C"
    env.update(extra)
    return env


def run(cmd, timeout=TIMEOUT, env=None, cwd=None, input=None, check_rc=None):
    """Run cmd in its own session; on timeout kill the whole group and raise
    AssertionError (a hang fails the test). Returns CompletedProcess (bytes)."""
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env if env is not None else clean_env(), cwd=cwd,
                            start_new_session=True)
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AssertionError(f"hang: {cmd!r} still running after {timeout}s")
    res = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    res.pid = proc.pid
    if check_rc is not None and res.returncode != check_rc:
        raise AssertionError(f"{cmd!r} exited {res.returncode}, expected {check_rc}\n"
                             f"stdout: {out[-2000:]!r}\nstderr: {err[-2000:]!r}")
    return res


def leakwatch_run(cmd, outdir, run_args=(), **kw):
    """`leakwatch run --output OUTDIR [run_args] -- cmd`."""
    return run([TOOL, "run", "--output", outdir, *run_args, "--", *cmd], **kw)


def preload_env(outdir=None, **extra):
    """Environment for a bare LD_PRELOAD run (no `leakwatch run`)."""
    env = clean_env(LD_PRELOAD=LIB, **extra)
    if outdir is not None:
        env["LEAKWATCH_OUTPUT"] = outdir
    return env


def report(path, pid=None, extra=()):
    """`leakwatch report --format json [--pid PID] PATH`, parsed."""
    cmd = [TOOL, "report", "--format", "json", *extra]
    if pid is not None:
        cmd += ["--pid", str(pid)]
    res = run(cmd + [path], env=clean_env(), check_rc=0)
    try:
        return json.loads(res.stdout)
    except ValueError as e:
        raise AssertionError(f"report of {path} is not JSON ({e}): {res.stdout[:500]!r}")


def snapshot_files(outdir):
    """Finished snapshots in outdir (temporaries start with a dot)."""
    return sorted(os.path.join(outdir, f) for f in os.listdir(outdir)
                  if f.endswith(".lwsnap") and not f.startswith("."))


def reports_by_pid(outdir):
    """Report every snapshot file in outdir: {pid: [report, ...]}."""
    out = {}
    for f in snapshot_files(outdir):
        r = report(f)
        out.setdefault(r["process"]["pid"], []).append(r)
    return out


def frame0(stack):
    frames = stack.get("frames") or []
    return frames[0].get("function") if frames else None


def first_frame_outside(stack, module_prefix):
    """Function of the first frame whose module's basename does not start
    with module_prefix (e.g. skip libstdc++'s operator new)."""
    for fr in stack.get("frames") or []:
        if not os.path.basename(fr.get("module") or "").startswith(module_prefix):
            return fr.get("function")
    return None


class Agg:
    """Sums over the stacks attributed to one function."""

    def __init__(self):
        self.inuse_bytes = self.inuse_objects = 0
        self.alloc_bytes = self.alloc_objects = 0
        self.stacks = 0
        self.kinds = set()

    def add(self, s):
        self.inuse_bytes += s["inuse_bytes"]
        self.inuse_objects += s["inuse_objects"]
        self.alloc_bytes += s["alloc_bytes"]
        self.alloc_objects += s["alloc_objects"]
        self.stacks += 1
        self.kinds.add(s["kind"])

    def __repr__(self):
        return (f"<{self.stacks} stacks {sorted(self.kinds)}: inuse {self.inuse_objects} obj "
                f"{self.inuse_bytes} B, alloc {self.alloc_objects} obj {self.alloc_bytes} B>")


def by_function(rep, name, key=frame0):
    """Aggregate of every stack whose key(stack) == name."""
    agg = Agg()
    for s in rep["stacks"]:
        if key(s) == name:
            agg.add(s)
    return agg


def stacks_of_kind(rep, kind):
    return [s for s in rep["stacks"] if s["kind"] == kind]


class Case(unittest.TestCase):
    """TestCase with leakwatch-specific assertions."""

    maxDiff = None

    def tmpdir(self):
        d = tempfile.mkdtemp(prefix="lw-integ-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", d]))
        return d

    def assertReconciles(self, rep):
        """Heap totals equal the sums over heap stacks, to the byte and the
        object; in use == allocated - freed; stacks sorted by live bytes."""
        heap = rep["heap"]
        hs = stacks_of_kind(rep, "heap")
        where = f"pid {rep['process']['pid']} seq {rep['snapshot']['seq']}"
        self.assertEqual(heap["inuse_bytes"], sum(s["inuse_bytes"] for s in hs), where)
        self.assertEqual(heap["inuse_objects"], sum(s["inuse_objects"] for s in hs), where)
        self.assertEqual(heap["alloc_bytes"], sum(s["alloc_bytes"] for s in hs), where)
        self.assertEqual(heap["alloc_objects"], sum(s["alloc_objects"] for s in hs), where)
        self.assertEqual(heap["inuse_objects"], heap["alloc_objects"] - heap["free_objects"], where)
        for s in rep["stacks"]:
            self.assertLessEqual(s["inuse_objects"], s["alloc_objects"], where)
            self.assertLessEqual(s["inuse_bytes"], s["alloc_bytes"], where)
            # A stack is empty only when unwinding was skipped or failed
            # (an allocation made while the process forked), and then the
            # snapshot counts it.
            if not s["frames"]:
                self.assertGreater(rep["dropped"]["unwind_failures"], 0,
                                   f"{where}: stack {s['id']} has no frames, none counted")
        live = [s["inuse_bytes"] for s in rep["stacks"]]
        self.assertEqual(live, sorted(live, reverse=True), f"{where}: stacks not sorted by inuse_bytes")
        # Mapped totals are sums over the stacks of their kind: "mappings"
        # for the program's own (mmap), "allocator" for the allocator's.
        for section, kind in (("mappings", "mmap"), ("allocator", "allocator")):
            m = rep[section]
            ms = stacks_of_kind(rep, kind)
            self.assertEqual(m["mapped_bytes"], sum(s["inuse_bytes"] for s in ms), f"{where} {section}")
            self.assertLessEqual(m["released_resident_bytes"], m["madv_free_bytes"], f"{where} {section}")
            self.assertLessEqual(m["madv_free_bytes"] + m["madv_dontneed_bytes"], m["mapped_bytes"],
                                 f"{where} {section}")

    def assertFunction(self, rep, name, kind, inuse_objects, inuse_bytes, alloc_objects=None,
                       alloc_bytes=None, key=frame0):
        agg = by_function(rep, name, key)
        self.assertGreater(agg.stacks, 0, f"no stack with frame 0 in {name}; frame 0 functions: "
                           f"{sorted({str(key(s)) for s in rep['stacks']})}")
        self.assertEqual(agg.kinds, {kind}, f"{name}: {agg}")
        got = (agg.inuse_objects, agg.inuse_bytes)
        self.assertEqual(got, (inuse_objects, inuse_bytes), f"{name} (objects, bytes) in use: {agg}")
        if alloc_objects is not None:
            self.assertEqual(agg.alloc_objects, alloc_objects, f"{name} allocations: {agg}")
        if alloc_bytes is not None:
            self.assertEqual(agg.alloc_bytes, alloc_bytes, f"{name} allocated bytes: {agg}")
        return agg
