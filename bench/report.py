#!/usr/bin/env python3
"""Turns bench/results/raw/*.json (written by bench/run.sh) into results.json, results.md and
a table on stdout: each figure next to its target (docs/decisions.md, "Performance targets"),
proxy next to direct."""

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


def foreign_pct(run):
    """Share of the proxy's core used by anything but the proxy during a run (other jobs on
    the machine), in percent of the run's wall time; the proxy is alone on that core."""
    busy = run.get("proxy_core_busy_ticks")
    if busy is None:
        return float("nan")
    wall_ticks = run["wrk"]["duration_us"] / 1e6 * run["clk_tck"]
    return max(0.0, (busy - run["proxy_cpu_ticks"]) / max(1.0, wall_ticks) * 100)


def verdict(ok):
    if ok is None:
        return "n/a"
    return "PASS" if ok else "MISS"


def one_line(path):
    with open(path) as f:
        d = json.load(f)
    w = d["wrk"]
    acc = d.get("mock_accepts", -1)
    print(f"{w['requests']} req, {rps(d):.0f} req/s, p50 {ms(w['lat_us']['p50']):.3f} ms, "
          f"p99 {ms(w['lat_us']['p99']):.3f} ms, errors {errors(d)}, "
          f"proxy cpu {d['proxy_cpu_ticks']} ticks, mock cpu {d['mock_cpu_ticks']} ticks, mock accepts {acc}, "
          f"listen overflows {d.get('listen_overflows', '?')}, other load on the proxy core {foreign_pct(d):.0f}%")


def main():
    if sys.argv[1] == "--line":
        one_line(sys.argv[2])
        return
    raw, out = sys.argv[1], sys.argv[2]
    m = load(raw, "machine") or {}
    r = {k: load(raw, k) for k in (
        "direct_c1", "proxy_c1", "direct_paced", "proxy_paced", "direct_c64", "proxy_c64",
        "storage_c1", "storage_paced", "storage_c64",
        "direct_c256_200ms", "proxy_c256_200ms", "stream_direct", "stream_proxy",
        "stream_direct_c32", "stream_proxy_c32", "hold", "hold_overflows", "burst_direct", "burst_proxy", "idle_base", "idle_hold", "after_hold", "after_base", "startup",
        "upstream_conns", "elapsed", "listen_backlog")}
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
                     f"mock alone: {mock_direct:.4f} ms", "<= 0.1 ms, stretch 0.05 (HAJIMI 52 ms, LiteLLM 16 ms)",
                     verdict(p64 <= 0.1)))
        if p1 is not None:
            rows.append(("Proxy CPU per non-stream request (c=1 run)", f"{p1:.4f} ms",
                         f"mock alone: {cpu_ms_per_req(r['direct_c1'], 'mock'):.4f} ms",
                         "<= 0.1 ms", verdict(p1 <= 0.1)))
        if r["proxy_paced"] and r["direct_paced"]:
            pp = cpu_ms_per_req(r["proxy_paced"], "proxy")
            fig["cpu_ms_per_request_paced"] = pp
            rows.append((f"Proxy CPU per non-stream request (paced, {rps(r['proxy_paced']):.0f} req/s)", f"{pp:.4f} ms",
                         f"mock alone: {cpu_ms_per_req(r['direct_paced'], 'mock'):.4f} ms",
                         "<= 0.1 ms", verdict(pp <= 0.1)))

    # 2. throughput and latency at c=1 and c=64
    for c in ("c1", "paced", "c64"):
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
        label = {"c1": "c=1", "c64": "c=64", "paced": f"c=1 paced ({rps(p):.0f} req/s)"}[c]
        if c != "paced":
            rows.append((f"req/s at {label}", f"{f['proxy_rps']:.0f}", f"{f['direct_rps']:.0f}", "-", "info"))
        rows.append((f"p50 / p99 latency at {label}",
                     f"{f['proxy_p50_ms']:.3f} / {f['proxy_p99_ms']:.3f} ms",
                     f"{f['direct_p50_ms']:.3f} / {f['direct_p99_ms']:.3f} ms", "-", "info"))
        if c == "c1":
            tgt, ok = "p50 <= 0.3 ms", f["added_p50_ms"] <= 0.3
        elif c == "paced":
            tgt, ok = "p99 < 1 ms at 1,000 req/s", f["added_p99_ms"] < 1
        else:
            tgt, ok = "-", None
        rows.append((f"added latency p50 / p99 at {label}",
                     f"{f['added_p50_ms']:.3f} / {f['added_p99_ms']:.3f} ms", "", tgt,
                     verdict(ok) if ok is not None else "info"))
        rows.append((f"errors at {label}", str(f["proxy_errors"]), str(f["direct_errors"]), "0",
                     verdict(f["proxy_errors"] == 0)))

    # storage on vs off: the same loads on a proxy with ENABLE_STORAGE=true
    for c in ("c1", "paced", "c64"):
        on, off = r["storage_" + c], r["proxy_" + c]
        if not (on and off):
            continue
        lon, loff = on["wrk"]["lat_us"], off["wrk"]["lat_us"]
        fig[f"storage_{c}"] = {
            "on_rps": rps(on), "off_rps": rps(off),
            "on_p50_ms": ms(lon["p50"]), "off_p50_ms": ms(loff["p50"]),
            "on_p99_ms": ms(lon["p99"]), "off_p99_ms": ms(loff["p99"]),
            "on_cpu_ms": cpu_ms_per_req(on, "proxy"), "off_cpu_ms": cpu_ms_per_req(off, "proxy"),
            "on_errors": errors(on),
        }
        f = fig[f"storage_{c}"]
        label = {"c1": "c=1", "c64": "c=64", "paced": "c=1 paced"}[c]
        rows.append((f"storage on vs off, {label}: req/s, p50 / p99, CPU per request",
                     f"on: {f['on_rps']:.0f} req/s, {f['on_p50_ms']:.3f} / {f['on_p99_ms']:.3f} ms, {f['on_cpu_ms']:.4f} ms",
                     f"off: {f['off_rps']:.0f} req/s, {f['off_p50_ms']:.3f} / {f['off_p99_ms']:.3f} ms, {f['off_cpu_ms']:.4f} ms",
                     "no meaningful difference", "info" if f["on_errors"] == 0 else "FAIL"))

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
        ideal = p["conns"] / (d["wrk"]["lat_us"]["p50"] / 1e6)
        f["ideal_rps"] = ideal
        f["ratio_to_ideal"] = rps(p) / ideal
        f["direct_listen_overflows"] = d.get("listen_overflows")
        f["proxy_listen_overflows"] = p.get("listen_overflows")
        rows.append(("256 conc. @200 ms: proxy req/s vs ideal (256 / direct p50)", f"{rps(p) / ideal:.3f}x",
                     f"ideal {ideal:.0f} req/s", ">= 0.95x", verdict(rps(p) / ideal >= 0.95)))
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
        ss = sp.get("cpu_ms_per_stream_schedstat")
        if ss is not None:
            base = sd.get("cpu_ms_per_stream_schedstat")
            rows.append((f"Stream: proxy CPU per stream (sequential, n={sp['n']}, schedstat)", f"{ss:.3f} ms",
                         f"mock alone: {base:.3f} ms" if base is not None else "",
                         "<= 1 ms", verdict(ss <= 1)))
        rows.append(("Stream errors", str(sp["errors"]), str(sd["errors"]), "0", verdict(sp["errors"] == 0)))

    bp, bd = r["burst_proxy"], r["burst_direct"]
    if bp and bd:
        tot = bp["total_ms_p50"] - bd["total_ms_p50"]
        fig["burst"] = {"proxy": bp, "direct": bd, "total_overhead_ms_p50": tot}
        rows.append(("Burst stream (20 chunks back to back): total p50", f"{bp['total_ms_p50']:.2f} ms (+{tot:.2f})",
                     f"{bd['total_ms_p50']:.2f} ms", "within 5 ms", verdict(tot <= 5 and bp["errors"] == 0)))

    wp, wd = r["stream_proxy_c32"], r["stream_direct_c32"]
    if wp and wd:
        cps = cpu_ms_per_req(wp, "proxy")
        fig["stream_c32"] = {"proxy_cpu_ms_per_stream": cps, "mock_cpu_ms_per_stream_direct": cpu_ms_per_req(wd, "mock"),
                             "proxy_streams_per_s": rps(wp), "direct_streams_per_s": rps(wd),
                             "proxy_p50_ms": ms(wp["wrk"]["lat_us"]["p50"]), "direct_p50_ms": ms(wd["wrk"]["lat_us"]["p50"]),
                             "proxy_errors": errors(wp), "direct_errors": errors(wd), "streams": wp["wrk"]["requests"]}
        rows.append((f"Stream: proxy CPU per 20-chunk stream (wrk c=32, {wp['wrk']['requests']} streams)",
                     f"{cps:.3f} ms", f"mock alone: {cpu_ms_per_req(wd, 'mock'):.3f} ms", "<= 1 ms", verdict(cps <= 1)))
        rows.append(("Stream c=32: streams/s, p50 total", f"{rps(wp):.0f}/s, {ms(wp['wrk']['lat_us']['p50']):.2f} ms",
                     f"{rps(wd):.0f}/s, {ms(wd['wrk']['lat_us']['p50']):.2f} ms", "-", "info"))
        rows.append(("Stream c=32: errors", str(errors(wp)), str(errors(wd)), "0", verdict(errors(wp) == 0)))

    # 5. held streams and RSS
    h = r["hold"]
    if h:
        peak_mb = h["held"].get("VmHWM", 0) / 1024.0
        fig["hold"] = h
        if r["hold_overflows"]:
            h["listen_overflows"] = r["hold_overflows"]["listen_overflows"]
        if h.get("connect_s_max") is not None:
            rows.append((f"{h['n']} held streams: connect p50 / max, first event p50 / max",
                         f"{h['connect_s_p50'] * 1000:.1f} / {h['connect_s_max'] * 1000:.0f} ms, "
                         f"{h['first_event_s_p50'] * 1000:.1f} / {h['first_event_s_max'] * 1000:.0f} ms",
                         f"{h['connects_over_500ms']} connects > 500 ms; SYN drops (ListenOverflows) {h.get('listen_overflows', '?')}",
                         "-", "info"))
        rows.append((f"{h['n']} held streams: completed with [DONE]", f"{h['completed_with_done']}/{h['n']}",
                     "", "all", verdict(h["completed_with_done"] == h["n"])))
        rows.append((f"{h['n']} held streams: peak RSS (VmHWM)", f"{peak_mb:.1f} MiB", "", "<= 64 MB",
                     verdict(peak_mb <= 64)))
    rounds = []
    k = 2
    while os.path.exists(os.path.join(raw, f"after_hold_round{k}.json")):
        rounds.append((load(raw, f"hold_round{k}") or {}, load(raw, f"after_hold_round{k}")))
        k += 1
    if r["after_hold"] and rounds:
        rss = [r["after_hold"]["VmRSS"] / 1024.0] + [a["VmRSS"] / 1024.0 for _, a in rounds]
        peak = max([h["held"].get("VmHWM", 0) / 1024.0] + [a["VmHWM"] / 1024.0 for _, a in rounds])
        done_all = all(hr.get("completed_with_done") == hr.get("n") for hr, _ in rounds)
        fig["rss_after_rounds_mib"] = rss
        fig["hold_rounds_peak_mib"] = peak
        fig["hold_rounds_all_completed"] = done_all
        rows.append((f"Held streams x{len(rss)} rounds: RSS after each round",
                     " / ".join(f"{x:.1f}" for x in rss) + " MiB",
                     f"later rounds completed: {'all' if done_all else 'NOT ALL'}", "levels off", "info"))
        rows.append((f"Held streams x{len(rss)} rounds: peak RSS", f"{peak:.1f} MiB", "", "<= 64 MB",
                     verdict(peak <= 64 and done_all)))
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

    # 7. upstream connection reuse: the mock's successful accept4() calls during proxy runs
    for c in ("proxy_c1", "proxy_paced", "proxy_c64", "proxy_c256_200ms", "stream_proxy_c32"):
        run = r[c]
        if not run or run.get("mock_accepts", -1) < 0:
            continue
        req = run["wrk"]["requests"]
        whole = run["mock_accepts"] / max(1, req)
        steady_req = rps(run) * run["steady_s"]
        steady = (run["mock_accepts_steady"] / max(1.0, steady_req)
                  if run.get("mock_accepts_steady", -1) >= 0 and run["steady_s"] > 0 else None)
        fig[f"upstream_conns_{c}"] = {
            "accepted_whole_run": run["mock_accepts"], "requests": req, "per_request_whole_run": whole,
            "accepted_steady": run.get("mock_accepts_steady"), "steady_s": run["steady_s"],
            "steady_requests_est": steady_req, "per_request_steady": steady,
        }
        label = c.replace("proxy_", "").replace("_200ms", " @200ms").replace("stream_c32", "streams c32")
        rows.append((f"New upstream conns per request ({label})",
                     f"steady {run['mock_accepts_steady']} / ~{steady_req:.0f} req"
                     + (f" = {steady:.5f}" if steady is not None else ""),
                     f"whole run: {run['mock_accepts']} / {req} = {whole:.5f}",
                     "<< 0.01", verdict(steady < 0.01 if steady is not None else None)))
    if r["upstream_conns"]:
        fig["upstream_established"] = r["upstream_conns"]

    noisy = {k: foreign_pct(r[k]) for k in ("proxy_c1", "proxy_paced", "proxy_c64", "proxy_c256_200ms",
                                             "stream_proxy_c32") if r.get(k)}
    noisy.update({k: foreign_pct(r[k]) for k in ("direct_c1", "direct_paced", "direct_c64",
                                                 "direct_c256_200ms", "stream_direct_c32") if r.get(k)})
    fig["other_load_on_proxy_core_pct"] = noisy
    worst = max(noisy.values()) if noisy else 0.0
    rows.append(("Other jobs' load on the proxy core (worst run)", f"{worst:.0f}%",
                 ", ".join(f"{k.replace('_200ms', '')} {v:.0f}%" for k, v in noisy.items() if v >= 5) or "all runs < 5%",
                 "~0% for clean figures", "PASS" if worst < 5 else "NOISY"))
    if r["listen_backlog"]:
        fig["listen_backlog"] = r["listen_backlog"]
        rows.append(("Listen backlog (ss Send-Q)", str(r["listen_backlog"]["proxy"]),
                     f"mock: {r['listen_backlog']['mock']}", "-", "info"))
    if r["elapsed"]:
        res["elapsed_s"] = r["elapsed"]["seconds"]
    res["rows"] = [dict(zip(("figure", "proxy", "direct", "target", "verdict"), row)) for row in rows]

    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(res, f, indent=2)
    md = [f"# hajimi bench results — {m.get('date', '?')}", "",
          f"Machine: {m.get('nproc', '?')} cores, {m.get('cpu_model', '?')}, kernel {m.get('kernel', '?')}, "
          f"HEAD {m.get('git', '?')}, binary built {m.get('binary_built', '?')}, {m.get('wrk', '')}, load average at start {m.get('loadavg_start', '?')}", "",
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
