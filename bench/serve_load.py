#!/usr/bin/env python
"""Load test of ``mxstyle serve`` on loopback: throughput against the in-process ``Stylizer`` in the
same run, latency, status codes, lost or doubled answers, and the server's memory.

    python bench/serve_load.py                                  # langlois_s8 at 1024², 30 s a phase
    python bench/serve_load.py --model langlois --seconds 60 --json out.json --markdown out.md

Steps, all in one run on this machine:

1. in process: one ``Stylizer`` decodes, stylizes and encodes the same JPEG in a loop (what a
   caller of the library gets, and the work a server job does), one caller with the engine's own
   threads, then ``--workers`` callers with the server's per-worker threads; the better is the
   reference;
2. the server (``tools/serve.py``, a separate process) with ``--workers`` and ``--max-queue``;
3. phase "capacity": ``workers + max_queue`` clients, each posting the photo again as soon as it
   has its answer, for ``--seconds`` (no 503 expected);
4. phase "overload": twice that many clients for ``--seconds`` (503s expected; a client waits
   ``--backoff`` seconds after one).

Every request carries its own X-Request-Id; at the end each id must have exactly one answer on the
client side and exactly one access-log line on the server with the same status. Server RSS is
read from /proc at the start (after the warm-up), after each phase, and its peak. This is a
benchmark, not a test: it reports and never fails on a time. Clients and server share the CPUs.
"""
import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mxstyle import io  # noqa: E402
from mxstyle.system import usable_cpus  # noqa: E402

from machine import machine_info  # noqa: E402

SAMPLE = ROOT / "mxstyle" / "samples" / "chelsea.jpg"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="langlois_s8", help="model name or folder (default %(default)s)")
    p.add_argument("--size", type=int, default=1024, help="the photo is SIZE x SIZE (default %(default)s)")
    p.add_argument("--seconds", type=float, default=30.0, help="length of each phase (default %(default)s)")
    p.add_argument("--workers", type=int, default=usable_cpus(), help="server workers (default: the cores)")
    p.add_argument("--max-queue", type=int, default=None, help="server queue (default: = workers)")
    p.add_argument("--backoff", type=float, default=0.05, help="a client's pause after a 503 (default %(default)s s)")
    p.add_argument("--quality", type=int, default=90, help="JPEG quality of the photo and of the answers")
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--markdown", metavar="FILE")
    return p.parse_args(argv)


def make_photo(size, quality):
    """The shipped sample photo scaled to ``size`` x ``size``, as JPEG bytes."""
    return io.encode_image(io.resize(io.read_image(SAMPLE), (size, size)), ".jpg", quality)


def percentile(values, q):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


# ------------------------------------------------------------------------------ in process

def in_process(model, data, seconds, callers, threads, quality):
    """Images per second of ``callers`` threads sharing one Stylizer (decode, stylize, encode)."""
    from mxstyle.runtime import Stylizer

    stylizer = Stylizer(model, threads=threads)
    io.encode_image(stylizer.stylize(data), ".jpg", quality)  # warm-up
    done, deadline = [], time.perf_counter() + seconds

    def loop():
        count = 0
        while time.perf_counter() < deadline:
            io.encode_image(stylizer.stylize(data), ".jpg", quality)
            count += 1
        done.append(count)

    started = time.perf_counter()
    workers = [threading.Thread(target=loop) for _ in range(callers)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    return {"callers": callers, "threads": threads or "engine default", "images": sum(done),
            "seconds": round(elapsed, 2), "images_per_s": sum(done) / elapsed}


# ------------------------------------------------------------------------------ the server

class Server:
    def __init__(self, model, workers, max_queue, timeout):
        self.lines, self._raw = [], []
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tools" / "serve.py"), "--models", model, "--port", "0", "--workers",
             str(workers), "--max-queue", str(max_queue), "--timeout", str(timeout), "--max-upload-mb", "64"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        listening = self._wait(lambda: [e for e in self.lines if e.get("event") == "listening"], 180)
        self.host, self.port = listening[0]["host"], listening[0]["port"]
        self._wait(lambda: self.get("/readyz")[0] == 200, 300)

    def _read(self):
        for line in self.proc.stderr:
            self._raw.append(line)
            try:
                self.lines.append(json.loads(line))
            except ValueError:
                pass

    def _wait(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("the server stopped:\n" + "".join(self._raw[-20:]))
            value = predicate()
            if value:
                return value
            time.sleep(0.1)
        raise SystemExit(f"the server did not get there within {timeout} s:\n" + "".join(self._raw[-20:]))

    def get(self, path):
        try:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        except OSError:
            return None, b""

    def rss_mb(self):
        """(current, peak) resident memory of the server process in MB."""
        fields = {}
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(120)


def phase(server, name, clients, seconds, data, model, backoff):
    """``clients`` threads posting ``data`` until ``seconds`` have passed; every answer recorded."""
    answers = []  # (request id, status, latency seconds, body bytes)
    errors = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds
    path = f"/v1/stylize?model={model}&format=jpeg"

    def client(index):
        conn, n = None, 0
        while n == 0 or time.perf_counter() < deadline:
            request_id = f"{name}-{index}-{n}"
            n += 1
            t0 = time.perf_counter()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(server.host, server.port, timeout=300)
                conn.request("POST", path, body=data, headers={"Content-Type": "image/jpeg",
                                                               "X-Request-Id": request_id})
                response = conn.getresponse()
                body = response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                with lock:
                    errors.append((request_id, f"{type(exc).__name__}: {exc}"))
                conn = None
                continue
            with lock:
                answers.append((request_id, status, time.perf_counter() - t0, len(body)))
            if status == 503:
                time.sleep(backoff)
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    ok = [a for a in answers if a[1] == 200]
    latencies = [a[2] for a in ok]
    statuses = Counter(a[1] for a in answers)
    return {"phase": name, "clients": clients, "seconds": round(elapsed, 2), "requests": len(answers) + len(errors),
            "answered": len(answers), "client_errors": len(errors), "errors_sample": errors[:5],
            "status_counts": {str(k): v for k, v in sorted(statuses.items())},
            "images_per_s": len(ok) / elapsed,
            "p50_s": percentile(latencies, 50), "p99_s": percentile(latencies, 99),
            "five_xx_other_than_503": sum(v for k, v in statuses.items() if k >= 500 and k != 503),
            "_answers": answers, "_errors": errors}


def reconcile(server, phases):
    """Each request id: one answer on the client, one access-log line on the server, same status."""
    time.sleep(1.0)  # the last access lines
    logged = Counter()
    logged_status = {}
    for entry in server.lines:
        if entry.get("event") == "request" and entry.get("route") == "/v1/stylize":
            logged[entry["request_id"]] += 1
            logged_status[entry["request_id"]] = entry["status"]
    sent = [a[0] for p in phases for a in p["_answers"]] + [e[0] for p in phases for e in p["_errors"]]
    answered = Counter(a[0] for p in phases for a in p["_answers"])
    statuses = {a[0]: a[1] for p in phases for a in p["_answers"]}
    return {"requests_sent": len(sent),
            "answered_once": sum(1 for rid in sent if answered[rid] == 1),
            "unanswered": sum(1 for rid in sent if answered[rid] == 0),
            "answered_twice": sum(1 for rid in sent if answered[rid] > 1),
            "logged_once": sum(1 for rid in sent if logged[rid] == 1),
            "logged_twice": sum(1 for rid in sent if logged[rid] > 1),
            "status_mismatches": sum(1 for rid, s in statuses.items() if logged_status.get(rid) != s)}


def markdown(report):
    ref = report["reference_images_per_s"]
    lines = [f"`bench/serve_load.py`: model `{report['model']}`, {report['size']}² JPEG, server "
             f"{report['workers']} workers x {report['threads_per_worker']} threads, queue {report['max_queue']}; "
             f"{report['machine']['cpu']}, {report['machine']['cores']} cores.", "",
             "| run | clients | images/s | vs in-process | p50 s | p99 s | statuses | 5xx other than 503 |",
             "|---|---|---|---|---|---|---|---|"]
    for r in report["in_process"]:
        lines.append(f"| in process, {r['callers']} caller(s), threads {r['threads']} | - | {r['images_per_s']:.2f} | "
                     f"{r['images_per_s'] / ref:.0%} | - | - | - | - |")
    for p in report["phases"]:
        counts = ", ".join(f"{k}: {v}" for k, v in p["status_counts"].items())
        p50 = f"{p['p50_s']:.3f}" if p["p50_s"] is not None else "-"
        p99 = f"{p['p99_s']:.3f}" if p["p99_s"] is not None else "-"
        lines.append(f"| server, {p['phase']} | {p['clients']} | {p['images_per_s']:.2f} | "
                     f"{p['images_per_s'] / ref:.0%} | {p50} | {p99} | {counts} | {p['five_xx_other_than_503']} |")
    c, m = report["reconciliation"], report["rss_mb"]
    lines += ["", f"Requests: {c['requests_sent']} sent, {c['answered_once']} answered once, {c['unanswered']} "
                  f"unanswered, {c['answered_twice']} answered twice; {c['logged_once']} logged once by the server, "
                  f"{c['status_mismatches']} status mismatches. Server RSS: {m['ready']:.0f} MB when ready, "
                  f"{m['start']:.0f} MB after one request per worker, "
                  f"{m['after_capacity']:.0f} MB after the capacity phase, {m['end']:.0f} MB at the end "
                  f"(peak {m['peak']:.0f} MB)."]
    return "\n".join(lines) + "\n"


def served_name(model):
    """The name ``mxstyle serve --models MODEL`` serves a model under: its card's name."""
    from mxstyle import model_folder

    folder = model_folder.resolve_model_dir(model)
    return model_folder.load_card(folder).get("name") or folder.name


def main(argv=None):
    args = parse_args(argv)
    workers = args.workers
    max_queue = workers if args.max_queue is None else args.max_queue
    threads = max(1, usable_cpus() // workers)
    data = make_photo(args.size, args.quality)
    print(f"photo {args.size}x{args.size} JPEG, {len(data):,} bytes; {args.seconds:g} s per run", flush=True)
    reference = [in_process(args.model, data, args.seconds, 1, None, args.quality)]
    print(f"in process, 1 caller: {reference[-1]['images_per_s']:.2f} images/s", flush=True)
    if workers > 1:
        reference.append(in_process(args.model, data, args.seconds, workers, threads, args.quality))
        print(f"in process, {workers} callers x {threads} threads: {reference[-1]['images_per_s']:.2f} images/s",
              flush=True)
    best = max(r["images_per_s"] for r in reference)
    timeout = max(60.0, 20 * args.seconds)
    server = Server(args.model, workers, max_queue, timeout)
    name = served_name(args.model)  # a folder is served under its card's name
    rss = {"ready": server.rss_mb()[0]}
    capacity = workers + max_queue
    phase(server, "warmup", workers, 0.0, data, name, args.backoff)  # one request per worker
    rss["start"] = server.rss_mb()[0]  # the engines' buffers for this size are allocated by now
    phases = [phase(server, "capacity", capacity, args.seconds, data, name, args.backoff)]
    rss["after_capacity"] = server.rss_mb()[0]
    print(f"server, {capacity} clients: {phases[-1]['images_per_s']:.2f} images/s, {phases[-1]['status_counts']}",
          flush=True)
    phases.append(phase(server, "overload", 2 * capacity, args.seconds, data, name, args.backoff))
    rss["end"], rss["peak"] = server.rss_mb()
    print(f"server, {2 * capacity} clients: {phases[-1]['images_per_s']:.2f} images/s, "
          f"{phases[-1]['status_counts']}", flush=True)
    reconciliation = reconcile(server, phases)
    exit_code = server.stop()
    report = {"model": args.model, "size": args.size, "seconds_per_run": args.seconds, "workers": workers,
              "threads_per_worker": threads, "max_queue": max_queue, "machine": machine_info(),
              "in_process": reference, "reference_images_per_s": best,
              "phases": [{k: v for k, v in p.items() if not k.startswith("_")} for p in phases],
              "reconciliation": reconciliation, "rss_mb": rss, "server_exit_code": exit_code,
              "loadavg_end": os.getloadavg()[0]}
    text = markdown(report)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
