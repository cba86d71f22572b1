#!/usr/bin/env python3
"""The decision log on an I/O error (issue 12, "audit every request"): a
failed fdatasync or write(2) of the log ends the segment (renamed
LOG.ioerror-...), a new one starts at LOG with a segment_failed event, and
the records not written are there again, those whose clients were refused
marked "refused"; the server keeps serving. A second failure before a
commit succeeds on the new segment fails closed, as before. failio.so
(tests/fault/failio.c) injects the errors; every record of both segments
is checked against schemas/decision-log.schema.json.

In the sanitizer build --preload-first names the ASan and UBSan runtimes,
which LD_PRELOAD must list before the shim.

usage: test_declog_io.py --pathwise BIN --root SRC --shim failio.so
                         [--preload-first LIB[:LIB...]] [test ...]"""
import glob
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import srvlib  # noqa: E402
from srvlib import Server, check, eval_request, examples, log_records, read  # noqa: E402

SHIM = None
FIRST = None   # the sanitizer runtimes, to preload before SHIM


def schema_check(root, recs):
    """Every record against the decision-log schema (python3-jsonschema)."""
    import jsonschema
    schema = json.load(open(os.path.join(root, "schemas", "decision-log.schema.json")))
    v = jsonschema.Draft202012Validator(schema)
    for r in recs:
        errs = sorted(v.iter_errors(r), key=str)
        check(not errs, "record %r does not match the schema: %s" % (r.get("seq"), errs[:1]))


def start(args, tmp, op, n, count=1):
    """A server whose log's Nth `op` (and count-1 after it) fails with EIO."""
    srv = Server(args, tmp, workers=1)
    env = {"LD_PRELOAD": FIRST + ":" + SHIM if FIRST else SHIM, "PW_FAILIO_PATH": os.path.basename(srv.log), "PW_FAILIO_OP": op,
           "PW_FAILIO_N": str(n), "PW_FAILIO_COUNT": str(count)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        srv.start()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return srv


def segments(srv):
    """(the failed segments' records, the current segment's records)"""
    olds = sorted(glob.glob(srv.log + ".ioerror-*"))
    return olds, [log_records(p) for p in olds], log_records(srv.log)


def one_by_one(args, tmp, op):
    srv = start(args, tmp, op, 3)
    facts = json.loads(read(examples(args.root)[0]))
    c = srv.conn()
    got = {}
    for rid in range(1, 7):
        got[rid] = c.call("evaluate", {"facts": facts}, rid=rid)
    refused = [rid for rid, r in got.items() if "error" in r]
    check(refused == [3], "%s: the third evaluation (and only it) refused: %r" % (op, refused))
    check(got[3]["error"]["code"] == -32007, "%s: refused with %r" % (op, got[3]))
    h = c.call("health")["result"]
    check(h["status"] == "ok" and h["decision_log"]["ok"], "%s: health after the switch %r" % (op, h))
    c.close()
    check(srv.stop() == 0, "stop")
    names, olds, new = segments(srv)
    check(len(olds) == 1, "%s: one failed segment, got %r" % (op, names))
    check([r["request_id"] for r in olds[0]] == [1, 2], "%s: old segment holds %r"
          % (op, [r.get("request_id") for r in olds[0]]))
    ev = new[0].get("log_event", {})
    check(ev.get("kind") == "segment_failed" and ev.get("segment") == os.path.basename(names[0])
          and ev.get("last_seq") == 2 and ev.get("refused") == 1 and "Input/output error" in ev.get("error", ""),
          "%s: first record of the new segment: %r" % (op, new[0]))
    check([r.get("request_id") for r in new[1:]] == [3, 4, 5, 6], "%s: new segment holds %r"
          % (op, [r.get("request_id") for r in new[1:]]))
    check("refused" in new[1] and all("refused" not in r for r in new[2:]),
          "%s: only the refused record is marked: %r" % (op, [r.get("refused") for r in new]))
    check(new[0]["seq"] == 3, "%s: seq continues across segments: %r" % (op, [r["seq"] for r in new]))
    schema_check(args.root, olds[0] + new)


def test_fdatasync_error_new_segment(args, tmp):
    one_by_one(args, tmp, "fdatasync")


def test_write_error_new_segment(args, tmp):
    one_by_one(args, tmp, "write")


def test_pipelined_every_request_once(args, tmp):
    """Many requests in flight when the sync fails: every request is in the
    log exactly once, marked refused exactly when its client was refused."""
    srv = start(args, tmp, "fdatasync", 4)
    facts = read(examples(args.root)[0])
    c = srv.conn()
    n = 300
    c.send(b"".join(eval_request(facts, i) for i in range(n)))
    got = {}
    for _ in range(n):
        r = json.loads(c.line())
        got[r["id"]] = r
    # how many commits the 300 took depends on timing: one at a time until
    # the failing sync has happened, then one more that must succeed
    k = 0
    while not any("error" in r for r in got.values()) and k < 20:
        k += 1
        got["one-%d" % k] = c.call("evaluate", {"facts": json.loads(facts)}, rid="one-%d" % k)
    refused = {i for i, r in got.items() if "error" in r}
    check(refused and all(got[i]["error"]["code"] == -32007 for i in refused), "refusals: %r"
          % [got[i] for i in list(refused)[:2]])
    got["after"] = c.call("evaluate", {"facts": json.loads(facts)}, rid="after")
    check("result" in got["after"], "evaluate after: %r" % got["after"])
    c.close()
    check(srv.stop() == 0, "stop")
    names, olds, new = segments(srv)
    check(len(olds) == 1, "one failed segment: %r" % names)
    recs = [r for r in olds[0] + new if "log_event" not in r]
    ids = [r["request_id"] for r in recs]
    check(sorted(ids, key=str) == sorted(got, key=str),
          "every request once: %d records for %d requests" % (len(ids), len(got)))
    marked = {r["request_id"] for r in recs if "refused" in r}
    check(marked == refused, "marked %d, refused %d" % (len(marked), len(refused)))
    check(all(r["seq"] == olds[0][-1]["seq"] + 1 + k for k, r in enumerate(new)),
          "seq continues from the old segment")
    schema_check(args.root, olds[0] + new)
    print("     %d requests, %d refused and marked, %d in the old segment"
          % (n, len(refused), len(olds[0])))


def test_second_failure_fails_closed(args, tmp):
    """The new segment failing before any commit succeeds: fail closed."""
    srv = start(args, tmp, "fdatasync", 2, count=2)
    facts = json.loads(read(examples(args.root)[0]))
    c = srv.conn()
    check("result" in c.call("evaluate", {"facts": facts}, rid=1), "first")
    r = c.call("evaluate", {"facts": facts}, rid=2)
    check(r.get("error", {}).get("code") == -32007, "second refused: %r" % r)
    r = c.call("evaluate", {"facts": facts}, rid=3)
    check(r.get("error", {}).get("code") == -32007, "after the second failure, refused: %r" % r)
    h = c.call("health")["result"]
    check(h["status"] == "degraded" and not h["decision_log"]["ok"], "health %r" % h)
    c.close()
    srv.stop()
    names, olds, new = segments(srv)
    check(len(olds) == 1 and [r["request_id"] for r in olds[0]] == [1], "old segment %r" % names)


def test_torn_tail_events(args, tmp):
    """A torn tail found at start, and at a reopen (SIGUSR1), is an event
    record in the log (segment, offset, bytes, where they went)."""
    import signal
    import time
    facts = json.loads(read(examples(args.root)[0]))
    srv = Server(args, tmp, workers=1).start()
    c = srv.conn()
    check("result" in c.call("evaluate", {"facts": facts}, rid=1), "evaluate")
    c.close()
    check(srv.stop() == 0, "stop")
    whole = read(srv.log)
    with open(srv.log, "ab") as f:
        f.write(b'{"seq":2,"ti')
    srv = Server(args, tmp, workers=1).start()
    c = srv.conn()
    check("result" in c.call("evaluate", {"facts": facts}, rid=2), "evaluate after the repair")
    # a reopen onto a file with a torn tail of its own
    os.rename(srv.log, srv.log + ".0")
    with open(srv.log, "wb") as f:
        f.write(b'{"seq":2,"time":"x')
    srv.proc.send_signal(signal.SIGUSR1)
    t0 = time.time()
    while len(glob.glob(srv.log + ".torn-*")) < 2 and time.time() - t0 < 10:
        time.sleep(0.05)
    check("result" in c.call("evaluate", {"facts": facts}, rid=3), "evaluate after the reopen")
    c.close()
    check(srv.stop() == 0, "stop")
    first, second = log_records(srv.log + ".0"), log_records(srv.log)
    check(len(first) == 3 and len(second) == 2, "records: %d and %d" % (len(first), len(second)))
    for ev, at, cut, rec, rid in ((first[1], len(whole), 12, first[2], 2),
                                  (second[0], 0, 18, second[1], 3)):
        e = ev.get("log_event", {})
        check(e.get("kind") == "torn_tail" and e.get("segment") == os.path.basename(srv.log)
              and e.get("offset") == at and e.get("bytes") == cut
              and e.get("aside", "").startswith(os.path.basename(srv.log) + ".torn-"),
              "torn-tail event: %r" % ev)
        check(rec.get("request_id") == rid, "the evaluation after the event: %r" % rec)
    check(second[0]["seq"] == first[-1]["seq"] + 1, "seq continues across the reopen")
    schema_check(args.root, first + second)


if __name__ == "__main__":
    i = sys.argv.index("--shim")
    SHIM = os.path.abspath(sys.argv[i + 1])
    del sys.argv[i:i + 2]
    if not os.path.exists(SHIM):
        sys.exit("FAIL: the shim %s is missing" % SHIM)
    if "--preload-first" in sys.argv:
        i = sys.argv.index("--preload-first")
        FIRST = sys.argv[i + 1]
        del sys.argv[i:i + 2]
        for lib in FIRST.split(":"):
            if not os.path.isabs(lib) or not os.path.exists(lib):
                sys.exit("FAIL: the runtime %s to preload is missing" % lib)
    elif srvlib.sanitized(srvlib.parse_args().pathwise):
        sys.exit("FAIL: a sanitizer build needs --preload-first with its runtimes")
    srvlib.run([test_fdatasync_error_new_segment, test_write_error_new_segment,
                test_pipelined_every_request_once, test_second_failure_fails_closed,
                test_torn_tail_events])
