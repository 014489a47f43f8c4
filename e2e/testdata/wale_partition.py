#!/usr/bin/env python3
"""Write a data directory as WAL-E 1.x's backup-push did, for walnut's tests.

WAL-E walked the data directory itself and wrote tar partitions with
Python's tarfile module; this script makes the same partitions with the
same module, so the tests restore what WAL-E really produced: a "/" entry
for the data directory, every directory as an entry, pg_wal and the other
transient directories present but empty, the server's configuration files
left out, and each tablespace's files stored under pg_tblspc/<oid>/ (read
through the link) with the link itself recorded only in the spec.

usage:
  wale_partition.py data DATADIR OUTDIR MAXBYTES   -> spec JSON and the size on stdout
  wale_partition.py extra OUTDIR N NAME=FILE...    -> partition N holding those files
"""
import io
import json
import os
import sys
import tarfile

SKIP_TOP_FILES = {"postmaster.pid", "postmaster.opts", "postgresql.conf", "pg_hba.conf",
                  "recovery.conf", "recovery.done", "pg_ident.conf", "promote"}
EMPTY_TOP_DIRS = {"pg_xlog", "pg_log", "pg_replslot", "pg_wal"}
EMPTY_ANY_DIRS = {"pgsql_tmp", "pg_stat_tmp", ".wal-e"}


def walk(datadir):
    """Paths to store, in walk order, and WAL-E's restore spec."""
    datadir = datadir.rstrip("/") + "/"
    spec = {"base_prefix": datadir, "tablespaces": []}
    paths = []
    for root, dirs, files in os.walk(datadir):
        paths.append(root)
        top = os.path.abspath(root) == os.path.abspath(datadir)
        keep_empty = set(EMPTY_ANY_DIRS) | (EMPTY_TOP_DIRS if top else set())
        for d in sorted(dirs):
            if d in keep_empty:
                paths.append(os.path.join(root, d))
        dirs[:] = sorted(d for d in dirs if d not in keep_empty and d != "lost+found")
        for f in sorted(files):
            if not (top and f in SKIP_TOP_FILES):
                paths.append(os.path.join(root, f))
        if os.path.abspath(root) == os.path.abspath(os.path.join(datadir, "pg_tblspc")):
            for oid in list(dirs):
                link = os.path.join(root, oid)
                if not (os.path.islink(link) and os.path.isdir(link)):
                    continue
                loc = os.readlink(link).rstrip("/") + "/"
                spec["tablespaces"].append(oid)
                spec[oid] = {"loc": loc, "link": link[len(datadir):]}
                for troot, tdirs, tfiles in os.walk(link):
                    tdirs.sort()
                    if "pgsql_tmp" in tdirs:
                        tdirs.remove("pgsql_tmp")
                        paths.append(os.path.join(troot, "pgsql_tmp"))
                    for f in sorted(tfiles):
                        paths.append(os.path.join(troot, f))
                    if not tfiles and troot != link:
                        paths.append(troot)
    return datadir, spec, paths


def write_parts(datadir, paths, outdir, maxbytes, first=0):
    bogus = tarfile.TarFile(os.devnull, "w", dereference=False)
    parts, cur, size, total = [], [], 0, 0
    for p in paths:
        try:
            ti = bogus.gettarinfo(p, arcname=p[len(datadir):])
        except FileNotFoundError:
            continue  # removed while walked, as WAL-E skipped it
        if cur and size + ti.size >= maxbytes:
            parts.append(cur)
            cur, size = [], 0
        cur.append((p, ti))
        size += ti.size
        total += ti.size
    if cur:
        parts.append(cur)
    for n, members in enumerate(parts, start=first):
        with tarfile.open(os.path.join(outdir, "part_%08d.tar" % n), "w") as tar:
            for p, ti in members:
                if ti.isfile():
                    # Stored at the size seen when walked: cut or padded with
                    # zeros, as WAL-E's padded reader did for files in flux.
                    with open(p, "rb") as f:
                        data = f.read(ti.size)
                    data += b"\0" * (ti.size - len(data))
                    tar.addfile(ti, io.BytesIO(data))
                else:
                    tar.addfile(ti)
    return total


def main():
    if sys.argv[1] == "data":
        datadir, outdir, maxbytes = sys.argv[2], sys.argv[3], int(sys.argv[4])
        base, spec, paths = walk(datadir)
        total = write_parts(base, paths, outdir, maxbytes)
        json.dump({"spec": spec, "expanded_size_bytes": total}, sys.stdout)
    elif sys.argv[1] == "extra":
        outdir, n = sys.argv[2], int(sys.argv[3])
        with tarfile.open(os.path.join(outdir, "part_%08d.tar" % n), "w") as tar:
            for arg in sys.argv[4:]:
                name, path = arg.split("=", 1)
                tar.add(path, arcname=name)
    else:
        sys.exit("usage: wale_partition.py data|extra ...")


if __name__ == "__main__":
    main()
