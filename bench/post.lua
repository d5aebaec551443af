-- wrk script: one POST per request, to the proxy (OpenAI shape) or straight to the mock
-- (Gemini shape), chosen by BENCH_TARGET=proxy|direct (or another dialect of the proxy:
-- anthropic|responses|native, non-stream); BENCH_STREAM=1 asks for SSE streams.
-- Every request carries a different user text ("Hello <thread>-<n>"), so the proxy cannot
-- answer one from another (hajimi shares one upstream answer among identical requests in
-- flight and keeps a response cache); both sides build bodies the same way.
-- BENCH_DELAY_MS=N: each connection waits N ms between requests (a paced load; wrk measures
-- latency from send to response, the pause excluded).
-- At the end it prints one JSON line (prefixed "WRKJSON ") with exact counts and latency
-- percentiles in microseconds.
local target = os.getenv("BENCH_TARGET") or "proxy"
local stream = os.getenv("BENCH_STREAM") == "1"
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "")

local head, tail
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
if target == "direct" then
  if stream then
    wrk.path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
  else
    wrk.path = "/v1beta/models/gemini-2.5-flash:generateContent"
  end
  wrk.headers["x-goog-api-key"] = "AIzaSy" .. string.rep("0", 33) -- fake; the mock takes any key
  head = '{"contents":[{"role":"user","parts":[{"text":"Hello '
  tail = '"}]}]}'
elseif target == "anthropic" then
  -- the proxy, Anthropic Messages dialect (bench/run.sh dialects)
  wrk.path = "/v1/messages"
  wrk.headers["x-api-key"] = "bench"
  wrk.headers["anthropic-version"] = "2023-06-01"
  head = '{"model":"gemini-2.5-flash","max_tokens":256,"messages":[{"role":"user","content":"Hello '
  tail = '"}]}'
elseif target == "responses" then
  -- the proxy, OpenAI Responses dialect; store false, as Codex sends it
  wrk.path = "/v1/responses"
  wrk.headers["Authorization"] = "Bearer bench"
  head = '{"model":"gemini-2.5-flash","store":false,"input":"Hello '
  tail = '"}'
elseif target == "native" then
  -- the proxy, native Gemini (the identity dialect)
  wrk.path = "/v1beta/models/gemini-2.5-flash:generateContent"
  wrk.headers["x-goog-api-key"] = "bench"
  head = '{"contents":[{"role":"user","parts":[{"text":"Hello '
  tail = '"}]}]}'
else
  wrk.path = "/v1/chat/completions"
  wrk.headers["Authorization"] = "Bearer bench"
  head = '{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"Hello '
  if stream then
    tail = '"}],"stream":true}'
  else
    tail = '"}]}'
  end
end

local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

local n = 0
function request()
  n = n + 1
  return wrk.format(nil, nil, nil, head .. tostring(tid) .. "-" .. n .. tail)
end

if pause and pause > 0 then
  function delay()
    return pause
  end
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
