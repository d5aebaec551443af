"""The official OpenAI Python SDK's Responses API, pointed at hajimi, against a mock Gemini.

What an SDK user sees: `client.responses.create` / `.stream` / `.retrieve` / `.delete` parsed into the
SDK's types, a tool round trip by call id (sent back as items and through
`previous_response_id`), reasoning summaries, and failures raised as the SDK's own exception
classes. The proxy lives for the whole session: the quota test uses a model of its own.
"""

import json

import openai
import pytest

from conftest import preset, rule, text_reply

FLASH = "gemini-2.5-flash"
GEMINI_3 = "gemini-3-pro-preview"
QUOTA_MODEL = "gemini-2.0-flash-lite"  # cools down in the quota test

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": False},
    "strict": True,
}


def call_reply(name: str, args: dict) -> dict:
    return {"kind": "function_call", "calls": [{"name": name, "args": args}]}


def test_create_answers_with_output_text_and_usage(client, gateway):
    r = client.responses.create(model=FLASH, instructions="Be brief.", input="ping 42")

    assert r.id.startswith("resp_")
    assert r.object == "response"
    assert r.status == "completed"
    assert r.model == FLASH
    assert "ping 42" in r.output_text
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    [call] = gateway.upstream_calls()
    assert call["body"]["systemInstruction"]["parts"][0]["text"] == "Be brief."


def test_stream_helper_yields_typed_events_and_the_final_response(client, gateway):
    gateway.add_rules(rule(text_reply("The sky is blue today.", chunks=4), action="streamGenerateContent"))

    with client.responses.stream(model=FLASH, input="sky?") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()

    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert kinds.count("response.output_text.done") == 1
    assert final.output_text == "The sky is blue today."
    assert final.status == "completed"


def test_create_stream_events_are_numbered_and_deltas_add_up(client, gateway):
    gateway.add_rules(rule(text_reply("one two three", chunks=3), action="streamGenerateContent"))

    events = list(client.responses.create(model=FLASH, input="count", stream=True))

    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "one two three"
    assert isinstance(events[-1], openai.types.responses.ResponseCompletedEvent)


def test_tool_round_trip_by_call_id_with_items_and_with_previous_response_id(client, gateway):
    gateway.add_rules(rule(call_reply("get_weather", {"city": "Paris"}), model=GEMINI_3, times=1))

    first = client.responses.create(model=GEMINI_3, input="Weather in Paris?", tools=[WEATHER])
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    assert call.call_id.startswith("call_")
    result = {"type": "function_call_output", "call_id": call.call_id, "output": "18C and sunny"}

    # The stored conversation continues by id (the SDK's usual way).
    second = client.responses.create(model=GEMINI_3, previous_response_id=first.id, input=[result], tools=[WEATHER])
    assert second.status == "completed" and second.previous_response_id == first.id

    # The whole conversation sent back as items, nothing stored (Codex's way).
    gateway.add_rules(rule(call_reply("get_weather", {"city": "Paris"}), model=GEMINI_3, times=1))
    replay = client.responses.create(
        model=GEMINI_3,
        store=False,
        include=["reasoning.encrypted_content"],
        input=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER],
    )
    items = [item.model_dump(exclude_none=True) for item in replay.output]
    [again] = [item for item in replay.output if item.type == "function_call"]
    third = client.responses.create(
        model=GEMINI_3,
        store=False,
        input=[{"role": "user", "content": "Weather in Paris?"}, *items,
               {"type": "function_call_output", "call_id": again.call_id, "output": "18C"}],
        tools=[WEATHER],
    )
    assert third.status == "completed"

    calls = gateway.upstream_calls()
    assert len(calls) == 4
    for sent in (calls[1]["body"], calls[3]["body"]):
        model_turn, results = sent["contents"][1], sent["contents"][2]
        assert model_turn["parts"][0]["functionCall"]["name"] == "get_weather"
        assert model_turn["parts"][0]["thoughtSignature"] != "skip_thought_signature_validator"
        assert results["parts"][0]["functionResponse"]["name"] == "get_weather"


def test_reasoning_summary_and_retrieve(client, gateway):
    gateway.add_rules(rule(text_reply("Three.", thought="s-t-r-a-w-b-e-r-r-y: three r.")))

    r = client.responses.create(model=FLASH, input="How many r in strawberry?", reasoning={"effort": "low", "summary": "auto"})

    reasoning = r.output[0]
    assert reasoning.type == "reasoning"
    assert [s.text for s in reasoning.summary] == ["s-t-r-a-w-b-e-r-r-y: three r."]
    assert r.output_text == "Three."
    assert r.usage.output_tokens_details.reasoning_tokens > 0
    got = client.responses.retrieve(r.id)
    assert got.id == r.id and got.output_text == "Three."


def test_delete_forgets_a_stored_response(client, gateway):
    r = client.responses.create(model=FLASH, input="forget me later")
    assert client.responses.retrieve(r.id).id == r.id
    client.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(r.id)


def test_hosted_tools_are_dropped_not_refused(client, gateway):
    r = client.responses.create(
        model=FLASH,
        input="hi",
        tools=[WEATHER, {"type": "file_search", "vector_store_ids": ["vs_1"]}, {"type": "code_interpreter", "container": {"type": "auto"}}],
    )

    assert r.status == "completed"
    [call] = gateway.upstream_calls()
    assert [d["name"] for d in call["body"]["tools"][0]["functionDeclarations"]] == ["get_weather"]
    assert len(call["body"]["tools"]) == 1


# --- Errors surface as the SDK's own exceptions ------------------------------------------------


def test_wrong_password_is_an_authentication_error(gateway):
    with gateway.client(api_key="not-the-password") as bad:
        with pytest.raises(openai.AuthenticationError) as e:
            bad.responses.create(model=FLASH, input="hi")
    assert e.value.status_code == 401
    assert gateway.upstream_calls() == []


def test_unknown_previous_response_id_is_a_bad_request_error(client, gateway):
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model=FLASH, previous_response_id="resp_unknown", input="hi")
    assert e.value.status_code == 400
    assert e.value.param == "previous_response_id"
    assert e.value.code == "previous_response_not_found"
    assert gateway.upstream_calls() == []


def test_unknown_response_is_a_not_found_error(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.responses.retrieve("resp_unknown")
    assert e.value.status_code == 404


def test_quota_everywhere_is_a_rate_limit_error(client, gateway):
    gateway.add_rules(rule(preset("quota_429"), model=QUOTA_MODEL))
    with pytest.raises(openai.RateLimitError) as e:
        client.responses.create(model=QUOTA_MODEL, input="hi")
    assert e.value.status_code == 429


def test_a_broken_stream_raises_from_the_error_event(client, gateway):
    gateway.add_rules(
        rule(text_reply("partial answer that breaks", chunks=4, cut_after=1), action="streamGenerateContent", times=1),
    )
    gateway.add_rules(rule(preset("overloaded_503"), action="streamGenerateContent"))

    with pytest.raises(openai.APIError) as e:
        with client.responses.stream(model=FLASH, input="break") as stream:
            for _ in stream:
                pass
    assert "stream" in e.value.message, e.value.message
