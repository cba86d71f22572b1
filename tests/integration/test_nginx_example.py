"""examples/nginx/pathwise-cds.conf stays correct for `pathwise serve --http`:
the upstream is the Unix socket its header names, every proxied location
speaks HTTP/1.1 with keep-alive to pathwise, the locations and methods are
the service's routes (GET /cds-services, POST /cds-services/{id} and
.../feedback), the body limit is pathwise's (--max-line less 4 KiB) and the
read timeout outlasts --timeout + --grace (both from `serve --help`). With
an nginx binary on the machine, nginx runs it (test certificates made with
openssl, a free loopback port, the socket of a test server) and curl gets
discovery and a service call through it over TLS (test_nginx_proxies fails
where nginx is missing; ctest runs it only where configure found nginx)."""
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import json  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402
from srvlib import Server, check, run  # noqa: E402
from test_cds_hooks import http_call  # noqa: E402


def conf_text(args):
    path = os.path.join(args.root, "examples", "nginx", "pathwise-cds.conf")
    check(os.path.exists(path), "missing: %s" % path)
    with open(path) as f:
        return f.read()


def strip_comments(text):
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def blocks(text, head):
    """The bodies of the blocks whose header matches the regex head."""
    out = []
    for m in re.finditer(head + r"\s*\{", text):
        depth, i = 1, m.end()
        while depth:
            check(i < len(text), "unbalanced braces after %r" % m.group(0))
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        out.append((m.group(0), text[m.end():i - 1]))
    return out


def help_default(args, option):
    if not hasattr(args, "serve_help"):   # run `serve --help` once
        args.serve_help = subprocess.run([args.pathwise, "serve", "--help"], capture_output=True, text=True).stdout
    m = re.search(r"--%s .*?\(default ([0-9]+)" % option, args.serve_help, re.S)
    check(m, "serve --help gives no default for --%s" % option)
    return int(m.group(1))


def test_structure(args, tmp):
    raw = conf_text(args)
    text = strip_comments(raw)
    check(text.count("{") == text.count("}"), "unbalanced braces")
    m = re.search(r"`pathwise serve --http (\S+)`", raw)
    check(m, "the header names the --http socket")
    sock = m.group(1)
    ups = blocks(text, r"upstream\s+(\w+)")
    check(len(ups) == 1, "one upstream: %s" % ups)
    name = re.match(r"upstream\s+(\w+)", ups[0][0]).group(1)
    check(re.search(r"server\s+unix:%s;" % re.escape(sock), ups[0][1]), "the upstream is unix:%s" % sock)
    check(re.search(r"keepalive\s+[0-9]+;", ups[0][1]), "keepalive connections to pathwise")
    locs = {re.sub(r"\s+", " ", h[:-1].strip()): body for h, body in blocks(text, r"location\s+[^{]+")}
    want = {"location = /cds-services": "GET", "location /cds-services/": "POST"}
    lim = help_default(args, "timeout") + help_default(args, "grace")
    for loc, method in want.items():
        check(loc in locs, "no %s: %s" % (loc, sorted(locs)))
        body = locs[loc]
        check(re.search(r"limit_except\s+%s\s*\{\s*deny all;\s*\}" % method, body), "%s: only %s" % (loc, method))
        check(re.search(r"proxy_pass\s+http://%s;" % name, body), "%s: proxy_pass to the upstream" % loc)
        check(re.search(r"proxy_http_version\s+1\.1;", body), "%s: HTTP/1.1 to pathwise" % loc)
        check(re.search(r'proxy_set_header\s+Connection\s+"";', body), "%s: keep-alive (Connection \"\")" % loc)
        t = re.search(r"proxy_read_timeout\s+([0-9]+)s;", body)
        check(t and int(t.group(1)) * 1000 > lim, "%s: proxy_read_timeout above %d ms" % (loc, lim))
    check(all("proxy_pass" not in b for l, b in locs.items() if l not in want), "only the service's routes are proxied")
    m = re.search(r"client_max_body_size\s+([0-9]+)k;", text)
    body_limit = help_default(args, "max-line") - 4096
    check(m and int(m.group(1)) * 1024 == body_limit, "client_max_body_size is %d bytes (--max-line - 4096)" % body_limit)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_nginx_proxies(args, tmp):
    # PW_NGINX: the nginx configure found (ctest registers this test only then)
    nginx = os.environ.get("PW_NGINX") or shutil.which("nginx") or "/usr/sbin/nginx"
    check(os.access(nginx, os.X_OK), "nginx is not installed (%s): run test_structure alone where it is not" % nginx)
    raw = conf_text(args)
    sock = re.search(r"`pathwise serve --http (\S+)`", raw).group(1)
    srv = Server(args, tmp, log=False)
    mine = os.path.join(tmp, "cds.sock")
    srv.cmd += ["--http", mine, "--http-no-auth"]
    srv.start()
    cert, key = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=cds.example.org",
                        "-days", "1", "-keyout", key, "-out", cert], capture_output=True)
    check(p.returncode == 0, "openssl req: %s" % p.stderr[-300:])
    port = free_port()
    conf = raw.replace("/etc/ssl/certs/cds.example.org.pem", cert).replace(
        "/etc/ssl/private/cds.example.org.key", key).replace("listen 443 ssl", "listen 127.0.0.1:%d ssl" % port)
    conf = conf.replace("unix:%s;" % sock, "unix:%s;" % mine)
    main = os.path.join(tmp, "nginx.conf")
    with open(os.path.join(tmp, "cds.conf"), "w") as f:
        f.write(conf)
    with open(main, "w") as f:
        # the workers run as this user, so they can open the test's socket
        f.write(("user root root;\n" if os.geteuid() == 0 else "") + "daemon off;\nerror_log stderr;\npid %s/nginx.pid;\nevents {}\nhttp {\n  access_log off;\n"
                "  client_body_temp_path %s/body;\n  proxy_temp_path %s/proxy;\n  include %s/cds.conf;\n}\n"
                % (tmp, tmp, tmp, tmp))
    p = subprocess.run([nginx, "-t", "-p", tmp, "-c", main], capture_output=True, text=True)
    check(p.returncode == 0, "nginx -t: %s" % p.stderr[-1500:])
    ng = subprocess.Popen([nginx, "-p", tmp, "-c", main], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = "https://cds.example.org:%d" % port
        tls = ["--cacert", cert, "--resolve", "cds.example.org:%d:127.0.0.1" % port]
        for _ in range(100):   # until nginx listens
            if subprocess.run(["curl", "-s", "-o", "/dev/null"] + tls + [base + "/cds-services"]).returncode == 0:
                break
            time.sleep(0.05)

        def get(method, path, body=None):
            return http_call(tls, base + path, method, body, (), "curl through nginx")
        code, out = get("GET", "/cds-services")
        check(code == 200 and len(json.loads(out)["services"]) == 3, "discovery through nginx: %s %s" % (code, out[:200]))
        with open(os.path.join(args.root, "examples", "clients", "cds_order_sign.json"), "rb") as f:
            body = f.read()
        code, out = get("POST", "/cds-services/mrc_second_line-order-sign", body)
        check(code == 200 and b'"indicator":"critical"' in out, "a call through nginx: %s %s" % (code, out[:200]))
        check(get("POST", "/cds-services", b"{}")[0] == 403, "POST on discovery denied by nginx")
        check(get("GET", "/other")[0] == 404, "other paths: 404")
        check(get("POST", "/cds-services/x", b"x" * (help_default(args, "max-line") - 4096 + 1))[0] == 413, "a body over the limit: 413")
    except Exception:
        ng.terminate()
        print("---- nginx stderr:\n" + ng.communicate(timeout=10)[1].decode(errors="replace")[-2000:])
        raise
    finally:
        if ng.poll() is None:
            ng.terminate()
            ng.wait(10)


if __name__ == "__main__":
    run([test_structure, test_nginx_proxies])
