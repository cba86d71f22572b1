#!/usr/bin/env python3
"""pathwise serve under the C load client (tests/bench/pw_load): a short
smoke run at 1 and 64 in flight with the durable log; no error, no
malformed line, every evaluation logged. Not a benchmark."""
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


if __name__ == "__main__":
    run([test_load_client_smoke])
