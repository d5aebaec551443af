#!/usr/bin/env bash
# hajimi benchmark harness: proxy vs direct-to-mock, in one run.
#
#   bench/run.sh            # builds the release binaries if needed, runs everything (~2-3 min)
#
# Needs: wrk (apt-get install -y wrk), python3 (stdlib only), taskset (util-linux), a Rust
# toolchain for `cargo build --release --bins`. All traffic goes to 127.0.0.1.
# The proxy runs on core 1 (taskset -c 1); the mock and the load generators on core 0.
#
# Environment knobs:
#   BENCH_DURATION=10     seconds per wrk run
#   BENCH_NO_BUILD=1      skip `cargo build --release --bins`
#   BENCH_HOLD=1000       held streams for the RSS test
#   BENCH_STREAMS=50      sequential streams per side in the streaming probe
#   BENCH_STARTUP_RUNS=20 start-up runs
# Results: bench/results/{results.json,results.md,raw/*} (git-ignored).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
OUT="$BENCH/results"
RAW="$OUT/raw"
DUR=${BENCH_DURATION:-10}
HOLD=${BENCH_HOLD:-1000}
STREAMS=${BENCH_STREAMS:-50}
STARTUP_RUNS=${BENCH_STARTUP_RUNS:-20}
PROXY_CPU=1
LOAD_CPU=0
PY=${PYTHON:-python3}
HAJIMI="$ROOT/target/release/hajimi"
MOCK="$ROOT/target/release/mock-gemini"

die() { echo "bench: $*" >&2; exit 1; }
log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

command -v wrk >/dev/null || die "wrk not found: apt-get install -y wrk"
command -v taskset >/dev/null || die "taskset not found (util-linux)"
command -v "$PY" >/dev/null || die "python3 not found"
[ "$(nproc --all)" -ge 2 ] || die "needs at least 2 cores"

if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  log "cargo build --release --bins"
  (cd "$ROOT" && cargo build --release --bins --quiet)
fi
[ -x "$HAJIMI" ] && [ -x "$MOCK" ] || die "release binaries missing: cargo build --release --bins"

# Many held streams need many sockets (client, proxy and mock all inherit this).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -ge 4096 ] || log "warning: ulimit -n is $(ulimit -n); the 1,000-stream test may fail"

rm -rf "$RAW"
mkdir -p "$RAW"
TMP=$(mktemp -d /tmp/hajimi-bench.XXXXXX)
PIDS=()

cleanup() {
  local p
  for p in "${PIDS[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
# Tcp PassiveOpens (accepted connections, whole machine) from /proc/net/snmp.
passive_opens() { awk '/^Tcp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "PassiveOpens") c = i; h = 1 } else print $c }' /proc/net/snmp; }
alive() { kill -0 "$1" 2>/dev/null; }

wait_port() { # port pid
  local i
  for i in $(seq 1 500); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    alive "$2" || return 1
    sleep 0.01
  done
  return 1
}

# start_mock NAME [mock flags...] -> MOCK_PID, MOCK_PORT
start_mock() {
  local name=$1; shift
  local logf="$TMP/mock-$name.log"
  taskset -c "$LOAD_CPU" "$MOCK" --host 127.0.0.1 --port 0 --no-echo --no-record --threads 1 "$@" \
    >"$logf" 2>&1 &
  MOCK_PID=$!
  PIDS+=("$MOCK_PID")
  local i
  for i in $(seq 1 500); do
    MOCK_PORT=$(sed -n 's#.*listening on http://127\.0\.0\.1:\([0-9]*\).*#\1#p' "$logf" | head -n1)
    [ -n "$MOCK_PORT" ] && return 0
    alive "$MOCK_PID" || break
    sleep 0.01
  done
  cat "$logf" >&2
  die "mock ($name) did not start"
}

gen_keys() { # n -> comma list of syntactically valid keys
  "$PY" - "$1" <<'EOF'
import random, string, sys
rng = random.Random(7)
a = string.ascii_letters + string.digits + "_-"
print(",".join("AIzaSy" + "".join(rng.choice(a) for _ in range(33)) for _ in range(int(sys.argv[1]))))
EOF
}

# start_proxy NAME NKEYS -> PROXY_PID, PROXY_PORT (pinned to PROXY_CPU, CWD in a temp dir)
start_proxy() {
  local name=$1 nkeys=$2
  local dir="$TMP/proxy-$name"
  mkdir -p "$dir"
  PROXY_PORT=$("$PY" "$BENCH/probe.py" freeport)
  (
    cd "$dir"
    exec taskset -c "$PROXY_CPU" env HOST=127.0.0.1 PORT="$PROXY_PORT" PASSWORD=bench \
      GEMINI_API_KEYS="$(gen_keys "$nkeys")" GEMINI_BASE_URL="http://127.0.0.1:$MOCK_PORT" \
      ENABLE_STORAGE=false FAKE_STREAMING=false NONSTREAM_KEEPALIVE_ENABLED=false \
      RANDOM_STRING=false LOG_LEVEL=warn "$HAJIMI"
  ) >"$TMP/proxy-$name.log" 2>&1 &
  PROXY_PID=$!
  PIDS+=("$PROXY_PID")
  wait_port "$PROXY_PORT" "$PROXY_PID" || { cat "$TMP/proxy-$name.log" >&2; die "proxy ($name) did not start"; }
}

stop() { # pid: ends one process this script started, and forgets it
  local p keep=()
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# status_kb PID FIELD
status_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# wrk_run NAME TARGET(proxy|direct) PORT THREADS CONNS DURATION -> RAW/NAME.json
# Adds CPU ticks of the proxy (when running) and the mock, and accepted connections.
wrk_run() {
  local name=$1 target=$2 port=$3 threads=$4 conns=$5 dur=$6
  local p0 m0 o0 p1 m1 o1 line
  p0=0; p1=0
  if [ -n "${PROXY_PID:-}" ] && alive "$PROXY_PID"; then p0=$(ticks "$PROXY_PID"); fi
  m0=$(ticks "$MOCK_PID"); o0=$(passive_opens)
  BENCH_TARGET=$target taskset -c "$LOAD_CPU" wrk -t"$threads" -c"$conns" -d"${dur}s" --timeout 10s \
    --latency -s "$BENCH/post.lua" "http://127.0.0.1:$port" >"$RAW/$name.wrk.txt" 2>&1 || true
  m1=$(ticks "$MOCK_PID"); o1=$(passive_opens)
  if [ -n "${PROXY_PID:-}" ] && alive "$PROXY_PID"; then p1=$(ticks "$PROXY_PID"); fi
  line=$(sed -n 's/^WRKJSON //p' "$RAW/$name.wrk.txt")
  [ -n "$line" ] || { cat "$RAW/$name.wrk.txt" >&2; die "wrk run $name produced no result"; }
  printf '{"name":"%s","target":"%s","threads":%d,"conns":%d,"wrk":%s,"proxy_cpu_ticks":%d,"mock_cpu_ticks":%d,"passive_opens":%d,"clk_tck":%d}\n' \
    "$name" "$target" "$threads" "$conns" "$line" "$((p1 - p0))" "$((m1 - m0))" "$((o1 - o0))" \
    "$(getconf CLK_TCK)" >"$RAW/$name.json"
  log "  $name: $("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); w=d["wrk"]; print(f"{w[\"requests\"]} req, {w[\"requests\"]/(w[\"duration_us\"]/1e6):.0f} req/s, p50 {w[\"lat_us\"][\"p50\"]/1000:.3f} ms, p99 {w[\"lat_us\"][\"p99\"]/1000:.3f} ms, errors {sum(w[\"errors\"].values())}")' "$RAW/$name.json")"
}

# upstream_conns -> established proxy->mock connections right now
upstream_conns() { ss -Htn state established "( dport = :$MOCK_PORT )" 2>/dev/null | wc -l; }

machine_json() {
  "$PY" - "$HAJIMI" <<'EOF'
import json, os, subprocess, sys, datetime
model = "unknown"
with open("/proc/cpuinfo") as f:
    for line in f:
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip(); break
def run(*c):
    try: return subprocess.run(c, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception: return ""
print(json.dumps({
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "nproc": int(run("nproc") or 0), "cpu_model": model,
    "kernel": run("uname", "-r"), "wrk": run("wrk", "-v").splitlines()[0] if run("wrk", "-v") else "",
    "git": run("git", "-C", os.path.dirname(os.path.dirname(os.path.dirname(sys.argv[1]))), "rev-parse", "--short", "HEAD"),
    "mem_total_kb": int(open("/proc/meminfo").readline().split()[1]),
}))
EOF
}

START=$(date +%s)
machine_json >"$RAW/machine.json"

# ---------------------------------------------------------------- 1, 2, 7: non-stream
log "non-stream: mock (0 ms) on core $LOAD_CPU, proxy (5 keys) on core $PROXY_CPU"
start_mock base
start_proxy base 5
sleep 1
printf '{"VmRSS":%d,"VmHWM":%d}\n' "$(status_kb "$PROXY_PID" VmRSS)" "$(status_kb "$PROXY_PID" VmHWM)" >"$RAW/idle_base.json"
log "  proxy idle RSS: $(status_kb "$PROXY_PID" VmRSS) kB"
wrk_run warmup_c64 proxy "$PROXY_PORT" 2 64 2
UP_BEFORE=$(upstream_conns)
wrk_run direct_c1 direct "$MOCK_PORT" 1 1 "$DUR"
wrk_run proxy_c1 proxy "$PROXY_PORT" 1 1 "$DUR"
wrk_run direct_c64 direct "$MOCK_PORT" 2 64 "$DUR"
wrk_run proxy_c64 proxy "$PROXY_PORT" 2 64 "$DUR"
UP_AFTER=$(upstream_conns)
printf '{"established_before":%d,"established_after":%d}\n' "$UP_BEFORE" "$UP_AFTER" >"$RAW/upstream_conns.json"
alive "$PROXY_PID" || die "proxy died during the non-stream runs"
printf '{"VmRSS":%d,"VmHWM":%d}\n' "$(status_kb "$PROXY_PID" VmRSS)" "$(status_kb "$PROXY_PID" VmHWM)" >"$RAW/after_base.json"
cp "$TMP/proxy-base.log" "$RAW/proxy-base.log"
stop "$PROXY_PID"; stop "$MOCK_PID"; PROXY_PID=

# ---------------------------------------------------------------- 3: 256 concurrent, 200 ms upstream
log "256 concurrent against a 200 ms upstream (proxy with 20 keys)"
start_mock slow --latency-ms 200
start_proxy slow 20
wrk_run warmup_slow proxy "$PROXY_PORT" 2 256 2
wrk_run direct_c256_200ms direct "$MOCK_PORT" 2 256 "$DUR"
wrk_run proxy_c256_200ms proxy "$PROXY_PORT" 2 256 "$DUR"
alive "$PROXY_PID" || die "proxy died during the 200 ms runs"
cp "$TMP/proxy-slow.log" "$RAW/proxy-slow.log"
stop "$PROXY_PID"; stop "$MOCK_PID"; PROXY_PID=

# ---------------------------------------------------------------- 4: streaming probe
log "streaming probe: 20 chunks x 5 ms, $STREAMS sequential streams per side"
start_mock stream --stream-chunks 20 --chunk-delay-ms 5
start_proxy stream 5
taskset -c "$LOAD_CPU" "$PY" "$BENCH/probe.py" stream --port "$MOCK_PORT" --target direct --n "$STREAMS" >"$RAW/stream_direct.json"
taskset -c "$LOAD_CPU" "$PY" "$BENCH/probe.py" stream --port "$PROXY_PORT" --target proxy --n "$STREAMS" --pid "$PROXY_PID" >"$RAW/stream_proxy.json"
log "  direct: $(cat "$RAW/stream_direct.json")"
log "  proxy:  $(cat "$RAW/stream_proxy.json")"
alive "$PROXY_PID" || die "proxy died during the streaming probe"
cp "$TMP/proxy-stream.log" "$RAW/proxy-stream.log"
stop "$PROXY_PID"; stop "$MOCK_PID"; PROXY_PID=

# ---------------------------------------------------------------- 5: held streams, RSS
log "RSS: $HOLD held streams (20 chunks x 500 ms each) through the proxy (20 keys)"
start_mock hold --stream-chunks 20 --chunk-delay-ms 500
start_proxy hold 20
sleep 1
printf '{"VmRSS":%d,"VmHWM":%d}\n' "$(status_kb "$PROXY_PID" VmRSS)" "$(status_kb "$PROXY_PID" VmHWM)" >"$RAW/idle_hold.json"
log "  proxy idle RSS: $(status_kb "$PROXY_PID" VmRSS) kB"
taskset -c "$LOAD_CPU" "$PY" "$BENCH/probe.py" hold --port "$PROXY_PORT" --n "$HOLD" --pid "$PROXY_PID" --timeout 60 >"$RAW/hold.json" || true
log "  $(cat "$RAW/hold.json")"
alive "$PROXY_PID" || die "proxy died during the held-stream test"
sleep 1
printf '{"VmRSS":%d,"VmHWM":%d}\n' "$(status_kb "$PROXY_PID" VmRSS)" "$(status_kb "$PROXY_PID" VmHWM)" >"$RAW/after_hold.json"
cp "$TMP/proxy-hold.log" "$RAW/proxy-hold.log"
stop "$PROXY_PID"; PROXY_PID=

# ---------------------------------------------------------------- 6: start-up with 100 keys
log "start-up to listening socket with 100 keys, $STARTUP_RUNS runs"
mkdir -p "$TMP/startup"
taskset -c "$LOAD_CPU" "$PY" "$BENCH/probe.py" startup --bin "$HAJIMI" --cwd "$TMP/startup" \
  --mock-port "$MOCK_PORT" --keys 100 --runs "$STARTUP_RUNS" --proxy-cpu "$PROXY_CPU" --poll-cpu "$LOAD_CPU" \
  >"$RAW/startup.json"
log "  $(cat "$RAW/startup.json")"
stop "$MOCK_PID"

printf '{"seconds":%d}\n' "$(( $(date +%s) - START ))" >"$RAW/elapsed.json"
"$PY" "$BENCH/report.py" "$RAW" "$OUT"
