"""`/metrics` read by the reference Prometheus text parser (`prometheus_client`)."""

import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from conftest import _direct


def scrape(gateway) -> dict:
    with _direct.open(urllib.request.Request(f"{gateway.url}/metrics"), timeout=10) as r:
        assert r.status == 200
        assert r.headers["content-type"].startswith("text/plain")
        text = r.read().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def chat_count(families) -> float:
    return sum(s.value for s in families["hajimi_requests"].samples
               if s.labels.get("route") == "/v1/chat/completions" and s.labels.get("status") == "200"
               and s.labels.get("model") == "gemini-2.5-flash")


def test_metrics_parse_and_count_requests(client, gateway):
    client.chat.completions.create(model="gemini-2.5-flash", messages=[{"role": "user", "content": "metrics"}])
    families = scrape(gateway)
    assert families["hajimi_requests"].type == "counter"  # the parser drops the `_total` suffix
    before = chat_count(families)
    assert before >= 1

    # The gateway is shared by the whole session: count one more call against this scrape. A
    # request is counted when its body has been sent, which can trail the client by a moment.
    client.chat.completions.create(model="gemini-2.5-flash", messages=[{"role": "user", "content": "metrics again"}])
    deadline = time.monotonic() + 5
    while chat_count(families := scrape(gateway)) < before + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert chat_count(families) == before + 1

    for name in ("hajimi_request_duration_seconds", "hajimi_upstream_duration_seconds", "hajimi_gateway_overhead_seconds"):
        assert families[name].type == "histogram", name
        buckets = [s for s in families[name].samples if s.name.endswith("_bucket")]
        assert buckets, name
        assert any(s.labels.get("le") == "+Inf" for s in buckets)

    attempts = families["hajimi_upstream_attempts"]
    assert any(s.labels.get("result") == "success" and s.value >= 1 for s in attempts.samples)
    keys = families["hajimi_keys"]
    assert keys.type == "gauge"
    assert sum(s.value for s in keys.samples) == len(gateway.keys)
    tokens = families["hajimi_tokens"]
    assert any(s.labels.get("kind") == "prompt" and s.value > 0 for s in tokens.samples)
