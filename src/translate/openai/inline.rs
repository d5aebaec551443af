//! Inline payloads (data URLs of images and files, audio data) are moved out of a chat
//! request before translation and moved back into the translated parts after it: the
//! translation then copies only short placeholders, so a request's images exist once in
//! memory instead of once in the OpenAI request and again in the Gemini one.

use crate::wire::gemini::{Content, GenerateContentRequest};
use crate::wire::openai::{ChatRequest, ImageUrl, MessageContent};

/// Payloads shorter than this are left in place (moving them saves nothing).
const MIN_MOVED: usize = 1024;
/// Starts every placeholder; a NUL never appears in base64, so no client data looks like one.
const MARK: &str = "\0inline#";

/// The payloads taken out of a request: each original string and how many bytes of it come
/// before the payload (`data:image/png;base64,`).
#[derive(Default)]
pub struct Stash {
    payloads: Vec<Option<(String, usize)>>,
}

impl Stash {
    fn keep(&mut self, original: String, prefix: usize) -> String {
        let placeholder = format!("{}{MARK}{}", &original[..prefix], self.payloads.len());
        self.payloads.push(Some((original, prefix)));
        placeholder
    }

    /// The payload a placeholder stands for (each can be taken once).
    fn take(&mut self, placeholder: &str) -> Option<String> {
        let index: usize = placeholder.strip_prefix(MARK)?.parse().ok()?;
        let (mut original, prefix) = self.payloads.get_mut(index)?.take()?;
        original.drain(..prefix);
        Some(original)
    }
}

/// Replaces every large data URL and audio payload of `chat` by a placeholder.
pub fn stash(chat: &mut ChatRequest) -> Stash {
    let mut stash = Stash::default();
    let mut swap = |slot: &mut String, prefix: usize| {
        // A client payload that starts like a placeholder is moved too, so that every
        // placeholder left after translation is one of ours.
        if slot.len() >= MIN_MOVED || slot[prefix..].starts_with(MARK) {
            let original = std::mem::take(slot);
            *slot = stash.keep(original, prefix);
        }
    };
    let data_prefix = |url: &str| {
        url.starts_with("data:")
            .then(|| url.find(',').map(|comma| comma + 1))
            .flatten()
    };
    for msg in &mut chat.messages {
        let Some(MessageContent::Parts(parts)) = msg.content.as_mut() else {
            continue;
        };
        for part in parts {
            if let Some(ImageUrl::Object { url, .. } | ImageUrl::Bare(url)) =
                part.image_url.as_mut()
                && let Some(prefix) = data_prefix(url)
            {
                swap(url, prefix);
            }
            if let Some(data) = part.file.as_mut().and_then(|f| f.file_data.as_mut())
                && let Some(prefix) = data_prefix(data)
            {
                swap(data, prefix);
            }
            if let Some(audio) = part.input_audio.as_mut() {
                swap(&mut audio.data, 0);
            }
        }
    }
    stash
}

/// Puts the payloads back where the translation left their placeholders.
pub fn restore(request: &mut GenerateContentRequest, mut stash: Stash) {
    if stash.payloads.is_empty() {
        return;
    }
    let contents = request
        .contents
        .iter_mut()
        .chain(request.system_instruction.as_mut());
    for part in contents.flat_map(|c: &mut Content| c.parts.iter_mut()) {
        if let Some(blob) = part.inline_data.as_mut()
            && let Some(payload) = stash.take(&blob.data)
        {
            blob.data = payload;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::openai::{Options, to_gemini};

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
        assert_eq!(stash.payloads.len(), 3, "the large ones only");
        let mut translated = to_gemini(&chat, &Options::default()).expect("translates");
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
        let mut translated = to_gemini(&chat, &Options::default()).expect("translates");
        restore(&mut translated.request, stash);
        let data: Vec<String> = translated.request.contents[0]
            .parts
            .iter()
            .filter_map(|p| p.inline_data.as_ref().map(|b| b.data.clone()))
            .collect();
        assert_eq!(data, vec!["C".repeat(2048), format!("{MARK}0")]);
    }
}
