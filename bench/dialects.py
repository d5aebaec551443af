"""Summarises `bench/run.sh dialects`: CPU per request and req/s of each client dialect at
c=64, from results/raw/dialect_<target>_r<round>.json; prints a Markdown table."""

import glob
import json
import os
import sys

NAMES = {"proxy": "OpenAI chat", "anthropic": "Anthropic Messages",
         "responses": "OpenAI Responses", "native": "Gemini native"}


def main(raw: str) -> None:
    rows: dict[str, list[tuple[float, float, int]]] = {}
    for path in sorted(glob.glob(os.path.join(raw, "dialect_*_r*.json"))):
        with open(path) as f:
            d = json.load(f)
        target = d["name"].split("_")[1]
        w = d["wrk"]
        ms = d["proxy_cpu_ticks"] / d["clk_tck"] * 1000 / max(w["requests"], 1)
        rps = w["requests"] / (w["duration_us"] / 1e6)
        rows.setdefault(target, []).append((ms, rps, sum(w["errors"].values())))
    print("| Dialect | CPU per request, median (ms) | each round (ms) | req/s, median | errors |")
    print("| --- | --- | --- | --- | --- |")
    for target, name in NAMES.items():
        r = sorted(rows.get(target, []))
        if not r:
            continue
        rps = sorted(x[1] for x in r)[len(r) // 2]
        rounds = ", ".join(f"{x[0]:.3f}" for x in r)
        print(f"| {name} | {r[len(r) // 2][0]:.3f} | {rounds} | {rps:,.0f} | {sum(x[2] for x in r)} |")


if __name__ == "__main__":
    main(sys.argv[1])
