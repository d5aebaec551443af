//! Pieces of a Gemini answer every dialect renders the same way: the visible text of a part
//! (code, code results and images as markdown), Google Search grounding as citations with
//! character offsets, and the usage of a broken stream added to its continuation.

use std::borrow::Cow;

use serde_json::Value;

use crate::wire::gemini::{Part, UsageMetadata};

/// What a part shows as answer text: its text unless it is a thought, executable code and
/// its result as fenced blocks, an image as a markdown data URL (chat front-ends render
/// it). Function calls and thoughts show nothing here; each dialect renders those itself.
pub fn part_text(p: &Part) -> Cow<'_, str> {
    if p.function_call.is_some() {
        Cow::Borrowed("")
    } else if let Some(text) = &p.text {
        if p.is_thought() {
            Cow::Borrowed("")
        } else {
            Cow::Borrowed(text)
        }
    } else if let Some(code) = &p.executable_code {
        let lang = code
            .get("language")
            .and_then(Value::as_str)
            .unwrap_or("python")
            .to_ascii_lowercase();
        let src = code.get("code").and_then(Value::as_str).unwrap_or_default();
        Cow::Owned(format!("\n```{lang}\n{src}\n```\n"))
    } else if let Some(result) = &p.code_execution_result {
        let output = result
            .get("output")
            .and_then(Value::as_str)
            .unwrap_or_default();
        Cow::Owned(format!("\n```\n{output}\n```\n"))
    } else if let Some(blob) = &p.inline_data {
        Cow::Owned(format!(
            "\n![image](data:{};base64,{})\n",
            blob.mime_type, blob.data
        ))
    } else {
        Cow::Borrowed("")
    }
}

/// One web source of a grounded answer, with the span of the answer it supports (in
/// characters of `text`, not Google's bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Citation<'a> {
    pub url: &'a str,
    /// The page title (the URL when Google gave none).
    pub title: &'a str,
    pub start_index: u64,
    pub end_index: u64,
}

/// Google Search grounding (`groundingMetadata`) → citations, in chunk order; `text` is the
/// answer the offsets count in.
pub fn citations<'a>(grounding: Option<&'a Value>, text: &str) -> Vec<Citation<'a>> {
    let Some(g) = grounding else {
        return Vec::new();
    };
    let Some(chunks) = g.get("groundingChunks").and_then(Value::as_array) else {
        return Vec::new();
    };
    let supports = g.get("groundingSupports").and_then(Value::as_array);
    let char_at = |byte: u64| -> u64 {
        let b = usize::try_from(byte).unwrap_or(usize::MAX).min(text.len());
        let b = (0..=b)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        text[..b].chars().count() as u64
    };
    let mut out = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let Some(web) = chunk.get("web") else {
            continue;
        };
        let Some(url) = web.get("uri").and_then(Value::as_str) else {
            continue;
        };
        let title = web.get("title").and_then(Value::as_str).unwrap_or(url);
        let span = supports.and_then(|list| {
            list.iter().find(|s| {
                s.get("groundingChunkIndices")
                    .and_then(Value::as_array)
                    .is_some_and(|ix| ix.iter().any(|x| x.as_u64() == Some(i as u64)))
            })
        });
        let start = span
            .and_then(|s| s["segment"].get("startIndex"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let end = span
            .and_then(|s| s["segment"].get("endIndex"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        out.push(Citation {
            url,
            title,
            start_index: char_at(start),
            end_index: char_at(end),
        });
    }
    out
}

/// Adds one stream's usage to another (a broken stream continued by a rescue).
pub fn add_usage(into: &mut UsageMetadata, u: &UsageMetadata) {
    into.prompt_token_count += u.prompt_token_count;
    into.candidates_token_count += u.candidates_token_count;
    into.thoughts_token_count += u.thoughts_token_count;
    into.cached_content_token_count += u.cached_content_token_count;
    into.tool_use_prompt_token_count += u.tool_use_prompt_token_count;
    into.total_token_count += u.total_token_count;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::history::testing::fixture_text;
    use crate::wire::gemini::GenerateContentResponse;
    use serde_json::json;

    fn part(v: Value) -> Part {
        serde_json::from_value(v).expect("part")
    }

    #[test]
    fn parts_show_text_code_and_images_but_not_thoughts_or_calls() {
        assert_eq!(part_text(&part(json!({"text": "hi"}))), "hi");
        assert_eq!(
            part_text(&part(json!({"text": "hmm", "thought": true}))),
            ""
        );
        assert_eq!(
            part_text(&part(json!({"functionCall": {"name": "f", "args": {}}}))),
            ""
        );
        assert_eq!(
            part_text(&part(
                json!({"executableCode": {"language": "PYTHON", "code": "print(1)"}})
            )),
            "\n```python\nprint(1)\n```\n"
        );
        assert_eq!(
            part_text(&part(
                json!({"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "1"}})
            )),
            "\n```\n1\n```\n"
        );
        assert_eq!(
            part_text(&part(
                json!({"inlineData": {"mimeType": "image/png", "data": "AAAA"}})
            )),
            "\n![image](data:image/png;base64,AAAA)\n"
        );
    }

    #[test]
    fn grounding_becomes_citations_counted_in_characters() {
        let resp: GenerateContentResponse = serde_json::from_str(&fixture_text(
            "gemini/generateContent.response.google-search-grounding.json",
        ))
        .expect("fixture parses");
        let candidate = &resp.candidates.as_deref().expect("candidates")[0];
        let text: String = candidate.parts().iter().map(|p| part_text(p)).collect();
        let found = citations(candidate.grounding_metadata.as_ref(), &text);
        assert!(!found.is_empty());
        assert!(found[0].url.starts_with("https://"));
        let chars = text.chars().count() as u64;
        assert!(
            found
                .iter()
                .all(|c| c.start_index <= c.end_index && c.end_index <= chars)
        );
        assert!(citations(None, &text).is_empty());
        assert!(citations(Some(&json!({})), &text).is_empty());
    }

    #[test]
    fn usage_adds_every_count() {
        let mut into = UsageMetadata {
            prompt_token_count: 1,
            total_token_count: 1,
            ..UsageMetadata::default()
        };
        let u = UsageMetadata {
            prompt_token_count: 2,
            candidates_token_count: 3,
            thoughts_token_count: 4,
            cached_content_token_count: 5,
            tool_use_prompt_token_count: 6,
            total_token_count: 15,
        };
        add_usage(&mut into, &u);
        assert_eq!(into.prompt_token_count, 3);
        assert_eq!(into.candidates_token_count, 3);
        assert_eq!(into.thoughts_token_count, 4);
        assert_eq!(into.cached_content_token_count, 5);
        assert_eq!(into.tool_use_prompt_token_count, 6);
        assert_eq!(into.total_token_count, 16);
    }
}
