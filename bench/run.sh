#!/usr/bin/env bash
# hajimi benchmark harness: proxy vs direct-to-mock, in one run.
#
#   bench/run.sh            # builds the release binaries if needed, runs everything (~3-4 min)
#   BENCH_CHECK=1 bench/run.sh  # cheapest mode: build, start mock and proxy, one request each way, exit
#   bench/run.sh memory     # only the memory-per-request cases (bench/memory.py, ~2 min)
#   bench/run.sh dialects   # only CPU per request of each client dialect at c=64 (~3 min)
#
# Needs: python3 (stdlib only), taskset (util-linux), a Rust toolchain (the release binaries
# of hajimi and mock-gemini are built here: `cargo build --release --workspace --bins`), and
# wrk (installed with apt-get when missing and apt-get is usable). All traffic goes to 127.0.0.1.
# The proxy runs on core 1 (taskset -c 1); the mock and the load generators on core 0.
#
# Environment knobs:
#   BENCH_DURATION=10     seconds per wrk run
#   BENCH_CHECK=1         only prove the harness works: build, start, preflight, exit
#   BENCH_NO_BUILD=1      skip `cargo build --release --workspace --bins`
#   BENCH_HOLD=1000       held streams for the RSS test
#   BENCH_HOLD_ROUNDS=3   rounds of held streams on one proxy (leak check)
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
HOLD_ROUNDS=${BENCH_HOLD_ROUNDS:-3}
STREAMS=${BENCH_STREAMS:-50}
STARTUP_RUNS=${BENCH_STARTUP_RUNS:-20}
PROXY_CPU=1
LOAD_CPU=0
PY=${PYTHON:-python3}
HAJIMI="$ROOT/target/release/hajimi"
MOCK="$ROOT/target/release/mock-gemini"

die() { echo "bench: $*" >&2; exit 1; }
log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

command -v "$PY" >/dev/null || die "python3 not found"
if [ "${1:-}" != memory ]; then
  if ! command -v wrk >/dev/null; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
      log "installing wrk (apt-get)"
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk) >&2 ||
        die "could not install wrk: apt-get install -y wrk"
    fi
    command -v wrk >/dev/null || die "wrk not found: apt-get install -y wrk (or your system's package)"
  fi
  command -v taskset >/dev/null || die "taskset not found (util-linux)"
  [ "$(nproc --all)" -ge 2 ] || die "needs at least 2 cores"
fi

if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  # --workspace: in the workspace root, `--bins` alone builds only hajimi, not mock-gemini.
  log "cargo build --release --workspace --bins"
  (cd "$ROOT" && cargo build --release --workspace --bins --quiet)
fi
[ -x "$HAJIMI" ] && [ -x "$MOCK" ] || die "release binaries missing: cargo build --release --workspace --bins"

if [ "${1:-}" = memory ]; then
  shift
  exec "$PY" "$BENCH/memory.py" --hajimi "$HAJIMI" --mock "$MOCK" "$@"
fi

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
alive() { kill -0 "$1" 2>/dev/null; }
# busy ticks of one CPU (user nice system irq softirq steal) from /proc/stat
cpu_busy() { awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
# TcpExt ListenOverflows (whole machine; a diagnostic: SYNs dropped because an accept queue was full)
listen_overflows() { awk '/^TcpExt:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "ListenOverflows") c = i; h = 1 } else print $c }' /proc/net/netstat; }

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

# The proxy's settings besides address, password, keys and upstream. The per-client rate
# limits (HAJIMI defaults: 30/minute, 600/day per IP) and the per-key daily soft limit would
# refuse or skew a load test from one address, so they are set out of reach; everything else
# keeps its default (one attempt per request, no fake streaming or keep-alive bytes).
PROXY_ENV=(
  ENABLE_STORAGE=false FAKE_STREAMING=false NONSTREAM_KEEPALIVE_ENABLED=false
  RANDOM_STRING=false LOG_LEVEL=warn
  MAX_REQUESTS_PER_MINUTE=4294967295 MAX_REQUESTS_PER_DAY_PER_IP=4294967295
  API_KEY_DAILY_LIMIT=0
)

# Settings added after PROXY_ENV for one proxy (later assignments win).
EXTRA_ENV=()

# start_proxy NAME NKEYS [STREAM_PREFLIGHT=1] -> PROXY_PID, PROXY_PORT (pinned to PROXY_CPU,
# CWD in a temp dir)
start_proxy() {
  local name=$1 nkeys=$2 stream_check=${3:-1}
  local dir="$TMP/proxy-$name"
  mkdir -p "$dir"
  PROXY_PORT=$("$PY" "$BENCH/probe.py" freeport)
  (
    cd "$dir"
    exec taskset -c "$PROXY_CPU" env HOST=127.0.0.1 PORT="$PROXY_PORT" PASSWORD=bench \
      GEMINI_API_KEYS="$(gen_keys "$nkeys")" GEMINI_BASE_URL="http://127.0.0.1:$MOCK_PORT" \
      "${PROXY_ENV[@]}" "${EXTRA_ENV[@]}" "$HAJIMI"
  ) >"$TMP/proxy-$name.log" 2>&1 &
  PROXY_PID=$!
  PIDS+=("$PROXY_PID")
  wait_port "$PROXY_PORT" "$PROXY_PID" || { cat "$TMP/proxy-$name.log" >&2; die "proxy ($name) did not start"; }
  preflight "$stream_check"
}

# preflight [STREAM]: one non-stream (and, with STREAM=1, one stream) request through the
# proxy must succeed.
preflight() {
  "$PY" - "$PROXY_PORT" "${1:-1}" <<'EOF' || die "preflight through the proxy failed (see above)"
import http.client, json, sys
port = int(sys.argv[1])
for stream in (False, True)[: 1 + (sys.argv[2] == "1")]:
    body = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "preflight %s" % stream}]}
    if stream:
        body["stream"] = True
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", "/v1/chat/completions", body=json.dumps(body),
              headers={"Authorization": "Bearer bench", "Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    ok = r.status == 200 and (b"data: [DONE]" in data if stream else b'"choices"' in data)
    if not ok:
        sys.stderr.write("preflight (stream=%s): HTTP %d %s\n" % (stream, r.status, data[:500]))
        sys.exit(1)
EOF
}

forget() { # pid: waits for a process this script started and drops it from PIDS
  local p keep=()
  wait "$1" 2>/dev/null || true
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}
stop() { # pid: ends one process this script started
  kill -TERM "$1" 2>/dev/null || true
  forget "$1"
}

# status_kb PID FIELD
status_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# Counting accepted connections at the mock: `perf stat` on the tracepoint
# syscalls:sys_exit_accept4 filtered to ret >= 0 (successful accepts only), attached to the
# mock's pid. Exact, per process, negligible overhead. Without perf the figure is n/a.
HAVE_PERF=0
if command -v perf >/dev/null && perf stat -x, -e syscalls:sys_exit_accept4 --filter 'ret >= 0' -- true >/dev/null 2>&1; then
  HAVE_PERF=1
fi
perf_start() { # FILE PID -> PERF_PID (or empty)
  PERF_PID=
  [ "$HAVE_PERF" = 1 ] || return 0
  taskset -c "$LOAD_CPU" perf stat -x, -o "$1" -e syscalls:sys_exit_accept4 --filter 'ret >= 0' -p "$2" \
    >/dev/null 2>&1 &
  PERF_PID=$!
  PIDS+=("$PERF_PID")
}
perf_stop() { # PERF_PID FILE -> PERF_COUNT (-1 when unknown)
  PERF_COUNT=-1
  [ -n "$1" ] || return 0
  kill -INT "$1" 2>/dev/null || true
  forget "$1"
  local n
  n=$(awk -F, '/sys_exit_accept4/ { print $1 }' "$2" 2>/dev/null | head -n1)
  case "$n" in
    '<not counted>') PERF_COUNT=0 ;; # the mock never ran during the window
    ''|*[!0-9]*) ;;
    *) PERF_COUNT=$n ;;
  esac
}

# wrk_run NAME TARGET(proxy|direct) PORT THREADS CONNS DURATION [stream] [pause-ms]
#   -> RAW/NAME.json: wrk's figures, CPU ticks of the proxy (if running) and of the mock over
#   the run, and the mock's accepted connections over the whole run and over the steady
#   window (from 2 s after the start to the end).
wrk_run() {
  local name=$1 target=$2 port=$3 threads=$4 conns=$5 dur=$6 stream=${7:-0} pause=${8:-0}
  local p0 m0 p1 m1 o0 o1 b0 b1 line wrk_pid pa pb acc_all acc_steady steady_s
  p0=0; p1=0; pb=; steady_s=0
  if [ -n "${PROXY_PID:-}" ] && alive "$PROXY_PID"; then p0=$(ticks "$PROXY_PID"); fi
  m0=$(ticks "$MOCK_PID"); o0=$(listen_overflows); b0=$(cpu_busy "$PROXY_CPU")
  perf_start "$RAW/$name.accepts-all.txt" "$MOCK_PID"; pa=$PERF_PID
  [ -z "$pa" ] || sleep 0.3 # let perf attach
  BENCH_TARGET=$target BENCH_STREAM=$stream BENCH_DELAY_MS=$pause taskset -c "$LOAD_CPU" wrk -t"$threads" -c"$conns" \
    -d"${dur}s" --timeout 10s --latency -s "$BENCH/post.lua" "http://127.0.0.1:$port" \
    >"$RAW/$name.wrk.txt" 2>&1 &
  wrk_pid=$!
  PIDS+=("$wrk_pid")
  if [ "$dur" -gt 4 ]; then
    sleep 2
    perf_start "$RAW/$name.accepts-steady.txt" "$MOCK_PID"; pb=$PERF_PID
    steady_s=$((dur - 2))
  fi
  forget "$wrk_pid"
  m1=$(ticks "$MOCK_PID"); o1=$(listen_overflows); b1=$(cpu_busy "$PROXY_CPU")
  if [ -n "${PROXY_PID:-}" ] && alive "$PROXY_PID"; then p1=$(ticks "$PROXY_PID"); fi
  perf_stop "$pa" "$RAW/$name.accepts-all.txt"; acc_all=$PERF_COUNT
  perf_stop "$pb" "$RAW/$name.accepts-steady.txt"; acc_steady=$PERF_COUNT
  line=$(sed -n 's/^WRKJSON //p' "$RAW/$name.wrk.txt")
  [ -n "$line" ] || { cat "$RAW/$name.wrk.txt" >&2; die "wrk run $name produced no result"; }
  printf '{"name":"%s","target":"%s","stream":%d,"threads":%d,"conns":%d,"wrk":%s,"proxy_cpu_ticks":%d,"mock_cpu_ticks":%d,"mock_accepts":%d,"mock_accepts_steady":%d,"steady_s":%d,"listen_overflows":%d,"proxy_core_busy_ticks":%d,"clk_tck":%d}\n' \
    "$name" "$target" "$stream" "$threads" "$conns" "$line" "$((p1 - p0))" "$((m1 - m0))" \
    "$acc_all" "$acc_steady" "$steady_s" "$((o1 - o0))" "$((b1 - b0))" "$(getconf CLK_TCK)" >"$RAW/$name.json"
  log "  $name: $("$PY" "$BENCH/report.py" --line "$RAW/$name.json")"
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
    "loadavg_start": " ".join(open("/proc/loadavg").read().split()[:3]),
    "binary_built": datetime.datetime.fromtimestamp(os.path.getmtime(sys.argv[1]), datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
}))
EOF
}

START=$(date +%s)

if [ "${BENCH_CHECK:-0}" = 1 ]; then
  log "check mode: mock and proxy start, one request each way through the proxy"
  start_mock check
  start_proxy check 2
  log "check passed: the harness can run (unset BENCH_CHECK for the measurements)"
  exit 0
fi

machine_json >"$RAW/machine.json"

if [ "${1:-}" = dialects ]; then
  # The same upstream answer through each client dialect, interleaved over three rounds so a
  # drift in the machine's load hits every dialect alike (results/raw/dialect_*.json).
  log "dialects: CPU per non-stream request at c=64 through each client dialect"
  start_mock base
  start_proxy base 5
  sleep 1
  wrk_run warmup_dialects proxy "$PROXY_PORT" 2 64 2
  for round in 1 2 3; do
    for target in proxy anthropic responses native; do
      wrk_run "dialect_${target}_r$round" "$target" "$PROXY_PORT" 2 64 "$DUR"
    done
  done
  "$PY" "$BENCH/dialects.py" "$RAW" | tee "$OUT/dialects.md"
  exit 0
fi

# ---------------------------------------------------------------- 1, 2, 7: non-stream
log "non-stream: mock (0 ms) on core $LOAD_CPU, proxy (5 keys) on core $PROXY_CPU"
start_mock base
start_proxy base 5
sleep 1
printf '{"VmRSS":%d,"VmHWM":%d}\n' "$(status_kb "$PROXY_PID" VmRSS)" "$(status_kb "$PROXY_PID" VmHWM)" >"$RAW/idle_base.json"
# Listen backlogs (Send-Q of a listening socket is its backlog).
printf '{"proxy":%d,"mock":%d}\n' \
  "$(ss -Hltn "( sport = :$PROXY_PORT )" | awk '{ print $3; exit }')" \
  "$(ss -Hltn "( sport = :$MOCK_PORT )" | awk '{ print $3; exit }')" >"$RAW/listen_backlog.json"
log "  listen backlogs: $(cat "$RAW/listen_backlog.json")"
log "  proxy idle RSS: $(status_kb "$PROXY_PID" VmRSS) kB"
# Warm both sides the same way (both listen with a backlog of 128, so a first burst of
# connects can overflow it and cost a 1 s SYN retransmit).
wrk_run warmup_direct_c64 direct "$MOCK_PORT" 2 64 2
wrk_run warmup_proxy_c64 proxy "$PROXY_PORT" 2 64 2
UP_BEFORE=$(upstream_conns)
wrk_run direct_c1 direct "$MOCK_PORT" 1 1 "$DUR"
wrk_run proxy_c1 proxy "$PROXY_PORT" 1 1 "$DUR"
# Paced: one connection, 1 ms pause between requests (just under 1,000 req/s).
wrk_run direct_paced direct "$MOCK_PORT" 1 1 "$DUR" 0 1
wrk_run proxy_paced proxy "$PROXY_PORT" 1 1 "$DUR" 0 1
wrk_run direct_c64 direct "$MOCK_PORT" 2 64 "$DUR"
wrk_run proxy_c64 proxy "$PROXY_PORT" 2 64 "$DUR"
UP_AFTER=$(upstream_conns)
printf '{"established_before":%d,"established_after":%d}\n' "$UP_BEFORE" "$UP_AFTER" >"$RAW/upstream_conns.json"
alive "$PROXY_PID" || die "proxy died during the non-stream runs"
printf '{"VmRSS":%d,"VmHWM":%d}\n' "$(status_kb "$PROXY_PID" VmRSS)" "$(status_kb "$PROXY_PID" VmHWM)" >"$RAW/after_base.json"
cp "$TMP/proxy-base.log" "$RAW/proxy-base.log"
stop "$PROXY_PID"; PROXY_PID=

# ---------------------------------------------------------------- storage on vs off
# The same non-stream loads with ENABLE_STORAGE=true (SQLite in the proxy's temp dir): every
# request then queues its statistics for the store's writer thread; the request path must not
# wait for SQLite.
log "non-stream with storage on (ENABLE_STORAGE=true, SQLite in $TMP/proxy-storage)"
EXTRA_ENV=(ENABLE_STORAGE=true STORAGE_DIR="$TMP/proxy-storage/data")
start_proxy storage 5
EXTRA_ENV=()
wrk_run warmup_storage_c64 proxy "$PROXY_PORT" 2 64 2
wrk_run storage_c1 proxy "$PROXY_PORT" 1 1 "$DUR"
wrk_run storage_paced proxy "$PROXY_PORT" 1 1 "$DUR" 0 1
wrk_run storage_c64 proxy "$PROXY_PORT" 2 64 "$DUR"
alive "$PROXY_PID" || die "proxy died during the storage runs"
[ -s "$TMP/proxy-storage/data/hajimi.db" ] || ls -la "$TMP/proxy-storage/data" >&2
cp "$TMP/proxy-storage.log" "$RAW/proxy-storage.log"
stop "$PROXY_PID"; stop "$MOCK_PID"; PROXY_PID=

# ---------------------------------------------------------------- 3: 256 concurrent, 200 ms upstream
log "256 concurrent against a 200 ms upstream (proxy with 20 keys)"
start_mock slow --latency-ms 200
start_proxy slow 20
wrk_run warmup_slow_direct direct "$MOCK_PORT" 2 256 2
wrk_run warmup_slow_proxy proxy "$PROXY_PORT" 2 256 2
wrk_run direct_c256_200ms direct "$MOCK_PORT" 2 256 "$DUR"
wrk_run proxy_c256_200ms proxy "$PROXY_PORT" 2 256 "$DUR"
alive "$PROXY_PID" || die "proxy died during the 200 ms runs"
cp "$TMP/proxy-slow.log" "$RAW/proxy-slow.log"
stop "$PROXY_PID"; stop "$MOCK_PID"; PROXY_PID=

# ---------------------------------------------------------------- 4: streaming probe
log "streaming: 20 chunks x 5 ms; wrk c=32 for CPU per stream, then $STREAMS sequential streams per side"
start_mock stream --stream-chunks 20 --chunk-delay-ms 5
start_proxy stream 5
wrk_run warmup_stream_direct direct "$MOCK_PORT" 2 32 2 1
wrk_run warmup_stream_proxy proxy "$PROXY_PORT" 2 32 2 1
wrk_run stream_direct_c32 direct "$MOCK_PORT" 2 32 "$DUR" 1
wrk_run stream_proxy_c32 proxy "$PROXY_PORT" 2 32 "$DUR" 1
taskset -c "$LOAD_CPU" "$PY" "$BENCH/probe.py" stream --port "$MOCK_PORT" --target direct --n "$STREAMS" --pid "$MOCK_PID" >"$RAW/stream_direct.json"
taskset -c "$LOAD_CPU" "$PY" "$BENCH/probe.py" stream --port "$PROXY_PORT" --target proxy --n "$STREAMS" --pid "$PROXY_PID" >"$RAW/stream_proxy.json"
log "  direct: $(cat "$RAW/stream_direct.json")"
log "  proxy:  $(cat "$RAW/stream_proxy.json")"
alive "$PROXY_PID" || die "proxy died during the streaming probe"
cp "$TMP/proxy-stream.log" "$RAW/proxy-stream.log"
stop "$PROXY_PID"; stop "$MOCK_PID"; PROXY_PID=

# ---------------------------------------------------------------- 4b: burst stream
# Google often sends several events at once; here all 20 come back to back. Whatever the
# proxy does per event must not hold them up (e.g. Nagle's algorithm on the client socket
# waiting for a delayed ACK).
log "burst stream: 20 chunks back to back, $STREAMS sequential streams per side"
start_mock burst --stream-chunks 20
start_proxy burst 5
taskset -c "$LOAD_CPU" "$PY" "$BENCH/probe.py" stream --port "$MOCK_PORT" --target direct --n "$STREAMS" --pid "$MOCK_PID" >"$RAW/burst_direct.json"
taskset -c "$LOAD_CPU" "$PY" "$BENCH/probe.py" stream --port "$PROXY_PORT" --target proxy --n "$STREAMS" --pid "$PROXY_PID" >"$RAW/burst_proxy.json"
log "  direct: $(cat "$RAW/burst_direct.json")"
log "  proxy:  $(cat "$RAW/burst_proxy.json")"
alive "$PROXY_PID" || die "proxy died during the burst-stream probe"
stop "$PROXY_PID"; stop "$MOCK_PID"; PROXY_PID=

# ---------------------------------------------------------------- 5: held streams, RSS
log "RSS: $HOLD held streams (20 chunks x 500 ms each) through the proxy (20 keys)"
start_mock hold --stream-chunks 20 --chunk-delay-ms 500
start_proxy hold 20 0
sleep 1
printf '{"VmRSS":%d,"VmHWM":%d}\n' "$(status_kb "$PROXY_PID" VmRSS)" "$(status_kb "$PROXY_PID" VmHWM)" >"$RAW/idle_hold.json"
log "  proxy idle RSS: $(status_kb "$PROXY_PID" VmRSS) kB"
O0=$(listen_overflows)
taskset -c "$LOAD_CPU" "$PY" "$BENCH/probe.py" hold --port "$PROXY_PORT" --n "$HOLD" --pid "$PROXY_PID" --timeout 60 >"$RAW/hold.json" || true
printf '{"listen_overflows":%d}\n' "$(( $(listen_overflows) - O0 ))" >"$RAW/hold_overflows.json"
log "  $(cat "$RAW/hold.json")"
alive "$PROXY_PID" || die "proxy died during the held-stream test"
sleep 1
printf '{"VmRSS":%d,"VmHWM":%d}\n' "$(status_kb "$PROXY_PID" VmRSS)" "$(status_kb "$PROXY_PID" VmHWM)" >"$RAW/after_hold.json"
# Leak check: the same load again, HOLD_ROUNDS rounds in all; RSS should level off.
for round in $(seq 2 "$HOLD_ROUNDS"); do
  log "  round $round of $HOLD held streams (leak check)"
  taskset -c "$LOAD_CPU" "$PY" "$BENCH/probe.py" hold --port "$PROXY_PORT" --n "$HOLD" --pid "$PROXY_PID" --timeout 60 >"$RAW/hold_round$round.json" || true
  alive "$PROXY_PID" || die "proxy died during held-stream round $round"
  sleep 1
  printf '{"VmRSS":%d,"VmHWM":%d}\n' "$(status_kb "$PROXY_PID" VmRSS)" "$(status_kb "$PROXY_PID" VmHWM)" >"$RAW/after_hold_round$round.json"
  log "    RSS after round $round: $(cat "$RAW/after_hold_round$round.json")"
done
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

printf '{"seconds":%d,"loadavg_end":"%s"}\n' "$(( $(date +%s) - START ))" "$(cut -d' ' -f1-3 /proc/loadavg)" >"$RAW/elapsed.json"
"$PY" "$BENCH/report.py" "$RAW" "$OUT"
