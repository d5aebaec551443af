//! Inline payloads (base64 images, files, audio) moved out of a client's request before its
//! translation and moved back into the translated parts after it: the translation then copies
//! only short placeholders, so a request's images exist once in memory instead of once in the
//! client's request and again in the Gemini one. Each dialect finds its payloads (its own
//! `stash` function) and hands each slot to [`Stash::swap`]; [`restore`] is shared.

use crate::wire::gemini::{Content, GenerateContentRequest};

/// Payloads shorter than this are left in place (moving them saves nothing).
pub const MIN_MOVED: usize = 1024;
/// Starts every placeholder; a NUL never appears in base64, so no client data looks like one.
pub const MARK: &str = "\0inline#";

/// The payloads taken out of a request: each original string and how many bytes of it come
/// before the payload (`data:image/png;base64,`).
#[derive(Default)]
pub struct Stash {
    payloads: Vec<Option<(String, usize)>>,
}

impl Stash {
    /// Moves the payload of `slot` (what follows its first `prefix` bytes) into the stash
    /// when it is worth it, leaving a placeholder. A client payload that starts like a
    /// placeholder is moved too, so that every placeholder left after translation is ours.
    pub fn swap(&mut self, slot: &mut String, prefix: usize) {
        let Some(payload) = slot.get(prefix..) else {
            return;
        };
        if slot.len() >= MIN_MOVED || payload.starts_with(MARK) {
            let original = std::mem::take(slot);
            let placeholder = format!("{}{MARK}{}", &original[..prefix], self.payloads.len());
            self.payloads.push(Some((original, prefix)));
            *slot = placeholder;
        }
    }

    /// How many payloads were moved.
    pub fn len(&self) -> usize {
        self.payloads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.payloads.is_empty()
    }

    /// The payload a placeholder stands for (each can be taken once).
    fn take(&mut self, placeholder: &str) -> Option<String> {
        let index: usize = placeholder.strip_prefix(MARK)?.parse().ok()?;
        let (mut original, prefix) = self.payloads.get_mut(index)?.take()?;
        original.drain(..prefix);
        Some(original)
    }
}

/// Where a `data:` URL's payload starts (after the comma), if it is one.
pub fn data_url_prefix(url: &str) -> Option<usize> {
    url.starts_with("data:")
        .then(|| url.find(',').map(|comma| comma + 1))
        .flatten()
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
