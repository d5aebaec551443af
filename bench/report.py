#!/usr/bin/env python3
"""Turns bench/results/raw/*.json (written by bench/run.sh) into results.json, results.md and
a table on stdout: each figure next to its target (PRODUCT.md), proxy next to direct."""

import json
import os
import sys


def load(raw, name):
    path = os.path.join(raw, name + ".json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def rps(run):
    w = run["wrk"]
    return w["requests"] / (w["duration_us"] / 1e6)


def ms(us):
    return us / 1000.0


def errors(run):
    return sum(run["wrk"]["errors"].values())


def cpu_ms_per_req(run, who):
    ticks = run[who + "_cpu_ticks"]
    return ticks * 1000.0 / run["clk_tck"] / max(1, run["wrk"]["requests"])


def verdict(ok):
    if ok is None:
        return "n/a"
    return "PASS" if ok else "MISS"


def main():
    raw, out = sys.argv[1], sys.argv[2]
    m = load(raw, "machine") or {}
    r = {k: load(raw, k) for k in (
        "direct_c1", "proxy_c1", "direct_c64", "proxy_c64",
        "direct_c256_200ms", "proxy_c256_200ms", "stream_direct", "stream_proxy",
        "hold", "idle_base", "idle_hold", "after_hold", "after_base", "startup",
        "upstream_conns", "elapsed")}
    rows = []  # (figure, proxy, direct/baseline, target, verdict)
    res = {"machine": m, "figures": {}}
    fig = res["figures"]

    # 1. CPU per non-stream request
    if r["proxy_c64"] and r["direct_c64"]:
        p64 = cpu_ms_per_req(r["proxy_c64"], "proxy")
        p1 = cpu_ms_per_req(r["proxy_c1"], "proxy") if r["proxy_c1"] else None
        mock_direct = cpu_ms_per_req(r["direct_c64"], "mock")
        fig["cpu_ms_per_request_c64"] = p64
        fig["cpu_ms_per_request_c1"] = p1
        fig["mock_cpu_ms_per_request_direct_c64"] = mock_direct
        rows.append(("Proxy CPU per non-stream request (c=64 run)", f"{p64:.4f} ms",
                     f"mock alone: {mock_direct:.4f} ms", "<= 0.1 ms (HAJIMI 52 ms, LiteLLM 16 ms)",
                     verdict(p64 <= 0.1)))
        if p1 is not None:
            rows.append(("Proxy CPU per non-stream request (c=1 run)", f"{p1:.4f} ms",
                         f"mock alone: {cpu_ms_per_req(r['direct_c1'], 'mock'):.4f} ms",
                         "<= 0.1 ms", verdict(p1 <= 0.1)))

    # 2. throughput and latency at c=1 and c=64
    for c in ("c1", "c64"):
        p, d = r["proxy_" + c], r["direct_" + c]
        if not (p and d):
            continue
        pl, dl = p["wrk"]["lat_us"], d["wrk"]["lat_us"]
        fig[f"{c}"] = {
            "proxy_rps": rps(p), "direct_rps": rps(d),
            "proxy_p50_ms": ms(pl["p50"]), "direct_p50_ms": ms(dl["p50"]),
            "proxy_p99_ms": ms(pl["p99"]), "direct_p99_ms": ms(dl["p99"]),
            "added_p50_ms": ms(pl["p50"] - dl["p50"]), "added_p99_ms": ms(pl["p99"] - dl["p99"]),
            "proxy_errors": errors(p), "direct_errors": errors(d),
        }
        f = fig[c]
        label = c.replace("c", "c=")
        rows.append((f"req/s at {label}", f"{f['proxy_rps']:.0f}", f"{f['direct_rps']:.0f}", "-", "info"))
        rows.append((f"p50 / p99 latency at {label}",
                     f"{f['proxy_p50_ms']:.3f} / {f['proxy_p99_ms']:.3f} ms",
                     f"{f['direct_p50_ms']:.3f} / {f['direct_p99_ms']:.3f} ms", "-", "info"))
        rows.append((f"added latency p50 / p99 at {label}",
                     f"{f['added_p50_ms']:.3f} / {f['added_p99_ms']:.3f} ms", "", "-", "info"))
        rows.append((f"errors at {label}", str(f["proxy_errors"]), str(f["direct_errors"]), "0",
                     verdict(f["proxy_errors"] == 0)))

    # 3. 256 concurrent, 200 ms upstream
    p, d = r["proxy_c256_200ms"], r["direct_c256_200ms"]
    if p and d:
        ratio = rps(p) / rps(d)
        dp50 = ms(p["wrk"]["lat_us"]["p50"] - d["wrk"]["lat_us"]["p50"])
        fig["c256_200ms"] = {
            "proxy_rps": rps(p), "direct_rps": rps(d), "ratio": ratio,
            "proxy_p50_ms": ms(p["wrk"]["lat_us"]["p50"]), "direct_p50_ms": ms(d["wrk"]["lat_us"]["p50"]),
            "proxy_p99_ms": ms(p["wrk"]["lat_us"]["p99"]), "direct_p99_ms": ms(d["wrk"]["lat_us"]["p99"]),
            "added_p50_ms": dp50, "proxy_errors": errors(p), "direct_errors": errors(d),
            "proxy_requests": p["wrk"]["requests"],
        }
        f = fig["c256_200ms"]
        rows.append(("256 conc. @200 ms upstream: req/s", f"{f['proxy_rps']:.0f} ({ratio:.3f}x)",
                     f"{f['direct_rps']:.0f}", ">= 0.95x direct", verdict(ratio >= 0.95)))
        rows.append(("256 conc. @200 ms upstream: p50", f"{f['proxy_p50_ms']:.2f} ms (+{dp50:.2f})",
                     f"{f['direct_p50_ms']:.2f} ms", "within 5 ms", verdict(dp50 <= 5)))
        rows.append(("256 conc. @200 ms upstream: errors", str(f["proxy_errors"]),
                     str(f["direct_errors"]), "0", verdict(f["proxy_errors"] == 0)))

    # 4. streaming probe
    sp, sd = r["stream_proxy"], r["stream_direct"]
    if sp and sd:
        fb = sp["first_event_ms_p50"] - sd["first_event_ms_p50"]
        tot = sp["total_ms_p50"] - sd["total_ms_p50"]
        fig["stream"] = {"proxy": sp, "direct": sd, "first_event_overhead_ms_p50": fb,
                         "total_overhead_ms_p50": tot}
        rows.append(("Stream (20 chunks): first event p50", f"{sp['first_event_ms_p50']:.3f} ms (+{fb:.3f})",
                     f"{sd['first_event_ms_p50']:.3f} ms", "overhead <= 1 ms", verdict(fb <= 1)))
        rows.append(("Stream (20 chunks): total p50", f"{sp['total_ms_p50']:.2f} ms (+{tot:.2f})",
                     f"{sd['total_ms_p50']:.2f} ms", "within 5 ms", verdict(tot <= 5)))
        rows.append(("Stream (20 chunks): proxy CPU per stream", f"{sp['cpu_ms_per_stream']:.3f} ms", "",
                     "<= 1 ms", verdict(sp["cpu_ms_per_stream"] <= 1)))
        rows.append(("Stream errors", str(sp["errors"]), str(sd["errors"]), "0", verdict(sp["errors"] == 0)))

    # 5. held streams and RSS
    h = r["hold"]
    if h:
        peak_mb = h["held"].get("VmHWM", 0) / 1024.0
        fig["hold"] = h
        rows.append((f"{h['n']} held streams: completed with [DONE]", f"{h['completed_with_done']}/{h['n']}",
                     "", "all", verdict(h["completed_with_done"] == h["n"])))
        rows.append((f"{h['n']} held streams: peak RSS (VmHWM)", f"{peak_mb:.1f} MiB", "", "<= 64 MB",
                     verdict(peak_mb <= 64)))
    for key, label in (("idle_base", "Idle RSS after start (5 keys)"), ("idle_hold", "Idle RSS after start (20 keys)")):
        if r[key]:
            mb = r[key]["VmRSS"] / 1024.0
            fig[key + "_mib"] = mb
            rows.append((label, f"{mb:.1f} MiB", "", "<= 20 MB", verdict(mb <= 20)))

    # 6. start-up
    s = r["startup"]
    if s:
        fig["startup"] = s
        rows.append((f"Start-up to listening, {s['keys']} keys (p50 of {s['runs']})",
                     f"{s['ms_p50']:.1f} ms" if s["ms_p50"] is not None else "failed",
                     f"min {s['ms_min']:.1f} / max {s['ms_max']:.1f}" if s["ms_min"] is not None else "",
                     "< 100 ms", verdict(s["ms_p50"] is not None and s["ms_p50"] < 100 and s["failures"] == 0)))

    # 7. upstream connection reuse
    for c, n in (("proxy_c64", 64), ("proxy_c1", 1), ("proxy_c256_200ms", 256)):
        run = r[c]
        if not run:
            continue
        new_up = max(0, run["passive_opens"] - n)
        per = new_up / max(1, run["wrk"]["requests"])
        fig[f"upstream_new_conns_{c}"] = {"accepted_total": run["passive_opens"], "client_conns": n,
                                         "upstream_new": new_up, "per_request": per}
        rows.append((f"New upstream conns per request ({c.replace('proxy_', '')})",
                     f"{per:.5f} ({new_up} new / {run['wrk']['requests']} req)",
                     f"direct run accepted: {r[c.replace('proxy', 'direct')]['passive_opens']}" if r.get(c.replace("proxy", "direct")) else "",
                     "<< 0.01", verdict(per < 0.01)))
    if r["upstream_conns"]:
        fig["upstream_established"] = r["upstream_conns"]

    if r["elapsed"]:
        res["elapsed_s"] = r["elapsed"]["seconds"]
    res["rows"] = [dict(zip(("figure", "proxy", "direct", "target", "verdict"), row)) for row in rows]

    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(res, f, indent=2)
    md = [f"# hajimi bench results — {m.get('date', '?')}", "",
          f"Machine: {m.get('nproc', '?')} cores, {m.get('cpu_model', '?')}, kernel {m.get('kernel', '?')}, "
          f"commit {m.get('git', '?')}, {m.get('wrk', '')}", "",
          "| figure | proxy | direct / baseline | target | verdict |",
          "| --- | --- | --- | --- | --- |"]
    md += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows]
    if "elapsed_s" in res:
        md += ["", f"Run took {res['elapsed_s']} s."]
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(md) + "\n")

    widths = [max(len(str(row[i])) for row in rows + [("figure", "proxy", "direct / baseline", "target", "verdict")])
              for i in range(5)]
    hdr = ("figure", "proxy", "direct / baseline", "target", "verdict")
    print()
    print("  ".join(h.ljust(w) for h, w in zip(hdr, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)))
    print(f"\nWritten: {os.path.join(out, 'results.json')}, {os.path.join(out, 'results.md')}")


if __name__ == "__main__":
    main()
