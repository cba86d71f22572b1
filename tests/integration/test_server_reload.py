#!/usr/bin/env python3
"""pathwise serve: hot reload under load (the reload method, SIGHUP, a
changed protocol file) loses no request; a broken protocol, or one whose
example cases fail, is refused while the old one keeps serving."""
import json
import os
import shutil
import signal
import time

from srvlib import Load, Server, check, examples, read, run


def versions(srv):
    return [p["version"] for p in srv.call("protocols")["result"]]


def wait_version(srv, v, timeout=20):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if versions(srv) == [v]:
            return
        time.sleep(0.05)
    raise AssertionError("protocol version %s never loaded (have %s)" % (v, versions(srv)))


def test_reload_under_load(args, tmp):
    src = read(os.path.join(args.root, "scripts", "mrc_second_line.lua")).decode()
    check('version = "1.0.0",' in src, "protocol version line not found")
    proto = os.path.join(tmp, "p.lua")
    with open(proto, "w") as f:
        f.write(src)
    srv = Server(args, tmp, ["--protocol", proto]).start()
    facts = read(examples(args.root)[0])
    with Load(srv, facts) as load:
        load.wait_for(200)
        # 1. the reload method
        r = srv.call("reload")
        check(r.get("result", {}).get("reloaded") is True, "reload method: %r" % r)
        gen1 = r["result"]["generation"]
        load.wait_for(200)
        # 2. SIGHUP
        srv.proc.send_signal(signal.SIGHUP)
        t0 = time.time()
        while srv.health()["workers"]["generation"] == gen1 and time.time() - t0 < 20:
            time.sleep(0.05)
        check(srv.health()["workers"]["generation"] > gen1, "SIGHUP did not reload")
        load.wait_for(200)
        # 3. the file changes on disk (written in place, then replaced by rename)
        with open(proto, "w") as f:
            f.write(src.replace('version = "1.0.0",', 'version = "1.0.1",', 1))
        wait_version(srv, "1.0.1")
        load.wait_for(200)
        tmpname = proto + ".new"
        with open(tmpname, "w") as f:
            f.write(src.replace('version = "1.0.0",', 'version = "1.0.2",', 1))
        os.rename(tmpname, proto)
        wait_version(srv, "1.0.2")
        load.wait_for(200)
        # 4. a broken protocol is refused; the old one keeps serving
        with open(proto, "w") as f:
            f.write(src.replace("local examples = {", "local examples = {{{", 1))
        r = srv.call("reload")
        check(r.get("error", {}).get("code") == -32012, "broken protocol accepted: %r" % r)
        check("p.lua" in r["error"]["message"], "error names the file: %r" % r["error"])
        check(versions(srv) == ["1.0.2"], "old protocol replaced by a broken one")
        check(srv.health()["reload"]["last_error"], "health does not report the reload error")
        load.wait_for(200)
        # 5. a protocol whose declared examples fail is refused too
        bad = src.replace('version = "1.0.0",', 'version = "9.9.9",', 1).replace(
            "expect = {\n      applicable = true,", "expect = {\n      applicable = false,", 1)
        check(bad.count("9.9.9") == 1 and "applicable = false" in bad, "could not make a bad example")
        with open(proto, "w") as f:
            f.write(bad)
        r = srv.call("reload")
        check(r.get("error", {}).get("code") == -32012 and "example" in r["error"]["message"],
              "protocol with failing examples accepted: %r" % r)
        check(versions(srv) == ["1.0.2"], "old protocol replaced by one failing its examples")
        load.wait_for(200)
        # and a good one is accepted again
        with open(proto, "w") as f:
            f.write(src.replace('version = "1.0.0",', 'version = "1.0.3",', 1))
        r = srv.call("reload")
        check(r.get("result", {}).get("reloaded") is True, "reload after a refusal: %r" % r)
        check(versions(srv) == ["1.0.3"], "new version not serving")
        load.wait_for(300)
    check(not load.errors, "%d requests failed under reload, first: %r"
          % (len(load.errors), load.errors[:3]))
    check(load.ok > 2000, "too few requests under load: %d" % load.ok)
    check({"1.0.0", "1.0.1", "1.0.2", "1.0.3"} <= load.versions,
          "versions served: %r" % load.versions)
    check("9.9.9" not in load.versions, "a refused protocol served requests")
    st = srv.call("stats")["result"]
    check(st["workers"]["crashed"] == 0, "workers crashed during reload: %r" % st["workers"])
    check(srv.stop() == 0, "exit status")


def test_start_with_broken_protocol(args, tmp):
    proto = os.path.join(tmp, "bad.lua")
    with open(proto, "w") as f:
        f.write("return {")
    srv = Server(args, tmp, ["--protocol", proto]).start(wait=False)
    rc = srv.proc.wait(30)
    check(rc == 78, "exit %d for a broken protocol (wanted 78): %s" % (rc, srv.stderr()))
    check("bad.lua" in srv.stderr(), "the error names the file: %s" % srv.stderr())
    check(not os.path.exists(srv.sock), "socket left behind")
    srv = Server(args, tmp, ["--protocol", os.path.join(tmp, "missing.lua")], name="m")
    rc = srv.start(wait=False).proc.wait(30)
    check(rc == 66, "exit %d for a missing protocol (wanted 66)" % rc)


def test_reload_runs_the_strict_check(args, tmp):
    """A reload runs the examples check of `pathwise check`, as strict: an
    expect key misspelled, or an id that no protocol can produce, refuses
    the new sources and the loaded ones keep serving."""
    src = read(os.path.join(args.root, "scripts", "mrc_second_line.lua")).decode()
    proto = os.path.join(tmp, "p.lua")
    with open(proto, "w") as f:
        f.write(src)
    srv = Server(args, tmp, ["--protocol", proto, "--no-watch"]).start()
    check(versions(srv) == ["1.0.0"], "protocol not serving: %r" % versions(srv))
    good = 'recommend = { "FOLFIRI+bevacizumab", "ras_testing"'
    bad_not = 'not_recommend = { "palliative_rt_inguinal",'
    check(src.count(good) == 1 and src.count(bad_not) == 1, "example lines not found")
    for what, old, new in (
            ("misspelled expect key", good, good.replace("recommend", "recomend", 1)),
            ("unknown id", bad_not, 'not_recommend = { "NOT_AN_ID", "palliative_rt_inguinal",')):
        bad = src.replace('version = "1.0.0",', 'version = "9.9.9",', 1).replace(old, new, 1)
        check(bad != src and new in bad, "could not make the bad example (%s)" % what)
        with open(proto, "w") as f:
            f.write(bad)
        r = srv.call("reload")
        check(r.get("error", {}).get("code") == -32012 and "example" in r["error"]["message"],
              "%s accepted on reload: %r" % (what, r))
        check(versions(srv) == ["1.0.0"], "%s replaced the loaded protocol" % what)
    r = srv.call("evaluate", {"facts": json.loads(read(examples(args.root)[0]))})
    check("result" in r, "the loaded protocol stopped serving: %r" % r)
    check(srv.stop() == 0, "exit status")


if __name__ == "__main__":
    run([test_reload_under_load, test_start_with_broken_protocol,
         test_reload_runs_the_strict_check])
