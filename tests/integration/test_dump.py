"""`leakwatch dump PID`: on a busy multi-threaded example and on an idle
single-threaded one (no allocation after the request: the signal handler
writes it), the snapshot appears and is readable; the errors say what is
wrong with the documented exit code. Thread records (THREAD, stacks of kind
thread) are checked on the same runs."""

import os
import signal
import subprocess
import time

import lwsnap
import lwtest
from lwtest import Case


def start(cmd, env):
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    return p


def wait_ready(p, text=b"burst:"):
    line = p.stdout.readline()
    assert line.startswith(text), line


def threads_of(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


class DumpTest(Case):
    def spawn(self, args, out, **extra):
        env = lwtest.preload_env(out, **extra)
        p = start([lwtest.PROGS["burst"], *args], env)

        def stop():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.communicate(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.communicate()
        self.addCleanup(stop)
        wait_ready(p)
        return p

    def dump(self, pid, *extra, rc=0):
        return lwtest.run([lwtest.TOOL, "dump", *extra, str(pid)], check_rc=rc)

    def test_running_example(self):
        out = os.path.join(self.tmpdir(), "snaps")
        p = self.spawn(["--serve", "--threads", "4", "--ids", "20000", "--request-ms", "5"], out)
        time.sleep(0.3)
        res = self.dump(p.pid)
        path = res.stdout.decode().strip()
        self.assertEqual(os.path.dirname(path), out)
        self.assertTrue(path.endswith(".signal.lwsnap") and f".{p.pid}." in path, path)
        rep = lwtest.report(path)
        self.assertEqual(rep["process"]["pid"], p.pid)
        self.assertReconciles(rep)
        heap = [s for s in rep["stacks"] if s["kind"] == "heap"]
        self.assertIn("build_id_map", [lwtest.frame0(s) for s in heap[:3]])
        # 4 workers and the sender, all alive, from two creation stacks
        snap = lwsnap.parse(path)
        self.assertEqual(len(snap["threads"]), 5, snap["threads"])
        kinds = {snap["stacks"][t["stack"]][0] for t in snap["threads"]}
        self.assertEqual(kinds, {4})
        created = sorted(snap["stacks"][s][2] for s in {t["stack"] for t in snap["threads"]})
        self.assertEqual(created, [1, 4])
        for t in snap["threads"]:
            self.assertGreater(t["tid"], 0)
            self.assertEqual(t["stack_size"], 8 << 20, t)  # the default, as configured
            self.assertTrue(os.path.exists(f"/proc/{p.pid}/task/{t['tid']}"), t)
            self.assertGreater(t["resident"], 0, t)
            self.assertLess(t["resident"], t["stack_size"], t)
        # a second dump is a new file
        path2 = self.dump(p.pid, "--timeout", "10").stdout.decode().strip()
        self.assertNotEqual(path, path2)
        self.assertEqual(lwsnap.parse(path2)["seq"], snap["seq"] + 1)

    def test_idle_single_threaded_example(self):
        out = os.path.join(self.tmpdir(), "snaps")
        p = self.spawn(["--idle", "--ids", "1000"], out)
        self.assertEqual(threads_of(p.pid), 1)
        time.sleep(1.3)
        for seq in (0, 1):
            path = self.dump(p.pid).stdout.decode().strip()
            rep = lwtest.report(path)
            self.assertEqual(rep["snapshot"]["seq"], seq)
            self.assertEqual(rep["snapshot"]["trigger"], "signal")
            self.assertFunction(rep, "build_id_map", "heap", 1000 + 2, 1000 * 16 + 8 * 501 + 24)
            # one snapshot is enough for ages: the map was built ~1.3 s ago
            # (clock resolution 0.134 s): every block in the [1 s, 2 s) bucket
            ages = lwsnap.parse(path)["ages"]
            for st in rep["stacks"]:
                if lwtest.frame0(st) == "build_id_map":
                    self.assertEqual(ages[st["id"]], [(10 ** 9, st["inuse_bytes"],
                                                       st["inuse_objects"])], st)
        self.assertEqual(threads_of(p.pid), 1, "dump started no thread in a single-threaded program")

    def test_errors(self):
        res = self.dump(2 ** 22 + 7, rc=1)
        self.assertIn(b"is not running", res.stderr)
        plain = start(["sleep", "30"], lwtest.clean_env())
        self.addCleanup(lambda: (plain.kill(), plain.communicate()))
        res = self.dump(plain.pid, rc=1)
        self.assertIn(b"not running under leakwatch", res.stderr)
        out = os.path.join(self.tmpdir(), "snaps")
        p = self.spawn(["--idle", "--ids", "10"], out, LEAKWATCH_SIGNAL="off")
        res = self.dump(p.pid, rc=1)
        self.assertIn(b"snapshot signals off", res.stderr)
        self.assertEqual(self.dump("x", rc=2).returncode, 2)
        self.assertEqual(lwtest.run([lwtest.TOOL, "dump", "--timeout", "0", "1"]).returncode, 2)

    def test_thread_exits_are_seen(self):
        out = os.path.join(self.tmpdir(), "snaps")
        res = lwtest.leakwatch_run([lwtest.PROGS["burst"], "--thread-exits"], out, check_rc=0)
        # behaviour unchanged: return values, cancellation, TLS destructors
        self.assertEqual(res.stdout,
                         b"burst: joined 7 8 canceled, detached rc 0, key destructor 42\n")
        snap = lwsnap.parse(lwtest.snapshot_files(out)[0])
        self.assertEqual(snap["threads"], [])
        ts = [v for v in snap["stacks"].values() if v[0] == 4]
        # (kind, alloc_bytes, created, free_bytes, exited) per creation stack
        self.assertEqual(sorted(ts), sorted([(4, 8 << 20, 1, 8 << 20, 1)] * 3 +
                                            [(4, 1 << 20, 1, 1 << 20, 1)]))


if __name__ == "__main__":
    lwtest.main()
