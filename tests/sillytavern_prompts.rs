//! What SillyTavern sends, end to end against the mock: system messages keep their place
//! (author's notes, post-history instructions), speaker names survive as `Name: ` prefixes,
//! and `include_reasoning: false` keeps thoughts out of every kind of answer (decisions §5).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use mock_gemini::{Reply, Rule};
use serde_json::{Value, json};

/// A SillyTavern chat: main prompt and card, example dialogue as named system messages, the
/// history with a group member speaking, an author's note at depth 4 and a post-history
/// instruction at the end.
fn sillytavern_chat(stream: bool) -> Value {
    json!({"model": FLASH, "stream": stream, "temperature": 1, "messages": [
        {"role": "system", "content": "Write Seraphina's next reply in a fictional chat between Seraphina, Lilith and Ash."},
        {"role": "system", "content": "[Seraphina's personality: caring, protective]"},
        {"role": "system", "content": "[Example Chat]"},
        {"role": "system", "name": "example_user", "content": "Who are you?"},
        {"role": "system", "name": "example_assistant", "content": "*smiles* I am Seraphina."},
        {"role": "system", "content": "[Start a new group chat. Group members: Seraphina, Lilith]"},
        {"role": "assistant", "name": "Seraphina", "content": "*You wake up in a glade.*"},
        {"role": "assistant", "name": "Lilith", "content": "Another stray."},
        {"role": "user", "name": "Ash", "content": "Where am I?"},
        {"role": "system", "content": "[Author's note: it starts to rain.]"},
        {"role": "assistant", "name": "Seraphina", "content": "In the Eldoria forest."},
        {"role": "user", "name": "Ash", "content": "Is it safe?"},
        {"role": "assistant", "name": "Lilith", "content": "Not at night."},
        {"role": "user", "name": "Ash", "content": "Then let's go."},
        {"role": "system", "content": "[Write Seraphina's next reply only.]"}
    ]})
}

#[tokio::test]
async fn authors_notes_and_post_history_instructions_keep_their_place_and_speakers_their_names() {
    let h = start(&[]).await;
    let (status, v) = json(h.chat(&sillytavern_chat(false)).await).await;
    assert_eq!(status, 200, "{v}");
    let upstream = &h.upstream_calls()[0].body;
    assert_eq!(
        upstream["systemInstruction"],
        json!({"parts": [
            {"text": "Write Seraphina's next reply in a fictional chat between Seraphina, Lilith and Ash."},
            {"text": "[Seraphina's personality: caring, protective]"},
            {"text": "[Example Chat]"},
            {"text": "example_user: Who are you?"},
            {"text": "example_assistant: *smiles* I am Seraphina."},
            {"text": "[Start a new group chat. Group members: Seraphina, Lilith]"}
        ]})
    );
    assert_eq!(
        upstream["contents"],
        json!([
            {"role": "model", "parts": [{"text": "Seraphina: *You wake up in a glade.*"}, {"text": "Lilith: Another stray."}]},
            {"role": "user", "parts": [{"text": "Ash: Where am I?"}, {"text": "[Author's note: it starts to rain.]"}]},
            {"role": "model", "parts": [{"text": "Seraphina: In the Eldoria forest."}]},
            {"role": "user", "parts": [{"text": "Ash: Is it safe?"}]},
            {"role": "model", "parts": [{"text": "Lilith: Not at night."}]},
            {"role": "user", "parts": [{"text": "Ash: Then let's go."}, {"text": "[Write Seraphina's next reply only.]"}]}
        ])
    );
}

#[tokio::test]
async fn a_system_message_inside_a_tool_exchange_keeps_the_results_next_to_their_call() {
    // RANDOM_STRING on: its inserted turns must not split the exchange either. The mock
    // refuses results that do not follow their call, as Google does.
    let h = start(&[("RANDOM_STRING", "true")]).await;
    let body = json!({"model": FLASH, "messages": [
        {"role": "system", "content": "You are a weather bot."},
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}
        ]},
        {"role": "system", "content": "[Note: answer in one line.]"},
        {"role": "tool", "tool_call_id": "call_a", "content": "{\"tempC\": 18}"},
        {"role": "system", "content": "[Note: use Celsius.]"},
        {"role": "tool", "tool_call_id": "call_b", "content": "{\"tempC\": 24}"}
    ], "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]});
    let (status, v) = json(h.chat(&body).await).await;
    assert_eq!(status, 200, "{v}");
    let contents = h.upstream_calls()[0].body["contents"]
        .as_array()
        .unwrap()
        .clone();
    let call = contents
        .iter()
        .position(|c| c["parts"][0].get("functionCall").is_some())
        .expect("the call turn");
    assert_eq!(
        contents[call + 1]["parts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p.get("functionResponse").is_some())
            .count(),
        2,
        "both results right after the call: {contents:?}"
    );
    let notes: Vec<&str> = contents[call + 2..]
        .iter()
        .flat_map(|c| c["parts"].as_array().unwrap())
        .filter_map(|p| p["text"].as_str())
        .filter(|t| t.starts_with("[Note"))
        .collect();
    assert_eq!(
        notes,
        ["[Note: answer in one line.]", "[Note: use Celsius.]"],
        "the notes follow the results, in order"
    );
}

fn thinking_reply() -> Reply {
    // Google sending thoughts although none were asked for: they must not reach the client.
    Reply::text("Let us go north.")
        .chunks(3)
        .thought("The player wants to leave; the forest is dark.")
}

fn reasoning_of(frames: &[Value]) -> String {
    frames
        .iter()
        .filter_map(|f| f["choices"][0]["delta"]["reasoning_content"].as_str())
        .collect()
}

fn content_of(frames: &[Value]) -> String {
    frames
        .iter()
        .filter_map(|f| f["choices"][0]["delta"]["content"].as_str())
        .collect()
}

#[tokio::test]
async fn excluded_reasoning_never_reaches_the_client_while_the_model_still_thinks() {
    let h = start(&[]).await;
    h.mock.add_rule(Rule::new(thinking_reply()));
    let mut body = json!({"model": FLASH, "reasoning_effort": "high", "include_reasoning": false,
        "messages": [{"role": "user", "content": "Where to?"}]});

    let (status, v) = json(h.chat(&body).await).await;
    assert_eq!(status, 200, "{v}");
    let message = &v["choices"][0]["message"];
    assert!(message.get("reasoning_content").is_none(), "{v}");
    assert_eq!(message["content"], "Let us go north.");
    assert!(
        v["usage"]["completion_tokens_details"]["reasoning_tokens"]
            .as_u64()
            .unwrap()
            > 0,
        "thinking happened and is counted: {v}"
    );
    assert_eq!(
        h.upstream_calls()[0].body["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": 24576, "includeThoughts": false}),
        "the effort is kept, thoughts are not asked for"
    );

    // Fake streaming (the default): the same answer as chunks, without thoughts.
    body["stream"] = json!(true);
    body["messages"][0]["content"] = json!("Where to, streamed?");
    let frames = sse(h.chat(&body).await).await;
    assert_eq!(frames.last().unwrap(), "[DONE]");
    assert_eq!(reasoning_of(&frames), "", "{frames:?}");
    assert_eq!(content_of(&frames), "Let us go north.");

    // OpenRouter's spelling, and the control: without exclusion the thoughts do arrive.
    let body = json!({"model": FLASH, "reasoning": {"exclude": true},
        "messages": [{"role": "user", "content": "And now?"}]});
    let (_, v) = json(h.chat(&body).await).await;
    assert!(
        v["choices"][0]["message"]
            .get("reasoning_content")
            .is_none(),
        "{v}"
    );
    let body = json!({"model": FLASH, "messages": [{"role": "user", "content": "And then?"}]});
    let (_, v) = json(h.chat(&body).await).await;
    assert!(
        v["choices"][0]["message"]["reasoning_content"].is_string(),
        "{v}"
    );
}

#[tokio::test]
async fn excluded_reasoning_stays_out_of_a_real_stream() {
    let h = start(&[("FAKE_STREAMING", "false")]).await;
    h.mock
        .add_rule(Rule::new(thinking_reply()).action("streamGenerateContent"));
    let body = json!({"model": FLASH, "stream": true, "include_reasoning": false,
        "messages": [{"role": "user", "content": "Where to?"}]});
    let frames = sse(h.chat(&body).await).await;
    assert_eq!(frames.last().unwrap(), "[DONE]");
    assert_eq!(reasoning_of(&frames), "", "{frames:?}");
    assert_eq!(content_of(&frames), "Let us go north.");
    assert_eq!(
        frames[0]["choices"][0]["delta"]["role"], "assistant",
        "the first chunk still opens the answer: {frames:?}"
    );
    assert_eq!(
        h.upstream_calls()[0].body["generationConfig"]["thinkingConfig"],
        json!({"includeThoughts": false})
    );
}
