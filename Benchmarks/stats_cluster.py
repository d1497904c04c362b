#!/usr/bin/env python3
"""Stats in cluster mode against the embedded store, on the same data (issue 28), over real HTTP.

For each history length: PostgreSQL, VictoriaMetrics (the flags docs/cluster.md gives), a writer
replica R (`--remote-write-url`), a reader replica Q (`--stats-source`) and an embedded collector
E on the same control plane. DAYS days of one `bucket_traffic` line per bucket per day are
backfilled into E and through R (both with `--max-sample-age` raised, then restarted with the
defaults so that E seals its past days), then a `simulate --nodes NODES --buckets-per-node 10`
fleet reports for FLEET seconds to R, mirrored to E. Once Q has read the sealed days into its
cache, every stats endpoint is timed on E and on Q (p50, p99 = the slowest of a small sample,
one keep-alive connection), Q's TSDB requests per call are read from
`flashback_stats_source_requests_total{route}`, and each answer of Q is compared with E's.
Run from the repository root:

    swift build -c release --product flashback-collector
    python3 Benchmarks/stats_cluster.py --days 1,30

Prints one Markdown table row per (history, endpoint).
"""
import argparse
import base64
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

DAY = 86_400
PG = "/usr/lib/postgresql/15/bin"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, condition, timeout=300, every=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(every)
    sys.exit(f"timed out waiting for {what}")


class Collector:
    def __init__(self, binary, data, args, env):
        self.data = data
        self.port, self.udp = free_port(), free_port()
        os.makedirs(data, exist_ok=True)
        self.log = open(os.path.join(data, "collector.log"), "ab")
        self.process = subprocess.Popen(
            [binary, "serve", "--data-dir", data, "--http-address", f"127.0.0.1:{self.port}",
             "--udp-address", f"127.0.0.1:{self.udp}", "--log-level", "warning", *args],
            stdout=self.log, stderr=self.log, env=env)

        def ready():
            if self.process.poll() is not None:
                sys.exit(f"collector exited with {self.process.returncode}; see {data}/collector.log")
            try:
                return self.get("/-/ready")[0] == 200
            except OSError:
                return False
        wait_for(f"{data} to be ready", ready, timeout=120)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def get(self, path, headers=None, method="GET", body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data

    def metric(self, auth, prefix):
        _, body = self.get("/metrics", {"Authorization": auth})
        total = 0.0
        for line in body.decode().splitlines():
            if line.startswith(prefix):
                total += float(line.split()[-1])
        return total

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=60)


def start_postgres(root):
    directory = os.path.join(root, "pg")
    os.makedirs(directory)
    as_owner = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
    if os.getuid() == 0:
        shutil.chown(directory, "postgres")
    subprocess.check_call(as_owner + [f"{PG}/initdb", "-D", f"{directory}/data", "-U", "flashback", "--auth=trust", "--no-sync"],
                          stdout=subprocess.DEVNULL)
    port = free_port()
    process = subprocess.Popen(as_owner + [f"{PG}/postgres", "-D", f"{directory}/data", "-p", str(port), "-c", "listen_addresses=127.0.0.1",
                                           "-k", directory, "-c", "fsync=off"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    wait_for("PostgreSQL", up, timeout=60)

    def stop():
        subprocess.call(as_owner + [f"{PG}/pg_ctl", "-D", f"{directory}/data", "-m", "immediate", "-w", "stop"], stdout=subprocess.DEVNULL)
        process.wait()
    return stop, f"postgres://flashback@127.0.0.1:{port}/postgres?sslmode=disable"


def start_victoria(root):
    port = free_port()
    log = open(os.path.join(root, "vm.log"), "ab")
    process = subprocess.Popen(["victoria-metrics", "-storageDataPath", os.path.join(root, "vm"), "-httpListenAddr", f"127.0.0.1:{port}",
                                "-dedup.minScrapeInterval=1ms", "-search.latencyOffset=0s", "-retentionPeriod=100y", "-loggerLevel=WARN"],
                               stdout=log, stderr=log)

    def up():
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/health")
            return c.getresponse().status == 200
        except OSError:
            return False
    wait_for("VictoriaMetrics", up, timeout=60)
    return process, f"http://127.0.0.1:{port}"


def backfill(collectors, auth, buckets, days, now):
    """One line per bucket per day, `days` days ending a minute before `now`, to each collector."""
    lines = []

    def send():
        body = "\n".join(lines).encode()
        for collector in collectors:
            status, answer = collector.get("/write?precision=s", {"Authorization": auth}, "POST", body)
            if status != 204:
                sys.exit(f"/write answered {status}: {answer[:200]!r}")
        lines.clear()

    for day in range(days):
        stamp = now - 60 - (days - 1 - day) * DAY
        for b in range(buckets):
            lines.append(f"bucket_traffic,bucket=h{b},repo=hr{b % 50},host=hh{b % 4} "
                         f"upl_bytes={1000 + (b * 7 + day) % 5000}i,dwl_bytes={2000 + (b + day * 3) % 7000}i,"
                         f"size_change={(b + day) % 300 - 100}i,requests={1 + (b + day) % 20}i,latency_ms={10 + (b + day) % 90} {stamp}")
            if len(lines) >= 20_000:
                send()
    if lines:
        send()


def timed(collector, auth, method, path, body, calls):
    c = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=600)
    times, answer, first = [], b"", 0.0
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    for attempt in range(calls + 2):
        started = time.perf_counter()
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        answer = r.read()
        elapsed = (time.perf_counter() - started) * 1000
        if r.status != 200:
            sys.exit(f"{path} answered {r.status}: {answer[:300]!r}")
        if attempt == 0:
            first = elapsed
        if attempt >= 2:  # two warm-up calls
            times.append(elapsed)
    c.close()
    times.sort()
    if not times:
        return 0.0, 0.0, answer
    timed.first = first
    return statistics.median(times), times[-1], answer


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=".build/release/flashback-collector")
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--days", default="1,30", help="history lengths, comma-separated")
    parser.add_argument("--fleet-seconds", type=int, default=60)
    parser.add_argument("--calls", type=int, default=15)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    buckets = args.nodes * 10
    print("| history | request | embedded p50 / p99 ms | cluster p50 / p99 ms | ratio p50 / p99 | cluster first call ms | TSDB requests a call | same answer |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for days in [int(d) for d in args.days.split(",")]:
        root = tempfile.mkdtemp(prefix=f"stats-cluster-{days}d-")
        os.chmod(root, 0o755)
        stop_postgres, registry = start_postgres(root)
        vm, vm_url = start_victoria(root)
        env = dict(os.environ)
        env["FLASHBACK_JWT_SECRET"] = "stats-cluster-benchmark-secret-0123456789abcdef"
        with open(os.path.join(root, "master.key"), "w") as f:
            f.write(base64.b64encode(os.urandom(32)).decode() + "\n")
        os.chmod(os.path.join(root, "master.key"), 0o600)
        env["FLASHBACK_MASTER_KEY_FILE"] = os.path.join(root, "master.key")
        env["FLASHBACK_REGISTRY_URL"] = registry
        wide = ["--max-sample-age", str((days + 2) * DAY), "--retention-minute", str((days + 4) * DAY)]
        seal = ["--stats-seal-after", str(49 * 3600)]
        embedded = Collector(binary, os.path.join(root, "e"), wide, env)
        writer = Collector(binary, os.path.join(root, "r"), wide + seal + ["--remote-write-url", vm_url + "/api/v1/write"], env)
        auth = "Bearer " + subprocess.check_output([binary, "token", "--data-dir", os.path.join(root, "e"), "--org", "bench", "--user", "bench",
                                                    "--role", "owner", "--ttl", "7d"], text=True, env=env).strip()
        now = int(time.time())
        started = time.time()
        backfill([embedded, writer], auth, buckets, days, now)
        loaded = time.time() - started
        # The defaults: E seals its past days at start.
        embedded.stop()
        writer.stop()
        embedded = Collector(binary, os.path.join(root, "e"), [], env)
        writer = Collector(binary, os.path.join(root, "r"), seal + ["--remote-write-url", vm_url + "/api/v1/write"], env)
        reader = Collector(binary, os.path.join(root, "q"), seal + ["--stats-source", vm_url], env)
        status, pem = writer.get("/organization/bench/key", {"Authorization": auth, "Accept": "application/x-pem-file"}, "POST")
        if status != 200:
            sys.exit(f"organization key: {status} {pem[:200]!r}")
        key = os.path.join(root, "org.pem")
        with open(key, "wb") as f:
            f.write(pem)
        started = time.time()
        fleet = subprocess.run([binary, "simulate", "--org", "bench", "--key", key, "--nodes", str(args.nodes), "--buckets-per-node", "10",
                                "--interval", "10s", "--duration", str(args.fleet_seconds), "--target", writer.url, "--mirror", embedded.url],
                               capture_output=True, text=True, env=env)
        if fleet.returncode != 0:
            sys.exit(f"simulate failed: {fleet.stdout[-500:]}{fleet.stderr[-500:]}")
        simulated = time.time() - started
        destination = vm_url + "/api/v1/write"
        wait_for("the writer's backlog to drain",
                 lambda: writer.metric(auth, f'flashback_remote_write_backlog_samples{{destination="{destination}"}}') == 0, timeout=600, every=1)
        urllib_flush = http.client.HTTPConnection("127.0.0.1", int(vm_url.rsplit(":", 1)[1]), timeout=30)
        urllib_flush.request("GET", "/internal/force_flush")
        urllib_flush.getresponse().read()
        last_sealed = (now - 49 * 3600) // DAY - 1
        if days > 3:
            def cached():
                reader.get("/bucket/stats", {"Authorization": auth})
                return reader.metric(auth, "flashback_stats_cache_sealed_through_day") >= last_sealed
            wait_for("the reader's cache", cached, timeout=600, every=1)
        print(f"<!-- {days} days: backfilled {buckets * days} lines in {loaded:.1f} s; fleet of {args.nodes} nodes x 10 buckets "
              f"for {simulated:.0f} s: {fleet.stdout.strip().splitlines()[-1] if fleet.stdout.strip() else ''} -->", flush=True)
        status, body = embedded.get("/stats/nodes/minute", {"Authorization": auth})
        bucket = sorted({row["bucketId"] for row in json.loads(body)["data"]})[0]
        start_date = time.strftime("%Y-%m-%d", time.gmtime(now - (days - 1) * DAY))
        today = time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(now))
        requests = [
            ("/stats/nodes/minute", "GET", "/stats/nodes/minute", None),
            ("/stats/nodes/daily", "GET", "/stats/nodes/daily", None),
            # The last 10 minutes: an hour of 20,000 traffic groups is over --stats-max-rows.
            ("/stats/minute", "GET", "/stats/minute?startDate=" + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 600)), None),
            ("/stats/daily", "GET", f"/stats/daily?startDate={start_date}", None),
            ("/bucket/stats", "GET", "/bucket/stats", None),
            ("/bucket/stats", "GET", f"/bucket/stats?bucketId={bucket}", None),
            ("/repo/stats", "GET", "/repo/stats", None),
            ("/bucket/{bucketId}/status", "GET", f"/bucket/{bucket}/status", None),
            ("/bucket/{bucketId}/stats", "POST", f"/bucket/{bucket}/stats", json.dumps({"day": today})),
        ]
        for route, method, path, body in requests:
            e50, e99, e_answer = timed(embedded, auth, method, path, body, args.calls)
            counter = f'flashback_stats_source_requests_total{{route="{route}"}}'
            time.sleep(1.5)  # the reader's /metrics is refreshed about once a second
            before = reader.metric(auth, counter)
            q50, q99, q_answer = timed(reader, auth, method, path, body, args.calls)
            cold = timed.first
            time.sleep(1.5)
            asked = (reader.metric(auth, counter) - before) / (args.calls + 2)
            # Answers that depend on the clock (today's uptime so far) are compared with the
            # embedded answer just before and just after.
            _, _, e_after = timed(embedded, auth, method, path, body, 0)
            same = "yes" if q_answer in (e_answer, e_after) else f"no ({len(e_answer)} vs {len(q_answer)} bytes)"
            shown = path.replace(bucket, "<one>").split("?startDate")[0]
            print(f"| {days} d | `{method} {shown}` | {e50:.1f} / {e99:.1f} | {q50:.1f} / {q99:.1f} | "
                  f"{q50 / e50:.2f} / {q99 / e99:.2f} | {cold:.1f} | {asked:.1f} | {same} |", flush=True)
        if os.environ.get("STATS_CLUSTER_PAUSE"):
            print(f"<!-- paused: reader on port {reader.port}, pid {reader.process.pid}; auth {auth} -->", flush=True)
            input()
        for process in (embedded, writer, reader):
            process.stop()
        vm.terminate()
        vm.wait()
        stop_postgres()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
