-- wrk script: one POST per request, to the proxy (OpenAI shape) or straight to the mock
-- (Gemini shape), chosen by BENCH_TARGET=proxy|direct. At the end it prints one JSON line
-- (prefixed "WRKJSON ") with exact counts and latency percentiles in microseconds.
local target = os.getenv("BENCH_TARGET") or "proxy"

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
if target == "direct" then
  wrk.path = "/v1beta/models/gemini-2.5-flash:generateContent"
  wrk.headers["x-goog-api-key"] = "AIzaSyBENCHbenchBENCHbenchBENCHbench00000"
  wrk.body = '{"contents":[{"role":"user","parts":[{"text":"Hello"}]}]}'
else
  wrk.path = "/v1/chat/completions"
  wrk.headers["Authorization"] = "Bearer bench"
  wrk.body = '{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"Hello"}]}'
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"lat_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
