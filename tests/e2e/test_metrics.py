"""`/metrics` read by the reference Prometheus text parser (`prometheus_client`)."""

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from conftest import _direct


def scrape(gateway) -> dict:
    with _direct.open(urllib.request.Request(f"{gateway.url}/metrics"), timeout=10) as r:
        assert r.status == 200
        assert r.headers["content-type"].startswith("text/plain")
        text = r.read().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_metrics_parse_and_count_requests(client, gateway):
    client.chat.completions.create(model="gemini-2.5-flash", messages=[{"role": "user", "content": "metrics"}])
    families = scrape(gateway)

    requests = families["hajimi_requests"]  # the parser drops the `_total` suffix of counters
    assert requests.type == "counter"
    chat = [s for s in requests.samples if s.labels.get("route") == "/v1/chat/completions" and s.labels.get("status") == "200"]
    assert chat and chat[0].value >= 1
    assert chat[0].labels["model"] == "gemini-2.5-flash"

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
