#!/usr/bin/env python3
"""package.install: `cmake --install` into a temporary DESTDIR, then prove the
installed files suffice and are where GNUInstallDirs puts them.

- every file of the install layout is there (binary, default protocol,
  plugins, schemas, a man page per command, bash completion, systemd units,
  sysusers.d, tmpfiles.d, logrotate), and the unit names the installed binary;
- the installed binary, run from an unrelated directory, finds its default
  protocol beside it and answers byte for byte as the build tree's binary;
  a copy of the binary with no share/ next to it fails (66) naming the
  installed path: it never falls back to the source tree;
- PATHWISE_PATH (colon-separated, first match wins) and PATHWISE_PROTOCOL
  override the default, in that order of precedence;
- each man page documents every option its command's --help lists;
- bash completion completes commands, options and protocol files;
- `eval --from fhir` runs from the installed adapter (share/pathwise/plugins/
  fhir), as the build tree's binary does; a lone binary names the installed
  adapter path, and PATHWISE_ADAPTER overrides it.
"""
import argparse
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ARGS = None
FAILS = []


def check(cond, msg):
    if not cond:
        FAILS.append(msg)
        print("FAIL:", msg)


def run(argv, **kw):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATHWISE_")}
    env.update(kw.pop("env", {}))
    return subprocess.run(argv, capture_output=True, env=env, timeout=120, **kw)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


COMMANDS = ["eval", "facts", "check", "rules", "serve", "client", "batch", "cohort", "diff"]


def expected_files(prefix, sysconf):
    p = prefix.lstrip("/")
    files = ["bin/pathwise", "share/pathwise/scripts/mrc_second_line.lua",
             "share/pathwise/plugins/local_bev_surgery_60d.lua",
             "share/pathwise/plugins/local_brain_mets_mdt.lua",
             "share/bash-completion/completions/pathwise",
             "lib/systemd/system/pathwise.service", "lib/systemd/system/pathwise.socket",
             "lib/sysusers.d/pathwise.conf", "lib/tmpfiles.d/pathwise.conf",
             "share/doc/pathwise/LICENSE", "share/doc/pathwise/NEWS.md",
             "share/man/man1/pathwise.1.gz"]
    files += ["share/man/man1/pathwise-%s.1.gz" % c for c in COMMANDS]
    return [os.path.join(p, f) for f in files] + [os.path.join(sysconf.lstrip("/"), "logrotate.d/pathwise")]


def test_layout(dest, prefix):
    sysconf = "/etc" if prefix == "/usr" else os.path.join(prefix, "etc")
    for f in expected_files(prefix, sysconf):
        check(os.path.isfile(os.path.join(dest, f)), "not installed: /" + f)
    schemas = os.path.join(dest, prefix.lstrip("/"), "share/pathwise/schemas")
    for name in ("result", "rpc", "decision-log", "facts"):
        check(os.path.isfile(os.path.join(schemas, name + ".schema.json")), "not installed: %s.schema.json" % name)
    unit = open(os.path.join(dest, prefix.lstrip("/"), "lib/systemd/system/pathwise.service")).read()
    check(re.search(r"^ExecStart=%s/bin/pathwise serve" % re.escape(prefix), unit, re.M) is not None,
          "the unit does not start %s/bin/pathwise" % prefix)
    check("@" not in unit, "unsubstituted @VAR@ in the unit")


def test_runs_from_install(dest, prefix, tmp):
    binary = os.path.join(dest, prefix.lstrip("/"), "bin", "pathwise")
    facts = os.path.join(tmp, "case.json")
    shutil.copy(os.path.join(ARGS.root, "examples", "index_case.json"), facts)
    elsewhere = tempfile.mkdtemp(dir=tmp)
    want = run([os.path.join(ARGS.build, "pathwise"), "eval", facts]).stdout
    p = run([binary, "eval", facts], cwd=elsewhere)
    check(p.returncode == 0, "installed eval exit %d: %s" % (p.returncode, p.stderr))
    check(p.stdout == want and want, "installed eval differs from the build tree's")
    installed = os.path.join(dest, prefix.lstrip("/"), "share/pathwise/scripts/mrc_second_line.lua")
    check(json.loads(p.stdout)["protocol"]["sha256"] == sha256(installed), "not the installed protocol")
    p = run([binary, "check", installed], cwd=elsewhere)
    check(p.returncode == 0, "installed check exit %d: %s" % (p.returncode, p.stderr))
    # a lone copy of the binary: no share/ beside it, and no source tree fallback
    lone = os.path.join(tempfile.mkdtemp(dir=tmp), "bin")
    os.makedirs(lone)
    shutil.copy(binary, lone)
    p = run([os.path.join(lone, "pathwise"), "eval", facts], cwd=elsewhere)
    check(p.returncode == 66, "lone binary: exit %d, want 66" % p.returncode)
    check(b"share/pathwise/scripts/mrc_second_line.lua" in p.stderr and ARGS.root.encode() not in p.stderr,
          "lone binary does not name the installed path: %r" % p.stderr)
    return binary, facts, elsewhere


def test_fhir_from_install(dest, prefix, tmp):
    """eval --from fhir finds the installed adapter beside the binary."""
    binary = os.path.join(dest, prefix.lstrip("/"), "bin", "pathwise")
    src = os.path.join(ARGS.root, "tests", "data", "fhir", "colorectal", "index_case.json")
    check(os.path.isfile(src), "missing test bundle " + src)
    bundle = os.path.join(tmp, "bundle.json")
    shutil.copy(src, bundle)
    elsewhere = tempfile.mkdtemp(dir=tmp)
    argv = ["eval", "--from", "fhir", "--as-of", "2026-06-01", "--format", "json", bundle]
    want = run([os.path.join(ARGS.build, "pathwise")] + argv).stdout
    p = run([binary] + argv, cwd=elsewhere)
    check(p.returncode == 0, "installed eval --from fhir exit %d: %s" % (p.returncode, p.stderr))
    check(p.stdout == want and want, "installed eval --from fhir differs from the build tree's")
    fhir = os.path.join(dest, prefix.lstrip("/"), "share/pathwise/plugins/fhir")
    if p.returncode == 0:
        r = json.loads(p.stdout)
        check(r["input"]["from"] == "fhir" and r["recommendations"], "no FHIR result from the installed binary")
    # a lone copy of the binary: names the installed adapter, never the source tree's
    lone = os.path.join(tempfile.mkdtemp(dir=tmp), "bin")
    os.makedirs(lone)
    shutil.copy(binary, lone)
    p = run([os.path.join(lone, "pathwise")] + argv, cwd=elsewhere,
            env={"PATHWISE_PROTOCOL": os.path.join(ARGS.root, "scripts", "mrc_second_line.lua")})
    check(p.returncode != 0, "lone binary evaluated FHIR without an adapter")
    check(b"share/pathwise/plugins/fhir/adapter.lua" in p.stderr and
          os.path.join(ARGS.root, "plugins").encode() not in p.stderr,
          "lone binary does not name the installed adapter: %r" % p.stderr)
    # PATHWISE_ADAPTER overrides the installed one
    p = run([os.path.join(lone, "pathwise")] + argv, cwd=elsewhere,
            env={"PATHWISE_PROTOCOL": os.path.join(ARGS.root, "scripts", "mrc_second_line.lua"),
                 "PATHWISE_ADAPTER": os.path.join(fhir, "adapter.lua")})
    check(p.returncode == 0 and p.stdout == want, "PATHWISE_ADAPTER was not used: %r" % p.stderr)


def test_overrides(binary, facts, tmp):
    variant = os.path.join(ARGS.root, "examples", "local-protocol", "mrc_second_line_local.lua")
    site = tempfile.mkdtemp(dir=tmp)
    shutil.copy(variant, os.path.join(site, "mrc_second_line.lua"))
    empty = tempfile.mkdtemp(dir=tmp)
    p = run([binary, "eval", facts], env={"PATHWISE_PATH": "%s:%s::/nonexistent" % (empty, site)})
    check(p.returncode == 0 and json.loads(p.stdout)["protocol"]["sha256"] == sha256(variant),
          "PATHWISE_PATH: the site protocol was not used (%r)" % p.stderr)
    default = os.path.join(ARGS.root, "scripts", "mrc_second_line.lua")
    p = run([binary, "eval", facts], env={"PATHWISE_PATH": site, "PATHWISE_PROTOCOL": default})
    check(p.returncode == 0 and json.loads(p.stdout)["protocol"]["sha256"] == sha256(default),
          "PATHWISE_PROTOCOL does not win over PATHWISE_PATH")
    p = run([binary, "eval", facts], env={"PATHWISE_PATH": empty})
    check(p.returncode == 0, "PATHWISE_PATH without a match must fall back to the installed protocol")


def long_options(help_text):
    return set(re.findall(r"(?:^|[\s,])(--[a-z][a-z0-9-]*)", help_text))


def test_man_pages(dest, prefix, binary):
    mandir = os.path.join(dest, prefix.lstrip("/"), "share/man/man1")
    for cmd in [None] + COMMANDS:
        page = os.path.join(mandir, "pathwise%s.1.gz" % ("-" + cmd if cmd else ""))
        if not os.path.isfile(page):
            continue  # reported by test_layout
        roff = gzip.open(page, "rt").read()
        title = "PATHWISE%s" % ("-" + cmd.upper() if cmd else "")
        check(re.search(r'^\.TH %s "1"' % re.escape(title), roff, re.M) is not None, page + ": no .TH " + title)
        helptext = run([binary] + ([cmd] if cmd else []) + ["--help"]).stdout.decode()
        plain = roff.replace("\\-", "-").replace("\\fB", "").replace("\\fR", "").replace("\\fI", "")
        for opt in long_options(helptext):
            check(opt in plain, "%s: option %s of --help is missing" % (os.path.basename(page), opt))
    check("PATHWISE_PATH" in gzip.open(os.path.join(mandir, "pathwise.1.gz"), "rt").read(),
          "pathwise.1 lacks PATHWISE_PATH")


def complete(binary_dir, words, cwd):
    script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); '
              '_pathwise; printf "%s\\n" "${COMPREPLY[@]}"')
    env = {"PATH": binary_dir + ":" + os.environ.get("PATH", "")}
    p = run(["bash", "-c", script, "bash", ARGS.completion] + words, env=env, cwd=cwd)
    return [x for x in p.stdout.decode().split("\n") if x]


def test_completion(binary, tmp):
    bindir = os.path.dirname(binary)
    work = tempfile.mkdtemp(dir=tmp)
    for n in ("site.lua", "other.lua", "case.json", "cohort.jsonl"):
        open(os.path.join(work, n), "w").close()
    check(complete(bindir, ["pathwise", "ba"], work) == ["batch"], "complete 'ba'")
    check(set(complete(bindir, ["pathwise", ""], work)) >= set(COMMANDS), "complete the commands")
    check("--protocol" in complete(bindir, ["pathwise", "eval", "--pro"], work), "complete eval --pro")
    check("--jobs" in complete(bindir, ["pathwise", "batch", "--j"], work), "complete batch --j")
    check(sorted(complete(bindir, ["pathwise", "eval", "--protocol", ""], work)) == ["other.lua", "site.lua"],
          "complete protocol files: %r" % complete(bindir, ["pathwise", "eval", "--protocol", ""], work))
    check(complete(bindir, ["pathwise", "check", ""], work) == ["other.lua", "site.lua"] or
          sorted(complete(bindir, ["pathwise", "check", ""], work)) == ["other.lua", "site.lua"],
          "complete check PROTOCOL")
    check(complete(bindir, ["pathwise", "batch", ""], work) == ["cohort.jsonl"], "complete batch COHORT")
    check(sorted(complete(bindir, ["pathwise", "eval", "-f", ""], work)) == ["json", "text"], "complete --format")


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--cmake", default="cmake")
    ARGS = ap.parse_args()
    ARGS.completion = os.path.join(ARGS.root, "completion", "pathwise.bash")
    with tempfile.TemporaryDirectory() as tmp:
        dest = os.path.join(tmp, "dest")
        p = run([ARGS.cmake, "--install", ARGS.build], env={"DESTDIR": dest})
        if p.returncode != 0:
            print(p.stdout.decode(), p.stderr.decode())
            sys.exit("cmake --install failed")
        test_layout(dest, ARGS.prefix)
        binary, facts, _ = test_runs_from_install(dest, ARGS.prefix, tmp)
        test_overrides(binary, facts, tmp)
        test_fhir_from_install(dest, ARGS.prefix, tmp)
        test_man_pages(dest, ARGS.prefix, binary)
        test_completion(binary, tmp)
    if FAILS:
        sys.exit("%d checks failed" % len(FAILS))
    print("ok")


if __name__ == "__main__":
    main()
