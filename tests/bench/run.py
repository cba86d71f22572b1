#!/usr/bin/env python3
"""The pathwise benchmark, in one command (see tests/bench/README.md):

    cmake --build build --target bench
    # the same as: python3 tests/bench/run.py --build build

In-process (tests/bench/pw_bench, pinned to one CPU): the full path for
the index case and for a mixed set, latency percentiles, evaluations per
second and where the time goes. Over the Unix socket (tests/bench/pw_load):
`pathwise serve` and, as the ceiling in the same run, tests/bench/pw_echo
(same framing, same reply size) at (1 connection, 1 in flight), (1, 64
pipelined), (8, 1) and (8 x 16); decision-log modes; 1 vs 2 workers; peak
RSS after 1,000,000 requests; cold start; reload latency. Every figure is
the median of several repetitions; targets are checked as ratios measured
in the same run. Prints a table and writes build/bench/results.json
(machine, commit, settings, every figure). Standard library only."""
import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

# the round-1 commit (issue 16 compares with it in the same run)
BASELINE = "c2965a9"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def log(msg):
    print(msg, flush=True)


def sh(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


# ---------------------------------------------------------------- machine

def machine():
    model = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = sh(["git", "-C", ROOT, "rev-parse", "--short=12", "HEAD"]).stdout.strip() or "unknown"
    if sh(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"]).stdout.strip():
        commit += "+dirty"
    load = os.getloadavg()
    return {"nproc": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "python": platform.python_version(), "commit": commit,
            "loadavg_at_start": [round(x, 2) for x in load],
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


# ---------------------------------------------------------------- socket helpers

def rpc(path, method, params=None, rid=1, timeout=30):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    req = {"jsonrpc": "2.0", "id": rid, "method": method}
    if params is not None:
        req["params"] = params
    s.sendall((json.dumps(req) + "\n").encode())
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        buf += chunk
    s.close()
    return buf


def wait_ready(path, proc, timeout=20.0):
    """Seconds until `health` answers (None if the process died)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            return None
        try:
            if b'"result"' in rpc(path, "health", timeout=2):
                return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.002)
    return None


class Proc:
    """A server process (pathwise serve or pw_echo) on a socket in tmp."""

    def __init__(self, argv, sock, cpus=None):
        self.sock = sock
        if cpus is not None:
            argv = ["taskset", "-c", cpus] + argv
        self.t0 = time.monotonic()
        self.p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.ready = wait_ready(sock, self.p)
        if self.ready is None:
            err = self.p.stderr.read().decode(errors="replace") if self.p.poll() is not None else "timeout"
            self.stop()
            raise RuntimeError("server did not start: %s\n%s" % (" ".join(argv), err))

    def pids(self):
        try:
            h = json.loads(rpc(self.sock, "health"))["result"]
        except (OSError, ValueError, KeyError):
            return [self.p.pid]
        pids = [h.get("pid", self.p.pid)]
        pids += h.get("workers", {}).get("pids", []) if isinstance(h.get("workers"), dict) else []
        return pids

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def rss_kib(pid, field="VmRSS"):
    try:
        for line in open("/proc/%d/status" % pid):
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


# ---------------------------------------------------------------- runs

def cpu_text(x, supervisor=True):
    """The server's CPU us/request of a load figure (in parentheses, the
    supervisor's alone), or "n/a" where pw_load could not measure it (no
    pids from health): never a 0 that looks measured."""
    if "server_cpu_us_per_req" not in x:
        return "n/a"
    text = "%.1f" % x["server_cpu_us_per_req"]
    if supervisor and "main_cpu_us_per_req" in x:
        text += " (%.1f)" % x["main_cpu_us_per_req"]
    return text


class Bench:
    def __init__(self, args):
        self.a = args
        self.build = os.path.abspath(args.build)
        self.bin = os.path.join(self.build, "bench")
        self.pathwise = os.path.join(self.build, "pathwise")
        self.index = os.path.join(ROOT, "examples", "index_case.json")
        self.cases = [self.index] + sorted(
            os.path.join(d, f) for d in (os.path.join(ROOT, "examples", "cases"), os.path.join(ROOT, "tests", "bench", "cases"))
            if os.path.isdir(d) for f in os.listdir(d) if f.endswith(".json"))
        self.protocol = os.path.join(ROOT, "scripts", "mrc_second_line.lua")
        ncpu = os.cpu_count() or 1
        self.cpu_a = "0"                       # client
        self.cpu_b = str(ncpu - 1)             # server / in-process
        # the decision log lives on the build directory's file system (a real
        # disk here, so fdatasync costs what it costs in production)
        self.tmp = tempfile.mkdtemp(prefix="pwbench-", dir=self.bin)
        self.res = {"machine": machine(), "settings": {}, "inprocess": None, "socket": {}}

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- in-process
    def inprocess(self):
        out = os.path.join(self.tmp, "inproc.json")
        argv = [os.path.join(self.bin, "pw_bench"), "--cpu", self.cpu_b, "--reps", str(self.a.reps_inproc),
                "--protocol", self.protocol, "--json", out, "--quiet"]
        if self.a.quick:
            argv += ["--index-iters", "5000", "--mixed-iters", "5500", "--stage-iters", "1000"]
        log("in-process: pw_bench, %d repetitions, pinned to cpu %s ..." % (self.a.reps_inproc, self.cpu_b))
        p = sh(argv + self.cases)
        if p.returncode != 0:
            raise RuntimeError("pw_bench failed: " + p.stderr)
        self.res["inprocess"] = json.load(open(out))
        self.res["settings"]["cases"] = [os.path.relpath(c, ROOT) for c in self.cases]

    # -- the same in-process figures from two pw_bench binaries, interleaved:
    # entries (label, pw_bench, protocol or None for the binary's own default)
    def interleave(self, bins, reps, iters):
        for _, b, _ in bins:
            if not os.access(b, os.X_OK):
                raise RuntimeError("missing %s (cmake --build ... --target pw_bench)" % b)
        runs = {name: [] for name, _, _ in bins}
        for r in range(reps):
            for name, b, proto in (bins if r % 2 == 0 else bins[::-1]):
                out = os.path.join(self.tmp, "cmp-%s.json" % name)
                argv = [b, "--cpu", self.cpu_b, "--reps", "1", "--json", out, "--quiet",
                        "--index-iters", str(iters), "--mixed-iters", str(iters + 100), "--stage-iters", "200"]
                if proto:
                    argv += ["--protocol", proto]
                p = sh(argv + self.cases)
                if p.returncode != 0:
                    raise RuntimeError("%s failed: %s" % (b, p.stderr))
                j = json.load(open(out))
                runs[name].append((j["index"]["p50_us"]["median"], j["mixed"]["mean_us"]["median"]))
        med = lambda xs: sorted(xs)[len(xs) // 2]
        (a, _, _), (o, _, _) = bins
        res = {"runs": runs}
        for i, k in ((0, "index_p50"), (1, "mixed_mean")):
            res[k + "_us"] = {a: med([x[i] for x in runs[a]]), o: med([x[i] for x in runs[o]])}
            res[k + "_ratio"] = med([x[i] / y[i] for x, y in zip(runs[a], runs[o])])
        return res

    # (issue 16: the vendored Lua against -DPW_SYSTEM_LUA=ON, or any two
    # builds; both run this tree's protocol)
    def compare(self, other):
        log("compare: %d interleaved runs of pw_bench from %s and %s ..." % (self.a.reps_inproc, self.build, other))
        bins = [("this", os.path.join(self.bin, "pw_bench"), self.protocol),
                ("other", os.path.join(os.path.abspath(other), "bench", "pw_bench"), self.protocol)]
        res = self.interleave(bins, self.a.reps_inproc, 3000)
        res["other_build"] = os.path.abspath(other)
        self.res["compare"] = res

    # -- the round-1 configuration (issue 16: "on the same run as the round-1
    # configuration"): COMMIT's tree checked out once in a detached git
    # worktree under BUILD/bench/baseline-SHA/src, its pw_bench built in
    # .../build (cached by commit), then both builds interleaved, each with
    # ITS OWN default protocol (pw_bench's --protocol left out: the baseline
    # reads SHA's scripts/, this build this tree's), on the same cases.
    def baseline_build(self, commit):
        sha = sh(["git", "-C", ROOT, "rev-parse", "--verify", commit + "^{commit}"]).stdout.strip()
        if not sha:
            raise RuntimeError("--baseline: %s is not a commit of %s" % (commit, ROOT))
        top = os.path.join(self.bin, "baseline-" + sha[:12])
        src, bld = os.path.join(top, "src"), os.path.join(top, "build")
        exe = os.path.join(bld, "bench", "pw_bench")
        if os.access(exe, os.X_OK):
            return sha, src, exe
        if not os.path.isdir(os.path.join(src, ".git")) and not os.path.isfile(os.path.join(src, ".git")):
            os.makedirs(top, exist_ok=True)
            shutil.rmtree(src, ignore_errors=True)
            # --force: a registration left by a deleted build directory (its
            # path gone) is reused; `git worktree prune` also clears it
            p = sh(["git", "-C", ROOT, "worktree", "add", "--force", "--detach", src, sha])
            if p.returncode != 0:
                raise RuntimeError("git worktree add %s failed: %s" % (src, p.stderr))
        log("baseline: building pw_bench of %s in %s (once; cached) ..." % (sha[:12], bld))
        for argv in (["cmake", "-S", src, "-B", bld, "-DCMAKE_BUILD_TYPE=RelWithDebInfo"],
                     ["cmake", "--build", bld, "-j2", "--target", "pw_bench"]):
            p = sh(argv)
            if p.returncode != 0:
                raise RuntimeError("baseline build failed: %s\n%s%s" % (" ".join(argv), p.stdout[-3000:], p.stderr[-3000:]))
        return sha, src, exe

    def baseline(self, commit):
        sha, src, exe = self.baseline_build(commit)
        reps = self.a.reps_inproc if not self.a.quick else 2
        log("baseline: %d interleaved runs of pw_bench, round 1 (%s) and this build, each with its own protocol ..."
            % (reps, sha[:12]))
        bins = [("this", os.path.join(self.bin, "pw_bench"), None), ("baseline", exe, None)]
        res = self.interleave(bins, reps, 1500 if self.a.quick else 3000)
        res["commit"] = sha
        res["build"] = os.path.dirname(os.path.dirname(exe))
        res["protocols"] = {"this": os.path.relpath(self.protocol, ROOT),
                            "baseline": os.path.join(src, "scripts", "mrc_second_line.lua")}
        self.res["baseline"] = res

    # -- batch over a generated cohort (issue 5), by batch.py
    def batch(self):
        n = self.a.batch_cases or (20000 if self.a.quick else 100000)
        ncpu = os.cpu_count() or 1
        argv = [sys.executable, os.path.join(ROOT, "tests", "bench", "batch.py"), "--pathwise", self.pathwise,
                "--inproc", os.path.join(self.bin, "pw_inproc"), "--cases", str(n),
                "--jobs", "1,%d" % ncpu, "--repeat", "1" if self.a.quick else "3"]
        log("batch: %d generated cases, jobs 1 and %d ..." % (n, ncpu))
        p = sh(argv)
        if p.returncode != 0:
            raise RuntimeError("batch.py failed: " + p.stderr + p.stdout)
        self.res["batch"] = json.loads(p.stdout.strip().splitlines()[-1])

    # -- one load-client run
    def load(self, sock, conns, depth, requests, client_cpus=None, files=None, seconds=None, warmup=None, extra=()):
        if warmup is None:
            warmup = max(200, min(5000, requests // 10))
        argv = [os.path.join(self.bin, "pw_load"), "--socket", sock, "--conns", str(conns), "--depth", str(depth),
                "--requests", str(requests), "--warmup", str(warmup),
                "--seconds", str(seconds or self.a.seconds), "--json"] + list(extra) + (files or [self.index])
        if client_cpus is not None:
            argv = ["taskset", "-c", client_cpus] + argv
        p = sh(argv, timeout=(seconds or self.a.seconds) + 180)
        line = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
        try:
            r = json.loads(line)
        except ValueError:
            raise RuntimeError("pw_load failed (%d): %s %s" % (p.returncode, p.stdout, p.stderr))
        if r.get("errors") or r.get("malformed"):
            r["failed"] = True
        return r

    def repeat(self, fn, reps):
        runs = [fn() for _ in range(reps)]
        keys = ("rate", "p50_us", "p90_us", "p99_us", "p999_us", "server_cpu_us_per_req", "main_cpu_us_per_req")
        out = {k: statistics.median([r[k] for r in runs if k in r]) for k in keys if any(k in r for r in runs)}
        out["reps"] = reps
        out["requests_per_rep"] = runs[0]["requests"]
        out["errors"] = sum(r.get("errors", 0) + r.get("malformed", 0) for r in runs)
        out["rate_min_max"] = [min(r["rate"] for r in runs), max(r["rate"] for r in runs)]
        out["p50_min_max"] = [min(r["p50_us"] for r in runs), max(r["p50_us"] for r in runs)]
        return out

    def serve(self, name, workers=2, log_sync=None, cpus=None, extra=()):
        sock = os.path.join(self.tmp, name + ".sock")
        argv = [self.pathwise, "serve", "--socket", sock, "--protocol", self.protocol, "--no-watch",
                "--workers", str(workers)]
        if log_sync:
            logf = os.path.join(self.tmp, name + ".log")
            if os.path.exists(logf):
                os.unlink(logf)
            argv += ["--log", logf, "--log-sync", log_sync]
        return Proc(argv + list(extra), sock, cpus)

    def echo(self, name, reply_bytes, cpus=None):
        sock = os.path.join(self.tmp, name + ".sock")
        return Proc([os.path.join(self.bin, "pw_echo"), "--socket", sock, "--reply-bytes", str(reply_bytes)], sock, cpus)

    # -- the socket matrix
    def sockets(self):
        a = self.a
        S = self.res["socket"]
        n1 = 3000 if a.quick else 20000       # one-at-a-time runs
        nN = 20000 if a.quick else 100000     # pipelined runs
        reps = a.reps

        # the reply size pathwise gives for the workload, for the echo server
        srv = self.serve("probe", workers=1)
        facts = json.load(open(self.index))
        reply = rpc(srv.sock, "evaluate", {"facts": facts})
        srv.stop()
        reply_bytes = len(reply)
        # as pw_load sends it: the file's text, line breaks made spaces
        with open(self.index, "rb") as f:
            text = f.read()
        req_bytes = len(b'{"jsonrpc":"2.0","id":1000,"method":"evaluate","params":{"facts":' + text + b"}}\n")
        S["message_bytes"] = {"request": req_bytes, "reply": reply_bytes}
        log("socket: evaluate request %d B, reply %d B; echo replies %d B" % (req_bytes, reply_bytes, reply_bytes))

        placements = {"same_cpu": (self.cpu_b, self.cpu_b), "cross_cpu": (self.cpu_a, self.cpu_b)}
        if (os.cpu_count() or 1) < 2:
            placements = {"same_cpu": ("0", "0")}
        shapes = [("1x1", 1, 1, n1), ("1x64", 1, 64, nN), ("8x1", 8, 1, n1 * 2), ("8x16", 8, 16, nN)]

        # 1. the ceiling (echo) and the server, same placements, same run
        for kind in ("echo", "server"):
            S[kind] = {}
            for pname, (ccpu, scpu) in placements.items():
                log("%s, client on cpu %s, server on cpu %s ..." % (kind, ccpu, scpu))
                p = (self.echo("echo", reply_bytes, scpu) if kind == "echo"
                     else self.serve("srv", workers=1, log_sync="none", cpus=scpu))
                try:
                    S[kind]["1x1_" + pname] = self.repeat(lambda: self.load(p.sock, 1, 1, n1, ccpu), reps)
                finally:
                    p.stop()
            log("%s, unpinned, all shapes ..." % kind)
            p = (self.echo("echo", reply_bytes) if kind == "echo"
                 else self.serve("srv", workers=2, log_sync="none"))
            try:
                for label, c, d, n in shapes:
                    S[kind][label] = self.repeat(lambda: self.load(p.sock, c, d, n), reps)
            finally:
                p.stop()

        # 2. workers 1 vs 2 at 64 pipelined (no log), then log modes with 2 workers
        S["workers_64"] = {}
        for w in (1, 2):
            log("server, %d worker(s), 1x64, no log ..." % w)
            p = self.serve("w%d" % w, workers=w)
            try:
                S["workers_64"][str(w)] = self.repeat(lambda: self.load(p.sock, 1, 64, nN), reps)
            finally:
                p.stop()
        S["log_sync_64"] = {}
        for mode in ("none", "batch", "always"):
            log("server, 2 workers, 1x64 and 8x16, --log-sync %s ..." % mode)
            p = self.serve("log_" + mode, workers=2, log_sync=mode)
            try:
                S["log_sync_64"][mode] = self.repeat(lambda: self.load(p.sock, 1, 64, nN), reps)
                S["log_sync_64"][mode + "_8x16"] = self.repeat(lambda: self.load(p.sock, 8, 16, nN), reps)
            finally:
                p.stop()

        # 3. cold start to ready, reload latency
        starts, reloads = [], []
        for i in range(3 if a.quick else 7):
            p = self.serve("cold%d" % i, workers=2)
            starts.append(p.ready)
            for _ in range(2):
                t0 = time.monotonic()
                r = rpc(p.sock, "reload", timeout=60)
                if b'"result"' not in r:
                    raise RuntimeError("reload failed: %r" % r[:300])
                reloads.append(time.monotonic() - t0)
            p.stop()
        S["cold_start_ms"] = {"median": statistics.median(starts) * 1e3, "min": min(starts) * 1e3,
                              "max": max(starts) * 1e3, "n": len(starts)}
        S["reload_ms"] = {"median": statistics.median(reloads) * 1e3, "min": min(reloads) * 1e3,
                          "max": max(reloads) * 1e3, "n": len(reloads)}

        self.res["settings"].update({"socket_reps": reps, "one_at_a_time_requests": n1,
                                     "pipelined_requests": nN, "client_cpu": self.cpu_a,
                                     "server_cpu": self.cpu_b, "seconds_bound": a.seconds})

    # -- CDS Hooks over HTTP (issue 14): a patient-view POST, JWT checking
    # off, beside JSON-RPC evaluate on the same server in the same run
    def cds_request(self):
        """The index case as an EHR prefetches it (Patient, then one
        searchset per resource type), in a patient-view request."""
        with open(os.path.join(ROOT, "tests", "data", "fhir", "colorectal", "index_case.json")) as f:
            text = f.read()
        for e in json.loads(text)["entry"]:   # searchsets refer by Type/id
            if e.get("fullUrl") and e["resource"].get("id"):
                text = text.replace('"%s"' % e["fullUrl"], '"%s/%s"' % (e["resource"]["resourceType"], e["resource"]["id"]))
        keys = {"Condition": "conditions", "Observation": "observations", "Procedure": "procedures",
                "MedicationStatement": "medicationStatements", "MedicationRequest": "medicationRequests",
                "MedicationAdministration": "medicationAdministrations", "ServiceRequest": "serviceRequests"}
        pre = {k: {"resourceType": "Bundle", "type": "searchset", "entry": []} for k in keys.values()}
        for e in json.loads(text)["entry"]:
            r = e["resource"]
            if r["resourceType"] == "Patient":
                pre["patient"] = r
            else:
                pre[keys[r["resourceType"]]]["entry"].append({"resource": r})
        req = {"hook": "patient-view", "hookInstance": "0d6f6f2e-7f0a-4c39-9d8c-00000000be4c",
               "context": {"userId": "Practitioner/bench", "patientId": pre["patient"]["id"]},
               "prefetch": pre, "extension": {"org.pathwise.as_of": "2026-06-01"}}
        path = os.path.join(self.tmp, "cds_patient_view.json")
        with open(path, "w") as f:
            json.dump(req, f, separators=(",", ":"))
        return path

    def http(self):
        a = self.a
        H = self.res["http"] = {}
        n1 = 2000 if a.quick else 10000
        nN = 4000 if a.quick else 30000
        body = self.cds_request()
        sock = os.path.join(self.tmp, "cds.sock")
        hsock = os.path.join(self.tmp, "cds-http.sock")
        log("CDS Hooks over HTTP: patient-view POST (%d B body), 2 workers, --http-no-auth, no log ..."
            % os.path.getsize(body))
        p = Proc([self.pathwise, "serve", "--socket", sock, "--protocol", self.protocol, "--no-watch",
                  "--workers", "2", "--http", hsock, "--http-no-auth"], sock)
        try:
            probe = subprocess.run(["curl", "-s", "--unix-socket", hsock, "-H", "Content-Type: application/json",
                                    "--data-binary", "@" + body,
                                    "http://bench/cds-services/mrc_second_line-patient-view"],
                                   capture_output=True)
            cards = json.loads(probe.stdout)["cards"]
            H["message_bytes"] = {"request": os.path.getsize(body), "reply": len(probe.stdout), "cards": len(cards)}
            http = ["--http", hsock, "--path", "/cds-services/mrc_second_line-patient-view"]
            H["http_1"] = self.repeat(lambda: self.load(sock, 1, 1, n1, files=[body], extra=http), a.reps)
            H["http_64"] = self.repeat(lambda: self.load(sock, 64, 1, nN, files=[body], extra=http), a.reps)
            H["rpc_1"] = self.repeat(lambda: self.load(sock, 1, 1, n1), a.reps)
            H["rpc_64"] = self.repeat(lambda: self.load(sock, 1, 64, nN), a.reps)
        finally:
            p.stop()
        self.res["settings"].update({"http_one_at_a_time_requests": n1, "http_64_requests": nN})

    # -- memory: 1,000,000 requests with 2 workers (durable log), RSS
    # sampled after every 100,000
    def memory(self):
        a = self.a
        S = self.res["socket"]
        total = a.rss_requests
        log("server, 2 workers, --log-sync always, %d requests at 8x16 for peak RSS ..." % total)
        p = self.serve("rss", workers=2, log_sync="always")
        try:
            pids = p.pids()
            chunk = max(10000, total // 10)    # 100,000 of 1,000,000, warm-up included
            samples = []
            done = 0
            t0 = time.monotonic()
            while done < total:
                n = min(chunk, total - done)
                warm = max(200, min(5000, n // 10))
                self.load(p.sock, 8, 16, n - warm, seconds=3600, warmup=warm)
                done += n
                samples.append({"after": done, "rss_kib": {str(pid): rss_kib(pid) for pid in pids}})
            el = time.monotonic() - t0
            hwm = {str(pid): rss_kib(pid, "VmHWM") for pid in pids}
            # RSS moves by a few hundred KiB as malloc trims and grows the
            # supervisor's buffers: growth compares the medians of the first
            # and of the last three samples
            tot = [sum(s["rss_kib"].values()) for s in samples]
            first = statistics.median(tot[:3])
            last = statistics.median(tot[-3:])
            S["rss"] = {"requests": done, "chunk": chunk, "seconds": el, "pids": pids, "samples": samples,
                        "peak_kib_by_process": hwm, "peak_kib_total": sum(hwm.values()),
                        "peak_kib_max_process": max(hwm.values()),
                        "rss_kib_after_first_chunk": first, "rss_kib_after_last_chunk": last,
                        "growth_kib": last - first}
        finally:
            p.stop()

    # ------------------------------------------------------------ report

    # Issue 16's targets (round 2). Each is a ratio or a figure of this
    # run; a target whose figure was not measured in this run (e.g. --only
    # socket has no in-process p50) is listed as not measured, never as met.
    def targets(self):
        t = []
        ip = self.res["inprocess"]
        S = self.res["socket"]
        inp = ip["index"]["p50_us"]["median"] if ip else None
        if ip:
            p99 = ip["index"]["p99_us"]["median"]
            b = self.res.get("baseline")
            was = ("; round 1 (%s) %.1f us in the same run, ratio %.3f" % (
                b["commit"][:7], b["index_p50_us"]["baseline"], b["index_p50_ratio"]) if b else "")
            t.append(("in-process index p50 <= 15 us (stretch 10)", "%.1f us%s" % (inp, was), inp <= 15))
            t.append(("in-process p99 <= 3 x p50", "%.1f / %.1f = %.2f" % (p99, inp, p99 / inp), p99 <= 3 * inp))
        bt = self.res.get("batch")
        if bt:
            j1 = [r for r in bt["batch"] if r["jobs"] == 1]
            if j1:
                r = j1[0]["cases_per_second"]
                t.append(("batch --jobs 1 >= 60,000 cases/s", "%.0f/s" % r, r >= 60000))
        if S.get("server"):
            for k, label in (("1x64", "1 conn x 64 pipelined"), ("8x16", "8 conns x 16")):
                if k in S["server"]:
                    r = S["server"][k]["rate"]
                    t.append(("server, 2 workers, %s >= 60,000/s" % label, "%.0f/s" % r, r >= 60000))
            k = "1x1_same_cpu"
            if k in S["server"]:
                e, x = S["echo"][k]["p50_us"], S["server"][k]
                s50, s99 = x["p50_us"], x["p99_us"]
                if inp is not None:
                    lim = e + inp + 15
                    t.append(("server 1x1 same cpu p50 <= echo + in-process + 15 us",
                              "%.1f vs %.1f + %.1f + 15 = %.1f" % (s50, e, inp, lim), s50 <= lim))
                else:
                    t.append(("server 1x1 same cpu p50 <= echo + in-process + 15 us",
                              "not measured: %.1f us vs echo %.1f, no in-process run" % (s50, e), False))
                t.append(("server 1x1 same cpu p99 <= 3 x p50", "%.1f / %.1f = %.2f" % (s99, s50, s99 / s50),
                          s99 <= 3 * s50))
        if S.get("log_sync_64"):
            ra, rn = S["log_sync_64"]["always"]["rate"], S["log_sync_64"]["none"]["rate"]
            t.append(("--log-sync always >= 80% of none (1x64)", "%.0f / %.0f = %.0f%%" % (ra, rn, 100 * ra / rn),
                      ra >= 0.8 * rn))
        if S.get("rss"):
            r = S["rss"]
            mib = r["peak_kib_max_process"] / 1024
            full = r["requests"] >= 1000000
            t.append(("peak RSS <= 16 MiB per process after 1,000,000 requests",
                      "%.1f MiB largest process (%.1f MiB total) after %d requests%s" % (
                          mib, r["peak_kib_total"] / 1024, r["requests"],
                          "" if full else ": fewer than the target's 1,000,000"), mib <= 16 and full))
            t.append(("no RSS growth, first vs last %d-request chunks" % r["chunk"],
                      "%+d KiB (medians of %d samples)" % (r["growth_kib"], min(3, len(r["samples"]))),
                      r["growth_kib"] <= 256))
        self.res["targets"] = [{"target": a, "measured": b, "met": c} for a, b, c in t]
        return t

    def table(self):
        m = self.res["machine"]
        lines = ["pathwise benchmark: %s, %d cpus, Linux %s, commit %s, load %s at start" % (
            m["cpu_model"], m["nproc"], m["kernel"], m["commit"], m["loadavg_at_start"])]
        c = self.res.get("baseline")
        if c:
            lines.append("")
            lines.append("Round 1 (%s, its build and its protocol) against this build and protocol, interleaved," % c["commit"][:7])
            lines.append("  medians of %d runs each (ratio this/round 1, median of the per-pair ratios)" % len(c["runs"]["this"]))
            for k, label in (("index_p50", "index case p50"), ("mixed_mean", "mixed set mean")):
                lines.append("  %-18s round 1 %8.2f us, this %8.2f us   ratio %.3f" % (
                    label, c[k + "_us"]["baseline"], c[k + "_us"]["this"], c[k + "_ratio"]))
        c = self.res.get("compare")
        if c:
            lines.append("")
            lines.append("This build against %s (interleaved, medians of %d runs each; ratio this/other)" % (
                c["other_build"], len(c["runs"]["this"])))
            for k, label in (("index_p50", "index case p50"), ("mixed_mean", "mixed set mean")):
                lines.append("  %-18s %8.2f us vs %8.2f us   ratio %.3f" % (
                    label, c[k + "_us"]["this"], c[k + "_us"]["other"], c[k + "_ratio"]))
        ip = self.res["inprocess"]
        if ip:
            lines.append("")
            lines.append("In-process full path (JSON in -> JSON out), %s, medians of %d repetitions" % (
                ip["settings"]["placement"], ip["settings"]["reps"]))
            lines.append("  %-26s %9s %9s %9s %9s %10s" % ("", "p50 us", "p99 us", "p999 us", "mean us", "evals/s"))
            for k, label in (("index", "index case"), ("mixed", "mixed set (%d cases)" % ip["settings"]["cases"])):
                x = ip[k]
                lines.append("  %-26s %9.2f %9.2f %9.2f %9.2f %10.0f" % (
                    label, x["p50_us"]["median"], x["p99_us"]["median"], x["p999_us"]["median"],
                    x["mean_us"]["median"], x["evals_per_s"]["median"]))
            b = ip["breakdown_us"]
            lines.append("  where the time goes (index case, per-call medians, us):")
            lines.append("    gate %.2f | cjson decode %.2f | validation %.2f | protocol %.2f | kernel %.2f | "
                         "encode %.2f | other %.2f | full %.2f" % (
                             b["gate"], b["cjson_decode"], b["validate"], b["protocol"], b["kernel"],
                             b["encode"], b["other"], b["full"]))
            lines.append("    (facts sha256 %.2f: only with a decision log, not in the full path)" % b["facts_sha256"])
            if "what_if" in ip:   # issue 17
                w = ip["what_if"]
                lines.append("  what-if of the index case (eval --what-if): %d evaluations, %.1f us [%.1f..%.1f]" % (
                    w["evaluations"], w["us"]["median"], w["us"]["min"], w["us"]["max"]))
        S = self.res["socket"]
        if S.get("server"):
            lines.append("")
            lines.append("Over the Unix socket (index case; evaluate %d B in, %d B out), medians of %d repetitions" % (
                S["message_bytes"]["request"], S["message_bytes"]["reply"], self.a.reps))
            lines.append("  server: --log-sync none; 1 worker in the pinned 1x1 rows, 2 workers otherwise. CPU us/req:")
            lines.append("  all server processes (in parentheses: the supervisor alone). x echo: throughput ratio.")
            lines.append("  %-36s %9s %8s %8s %8s %15s %7s" % ("", "req/s", "p50 us", "p99 us", "p999 us",
                                                               "CPU us/req", "x echo"))
            order = ["1x1_same_cpu", "1x1_cross_cpu", "1x1", "1x64", "8x1", "8x16"]
            names = {"1x1_same_cpu": "1 conn, 1 in flight, same cpu", "1x1_cross_cpu": "1 conn, 1 in flight, cross cpu",
                     "1x1": "1 conn, 1 in flight", "1x64": "1 conn, 64 pipelined", "8x1": "8 conns, 1 each",
                     "8x16": "8 conns x 16"}
            for k in order:
                if k not in S["server"]:
                    continue
                for kind in ("echo", "server"):
                    x = S[kind][k]
                    ratio = "" if kind == "echo" else "%.2f" % (x["rate"] / S["echo"][k]["rate"])
                    cpu = cpu_text(x, supervisor=kind == "server")
                    lines.append("  %-36s %9.0f %8.1f %8.1f %8.1f %15s %7s" % (
                        names[k] + ": echo" if kind == "echo" else "  pathwise serve", x["rate"], x["p50_us"],
                        x["p99_us"], x["p999_us"], cpu, ratio))
            lines.append("  workers, 1x64, no log:    1 worker %.0f/s, 2 workers %.0f/s" % (
                S["workers_64"]["1"]["rate"], S["workers_64"]["2"]["rate"]))
            lg = S["log_sync_64"]
            lines.append("  log-sync, 2 workers, 1x64: none %.0f/s, batch %.0f/s, always %.0f/s "
                         "(8x16: %.0f, %.0f, %.0f)" % (lg["none"]["rate"], lg["batch"]["rate"], lg["always"]["rate"],
                                                       lg["none_8x16"]["rate"], lg["batch_8x16"]["rate"],
                                                       lg["always_8x16"]["rate"]))
            lines.append("  cold start to ready: %.1f ms median; reload: %.1f ms median" % (
                S["cold_start_ms"]["median"], S["reload_ms"]["median"]))
        H = self.res.get("http")
        if H:
            lines.append("")
            lines.append("CDS Hooks over HTTP (Unix socket, --http-no-auth, no log, 2 workers): patient-view POST of the index")
            lines.append("  case as FHIR prefetch (%d B in, %d B out, %d cards), beside JSON-RPC evaluate of the same patient's"
                         % (H["message_bytes"]["request"], H["message_bytes"]["reply"], H["message_bytes"]["cards"]))
            lines.append("  facts on the same server; medians of %d repetitions. 64 in flight: HTTP over 64 keep-alive" % self.a.reps)
            lines.append("  connections (one request each at a time); JSON-RPC 64 pipelined on one connection.")
            lines.append("  %-36s %9s %8s %8s %8s %15s" % ("", "req/s", "p50 us", "p99 us", "p999 us", "CPU us/req"))
            for k, label in (("http_1", "HTTP patient-view, 1 in flight"), ("http_64", "HTTP patient-view, 64 in flight"),
                             ("rpc_1", "JSON-RPC evaluate, 1 in flight"), ("rpc_64", "JSON-RPC evaluate, 64 in flight")):
                x = H[k]
                lines.append("  %-36s %9.0f %8.1f %8.1f %8.1f %15s" % (
                    label, x["rate"], x["p50_us"], x["p99_us"], x["p999_us"],
                    cpu_text(x)))
        if S.get("rss"):
            r = S["rss"]
            lines.append("")
            lines.append("Memory: RSS after %d requests at 8x16 (2 workers, log always): peak %.1f MiB total, "
                         "%s KiB by process" % (r["requests"], r["peak_kib_total"] / 1024, r["peak_kib_by_process"]))
            lines.append("  total RSS after each chunk, KiB: %s; growth first->last %+d KiB" % (
                " ".join(str(sum(x["rss_kib"].values())) for x in r["samples"]), r["growth_kib"]))
        bt = self.res.get("batch")
        if bt:
            lines.append("")
            lines.append("Batch over a generated cohort of %d cases (best of repetitions); in-process one core: %.0f cases/s"
                         % (bt["cases"], bt["inproc_cases_per_second"]))
            lines.append("  %-8s %10s %12s %12s %12s" % ("jobs", "seconds", "cases/s", "efficiency", "peak RSS"))
            for r in bt["batch"]:
                lines.append("  %-8d %10.2f %12.0f %11.0f%% %8.1f MiB" % (
                    r["jobs"], r["seconds"], r["cases_per_second"], 100 * r["efficiency"], r["peak_rss_kb"] / 1024))
        t = self.targets()
        lines.append("")
        lines.append("Targets (issue 16)")
        for name, val, ok in t:
            lines.append("  [%s] %-56s %s" % ("met" if ok else "NOT met", name, val))
        return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="CMake build directory (default build/)")
    ap.add_argument("--root", default=ROOT, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help="JSON results (default BUILD/bench/results.json)")
    ap.add_argument("--only", default=None,
                    help="run only these parts, comma-separated: inprocess,socket,http,memory,batch "
                         "(e.g. inprocess,socket for the 1x1 target, which needs both)")
    ap.add_argument("--compare", metavar="BUILD", default=None,
                    help="with the in-process run: the same figures from BUILD's pw_bench, interleaved "
                         "(e.g. a -DPW_SYSTEM_LUA=ON build; ratios are this / BUILD, medians)")
    ap.add_argument("--baseline", metavar="COMMIT", default=None,
                    help="with the in-process run: the round-1 configuration, COMMIT's pw_bench with COMMIT's own "
                         "protocol, built once in a git worktree under BUILD/bench/baseline-SHA (cached), interleaved "
                         "with this build (default c2965a9, round 1; 'none' skips it)")
    ap.add_argument("--batch-cases", type=int, default=None, help="cohort size of the batch run (default 100000, quick 20000)")
    ap.add_argument("--quick", action="store_true", help="fewer requests and repetitions (a smoke run)")
    ap.add_argument("--reps", type=int, default=None, help="socket repetitions per figure (default 5, quick 1)")
    ap.add_argument("--reps-inproc", type=int, default=None, help="in-process repetitions (default 7, quick 3)")
    ap.add_argument("--seconds", type=float, default=30, help="time bound of one load run (default 30)")
    ap.add_argument("--rss-requests", type=int, default=None, help="requests for the RSS run (default 1000000)")
    extra = os.environ.get("PW_BENCH_ARGS", "").split()
    a = ap.parse_args(sys.argv[1:] + extra)
    parts = ("inprocess", "socket", "http", "memory", "batch")
    only = set(a.only.split(",")) if a.only else set(parts)
    if only - set(parts):
        ap.error("--only: unknown part(s) %s; choose from %s" % (",".join(sorted(only - set(parts))), ",".join(parts)))
    a.reps = a.reps or (1 if a.quick else 5)
    a.reps_inproc = a.reps_inproc or (3 if a.quick else 7)
    a.rss_requests = a.rss_requests or (100000 if a.quick else 1000000)
    b = Bench(a)
    try:
        if "inprocess" in only:
            b.inprocess()
            if a.baseline != "none":
                b.baseline(a.baseline or BASELINE)
            if a.compare:
                b.compare(a.compare)
        if "socket" in only:
            b.sockets()
        if "http" in only:
            b.http()
        if "memory" in only:
            b.memory()
        if "batch" in only:
            b.batch()
        out = a.out or os.path.join(b.bin, "results.json")
        text = b.table()
        b.res["settings"]["quick"] = a.quick
        b.res["table"] = text
        with open(out, "w") as f:
            json.dump(b.res, f, indent=1)
        print()
        print(text)
        print("\nresults: %s" % out)
    finally:
        b.cleanup()


if __name__ == "__main__":
    main()
