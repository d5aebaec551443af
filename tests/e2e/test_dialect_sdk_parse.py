"""The official SDKs parse what the Anthropic and Responses dialects write.

The Rust unit tests render answers and streams to golden files (tests/fixtures/golden/,
regenerated with HAJIMI_UPDATE_GOLDEN=1); here the SDKs' own parsers read those bytes
through a mock HTTP transport: no server is involved.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import httpx2
import openai
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden"
REAL_FAILURE = Path(__file__).resolve().parents[1] / "fixtures" / "openai" / "responses.stream.error-insufficient-quota.jsonl"


def _transport(body: bytes, status: int, content_type: str) -> httpx2.Client:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, content=body, headers={"content-type": content_type})

    return httpx2.Client(transport=httpx2.MockTransport(handler))


def _openai(body: bytes, status: int = 200, content_type: str = "text/event-stream") -> openai.OpenAI:
    return openai.OpenAI(api_key="x", base_url="http://hajimi.test/v1", max_retries=0, http_client=_transport(body, status, content_type))


def _frames(path: Path) -> list[dict]:
    out = []
    for frame in path.read_text().strip().split("\n\n"):
        event, data = frame.split("\n", 1)
        payload = json.loads(data.removeprefix("data: "))
        assert event.removeprefix("event: ") == payload["type"]
        out.append(payload)
    return out


# --------------------------------------------------------------------------------------
# OpenAI Responses


@pytest.mark.parametrize("name", sorted(p.name for p in GOLDEN.glob("responses.stream.*.sse")))
def test_every_responses_event_validates_against_the_sdk_types(name):
    adapter = TypeAdapter(ResponseStreamEvent)
    for n, payload in enumerate(_frames(GOLDEN / name)):
        assert payload["sequence_number"] == n
        if payload["type"] == "response.failed":
            # OpenAI's own recorded failure carries this code, which the SDK's Literal omits.
            real = json.loads(REAL_FAILURE.read_text().splitlines()[-1])
            assert payload["response"]["error"]["code"] == real["response"]["error"]["code"]
            payload["response"]["error"]["code"] = "server_error"
        adapter.validate_python(payload)


def test_a_streamed_tool_call_accumulates_with_a_keepalive_in_between():
    raw = (GOLDEN / "responses.stream.reasoning-function-call.sse").read_bytes()
    first, rest = raw.split(b"\n\n", 1)
    client = _openai(first + b"\n\n: keep-alive\n\n" + rest)
    with client.responses.stream(model="gpt-5", input="hi") as stream:
        final = stream.get_final_response()
    reasoning, call = final.output
    assert reasoning.type == "reasoning" and reasoning.summary[0].text == "Weather first."
    assert reasoning.encrypted_content.startswith("hjm1:gemini-3-pro-preview:")
    assert call.type == "function_call" and json.loads(call.arguments) == {"city": "Paris"}


def test_text_custom_tool_and_truncated_streams():
    with _openai((GOLDEN / "responses.stream.text.sse").read_bytes()).responses.stream(model="gpt-5", input="hi") as s:
        assert s.get_final_response().output_text.startswith("There are **3**")
    with _openai((GOLDEN / "responses.stream.custom-tool-call.sse").read_bytes()).responses.stream(model="gpt-5", input="hi") as s:
        assert s.get_final_response().output[0].input.startswith("*** Begin Patch")
    events = list(_openai((GOLDEN / "responses.stream.max-tokens.sse").read_bytes()).responses.create(model="gpt-5", input="hi", stream=True))
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"


def test_an_in_stream_failure_raises_like_openais_own():
    client = _openai((GOLDEN / "responses.stream.failed.sse").read_bytes())
    with pytest.raises(openai.APIError) as raised:
        for _ in client.responses.create(model="gpt-5", input="hi", stream=True):
            pass
    assert "Quota" in raised.value.message


@pytest.mark.parametrize("name", sorted(p.name for p in GOLDEN.glob("responses.response.*.json")))
def test_complete_responses_validate(name):
    body = (GOLDEN / name).read_bytes()
    Response.model_validate(json.loads(body))
    response = _openai(body, content_type="application/json").responses.create(model="gpt-5", input="hi")
    assert response.status == "completed" and response.usage.total_tokens > 0


# --------------------------------------------------------------------------------------
# Anthropic Messages


def _anthropic(body: bytes, status: int = 200, content_type: str = "text/event-stream"):
    anthropic = importlib.import_module("anthropic")
    return anthropic.Anthropic(api_key="x", base_url="http://hajimi.test", max_retries=0, http_client=_transport(body, status, content_type))


def _final_message(name: str):
    client = _anthropic((GOLDEN / name).read_bytes())
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=100, messages=[{"role": "user", "content": "hi"}]) as stream:
        return stream.get_final_message()


@pytest.mark.parametrize("name", sorted(p.name for p in GOLDEN.glob("anthropic.stream.*.sse")))
def test_every_anthropic_event_validates_against_the_sdk_types(name):
    types = importlib.import_module("anthropic.types")
    adapter = TypeAdapter(types.RawMessageStreamEvent)
    for payload in _frames(GOLDEN / name):
        adapter.validate_python(payload)


def test_thinking_signatures_and_tool_use_accumulate():
    message = _final_message("anthropic.stream.thinking-tool-use.sse")
    assert [b.type for b in message.content] == ["thinking", "tool_use", "tool_use"]
    assert message.content[0].signature == "hjm1:gemini-3-pro-preview:U0lHTkFUVVJF"
    assert message.content[1].input == {"location": "Paris"} and message.content[2].input == {}
    assert message.stop_reason == "tool_use"
    assert message.to_param()["content"][0].signature == message.content[0].signature


def test_stop_reasons_and_usage():
    text = _final_message("anthropic.stream.text.sse")
    assert text.stop_reason == "end_turn" and text.usage.input_tokens == 9 and text.usage.output_tokens == 208
    assert _final_message("anthropic.stream.refusal.sse").stop_reason == "refusal"
    assert _final_message("anthropic.stream.max-tokens.sse").stop_reason == "max_tokens"


def test_pings_are_skipped_and_errors_raise():
    anthropic = importlib.import_module("anthropic")
    head = (GOLDEN / "anthropic.stream.text.sse").read_bytes().split(b"event: content_block_stop")[0]
    body = b'event: ping\ndata: {"type":"ping"}\n\n' + head
    body += b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"busy"}}\n\n'
    client = _anthropic(body)
    with pytest.raises(anthropic.APIStatusError) as raised:
        with client.messages.stream(model="m", max_tokens=1, messages=[{"role": "user", "content": "hi"}]) as stream:
            for _ in stream:
                pass
    assert raised.value.body["error"]["type"] == "overloaded_error"


@pytest.mark.parametrize(
    ("status", "kind", "exception"),
    [(400, "invalid_request_error", "BadRequestError"), (401, "authentication_error", "AuthenticationError"),
     (429, "rate_limit_error", "RateLimitError"), (529, "overloaded_error", "OverloadedError")],
)
def test_error_statuses_map_to_the_sdk_exceptions(status, kind, exception):
    anthropic = importlib.import_module("anthropic")
    body = json.dumps({"type": "error", "error": {"type": kind, "message": "m"}}).encode()
    client = _anthropic(body, status, "application/json")
    with pytest.raises(getattr(anthropic, exception)):
        client.messages.create(model="m", max_tokens=1, messages=[{"role": "user", "content": "hi"}])


@pytest.mark.parametrize("name", sorted(p.name for p in GOLDEN.glob("anthropic.message.*.json")))
def test_complete_messages_validate(name):
    anthropic = importlib.import_module("anthropic")
    body = (GOLDEN / name).read_bytes()
    anthropic.types.Message.model_validate(json.loads(body))
    message = _anthropic(body, content_type="application/json").messages.create(model="m", max_tokens=1, messages=[{"role": "user", "content": "hi"}])
    assert message.content
