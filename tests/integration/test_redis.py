"""redis-server (Debian's, linked with jemalloc; not written here) under
`leakwatch run`, on a loopback port, loaded by redis-benchmark for a bounded
number of requests while the snapshot signal arrives every 250 ms. No crash,
no hang; a scripted redis-cli session answers exactly as a native server
does; every snapshot (signal ones during the load, the exit one after
SHUTDOWN) is readable with consistent totals, the counts only grow, and
the first, last and exit snapshots reconcile stack by stack."""

import os
import shutil
import signal
import socket
import subprocess
import time
import unittest

import lwtest
from lwtest import Case

REQUESTS = 20000
SERVER = shutil.which("redis-server")
CLI = shutil.which("redis-cli")
BENCH = shutil.which("redis-benchmark")
DUMP_SIGNAL = signal.SIGRTMIN + 7  # leakwatch's default LEAKWATCH_SIGNAL

# Deterministic session: the replies must match a native server's.
SESSION = """FLUSHALL
SET greeting hello
APPEND greeting ", world"
GET greeting
INCRBY counter 41
INCR counter
RPUSH list a b c d e f
LRANGE list 1 -2
LPOP list
HSET h f1 v1 f2 v2 f3 v3
HGETALL h
SADD s x y z x
SCARD s
ZADD z 1 one 2 two 3 three
ZRANGE z 0 -1 WITHSCORES
SET big {big}
STRLEN big
DEL list h s z
DBSIZE
OBJECT ENCODING counter
""".format(big="x" * 100000)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@unittest.skipUnless(SERVER and CLI and BENCH,
                     "redis-server/redis-tools not installed (Debian packages, in scripts/lib.sh)")
class RedisTest(Case):
    def start(self, env, wrap=()):
        """Start a server on a free port; returns (Popen, port, server pid)."""
        port = free_port()
        d = self.tmpdir()
        cmd = [*wrap, SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--daemonize", "no", "--dir", d, "--logfile", "",
               "--loglevel", "warning"]
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        self.addCleanup(self.kill, proc)
        deadline = time.monotonic() + 30
        while True:
            r = subprocess.run([CLI, "-p", str(port), "ping"], capture_output=True,
                               env=lwtest.clean_env(), timeout=10)
            if r.stdout.strip() == b"PONG":
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                self.fail(f"redis-server did not come up (rc {proc.poll()}): "
                          f"{proc.stderr.read() if proc.poll() is not None else ''}")
            time.sleep(0.05)
        info = self.cli(port, "info", "server").decode()
        pid = int(next(l for l in info.splitlines() if l.startswith("process_id:")).split(":")[1])
        return proc, port, pid

    def kill(self, proc):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def cli(self, port, *args, input=None):
        r = lwtest.run([CLI, "-p", str(port), *args], env=lwtest.clean_env(), input=input,
                       check_rc=0, timeout=60)
        return r.stdout

    def stop(self, proc, port):
        self.cli(port, "shutdown", "nosave")
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.fail("hang: redis-server did not exit after SHUTDOWN")
        return proc.returncode, out, err

    def test_under_load_with_signal_snapshots(self):
        native, nport, _ = self.start(lwtest.clean_env())
        native_replies = self.cli(nport, input=SESSION.encode())
        self.assertEqual(self.stop(native, nport)[0], 0)

        out = os.path.join(self.tmpdir(), "snaps")
        proc, port, pid = self.start(lwtest.clean_env(), wrap=(lwtest.TOOL, "run", "--output", out,
                                                                  "--"))
        bench = subprocess.Popen([BENCH, "-p", str(port), "-n", str(REQUESTS), "-c", "8", "-r",
                                  "5000", "-q", "--csv", "-t", "set,get,incr,lpush,lpop,sadd,hset,mset"],
                                 env=lwtest.clean_env(), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, start_new_session=True)
        self.addCleanup(self.kill, bench)
        sent = 0
        deadline = time.monotonic() + 240
        while bench.poll() is None:
            if time.monotonic() > deadline:
                self.fail("hang: redis-benchmark still running after 240 s")
            os.kill(pid, DUMP_SIGNAL)
            sent += 1
            time.sleep(0.25)
        bout, berr = bench.communicate()
        self.assertEqual(bench.returncode, 0, berr)
        rows = [l for l in bout.decode().splitlines() if l.startswith('"') and "rps" not in l]
        self.assertEqual(len(rows), 8, bout)  # one line per test, each with its rate
        for row in rows:
            self.assertGreater(float(row.split(",")[1].strip('"')), 0, row)
        self.assertGreater(sent, 0)

        replies = self.cli(port, input=SESSION.encode())
        self.assertEqual(replies, native_replies, "a command answered differently")
        self.assertIn(b"hello, world", replies)
        rc, sout, serr = self.stop(proc, port)
        self.assertEqual(rc, 0, serr[-2000:])

        files = lwtest.snapshot_files(out)
        self.assertTrue(all(f".{pid}." in os.path.basename(f) for f in files),
                        f"only the server wrote snapshots: {files}")
        # every snapshot readable, its totals consistent (--top 1: the full
        # symbolized report of 2000+ stacks takes a second each)
        reps = sorted((lwtest.report(f, extra=["--top", "1"]) for f in files),
                      key=lambda r: r["snapshot"]["seq"])
        triggers = [r["snapshot"]["trigger"] for r in reps]
        self.assertEqual(triggers[-1], "exit")
        self.assertEqual(triggers.count("exit"), 1)
        nsig = triggers.count("signal")
        self.assertGreaterEqual(nsig, 1, "no snapshot for any of the signals sent during the load")
        self.assertLessEqual(nsig, sent)
        self.assertEqual([r["snapshot"]["seq"] for r in reps], list(range(len(reps))))
        prev = None
        for r in reps:
            self.assertEqual(r["process"]["pid"], pid)
            heap = r["heap"]
            self.assertEqual(heap["inuse_objects"], heap["alloc_objects"] - heap["free_objects"])
            if prev:
                for key in ("alloc_objects", "alloc_bytes", "free_objects"):
                    self.assertGreaterEqual(heap[key], prev["heap"][key], key)
            prev = r
        for i in sorted({0, len(reps) - 2, len(reps) - 1}):
            self.assertReconciles(lwtest.report(files[i]))
        # every request allocates (query buffer, reply, keys): the exit
        # snapshot saw more allocations than requests were made
        self.assertGreater(reps[-1]["heap"]["alloc_objects"], REQUESTS)
        # jemalloc's own mappings are recorded as the allocator's
        self.assertGreater(reps[-1]["allocator"]["mapped_bytes"], 0)
        print(f"redis: {sent} signals sent, {nsig} signal snapshots, "
              f"{reps[-1]['heap']['alloc_objects']} allocations")


if __name__ == "__main__":
    lwtest.main()
