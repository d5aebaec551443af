#!/usr/bin/env python3
"""Memory per request: what one request makes the proxy's RSS grow by, and whether it comes
back (issue 8, item 3). Stdlib only; all traffic goes to 127.0.0.1.

  bench/memory.py [--hajimi target/release/hajimi] [--mock target/release/mock-gemini]
                  [--case NAME ...] [--env KEY=VALUE ...] [--out bench/results/memory.json]

Each case runs on a fresh proxy (5 generated keys, the mock as upstream, an image server in
this process for remote image_urls): idle VmRSS 1 s after start, then the request twice, and
for each: the peak (VmHWM, and VmRSS sampled every 2 ms), VmRSS 1, 10 and 20 s after the
answer. Budget (issue 8): peak growth over idle < 3 x request body + 2.5 x fetched bytes.

Cases (default settings unless noted):
  parts-2m        a 54 MB body of 2,000,000 tiny text parts (refused at MAX_CONTENT_PARTS)
  images-16x20mb  a 1.5 KB body naming 16 image URLs of 20 MB each (refused at MAX_FETCHED_BYTES)
  images-4x4mib   4 remote images of 4 MiB each, 16 MiB fetched (answered)
  chat-54mb       5,000 messages of ~10.8 KB text, a 54 MB body (answered; Google would
                  refuse this many tokens, the mock does not)
  inline-40mb     one data: URL image of 40 MB base64 (answered)
  parts-at-cap    50,000 tiny parts, the MAX_CONTENT_PARTS default (answered): the worst a
                  small body can expand to
"""

import argparse
import http.client
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

HOST = "127.0.0.1"
MODEL = "gemini-2.5-flash"
PASSWORD = "bench"
MB = 1_000_000
MIB = 1 << 20
ALL_CASES = ["parts-2m", "images-16x20mb", "images-4x4mib", "chat-54mb", "inline-40mb", "parts-at-cap"]


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def keys(n):
    import random
    import string
    rng = random.Random(7)
    a = string.ascii_letters + string.digits + "_-"
    return ",".join("AIzaSy" + "".join(rng.choice(a) for _ in range(33)) for _ in range(n))


# ------------------------------------------------------------------ image server

class Images:
    """Serves /img/<bytes>.png: that many bytes, with Content-Length; counts bytes sent."""

    def __init__(self):
        self.sent = 0
        self.lock = threading.Lock()
        self.blob = bytes(range(256)) * (21 * MIB // 256)
        images = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                m = re.fullmatch(r"/img/(\d+)\.png", self.path.split("?")[0])
                n = min(int(m.group(1)), len(images.blob)) if m else 0
                self.send_response(200 if m else 404)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(n))
                self.end_headers()
                view = memoryview(images.blob)[:n]
                try:
                    for off in range(0, n, 64 * 1024):
                        chunk = view[off:off + 64 * 1024]
                        self.wfile.write(chunk)
                        with images.lock:
                            images.sent += len(chunk)
                except OSError:
                    pass  # the proxy stopped reading

        self.server = http.server.ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{HOST}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take_sent(self):
        with self.lock:
            n, self.sent = self.sent, 0
        return n


# ------------------------------------------------------------------ bodies

def chat(messages):
    return {"model": MODEL, "messages": messages}


def tiny_parts(n, salt):
    # {"type":"text","text":"a"}, is 27 bytes: 2,000,000 of them make the 54 MB body.
    part = '{"type":"text","text":"a"}'
    head = '{"model":"%s","messages":[{"role":"user","content":[{"type":"text","text":"%s"},' % (MODEL, salt)
    return (head + ",".join([part] * (n - 1)) + "]}]}").encode()


def build(case, images, salt):
    """-> (body bytes, expected status)"""
    if case == "parts-2m":
        return tiny_parts(2_000_000, salt), 400
    if case == "parts-at-cap":
        return tiny_parts(50_000, salt), 200
    if case in ("images-16x20mb", "images-4x4mib"):
        count, size = (16, 20 * MB) if case == "images-16x20mb" else (4, 4 * MIB)
        parts = [{"type": "text", "text": "Describe these. %s" % salt}]
        parts += [{"type": "image_url", "image_url": {"url": "%s/img/%d.png?%s-%d" % (images.url, size, salt, i)}}
                  for i in range(count)]
        return json.dumps(chat([{"role": "user", "content": parts}])).encode(), 400 if count == 16 else 200
    if case == "chat-54mb":
        text = ("lorem ipsum dolor sit amet " * 400)[:10_790]
        msgs = [{"role": "user" if i % 2 == 0 else "assistant", "content": "%s %d %s" % (salt, i, text)}
                for i in range(5_000)]
        msgs[-1]["role"] = "user"
        return json.dumps(chat(msgs)).encode(), 200
    if case == "inline-40mb":
        data = "A" * (40 * MB)
        parts = [{"type": "text", "text": "What is this? %s" % salt},
                 {"type": "image_url", "image_url": {"url": "data:image/png;base64," + data}}]
        return json.dumps(chat([{"role": "user", "content": parts}])).encode(), 200
    raise SystemExit("unknown case " + case)


# ------------------------------------------------------------------ processes

def start_mock(binary, tmp):
    log = open(os.path.join(tmp, "mock.log"), "w+")
    p = subprocess.Popen([binary, "--host", HOST, "--port", "0", "--no-echo", "--no-record", "--threads", "1"],
                         stdout=log, stderr=subprocess.STDOUT)
    for _ in range(500):
        log.seek(0)
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", log.read())
        if m:
            return p, int(m.group(1))
        if p.poll() is not None:
            break
        time.sleep(0.01)
    raise SystemExit("mock did not start")


def start_proxy(binary, mock_port, extra_env, tmp):
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""), "HOST": HOST, "PORT": str(port), "PASSWORD": PASSWORD,
        "GEMINI_API_KEYS": keys(5), "GEMINI_BASE_URL": "http://%s:%d" % (HOST, mock_port),
        "ENABLE_STORAGE": "false", "FAKE_STREAMING": "false", "NONSTREAM_KEEPALIVE_ENABLED": "false",
        "RANDOM_STRING": "false", "LOG_LEVEL": "warn", "IMAGE_FETCH_ALLOW_LOOPBACK": "true",
        "MAX_REQUESTS_PER_MINUTE": "4294967295", "MAX_REQUESTS_PER_DAY_PER_IP": "4294967295",
        "API_KEY_DAILY_LIMIT": "0",
    }
    env.update(extra_env)
    log = open(os.path.join(tmp, "proxy-%d.log" % port), "w")
    p = subprocess.Popen([binary], env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(500):
        try:
            socket.create_connection((HOST, port), timeout=0.1).close()
            return p, port
        except OSError:
            if p.poll() is not None:
                break
            time.sleep(0.01)
    raise SystemExit("proxy did not start")


class Sampler:
    """VmRSS of a process every 2 ms until stopped; keeps the maximum."""

    def __init__(self, pid):
        self.pid, self.peak, self.running = pid, 0, True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while self.running:
            try:
                self.peak = max(self.peak, status_kb(self.pid, "VmRSS"))
            except OSError:
                return
            time.sleep(0.002)

    def stop(self):
        self.running = False
        self.thread.join()
        return self.peak


def send(port, body):
    c = http.client.HTTPConnection(HOST, port, timeout=120)
    c.request("POST", "/v1/chat/completions", body=body,
              headers={"Authorization": "Bearer " + PASSWORD, "Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def run_case(case, args, mock_port, images, tmp):
    proxy, port = start_proxy(args.hajimi, mock_port, dict(e.split("=", 1) for e in args.env), tmp)
    try:
        time.sleep(1)
        idle = status_kb(proxy.pid, "VmRSS")
        rounds = []
        for n in range(args.rounds):
            body, expected = build(case, images, "run%d" % n)
            images.take_sent()
            hwm_before = status_kb(proxy.pid, "VmHWM")
            sampler = Sampler(proxy.pid)
            t0 = time.time()
            status, data = send(port, body)
            seconds = time.time() - t0
            sampled = sampler.stop()
            served = images.take_sent()
            hwm = status_kb(proxy.pid, "VmHWM")
            time.sleep(1)
            after_1s = status_kb(proxy.pid, "VmRSS")
            time.sleep(9)
            after_10s = status_kb(proxy.pid, "VmRSS")
            time.sleep(10)
            after_20s = status_kb(proxy.pid, "VmRSS")
            message = ""
            if status != 200:
                try:
                    message = json.loads(data)["error"]["message"][:160]
                except (ValueError, KeyError, TypeError):
                    message = data[:160].decode(errors="replace")
            body_len = len(body)
            # What the proxy took in from the image server: at most its MAX_FETCHED_BYTES
            # (the server counts what it wrote, some of which sat unread in socket buffers).
            fetched = min(served, 20 * MIB) if served else 0
            budget_kb = (3 * body_len + 2.5 * fetched) / 1024
            rounds.append({
                "round": n + 1, "status": status, "expected": expected, "seconds": round(seconds, 3),
                "body_bytes": body_len, "served_bytes": served, "fetched_bytes": fetched,
                "idle_rss_kb": idle, "peak_rss_kb": max(sampled, 0), "vmhwm_kb": hwm,
                # VmHWM is the exact peak, but only when this round raised it.
                "peak_growth_kb": (hwm if hwm > hwm_before else sampled) - idle,
                "budget_kb": int(budget_kb),
                "after_1s_growth_kb": after_1s - idle, "after_10s_growth_kb": after_10s - idle,
                "after_20s_growth_kb": after_20s - idle,
                "message": message,
            })
        return {"case": case, "env": args.env, "rounds": rounds}
    finally:
        proxy.terminate()
        proxy.wait()


def mib(kb):
    return "%.1f" % (kb / 1024)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hajimi", default=os.path.join(root, "target/release/hajimi"))
    ap.add_argument("--mock", default=os.path.join(root, "target/release/mock-gemini"))
    ap.add_argument("--case", action="append", choices=ALL_CASES)
    ap.add_argument("--env", action="append", default=[], help="extra proxy setting KEY=VALUE")
    ap.add_argument("--rounds", type=int, default=2, help="requests per proxy (default 2)")
    ap.add_argument("--out", default=os.path.join(root, "bench/results/memory.json"))
    args = ap.parse_args()
    cases = args.case or ALL_CASES
    tmp = tempfile.mkdtemp(prefix="hajimi-memory.")
    mock, mock_port = start_mock(args.mock, tmp)
    images = Images()
    results = []
    try:
        for case in cases:
            sys.stderr.write("[memory] %s\n" % case)
            results.append(run_case(case, args, mock_port, images, tmp))
    finally:
        mock.terminate()
        mock.wait()
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    print("| Case | Round | Status | Body | Fetched | Peak growth (MiB) | Budget (MiB) | After 1 s / 10 s / 20 s (MiB) | Verdict |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        for x in r["rounds"]:
            ok = x["status"] == x["expected"] and x["peak_growth_kb"] < x["budget_kb"]
            print("| %s | %d | %d | %s MB | %s MiB | %s | %s | %s / %s / %s | %s |" % (
                r["case"], x["round"], x["status"], "%.3f" % (x["body_bytes"] / MB), mib(x["fetched_bytes"] / 1024),
                mib(x["peak_growth_kb"]), mib(x["budget_kb"]), mib(x["after_1s_growth_kb"]),
                mib(x["after_10s_growth_kb"]), mib(x["after_20s_growth_kb"]), "within" if ok else "OVER" if x["status"] == x["expected"] else "status?"))
    for r in results:
        for x in r["rounds"]:
            if x["message"]:
                print("- %s round %d: %s" % (r["case"], x["round"], x["message"]))


if __name__ == "__main__":
    main()
