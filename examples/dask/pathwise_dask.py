#!/usr/bin/env python3
"""pathwise_dask.py: run `pathwise batch` over a cohort on a Dask cluster.

The cohort (JSON Lines, one facts object per line) is cut into partitions
of whole lines; each partition is one Dask task that runs `pathwise batch`
on its lines on whichever worker Dask picks, and writes its part of the
output atomically (write, fsync, rename). The parts are then concatenated
in input order, so the output is byte for byte what one `pathwise batch`
over the whole cohort writes: each result line sits where its input line
was, and error records carry the line number in the whole cohort.

A worker that dies mid-task loses nothing: Dask runs the task again on
another worker (distributed.scheduler.allowed-failures, default 3), the
partition's output is a pure function of its lines, and a part file
appears only once complete.

What each worker needs: the `pathwise` binary (the Debian package, or the
same path on every host: --pathwise) and read access to the cohort and
write access to the output directory (a shared file system; on one host,
any directory). The protocol and plugins are shipped with the job: their
text travels inside each task and is written to the worker's temporary
directory, so workers need no copy of them.

    python3 pathwise_dask.py cohort.jsonl results.jsonl               # a local cluster, one worker per core
    python3 pathwise_dask.py --scheduler tcp://head:8786 \\
        --protocol site.lua --plugin local_rule.lua cohort.jsonl results.jsonl

Python 3 and Dask distributed from Debian (python3-distributed).
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

_ERROR_LINE = re.compile(rb'^\{"line":([0-9]+),', re.M)


def partition_cohort(path, lines_per_partition):
    """One pass over the cohort: [(start byte, end byte, lines before it)].

    Cuts fall only after a newline. `pathwise batch` numbers error records
    by input line (blank lines included), so each partition records how many
    lines precede it."""
    parts, start, line, count = [], 0, 0, 0
    with open(path, "rb") as f:
        pos = 0
        for raw in f:
            pos += len(raw)
            count += 1
            if count == lines_per_partition:
                parts.append((start, pos, line))
                start, line, count = pos, line + count, 0
        if count:
            parts.append((start, pos, line))
    return parts


def _die_with_parent():
    """Linux: the batch process gets SIGKILL when its worker dies."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def run_partition(index, cohort, start, end, first_line, part_dir, shipped, pathwise, jobs):
    """The Dask task: `pathwise batch` over bytes [start, end) of the cohort.

    shipped: {"protocol": (name, text) or None, "plugins": [(name, text)...]}.
    Returns (index, number of output lines, part file path)."""
    work = tempfile.mkdtemp(prefix="pathwise-dask-")
    try:
        argv = [pathwise, "batch", "--quiet", "--no-progress", "--jobs", str(jobs)]
        files = ([("--protocol", shipped["protocol"])] if shipped.get("protocol") else []) + \
            [("--plugin", p) for p in shipped.get("plugins", [])]
        for i, (opt, (name, text)) in enumerate(files):
            path = os.path.join(work, "%d-%s" % (i, os.path.basename(name)))
            with open(path, "wb") as f:
                f.write(text)
            argv += [opt, path]
        argv.append("-")
        with open(cohort, "rb") as f:
            f.seek(start)
            data = f.read(end - start)
        out = subprocess.run(argv, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             preexec_fn=_die_with_parent, check=False)
        if out.returncode != 0:
            raise RuntimeError("pathwise batch exit %d on partition %d: %s"
                               % (out.returncode, index, out.stderr.decode(errors="replace")[-2000:]))
        body = out.stdout
        if first_line:
            # error records: the line number in the whole cohort (a result
            # line starts with {"schema_version" or {"engine", never {"line")
            body = _ERROR_LINE.sub(lambda m: b'{"line":%d,' % (int(m.group(1)) + first_line), body)
        nlines = body.count(b"\n")
        final = os.path.join(part_dir, "part-%06d" % index)
        tmp = "%s.tmp-%d-%s" % (final, os.getpid(), os.urandom(4).hex())
        with open(tmp, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        return index, nlines, final
    finally:
        shutil.rmtree(work, ignore_errors=True)


def read_shipped(protocol, plugins):
    def load(p):
        with open(p, "rb") as f:
            return (p, f.read())
    return {"protocol": load(protocol) if protocol else None, "plugins": [load(p) for p in plugins]}


def run_cohort(client, cohort, out, pathwise="pathwise", protocol=None, plugins=(),
               lines_per_partition=5000, jobs=1, task=run_partition):
    """Run the cohort on the cluster behind `client`; write `out` in input
    order. Returns a dict of figures (cases, partitions, seconds)."""
    t0 = time.monotonic()
    cohort = os.path.abspath(cohort)
    parts = partition_cohort(cohort, lines_per_partition)
    part_dir = out + ".parts"
    os.makedirs(part_dir, exist_ok=True)
    shipped = read_shipped(protocol, list(plugins))
    run_id = os.urandom(4).hex()
    futures = [client.submit(task, i, cohort, s, e, first, os.path.abspath(part_dir), shipped, pathwise, jobs,
                             key="pathwise-part-%06d-%s" % (i, run_id), pure=False)
               for i, (s, e, first) in enumerate(parts)]
    results = client.gather(futures)
    cases = 0
    tmp = out + ".tmp"
    with open(tmp, "wb") as dst:
        for index, n, path in sorted(results):
            with open(path, "rb") as src:
                shutil.copyfileobj(src, dst, 1 << 20)
            cases += n
        dst.flush()
        os.fsync(dst.fileno())
    os.replace(tmp, out)
    shutil.rmtree(part_dir, ignore_errors=True)
    return {"cases": cases, "partitions": len(parts), "seconds": time.monotonic() - t0}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cohort")
    ap.add_argument("out")
    ap.add_argument("--scheduler", help="address of a running scheduler (default: a local cluster)")
    ap.add_argument("--workers", type=int, default=os.cpu_count(), help="local cluster: worker processes")
    ap.add_argument("--pathwise", default=shutil.which("pathwise") or "pathwise")
    ap.add_argument("--protocol", help="protocol file, shipped with the job (default: the installed one)")
    ap.add_argument("--plugin", action="append", default=[], help="plugin file, shipped with the job")
    ap.add_argument("--lines", type=int, default=5000, help="lines per partition (default 5000)")
    ap.add_argument("--jobs", type=int, default=1, help="threads of each pathwise batch (default 1)")
    a = ap.parse_args()
    from dask.distributed import Client, LocalCluster
    if a.scheduler:
        client = Client(a.scheduler)
    else:
        client = Client(LocalCluster(n_workers=a.workers, threads_per_worker=1, processes=True))
    with client:
        r = run_cohort(client, a.cohort, a.out, a.pathwise, a.protocol, a.plugin, a.lines, a.jobs)
    print("pathwise_dask: %d cases in %d partitions, %.1f s (%.0f cases/s)"
          % (r["cases"], r["partitions"], r["seconds"], r["cases"] / max(r["seconds"], 1e-9)), file=sys.stderr)


if __name__ == "__main__":
    main()
