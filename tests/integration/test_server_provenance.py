#!/usr/bin/env python3
"""Provenance and reload (issue 11 "Provenance and reload", issue 12's
reload points): every plugin's and every base's id, version and sha256
wherever the protocol's appear (start line, health, reload replies,
decision-log records, `check`, the text header of `eval`); reload events
in the decision log with each file's name and sha256; the file watcher
reloads on plugin and base changes, and a good file put back clears a
refused reload's error (logged); a refusal lists every failing case,
untruncated, by file name, never a host path; reloads run the lint of
`pathwise check`; an installed binary finds `extends` bases in its own
share/pathwise/scripts."""
import hashlib
import json
import os
import shutil
import subprocess

from srvlib import Server, check, eval_request, log_records, read, run, wait_until

BASE_ID = "mrc_second_line"


def sha(path):
    return hashlib.sha256(read(path)).hexdigest()


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)   # one change event, never a half-written file


def local_files(args):
    d = os.path.join(args.root, "examples", "local-protocol")
    ext = os.path.join(d, "mrc_second_line_local.lua")
    plugin = os.path.join(d, "local_bev_surgery_56d.lua")
    check(os.path.exists(ext) and os.path.exists(plugin), "the local-protocol example is missing")
    return read(ext).decode(), read(plugin).decode()


def plugin_text(args, version):
    src = local_files(args)[1]
    hook = 'id = "local_bev_surgery_56d",'
    check(hook in src, "plugin id line not found")
    return src.replace(hook, hook + ' version = "%s",' % version, 1)


def base_version(args):
    src = read(os.path.join(args.root, "scripts", BASE_ID + ".lua")).decode()
    i = src.find('version = "')
    check(i > 0, "no version in the default protocol")
    return src[i + 11:src.index('"', i + 11)]


def index_case(args):
    return read(os.path.join(args.root, "examples", "index_case.json"))


def evaluate(srv, args, rid):
    c = srv.conn()
    try:
        c.send(eval_request(index_case(args), rid))
        r = json.loads(c.line())
    finally:
        c.close()
    check("result" in r, "evaluate failed: %r" % r)
    return r["result"]


def cli(args, *argv, env=None, exe=None):
    return subprocess.run([exe or args.pathwise, *argv], capture_output=True, timeout=120, env=env)


def validate_log(tmp, recs):
    """Every record (events too) against schemas/decision-log.schema.json."""
    tool = shutil.which("jsonschema")
    check(tool, "the jsonschema command is missing (Debian's python3-jsonschema)")
    schema = os.path.join(ARGS_ROOT[0], "schemas", "decision-log.schema.json")
    argv = [tool]
    for i, r in enumerate(recs):
        p = os.path.join(tmp, "rec%d.json" % i)
        with open(p, "w") as f:
            json.dump(r, f)
        argv += ["-i", p]
    p = subprocess.run(argv + [schema], capture_output=True, text=True, timeout=120)
    check(p.returncode == 0, "log records do not validate: %s %s" % (p.stdout[-1500:], p.stderr[-1500:]))


ARGS_ROOT = []


def no_host_path(tmp, text, what):
    check(tmp not in text, "%s names a host path (%s): %s" % (what, tmp, text[:400]))


def test_plugin_provenance_everywhere(args, tmp):
    """Two plugin files that differ in one number are told apart in the
    start line, health, reload replies and every decision-log record; the
    protocol's own file name stands beside them in health, `protocols` and
    reload replies."""
    ARGS_ROOT[:] = [args.root]
    ext_src = local_files(args)[0]
    ext = os.path.join(tmp, "ext.lua")
    plugin = os.path.join(tmp, "pl.lua")
    write(ext, ext_src)
    write(plugin, plugin_text(args, "1.0.0"))
    base = os.path.join(args.root, "scripts", BASE_ID + ".lua")
    srv = Server(args, tmp, ["--protocol", ext, "--plugin", plugin, "--no-watch"], workers=1).start()
    sha1 = sha(plugin)
    start = srv.stderr()
    for want in ('"local_bev_surgery_56d"', '"version":"1.0.0"', sha1, '"file":"pl.lua"', sha(base),
                 '"extends":{"id":"%s"' % BASE_ID):
        check(want in start, "start line lacks %s: %s" % (want, start[:600]))
    p = srv.health()["protocols"][0]
    check(p["plugins"] == [{"id": "local_bev_surgery_56d", "version": "1.0.0", "sha256": sha1, "file": "pl.lua"}],
          "health plugins: %r" % p.get("plugins"))
    check(p["extends"]["sha256"] == sha(base), "health extends: %r" % p.get("extends"))
    # the protocol's own file name (never a host path) beside its base and plugins
    check(p.get("file") == "ext.lua", "health protocol file: %r" % p)
    c = srv.conn()
    listed = c.call("protocols")
    c.close()
    res = listed.get("result")
    lp = (res[0] if isinstance(res, list) else res["protocols"][0]) if res else {}
    check(lp.get("file") == "ext.lua" and lp.get("plugins") == p["plugins"] and lp.get("extends") == p["extends"],
          "protocols method: %r" % listed)
    no_host_path(tmp, json.dumps(listed), "the protocols reply")
    no_host_path(tmp, json.dumps(srv.health()["protocols"]), "health's protocols")
    r1 = evaluate(srv, args, 1)
    write(plugin, plugin_text(args, "1.0.1"))   # one number changed
    sha2 = sha(plugin)
    check(sha1 != sha2, "the two plugin files are the same")
    c = srv.conn()
    rep = c.call("reload")
    c.close()
    check("result" in rep, "reload refused: %r" % rep)
    rp = rep["result"]["protocols"][0]["plugins"][0]
    check(rp["version"] == "1.0.1" and rp["sha256"] == sha2, "reload reply plugins: %r" % rp)
    check(rep["result"]["protocols"][0].get("file") == "ext.lua", "reload reply protocol file: %r" % rep)
    no_host_path(tmp, json.dumps(rep), "the reload reply")
    r2 = evaluate(srv, args, 2)
    check(r1["protocol"]["plugins"][0]["sha256"] == sha1 and r2["protocol"]["plugins"][0]["sha256"] == sha2,
          "results do not carry the plugin that decided")
    check(srv.stop() == 0, "serve did not exit 0")
    recs = log_records(srv.log, events=True)
    evals = [r for r in recs if r["method"] == "evaluate"]
    check(len(evals) == 2, "want 2 evaluation records: %r" % recs)
    for rec, (ver, h) in zip(evals, (("1.0.0", sha1), ("1.0.1", sha2))):
        pr = rec["protocol"]
        check(pr.get("plugins") == [{"id": "local_bev_surgery_56d", "version": ver, "sha256": h, "file": "pl.lua"}],
              "evaluation record's plugins: %r" % pr.get("plugins"))
        check(pr.get("extends") == {"id": BASE_ID, "version": base_version(args), "sha256": sha(base)},
              "evaluation record's base: %r" % pr.get("extends"))
        check(pr.get("file") == "ext.lua" and pr["sha256"] == sha(ext), "evaluation record's protocol: %r" % pr)
    check(evals[0]["protocol"] != evals[1]["protocol"], "the two plugins are not told apart in the log")
    events = [r for r in recs if r["method"] == "reload"]
    check(len(events) == 1 and events[0]["event"]["kind"] == "reload", "want one reload event: %r" % events)
    ev = events[0]["event"]
    files = {(f["file"], f["role"]): f["sha256"] for f in ev["files"]}
    check(files.get(("ext.lua", "protocol")) == sha(ext) and files.get(("pl.lua", "plugin")) == sha2,
          "reload event files: %r" % ev["files"])
    check(ev["protocols"][0]["plugins"][0]["sha256"] == sha2, "reload event protocols: %r" % ev["protocols"])
    no_host_path(tmp, read(srv.log).decode(), "the decision log")
    validate_log(tmp, recs)


def test_extends_base_everywhere(args, tmp):
    """The base's id, version and sha256 in check, eval's text header, the
    start line and health."""
    ext = os.path.join(tmp, "ext.lua")
    write(ext, local_files(args)[0])
    base = os.path.join(args.root, "scripts", BASE_ID + ".lua")
    h, ver = sha(base), base_version(args)
    out = cli(args, "check", ext)
    check(out.returncode == 0, "check failed: %s" % out.stderr.decode()[-800:])
    text = out.stdout.decode()
    check("extends %s %s" % (BASE_ID, ver) in text and h in text, "check output lacks the base: %s" % text[:600])
    out = cli(args, "eval", "--format", "text", "--protocol", ext, os.path.join(args.root, "examples", "index_case.json"))
    head = "\n".join(out.stdout.decode().splitlines()[:3])
    check(BASE_ID in head and ver in head and h in head, "eval's text header lacks the base: %s" % head)
    srv = Server(args, tmp, ["--protocol", ext], workers=1, log=False).start()
    check(h in srv.stderr() and '"extends":{"id":"%s"' % BASE_ID in srv.stderr(), "start line lacks the base")
    e = srv.health()["protocols"][0]["extends"]
    check(e == {"id": BASE_ID, "version": ver, "sha256": h}, "health extends: %r" % e)


def reload_error(srv):
    return srv.health()["reload"]["last_error"]


def test_watch_plugin_and_base(args, tmp):
    """The watcher reloads on plugin and base changes; a good file put back
    clears the refused reload's error, and the clearing is logged."""
    ext_src, _ = local_files(args)
    site = os.path.join(tmp, "site")
    base = os.path.join(site, BASE_ID + ".lua")
    base_src = read(os.path.join(args.root, "scripts", BASE_ID + ".lua")).decode()
    write(base, base_src)
    ext = os.path.join(tmp, "proto", "ext.lua")
    write(ext, ext_src)
    plugin = os.path.join(tmp, "plug", "pl.lua")
    good = plugin_text(args, "1.0.0")
    write(plugin, good)
    old = os.environ.get("PATHWISE_PATH")
    os.environ["PATHWISE_PATH"] = site   # the base comes from site/, not scripts/
    try:
        srv = Server(args, tmp, ["--protocol", ext, "--plugin", plugin], workers=1).start()
    finally:
        if old is None:
            del os.environ["PATHWISE_PATH"]
        else:
            os.environ["PATHWISE_PATH"] = old
    check(srv.health()["protocols"][0]["extends"]["sha256"] == sha(base), "the base was not taken from site/")
    check(reload_error(srv) is None, "an error before anything changed")
    # a plugin that raises: refused, by file name
    write(plugin, 'return { id = "local_bev_surgery_56d", check = function() error("broken plugin") end }\n')
    err = wait_until("the broken plugin's refusal", lambda: reload_error(srv))
    check("pl.lua" in err and "broken plugin" in err, "the refusal does not name the plugin: %s" % err[:400])
    no_host_path(tmp, err, "health's reload error")
    # the good plugin back: the error clears
    write(plugin, good)
    wait_until("the error to clear", lambda: reload_error(srv) is None)
    check("error cleared" in srv.stderr(), "the operator log does not say the error cleared")
    # the base changes: reloaded from the watched site/ directory
    write(base, base_src.replace('version = "%s"' % base_version(args), 'version = "1.0.99"', 1))
    wait_until("the base's reload",
             lambda: srv.health()["protocols"][0]["extends"]["version"] == "1.0.99")
    check(srv.health()["protocols"][0]["extends"]["sha256"] == sha(base), "health shows another base")
    # a broken base: refused by its file name; put back: cleared
    changed = read(base).decode()
    write(base, changed + "\nthis is not lua\n")
    err = wait_until("the broken base's refusal", lambda: reload_error(srv))
    check(BASE_ID + ".lua" in err, "the refusal does not name the base: %s" % err[:400])
    no_host_path(tmp, err, "health's reload error")
    write(base, changed)
    wait_until("the error to clear again", lambda: reload_error(srv) is None)
    # the plugin's error cleared by a reload (the first generation's digest
    # did not cover the base yet), the base's by the files alone: no reload
    check("the files on disk are again those that serve" in srv.stderr(),
          "the base put back did not clear the error without a reload")
    check(srv.stop() == 0, "serve did not exit 0")
    recs = log_records(srv.log, events=True)
    kinds = [r["event"]["kind"] for r in recs if r["method"] == "reload"]
    check(kinds.count("reload_refused") == 2 and kinds.count("error_cleared") == 2,
          "reload events: %r" % kinds)
    check("reload" in kinds, "no reload event for the base change: %r" % kinds)
    for r in recs:
        if r["method"] == "reload" and r["event"]["kind"] == "reload_refused":
            roles = {f["role"] for f in r["event"]["files"]}
            check({"protocol", "plugin"} <= roles, "refused event files: %r" % r["event"]["files"])
            check(all(f["sha256"] is None or len(f["sha256"]) == 64 for f in r["event"]["files"]), "bad sha256")
            check(all(f["sha256"] and len(f["sha256"]) == 64 for f in r["event"]["files"] if f["role"] == "protocol"),
                  "the protocol was read: its sha256 is given: %r" % r["event"]["files"])
    no_host_path(tmp, read(srv.log).decode(), "the decision log")
    ARGS_ROOT[:] = [args.root]
    validate_log(tmp, recs)


def cohort_fails(args, *argv):
    out = cli(args, "check", *argv)
    lines = (out.stdout + out.stderr).decode().splitlines()
    return [l for l in lines if l.startswith("FAIL built-in cohort case")]


def test_refusal_lists_every_failing_case(args, tmp):
    """A plugin, then a protocol, failing on many cohort cases: the reload
    reply lists each failing case (as `pathwise check` does), untruncated,
    naming the file at fault by its name; the operator's log has the path."""
    plugin = os.path.join(tmp, "bad.lua")
    proto = os.path.join(tmp, "p.lua")
    src = read(os.path.join(args.root, "scripts", BASE_ID + ".lua")).decode()
    hook = "local function evaluate(facts, out)\n"
    check(hook in src, "evaluate() not found in the protocol")
    write(proto, src)
    write(plugin, 'return { id = "bad", check = function(facts) end }\n')
    srv = Server(args, tmp, ["--protocol", proto, "--plugin", plugin, "--no-watch"], workers=1).start()
    boom = '  if facts.ecog == 1 then error("ecog one: " .. string.rep("x", 120)) end\n'
    for what, path, text, argv in (
            ("plugin", plugin, 'return { id = "bad", check = function(facts)\n' + boom + 'end }\n',
             [proto, "--plugin", plugin]),
            ("protocol", proto, src.replace(hook, hook + boom, 1), [proto])):
        good = read(path)
        write(path, text)
        want = cohort_fails(args, *argv)
        c = srv.conn()
        rep = c.call("reload")
        c.close()
        check("error" in rep, "reload accepted a %s that fails the cohort" % what)
        msg = rep["error"]["message"]
        cases = msg.count("built-in cohort case")
        check(len(want) >= 10 and cases == len(want),
              "%s: the reply lists %d failing cohort cases, check %d (%d bytes)" % (what, cases, len(want), len(msg)))
        check(len(msg) > 1024, "the reply is short: %d bytes" % len(msg))
        named = "(%s, in %s)" % (what, os.path.basename(path))
        check(named in msg and "facts:" not in msg, "the reply does not say %s, or lists facts: %s" % (named, msg[:300]))
        no_host_path(tmp, msg, "the reload reply")
        no_host_path(tmp, reload_error(srv), "health's reload error")
        check(path in srv.stderr(), "the operator's log lacks the full path")
        write(path, good.decode())
    check(srv.stop() == 0, "serve did not exit 0")
    recs = log_records(srv.log, events=True)
    refused = [r for r in recs if r["method"] == "reload" and r["event"]["kind"] == "reload_refused"]
    check(len(refused) == 2 and all(r["error"]["message"].count("built-in cohort case") >= 10 for r in refused),
          "refused events: %r" % [r.get("error", {}).get("message", "")[:100] for r in refused])
    ARGS_ROOT[:] = [args.root]
    validate_log(tmp, recs)


def test_reload_runs_the_lint(args, tmp):
    """A reload runs the same gates as `pathwise check`: the enum lint too."""
    proto = os.path.join(tmp, "p.lua")
    src = read(os.path.join(args.root, "scripts", BASE_ID + ".lua")).decode()
    hook = "local function evaluate(facts, out)\n"
    check(hook in src, "evaluate() not found in the protocol")
    write(proto, src)
    srv = Server(args, tmp, ["--protocol", proto, "--no-watch"], workers=1, log=False).start()
    lint = src.replace(hook, hook + '  if facts.primary.site == "colon_lft" then return end\n', 1)
    write(proto, lint)
    out = cli(args, "check", proto)
    check(out.returncode != 0 and b"FAIL lint" in out.stdout + out.stderr, "check does not refuse the lint")
    c = srv.conn()
    rep = c.call("reload")
    c.close()
    check("error" in rep and "colon_lft" in rep["error"]["message"],
          "reload did not run the lint: %r" % rep)
    no_host_path(tmp, rep["error"]["message"], "the reload reply")


def test_installed_binary_finds_its_base(args, tmp):
    """A binary in PREFIX/bin takes `extends` bases from
    PREFIX/share/pathwise/scripts, not from the source tree it was built in."""
    prefix = os.path.join(tmp, "prefix")
    exe = os.path.join(prefix, "bin", "pathwise")
    os.makedirs(os.path.dirname(exe))
    shutil.copy2(args.pathwise, exe)
    src = read(os.path.join(args.root, "scripts", BASE_ID + ".lua")).decode()
    installed = os.path.join(prefix, "share", "pathwise", "scripts", BASE_ID + ".lua")
    write(installed, src.replace('version = "%s"' % base_version(args), 'version = "7.7.7-installed"', 1))
    ext = os.path.join(tmp, "site", "ext.lua")
    write(ext, local_files(args)[0])
    env = {k: v for k, v in os.environ.items() if k not in ("PATHWISE_PATH", "PATHWISE_PROTOCOL")}
    out = cli(args, "check", ext, env=env, exe=exe)
    text = out.stdout.decode()
    check(out.returncode == 0, "installed check failed: %s" % out.stderr.decode()[-600:])
    check("extends %s 7.7.7-installed" % BASE_ID in text and sha(installed) in text,
          "the installed binary did not take the installed base: %s" % text[:500])
    cmd_srv = Server(args, tmp, ["--protocol", ext], workers=1, log=False)
    cmd_srv.cmd[0] = exe
    old = dict(os.environ)
    os.environ.pop("PATHWISE_PATH", None)
    try:
        cmd_srv.start()
    finally:
        os.environ.clear()
        os.environ.update(old)
    e = cmd_srv.health()["protocols"][0]["extends"]
    check(e["version"] == "7.7.7-installed" and e["sha256"] == sha(installed), "serve's base: %r" % e)


if __name__ == "__main__":
    run([test_plugin_provenance_everywhere, test_extends_base_everywhere, test_watch_plugin_and_base,
         test_refusal_lists_every_failing_case, test_reload_runs_the_lint, test_installed_binary_finds_its_base])
