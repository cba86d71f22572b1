"""CDS Hooks 2.0 over HTTP (issue 14): `pathwise serve --http PATH` driven
with `curl --unix-socket` as an EHR would, every response validated with
Debian's jsonschema command against docs/schema/cds-*.schema.json.

Covers: discovery; patient-view for the index case carried as FHIR;
order-sign proposing cetuximab for a RAS-unknown patient (critical, naming
the rule); an unknown antiemetic (200, not evaluated); absent vs null
prefetch (412 vs 200 with the facts unknown); feedback recorded in the
decision log (checksummed); the fhirAuthorization token never logged;
keep-alive and pipelining; clear 4xx answers; a patient the guideline does
not apply to ({"cards": []}).
"""
import base64
import json
import re
import time
import os
import socket
import subprocess
import sys
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__))))
from srvlib import Server, check, log_records, run  # noqa: E402

JSONSCHEMA = "/usr/bin/jsonschema"
AS_OF = "2026-06-01"
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
SECRET = "SECRET-ACCESS-TOKEN-4b1d"


def schema(args, name):
    return os.path.join(args.root, "docs", "schema", "cds-%s.schema.json" % name)


def validate(args, tmp, doc, name):
    check(os.path.exists(JSONSCHEMA), "the jsonschema command is missing (python3-jsonschema)")
    path = os.path.join(tmp, "doc.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    p = subprocess.run([JSONSCHEMA, "-i", path, schema(args, name)], capture_output=True, text=True)
    check(p.returncode == 0, "%s does not validate: %s %s" % (name, p.stdout[-2000:], p.stderr[-500:]))


def invariants(resp):
    """The spec's invariants beyond the schema."""
    def walk(x, path):
        if isinstance(x, dict):
            for k, v in x.items():
                if path.startswith("extension"):
                    continue
                check(v is not None and v != "" and v != [] and v != {},
                      "empty optional field %s.%s" % (path, k))
                walk(v, k if k == "extension" else path + "." + k)
        elif isinstance(x, list):
            for v in x:
                walk(v, path)
    for card in resp["cards"]:
        walk(card, "card")
        check(("suggestions" in card) == ("selectionBehavior" in card), "selectionBehavior iff suggestions")
        check(len(card["summary"]) < 140, "summary too long: %r" % card["summary"])
        for r in card.get("overrideReasons", []):
            check(r.get("display"), "override reason without display: %r" % r)


def http_call(opts, url, method, body=None, headers=(), what="curl"):
    """curl OPTS -X METHOD URL, the body (bytes) on stdin, sent as JSON
    unless headers name a Content-Type: (status code, answer body). Also
    used by test_nginx_example.py."""
    cmd = ["curl", "-s", "-S"] + list(opts) + ["-X", method, "-o", "-", "-w", "\n%{http_code}"]
    for h in headers:
        cmd += ["-H", h]
    if body is not None:
        if not any(h.lower().startswith("content-type:") for h in headers):
            cmd += ["-H", "Content-Type: application/json"]
        cmd += ["--data-binary", "@-"]
    p = subprocess.run(cmd + [url], input=body, capture_output=True)
    check(p.returncode == 0, "%s failed: %s" % (what, p.stderr))
    out, _, code = p.stdout.rpartition(b"\n")
    return int(code), out


def curl(srv, method, path, body=None, headers=()):
    return http_call(["--unix-socket", srv.http], "http://localhost" + path, method, body, ("Expect:",) + tuple(headers))


def start(args, tmp, name="s"):
    srv = Server(args, tmp, extra=(), name=name)
    srv.http = os.path.join(tmp, name + "h.sock")
    srv.cmd += ["--http", srv.http, "--http-no-auth"]
    srv.start()
    STARTED.append(srv)
    return srv


STARTED = []     # the servers the current test started
LOG_KINDS = set()   # (op, status) of every cds record seen, across the tests


def check_log(args, tmp):
    """Every record the test's servers wrote to the decision log validates
    against schemas/decision-log.schema.json (Debian's jsonschema)."""
    recs = []
    for srv in STARTED:
        srv.stop()
        check(srv.log, "a server started without a decision log: nothing of it can be checked")
        check(os.path.exists(srv.log), "the server wrote no decision log %s" % srv.log)
        mine = log_records(srv.log)
        check(mine, "no decision-log records in %s" % srv.log)
        recs += mine
    del STARTED[:]
    paths = []
    for i, rec in enumerate(recs):
        check(rec["method"] == "cds" and "cds" in rec, "not a cds record: %r" % rec)
        LOG_KINDS.add((rec["cds"]["op"], rec["cds"]["status"]))
        paths.append(os.path.join(tmp, "rec%d.json" % i))
        with open(paths[-1], "w") as f:
            json.dump(rec, f)
    p = subprocess.run([JSONSCHEMA] + sum((["-i", x] for x in paths), []) + [LOG_SCHEMA(args)],
                       capture_output=True, text=True)
    check(p.returncode == 0, "decision-log records do not validate: %s %s" % (p.stdout[-2000:], p.stderr[-500:]))


def LOG_SCHEMA(args):
    return os.path.join(args.root, "schemas", "decision-log.schema.json")


def logged(test):
    """test, then check_log on what its servers logged."""
    def run_and_check(args, tmp):
        del STARTED[:]
        test(args, tmp)
        check_log(args, tmp)
    run_and_check.__name__ = test.__name__
    return run_and_check


def test_log_kinds(args, tmp):
    """The tests above logged every kind of cds record, and the schema
    refuses a cds record without its cds member or with a decision missing."""
    want = {("discovery", 200), ("call", 200), ("call", 412), ("call", 404), ("feedback", 200)}
    check(want <= LOG_KINDS, "record kinds not seen (run the whole file): %s" % sorted(want - LOG_KINDS))
    base = {"seq": 1, "time": "2026-06-01T10:00:00.000000Z", "request_id": 1, "method": "cds",
            "peer": {"uid": 1, "gid": 1, "pid": 1}, "schema_version": 1, "engine": "0.1.0",
            "duration_us": 5, "crc32": "0123abcd"}
    good = dict(base, cds={"op": "discovery", "service": "", "status": 200})
    bad = {"no cds member": dict(base),
           "a call answered 200 without its decision": dict(base, cds={"op": "call", "service": "x", "status": 200}),
           "an evaluate record with a cds member": dict(good, method="evaluate"),
           "an unknown op": dict(base, cds={"op": "delete", "service": "", "status": 200})}
    for what, rec in [("good", good)] + sorted(bad.items()):
        path = os.path.join(tmp, "neg.json")
        with open(path, "w") as f:
            json.dump(rec, f)
        p = subprocess.run([JSONSCHEMA, "-i", path, LOG_SCHEMA(args)], capture_output=True, text=True)
        check((p.returncode == 0) == (what == "good"), "%s: %s by the schema" % (what, "refused" if p.returncode else "accepted"))


def prefetch_of(args, name="index_case.json"):
    """A colorectal bundle split as an EHR prefetches it: Patient, then one
    searchset per resource type."""
    with open(os.path.join(args.root, "tests", "data", "fhir", "colorectal", name)) as f:
        text = f.read()
    # an EHR's searchsets refer by Type/id: the bundle's urn:uuid fullUrls become that
    for e in json.loads(text)["entry"]:
        if e.get("fullUrl") and e["resource"].get("id"):
            text = text.replace('"%s"' % e["fullUrl"], '"%s/%s"' % (e["resource"]["resourceType"], e["resource"]["id"]))
    bundle = json.loads(text)
    keys = {"Condition": "conditions", "Observation": "observations", "Procedure": "procedures",
            "MedicationStatement": "medicationStatements", "MedicationRequest": "medicationRequests",
            "MedicationAdministration": "medicationAdministrations", "ServiceRequest": "serviceRequests"}
    pre = {k: {"resourceType": "Bundle", "type": "searchset", "entry": []} for k in keys.values()}
    for e in bundle["entry"]:
        r = e["resource"]
        if r["resourceType"] == "Patient":
            pre["patient"] = r
        else:
            pre[keys[r["resourceType"]]]["entry"].append({"resource": r})
    return pre


def hook_request(hook, pre, instance, drafts=None, selections=None):
    ctx = {"userId": "Practitioner/onc-1", "patientId": pre["patient"]["id"] if pre.get("patient") else "p1"}
    if drafts is not None:
        ctx["draftOrders"] = {"resourceType": "Bundle", "type": "collection",
                              "entry": [{"resource": d} for d in drafts]}
    if selections is not None:
        ctx["selections"] = selections
    return {"hook": hook, "hookInstance": instance, "context": ctx, "prefetch": pre,
            "fhirServer": "https://ehr.example/fhir",
            "fhirAuthorization": {"access_token": SECRET, "token_type": "Bearer", "expires_in": 300,
                                  "scope": "patient/*.read", "subject": "cds-service"},
            "extension": {"org.pathwise.as_of": AS_OF}}


def draft(rid, code, display):
    return {"resourceType": "MedicationRequest", "id": rid, "status": "draft", "intent": "order",
            "subject": {"reference": "Patient/x"},
            "medicationCodeableConcept": {"coding": [{"system": RX, "code": code, "display": display}]}}


def call(args, tmp, srv, service, req, want=200):
    body = json.dumps(req).encode()
    validate(args, tmp, req, "request")
    code, out = curl(srv, "POST", "/cds-services/" + service, body)
    check(code == want, "POST %s: HTTP %s (want %s): %s" % (service, code, want, out[:600]))
    doc = json.loads(out)
    if code == 200:
        validate(args, tmp, doc, "response")
        invariants(doc)
    return doc


def test_discovery_and_patient_view(args, tmp):
    srv = start(args, tmp)
    code, out = curl(srv, "GET", "/cds-services")
    check(code == 200, "discovery: %s" % code)
    disc = json.loads(out)
    validate(args, tmp, disc, "discovery")
    ids = sorted(s["id"] for s in disc["services"])
    check(ids == ["mrc_second_line-order-select", "mrc_second_line-order-sign",
                  "mrc_second_line-patient-view"], "services: %s" % ids)
    pre = prefetch_of(args)
    want = set(disc["services"][0]["prefetch"])
    check(want <= set(pre) | {"patient"}, "prefetch keys %s" % want)
    req = hook_request("patient-view", pre, "0d6f6f2e-7f0a-4c39-9d8c-000000000001")
    resp = call(args, tmp, srv, "mrc_second_line-patient-view", req)
    info = [c for c in resp["cards"] if c["indicator"] == "info"]
    check(len(info) == 1 and "FOLFIRI" in info[0]["summary"], "plan card: %s" % resp["cards"])
    check(info[0]["source"]["label"].startswith("Metastatic rectal cancer"), "source label")
    ext = resp["cards"][0]["extension"]
    check(ext["org.pathwise.result"]["pathway"] == "second_line_systemic", "full result in extension")
    check(len(ext["org.pathwise.protocol"]["sha256"]) == 64, "protocol sha256")
    warn = [c for c in resp["cards"] if c["indicator"] == "warning"]
    check(len(warn) == 1 and "molecular.kras" in warn[0]["detail"], "missing-facts card: %s" % warn)
    again = call(args, tmp, srv, "mrc_second_line-patient-view", req)
    check(again == resp, "the same request gives the same cards and ids")


def test_order_sign(args, tmp):
    srv = start(args, tmp)
    pre = prefetch_of(args)
    req = hook_request("order-sign", pre, "0d6f6f2e-7f0a-4c39-9d8c-000000000002",
                       drafts=[draft("mr-cetux", "318341", "cetuximab"),
                               draft("mr-ondan", "26225", "ondansetron 8 MG Oral Tablet")])
    resp = call(args, tmp, srv, "mrc_second_line-order-sign", req)
    crit = [c for c in resp["cards"] if c["indicator"] == "critical"]
    check(len(crit) == 1, "one critical card: %s" % resp["cards"])
    c = crit[0]
    check("egfr_requires_ras_wt" in c["summary"] and "egfr_requires_ras_wt" in c["detail"], "names the rule")
    check("Do not use EGFR inhibitors without confirming RAS wild-type status" in c["detail"], "guideline sentence")
    check(c["selectionBehavior"] == "at-most-one", "selectionBehavior")
    act = c["suggestions"][0]["actions"][0]
    check(act == {"type": "delete", "description": act["description"], "resourceId": "MedicationRequest/mr-cetux"},
          "delete the draft: %s" % act)
    ne = [x for x in resp["cards"] if "not evaluated" in x["summary"]]
    check(len(ne) == 1 and "MedicationRequest/mr-ondan" in ne[0]["detail"], "ondansetron not evaluated")
    # only the unknown antiemetic: still 200, no critical card
    req2 = hook_request("order-sign", pre, "0d6f6f2e-7f0a-4c39-9d8c-000000000003",
                        drafts=[draft("mr-ondan", "26225", "ondansetron 8 MG Oral Tablet")])
    resp2 = call(args, tmp, srv, "mrc_second_line-order-sign", req2)
    check(not [x for x in resp2["cards"] if x["indicator"] == "critical"], "no critical card")
    check(any("not evaluated" in x["summary"] for x in resp2["cards"]), "listed as not evaluated")


def test_prefetch_absent_null(args, tmp):
    srv = start(args, tmp)
    pre = prefetch_of(args)
    absent = dict(pre)
    del absent["observations"]
    out = call(args, tmp, srv, "mrc_second_line-patient-view",
               hook_request("patient-view", absent, "i-absent"), want=412)
    check(out["resourceType"] == "OperationOutcome" and "observations" in out["issue"][0]["diagnostics"], "412 names the key")
    null = dict(pre)
    null["observations"] = None
    resp = call(args, tmp, srv, "mrc_second_line-patient-view", hook_request("patient-view", null, "i-null"))
    warn = [c for c in resp["cards"] if c["indicator"] == "warning"]
    check(warn and "`observations` was null" in warn[0]["detail"], "null said on the card: %s" % warn)
    # the FOLFOX outcome comes from a disease-status Observation: now unknown
    check("`prior_regimens` unknown" in warn[0]["detail"], "observation facts unknown: %s" % warn[0]["detail"])
    paged = dict(pre)
    paged["conditions"] = dict(pre["conditions"], link=[{"relation": "next", "url": "https://ehr.example/fhir?page=2"}])
    resp = call(args, tmp, srv, "mrc_second_line-patient-view", hook_request("patient-view", paged, "i-paged"))
    check(any("`conditions` is paged" in c.get("detail", "") for c in resp["cards"]), "paged said on a card")


def test_not_applicable(args, tmp):
    srv = start(args, tmp)
    pre = {"patient": {"resourceType": "Patient", "id": "p9"},
           "conditions": {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {
               "resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p9"},
               "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "C34.90"}]}}}]},
           "observations": {"resourceType": "Bundle", "type": "searchset", "entry": []}}
    resp = call(args, tmp, srv, "mrc_second_line-patient-view", hook_request("patient-view", pre, "i-na"))
    check(resp == {"cards": []}, "not applicable: %s" % resp)


def test_feedback_logged(args, tmp):
    srv = start(args, tmp)
    pre = prefetch_of(args)
    req = hook_request("order-sign", pre, "i-fb", drafts=[draft("mr-cetux", "318341", "cetuximab")])
    resp = call(args, tmp, srv, "mrc_second_line-order-sign", req)
    card = [c for c in resp["cards"] if c["indicator"] == "critical"][0]
    fb = {"feedback": [{"card": card["uuid"], "outcome": "overridden",
                        "overrideReason": {"reason": card["overrideReasons"][0], "userComment": "tested elsewhere"},
                        "outcomeTimestamp": "2026-06-01T10:00:00Z"}]}
    validate(args, tmp, fb, "feedback")
    code, out = curl(srv, "POST", "/cds-services/mrc_second_line-order-sign/feedback", json.dumps(fb).encode())
    check(code == 200, "feedback: %s %s" % (code, out))
    srv.stop()
    with open(srv.log, "rb") as f:
        lines = f.read().splitlines()
    recs = [json.loads(x) for x in lines]
    for raw, rec in zip(lines, recs):   # every record checksummed like the others
        check(rec.get("crc32") and len(rec["crc32"]) == 8, "record has a crc32")
    fbr = [r for r in recs if r.get("cds", {}).get("op") == "feedback"]
    check(len(fbr) == 1 and fbr[0]["cds"]["feedback"][0]["card"] == card["uuid"], "feedback record: %s" % fbr)
    calls = [r for r in recs if r.get("cds", {}).get("op") == "call"]
    check(calls and calls[0]["blocked"], "the call's record has the engine fragment: %s" % calls)
    text = b"\n".join(lines)
    check(SECRET.encode() not in text, "the fhirAuthorization access token reached the decision log")
    check(SECRET.encode() not in open(srv.errpath, "rb").read(), "the access token reached stderr")


def raw(srv, data, timeout=10):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(srv.http)
    s.sendall(data)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except socket.timeout:
        pass
    s.close()
    return out


def test_http_framing(args, tmp):
    srv = start(args, tmp)
    # pipelined: two discoveries and a 404, answered in order, then close
    out = raw(srv, b"GET /cds-services HTTP/1.1\r\nHost: x\r\n\r\n"
                   b"GET /cds-services?x=1 HTTP/1.1\r\nHost: x\r\n\r\n"
                   b"GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    heads = re.findall(rb"HTTP/1\.1 [0-9]{3} [A-Za-z ]+(?=\r\n)", out)
    check(heads == [b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK", b"HTTP/1.1 404 Not Found"], "pipelining: %s" % heads)
    code, _ = curl(srv, "GET", "/cds-services/mrc_second_line-order-sign")
    check(code == 405, "GET on a service: %s" % code)
    code, body = curl(srv, "POST", "/cds-services/mrc_second_line-order-sign", b"{not json")
    check(code == 400 and b"OperationOutcome" in body, "malformed JSON: %s" % code)
    code, _ = curl(srv, "POST", "/cds-services/nope-patient-view", b"{}")
    check(code == 404, "unknown service: %s" % code)
    out = raw(srv, b"GET /cds-services HTTP/1.1\r\n" + b"X-A: " + b"a" * 20000 + b"\r\n\r\n")
    check(out.startswith(b"HTTP/1.1 431 "), "oversize header: %r" % out[:40])
    out = raw(srv, b"BREW /pot HTCPCP/1.0\r\n\r\n")
    check(out.startswith(b"HTTP/1.1 400 "), "garbage: %r" % out[:40])
    code, _ = curl(srv, "POST", "/cds-services/mrc_second_line-order-sign", b"[]",
                   headers=["Content-Type: text/plain"])
    check(code == 415, "content type: %s" % code)
    check(srv.health()["status"] == "ok", "the JSON-RPC socket still answers")


def trickle(sock, data, every=0.1, limit=6.0):
    """Send data a byte at a time, every `every` s, until the server answers
    or closes (or limit s pass); then read to EOF. Returns (bytes sent, answer)."""
    sock.settimeout(every)
    out, sent, t0 = b"", 0, time.time()
    while time.time() - t0 < limit:
        if sent < len(data):
            try:
                sock.sendall(data[sent:sent + 1])
                sent += 1
            except OSError:
                break
        try:
            chunk = sock.recv(65536)
            if not chunk:
                return sent, out
            out += chunk
        except socket.timeout:
            pass
        except ConnectionResetError:   # closed with our last bytes unread: the end, as EOF
            return sent, out
    sock.settimeout(10)
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            out += chunk
    except ConnectionResetError:
        pass
    except (socket.timeout, OSError):
        out += b"<still open>"
    return sent, out


def test_http_timeouts(args, tmp):
    """Slow headers (slowloris) and a slow body each get 408 and a close,
    under their own options; a keep-alive connection idle past
    --idle-timeout is closed without an answer, even if it trickles empty
    lines; a request slower than nothing but within the limits is served."""
    srv = Server(args, tmp, extra=["--idle-timeout", "1", "--http-header-timeout", "1500",
                                   "--http-body-timeout", "1500"])
    srv.http = os.path.join(tmp, "h.sock")
    srv.cmd += ["--http", srv.http, "--http-no-auth"]
    srv.start()
    STARTED.append(srv)

    def conn():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(srv.http)
        return s
    # slowloris: a header line that never ends, one byte every 100 ms
    s = conn()
    sent, out = trickle(s, b"GET /cds-services HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200)
    s.close()
    check(out.startswith(b"HTTP/1.1 408 ") and b"Connection: close" in out and out.endswith(b"}"),
          "slow headers: 408 and close: %r" % out[-300:])
    check(b"--http-header-timeout" in out, "the answer names the header timeout: %r" % out[-200:])
    # a slow body after quick headers: the body's own limit
    body = json.dumps({"feedback": []}).encode() + b" " * 200
    s = conn()
    s.sendall(b"POST /cds-services/mrc_second_line-order-sign/feedback HTTP/1.1\r\nHost: x\r\n"
              b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
    sent, out = trickle(s, body)
    s.close()
    check(out.startswith(b"HTTP/1.1 408 ") and b"--http-body-timeout" in out, "slow body: 408: %r" % out[-300:])
    check(0 < sent < len(body), "the body was cut off (%d of %d bytes sent)" % (sent, len(body)))
    # idle keep-alive: the answer, then a close with nothing more
    s = conn()
    s.sendall(b"GET /cds-services HTTP/1.1\r\nHost: x\r\n\r\n")
    sent, out = trickle(s, b"\r\n" * 40, every=0.15)
    s.close()
    heads = re.findall(rb"HTTP/1\.1 [0-9]{3}", out)
    check(heads == [b"HTTP/1.1 200"] and b"Connection: keep-alive" in out and not out.endswith(b"<still open>"),
          "idle keep-alive: one answer, then closed without another: %s %r" % (heads, out[-120:]))
    # slow, but within every limit: served
    s = conn()
    s.sendall(b"GET /cds-services HTTP/1.1\r\n")
    time.sleep(0.2)
    s.sendall(b"Host: x\r\nConnection: close\r\n\r\n")
    sent, out = trickle(s, b"")
    s.close()
    check(out.startswith(b"HTTP/1.1 200 "), "a request within the limits: %r" % out[:80])
    check(srv.health()["status"] == "ok", "the JSON-RPC socket still answers")
    p = subprocess.run([args.pathwise, "serve", "--help"], capture_output=True, text=True)
    check("--http-header-timeout MS" in p.stdout and "--http-body-timeout MS" in p.stdout, "--help documents them")


def test_worker_lost_logged(args, tmp):
    """A worker killed during a service call: 503, and the supervisor's
    record of the lost request names the cds request (op, service, status)."""
    with open(os.path.join(args.root, "scripts", "mrc_second_line.lua")) as f:
        src = f.read()
    hook = "local function applies(facts, out)\n"
    check(hook in src, "applies() not found in the protocol")
    proto = os.path.join(tmp, "p.lua")
    with open(proto, "w") as f:
        f.write(src.replace(hook, hook + '  if facts.patient_id == "spin" then while true do end end\n', 1))
    srv = Server(args, tmp, ["--protocol", proto, "--instructions", "100000000000000", "--timeout", "60000"],
                 workers=1)
    srv.http = os.path.join(tmp, "h.sock")
    srv.cmd += ["--http", srv.http, "--http-no-auth"]
    srv.start()
    STARTED.append(srv)
    pid = srv.health()["workers"]["pids"][0]
    pre = prefetch_of(args)
    pid_text = pre["patient"]["id"]   # the patient becomes "spin", references and all
    body = json.dumps(hook_request("patient-view", pre, "i-lost")).replace(
        '"%s"' % pid_text, '"spin"').replace("Patient/%s" % pid_text, "Patient/spin").encode()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(srv.http)
    s.sendall(b"POST /cds-services/mrc_second_line-patient-view HTTP/1.1\r\nHost: x\r\n"
              b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    time.sleep(0.5)
    os.kill(pid, 9)
    out = b""
    while b"\r\n\r\n" not in out or not out.endswith(b"}"):
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    s.close()
    check(out.startswith(b"HTTP/1.1 503 "), "a lost worker answers 503: %r" % out[:200])
    srv.stop()
    lost = [r for r in log_records(srv.log) if r.get("error", {}).get("kind") == "worker_crash"]
    check(len(lost) == 1 and lost[0]["method"] == "cds", "one worker_crash record: %r" % lost)
    check(lost[0].get("cds") == {"op": "call", "service": "mrc_second_line-patient-view", "status": 503},
          "the record names the cds request: %r" % lost[0])
    prot = lost[0].get("protocol", {})
    check(prot.get("id") == "mrc_second_line" and prot.get("file") == "p.lua" and len(prot.get("sha256", "")) == 64,
          "the record names the protocol the service belongs to, as a worker's would: %r" % prot)


def test_readme_exchange(args, tmp):
    """The README's curl exchange: the command as shown answers what is shown
    (each one-line "key":"value" of the shown answer is in the real one)."""
    with open(os.path.join(args.root, "README.md")) as f:
        text = f.read()
    m = re.search(r"```\n(\$ curl -s --unix-socket h\.sock .*?)\n```", text, re.S)
    check(m, "the README shows no curl exchange with the service")
    block = m.group(1)
    cmd_text, _, shown = block.partition("\n{")
    shown = "{" + shown
    srv = start(args, tmp)
    argv = ["curl"] + re.sub(r"\\\n", " ", cmd_text[2:]).split()[1:]
    argv = [srv.http if a == "h.sock" else a for a in argv]
    argv = [a.strip("'") for a in argv]
    argv = [a.replace("@examples/", "@" + os.path.join(args.root, "examples") + "/") for a in argv]
    joined = []
    for a in argv:   # re-join the quoted header split by white space
        if joined and joined[-1].startswith("Content-Type:") and not joined[-1].endswith("json"):
            joined[-1] += " " + a
        else:
            joined.append(a)
    p = subprocess.run(joined, capture_output=True)
    check(p.returncode == 0 and p.stdout.startswith(b'{"cards":['), "the README's curl: %s %s" % (p.stdout[:200], p.stderr))
    pairs = re.findall(r'"[A-Za-z]+":(?:"[^"\n]*"|true|false|[0-9]+)(?=[,}\]])', shown)
    pairs = [x for x in pairs if "..." not in x and "<" not in x]
    check(len(pairs) >= 10, "too few values shown to check: %s" % pairs)
    missing = [x for x in pairs if x.encode() not in p.stdout]
    check(not missing, "the README shows values the service does not answer: %s" % missing)


def tcp_listeners(port):
    """The local addresses listening on TCP port (from /proc/net/tcp and tcp6)."""
    out = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(name):
            continue
        for line in open(name).read().splitlines()[1:]:
            f = line.split()
            addr, p = f[1].split(":")
            if int(p, 16) == port and f[3] == "0A":   # LISTEN
                out.append(addr)
    return out


def test_http_port(args, tmp):
    """--http-port: the same service over TCP, on 127.0.0.1 only."""
    srv = Server(args, tmp)
    srv.http = os.path.join(tmp, "h.sock")
    srv.cmd += ["--http-port", "0", "--http-no-auth"]
    srv.start()
    STARTED.append(srv)
    m = re.search(r"CDS Hooks on http://127\.0\.0\.1:([0-9]+)/cds-services \(loopback only\)", srv.stderr())
    check(m, "the start message names the port: %s" % srv.stderr()[-600:])
    port = int(m.group(1))
    check(tcp_listeners(port) == ["0100007F"], "listens on 127.0.0.1 only: %s" % tcp_listeners(port))
    base = "http://127.0.0.1:%d" % port

    def tcurl(method, path, body=None):
        return http_call([], base + path, method, body, ("Expect:",), "curl over TCP")
    code, out = tcurl("GET", "/cds-services")
    check(code == 200, "discovery over TCP: %s" % code)
    validate(args, tmp, json.loads(out), "discovery")
    req = hook_request("patient-view", prefetch_of(args), "0d6f6f2e-7f0a-4c39-9d8c-000000000009")
    code, out = tcurl("POST", "/cds-services/mrc_second_line-patient-view", json.dumps(req).encode())
    check(code == 200, "patient-view over TCP: %s %s" % (code, out[:300]))
    resp = json.loads(out)
    validate(args, tmp, resp, "response")
    check(any(c["indicator"] == "info" and "FOLFIRI" in c["summary"] for c in resp["cards"]), "plan card over TCP")
    # the same answer as over the Unix socket of another server
    uni = start(args, tmp, "u")
    code, out2 = curl(uni, "POST", "/cds-services/mrc_second_line-patient-view", json.dumps(req).encode())
    check(code == 200 and json.loads(out2) == resp, "TCP and Unix socket answer alike")
    # keep-alive and pipelining over TCP
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /cds-services HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    heads = re.findall(rb"HTTP/1\.1 [0-9]{3} [A-Za-z ]+(?=\r\n)", data)
    check(heads == [b"HTTP/1.1 200 OK", b"HTTP/1.1 404 Not Found"], "pipelining over TCP: %s" % heads)
    check(srv.health()["status"] == "ok", "the JSON-RPC socket still answers")


def test_http_port_options(args, tmp):
    """--http-port is refused out of range, with peer filters, or without auth settings."""
    for extra, want in ((["--http-port", "65536", "--http-no-auth"], "out of range"),
                        (["--http-port", "0", "--http-no-auth", "--allow-uid", "0"], "peer credentials"),
                        (["--http-port", "0"], "--http-jwks")):
        p = subprocess.run([args.pathwise, "serve", "--socket", os.path.join(tmp, "x.sock")] + extra,
                           capture_output=True, text=True, timeout=30)
        check(p.returncode == 64 and want in p.stderr, "%s: exit %d, %s" % (extra, p.returncode, p.stderr))
    p = subprocess.run([args.pathwise, "serve", "--help"], capture_output=True, text=True)
    check("--http-port N" in p.stdout and "127.0.0.1" in p.stdout, "--help documents --http-port")


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def openssl(*a, data=None):
    p = subprocess.run(["openssl"] + list(a), input=data, capture_output=True)
    check(p.returncode == 0, "openssl %s: %s" % (" ".join(a), p.stderr[-300:]))
    return p.stdout


def der_to_raw(der, size=48):
    """An ECDSA DER signature (SEQUENCE of two INTEGERs) as JWS's r||s."""
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7f)
    out = b""
    for _ in range(2):
        check(der[i] == 2, "DER integer")
        n = der[i + 1]
        v = der[i + 2:i + 2 + n].lstrip(b"\0")
        out += v.rjust(size, b"\0")
        i += 2 + n
    return out


class Keys:
    """Test keys made with openssl at test time: an RSA (RS256) and a P-384 (ES384) key."""

    def __init__(self, tmp):
        self.rsa = os.path.join(tmp, "rsa.pem")
        self.ec = os.path.join(tmp, "ec.pem")
        self.other = os.path.join(tmp, "other.pem")
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", self.rsa)
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", self.other)
        openssl("ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", self.ec)
        mod = openssl("rsa", "-in", self.rsa, "-noout", "-modulus").decode().strip().split("=")[1]
        pub = openssl("ec", "-in", self.ec, "-pubout", "-outform", "DER")[-97:]
        check(pub[0] == 4, "uncompressed EC point")
        self.jwks = os.path.join(tmp, "jwks.json")
        with open(self.jwks, "w") as f:
            json.dump({"keys": [
                {"kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig", "n": b64u(bytes.fromhex(mod)), "e": "AQAB"},
                {"kty": "EC", "kid": "ec-1", "alg": "ES384", "use": "sig", "crv": "P-384",
                 "x": b64u(pub[1:49]), "y": b64u(pub[49:])}]}, f)

    def token(self, alg="RS256", kid="rsa-1", key=None, **claims):
        now = int(time.time())
        body = {"iss": "https://ehr.example", "aud": "https://cds.example/cds-services",
                "exp": now + 300, "iat": now, "jti": os.urandom(8).hex()}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        head = b64u(json.dumps({"alg": alg, "typ": "JWT", "kid": kid}).encode())
        data = (head + "." + b64u(json.dumps(body).encode())).encode()
        if alg == "RS256":
            sig = openssl("dgst", "-sha256", "-sign", key or self.rsa, data=data)
        else:
            sig = der_to_raw(openssl("dgst", "-sha384", "-sign", key or self.ec, data=data))
        return data.decode() + "." + b64u(sig)


def test_bearer_jwt(args, tmp):
    keys = Keys(tmp)
    srv = Server(args, tmp)
    srv.http = os.path.join(tmp, "h.sock")
    srv.cmd += ["--http", srv.http, "--http-jwks", keys.jwks, "--http-issuer", "https://ehr.example",
                "--http-audience", "https://cds.example/cds-services"]
    srv.start()
    check("WITHOUT AUTHENTICATION" not in srv.stderr(), "no warning with auth on")

    def get(tok):
        hdr = ["Authorization: Bearer " + tok] if tok is not None else []
        return curl(srv, "GET", "/cds-services", headers=hdr)[0]
    check(get(keys.token()) == 200, "a valid RS256 token")
    check(get(keys.token("ES384", "ec-1")) == 200, "a valid ES384 token")
    bad = {
        "no token": None,
        "not a JWT": "abc.def",
        "signed by another key": keys.token(key=keys.other),
        "expired": keys.token(exp=int(time.time()) - 3600),
        "issuer not allowed": keys.token(iss="https://evil.example"),
        "wrong audience": keys.token(aud="https://other.example"),
        "no jti": keys.token(jti=None),
        "unknown kid": keys.token(kid="nope"),
    }
    for what, tok in bad.items():
        check(get(tok) == 401, "%s: not refused" % what)
    tok = keys.token()
    check(get(tok) == 200 and get(tok) == 401, "a replayed jti is refused")
    # a service call with a bad token never reaches the workers
    code, out = curl(srv, "POST", "/cds-services/mrc_second_line-patient-view", b"{}",
                     headers=["Authorization: Bearer " + bad["expired"]])
    check(code == 401 and b"token expired" in out, "401 with the reason: %s %s" % (code, out))
    err = srv.stderr()
    check(err.count("CDS Hooks: refused") >= len(bad) + 1, "refusals logged: %s" % err[-1500:])
    check("token expired" in err and "signature does not verify" in err, "reasons logged")
    check(bad["expired"].split(".")[2] not in err, "the token itself is never logged")


if __name__ == "__main__":
    run([logged(t) for t in (test_discovery_and_patient_view, test_order_sign, test_prefetch_absent_null,
                             test_not_applicable, test_feedback_logged, test_http_framing, test_http_port,
                             test_http_timeouts, test_readme_exchange, test_worker_lost_logged)] +
        [test_bearer_jwt, test_http_port_options, test_log_kinds])
