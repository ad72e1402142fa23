"""sqlite3 (Debian's command-line shell, not written here) runs a scripted
workload under a bare LD_PRELOAD: 60 000 rows inserted through a recursive
CTE, an index, JSON functions, aggregates, updates, deletes, WAL mode, an
integrity check and VACUUM. Same stdout, stderr and exit status as a native
run, the database it leaves has the same content, and the snapshot
reconciles to the byte with sqlite's allocations in it."""

import os
import shutil
import unittest

import lwtest
from lwtest import Case

ROWS = 60000

WORKLOAD = f"""
PRAGMA journal_mode=WAL;
CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, price REAL, tags TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < {ROWS})
INSERT INTO item SELECT i, 'item' || i, i % 97, (i * 7919 % 10007) / 100.0,
                        json_array(i % 3, i % 5, 'x' || (i % 11)) FROM n;
CREATE INDEX item_grp ON item(grp, price);
SELECT grp, count(*), round(sum(price), 2), max(name) FROM item GROUP BY grp ORDER BY grp LIMIT 5;
SELECT count(*) FROM item WHERE json_extract(tags, '$[2]') = 'x7';
UPDATE item SET price = price * 1.1 WHERE grp BETWEEN 10 AND 40;
DELETE FROM item WHERE id % 3 = 0;
SELECT count(*), round(sum(price), 2) FROM item;
SELECT group_concat(name, ',') FROM (SELECT name FROM item ORDER BY price DESC, id LIMIT 20);
CREATE TABLE word(w TEXT);
INSERT INTO word SELECT substr(name, 1, 6) FROM item;
SELECT w, count(*) FROM word GROUP BY w ORDER BY count(*) DESC, w LIMIT 3;
SELECT * FROM no_such_table;
PRAGMA integrity_check;
VACUUM;
SELECT count(*), sum(length(name)), total(price) FROM item;
"""

SQLITE = shutil.which("sqlite3")


@unittest.skipUnless(SQLITE, "sqlite3 is not installed (Debian package sqlite3, in scripts/lib.sh)")
class SqliteTest(Case):
    def run_workload(self, env):
        d = self.tmpdir()
        db = os.path.join(d, "w.db")
        res = lwtest.run([SQLITE, db], env=env, input=WORKLOAD.encode(), timeout=240)
        return res, db

    def dump(self, db):
        """The database's content, read by a native sqlite3."""
        return lwtest.run([SQLITE, db, ".dump"], check_rc=0).stdout

    def test_workload(self):
        native, native_db = self.run_workload(lwtest.clean_env())
        out = os.path.join(self.tmpdir(), "snaps")
        pre, pre_db = self.run_workload(lwtest.preload_env(out))

        # the shell reports the bad table on stderr and exits 1 (not -bail)
        self.assertEqual(native.returncode, 1, native.stderr)
        self.assertIn(b"no such table: no_such_table", native.stderr)
        self.assertEqual(pre.returncode, native.returncode)
        self.assertEqual(pre.stdout, native.stdout)
        self.assertEqual(pre.stderr, native.stderr)
        lines = native.stdout.decode().splitlines()
        self.assertEqual(lines[0], "wal")
        self.assertIn("ok", lines)
        self.assertTrue(lines[-1].startswith(f"{ROWS - ROWS // 3}|"), lines[-1])

        native_dump = self.dump(native_db)
        self.assertGreater(native_dump.count(b"INSERT INTO item"), ROWS // 2)
        self.assertEqual(self.dump(pre_db), native_dump, "the databases differ")

        by_pid = lwtest.reports_by_pid(out)
        self.assertEqual(list(by_pid), [pre.pid], "one process, one snapshot")
        (rep,) = by_pid[pre.pid]
        self.assertReconciles(rep)
        self.assertEqual(rep["snapshot"]["trigger"], "exit")
        # sqlite allocates its page cache and every statement through malloc:
        # tens of thousands of calls, megabytes in total
        heap = rep["heap"]
        self.assertGreater(heap["alloc_objects"], 20000, heap)
        self.assertGreater(heap["alloc_bytes"], 4 << 20, heap)
        libsqlite = [s for s in rep["stacks"]
                     if any("libsqlite3" in (f.get("module") or "") for f in s["frames"])]
        self.assertTrue(libsqlite, "no stack through libsqlite3")
        self.assertGreater(sum(s["alloc_objects"] for s in libsqlite), heap["alloc_objects"] // 2)


if __name__ == "__main__":
    lwtest.main()
