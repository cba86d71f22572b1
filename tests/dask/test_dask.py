#!/usr/bin/env python3
"""dask: examples/dask/pathwise_dask.py on a local Dask cluster of two worker
processes over 100,000 generated cases (1% invalid, so error records and
their line numbers are covered), against one `pathwise batch` run:

- the output is byte for byte the single run's;
- a worker killed mid-run loses no case: the task of one partition SIGKILLs
  its own worker process while its `pathwise batch` runs (once, marked by a
  file); Dask reruns the partition on a live worker, the nanny replaces the
  dead one (its pid changes), and the output is still byte for byte equal.

Figures (cases/s of both) are printed; speed is not asserted.
Needs Debian's python3-distributed under the Python given by --python.
"""
import argparse
import filecmp
import importlib.util
import os
import subprocess
import sys
import tempfile
import threading
import time

ARGS = None


def load_example(root):
    path = os.path.join(root, "examples", "dask", "pathwise_dask.py")
    spec = importlib.util.spec_from_file_location("pathwise_dask", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def make_killing_task(run_partition, kill_index, marker):
    """A task that, the first time partition kill_index runs, SIGKILLs its
    worker while pathwise batch is busy on it (and in any case before the
    task can return)."""
    def task(index, *args):
        if index == kill_index:
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                os.write(fd, str(os.getpid()).encode())
                os.close(fd)
            except FileExistsError:
                return run_partition(index, *args)
            threading.Thread(target=lambda: (time.sleep(0.05), os.kill(os.getpid(), 9)), daemon=True).start()
            run_partition(index, *args)
            os.kill(os.getpid(), 9)
        return run_partition(index, *args)
    return task


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--pathwise", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--cases", type=int, default=100000)
    ap.add_argument("--lines", type=int, default=5000, help="lines per partition")
    ap.add_argument("--clean-run", action="store_true", help="also time a run without the kill")
    ARGS = ap.parse_args()
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        sys.exit("FAIL: dask.distributed is missing (apt-get install python3-distributed)")
    ex = load_example(ARGS.root)
    pathwise = os.path.abspath(ARGS.pathwise)
    protocol = os.path.join(ARGS.root, "scripts", "mrc_second_line.lua")
    fails = []
    with tempfile.TemporaryDirectory() as tmp:
        cohort = os.path.join(tmp, "cohort.jsonl")
        with open(cohort, "wb") as f:
            subprocess.run([pathwise, "cohort", "--n", str(ARGS.cases), "--seed", "15", "--invalid", "1"],
                           stdout=f, check=True)
        whole = os.path.join(tmp, "whole.jsonl")
        t0 = time.monotonic()
        with open(whole, "wb") as f:
            subprocess.run([pathwise, "batch", "--quiet", "--no-progress", "--jobs", "2", "--protocol", protocol, cohort],
                           stdout=f, check=True)
        single = time.monotonic() - t0
        with open(whole, "rb") as f:
            n_errors = sum(1 for l in f if l.startswith(b'{"line":'))
        if not n_errors:
            fails.append("the cohort has no invalid line: error records are not exercised")
        print("single pathwise batch --jobs 2: %d cases in %.1f s, %.0f cases/s (%d error records)"
              % (ARGS.cases, single, ARGS.cases / single, n_errors))
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        with Client(cluster) as client:
            if ARGS.clean_run:
                out = os.path.join(tmp, "dask-clean.jsonl")
                r = ex.run_cohort(client, cohort, out, pathwise, protocol, (), ARGS.lines, 1)
                print("dask, 2 workers x pathwise batch --jobs 1: %d cases, %d partitions, %.1f s, %.0f cases/s"
                      % (r["cases"], r["partitions"], r["seconds"], r["cases"] / r["seconds"]))
                if not filecmp.cmp(out, whole, shallow=False):
                    fails.append("clean Dask run differs from one pathwise batch run")
                os.unlink(out)
            pids_before = set(client.run(os.getpid).values())
            marker = os.path.join(tmp, "killed")
            task = make_killing_task(ex.run_partition, 3, marker)
            out = os.path.join(tmp, "dask.jsonl")
            r = ex.run_cohort(client, cohort, out, pathwise, protocol, (), ARGS.lines, 1, task=task)
            print("dask, 2 workers, one killed mid-run: %d cases, %d partitions, %.1f s, %.0f cases/s"
                  % (r["cases"], r["partitions"], r["seconds"], r["cases"] / r["seconds"]))
            client.wait_for_workers(2, timeout=60)
            pids_after = set(client.run(os.getpid).values())
            if not os.path.exists(marker):
                fails.append("the kill never happened")
            else:
                killed = int(open(marker).read())
                if killed not in pids_before or killed in pids_after:
                    fails.append("worker %d was not replaced (before %s, after %s)" % (killed, pids_before, pids_after))
            if r["partitions"] != (ARGS.cases + ARGS.lines - 1) // ARGS.lines:
                fails.append("%d partitions" % r["partitions"])
            if not filecmp.cmp(out, whole, shallow=False):
                fails.append("Dask output (with a killed worker) differs from one pathwise batch run")
        cluster.close()
    for f in fails:
        print("FAIL:", f)
    if fails:
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
