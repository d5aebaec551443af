#!/usr/bin/env python3
"""Probes for bench/run.sh (stdlib only). Each sub-command prints one JSON object.

  stream   N sequential streaming requests, proxy or direct: time to response headers,
           to the first SSE event and to the end of the body (medians); with --pid, the
           CPU that process spent per stream.
  hold     N concurrent streaming requests through the proxy, held open together: waits
           until every one got its first event, reads VmHWM/VmRSS of --pid, then reads all
           to the end and checks each closed with `data: [DONE]`.
  startup  Spawns hajimi R times with K generated keys on a fixed free port and measures
           spawn -> first successful TCP connect (polled every 1 ms).
  freeport Prints a free TCP port on 127.0.0.1.

Every loop is bounded in count and time; all traffic goes to 127.0.0.1.
"""

import argparse
import asyncio
import http.client
import json
import os
import random
import signal
import socket
import statistics
import string
import subprocess
import sys
import time

HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
MODEL = "gemini-2.5-flash"
# Every request carries a different text, so hajimi cannot share one upstream answer among
# identical requests (it does that for identical requests in flight).


def openai_body(text):
    return {"model": MODEL, "messages": [{"role": "user", "content": text}], "stream": True}


def gemini_body(text):
    return {"contents": [{"role": "user", "parts": [{"text": text}]}]}
MOCK_KEY = "AIzaSy" + "0" * 33  # fake; the mock takes any key


def cpu_ticks(pid):
    """utime + stime of a whole process (all threads), in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime is field 14, stime field 15.
    return int(fields[11]) + int(fields[12])


def cpu_ns(pid):
    """Run time of all live threads of a process, in ns (sum of /proc/PID/task/*/schedstat)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def mem_kb(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS", "Threads"):
                out[k] = int(v.split()[0])
    return out


def pct(values, p):
    if not values:
        return None
    s = sorted(values)
    i = min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))
    return s[i]


def request_parts(target, text="Hello"):
    if target == "direct":
        path = f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
        headers = {"Content-Type": "application/json", "x-goog-api-key": MOCK_KEY}
        body = json.dumps(gemini_body(text)).encode()
    else:
        path = "/v1/chat/completions"
        headers = {"Content-Type": "application/json", "Authorization": "Bearer bench"}
        body = json.dumps(openai_body(text)).encode()
    return path, headers, body


# ---------------------------------------------------------------- stream


def cmd_stream(a):
    conn = None
    hdr, first, total, events, errors, statuses = [], [], [], [], 0, {}
    seq = 0

    def one():
        nonlocal conn, seq
        seq += 1
        path, headers, body = request_parts(a.target, f"Hello {os.getpid()}-{seq}")
        if conn is None:
            conn = http.client.HTTPConnection(HOST, a.port, timeout=30)
            conn.connect()
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t0 = time.perf_counter()
        try:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            conn = None
            statuses[type(e).__name__] = statuses.get(type(e).__name__, 0) + 1
            return None
        t_h = time.perf_counter()
        if resp.status != 200:
            statuses[str(resp.status)] = statuses.get(str(resp.status), 0) + 1
            resp.read()
            if resp.will_close:
                conn.close()
                conn = None
            return None
        t_first = None
        buf = bytearray()
        while True:
            chunk = resp.read1(65536)
            if not chunk:
                break
            if t_first is None and b"data:" in chunk:
                t_first = time.perf_counter()
            buf += chunk
        t_end = time.perf_counter()
        return t_h - t0, (t_first or t_end) - t0, t_end - t0, bytes(buf)

    for _ in range(a.warmup):
        one()
    c0 = cpu_ticks(a.pid) if a.pid else None
    n0 = cpu_ns(a.pid) if a.pid else None
    w0 = time.perf_counter()
    for _ in range(a.n):
        r = one()
        if r is None:
            errors += 1
            continue
        h, f, t, buf = r
        n_ev = buf.count(b"data:")
        if a.target == "proxy" and b"data: [DONE]" not in buf:
            errors += 1
        hdr.append(h * 1000)
        first.append(f * 1000)
        total.append(t * 1000)
        events.append(n_ev)
    wall = time.perf_counter() - w0
    c1 = cpu_ticks(a.pid) if a.pid else None
    n1 = cpu_ns(a.pid) if a.pid else None
    if conn is not None:
        conn.close()
    out = {
        "target": a.target,
        "n": a.n,
        "errors": errors,
        "error_kinds": statuses,
        "events_per_stream": statistics.median(events) if events else None,
        "headers_ms_p50": statistics.median(hdr) if hdr else None,
        "first_event_ms_p50": statistics.median(first) if first else None,
        "first_event_ms_p90": pct(first, 90),
        "total_ms_p50": statistics.median(total) if total else None,
        "total_ms_p90": pct(total, 90),
        "wall_s": wall,
    }
    if a.pid:
        out["cpu_ticks"] = c1 - c0
        out["cpu_ms_per_stream"] = (c1 - c0) * 1000.0 / CLK_TCK / max(1, a.n)
        out["cpu_ns_schedstat"] = n1 - n0
        out["cpu_ms_per_stream_schedstat"] = (n1 - n0) / 1e6 / max(1, a.n)
    print(json.dumps(out))


# ---------------------------------------------------------------- hold


def dechunk(raw):
    """Decodes an HTTP/1.1 response (headers + chunked or close-delimited body)."""
    head, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep:
        return None, b""
    status = head.split(b"\r\n", 1)[0]
    if b"transfer-encoding: chunked" not in head.lower():
        return status, rest
    out = bytearray()
    i = 0
    while True:
        j = rest.find(b"\r\n", i)
        if j < 0:
            break
        size = int(rest[i:j].split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[j + 2:j + 2 + size]
        i = j + 2 + size + 2
    return status, bytes(out)


async def hold_one(port, req, got_first, deadline):
    t0 = time.monotonic()
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port),
                                            timeout=max(0.1, deadline - time.monotonic()))
    t_conn = time.monotonic() - t0
    t_first = None
    writer.write(req)
    await writer.drain()
    raw = bytearray()
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), timeout=max(0.1, deadline - time.monotonic()))
            if not chunk:
                break
            raw += chunk
            if t_first is None and b"data:" in raw:
                t_first = time.monotonic() - t0
                got_first()
    finally:
        writer.close()
    status, body = dechunk(bytes(raw))
    ok = status is not None and b" 200 " in status + b" " and b"data: [DONE]" in body
    return ok, t_first is not None, body.count(b"data:"), t_conn, t_first


def hold_request(port, i):
    path, headers, body = request_parts("proxy", f"Hello hold {os.getpid()}-{i}")
    hdrs = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n{hdrs}"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


async def hold_main(a):
    n_first = 0
    all_first = asyncio.Event()

    def got_first():
        nonlocal n_first
        n_first += 1
        if n_first == a.n:
            all_first.set()

    t0 = time.monotonic()
    deadline = t0 + a.timeout
    tasks = []
    for i in range(a.n):
        tasks.append(asyncio.create_task(hold_one(a.port, hold_request(a.port, i), got_first, deadline)))
        if i % 50 == 49:
            await asyncio.sleep(0)  # let the event loop breathe while opening
    try:
        await asyncio.wait_for(all_first.wait(), timeout=a.timeout)
    except asyncio.TimeoutError:
        pass
    t_all_first = time.monotonic() - t0
    mem_held = mem_kb(a.pid) if a.pid else {}
    results = await asyncio.gather(*tasks, return_exceptions=True)
    t_done = time.monotonic() - t0
    mem_after = mem_kb(a.pid) if a.pid else {}
    ok = sum(1 for r in results if not isinstance(r, BaseException) and r[0])
    exc = [repr(r) for r in results if isinstance(r, BaseException)]
    bad = [r for r in results if not isinstance(r, BaseException) and not r[0]]
    events = sorted(r[2] for r in results if not isinstance(r, BaseException))
    conn_s = [r[3] for r in results if not isinstance(r, BaseException)]
    first_s = [r[4] for r in results if not isinstance(r, BaseException) and r[4] is not None]
    print(json.dumps({
        "n": a.n,
        "all_got_first_event": n_first == a.n,
        "got_first_event": n_first,
        "seconds_to_all_first": round(t_all_first, 3),
        "seconds_to_all_done": round(t_done, 3),
        "completed_with_done": ok,
        "failed": a.n - ok,
        "exceptions": exc[:5],
        "exception_count": len(exc),
        "bad_count": len(bad),
        "events_min": events[0] if events else None,
        "events_max": events[-1] if events else None,
        "connect_s_p50": pct(conn_s, 50), "connect_s_p99": pct(conn_s, 99),
        "connect_s_max": max(conn_s) if conn_s else None,
        "connects_over_500ms": sum(1 for c in conn_s if c > 0.5),
        "first_event_s_p50": pct(first_s, 50), "first_event_s_p99": pct(first_s, 99),
        "first_event_s_max": max(first_s) if first_s else None,
        "held": mem_held,
        "after": mem_after,
    }))


def cmd_hold(a):
    asyncio.run(hold_main(a))


# ---------------------------------------------------------------- startup


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def gen_key(rng):
    alphabet = string.ascii_letters + string.digits + "_-"
    return "AIzaSy" + "".join(rng.choice(alphabet) for _ in range(33))


def cmd_startup(a):
    rng = random.Random(42)
    keys = ",".join(gen_key(rng) for _ in range(a.keys))
    env = dict(os.environ)
    env.update({
        "HOST": HOST, "PASSWORD": "bench", "GEMINI_API_KEYS": keys,
        "GEMINI_BASE_URL": f"http://{HOST}:{a.mock_port}", "ENABLE_STORAGE": "false",
        "FAKE_STREAMING": "false", "NONSTREAM_KEEPALIVE_ENABLED": "false",
        "RANDOM_STRING": "false", "LOG_LEVEL": "warn",
    })
    own = os.sched_getaffinity(0)
    times, failures = [], 0
    for _ in range(a.runs):
        port = free_port()
        env["PORT"] = str(port)
        # The child inherits the spawner's affinity: spawn from core `proxy_cpu`, poll from
        # core `poll_cpu` (no extra taskset exec in the measured path).
        os.sched_setaffinity(0, {a.proxy_cpu})
        t0 = time.perf_counter()
        p = subprocess.Popen([a.bin], cwd=a.cwd, env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.sched_setaffinity(0, {a.poll_cpu})
        t = None
        limit = t0 + 5.0
        while time.perf_counter() < limit:
            s = socket.socket()
            try:
                s.connect((HOST, port))
                t = time.perf_counter() - t0
                break
            except OSError:
                pass
            finally:
                s.close()
            if p.poll() is not None:
                break
            time.sleep(0.001)
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        if t is None:
            failures += 1
        else:
            times.append(t * 1000)
    os.sched_setaffinity(0, own)
    print(json.dumps({
        "runs": a.runs, "keys": a.keys, "failures": failures,
        "ms_p50": statistics.median(times) if times else None,
        "ms_min": min(times) if times else None,
        "ms_max": max(times) if times else None,
    }))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("stream")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--target", choices=["proxy", "direct"], required=True)
    s.add_argument("--n", type=int, default=50)
    s.add_argument("--warmup", type=int, default=5)
    s.add_argument("--pid", type=int)
    h = sub.add_parser("hold")
    h.add_argument("--port", type=int, required=True)
    h.add_argument("--n", type=int, default=1000)
    h.add_argument("--pid", type=int)
    h.add_argument("--timeout", type=float, default=60)
    u = sub.add_parser("startup")
    u.add_argument("--bin", required=True)
    u.add_argument("--cwd", required=True)
    u.add_argument("--mock-port", type=int, required=True)
    u.add_argument("--keys", type=int, default=100)
    u.add_argument("--runs", type=int, default=20)
    u.add_argument("--proxy-cpu", type=int, default=1)
    u.add_argument("--poll-cpu", type=int, default=0)
    sub.add_parser("freeport")
    a = ap.parse_args()
    if a.cmd == "stream":
        cmd_stream(a)
    elif a.cmd == "hold":
        cmd_hold(a)
    elif a.cmd == "startup":
        cmd_startup(a)
    else:
        print(free_port())


if __name__ == "__main__":
    sys.exit(main())
