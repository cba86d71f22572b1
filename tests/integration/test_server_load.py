#!/usr/bin/env python3
"""pathwise serve under the C load client (tests/bench/pw_load): a short
smoke run at 1 and 64 in flight with the durable log; no error, no
malformed line, every evaluation logged; and the same for its CDS Hooks
HTTP mode (--http, the benchmark's HTTP rows) at 1 and 64 in flight, where
an answer other than 200 must count as an error. Not a benchmark."""
import json
import os
import subprocess

from srvlib import Server, check, examples, log_records, run


def test_load_client_smoke(args, tmp):
    check(args.bench, "--bench pw_load is required")
    srv = Server(args, tmp).start()
    total = 0
    for conns, depth in ((1, 1), (1, 64), (8, 16)):
        p = subprocess.run([args.bench, "--socket", srv.sock, "--conns", str(conns),
                            "--depth", str(depth), "--requests", "3000", "--warmup", "200",
                            "--seconds", "60", *examples(args.root)],
                           capture_output=True, timeout=200)
        check(p.returncode == 0, "pw_load %dx%d: %s %s" % (conns, depth, p.stdout, p.stderr))
        print("     " + p.stdout.decode().strip())
        total += 3200
    check(srv.stop() == 0, "exit status")
    check(len(log_records(srv.log)) == total, "every evaluation logged")


def test_load_client_http(args, tmp):
    check(args.bench, "--bench pw_load is required")
    srv = Server(args, tmp)
    hsock = os.path.join(tmp, "h.sock")
    srv.cmd += ["--http", hsock, "--http-no-auth"]
    srv.start()
    body = os.path.join(args.root, "examples", "clients", "cds_order_sign.json")
    total = 0
    for conns in (1, 64):
        p = subprocess.run([args.bench, "--socket", srv.sock, "--http", hsock, "--path",
                            "/cds-services/mrc_second_line-order-sign", "--conns", str(conns), "--depth", "1",
                            "--requests", "400", "--warmup", "100", "--seconds", "60", "--json", body],
                           capture_output=True, timeout=200)
        check(p.returncode == 0, "pw_load --http %dx1: %s %s" % (conns, p.stdout, p.stderr))
        r = json.loads(p.stdout.decode().strip().splitlines()[-1])
        check(r["requests"] == 400 and r["rate"] > 0 and r["p99_us"] >= r["p50_us"] > 0, "figures: %r" % r)
        print("     http %dx1: %s" % (conns, p.stdout.decode().strip()))
        total += 500
    p = subprocess.run([args.bench, "--socket", srv.sock, "--http", hsock, "--path", "/cds-services/nope-order-sign",
                        "--requests", "20", "--warmup", "0", "--json", body], capture_output=True, timeout=60)
    check(p.returncode == 1 and json.loads(p.stdout.decode().splitlines()[-1])["errors"] == 20,
          "404 answers count as errors: %s %s" % (p.stdout, p.stderr[-300:]))
    check(srv.stop() == 0, "exit status")
    calls = [r for r in log_records(srv.log) if r.get("cds", {}).get("op") == "call"]
    check(len([r for r in calls if r["cds"]["status"] == 200]) == total, "every call logged")


if __name__ == "__main__":
    run([test_load_client_smoke, test_load_client_http])
