#!/usr/bin/python3
"""Local cluster test: three convserve-server replicas on 127.0.0.2-4, driven
by convserve-perf through two fronts in turn:

  round_robin  the client balances per call over an ipv4: target list, with
               client-side health checking;
  nginx        Debian's nginx proxies HTTP/2 gRPC (grpc_pass, nginx.conf here)
               on 127.0.0.5.

The client retries calls refused with UNAVAILABLE (a draining replica) or
RESOURCE_EXHAUSTED (a full queue; the request did not run).

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
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
PROXY_HOST = "127.0.0.5"
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


class Replica:
    """One convserve-server process, restartable on the same gRPC address."""

    def __init__(self, server_bin, host, workdir):
        self.server_bin, self.host, self.workdir = server_bin, host, workdir
        self.port = 0
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
             "--metrics-address", f"{self.host}:0", *SERVER_FLAGS],
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
            result = subprocess.run([cli_bin, "--address", self.address, "health",
                                     "--service", "convserve.v1.ConvService"],
                                    capture_output=True, text=True)
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
            with urllib.request.urlopen(f"http://{self.host}:{port}/metrics", timeout=2) as r:
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

    def __init__(self, replicas, workdir):
        self.replicas, self.workdir = replicas, workdir
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
        for old, new in (("listen 8080 http2;", f"listen {self.address} http2;"),
                         ("http {\n", "http {\n" + temp_paths)):
            if old not in conf:
                fail(f"nginx.conf has no {old.strip()!r} to adapt")
            conf = conf.replace(old, new, 1)
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
        [perf_bin, *front_args, *WORKLOAD, "--max-attempts", "5",
         "--retry-on", "UNAVAILABLE,RESOURCE_EXHAUSTED",
         "--concurrency", str(CONCURRENCY), "--requests", "10000000",
         "--duration", str(RUN_SECONDS), "--warmup-requests", "24", "--timeout-ms", "20000",
         "--json", result_json, "--latency-log", latency_log],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    server_bin, perf_bin, cli_bin = (os.path.abspath(p) for p in sys.argv[1:])
    workdir = tempfile.mkdtemp(prefix="convserve-cluster-")
    replicas = [Replica(server_bin, host, workdir) for host in HOSTS]
    nginx = None
    passed = False
    try:
        for replica in replicas:
            replica.start()
        for replica in replicas:
            replica.wait_serving(cli_bin)
        print("cluster: replicas " + ", ".join(r.address for r in replicas), flush=True)

        target = "ipv4:" + ",".join(r.address for r in replicas)
        run_phase("round_robin",
                  ["--target", target, "--lb-policy", "round_robin", "--health-check"],
                  replicas, replicas[1], perf_bin, cli_bin, workdir)

        nginx = Nginx(replicas, workdir)
        print(f"cluster: nginx on {nginx.address}", flush=True)
        run_phase("nginx", ["--address", nginx.address], replicas, replicas[2], perf_bin,
                  cli_bin, workdir, take_out=nginx.take_out, put_back=nginx.put_back)
        print("cluster: PASSED")
        passed = True
        return 0
    finally:
        if nginx:
            nginx.stop()
        for replica in replicas:
            replica.kill()
        if passed:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"cluster: logs kept in {workdir}")


if __name__ == "__main__":
    sys.exit(main())
