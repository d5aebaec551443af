//! Inline payloads (data URLs of images and files, audio data) are moved out of a chat
//! request before translation and moved back into the translated parts after it: the
//! translation then copies only short placeholders, so a request's images exist once in
//! memory instead of once in the OpenAI request and again in the Gemini one.

use crate::translate::inline::{Stash, data_url_prefix};
use crate::wire::openai::{ChatRequest, ImageUrl, MessageContent};

/// Replaces every large data URL and audio payload of `chat` by a placeholder.
pub fn stash(chat: &mut ChatRequest) -> Stash {
    let mut stash = Stash::default();
    for msg in &mut chat.messages {
        let Some(MessageContent::Parts(parts)) = msg.content.as_mut() else {
            continue;
        };
        for part in parts {
            if let Some(ImageUrl::Object { url, .. } | ImageUrl::Bare(url)) =
                part.image_url.as_mut()
                && let Some(prefix) = data_url_prefix(url)
            {
                stash.swap(url, prefix);
            }
            if let Some(data) = part.file.as_mut().and_then(|f| f.file_data.as_mut())
                && let Some(prefix) = data_url_prefix(data)
            {
                stash.swap(data, prefix);
            }
            if let Some(audio) = part.input_audio.as_mut() {
                stash.swap(&mut audio.data, 0);
            }
        }
    }
    stash
}

pub use crate::translate::inline::restore;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::dialect::Context;
    use crate::translate::inline::MARK;
    use crate::translate::openai::to_gemini;

    #[test]
    fn payloads_travel_through_the_translation_without_being_copied() {
        let image = "A".repeat(4096);
        let audio = "B".repeat(2048);
        let small = "iVBORw0KGgo=";
        let body = serde_json::json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{image}")}},
            {"type": "image_url", "image_url": format!("data:image/jpeg;base64,{small}")},
            {"type": "input_audio", "input_audio": {"data": audio, "format": "mp3"}},
            {"type": "file", "file": {"file_data": format!("data:application/pdf;base64,{image}")}}]}]});
        let mut chat: ChatRequest = serde_json::from_value(body).expect("request");
        let stash = stash(&mut chat);
        assert_eq!(stash.len(), 3, "the large ones only");
        let mut translated = to_gemini(&chat, &Context::default()).expect("translates");
        drop(chat);
        restore(&mut translated.request, stash);
        let blobs: Vec<(String, usize, bool)> = translated.request.contents[0]
            .parts
            .iter()
            .filter_map(|p| p.inline_data.as_ref())
            .map(|b| (b.mime_type.clone(), b.data.len(), b.data.contains(MARK)))
            .collect();
        assert_eq!(
            blobs,
            vec![
                ("image/png".to_owned(), 4096, false),
                ("image/jpeg".to_owned(), small.len(), false),
                ("audio/mp3".to_owned(), 2048, false),
                ("application/pdf".to_owned(), 4096, false),
            ]
        );
    }

    #[test]
    fn a_client_payload_that_looks_like_a_placeholder_stays_the_clients() {
        let fake = format!("data:image/png;base64,{MARK}0");
        let big = format!("data:image/png;base64,{}", "C".repeat(2048));
        let body = serde_json::json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": big}},
            {"type": "image_url", "image_url": {"url": fake}}]}]});
        let mut chat: ChatRequest = serde_json::from_value(body).expect("request");
        let stash = stash(&mut chat);
        let mut translated = to_gemini(&chat, &Context::default()).expect("translates");
        restore(&mut translated.request, stash);
        let data: Vec<String> = translated.request.contents[0]
            .parts
            .iter()
            .filter_map(|p| p.inline_data.as_ref().map(|b| b.data.clone()))
            .collect();
        assert_eq!(data, vec!["C".repeat(2048), format!("{MARK}0")]);
    }
}
