"""The official OpenAI Python SDK, pointed at hajimi, against a mock Gemini upstream.

Each test asserts what an SDK user sees: parsed objects, streamed chunks and the SDK's own
exception classes. The proxy process lives for the whole session, so tests that leave state
behind in it use their own model: quota cooldowns are per model (PRO is only for the quota test).
"""

import openai
import pytest

from conftest import preset, rule, text_reply

FLASH = "gemini-2.5-flash"
PRO = "gemini-2.5-pro"  # cools down for ~34 s in test_quota_on_every_key_is_a_rate_limit_error
UNKNOWN = "gemini-9-ultra-nonexistent"
INVALID_ARGUMENT = {
    "kind": "error",
    "status": 400,
    "body": {"error": {"code": 400, "message": "Request contains an invalid argument.", "status": "INVALID_ARGUMENT"}},
}


def ask(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def streamed_text(chunks) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def finish_reasons(chunks) -> list[str]:
    return [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]


# --- Success paths -----------------------------------------------------------------------------


def test_chat_completion_answers_with_usage(client):
    r = client.chat.completions.create(model=FLASH, messages=ask("ping 42"))

    assert r.id.startswith("chatcmpl-")
    assert r.object == "chat.completion"
    assert r.model == FLASH
    [choice] = r.choices
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert "ping 42" in choice.message.content
    assert choice.finish_reason == "stop"
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_stream_delivers_role_content_and_one_stop(client, gateway):
    gateway.add_rules(rule(text_reply("The sky is blue today.", chunks=4), action="streamGenerateContent"))

    chunks = list(client.chat.completions.create(model=FLASH, messages=ask("sky?"), stream=True))

    assert chunks[0].choices[0].delta.role == "assistant"
    assert streamed_text(chunks) == "The sky is blue today."
    assert finish_reasons(chunks) == ["stop"]
    assert all(c.usage is None for c in chunks), "no usage unless include_usage"
    assert {c.id for c in chunks} == {chunks[0].id} and chunks[0].id.startswith("chatcmpl-")
    assert {c.model for c in chunks} == {FLASH}
    [call] = gateway.upstream_calls()
    assert call["action"] == "streamGenerateContent", "real streaming upstream"


def test_stream_with_include_usage_ends_with_a_usage_chunk(client):
    stream = client.chat.completions.create(
        model=FLASH, messages=ask("count me"), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)

    last = chunks[-1]
    assert last.choices == []
    assert last.usage.prompt_tokens > 0 and last.usage.completion_tokens > 0
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])
    assert finish_reasons(chunks) == ["stop"]
    assert "count me" in streamed_text(chunks)


def test_stream_is_server_sent_events_ending_with_done(client):
    with client.chat.completions.with_streaming_response.create(
        model=FLASH, messages=ask("raw"), stream=True
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]

    assert all(line.startswith("data: ") for line in lines), lines
    assert lines[-1] == "data: [DONE]"
    assert lines.count("data: [DONE]") == 1


def test_n_2_gives_two_choices(client, gateway):
    r = client.chat.completions.create(model=FLASH, messages=ask("twice"), n=2)

    assert [c.index for c in r.choices] == [0, 1]
    contents = [c.message.content for c in r.choices]
    assert all("twice" in c for c in contents)
    assert contents[0] != contents[1]
    assert all(c.finish_reason == "stop" for c in r.choices)
    [call] = gateway.upstream_calls()
    assert call["body"]["generationConfig"]["candidateCount"] == 2


def test_system_message_becomes_system_instruction_and_key_goes_in_a_header(client, gateway):
    client.chat.completions.create(
        model=FLASH,
        messages=[{"role": "system", "content": "You are terse."}, {"role": "user", "content": "hi"}],
    )

    [call] = gateway.upstream_calls()
    body = call["body"]
    assert body["systemInstruction"]["parts"][0]["text"] == "You are terse."
    assert [c["role"] for c in body["contents"]] == ["user"]
    assert call["api_key"] in gateway.keys
    assert call["key_in_query"] is False
    assert ("x-goog-api-key", call["api_key"]) in [(k.lower(), v) for k, v in call["headers"]]
    assert gateway.password not in str(call["headers"]), "the client's password stays in the proxy"


def test_models_list_uses_openai_ids(client):
    models = list(client.models.list())

    ids = [m.id for m in models]
    assert FLASH in ids
    assert not [i for i in ids if i.startswith("models/")]
    assert all(m.object == "model" for m in models)


def test_stream_retries_on_another_key_when_the_first_attempt_is_overloaded(client, gateway):
    gateway.add_rules(rule(preset("overloaded_503"), action="streamGenerateContent", times=1))

    chunks = list(client.chat.completions.create(model=FLASH, messages=ask("again"), stream=True))

    assert "again" in streamed_text(chunks)
    assert finish_reasons(chunks) == ["stop"]
    first, second = gateway.upstream_calls()
    assert first["api_key"] != second["api_key"]


# --- Errors surface as the SDK's own exceptions ------------------------------------------------


def test_wrong_password_is_an_authentication_error(gateway):
    with gateway.client(api_key="not-the-password") as bad:
        with pytest.raises(openai.AuthenticationError) as e:
            bad.chat.completions.create(model=FLASH, messages=ask("hi"))

    assert e.value.status_code == 401
    assert e.value.code == "invalid_api_key"
    assert e.value.type == "invalid_request_error"
    assert e.value.param is None
    assert gateway.upstream_calls() == [], "unauthorised requests never reach Google"


def test_upstream_invalid_argument_is_a_bad_request_error_without_retries(client, gateway):
    gateway.add_rules(rule(INVALID_ARGUMENT, action="generateContent"))

    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=FLASH, messages=ask("hi"))

    assert e.value.status_code == 400
    assert "invalid argument" in e.value.message
    assert len(gateway.upstream_calls()) == 1, "a request error is not replayed on other keys"


def test_empty_messages_is_a_bad_request_error(client, gateway):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=FLASH, messages=[])

    assert e.value.status_code == 400
    assert e.value.type == "invalid_request_error"
    assert gateway.upstream_calls() == []


def test_unknown_model_is_a_not_found_error(client, gateway):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model=UNKNOWN, messages=ask("hi"))

    assert e.value.status_code == 404
    assert e.value.code == "model_not_found"
    assert len(gateway.upstream_calls()) == 1


@pytest.mark.parametrize("failure", ["overloaded_503", "internal_500"])
def test_upstream_failing_everywhere_is_a_503_and_keys_stay_usable(client, gateway, failure):
    gateway.add_rules(rule(preset(failure), model=FLASH))

    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(model=FLASH, messages=ask("hi"))

    assert e.value.status_code == 503
    assert e.value.type == "server_error"
    assert len({c["api_key"] for c in gateway.upstream_calls()}) == len(gateway.keys), "every key was tried"
    gateway.reset()
    r = client.chat.completions.create(model=FLASH, messages=ask("recovered"))
    assert "recovered" in r.choices[0].message.content


def test_quota_on_every_key_is_a_rate_limit_error_with_retry_after(client, gateway):
    gateway.add_rules(rule(preset("quota_429"), model=PRO))

    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model=PRO, messages=ask("hi"))

    assert e.value.status_code == 429
    assert e.value.type == "rate_limit_error"
    retry_after = e.value.response.headers["retry-after"]
    assert retry_after.isdigit() and int(retry_after) > 0, retry_after
    calls = gateway.upstream_calls()
    assert sorted(c["api_key"] for c in calls) == sorted(gateway.keys), "each key once"
