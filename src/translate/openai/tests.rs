//! The OpenAI chat request translation, end to end: messages, tools, generation config,
//! search mode and the proxy's additions.

use serde_json::{Value, json};

use super::*;
use crate::translate::fixups::{drop_penalties, refuses_json_schema, use_schema_subset};
use crate::translate::history::{SKIP_VALIDATOR, safe_insert_index};
use crate::translate::schema;
use crate::wire::gemini::Content;

fn request(body: Value) -> ChatRequest {
    serde_json::from_value(body).expect("valid chat request")
}

fn translate(body: Value) -> Value {
    let t = to_gemini(&request(body), &Context::default()).expect("translates");
    serde_json::to_value(&t.request).expect("serialises")
}

#[test]
fn leading_system_messages_become_the_system_instruction_and_later_ones_keep_their_place() {
    let g = translate(json!({"model": "gemini-2.5-flash", "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
        {"role": "user", "content": "Hi"},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
        {"role": "assistant", "content": "Salut"},
        {"role": "user", "content": "Again"}
    ]}));
    assert_eq!(
        g["systemInstruction"],
        json!({"parts": [{"text": "You are terse."}, {"text": "Use metric units."}]})
    );
    assert_eq!(
        g["contents"],
        json!([
            {"role": "user", "parts": [{"text": "Hi"}, {"text": "Answer in French."}]},
            {"role": "model", "parts": [{"text": "Salut"}]},
            {"role": "user", "parts": [{"text": "Again"}]}
        ]),
        "a later system message is a user turn at its position, merged with the adjacent user turn"
    );
}

/// What SillyTavern sends: main prompt and character card, example dialogue as named
/// system messages, the chat, an author's note at depth 4 and a post-history instruction.
fn sillytavern_chat() -> Value {
    json!({"model": "gemini-2.5-flash", "messages": [
        {"role": "system", "content": "Write Seraphina's next reply in a fictional chat between Seraphina and Ash."},
        {"role": "system", "content": "[Seraphina's personality: caring, protective]"},
        {"role": "system", "content": "[Example Chat]"},
        {"role": "system", "name": "example_user", "content": "Who are you?"},
        {"role": "system", "name": "example_assistant", "content": "*smiles* I am Seraphina, guardian of this forest."},
        {"role": "system", "content": "[Start a new Chat]"},
        {"role": "assistant", "content": "*You wake up in a glade.*"},
        {"role": "user", "content": "Where am I?"},
        {"role": "system", "content": "[Author's note: it starts to rain.]"},
        {"role": "assistant", "content": "In the Eldoria forest."},
        {"role": "user", "content": "Is it safe?"},
        {"role": "assistant", "content": "Not at night."},
        {"role": "user", "content": "Then let's go."},
        {"role": "system", "content": "[Stay in character; never speak for Ash.]"}
    ]})
}

#[test]
fn sillytavern_authors_note_and_post_history_instruction_keep_their_place() {
    let g = translate(sillytavern_chat());
    assert_eq!(
        g["systemInstruction"],
        json!({"parts": [
            {"text": "Write Seraphina's next reply in a fictional chat between Seraphina and Ash."},
            {"text": "[Seraphina's personality: caring, protective]"},
            {"text": "[Example Chat]"},
            {"text": "example_user: Who are you?"},
            {"text": "example_assistant: *smiles* I am Seraphina, guardian of this forest."},
            {"text": "[Start a new Chat]"}
        ]}),
        "the example dialogue keeps its speakers"
    );
    assert_eq!(
        g["contents"],
        json!([
            {"role": "model", "parts": [{"text": "*You wake up in a glade.*"}]},
            {"role": "user", "parts": [{"text": "Where am I?"}, {"text": "[Author's note: it starts to rain.]"}]},
            {"role": "model", "parts": [{"text": "In the Eldoria forest."}]},
            {"role": "user", "parts": [{"text": "Is it safe?"}]},
            {"role": "model", "parts": [{"text": "Not at night."}]},
            {"role": "user", "parts": [{"text": "Then let's go."}, {"text": "[Stay in character; never speak for Ash.]"}]}
        ])
    );
}

#[test]
fn a_later_system_message_between_model_turns_is_its_own_user_turn() {
    let g = translate(json!({"model": "m", "messages": [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "system", "content": "note"},
        {"role": "assistant", "content": "c"}
    ]}));
    assert_eq!(
        g["contents"],
        json!([
            {"role": "user", "parts": [{"text": "a"}]},
            {"role": "model", "parts": [{"text": "b"}]},
            {"role": "user", "parts": [{"text": "note"}]},
            {"role": "model", "parts": [{"text": "c"}]}
        ])
    );
    assert!(g.get("systemInstruction").is_none());
}

#[test]
fn speaker_names_become_prefixes_and_merged_turns_stay_labeled() {
    let g = translate(json!({"model": "m", "messages": [
        {"role": "system", "content": "A group chat."},
        {"role": "user", "name": "Alice", "content": "hi all"},
        {"role": "user", "name": "Bob", "content": [
            {"type": "text", "text": "look at this"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
        ]},
        {"role": "assistant", "name": "Seraphina", "content": "Hello, both of you."},
        {"role": "assistant", "name": "Lilith", "content": "Hmph."},
        {"role": "user", "name": "Alice", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "text", "text": "and this"}
        ]},
        {"role": "user", "name": "Bob", "content": "Bob: already labeled"},
        {"role": "user", "name": " ", "content": "blank names add nothing"}
    ]}));
    let image = json!({"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}});
    assert_eq!(
        g["contents"],
        json!([
            {"role": "user", "parts": [{"text": "Alice: hi all"}, {"text": "Bob: look at this"}, image]},
            {"role": "model", "parts": [{"text": "Seraphina: Hello, both of you."}, {"text": "Lilith: Hmph."}]},
            {"role": "user", "parts": [
                {"text": "Alice:"}, image, {"text": "and this"},
                {"text": "Bob: already labeled"},
                {"text": "blank names add nothing"}
            ]}
        ])
    );
}

#[test]
fn a_named_assistant_labels_its_text_never_its_function_calls() {
    let mut body = tool_loop("gemini-3-pro-preview");
    body["messages"][1]["name"] = json!("Seraphina");
    let g = translate(body.clone());
    let turn = &g["contents"][1]["parts"];
    assert_eq!(turn[0], json!({"text": "Seraphina: Let me check."}));
    assert_eq!(
        turn[1],
        json!({"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": SKIP_VALIDATOR})
    );
    assert_eq!(turn[2]["functionCall"]["name"], "get_time");
    body["messages"][1]["content"] = Value::Null;
    let g = translate(body);
    assert_eq!(
        g["contents"][1]["parts"][0]["functionCall"]["name"], "get_weather",
        "a call-only turn gets no label part"
    );
}

#[test]
fn system_messages_inside_a_tool_exchange_follow_the_results() {
    // A system message between the call and its results, and one between two results.
    let mut body = tool_loop("gemini-2.5-flash");
    let messages = body["messages"].as_array_mut().expect("messages");
    messages.insert(3, json!({"role": "system", "content": "between results"}));
    messages.insert(2, json!({"role": "system", "content": "before results"}));
    let g = translate(body);
    let c = &g["contents"];
    assert!(c[1]["parts"][1].get("functionCall").is_some(), "{g}");
    assert_eq!(
        c[2]["parts"].as_array().map(Vec::len),
        Some(2),
        "both results in one turn right after the call: {g}"
    );
    assert_eq!(c[2]["parts"][0]["functionResponse"]["name"], "get_weather");
    assert_eq!(c[2]["parts"][1]["functionResponse"]["name"], "get_time");
    assert_eq!(
        c[3],
        json!({"role": "user", "parts": [{"text": "before results"}, {"text": "between results"}, {"text": "Thanks"}]}),
        "the notes come right after the results, in order"
    );
    assert_eq!(c.as_array().map(Vec::len), Some(4));
}

#[test]
fn system_messages_after_a_tool_exchange_keep_their_place() {
    let mut body = tool_loop("gemini-2.5-flash");
    let messages = body["messages"].as_array_mut().expect("messages");
    messages.insert(4, json!({"role": "system", "content": "after results"}));
    let g = translate(body);
    assert_eq!(
        g["contents"][3],
        json!({"role": "user", "parts": [{"text": "after results"}, {"text": "Thanks"}]})
    );
}

#[test]
fn consecutive_same_role_turns_are_merged() {
    let g = translate(json!({"model": "m", "messages": [
        {"role": "user", "content": "a"},
        {"role": "user", "content": [{"type": "text", "text": "b"}, {"type": "text", "text": "c"}]},
        {"role": "assistant", "content": "d"},
        {"role": "assistant", "content": "e"}
    ]}));
    assert_eq!(
        g["contents"],
        json!([
            {"role": "user", "parts": [{"text": "a"}, {"text": "b"}, {"text": "c"}]},
            {"role": "model", "parts": [{"text": "d"}, {"text": "e"}]}
        ])
    );
}

#[test]
fn only_parameters_the_client_sent_are_sent() {
    let g = translate(
        json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "x"}]}),
    );
    assert!(g.get("generationConfig").is_none(), "{g}");

    let g = translate(
        json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "x"}],
            "temperature": 0.3, "top_p": 0.9, "top_k": 40, "max_tokens": 100, "max_completion_tokens": 200,
            "stop": "END", "n": 2, "seed": 9_999_999_999_i64, "presence_penalty": 0.5, "frequency_penalty": 0
        }),
    );
    assert_eq!(
        g["generationConfig"],
        json!({
            "temperature": 0.3, "topP": 0.9, "topK": 40, "candidateCount": 2, "maxOutputTokens": 200,
            "stopSequences": ["END"], "seed": 2_147_483_647, "presencePenalty": 0.5
        })
    );
}

#[test]
fn stop_lists_are_kept_and_max_tokens_is_the_fallback() {
    let g = translate(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "stop": ["a", "b"], "max_tokens": 7}),
    );
    assert_eq!(
        g["generationConfig"],
        json!({"maxOutputTokens": 7, "stopSequences": ["a", "b"]})
    );
}

#[test]
fn safety_is_off_for_new_models_and_block_none_for_old() {
    let g = translate(
        json!({"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(g["safetySettings"].as_array().map(Vec::len), Some(5));
    assert_eq!(g["safetySettings"][0]["threshold"], "OFF");
    let g = translate(
        json!({"model": "gemini-3-pro-preview", "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(g["safetySettings"][4]["threshold"], "OFF");
    let g = translate(
        json!({"model": "gemini-2.0-flash", "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(g["safetySettings"][0]["threshold"], "BLOCK_NONE");
}

#[test]
fn system_only_conversations_are_sent_as_user_text() {
    let g = translate(json!({"model": "m", "messages": [{"role": "system", "content": "Say hi"}]}));
    assert_eq!(
        g["contents"],
        json!([{"role": "user", "parts": [{"text": "Say hi"}]}])
    );
    assert!(g.get("systemInstruction").is_none());
    let g = translate(json!({"model": "m", "messages": [
        {"role": "system", "content": "Say hi"},
        {"role": "developer", "name": "Narrator", "content": "Briefly."}
    ]}));
    assert_eq!(
        g["contents"],
        json!([{"role": "user", "parts": [{"text": "Say hi"}, {"text": "Narrator: Briefly."}]}])
    );
}

#[test]
fn data_urls_become_inline_data() {
    let g = translate(
        json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
        ]}]}),
    );
    assert_eq!(
        g["contents"][0]["parts"][1],
        json!({"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}})
    );
}

#[test]
fn bad_input_is_a_400_naming_the_message() {
    for body in [
        json!({"model": "m", "messages": []}),
        json!({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}),
        json!({"model": "", "messages": [{"role": "user", "content": "x"}]}),
        json!({"model": "m", "messages": [{"role": "user", "content": ""}]}),
    ] {
        let err = to_gemini(&request(body), &Context::default()).expect_err("refused");
        assert_eq!(err.status(), axum::http::StatusCode::BAD_REQUEST);
    }
}

#[test]
fn penalties_can_be_dropped_for_the_retry() {
    let mut t = to_gemini(
        &request(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "presence_penalty": 1.0}),
        ),
        &Context::default(),
    )
    .expect("translates");
    assert!(drop_penalties(&mut t.request));
    assert!(!drop_penalties(&mut t.request));
}

fn translate_with(body: Value, opts: &Context<'_>) -> Value {
    let t = to_gemini(&request(body), opts).expect("translates");
    serde_json::to_value(&t.request).expect("serialises")
}

fn tool_loop(model: &str) -> Value {
    json!({"model": model, "messages": [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": "Let me check.", "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": ""}}
        ]},
        {"role": "tool", "tool_call_id": "call_b", "content": "12:00"},
        {"role": "tool", "tool_call_id": "call_a", "content": "{\"tempC\": 18}"},
        {"role": "user", "content": "Thanks"}
    ], "tools": [
        {"type": "function", "function": {"name": "get_weather", "description": "Weather", "strict": true,
         "parameters": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": false,
                        "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
        {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
    ], "tool_choice": "auto"})
}

#[test]
fn tools_become_function_declarations_with_json_schema() {
    let g = translate(tool_loop("gemini-2.5-flash"));
    let decls = &g["tools"][0]["functionDeclarations"];
    assert_eq!(decls[0]["name"], "get_weather");
    assert_eq!(
        decls[0]["parametersJsonSchema"]["additionalProperties"], false,
        "real JSON Schema is kept"
    );
    assert!(
        decls[1].get("parametersJsonSchema").is_none(),
        "no-argument tools omit parameters"
    );
    assert_eq!(
        g["toolConfig"],
        json!({"functionCallingConfig": {"mode": "AUTO"}})
    );
}

#[test]
fn tool_history_becomes_function_calls_and_grouped_responses_in_call_order() {
    let g = translate(tool_loop("gemini-2.5-flash"));
    let c = &g["contents"];
    assert_eq!(c[1]["role"], "model");
    assert_eq!(c[1]["parts"][0], json!({"text": "Let me check."}));
    assert_eq!(
        c[1]["parts"][1]["functionCall"],
        json!({"name": "get_weather", "args": {"city": "Paris"}})
    );
    assert_eq!(
        c[1]["parts"][2]["functionCall"],
        json!({"name": "get_time", "args": {}})
    );
    assert!(
        c[1]["parts"][1].get("thoughtSignature").is_none(),
        "2.5 needs no placeholder"
    );
    assert_eq!(c[2]["role"], "user");
    assert_eq!(
        c[2]["parts"].as_array().map(Vec::len),
        Some(2),
        "one turn for all results"
    );
    assert_eq!(
        c[2]["parts"][0]["functionResponse"],
        json!({"name": "get_weather", "response": {"tempC": 18}})
    );
    assert_eq!(
        c[2]["parts"][1]["functionResponse"],
        json!({"name": "get_time", "response": {"output": "12:00"}})
    );
    assert_eq!(
        c[3],
        json!({"role": "user", "parts": [{"text": "Thanks"}]}),
        "text after results is its own turn"
    );
}

#[test]
fn gemini3_signatures_are_restored_or_replaced_by_the_placeholder() {
    let g = translate(tool_loop("gemini-3-pro-preview"));
    assert_eq!(
        g["contents"][1]["parts"][1]["thoughtSignature"],
        SKIP_VALIDATOR
    );
    assert!(
        g["contents"][1]["parts"][2]
            .get("thoughtSignature")
            .is_none(),
        "only the first call of a turn"
    );
    let recall = |id: &str, _: &str| (id == "call_a").then(|| "c2lnbmF0dXJl".to_owned());
    let opts = Context {
        recall_signature: &recall,
        ..Context::default()
    };
    let g = translate_with(tool_loop("gemini-3-pro-preview"), &opts);
    assert_eq!(
        g["contents"][1]["parts"][1]["thoughtSignature"],
        "c2lnbmF0dXJl"
    );
}

#[test]
fn signatures_in_extra_content_are_accepted() {
    let mut body = tool_loop("gemini-3-pro-preview");
    body["messages"][1]["tool_calls"][0]["extra_content"] =
        json!({"google": {"thought_signature": "ZnJvbS1jbGllbnQ="}});
    let g = translate(body);
    assert_eq!(
        g["contents"][1]["parts"][1]["thoughtSignature"],
        "ZnJvbS1jbGllbnQ="
    );
}

#[test]
fn an_unknown_tool_call_id_is_a_400() {
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "call_zzz", "content": "1"}]});
    assert!(to_gemini(&request(body), &Context::default()).is_err());
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}, {"role": "function", "name": "f", "content": "1"}]});
    let g = translate(body);
    assert_eq!(
        g["contents"][1]["parts"][0]["functionResponse"]["name"],
        "f"
    );
}

#[test]
fn tool_choice_maps_to_function_calling_modes() {
    let mut body = tool_loop("gemini-2.5-flash");
    for (choice, expected) in [
        (json!("none"), json!({"mode": "NONE"})),
        (json!("required"), json!({"mode": "ANY"})),
        (
            json!({"type": "function", "function": {"name": "get_time"}}),
            json!({"mode": "ANY", "allowedFunctionNames": ["get_time"]}),
        ),
        (
            json!({"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [{"type": "function", "function": {"name": "get_weather"}}]}}),
            json!({"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
        ),
    ] {
        body["tool_choice"] = choice;
        assert_eq!(
            translate(body.clone())["toolConfig"]["functionCallingConfig"],
            expected
        );
    }
}

#[test]
fn the_schema_subset_fallback_converts_every_schema() {
    let mut body = tool_loop("gemini-2.0-flash");
    body["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "x", "strict": true,
        "schema": {"type": "object", "additionalProperties": false, "properties": {"a": {"type": ["string", "null"]}}}}});
    let mut t = to_gemini(&request(body), &Context::default()).expect("translates");
    assert!(use_schema_subset(&mut t.request));
    let g = serde_json::to_value(&t.request).expect("json");
    let params = &g["tools"][0]["functionDeclarations"][0]["parameters"];
    assert!(schema::unknown_keywords(params).is_empty(), "{params}");
    assert!(
        g["tools"][0]["functionDeclarations"][0]
            .get("parametersJsonSchema")
            .is_none()
    );
    assert_eq!(
        g["generationConfig"]["responseSchema"]["properties"]["a"],
        json!({"type": "string", "nullable": true})
    );
    assert!(refuses_json_schema(
        "Invalid JSON payload received. Unknown name \"parametersJsonSchema\" at 'tools[0]'"
    ));
}

#[test]
fn response_format_maps_to_mime_type_and_schema() {
    let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}});
    assert_eq!(
        translate(body.clone())["generationConfig"],
        json!({"responseMimeType": "application/json"})
    );
    body["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object", "properties": {"n": {"type": "integer"}}}}});
    let g = translate(body.clone());
    assert_eq!(
        g["generationConfig"]["responseJsonSchema"]["properties"]["n"]["type"],
        "integer"
    );
    body["response_format"] = json!({"type": "text"});
    assert!(translate(body).get("generationConfig").is_none());
}

#[test]
fn search_models_add_the_tool_and_the_prompt() {
    let opts = Context {
        search_prompt: Some("SEARCH!"),
        ..Context::default()
    };
    let body = json!({"model": "gemini-2.5-flash-search", "messages": [
        {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]});
    let t = to_gemini(&request(body.clone()), &opts).expect("translates");
    assert_eq!(t.upstream_model, "gemini-2.5-flash");
    let g = serde_json::to_value(&t.request).expect("json");
    assert_eq!(g["tools"], json!([{"googleSearch": {}}]));
    assert_eq!(
        g["contents"][1],
        json!({"role": "user", "parts": [{"text": "SEARCH!"}]}),
        "HAJIMI's position: len - 2"
    );
    let t = to_gemini(&request(body), &Context::default()).expect("translates");
    assert_eq!(
        t.upstream_model, "gemini-2.5-flash-search",
        "without search mode the name is sent as is"
    );
}

#[test]
fn inserted_turns_never_split_a_call_from_its_result() {
    let g = translate(tool_loop("gemini-2.5-flash"));
    let contents: Vec<Content> = serde_json::from_value(g["contents"].clone()).expect("contents");
    // Inserting before the function-response turn would separate it from its call.
    assert_eq!(safe_insert_index(&contents, 2), 1);
    assert_eq!(safe_insert_index(&contents, 3), 3);
}

#[test]
fn reasoning_effort_reaches_the_thinking_config() {
    let opts = Context {
        enable_thinking: true,
        ..Context::default()
    };
    let g = translate_with(
        json!({"model": "gemini-2.5-flash", "reasoning_effort": "low", "messages": [{"role": "user", "content": "x"}]}),
        &opts,
    );
    assert_eq!(
        g["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": 1024, "includeThoughts": true})
    );
    let g = translate_with(
        json!({"model": "gemini-2.0-flash", "reasoning_effort": "low", "messages": [{"role": "user", "content": "x"}]}),
        &opts,
    );
    assert!(
        g.get("generationConfig").is_none(),
        "non-thinking models get no thinkingConfig (HAJIMI #304)"
    );
    let g = translate_with(
        json!({"model": "gemini-3-flash-preview", "extra_body": {"google": {"thinking_config": {"thinking_level": "low", "include_thoughts": false}}}, "messages": [{"role": "user", "content": "x"}]}),
        &opts,
    );
    assert_eq!(
        g["generationConfig"]["thinkingConfig"],
        json!({"thinkingLevel": "LOW", "includeThoughts": false})
    );
}

#[test]
fn excluded_reasoning_asks_for_no_thoughts_but_keeps_the_thinking_effort() {
    let opts = Context {
        enable_thinking: true,
        ..Context::default()
    };
    for exclude in [
        json!({"include_reasoning": false}),
        json!({"reasoning": {"exclude": true}}),
        json!({"extra_body": {"include_reasoning": false}}),
    ] {
        let mut body = json!({"model": "gemini-2.5-flash", "reasoning_effort": "high", "messages": [{"role": "user", "content": "x"}]});
        for (k, v) in exclude.as_object().into_iter().flatten() {
            body[k] = v.clone();
        }
        let g = translate_with(body, &opts);
        assert_eq!(
            g["generationConfig"]["thinkingConfig"],
            json!({"thinkingBudget": 24576, "includeThoughts": false}),
            "{exclude}"
        );
    }
    let g = translate_with(
        json!({"model": "gemini-3-pro-preview", "include_reasoning": false, "messages": [{"role": "user", "content": "x"}],
               "google": {"thinking_config": {"thinking_level": "high", "include_thoughts": true}}}),
        &opts,
    );
    assert_eq!(
        g["generationConfig"]["thinkingConfig"],
        json!({"thinkingLevel": "HIGH", "includeThoughts": false}),
        "exclusion wins over a request for thoughts"
    );
    for keep in [
        json!({"include_reasoning": true}),
        json!({"reasoning": {"exclude": false}}),
    ] {
        let mut body =
            json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "x"}]});
        for (k, v) in keep.as_object().into_iter().flatten() {
            body[k] = v.clone();
        }
        assert_eq!(
            translate_with(body, &opts)["generationConfig"]["thinkingConfig"],
            json!({"includeThoughts": true}),
            "{keep}"
        );
    }
}

#[test]
fn random_strings_are_inserted_as_hajimi_does_but_never_inside_a_tool_exchange() {
    let opts = Context {
        random_string: Some(5),
        ..Context::default()
    };
    let g = translate_with(
        json!({"model": "m", "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]}),
        &opts,
    );
    let c = g["contents"].as_array().expect("contents");
    assert_eq!(c.len(), 5);
    assert_eq!(c[0]["parts"][0]["text"], "a");
    assert_eq!(c[1]["parts"][0]["text"].as_str().map(str::len), Some(5));
    assert_eq!(c[3]["parts"][0]["text"].as_str().map(str::len), Some(5));
    assert_eq!(c[4]["parts"][0]["text"], "c");
    let g = translate_with(tool_loop("gemini-2.5-flash"), &opts);
    let c = g["contents"].as_array().expect("contents");
    for (i, content) in c.iter().enumerate() {
        if content["parts"][0].get("functionResponse").is_some() {
            assert!(
                c[i - 1]["parts"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|p| p.get("functionCall").is_some())),
                "a result follows its call: {g}"
            );
        }
    }
}
