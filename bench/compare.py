#!/usr/bin/env python3
"""Bru against what an operator would otherwise put in the path, side by side.

Run through `bench/run`, which installs the tools and builds the binaries.
Every number printed comes from this one run: the targets share the machine,
the load generator, the payloads and the process layout.

Layout (2 cores): the load generator (wrk, oha) on core 0; the proxy under
test and the static upstream on core 1. The demo issuer (a `bru demo` that
only hands out tokens and serves its JWKS) is idle on core 0 while measuring.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import tempfile
import time
import urllib.request
import ssl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The layout: the load generator on core 0, the proxy under test and the
# upstream on core 1. BENCH_SERVER_CPUS=0,1 BENCH_LOADGEN_CPUS=0,1 shares both
# cores among all three, to see the runtimes with several workers.
LOADGEN_CPU = os.environ.get("BENCH_LOADGEN_CPUS", "0")
SERVER_CPU = os.environ.get("BENCH_SERVER_CPUS", "1")
PAYLOADS = {"1k": 1024, "10k": 10 * 1024, "1m": 1024 * 1024}
KARI = "12884513829"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc=None, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"process {proc.args} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as c:
                # A connect loop on a free ephemeral port can connect to itself.
                if c.getsockname()[1] != port:
                    return
            time.sleep(0.05)
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port} after {timeout}s")


class Procs:
    def __init__(self):
        self.procs = []

    def start(self, name, args, cpu, env=None, cwd=None, log_dir=None):
        out = open(os.path.join(log_dir, f"{name}.log"), "w")
        p = subprocess.Popen(["taskset", "-c", cpu] + args, stdout=out, stderr=subprocess.STDOUT,
                             env=env, cwd=cwd, start_new_session=True)
        p.name = name
        self.procs.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.procs.remove(p)

    def stop_all(self):
        for p in list(self.procs):
            self.stop(p)


# ---- process accounting ---------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def main_pid(p):
    """The pid of the program taskset exec'd (taskset execs, so the same pid)."""
    return p.pid


def tree_pids(pid):
    """pid and its descendants (nginx/haproxy workers)."""
    out = [pid]
    try:
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    except OSError:
        children = []
    for c in children:
        out += tree_pids(int(c))
    return out


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except OSError:
            pass
    return total / CLK_TCK


def rss_kib(pids, key="VmRSS"):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def context_switches(pids):
    """Voluntary and involuntary context switches of every thread of pids."""
    total = 0
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/status") as f:
                    for line in f:
                        if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                            total += int(line.split()[1])
            except OSError:
                pass
    return total


def io_write_bytes(pid):
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                if line.startswith("write_bytes:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


# ---- upstream -------------------------------------------------------------

def income_rows(size):
    """NAV-style income rows, richer than the purpose's mask (aar, sum)."""
    rows, n, out = [], 0, "["
    while len(out) < size:
        row = {"aar": 2000 + n % 25, "sum": 400000 + n * 17, "arbeidsgiver": f"Bedrift {n} AS",
               "orgnr": f"{910000000 + n}", "skatt": 120000 + n, "ytelser": [{"type": "barnetrygd", "belop": 1766}]}
        out += ("," if n else "") + json.dumps(row, separators=(",", ":"))
        n += 1
    return out + "]"


def write_static(root):
    for dataset in ("sosialtjeneste", "inntekt"):
        os.makedirs(os.path.join(root, dataset), exist_ok=True)
        for name, size in PAYLOADS.items():
            with open(os.path.join(root, dataset, name), "w") as f:
                f.write(income_rows(size))


def nginx_upstream_conf(work, port):
    return f"""
worker_processes 1;
daemon off;
master_process off;
error_log {work}/upstream-error.log warn;
pid {work}/upstream.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on; tcp_nopush on; tcp_nodelay on;
    keepalive_requests 10000000; keepalive_timeout 300s;
    open_file_cache max=100 inactive=600s;
    default_type application/json;
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        root {work}/static;
        location = /stub_status {{ stub_status; }}
    }}
}}
"""


def nginx_proxy_conf(work, port, upstream_port, cert, key):
    # As nginx's documentation advises for a reverse proxy: upstream
    # keep-alive (keepalive + HTTP/1.1 + empty Connection), TLS session cache,
    # no access log (Bru's records are its log; nginx's is off to be kind to it).
    return f"""
worker_processes 1;
daemon off;
master_process off;
error_log {work}/nginx-error.log warn;
pid {work}/nginx.pid;
events {{ worker_connections 8192; multi_accept on; }}
http {{
    access_log off;
    tcp_nodelay on;
    keepalive_requests 10000000; keepalive_timeout 300s;
    upstream static {{ server 127.0.0.1:{upstream_port}; keepalive 512; keepalive_requests 10000000; }}
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:10m;
    proxy_buffers 16 64k; proxy_buffer_size 64k;
    server {{
        listen 127.0.0.1:{port} ssl reuseport backlog=4096;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{
            proxy_pass http://static;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def haproxy_conf(work, port, upstream_port, pem):
    # As HAProxy's documentation advises: one thread per core it has,
    # http-reuse always, keep-alive to the server.
    return f"""
global
    nbthread 1
    maxconn 8000
    tune.ssl.default-dh-param 2048
    ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
    mode http
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 300s
    option http-keep-alive
    http-reuse always
frontend fe
    bind 127.0.0.1:{port} ssl crt {pem} alpn http/1.1
    default_backend be
backend be
    server static 127.0.0.1:{upstream_port} maxconn 2000
"""


# ---- Bru ------------------------------------------------------------------

def b64u(data):
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def rsa_jwk(key_pem, kid):
    text = subprocess.run(["openssl", "rsa", "-in", key_pem, "-noout", "-modulus"], capture_output=True,
                          text=True, check=True).stdout
    n = bytes.fromhex(text.strip().split("=", 1)[1])
    return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64u(n), "e": b64u((65537).to_bytes(3, "big"))}


def rs256(claims, key_pem, kid):
    header = b64u(json.dumps({"alg": "RS256", "typ": "JWT", "kid": kid}).encode())
    payload = b64u(json.dumps(claims).encode())
    signing_input = f"{header}.{payload}".encode()
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key_pem], input=signing_input,
                         capture_output=True, check=True).stdout
    return f"{header}.{payload}.{b64u(sig)}"


def https_json(url, ca, data=None, headers=None, method=None):
    ctx = ssl.create_default_context(cafile=ca)
    body = json.dumps(data).encode() if isinstance(data, (dict, list)) else data
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
        return json.loads(r.read() or b"null")


def bru_config(demo_dir, port, ops_port, upstream_port, store, stage, audit=None, assertion=None, runtime=None):
    """The demo's config for `bru serve`: same keys and issuers, its own
    listener and store, every provider on the static upstream; with
    `assertion` ("eddsa" | "hs256"), every provider's Bru-Assertion signed so
    (SPEC 12; hs256 with a fresh 32-byte secret per provider); with `runtime`
    ("per-core" | "multi-thread"), `[server] runtime` (issue 21)."""
    with open(os.path.join(demo_dir, "bru.toml")) as f:
        text = f.read()
    text = re.sub(r'(?m)^public_url = .*$', f'public_url = "https://localhost:{port}"', text)
    # Idle keep-alive connections live as long as nginx's and HAProxy's here
    # (300 s); Bru's default closes them after 10 s, which would empty the
    # idle-connection measurement while it is being taken.
    # The load generator's connections all come from 127.0.0.1: no per-address cap.
    text = re.sub(r'(?m)^listen = .*$', f'listen = "127.0.0.1:{port}"\nheader_read_timeout_ms = 300000'
                  '\nmax_connections_per_address = 1000000\nhttp2_idle_timeout_ms = 300000', text)
    if runtime:
        text = re.sub(r'(?m)^listen = .*$', lambda m: f'{m.group(0)}\nruntime = "{runtime}"', text)
    text = re.sub(r'(?m)^ops_listen = .*$', f'ops_listen = "127.0.0.1:{ops_port}"', text)
    text = re.sub(r'(?m)^url = "http://127\.0\.0\.1:\d+"$', f'url = "http://127.0.0.1:{upstream_port}"', text)
    text = re.sub(r'(?m)^url = "sqlite://bru\.db"$', f'url = "{store}"' + (f'\naudit = "{audit}"' if audit else ""),
                  text)
    text = text.replace('policy = "policy.toml"', 'policy = "bench-policy.toml"')
    # `bru serve` has no demo login; the portal is not what is measured.
    text = re.sub(r'(?ms)^\[portal\].*?(?=^\[|\Z)', '', text)
    # Nor the demo's Altinn and registry, which `bru demo` serves and a benchmark does not start.
    text = re.sub(r'(?ms)^\[(altinn|registry)\].*?(?=^\[|\Z)', '', text)
    # Nor its two witnesses: their `url` lines would otherwise be caught by
    # the upstream rewrite below, and every checkpoint would land on the
    # static upstream, breaking the guard that counts its requests.
    text = re.sub(r'(?ms)^\[\[witness\]\].*?(?=^\[|\Z)', '', text)
    # The bench tokens name the bench audience (the demo's names the demo's listener).
    text = re.sub(r'(?m)^audience = ".*"$', f'audience = "{BENCH_AUDIENCE}"', text)
    # The demo world limits consumers to a realistic rate; a benchmark measures the gateway.
    with open(os.path.join(demo_dir, "policy.toml")) as f:
        policy = f.read()
    policy = re.sub(r"rate_limit = \{[^}]*\}", "rate_limit = { per_second = 10000000, burst = 10000000 }", policy)
    # The demo marks the statutory dataset's reads outside office hours
    # (07-17 Europe/Oslo, Monday to Friday) for snooping detection: run at
    # night or at a weekend, every statutory call became a finding (a row and
    # its summary), and the same build cost more than by day. Working hours
    # here are the whole week, so a run measures the same call at any hour;
    # a finding's own cost is bench/snoop's.
    policy = re.sub(r"(?m)^start_hour = \d+$", "start_hour = 0", policy)
    policy = re.sub(r"(?m)^end_hour = \d+$", "end_hour = 24", policy)
    policy = re.sub(r"(?m)^days = \[[^\]]*\]$",
                    'days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]', policy)
    with open(os.path.join(demo_dir, "bench-policy.toml"), "w") as f:
        f.write(policy)
    for kind in ("maskinporten", "idporten"):
        text = re.sub(r'(?m)^issuer = ".*/demo/%s"$' % kind, f'issuer = "https://bench.invalid/{kind}"', text)
        text = re.sub(r'(?m)^jwks_url = ".*/demo/%s/jwks"$' % kind,
                      f'jwks_url = "http://127.0.0.1:{upstream_port}/jwks/{kind}.json"', text)
    if assertion and assertion != "es256":
        def with_assertion(m):
            line = f'{m.group(0)}\nassertion = "{assertion}"'
            if assertion == "hs256":
                secret = f"bench-{m.group(1)}-assertion.key"
                fd = os.open(os.path.join(demo_dir, secret), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(os.urandom(32))
                line += f'\nassertion_secret_file = "{secret}"'
            return line
        text = re.sub(r'(?m)^\[upstream\.([A-Za-z0-9_-]+)\]$', with_assertion, text)
    if stage and stage.startswith("follow:"):
        # `[bench] followers`: which of the log's followers run (issue 21's ladder).
        names = [n for n in stage[len("follow:"):].split(",") if n]
        text += '\n[bench]\nfollowers = [' + ", ".join(f'"{n}"' for n in names) + ']\n'
    elif stage:
        text += f'\n[bench]\nstage = "{stage}"\n'
    return text


# ---- load generators -------------------------------------------------------

def unit_ms(v, u):
    v = float(v)
    return {"us": v / 1000, "ms": v, "s": v * 1000}[u]


def run_wrk(url, conns, duration, headers, ca=None):
    # wrk's own 2 s timeout counts a call that waits its turn behind 255
    # others (1 MB answers) as a socket error though it is answered; 10 s,
    # the same for every target, leaves errors to mean errors.
    args = ["taskset", "-c", LOADGEN_CPU, "wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--timeout", "10s",
            "--latency", url]
    for h in headers:
        args += ["-H", h]
    out = subprocess.run(args, capture_output=True, text=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    lat = {}
    for p in ("50", "99"):
        mm = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)" % p, out, re.M)
        lat[p] = unit_ms(*mm.groups()) if mm else None
    return {
        "rps": float(m.group(1)) if m else 0.0,
        "requests": int(total.group(1)) if total else 0,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "errors": sum(int(x) for x in errors.groups()) if errors else 0,
        "p50": lat["50"], "p99": lat["99"], "raw": out,
    }


def run_oha(url, rate, duration, conns, headers, ca):
    args = ["taskset", "-c", LOADGEN_CPU, "oha", "--no-tui", "--output-format", "json", "-z", f"{duration}s",
            "-q", str(rate), "--latency-correction", "-c", str(conns), url]
    if ca:
        args += ["--cacert", ca]
    for h in headers:
        args += ["-H", h]
    out = subprocess.run(args, capture_output=True, text=True)
    try:
        data = json.loads(out.stdout)
    except json.JSONDecodeError:
        raise SystemExit(f"oha failed: {out.stderr[-2000:]}")
    pct = data.get("latencyPercentiles", {})
    codes = data.get("statusCodeDistribution", {})
    ok = sum(int(v) for k, v in codes.items() if k.startswith("2"))
    bad = sum(int(v) for k, v in codes.items() if not k.startswith("2"))
    # Requests still in flight when -z ends are "aborted due to deadline":
    # cut off by the generator, not failed by the server.
    errors = sum(int(v) for k, v in data.get("errorDistribution", {}).items() if "deadline" not in k)
    return {
        "p50": pct.get("p50", 0) * 1000, "p99": pct.get("p99", 0) * 1000, "p999": pct.get("p99.9", 0) * 1000,
        "rps": data.get("summary", {}).get("requestsPerSec", 0.0), "ok": ok, "non2xx": bad, "errors": errors,
    }


# ---- statistics -------------------------------------------------------------

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def spread(xs):
    xs = [x for x in xs if x is not None]
    return (min(xs), max(xs)) if xs else (None, None)


def fmt(v, nd=0):
    if v is None:
        return "–"
    return f"{v:,.{nd}f}"


def fsync_latency_ms(path):
    """fdatasync of a 4 KiB append on the disk the store is on, median of 200."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
    ts = []
    try:
        for _ in range(200):
            os.write(fd, b"x" * 4096)
            t = time.perf_counter()
            os.fdatasync(fd)
            ts.append(time.perf_counter() - t)
    finally:
        os.close(fd)
        os.unlink(path)
    return statistics.median(ts) * 1000


def fs_type(path):
    out = subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True, text=True).stdout.strip()
    return out


def stub_requests(upstream_port):
    with urllib.request.urlopen(f"http://127.0.0.1:{upstream_port}/stub_status", timeout=5) as r:
        text = r.read().decode()
    # "server accepts handled requests\n A B C"
    return int(text.split("\n")[2].split()[2])


def metric_sum(ops_port, name, label_filter=None):
    with urllib.request.urlopen(f"http://127.0.0.1:{ops_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in " {"):
            if label_filter and label_filter not in line:
                continue
            total += float(line.rsplit(" ", 1)[1])
    return total


def metric_value(ops_port, name):
    """The metric's sum, or None when the process does not export it (an
    older build)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ops_port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    found = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
             if line.startswith(name) and line[len(name)] in " {"]
    return sum(found) if found else None


class LagSampler(threading.Thread):
    """Samples the indexer's lag (records the derived audit index is behind
    the log) while the load runs: its maximum is the lag under saturation."""

    def __init__(self, ops_port):
        super().__init__(daemon=True)
        self.ops_port, self.stop_at, self.samples = ops_port, threading.Event(), []

    def run(self):
        while not self.stop_at.is_set():
            v = metric_value(self.ops_port, "bru_audit_index_lag_records")
            if v is not None:
                self.samples.append(v)
            self.stop_at.wait(0.2)


# ---- the run ----------------------------------------------------------------

class World:
    """Everything started once: the static upstream, the demo issuer, tokens."""

    def __init__(self, args, work):
        self.args, self.work = args, work
        self.procs = Procs()
        self.bru_bin = args.bru
        self.upstream_port = free_port()
        os.makedirs(f"{work}/static")
        write_static(f"{work}/static")
        with open(f"{work}/upstream.conf", "w") as f:
            f.write(nginx_upstream_conf(work, self.upstream_port))
        self.upstream = self.procs.start("upstream", ["nginx", "-c", f"{work}/upstream.conf"], SERVER_CPU, log_dir=work)
        wait_port(self.upstream_port, self.upstream)

        # `bru demo` prepares the keys, certificates and policy of the demo
        # world, then stops; tokens come from bench issuers whose JWKS the
        # upstream serves over HTTP (`bru serve` refuses the demo issuers).
        self.demo_port, demo_ops = free_port(), free_port()
        self.demo_dir = f"{work}/demo"
        demo = self.procs.start("demo", [self.bru_bin, "demo", "--dir", self.demo_dir, "--listen",
                                         f"127.0.0.1:{self.demo_port}", "--ops-listen", f"127.0.0.1:{demo_ops}"],
                                LOADGEN_CPU, env=dict(os.environ, RUST_LOG="warn"), log_dir=work)
        for _ in range(600):
            if "listening" in open(f"{work}/demo.log").read() or demo.poll() is not None:
                break
            time.sleep(0.1)
        self.procs.stop(demo)
        # `--baseline`: the other build prepares a demo directory of its own
        # (its policy and config are in its own format), then serves with this
        # one's certificate, so both answer the same CA.
        self.base_demo_dir = None
        if args.baseline:
            self.base_demo_dir = f"{work}/demo-base"
            base = self.procs.start("demo-base", [args.baseline, "demo", "--dir", self.base_demo_dir, "--listen",
                                                  f"127.0.0.1:{free_port()}", "--ops-listen",
                                                  f"127.0.0.1:{free_port()}"],
                                    LOADGEN_CPU, env=dict(os.environ, RUST_LOG="warn"), log_dir=work)
            for _ in range(600):
                if "listening" in open(f"{work}/demo-base.log").read() or base.poll() is not None:
                    break
                time.sleep(0.1)
            self.procs.stop(base)
            for name in ("ca.pem", "tls/cert.pem", "tls/key.pem"):
                shutil.copyfile(f"{self.demo_dir}/{name}", f"{self.base_demo_dir}/{name}")
        self.ca = f"{self.demo_dir}/ca.pem"
        self.issuers = {}
        for kind in ("maskinporten", "idporten"):
            key = f"{self.demo_dir}/demo-{kind}-key.pem"
            kid = f"bench-{kind}"
            jwk = rsa_jwk(key, kid)
            os.makedirs(f"{work}/static/jwks", exist_ok=True)
            with open(f"{work}/static/jwks/{kind}.json", "w") as f:
                json.dump({"keys": [jwk]}, f)
            self.issuers[kind] = (f"https://bench.invalid/{kind}", key, kid)
        self.kari_token = self.mint("idporten", {"pid": KARI, "acr": "idporten-loa-substantial",
                                                 "amr": ["TestID"], "scope": "openid bru:citizen",
                                                 "client_id": "bench-portal"})
        refresh_tokens(self)
        self.cert = f"{self.demo_dir}/tls/cert.pem"
        self.key = f"{self.demo_dir}/tls/key.pem"
        with open(f"{work}/haproxy.pem", "w") as f:
            f.write(open(self.cert).read() + open(self.key).read())

    def mint(self, kind, claims):
        iss, key, kid = self.issuers[kind]
        now = int(time.time())
        full = {"iss": iss, "iat": now, "exp": now + 3600, "jti": f"bench-{now}-{os.urandom(6).hex()}"}
        full.update(claims)
        return rs256(full, key, kid)

    def machine_token(self, org, scope):
        return self.mint("maskinporten", {
            "client_id": f"bench-client-{org}", "scope": scope, "aud": BENCH_AUDIENCE,
            "consumer": {"authority": "iso6523-actorid-upis", "ID": f"0192:{org}"}})

    def close(self):
        self.procs.stop_all()


class Target:
    """One thing under test on core 1, started and stopped by the run."""

    name = ""
    kind = ""

    def __init__(self, world):
        self.world = world
        self.proc = None

    def pids(self):
        return tree_pids(self.proc.pid) if self.proc else []

    def stop(self):
        if self.proc:
            self.world.procs.stop(self.proc)
            self.proc = None


class Direct(Target):
    name, kind = "direct", "http"

    def start(self):
        self.proc = None

    def pids(self):
        return []

    def url(self, payload):
        return f"http://127.0.0.1:{self.world.upstream_port}/sosialtjeneste/{payload}"

    def headers(self):
        return [f"Nav-Personident: {KARI}"]


class Nginx(Target):
    name, kind = "nginx", "https"

    def start(self):
        w = self.world
        self.port = free_port()
        with open(f"{w.work}/nginx.conf", "w") as f:
            f.write(nginx_proxy_conf(w.work, self.port, w.upstream_port, w.cert, w.key))
        self.proc = w.procs.start("nginx", ["nginx", "-c", f"{w.work}/nginx.conf"], SERVER_CPU, log_dir=w.work)
        wait_port(self.port, self.proc)

    def url(self, payload):
        return f"https://localhost:{self.port}/sosialtjeneste/{payload}"

    def headers(self):
        return [f"Nav-Personident: {KARI}"]


class Haproxy(Target):
    name, kind = "haproxy", "https"

    def start(self):
        w = self.world
        self.port = free_port()
        with open(f"{w.work}/haproxy.cfg", "w") as f:
            f.write(haproxy_conf(w.work, self.port, w.upstream_port, f"{w.work}/haproxy.pem"))
        self.proc = w.procs.start("haproxy", ["haproxy", "-db", "-f", f"{w.work}/haproxy.cfg"], SERVER_CPU,
                                  log_dir=w.work)
        wait_port(self.port, self.proc)

    def url(self, payload):
        return f"https://localhost:{self.port}/sosialtjeneste/{payload}"

    def headers(self):
        return [f"Nav-Personident: {KARI}"]


def statutory_headers(world):
    """The statutory call's request headers, as wrk sends them."""
    return [f"Authorization: Bearer {world.nav_token}", "Bru-Purpose: sosialhjelp-saksbehandling",
            f"Nav-Personident: {KARI}"]


class BareProxy(Target):
    """gateway/examples/bare_proxy.rs: a reverse proxy of Bru's crates (rustls,
    hyper, hyper-util, tokio, mimalloc) with Bru's settings and none of Bru's
    code, to tell the crates' share of the gap to nginx from Bru's (#21)."""

    kind = "https"

    def __init__(self, world, name, runtime):
        super().__init__(world)
        self.name, self.runtime = name, runtime

    def start(self):
        w = self.world
        binary = f"{ROOT}/target/release/examples/bare_proxy"
        if not getattr(w, "bare_proxy_built", False):
            subprocess.run(["cargo", "build", "--release", "-p", "gateway", "--example", "bare_proxy",
                            "--locked", "-q"], cwd=ROOT, check=True)
            w.bare_proxy_built = True
        self.port = free_port()
        self.proc = w.procs.start(self.name, [binary, str(self.port), str(w.upstream_port), w.cert, w.key,
                                              self.runtime], SERVER_CPU, log_dir=w.work)
        wait_port(self.port, self.proc)

    def url(self, payload):
        return f"https://localhost:{self.port}/sosialtjeneste/{payload}"

    def headers(self):
        # What wrk sends Bru's statutory target, token included (the proxy
        # drops it, as Bru does), so both read and decrypt the same request.
        return statutory_headers(self.world)


class Bru(Target):
    """`bru serve` with the demo's keys and issuers, on the static upstream."""

    kind = "https"

    def __init__(self, world, name, consent=False, stage=None, audit=None, binary=None, assertion=None,
                 runtime=None):
        super().__init__(world)
        self.name, self.consent, self.stage, self.audit = name, consent, stage, audit
        # `[server] runtime`: "per-core" | "multi-thread"; None keeps the build's default
        # (per-core from 9544abb on, multi-thread before: a baseline older than that
        # runs multi-thread, so `--runtime` names the runtime where it matters).
        self.runtime = runtime
        # SPEC 12: "eddsa" | "hs256" for every provider; None keeps the default (ES256).
        self.assertion = assertion
        self.consent_id = None
        # `--baseline`: the same target on another build, measured in the same run.
        self.binary = binary or world.bru_bin

    def start(self):
        w = self.world
        self.port, self.ops_port = free_port(), free_port()
        store_dir = f"{w.work}/store-{self.name}"
        os.makedirs(store_dir)
        if fs_type(store_dir) == "tmpfs":
            raise SystemExit(f"{store_dir} is on tmpfs: a record there is not durable")
        self.store_dir = store_dir
        demo_dir = w.demo_dir if self.binary == w.bru_bin else w.base_demo_dir
        config = bru_config(demo_dir, self.port, self.ops_port, w.upstream_port,
                            f"sqlite://{store_dir}/bru.db", self.stage, self.audit, self.assertion,
                            self.runtime)
        path = f"{demo_dir}/bench-{self.name}.toml"
        with open(path, "w") as f:
            f.write(config)
        self.config_path = path
        self.proc = w.procs.start(self.name, [self.binary, "serve", "--config", path], SERVER_CPU,
                                  env=dict(os.environ, RUST_LOG="warn"), log_dir=w.work)
        wait_port(self.port, self.proc, 60)
        base = f"https://localhost:{self.port}"
        if self.consent:
            until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400))
            created = https_json(f"{base}/consent/v1/requests", w.ca,
                                 {"subject": KARI, "datasets": ["nav/inntekt"], "purpose": "omsorgsbolig-soknad",
                                  "valid_to": until},
                                 {"Authorization": f"Bearer {w.k429_token}", "Content-Type": "application/json"})
            self.consent_id = created["id"]
            https_json(f"{base}/citizen/v1/consents/{self.consent_id}/accept", w.ca, b"",
                       {"Authorization": f"Bearer {w.kari_token}"}, method="POST")
        # One call warms the JWKS cache and the upstream pool.
        ctx = ssl.create_default_context(cafile=w.ca)
        req = urllib.request.Request(self.url("1k"), headers=dict(h.split(": ", 1) for h in self.headers()))
        with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
            r.read()

    def url(self, payload):
        if self.consent:
            return f"https://localhost:{self.port}/data/nav/inntekt/{payload}"
        return f"https://localhost:{self.port}/data/k429/sosialtjeneste/{payload}"

    def headers(self):
        w = self.world
        if self.consent:
            return [f"Authorization: Bearer {w.k429_token}", "Bru-Purpose: omsorgsbolig-soknad",
                    f"Bru-Consent: {self.consent_id}", f"Nav-Personident: {KARI}"]
        return statutory_headers(w)

    def records(self):
        """Allowed decision records and outcome records, counted in the
        store itself (the evidence, not the metrics)."""
        import sqlite3
        db = sqlite3.connect(f"file:{self.store_dir}/bru.db?mode=ro", uri=True, timeout=30)
        try:
            rows = dict(db.execute(
                "SELECT kind || coalesce(decision, ''), count(*) FROM audit_records GROUP BY 1").fetchall())
        finally:
            db.close()
        return rows.get("decisionallow", 0), rows.get("outcome", 0)

    def audit_stats(self):
        return {
            "batches": metric_sum(self.ops_port, "bru_audit_batches_total"),
            "records": metric_sum(self.ops_port, "bru_audit_records_total"),
        }


def measure(world, target, fn):
    """Runs fn() against a started target; returns its result with the server
    side's CPU, memory, upstream requests and write bytes."""
    pids = target.pids()
    up_pids = [world.upstream.pid]
    cpu0, up_cpu0 = cpu_seconds(pids), cpu_seconds(up_pids)
    cs0, up_cs0 = context_switches(pids), context_switches(up_pids)
    up_req0 = stub_requests(world.upstream_port)
    io0 = io_write_bytes(target.proc.pid) if target.proc else 0
    alerts0 = metric_value(target.ops_port, "bru_audit_alerts_total") if isinstance(target, Bru) else None
    rec0 = target.records() if isinstance(target, Bru) else None
    aud0 = target.audit_stats() if isinstance(target, Bru) else None
    perf = None
    if target.name in world.args.profile and target.proc and not getattr(target, "profiled", False):
        target.profiled = True
        out = f"{world.work}/perf-{target.name}.data"
        # Call graphs by DWARF unwinding cost the profiled proxy a third of its
        # speed or more; --profile-flat samples only where the CPU is, cheaply
        # enough to compare two proxies symbol by symbol.
        graph = ["-F", "4999"] if world.args.profile_flat else ["-F", "1999", "-g", "--call-graph", "dwarf,16384"]
        perf = subprocess.Popen(["perf", "record", *graph, "-o", out,
                                 "-p", str(target.proc.pid), "--", "sleep", str(max(1, world.args.duration - 1))],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        log(f"  profiling {target.name} into {out}")
    syncs = None
    if world.args.syncs and target.proc:
        # The process's real fsync and fdatasync calls (the store's commits,
        # the followers' and the WAL checkpoints), not only the audit batches.
        syncs_out = f"{world.work}/syncs-{target.name}.csv"
        syncs = subprocess.Popen(["perf", "stat", "-x", ",", "-o", syncs_out,
                                  "-e", "syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync",
                                  "-p", str(target.proc.pid)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    calls = None
    if target.name in world.args.syscalls and target.proc:
        # Every syscall of the proxy's threads and of the upstream's, by
        # name: where two proxies of the same work differ in their I/O.
        calls = {}
        for who, pid in (("proxy", target.proc.pid), ("upstream", world.upstream.pid)):
            out = f"{world.work}/syscalls-{who}-{target.name}.csv"
            calls[who] = (out, subprocess.Popen(["perf", "stat", "-x", ",", "-o", out, "-e",
                                                 "syscalls:sys_enter_*", "-p", str(pid)],
                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    lag = LagSampler(target.ops_port) if isinstance(target, Bru) else None
    if lag:
        lag.start()
    result = fn()
    if calls:
        for who, (out, proc) in calls.items():
            proc.send_signal(signal.SIGINT)
            proc.wait()
            counts = {}
            with open(out) as f:
                for line in f:
                    fields = line.split(",")
                    if len(fields) > 2 and fields[0].isdigit() and int(fields[0]):
                        counts[fields[2].removeprefix("syscalls:sys_enter_")] = int(fields[0])
            result[f"syscalls_{who}"] = counts
    if syncs:
        syncs.send_signal(signal.SIGINT)
        syncs.wait()
        with open(syncs_out) as f:
            counts = [line.split(",")[0] for line in f if "syscalls:" in line]
        result["syncs"] = sum(int(c) for c in counts if c.isdigit())
    cpu1, up_cpu1 = cpu_seconds(pids), cpu_seconds(up_pids)
    cs1, up_cs1 = context_switches(pids), context_switches(up_pids)
    if lag:
        lag.stop_at.set()
        lag.join()
        result["index_lag_max"] = max(lag.samples) if lag.samples else None
    if perf:
        perf.wait()
    # Calls in flight when the load generator stopped still finish.
    time.sleep(0.5)
    if lag:
        result["index_lag_end"] = metric_value(target.ops_port, "bru_audit_index_lag_records")
    result["cpu_s"] = cpu1 - cpu0
    result["upstream_cpu_s"] = up_cpu1 - up_cpu0
    # stub_status counts its own request
    result["upstream_requests"] = stub_requests(world.upstream_port) - up_req0 - 1
    result["rss_kib"] = rss_kib(pids)
    result["hwm_kib"] = rss_kib(pids, "VmHWM")
    if target.proc:
        result["write_bytes"] = io_write_bytes(target.proc.pid) - io0
    if rec0 is not None:
        rec1 = target.records()
        result["allowed"] = rec1[0] - rec0[0]
        result["outcomes"] = rec1[1] - rec0[1]
        aud1 = target.audit_stats()
        result["batches"] = aud1["batches"] - aud0["batches"]
        result["audit_records"] = aud1["records"] - aud0["records"]
    if alerts0 is not None:
        # Found by the time the load stopped (the snoop follower runs behind).
        result["findings"] = (metric_value(target.ops_port, "bru_audit_alerts_total") or 0) - alerts0
    done = result.get("requests") or result.get("ok") or 0
    result["cpu_us_per_req"] = result["cpu_s"] * 1e6 / done if done else None
    # Measured to the end of the load, like the CPU: the proxy's and the
    # upstream's threads, each switch counted once.
    result["switches_per_req"] = (cs1 - cs0) / done if done else None
    result["upstream_switches_per_req"] = (up_cs1 - up_cs0) / done if done else None
    if "syncs" in result:
        result["syncs_per_req"] = result["syncs"] / done if done else None
    for who in ("proxy", "upstream"):
        counts = result.get(f"syscalls_{who}")
        if counts and done:
            top = sorted(counts.items(), key=lambda kv: -kv[1])
            log(f"  syscalls a request, {who} of {target.name}: {sum(counts.values()) / done:.2f} "
                + " ".join(f"{name} {n / done:.3f}" for name, n in top))
    return result


def refresh_tokens(world):
    """Fresh tokens (an hour each) for every measurement, like a client renewing them."""
    world.nav_token = world.machine_token("983440002", "k429:sosialtjeneste.read")
    world.k429_token = world.machine_token("921429002", "nav:inntekt.read bru:consent")


def saturation(world, targets, args):
    """wrk at saturation, targets interleaved within each repeat."""
    rows = {}
    for rep in range(args.repeats):
        for payload in args.payloads:
            for conns in args.conns:
                for t in targets:
                    refresh_tokens(world)
                    r = measure(world, t, lambda: run_wrk(t.url(payload), conns, args.duration, t.headers()))
                    r["conns"] = conns
                    rows.setdefault((t.name, payload, conns), []).append(r)
                    bad = r["non2xx"] + r["errors"]
                    log(f"  rep {rep + 1} {t.name:12} {payload:>3} c={conns:<4} {r['rps']:>9,.0f} req/s"
                        f"  cpu {fmt(r['cpu_us_per_req'], 1)} µs/req"
                        f"  switches {fmt(r['switches_per_req'], 2)}/req (upstream {fmt(r['upstream_switches_per_req'], 2)})"
                        + (f"  syncs {fmt(r['syncs_per_req'], 3)}/req" if r.get("syncs_per_req") is not None else "")
                        + (f"  NON-2XX/ERRORS {bad}" if bad else ""))
    return rows


def fixed_rate(world, targets, args, nginx_rps):
    rows = {}
    for rep in range(args.repeats):
        for share in args.rates:
            rate = int(nginx_rps * share / 100)
            for t in targets:
                refresh_tokens(world)
                ca = world.ca if t.kind == "https" else None
                r = measure(world, t, lambda: run_oha(t.url("1k"), rate, args.oha_duration, args.oha_conns,
                                                      t.headers(), ca))
                r["conns"] = args.oha_conns
                rows.setdefault((t.name, share), []).append(r)
                log(f"  rep {rep + 1} {t.name:12} {share}% ({rate}/s)  p50 {r['p50']:.2f} p99 {r['p99']:.2f} "
                    f"p99.9 {r['p999']:.2f} ms" + (f"  NON-2XX/ERRORS {r['non2xx'] + r['errors']}"
                                                     if r["non2xx"] + r["errors"] else ""))
    return rows, {share: int(nginx_rps * share / 100) for share in args.rates}


def guards(name, runs):
    """What must hold for a run to count; returns the broken ones."""
    broken = []
    for r in runs:
        if r.get("non2xx") or r.get("errors"):
            broken.append(f"{name}: {r.get('non2xx')} non-2xx, {r.get('errors')} socket errors")
        if r.get("allowed") and r.get("audit_records") and r["audit_records"] != r["allowed"] + r["outcomes"]:
            broken.append(f"{name}: {r['audit_records']:.0f} records committed for {r['allowed']:.0f} decisions "
                          f"and {r['outcomes']:.0f} outcomes")
        if r.get("allowed"):
            up = r["upstream_requests"]
            # Calls in flight when the load generator hung up were decided and
            # recorded, but some never reached the upstream: at most one per
            # connection. Every decision has its outcome record, exactly.
            if r["allowed"] != r["outcomes"] or not 0 <= r["allowed"] - up <= r.get("conns", 0):
                broken.append(f"{name}: upstream saw {up} requests, decision records {r['allowed']:.0f}, "
                              f"outcome records {r['outcomes']:.0f}")
        if r.get("findings"):
            # The bench's policy makes every hour a working hour (bru_config):
            # a finding means the run measured more than the call it names.
            broken.append(f"{name}: {r['findings']:.0f} snooping findings during the run")
    return broken


def report_saturation(rows, args, fsync_ms):
    print("### Saturation (wrk, keep-alive, HTTP/1.1)\n")
    print(f"{args.repeats} runs of {args.duration} s each, interleaved; median (min–max). "
          "CPU is the server side's (proxy or Bru; the upstream's own is listed apart).\n")
    print("| target | payload | conns | req/s | spread | p50 ms | p99 ms | CPU µs/req | upstream CPU µs/req "
          "| fsyncs/req | disk bytes/req | RSS MiB | ×nginx | ×direct |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for payload in args.payloads:
        for conns in args.conns:
            base = {n: med([r["rps"] for r in rows.get((n, payload, conns), [])]) for n in ("nginx", "direct")}
            for name in args.targets:
                runs = rows.get((name, payload, conns))
                if not runs:
                    continue
                rps = med([r["rps"] for r in runs])
                lo, hi = spread([r["rps"] for r in runs])
                done = [r["requests"] for r in runs]
                up_cpu = med([r["upstream_cpu_s"] * 1e6 / r["requests"] if r["requests"] else None for r in runs])
                fs = med([r["batches"] / r["requests"] if r.get("batches") is not None and r["requests"] else None
                          for r in runs])
                wb = med([r["write_bytes"] / r["requests"] if r.get("write_bytes") is not None and r["requests"]
                          else None for r in runs])
                rss = med([r["hwm_kib"] / 1024 if r["hwm_kib"] else None for r in runs])
                xn = rps / base["nginx"] if base["nginx"] else None
                xd = rps / base["direct"] if base["direct"] else None
                print(f"| {name} | {payload} | {conns} | {fmt(rps)} | {fmt(lo)}–{fmt(hi)} | "
                      f"{fmt(med([r['p50'] for r in runs]), 2)} | {fmt(med([r['p99'] for r in runs]), 2)} | "
                      f"{fmt(med([r['cpu_us_per_req'] for r in runs]), 1)} | {fmt(up_cpu, 1)} | "
                      f"{fmt(fs, 3)} | {fmt(wb)} | {fmt(rss, 1)} | {fmt(xn, 2)} | {fmt(xd, 2)} |")
    print()
    lag_rows = []
    for payload in args.payloads:
        for conns in args.conns:
            for name in args.targets:
                runs = [r for r in rows.get((name, payload, conns), []) if r.get("index_lag_max") is not None]
                if runs:
                    rps = med([r["rps"] for r in runs])
                    worst = max(r["index_lag_max"] for r in runs)
                    lag_rows.append(f"| {name} | {payload} | {conns} | {fmt(med([r['index_lag_max'] for r in runs]))} "
                                    f"| {fmt(worst)} | {fmt(worst / rps * 2000 if rps else None, 1)} "
                                    f"| {fmt(med([r.get('index_lag_end') for r in runs]))} |")
    if lag_rows:
        print("Indexer lag under saturation (`bru_audit_index_lag_records`, sampled every 0.2 s during each run; "
              "the time is the worst lag ÷ the records a second, two records a call; 'after' is 0.5 s after "
              "the load stopped):\n")
        print("| target | payload | conns | max lag, records (median of runs) | worst run | worst lag ≈ ms "
              "| lag 0.5 s after |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        print("\n".join(lag_rows))
        print()
    sync_rows = []
    for payload in args.payloads:
        for conns in args.conns:
            for name in args.targets:
                runs = [r for r in rows.get((name, payload, conns), []) if r.get("syncs_per_req") is not None]
                if runs and any(r.get("batches") is not None for r in runs):
                    sync_rows.append(f"| {name} | {payload} | {conns} | {fmt(med([r['syncs_per_req'] for r in runs]), 3)} "
                                     f"| {fmt(med([r['batches'] / r['requests'] for r in runs if r.get('requests')]), 3)} |")
    if sync_rows:
        print("Syncs a request (`perf stat` on the fsync and fdatasync tracepoints of the process, median of runs), "
              "beside the audit batches a request:\n")
        print("| target | payload | conns | syncs/req | audit batches/req |")
        print("| --- | --- | --- | --- | --- |")
        print("\n".join(sync_rows))
        print()
    for conns in args.conns:
        bound = conns / (fsync_ms / 1000)
        print(f"- fsync bound at {conns} connections: {conns} in flight ÷ {fsync_ms:.3f} ms = {bound:,.0f} req/s")
    print()


def report_rates(rows, rates, args):
    print("### Latency at a fixed rate (oha, --latency-correction)\n")
    print(f"1 KB payload, {args.oha_conns} connections, {args.oha_duration} s per run, {args.repeats} runs; "
          "median of each percentile (max over runs in brackets).\n")
    print("| target | rate | p50 ms | p99 ms | p99.9 ms | p50 added over direct ms | p99 added over direct ms "
          "| CPU µs/req |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for share, rate in rates.items():
        direct_p99 = med([r["p99"] for r in rows.get(("direct", share), [])])
        direct_p50 = med([r["p50"] for r in rows.get(("direct", share), [])])
        for name in args.targets:
            runs = rows.get((name, share))
            if not runs:
                continue
            p99 = med([r["p99"] for r in runs])
            added = p99 - direct_p99 if direct_p99 is not None else None
            p50 = med([r["p50"] for r in runs])
            added50 = p50 - direct_p50 if direct_p50 is not None else None
            print(f"| {name} | {share} % of nginx ({rate:,}/s) | {fmt(p50, 2)} | "
                  f"{fmt(p99, 2)} [{fmt(max(r['p99'] for r in runs), 2)}] | "
                  f"{fmt(med([r['p999'] for r in runs]), 2)} [{fmt(max(r['p999'] for r in runs), 2)}] | "
                  f"{fmt(added50, 2)} | {fmt(added, 2)} | {fmt(med([r['cpu_us_per_req'] for r in runs]), 1)} |")
    print()


LADDER = [
    # (target name, [bench] stage, [store] audit, what the rung adds)
    ("bru-passthrough", "passthrough", "noop", "route and forward: a reverse proxy on Bru's stack (hyper, rustls)"),
    ("bru-token", "token", "noop", "+ token check (verified-token cache; RS256 once per token)"),
    ("bru-policy", "policy", "noop", "+ facts, `policy::decide`, signed `Bru-Assertion` (ES256)"),
    ("bru-nosync-alone", "follow:", "nosync",
     "+ decision and outcome records through group commit, without fsync, nothing following the log"),
    ("bru-nosync-indexer", "follow:indexer", "nosync", "+ the indexer (audit_index)"),
    ("bru-nosync-snoop", "follow:indexer,snoop", "nosync", "+ the snoop follower"),
    ("bru-nosync", None, "nosync", "+ the notification follower: all three followers"),
    ("bru-no-tree", None, "no-tree", "+ durable records (fsync per group commit), without the Merkle tree"),
    ("bru", None, None, "+ Merkle tree: the whole statutory pipeline"),
]

# Rungs an older build may not know (`[bench] followers`, session 8): no @base twin.
NEW_RUNGS = {"follow:", "follow:indexer", "follow:indexer,snoop"}

BASELINE = "@base"
# `--assertion` and the bru-eddsa / bru-hs256 targets: the JWS alg of each (SPEC 12).
JWS_ALG = {"es256": "ES256", "eddsa": "EdDSA", "hs256": "HS256"}
# The audience every bench Bru accepts and every bench Maskinporten token names.
BENCH_AUDIENCE = "https://bench.invalid/bru"


def ladder_rows(args):
    """The ladder, and with `--baseline` each rung's twin on the baseline build
    right after it (same rung, same run, so the two are compared like with like)."""
    for name, stage, audit, what in LADDER:
        yield (name, stage, audit, what.replace("(ES256)", f"({JWS_ALG[args.assertion]})"))
        if args.baseline and stage not in NEW_RUNGS:
            yield (name + BASELINE, stage, audit, "the same on the baseline build")


def report_ladder(rows, args):
    print("### Ablation ladder (statutory dataset, 1 KB)\n")
    print("Each rung is a configuration of the benchmark build (`--features bench`): `[bench] stage` for the first "
          "three, `[store] audit` for the rest, `[bench] followers` for the follower rungs. Bru's CPU per request; "
          "the step is what the rung adds.\n")
    for conns in args.conns:
        print(f"| rung ({conns} connections) | req/s | spread | Bru CPU µs/req | step µs | ×nginx |")
        print("| --- | --- | --- | --- | --- | --- |")
        nginx = med([r["rps"] for r in rows.get(("nginx", "1k", conns), [])])
        if nginx:
            cpu = med([r["cpu_us_per_req"] for r in rows[("nginx", "1k", conns)]])
            print(f"| nginx (reference) | {fmt(nginx)} | – | {fmt(cpu, 1)} | – | 1.00 |")
        # The step is against the rung below on the same build.
        prev = {}
        for name, _, _, what in ladder_rows(args):
            runs = rows.get((name, "1k", conns))
            if not runs:
                continue
            rps = med([r["rps"] for r in runs])
            lo, hi = spread([r["rps"] for r in runs])
            cpu = med([r["cpu_us_per_req"] for r in runs])
            build = name.endswith(BASELINE)
            before = prev.get(build)
            step = cpu - before if before is not None and cpu is not None else None
            prev[build] = cpu
            print(f"| {name}: {what} | {fmt(rps)} | {fmt(lo)}–{fmt(hi)} | {fmt(cpu, 1)} | "
                  f"{fmt(step, 1) if step is not None else '–'} | {fmt(rps / nginx if nginx else None, 2)} |")
        print()


def hold_idle(target, n, world):
    """Opens n keep-alive TLS connections that each made one call, and
    returns them (still open) with the server's RSS while it holds them."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n + 1000)), hard))
    ctx = ssl.create_default_context(cafile=world.ca)
    url = target.url("1k")
    path = url.split(str(target.port), 1)[1]
    head = "".join(f"{h}\r\n" for h in target.headers())
    request = (f"GET {path} HTTP/1.1\r\nHost: localhost\r\n{head}\r\n").encode()
    conns = []
    for _ in range(n):
        raw = socket.create_connection(("127.0.0.1", target.port))
        tls = ctx.wrap_socket(raw, server_hostname="localhost")
        tls.sendall(request)
        got = b""
        while b"\r\n\r\n" not in got:
            got += tls.recv(65536)
        if not got.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"{target.name}: {got[:200]!r}")
        length = int(re.search(rb"(?i)content-length: (\d+)", got).group(1)) if b"ontent-length" in got.lower() else None
        body = got.split(b"\r\n\r\n", 1)[1]
        while length is not None and len(body) < length:
            body += tls.recv(65536)
        conns.append(tls)
    time.sleep(2)
    if isinstance(target, Bru):
        # The server's own count: every connection must still be open.
        open_now = metric_sum(target.ops_port, "bru_open_connections")
        if open_now < n:
            raise SystemExit(f"{target.name} holds {open_now:.0f} of the {n} idle connections")
    return conns, rss_kib(target.pids())


def memory(world, targets, args):
    print("### Memory\n")
    print("Resident memory of the server process(es) while holding idle keep-alive TLS connections "
          "(each made one call first), and over a soak at a steady load.\n")
    print("| target | at rest MiB | 1,000 idle MiB | 10,000 idle MiB | per idle connection KiB |")
    print("| --- | --- | --- | --- | --- |")
    for t in targets:
        refresh_tokens(world)
        rest = rss_kib(t.pids())
        c1, r1 = hold_idle(t, 1000, world)
        for c in c1:
            c.close()
        time.sleep(2)
        c10, r10 = hold_idle(t, 10000, world)
        for c in c10:
            c.close()
        print(f"| {t.name} | {rest / 1024:.1f} | {r1 / 1024:.1f} | {r10 / 1024:.1f} | "
              f"{(r10 - rest) / 10000:.1f} |")
        sys.stdout.flush()
    print()
    for t in targets:
        if not isinstance(t, Bru):
            continue
        refresh_tokens(world)
        samples = []
        wrk = subprocess.Popen(["taskset", "-c", LOADGEN_CPU, "wrk", "-t1", "-c64", f"-d{args.soak}s", t.url("1k")]
                               + sum((["-H", h] for h in t.headers()), []),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        started = time.time()
        while wrk.poll() is None:
            samples.append((time.time() - started, rss_kib(t.pids()) / 1024))
            time.sleep(10)
        out = wrk.stdout.read()
        rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
        print(f"Soak of {t.name}: wrk, 64 connections, {args.soak} s, "
              f"{float(rps.group(1)) if rps else 0:,.0f} req/s; RSS every 10 s (MiB): "
              + ", ".join(f"{m:.1f}" for _, m in samples))
        # The first minute is the warm-up (and memory the idle test above
        # left to the allocator); flat memory means the rest does not grow.
        steady = [m for t_, m in samples if t_ >= 60] or [m for _, m in samples[1:]]
        if len(steady) >= 4:
            q = len(steady) // 4
            first, last = statistics.mean(steady[:q]), statistics.mean(steady[-q:])
            print(f"\nFirst quarter mean {first:.1f} MiB, last quarter mean {last:.1f} MiB "
                  f"(growth {last - first:+.1f} MiB).")
    print()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bru", default=os.path.join(ROOT, "target/release/bru"))
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--conns", default="32,256")
    ap.add_argument("--payloads", default="1k,10k,1m")
    ap.add_argument("--targets", default="direct,nginx,haproxy,bru,bru-consent")
    ap.add_argument("--rates", default="25,50,75", help="fixed rates, in %% of nginx's saturation at 256 conns")
    ap.add_argument("--oha-duration", type=int, default=5)
    ap.add_argument("--oha-conns", type=int, default=64)
    ap.add_argument("--no-rates", action="store_true")
    ap.add_argument("--syncs", action="store_true",
                    help="count each target's fsync and fdatasync calls during the load (perf stat on the "
                         "syscall tracepoints): the store's real syncs a request, beside its audit batches")
    ap.add_argument("--syscalls", default="",
                    help="comma-separated targets whose syscalls (and the upstream's) are counted by name "
                         "during each run (perf stat on every syscall tracepoint); logged a request")
    ap.add_argument("--ablation", action="store_true", help="the ablation ladder instead of the comparison")
    ap.add_argument("--baseline", help="a second benchmark build of bru (e.g. the commit before): every Bru "
                    "target is measured on both, interleaved in the same run; its rows end in @base")
    ap.add_argument("--memory", action="store_true", help="idle connections and a soak instead of the comparison")
    ap.add_argument("--soak", type=int, default=600, help="seconds of the soak (--memory)")
    ap.add_argument("--assertion", choices=sorted(JWS_ALG), default="es256",
                    help="how the current build's Bru targets sign Bru-Assertion (the ladder's too); the "
                         "baseline build keeps its default. bru-eddsa and bru-hs256 are targets of their own")
    ap.add_argument("--runtime", choices=["multi-thread", "per-core"],
                    help="`[server] runtime` of the current build's Bru targets (the ladder's too); the baseline "
                         "build keeps its default. bru-percore, bru-consent-percore and bru-passthrough-percore "
                         "are targets of their own")
    ap.add_argument("--keep", action="store_true", help="keep the work dir")
    ap.add_argument("--profile", default="",
                    help="comma-separated targets: perf record each one's first run (kept in the work dir)")
    ap.add_argument("--profile-flat", action="store_true",
                    help="--profile without call graphs, at 4,999 samples a second")
    args = ap.parse_args()
    args.conns = [int(c) for c in args.conns.split(",")]
    args.payloads = args.payloads.split(",")
    args.targets = args.targets.split(",")
    args.rates = [int(r) for r in args.rates.split(",")]
    args.syscalls = [t for t in args.syscalls.split(",") if t]
    args.profile = [t for t in args.profile.split(",") if t]

    work = tempfile.mkdtemp(prefix="bru-bench-", dir=os.environ.get("BENCH_DIR", ROOT + "/target"))
    world = World(args, work)
    try:
        made = {"direct": Direct(world), "nginx": Nginx(world), "haproxy": Haproxy(world)}
        made["bare-proxy"] = BareProxy(world, "bare-proxy", "multi-thread")
        made["bare-proxy-percore"] = BareProxy(world, "bare-proxy-percore", "per-core")
        alg = None if args.assertion == "es256" else args.assertion
        rt = args.runtime
        shared_bru = Bru(world, "bru", assertion=alg, runtime=rt)
        made["bru"] = shared_bru
        made["bru-consent"] = Bru(world, "bru-consent", consent=True, assertion=alg, runtime=rt)
        # Issue 21: the per-core runtime beside the current build's default, same run.
        made["bru-percore"] = Bru(world, "bru-percore", assertion=alg, runtime="per-core")
        made["bru-consent-percore"] = Bru(world, "bru-consent-percore", consent=True, assertion=alg,
                                          runtime="per-core")
        made["bru-passthrough-percore"] = Bru(world, "bru-passthrough-percore", stage="passthrough", audit="noop",
                                              assertion=alg, runtime="per-core")
        for other in ("eddsa", "hs256"):
            made[f"bru-{other}"] = Bru(world, f"bru-{other}", assertion=other)
            made[f"bru-consent-{other}"] = Bru(world, f"bru-consent-{other}", consent=True, assertion=other)
        for name, stage, audit, _ in LADDER:
            if name != "bru":
                made[name] = Bru(world, name, stage=stage, audit=audit, assertion=alg, runtime=rt)
            if args.baseline and stage not in NEW_RUNGS:
                made[name + BASELINE] = Bru(world, name + BASELINE, stage=stage, audit=audit,
                                            binary=args.baseline)
        if args.baseline:
            made["bru-consent" + BASELINE] = Bru(world, "bru-consent" + BASELINE, consent=True,
                                                 binary=args.baseline)
            # The per-core runtime's twins on the baseline build (its config
            # key is older than any baseline worth comparing).
            made["bru-percore" + BASELINE] = Bru(world, "bru-percore" + BASELINE, runtime="per-core",
                                                 binary=args.baseline)
            made["bru-consent-percore" + BASELINE] = Bru(world, "bru-consent-percore" + BASELINE,
                                                         consent=True, runtime="per-core",
                                                         binary=args.baseline)
        if args.memory:
            args.targets = ["nginx", "bru"]
        if args.ablation:
            args.targets = ["nginx"] + [name for name, _, _, _ in ladder_rows(args)]
            args.payloads = ["1k"]
            args.no_rates = True
        elif args.baseline:
            # Each Bru target followed by its twin on the baseline build.
            args.targets = [n for t in args.targets
                            for n in ([t, t + BASELINE] if t + BASELINE in made else [t])]
        targets = [made[n] for n in args.targets]
        if shared_bru not in targets:
            targets.append(shared_bru)  # its store directory hosts the fsync probe
            shared_bru.start()
            targets.remove(shared_bru)
        for t in targets:
            t.start()
        fsync_ms = fsync_latency_ms(f"{shared_bru.store_dir}/fsync-probe")
        cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                             capture_output=True, text=True).stdout.strip()
        print(f"## Bru against nginx and HAProxy, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
        print(f"- machine: {os.cpu_count()} cores ({cpu}), load average before the run "
              f"{os.getloadavg()[0]:.2f}; store on {fs_type(shared_bru.store_dir)} "
              f"(fdatasync of a 4 KiB append: median {fsync_ms:.3f} ms)")
        print(f"- layout: load generator (wrk, oha) on core {LOADGEN_CPU}; the proxy under test and the static "
              f"upstream (nginx, 1 worker, files from disk cache) on core {SERVER_CPU}")
        print("- every proxy terminates TLS (same certificate, TLS 1.3 negotiated by wrk) and keeps HTTP/1.1 "
              "connections to the upstream; `direct` is plain HTTP to the upstream")
        print("- bru: `GET /data/k429/sosialtjeneste/{payload}` (statutory: token, policy, durable decision "
              "record before forwarding, outcome record, Merkle tree); bru-consent: `GET /data/nav/inntekt/{payload}`"
              " under a granted consent, minimised to `aar`, `sum`")
        def version(cmd, line=0):
            try:
                out = subprocess.run(cmd, capture_output=True, text=True)
            except OSError:
                return f"{cmd[0]}: not installed"
            return ((out.stdout or "") + (out.stderr or "")).strip().split("\n")[line]
        print("- " + "; ".join([version(["nginx", "-v"]), version(["haproxy", "-v"]), version(["wrk", "-v"]),
                                version(["oha", "--version"])]))
        print()
        sys.stdout.flush()
        if args.memory:
            memory(world, targets, args)
            return 0
        log("saturation runs")
        rows = saturation(world, targets, args)
        broken = []
        for key, runs in rows.items():
            broken += guards(f"{key[0]} {key[1]} c={key[2]}", runs)
        if args.ablation:
            report_ladder(rows, args)
        else:
            report_saturation(rows, args, fsync_ms)
        if not args.no_rates and "nginx" in args.targets:
            nginx_rps = med([r["rps"] for r in rows[("nginx", "1k", max(args.conns))]])
            log("fixed-rate runs")
            rate_rows, rates = fixed_rate(world, targets, args, nginx_rps)
            for key, runs in rate_rows.items():
                broken += guards(f"{key[0]} {key[1]}%", runs)
            report_rates(rate_rows, rates, args)
        print("### Guards\n")
        if broken:
            print("BROKEN:")
            for b in broken:
                print(f"- {b}")
        else:
            print("- every answer was 2xx, no socket errors; after every Bru run the decision records and the "
                  "outcome records equal the requests the upstream saw")
        print(f"- the store was on {fs_type(shared_bru.store_dir)}, not tmpfs")
        up_cpu = max((med([r["upstream_cpu_s"] / r["cpu_s"] if r["cpu_s"] else None for r in runs]) or 0)
                     for key, runs in rows.items() if key[0] not in ("direct",))
        print(f"- the upstream used at most {up_cpu:.2f}× the CPU of the proxy under test in any cell "
              "(it shares the core; see the direct rows for its own ceiling)")
        return 1 if broken else 0
    finally:
        world.close()
        if not args.keep and not args.profile:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
