"""Real programs we did not write, under a bare LD_PRELOAD of the library:
python3, perl, git, cc and sort give the same stdout, stderr, exit status
(and object file) as a native run, finish in time, and every snapshot they
leave (exec'd children included) reconciles."""

import os
import random

import lwtest
from lwtest import Case

PY_WORKLOAD = r"""
import hashlib, json, re
data = [{"id": i, "name": "item%d" % i, "tags": [str(j) for j in range(i % 7)]} for i in range(20000)]
s = json.dumps(data, sort_keys=True)
back = json.loads(s)
hits = re.findall(r'"item(\d*7)"', s)
assert back == data
print(len(s), len(back), len(hits), hashlib.sha256(s.encode()).hexdigest())
"""

PERL_WORKLOAD = r"""
my %h;
for my $i (1..50000) { $h{"k$i"} = [map { $_ * $i } 1..5]; }
my @k = sort keys %h;
my $s = join(",", map { $h{$_}[2] } @k[0..999]);
print scalar(@k), " ", length($s), " ", ($s =~ tr/7//), "\n";
warn "perl done\n";
exit 3;
"""

GIT_SCRIPT = r"""
set -e
git init -q -b main .
printf 'hello\n' > a.txt
git add a.txt
git commit -q -m first
printf 'more\n' >> a.txt
echo new > b.txt
git commit -q -am second
git log --format='%H %an %s'
git status
git status --porcelain
"""

C_SOURCE = r"""
#include <stdio.h>
static int unused_helper(void) { return 1; }
int main(void)
{
    int unused_variable;
    printf("%d\n", 42);
    return 0;
}
"""

GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "A U Thor", "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_AUTHOR_DATE": "2024-01-02T03:04:05Z",
    "GIT_COMMITTER_NAME": "C O Mitter", "GIT_COMMITTER_EMAIL": "committer@example.com",
    "GIT_COMMITTER_DATE": "2024-01-02T03:04:05Z",
}


class RealProgramsTest(Case):
    def compare(self, cmd, cwd_native=None, cwd_preload=None, input=None, root_snapshot=True,
                **extra):
        """Run cmd natively and under the preload; assert the same results.
        root_snapshot: the started program itself must leave a snapshot
        (not so for dash, which ends with _exit). Returns ({pid: [reports]},
        pid of the preloaded run, the native result)."""
        native = lwtest.run(cmd, env=lwtest.clean_env(**extra), cwd=cwd_native, input=input)
        out = os.path.join(self.tmpdir(), "snaps")
        pre = lwtest.run(cmd, env=lwtest.preload_env(out, **extra), cwd=cwd_preload, input=input)
        self.assertEqual(pre.returncode, native.returncode, pre.stderr[-2000:])
        self.assertEqual(pre.stdout, native.stdout)
        self.assertEqual(pre.stderr, native.stderr)
        by_pid = lwtest.reports_by_pid(out)
        self.assertTrue(by_pid, "no snapshot at all: was the library preloaded?")
        for reps in by_pid.values():
            for rep in reps:
                self.assertReconciles(rep)
                self.assertGreater(rep["heap"]["alloc_objects"], 0, "nothing tracked")
        if root_snapshot:
            self.assertIn(pre.pid, by_pid, "the program itself wrote a snapshot")
        return by_pid, pre.pid, native

    def exes(self, by_pid):
        return sorted(os.path.basename(reps[0]["process"]["exe"]) for reps in by_pid.values())

    def test_python(self):
        by_pid, pid, native = self.compare(["python3", "-c", PY_WORKLOAD])
        self.assertRegex(native.stdout.decode(), r"^\d+ 20000 \d+ [0-9a-f]{64}\n$")
        # the JSON text alone (first number printed) went through malloc
        json_len = int(native.stdout.split()[0])
        self.assertGreater(json_len, 1000000)
        heap = by_pid[pid][-1]["heap"]
        self.assertGreater(heap["alloc_bytes"], json_len)
        self.assertGreater(heap["alloc_objects"], 5000)

    def test_perl(self):
        by_pid, pid, native = self.compare(["perl", "-e", PERL_WORKLOAD])
        self.assertEqual(native.returncode, 3)
        self.assertEqual(native.stderr, b"perl done\n")
        self.assertGreater(by_pid[pid][0]["heap"]["alloc_objects"], 50000)

    def test_git(self):
        home, a, b = self.tmpdir(), self.tmpdir(), self.tmpdir()
        by_pid, pid, native = self.compare(["sh", "-c", GIT_SCRIPT], cwd_native=a, cwd_preload=b,
                                           root_snapshot=False, HOME=home, **GIT_ENV)
        self.assertEqual(native.returncode, 0, native.stderr)
        self.assertIn(b"?? b.txt\n", native.stdout)
        self.assertEqual(sorted(os.listdir(a)), sorted(os.listdir(b)))
        # every git command was exec'd by sh and traced in its own process
        self.assertGreaterEqual(self.exes(by_pid).count("git"), 7, self.exes(by_pid))

    def test_cc(self):
        a, b = self.tmpdir(), self.tmpdir()
        for d in (a, b):
            with open(os.path.join(d, "t.c"), "w") as f:
                f.write(C_SOURCE)
        cmd = ["cc", "-Wall", "-O2", "-c", "t.c", "-o", "t.o"]
        by_pid, pid, native = self.compare(cmd, cwd_native=a, cwd_preload=b)
        self.assertEqual(native.returncode, 0)
        self.assertIn(b"unused_variable", native.stderr)
        with open(os.path.join(a, "t.o"), "rb") as fa, open(os.path.join(b, "t.o"), "rb") as fb:
            self.assertEqual(fa.read(), fb.read(), "object files differ")
        # the driver exec'd the compiler proper and the assembler: traced too
        exes = self.exes(by_pid)
        self.assertIn("cc1", exes)
        self.assertTrue([e for e in exes if e == "as" or e.endswith("-as")], exes)

    def test_sort(self):
        d = self.tmpdir()
        rng = random.Random(42)
        words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
        path = os.path.join(d, "input.csv")
        with open(path, "w") as f:
            for i in range(300000):
                f.write(f"{rng.randrange(10**6)},{rng.choice(words)}{rng.randrange(100)}\n")
        tmp = self.tmpdir()
        # -S 2M forces temporary files and merges; several threads sort
        by_pid, pid, native = self.compare(["sort", "-S", "2M", "-t,", "-k2,2", "-k1,1n", path],
                                           TMPDIR=tmp)
        self.assertEqual(native.returncode, 0)
        self.assertEqual(native.stdout.count(b"\n"), 300000)
        self.assertEqual(os.listdir(tmp), [])


if __name__ == "__main__":
    lwtest.main()
