"""The official `anthropic` Python SDK against hajimi's Messages routes (mock Gemini upstream).

Create and stream, a tool round trip, thinking blocks whose signatures carry Gemini 3's
thought signatures over two turns, token counting, the model list, and errors raised as the
SDK's own exception types.
"""

from __future__ import annotations

import anthropic
import httpx2
import pytest

from conftest import Gateway, preset, rule, text_reply

FLASH = "gemini-2.5-flash"
GEMINI3 = "gemini-3-pro-preview"
QUOTA_MODEL = "gemini-2.0-flash-exp"  # cools down for 30 s in test_errors_are_the_sdks_exceptions
WEATHER = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def function_call(name: str, args: dict) -> dict:
    return {"kind": "function_call", "calls": [{"name": name, "args": args}]}


def make_client(gateway: Gateway, api_key: str | None = None) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=gateway.url,
        api_key=api_key if api_key is not None else gateway.password,
        max_retries=0,
        timeout=30,
        # Straight to 127.0.0.1, never through a proxy from the environment.
        http_client=httpx2.Client(trust_env=False),
    )


@pytest.fixture
def claude(gateway: Gateway):
    with make_client(gateway) as c:
        yield c


def test_create_returns_a_message(claude, gateway):
    gateway.add_rules(rule(text_reply("Hello from Gemini"), action="generateContent"))
    msg = claude.messages.create(
        model=FLASH,
        max_tokens=64,
        system="Be terse.",
        messages=[{"role": "user", "content": "Hi"}],
        metadata={"user_id": "e2e"},
    )
    assert isinstance(msg, anthropic.types.Message)
    assert msg.id.startswith("msg_")
    assert msg.model == FLASH
    assert msg.role == "assistant"
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == "Hello from Gemini"
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
    assert gateway.upstream_calls()[0]["body"]["systemInstruction"]["parts"][0]["text"] == "Be terse."


def test_stream_helper_accumulates_text(claude, gateway):
    gateway.add_rules(rule(text_reply("one two three four", chunks=4)))
    with claude.messages.stream(model=FLASH, max_tokens=64, messages=[{"role": "user", "content": "Count"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == "one two three four"
    assert final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


def test_raw_stream_events_are_the_sdks_types(claude, gateway):
    gateway.add_rules(rule(text_reply("abc", chunks=3)))
    stream = claude.messages.create(model=FLASH, max_tokens=64, stream=True,
                                    messages=[{"role": "user", "content": "x"}])
    kinds = [e.type for e in stream]
    assert kinds[0] == "message_start"
    assert kinds[1] == "content_block_start"
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[2:-3]) == {"content_block_delta"}


def test_a_tool_round_trip(claude, gateway):
    gateway.add_rules(
        rule(function_call("get_weather", {"city": "Paris"}), model=FLASH, times=1),
        rule(text_reply("It is 18C in Paris."), model=FLASH),
    )
    question = {"role": "user", "content": "Weather in Paris?"}
    first = claude.messages.create(model=FLASH, max_tokens=256, tools=[WEATHER], messages=[question])
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    assert isinstance(call, anthropic.types.ToolUseBlock)
    assert call.name == "get_weather" and call.input == {"city": "Paris"}
    assert all(b.type != "thinking" for b in first.content), "no thinking asked for"
    second = claude.messages.create(
        model=FLASH,
        max_tokens=256,
        tools=[WEATHER],
        messages=[
            question,
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18C"}]},
        ],
    )
    assert second.stop_reason == "end_turn"
    assert second.content[0].text == "It is 18C in Paris."
    sent = gateway.upstream_calls()[1]["body"]["contents"]
    assert sent[2]["parts"][0]["functionResponse"]["name"] == "get_weather"


def test_thinking_signatures_over_two_turns_on_gemini3(claude, gateway):
    """The mock rejects a replayed Gemini 3 call without the signature it issued; the SDK
    sends the thinking block back unchanged and the signature inside it satisfies it."""
    gateway.add_rules(
        rule(function_call("get_weather", {"city": "Paris"}), model=GEMINI3, times=1),
        rule(text_reply("Sunny.", thought="The tool says sunny."), model=GEMINI3),
    )
    question = {"role": "user", "content": "Weather in Paris?"}
    thinking = {"type": "enabled", "budget_tokens": 2048}
    with claude.messages.stream(model=GEMINI3, max_tokens=4096, tools=[WEATHER], thinking=thinking,
                                messages=[question]) as s:
        first = s.get_final_message()
    assert [b.type for b in first.content] == ["thinking", "tool_use"]
    block = first.content[0]
    assert isinstance(block, anthropic.types.ThinkingBlock)
    assert block.signature.startswith("hjm1:gemini-3-pro-preview:")
    call = first.content[1]
    second = claude.messages.create(
        model=GEMINI3,
        max_tokens=4096,
        tools=[WEATHER],
        thinking=thinking,
        messages=[
            question,
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]},
        ],
    )
    assert [b.type for b in second.content] == ["thinking", "text"]
    assert second.content[0].thinking == "The tool says sunny."
    assert second.content[1].text == "Sunny."
    replayed = gateway.upstream_calls()[1]["body"]["contents"][1]["parts"][0]
    assert block.signature.endswith(replayed["thoughtSignature"])


def test_count_tokens_and_the_model_list(claude, gateway):
    counted = claude.messages.count_tokens(model=FLASH, messages=[{"role": "user", "content": "How many tokens?"}])
    assert counted.input_tokens > 0
    models = claude.models.list()
    ids = [m.id for m in models.data]
    assert FLASH in ids
    assert all(m.type == "model" for m in models.data)
    assert claude.models.retrieve(FLASH).id == FLASH


def test_errors_are_the_sdks_exceptions(claude, gateway):
    with make_client(gateway, api_key="wrong") as bad:
        with pytest.raises(anthropic.AuthenticationError) as e:
            bad.messages.create(model=FLASH, max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 401
    assert e.value.body["error"]["type"] == "authentication_error"

    with pytest.raises(anthropic.NotFoundError):
        claude.messages.create(model="gemini-made-up", max_tokens=8, messages=[{"role": "user", "content": "x"}])

    gateway.add_rules(rule({"kind": "error", "status": 400, "body": {"error": {
        "code": 400, "message": "Bad schema.", "status": "INVALID_ARGUMENT"}}}, times=1))
    with pytest.raises(anthropic.BadRequestError) as e:
        claude.messages.create(model=FLASH, max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert "Bad schema." in e.value.message

    gateway.reset()
    gateway.add_rules(rule(preset("overloaded_503")))
    with pytest.raises(anthropic.OverloadedError) as e:
        claude.messages.create(model=FLASH, max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 529

    gateway.reset()
    gateway.add_rules(rule({"kind": "error", "status": 429, "body": {"error": {
        "code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "30s"}]}}}))
    with pytest.raises(anthropic.RateLimitError) as e:
        claude.messages.create(model=QUOTA_MODEL, max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert e.value.response.headers["retry-after"] == "30"


def test_a_stream_that_breaks_raises_the_error_event(claude, gateway):
    gateway.add_rules(rule(text_reply("a b c d", chunks=4, cut_after=2)))
    with pytest.raises(anthropic.APIStatusError) as e:
        with claude.messages.stream(model=FLASH, max_tokens=64, messages=[{"role": "user", "content": "x"}]) as s:
            for _ in s.text_stream:
                pass
    assert e.value.body["type"] == "error"
    assert e.value.body["error"]["message"]
