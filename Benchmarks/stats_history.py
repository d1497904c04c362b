#!/usr/bin/env python3
"""Stats cost against retained history (issue 28), embedded store, over real HTTP.

For each history length: a fresh collector (release binary) with `--max-sample-age` raised takes
one `bucket_traffic` line (5 fields) per bucket per day for the last DAYS days through `/write`;
it is then restarted with the default 48 h window, so the past days are sealed into day records
(as on a collector that has run that long), and every stats endpoint is timed CALLS times on one
keep-alive connection (p50, p99 = the slowest of a small sample). Run from the repository root:

    swift build -c release --product flashback-collector
    python3 Benchmarks/stats_history.py --buckets 1000 --days 1,400
    python3 Benchmarks/stats_history.py --buckets 10000 --days 365 --calls 15

Prints one Markdown table row per (history, endpoint).
"""
import argparse
import http.client
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

DAY = 86_400


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Collector:
    def __init__(self, binary, data, args):
        self.binary, self.data = binary, data
        self.port, self.udp = free_port(), free_port()
        self.log = open(os.path.join(data, "collector.log"), "ab")
        self.process = subprocess.Popen(
            [binary, "serve", "--data-dir", data, "--http-address", f"127.0.0.1:{self.port}",
             "--udp-address", f"127.0.0.1:{self.udp}", *(args if "--log-level" in args else [*args, "--log-level", "warning"])],
            stdout=self.log, stderr=self.log)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"collector exited with {self.process.returncode}; see {data}/collector.log")
            try:
                status, _ = self.get("/-/ready")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        sys.exit("collector not ready after 120 s")

    def connection(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)

    def get(self, path, headers=None):
        c = self.connection()
        try:
            c.request("GET", path, headers=headers or {})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def rss_mib(self):
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=120)
        self.log.close()


def token(binary, data):
    return subprocess.check_output([binary, "token", "--data-dir", data, "--org", "bench", "--user", "bench",
                                    "--role", "owner", "--ttl", "7d"], text=True).strip()


def backfill(collector, auth, buckets, days, now):
    """One line per bucket per day, `days` days ending a minute before `now`."""
    c = collector.connection()
    lines = []

    def send():
        body = "\n".join(lines).encode()
        c.request("POST", "/write?precision=s", body=body, headers={"Authorization": auth})
        r = c.getresponse()
        r.read()
        if r.status != 204:
            sys.exit(f"/write answered {r.status}")
        lines.clear()

    for day in range(days):
        stamp = now - 60 - (days - 1 - day) * DAY
        for b in range(buckets):
            lines.append(f"bucket_traffic,bucket=b{b},repo=r{b % 50},host=h{b % 4} "
                         f"upl_bytes={1000 + (b * 7 + day) % 5000}i,dwl_bytes={2000 + (b + day * 3) % 7000}i,"
                         f"size_change={(b + day) % 300 - 100}i,requests={1 + (b + day) % 20}i,latency_ms={10 + (b + day) % 90} {stamp}")
            if len(lines) >= 20_000:
                send()
    if lines:
        send()
    c.close()


def sealed_records(collector):
    status, body = collector.get("/metrics")
    for line in body.decode().splitlines():
        if line.startswith("flashback_day_records_sealed_total"):
            return float(line.split()[-1])
    return 0.0


def timed_curl(collector, auth, path, calls):
    """As the issue reads a large answer: `curl -o /dev/null`, one process a call (the Python
    client would take a core from the collector on this two-core machine)."""
    times = []
    for attempt in range(calls + 2):
        out = subprocess.check_output(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total} %{size_download}",
                                       "-H", f"Authorization: {auth}", f"http://127.0.0.1:{collector.port}{path}"], text=True)
        status, seconds, size = out.split()
        if status != "200":
            sys.exit(f"{path} answered {status}")
        if attempt >= 2:
            times.append(float(seconds) * 1000)
    times.sort()
    return statistics.median(times), times[-1], int(size)


def timed(collector, auth, path, calls):
    c = collector.connection()
    times, size = [], 0
    for attempt in range(calls + 2):
        started = time.perf_counter()
        c.request("GET", path, headers={"Authorization": auth})
        r = c.getresponse()
        body = r.read()
        elapsed = (time.perf_counter() - started) * 1000
        if r.status != 200:
            sys.exit(f"{path} answered {r.status}: {body[:200]!r}")
        size = len(body)
        if attempt >= 2:  # two warm-up calls
            times.append(elapsed)
    c.close()
    times.sort()
    return statistics.median(times), times[-1], size


def slow_client(collector, auth, path, chunk=256 << 10, pause=0.02, drop_after=None):
    """Reads the answer `chunk` bytes every `pause` seconds (or closes after `drop_after` bytes);
    returns (bytes read, seconds, peak collector RSS in MiB while reading)."""
    sock = socket.create_connection(("127.0.0.1", collector.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n".encode())
    started, read, peak = time.time(), 0, collector.rss_mib()
    while True:
        data = sock.recv(chunk)
        if not data:
            break
        read += len(data)
        peak = max(peak, collector.rss_mib())
        if drop_after is not None and read >= drop_after:
            break
        time.sleep(pause)
    sock.close()
    if drop_after is not None:
        # The server notices the closed connection and stops producing.
        for _ in range(20):
            time.sleep(0.1)
            peak = max(peak, collector.rss_mib())
    return read, time.time() - started, peak


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=".build/release/flashback-collector")
    parser.add_argument("--buckets", type=int, default=1000)
    parser.add_argument("--days", default="1,400", help="history lengths, comma-separated")
    parser.add_argument("--calls", type=int, default=15)
    parser.add_argument("--keep", action="store_true", help="keep the data directories")
    parser.add_argument("--slow-client", action="store_true",
                        help="also read the /stats/daily answer slowly, and drop it after 1 MiB, watching the collector's RSS")
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    print("| history | request | p50 ms | p99 ms | answer bytes | collector RSS MiB |")
    print("|---|---|---:|---:|---:|---:|")
    for days in [int(d) for d in args.days.split(",")]:
        data = tempfile.mkdtemp(prefix=f"stats-history-{days}d-")
        now = int(time.time())
        wide = ["--retention-minute", str((days + 4) * DAY), "--retention-day", str(max(800, days + 4) * DAY)]
        collector = Collector(binary, data, ["--max-sample-age", str((days + 2) * DAY), *wide])
        auth = "Bearer " + token(binary, data)
        started = time.time()
        backfill(collector, auth, args.buckets, days, now)
        loaded = time.time() - started
        collector.stop()
        # The default sample-age window: past days are sealed at start. A forced retention
        # compaction a minute later moves the records to the bottommost level, where a
        # collector that has run that long keeps them, and drops blocks past 35 days.
        # Blocks keep the default 35 days from then on (a year-old collector has no more).
        collector = Collector(binary, data, ["--retention-day", str(max(800, days + 4) * DAY), "--retention-interval", "60", "--log-level", "info"])
        expected = args.buckets * max(0, days - 3)
        deadline = time.time() + 600
        while sealed_records(collector) < expected and time.time() < deadline:
            time.sleep(0.2)
        log_path = os.path.join(data, "collector.log")
        while time.time() < deadline:
            with open(log_path, "rb") as f:
                if b"retention compaction done" in f.read():
                    break
            time.sleep(0.5)
        # Restarted once more with the default retention interval (6 h), so that no forced
        # compaction runs while the requests are timed.
        sealed = sealed_records(collector)
        collector.stop()
        collector = Collector(binary, data, ["--retention-day", str(max(800, days + 4) * DAY)])
        print(f"<!-- {days} days: backfilled {args.buckets * days} lines in {loaded:.1f} s, sealed {sealed:.0f} day records -->")
        start_date = time.strftime("%Y-%m-%d", time.gmtime(now - (days - 1) * DAY))
        requests = [
            ("GET /bucket/stats (all)", "/bucket/stats"),
            ("GET /repo/stats (all)", "/repo/stats"),
            ("GET /unit/stats (all)", "/unit/stats"),
            ("GET /bucket/stats?bucketId=b1", "/bucket/stats?bucketId=b1"),
            ("GET /stats/minute?startDate=<2 hours ago> (all)",
             "/stats/minute?startDate=" + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 7200))),
            (f"GET /stats/daily?startDate=<{days - 1} days ago> (all)", f"/stats/daily?startDate={start_date}"),
        ]
        if args.buckets * days > 1_000_000:
            requests.pop()  # over the default --stats-max-rows: answered 400
        for name, path in requests:
            measure = timed_curl if path.startswith("/stats/daily") else timed
            p50, p99, size = measure(collector, auth, path, args.calls)
            print(f"| {days} d x {args.buckets} buckets | `{name}` | {p50:.1f} | {p99:.1f} | {size:,} | {collector.rss_mib():.0f} |", flush=True)
        if args.slow_client:
            path = f"/stats/daily?startDate={start_date}"
            before = collector.rss_mib()
            read, seconds, peak = slow_client(collector, auth, path)
            print(f"<!-- slow reader: {read:,} bytes in {seconds:.1f} s, collector RSS {before:.0f} -> peak {peak:.0f} MiB (+{peak - before:.0f}) -->")
            before = collector.rss_mib()
            read, seconds, peak = slow_client(collector, auth, path, drop_after=1 << 20)
            print(f"<!-- dropped after {read:,} bytes: collector RSS {before:.0f} -> peak {peak:.0f} MiB (+{peak - before:.0f}) -->")
        collector.stop()
        if not args.keep:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
