#!/usr/bin/python3
"""Local cluster test: three convserve-server replicas on 127.0.0.2-4, serving
TLS with bearer tokens as in Kubernetes, driven by convserve-perf through two
fronts in turn:

  round_robin  the client balances per call over the addresses a DNS name
               resolves to (dns://127.0.0.1:PORT/convserve:PORT, answered by a
               small DNS server of this test on loopback, as a headless
               Service's DNS does), with client-side health checking;
  nginx        Debian's nginx on 127.0.0.5 terminates TLS and proxies HTTP/2
               gRPC to the replicas over TLS (grpc_pass grpcs://, nginx.conf
               here), verifying their certificate.

At start the test makes a throwaway CA, a certificate for "convserve" and the
loopback addresses, and a token (make-certs.sh, with openssl), laid out as the
kubelet writes Secret volumes (files behind an atomically swapped ..data
link). The client verifies the replicas with --tls-ca and sends the token with
--token-file, and retries calls refused with UNAVAILABLE (a draining replica)
or RESOURCE_EXHAUSTED (a full queue; the request did not run).

Before the load, calls without a token (or with a wrong one) must get
UNAUTHENTICATED through both fronts, and plaintext must be refused. After it,
the certificate and token are rotated by swapping the Secret folders: every
replica must serve the new certificate and take the new token, and refuse the
old one, within seconds and without a restart.

Mid-run one replica gets SIGTERM (it drains and exits 0) and a few seconds
later starts again on the same address. Checks: every request answered OK,
every replica served a fair share (from its own /metrics, before and after
its restart), fewer than 1% of calls met a full queue (a replica's queue
bound refuses the rest at once), and the restarted replica served again. Prints a report with the per-replica shares and the p99 latency
before and during the restart.

Usage: cluster_test.py SERVER_BIN PERF_BIN CLI_BIN
"""
import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
PROXY_HOST = "127.0.0.5"
# The name the replicas' certificate carries: clients of the DNS front dial it,
# and nginx checks it on the replicas (the upstream's name in nginx.conf).
CLUSTER_NAME = "convserve"
CERT_NAMES = [f"DNS:{CLUSTER_NAME}"] + [f"IP:{h}" for h in HOSTS + [PROXY_HOST]]
RELOAD_S = 1  # --reload-s: how often the replicas re-read the TLS and tokens files
# gRPC's c-ares resolver is the one that asks the DNS server a target names.
GRPC_ENV = dict(os.environ, GRPC_DNS_RESOLVER="ares")
MAX_QUEUE = 10  # per replica; all 12 callers on one replica would overflow it
CONCURRENCY = 12
RUN_SECONDS = 24
KILL_AT_SECONDS = 7
DOWN_SECONDS = 3
# Each replica computes with one thread: three replicas share this machine.
SERVER_FLAGS = ["--workers", "1", "--threads-per-worker", "1",
                "--max-queue", str(MAX_QUEUE), "--grace-period-s", "5",
                "--max-connection-age-s", "60"]
WORKLOAD = ["--mode", "unary", "--op", "conv2d", "--input-shape", "1,32,32,32",
            "--filter-shape", "3,3,32,32", "--padding", "SAME"]
REQUESTS_RE = re.compile(r'^convserve_requests_total\{[^}]*code="OK"[^}]*\} (\S+)$', re.M)
REFUSED_RE = re.compile(
    r'^convserve_requests_total\{[^}]*code="RESOURCE_EXHAUSTED"[^}]*\} (\S+)$', re.M)
QUEUE_RE = re.compile(r'^convserve_queue_depth (\S+)$', re.M)


def fail(message):
    print(f"cluster: FAILED: {message}", flush=True)
    sys.exit(1)


def free_port(host):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def shared_free_port(hosts):
    """A port free on every host: behind one DNS name the replicas share a port."""
    for _ in range(100):
        port = free_port(hosts[0])
        try:
            for host in hosts[1:]:
                with socket.socket() as s:
                    s.bind((host, port))
            return port
        except OSError:
            continue
    fail(f"no port free on all of {hosts}")


class SecretDir:
    """A folder laid out as the kubelet writes a Secret volume: each file is a
    symlink to ..data/<file>, and ..data links to a versioned folder that
    update() replaces with one rename, so a reader sees all old files or all
    new ones (a certificate never meets the other key)."""

    def __init__(self, path):
        self.path = path
        self.version = 0
        os.makedirs(path)

    def file(self, name):
        return os.path.join(self.path, name)

    def update(self, files):
        """files: {name in the folder: file to copy there}."""
        self.version += 1
        version = f"..v{self.version}"
        os.mkdir(os.path.join(self.path, version))
        for name, source in files.items():
            shutil.copy(source, os.path.join(self.path, version, name))
            if not os.path.islink(self.file(name)):
                os.symlink(os.path.join("..data", name), self.file(name))
        os.symlink(version, os.path.join(self.path, "..data_tmp"))
        os.replace(os.path.join(self.path, "..data_tmp"), os.path.join(self.path, "..data"))
        if self.version > 1:
            shutil.rmtree(os.path.join(self.path, f"..v{self.version - 1}"))


class Pki:
    """The throwaway CA, the replicas' certificate and the client's token
    (make-certs.sh), and the Secret folders the replicas read them from."""

    def __init__(self, workdir):
        self.source = os.path.join(workdir, "pki")
        self.tls = SecretDir(os.path.join(workdir, "secrets", "tls"))
        self.auth = SecretDir(os.path.join(workdir, "secrets", "auth"))
        self.ca = os.path.join(self.source, "client", "ca.crt")
        self.token = os.path.join(self.source, "client", "token")
        self.issue()

    def issue(self):
        """A new certificate and token (the first, or a rotation)."""
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "make-certs.sh")
        result = subprocess.run(["bash", script, self.source, *CERT_NAMES],
                                env=dict(os.environ, DAYS="1"), capture_output=True, text=True)
        if result.returncode != 0:
            fail(f"make-certs.sh failed:\n{result.stdout}{result.stderr}")
        tls = os.path.join(self.source, "tls")
        self.tls.update({name: os.path.join(tls, name)
                         for name in ("tls.crt", "tls.key", "ca.crt")})
        self.auth.update({"tokens": os.path.join(self.source, "auth", "tokens")})

    def server_flags(self):
        return ["--tls-cert", self.tls.file("tls.crt"), "--tls-key", self.tls.file("tls.key"),
                "--auth-tokens-file", self.auth.file("tokens"), "--reload-s", str(RELOAD_S)]

    def client_flags(self, token=True):
        return ["--tls-ca", self.ca] + (["--token-file", self.token] if token else [])

    def certificate_der(self):
        return ssl.PEM_cert_to_DER_cert(open(self.tls.file("tls.crt")).read())


class LoopbackDns(threading.Thread):
    """A DNS server on 127.0.0.1 that answers `name` with A records of the
    replicas' addresses (no records of other types; NXDOMAIN for other names),
    as a Kubernetes headless Service's DNS does. gRPC's c-ares resolver asks it
    when a target names it: dns://127.0.0.1:PORT/name:port."""

    def __init__(self, name, addresses):
        super().__init__(daemon=True)
        self.name, self.addresses = name, addresses
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.queries = 0
        self.done = threading.Event()
        self.start()

    def answer(self, query):
        if len(query) < 12:
            return None
        qid, flags, questions = struct.unpack(">HHH", query[:6])
        if flags & 0x8000 or questions != 1:  # a reply, or not one question
            return None
        i, labels = 12, []
        while i < len(query) and query[i]:
            if query[i] & 0xC0 or i + 1 + query[i] > len(query):
                return None
            labels.append(query[i + 1:i + 1 + query[i]])
            i += 1 + query[i]
        end = i + 5  # the name's final zero, QTYPE, QCLASS
        if end > len(query):
            return None
        qtype, _ = struct.unpack(">HH", query[i + 1:end])
        name = b".".join(labels).decode("ascii", "replace").lower()
        rcode = 0 if name == self.name else 3  # NXDOMAIN
        answers = self.addresses if rcode == 0 and qtype == 1 else []
        records = b"".join(b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 5, 4) + socket.inet_aton(a)
                           for a in answers)
        header = struct.pack(">HHHHHH", qid, 0x8400 | (flags & 0x0100) | rcode, 1, len(answers),
                             0, 0)
        return header + query[12:end] + records

    def run(self):
        while not self.done.is_set():
            try:
                query, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            reply = self.answer(query)
            if reply:
                self.queries += 1
                self.sock.sendto(reply, peer)

    def stop(self):
        self.done.set()
        self.join()
        self.sock.close()


class Replica:
    """One convserve-server process, restartable on the same gRPC address."""

    def __init__(self, server_bin, host, port, pki, workdir):
        self.server_bin, self.host, self.workdir = server_bin, host, workdir
        self.port = port
        self.pki = pki
        self.process = None
        self.log = None
        self.metrics_port = 0
        self.lifetimes = 0
        self.served_before = 0  # OK requests of earlier lifetimes
        self.served_now = 0     # OK requests of this lifetime, last scraped
        self.refused_before = 0  # requests refused with a full queue, likewise
        self.refused_now = 0
        self.max_queue_seen = 0
        self.lock = threading.Lock()

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    def log_path(self):
        return os.path.join(self.workdir, f"server-{self.host}-{self.lifetimes}.log")

    def start(self):
        self.lifetimes += 1
        if self.log:
            self.log.close()
        self.log = open(self.log_path(), "w")
        self.process = subprocess.Popen(
            [self.server_bin, "--address", f"{self.host}:{self.port}",
             "--metrics-address", f"{self.host}:0", *SERVER_FLAGS, *self.pki.server_flags()],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = open(self.log_path()).read()
            match = re.search(r"\(port (\d+)\), metrics on port (\d+)", text)
            if match:
                self.port = int(match.group(1))
                with self.lock:
                    self.metrics_port = int(match.group(2))
                    self.served_now = 0
                    self.refused_now = 0
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        fail(f"replica {self.host} did not start:\n{open(self.log_path()).read()}")

    def wait_serving(self, cli_bin):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            result = subprocess.run([cli_bin, "--address", self.address,
                                     *self.pki.client_flags(token=False), "--timeout", "5",
                                     "health", "--service", "convserve.v1.ConvService"],
                                    capture_output=True, text=True, env=GRPC_ENV)
            if result.returncode == 0:
                return
            time.sleep(0.1)
        fail(f"replica {self.address} never reported SERVING")

    def stop(self):
        """SIGTERM: the replica drains and must exit 0 within its grace period."""
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            fail(f"replica {self.address} did not exit within 30 s of SIGTERM")
        if code != 0:
            fail(f"replica {self.address} exited {code} after SIGTERM:\n"
                 f"{open(self.log_path()).read()}")
        with self.lock:
            self.served_before += self.served_now
            self.served_now = 0
            self.refused_before += self.refused_now
            self.refused_now = 0
            self.metrics_port = 0

    def scrape(self):
        """Reads /metrics: OK requests of this lifetime and the queue depth."""
        with self.lock:
            port = self.metrics_port
        if not port:
            return
        try:
            with urllib.request.urlopen(f"https://{self.host}:{port}/metrics", timeout=2,
                                        context=ssl.create_default_context(cafile=self.pki.ca)) as r:
                text = r.read().decode()
        except OSError:
            return  # exiting or not yet up: the last reading stands
        served = int(sum(float(v) for v in REQUESTS_RE.findall(text)))
        refused = int(sum(float(v) for v in REFUSED_RE.findall(text)))
        queue = QUEUE_RE.search(text)
        with self.lock:
            if port == self.metrics_port:
                self.served_now = max(self.served_now, served)
                self.refused_now = max(self.refused_now, refused)
            if queue:
                self.max_queue_seen = max(self.max_queue_seen, int(float(queue.group(1))))

    def served(self):
        with self.lock:
            return self.served_before + self.served_now

    def refused(self):
        with self.lock:
            return self.refused_before + self.refused_now

    def kill(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.log:
            self.log.close()


class Monitor(threading.Thread):
    """Scrapes every replica's metrics every 100 ms while the load runs."""

    def __init__(self, replicas):
        super().__init__(daemon=True)
        self.replicas = replicas
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            for replica in self.replicas:
                replica.scrape()
            self.done.wait(0.1)

    def stop(self):
        self.done.set()
        self.join()
        for replica in self.replicas:
            replica.scrape()


class Nginx:
    """nginx with deploy/cluster/nginx.conf, pointed at the replicas.

    nginx does not watch the replicas' health, so, as Kubernetes removes a
    terminating pod's endpoints before its preStop hook ends, take_out()
    reloads nginx without a replica before it gets SIGTERM, and put_back()
    adds it again once it is SERVING.
    """

    def __init__(self, replicas, pki, workdir):
        self.replicas, self.pki, self.workdir = replicas, pki, workdir
        self.port = free_port(PROXY_HOST)
        self.address = f"{PROXY_HOST}:{self.port}"
        self.path = os.path.join(workdir, "nginx.conf")
        self.write_config(down=None)
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.path.exists(nginx):
            fail("nginx not found (scripts/install-deps.sh installs it)")
        self.process = subprocess.Popen(
            [nginx, "-p", workdir, "-c", self.path, "-e",
             os.path.join(workdir, "nginx-error.log"),
             "-g", f"daemon off; pid {workdir}/nginx.pid;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection((PROXY_HOST, self.port), timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.05)
        fail("nginx did not start:\n" +
             open(os.path.join(workdir, "nginx-error.log")).read())

    def write_config(self, down):
        conf = open(os.path.join(os.path.dirname(__file__), "nginx.conf")).read()
        compose = open(os.path.join(os.path.dirname(__file__), "compose.yaml")).read()
        for i, replica in enumerate(self.replicas, start=1):
            # nginx.conf and compose.yaml describe the same replicas.
            if not re.search(rf"^  convserve-{i}:$", compose, re.M):
                fail(f"compose.yaml has no service convserve-{i}, which nginx.conf names")
            mark = " down" if replica is down else ""
            conf, found = re.subn(rf"server convserve-{i}:50051 ([^;]*);",
                                  rf"server {replica.address} \1{mark};", conf)
            if found != 1:
                fail(f"nginx.conf has no upstream server convserve-{i}:50051")
        # Keep nginx's files in the work folder, so that it needs no root.
        temp_paths = "".join(f"  {kind}_temp_path {self.workdir}/nginx-{kind};\n" for kind in
                             ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        if "grpc_pass grpcs://convserve;" not in conf or "grpc_ssl_verify on;" not in conf:
            fail("nginx.conf must proxy to the replicas over TLS and verify them "
                 "(grpc_pass grpcs://convserve; grpc_ssl_verify on;)")
        for old, new in (("listen 8443 ssl http2;", f"listen {self.address} ssl http2;"),
                         ("http {\n", "http {\n" + temp_paths)):
            if old not in conf:
                fail(f"nginx.conf has no {old.strip()!r} to adapt")
            conf = conf.replace(old, new, 1)
        # The certificate, its key and the CA, from the replicas' Secret folder.
        for name in ("tls.crt", "tls.key", "ca.crt"):
            if f"/etc/nginx/certs/{name};" not in conf:
                fail(f"nginx.conf does not read /etc/nginx/certs/{name}")
            conf = conf.replace(f"/etc/nginx/certs/{name};", f"{self.pki.tls.file(name)};")
        open(self.path, "w").write(conf)

    def reload(self, down):
        self.write_config(down)
        self.process.send_signal(signal.SIGHUP)
        time.sleep(1)  # new workers take over; the old ones finish their calls

    def take_out(self, replica):
        self.reload(down=replica)

    def put_back(self, _replica):
        self.reload(down=None)

    def stop(self):
        self.process.terminate()
        self.process.wait()


def percentile(values, p):
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


def run_phase(name, front_args, replicas, victim, perf_bin, cli_bin, workdir,
              take_out=lambda replica: None, put_back=lambda replica: None):
    """Drives the load through one front while `victim` is stopped and restarted
    (take_out and put_back tell the front, where it needs telling)."""
    served_at_start = [r.served() for r in replicas]
    refused_at_start = [r.refused() for r in replicas]
    for replica in replicas:
        replica.max_queue_seen = 0
    monitor = Monitor(replicas)
    monitor.start()
    latency_log = os.path.join(workdir, f"{name}-latency.csv")
    result_json = os.path.join(workdir, f"{name}.json")
    perf = subprocess.Popen(
        [perf_bin, *front_args, *replicas[0].pki.client_flags(), *WORKLOAD, "--max-attempts", "5",
         "--retry-on", "UNAVAILABLE,RESOURCE_EXHAUSTED",
         "--concurrency", str(CONCURRENCY), "--requests", "10000000",
         "--duration", str(RUN_SECONDS), "--warmup-requests", "24", "--timeout-ms", "20000",
         "--json", result_json, "--latency-log", latency_log],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=GRPC_ENV)
    try:
        time.sleep(KILL_AT_SECONDS)
        killed_at = time.time()
        take_out(victim)
        victim.stop()
        time.sleep(DOWN_SECONDS)
        victim.start()
        victim.wait_serving(cli_bin)
        put_back(victim)
        back_at = time.time()
        output, _ = perf.communicate(timeout=RUN_SECONDS + 120)
    finally:
        if perf.poll() is None:
            perf.kill()
            perf.wait()
        monitor.stop()
    print(output, end="")
    if perf.returncode != 0:
        fail(f"{name}: convserve-perf exited {perf.returncode}")

    step = json.load(open(result_json))["steps"][0]
    samples = []
    for line in open(latency_log).read().splitlines()[1:]:
        _, _, end_ms, latency_us, code = line.split(",")
        samples.append((int(end_ms) / 1000.0, float(latency_us), int(code)))
    sent = len(samples)
    answered = sum(1 for _, _, code in samples if code == 0)
    before = [lat for end, lat, code in samples if end < killed_at and code == 0]
    during = [lat for end, lat, code in samples
              if killed_at <= end <= back_at + 2 and code == 0]
    served = [r.served() - s for r, s in zip(replicas, served_at_start)]
    refused = [r.refused() - s for r, s in zip(replicas, refused_at_start)]
    total = sum(served)

    print(f"cluster {name}: {sent} requests sent, {answered} answered OK, "
          f"errors {step['errors'] or 'none'}; {step['req_per_s']:.0f} req/s")
    for replica, count, refusals in zip(replicas, served, refused):
        share = count / total if total else 0
        note = " (restarted)" if replica is victim else ""
        print(f"cluster {name}:   replica {replica.host}{note}: {count} requests "
              f"({100 * share:.1f}%), queue at most {replica.max_queue_seen} of {MAX_QUEUE}, "
              f"{refusals} refused with a full queue and retried elsewhere")
    print(f"cluster {name}: p50/p99 before the restart {percentile(before, 0.5) / 1000:.1f}/"
          f"{percentile(before, 0.99) / 1000:.1f} ms ({len(before)} requests); during it "
          f"(SIGTERM to SERVING again + 2 s, {back_at - killed_at:.1f} s) "
          f"{percentile(during, 0.5) / 1000:.1f}/{percentile(during, 0.99) / 1000:.1f} ms "
          f"({len(during)} requests)", flush=True)

    if sent == 0 or answered != sent or step["errors"]:
        fail(f"{name}: {sent - answered} of {sent} requests were not answered OK: "
             f"{step['errors']}")
    if total < 0.9 * answered:
        fail(f"{name}: the replicas' metrics count {total} requests, the client {answered}")
    for replica, count in zip(replicas, served):
        if count < 0.15 * total:
            fail(f"{name}: replica {replica.host} served {count} of {total} requests")
    if sum(refused) > 0.01 * total:
        fail(f"{name}: {sum(refused)} calls met a full queue: the load was not spread")
    after_restart = victim.served_now
    if after_restart < 0.05 * total:
        fail(f"{name}: the restarted replica served only {after_restart} requests after "
             f"coming back")
    print(f"cluster {name}: the restarted replica served {after_restart} requests after it "
          "came back", flush=True)


def run_tool(args, timeout=30):
    """Runs convserve-cli or convserve-perf: (exit code, output)."""
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=GRPC_ENV)
    except subprocess.TimeoutExpired:
        fail(f"{' '.join(args)} did not end within {timeout} s")
    return result.returncode, result.stdout + result.stderr


def check_auth(cli_bin, perf_bin, pki, fronts):
    """Through each front: calls without a token, or with a wrong one, get
    UNAUTHENTICATED; with the token they are answered; health needs no token;
    plaintext is refused."""
    wrong = os.path.join(os.path.dirname(pki.token), "wrong-token")
    with open(wrong, "w") as f:
        f.write("not-the-token")
    for front, address in fronts:
        cli = [cli_bin, "--address", address, "--timeout", "10"]
        code, out = run_tool(cli + pki.client_flags(token=False) + ["info"])
        if code == 0 or "UNAUTHENTICATED" not in out:
            fail(f"{front}: info without a token was not refused with UNAUTHENTICATED: {out}")
        code, out = run_tool(cli + ["--tls-ca", pki.ca, "--token-file", wrong, "info"])
        if code == 0 or "UNAUTHENTICATED" not in out:
            fail(f"{front}: info with a wrong token was not refused with UNAUTHENTICATED: {out}")
        code, out = run_tool([perf_bin, "--address" if front == "nginx" else "--target", address,
                              *pki.client_flags(token=False), *WORKLOAD, "--requests", "1",
                              "--warmup-requests", "0", "--timeout-ms", "10000"])
        if code == 0 or "UNAUTHENTICATED" not in out:
            fail(f"{front}: a conv2d without a token was not refused with UNAUTHENTICATED: {out}")
        code, out = run_tool(cli + pki.client_flags() + ["info"])
        if code != 0:
            fail(f"{front}: info with the token failed: {out}")
        code, out = run_tool(cli + pki.client_flags(token=False) + ["health"])
        if code != 0:
            fail(f"{front}: health without a token failed: {out}")
        code, out = run_tool(cli + ["health"])
        if code == 0:
            fail(f"{front}: a plaintext health call was answered: {out}")
        print(f"cluster: {front}: without a token or with a wrong one: UNAUTHENTICATED (info, "
              "conv2d); with the token: answered; health without a token: SERVING; "
              "plaintext: refused", flush=True)


def served_certificate(host, port, ca):
    """The certificate a new TLS connection to host:port gets (DER), verified
    against `ca` and host."""
    context = ssl.create_default_context(cafile=ca)
    context.set_alpn_protocols(["h2"])
    with socket.create_connection((host, port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            return tls.getpeercert(binary_form=True)


def check_rotation(cli_bin, pki, replicas, nginx):
    """Rotates the certificate and the token by swapping the Secret folders, as
    the kubelet does: within a few --reload-s every replica serves the new
    certificate, takes the new token and refuses the old one, without a
    restart (nginx, which reads its files at start-up, is reloaded)."""
    old_token = pki.token + ".old"
    shutil.copy(pki.token, old_token)
    old_certificate = pki.certificate_der()
    rotated_at = time.monotonic()
    pki.issue()
    new_certificate = pki.certificate_der()
    if new_certificate == old_certificate:
        fail("make-certs.sh issued the same certificate twice")
    nginx.reload(down=None)
    deadline = rotated_at + 10 * RELOAD_S + 10
    pending = {r.host: r for r in replicas}
    while pending and time.monotonic() < deadline:
        for host, replica in list(pending.items()):
            try:
                served = served_certificate(replica.host, replica.port, pki.ca)
            except (OSError, ssl.SSLError):
                continue
            cli = [cli_bin, "--address", replica.address, "--timeout", "10"]
            new_ok = run_tool(cli + pki.client_flags() + ["info"])[0] == 0
            code, out = run_tool(cli + ["--tls-ca", pki.ca, "--token-file", old_token, "info"])
            old_refused = code != 0 and "UNAUTHENTICATED" in out
            if served == new_certificate and new_ok and old_refused:
                del pending[host]
        time.sleep(0.2)
    if pending:
        fail(f"replicas {sorted(pending)} did not take the rotated certificate and token within "
             f"{deadline - rotated_at:.0f} s")
    taken = time.monotonic() - rotated_at
    code, out = run_tool([cli_bin, "--address", nginx.address, *pki.client_flags(), "info"])
    if code != 0:
        fail(f"nginx: info with the rotated token failed: {out}")
    print(f"cluster: rotation: all replicas served the new certificate and took the new token "
          f"(the old one: UNAUTHENTICATED) {taken:.1f} s after the Secret folders were swapped, "
          "without a restart", flush=True)


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    server_bin, perf_bin, cli_bin = (os.path.abspath(p) for p in sys.argv[1:])
    if not shutil.which("openssl"):
        fail("openssl not found (scripts/install-deps.sh installs it)")
    workdir = tempfile.mkdtemp(prefix="convserve-cluster-")
    replicas = []
    dns = nginx = None
    passed = False
    try:
        pki = Pki(workdir)
        port = shared_free_port(HOSTS)
        replicas = [Replica(server_bin, host, port, pki, workdir) for host in HOSTS]
        dns = LoopbackDns(CLUSTER_NAME, HOSTS)
        for replica in replicas:
            replica.start()
        for replica in replicas:
            replica.wait_serving(cli_bin)
        target = f"dns://127.0.0.1:{dns.port}/{CLUSTER_NAME}:{port}"
        print("cluster: replicas " + ", ".join(r.address for r in replicas) +
              f" (TLS, tokens), resolved as {target}", flush=True)
        nginx = Nginx(replicas, pki, workdir)
        print(f"cluster: nginx on {nginx.address} (TLS to clients and to the replicas)",
              flush=True)
        check_auth(cli_bin, perf_bin, pki, [("round_robin", target), ("nginx", nginx.address)])

        run_phase("round_robin",
                  ["--target", target, "--lb-policy", "round_robin", "--health-check"],
                  replicas, replicas[1], perf_bin, cli_bin, workdir)
        if dns.queries == 0:
            fail("the round_robin front never asked the test's DNS server")

        run_phase("nginx", ["--address", nginx.address], replicas, replicas[2], perf_bin,
                  cli_bin, workdir, take_out=nginx.take_out, put_back=nginx.put_back)

        check_rotation(cli_bin, pki, replicas, nginx)
        print("cluster: PASSED")
        passed = True
        return 0
    finally:
        if nginx:
            nginx.stop()
        for replica in replicas:
            replica.kill()
        if dns:
            dns.stop()
        if passed:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"cluster: logs kept in {workdir}")


if __name__ == "__main__":
    sys.exit(main())
