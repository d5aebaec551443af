//! Thought signatures kept server-side (decisions §5): Gemini 3 rejects a tool loop whose
//! history lacks the signature of each function call, and most OpenAI clients drop unknown
//! fields. We remember each signature under the tool-call id we minted, with the model that
//! produced it, bounded in bytes (signatures can be kilobytes each) and kept 24 hours, and
//! put it back when the call comes back.

use std::sync::Arc;
use std::time::Duration;

use crate::translate::model_name::same_family;

/// Bytes of ids, model names and signatures kept (the least used go first).
const CAPACITY_BYTES: u64 = 64 * 1024 * 1024;
const TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Clone)]
pub struct Signatures {
    cache: moka::sync::Cache<Arc<str>, Arc<(String, String)>>,
}

impl Default for Signatures {
    fn default() -> Self {
        Self {
            cache: moka::sync::Cache::builder()
                .weigher(|id: &Arc<str>, entry: &Arc<(String, String)>| {
                    u32::try_from(id.len() + entry.0.len() + entry.1.len() + 64).unwrap_or(u32::MAX)
                })
                .max_capacity(CAPACITY_BYTES)
                .time_to_live(TTL)
                .build(),
        }
    }
}

impl Signatures {
    pub fn remember(&self, tool_call_id: &str, model: &str, signature: &str) {
        self.cache.insert(
            Arc::from(tool_call_id),
            Arc::new((model.to_owned(), signature.to_owned())),
        );
    }

    /// The signature of a call, if it was produced by the same model family.
    pub fn recall(&self, tool_call_id: &str, model: &str) -> Option<String> {
        let entry = self.cache.get(tool_call_id)?;
        let (produced_by, signature) = entry.as_ref();
        same_family(produced_by, model).then(|| signature.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_come_back_for_the_same_model_only() {
        let s = Signatures::default();
        s.remember("call_1", "gemini-3-pro-preview", "sig");
        assert_eq!(
            s.recall("call_1", "gemini-3-pro-preview").as_deref(),
            Some("sig")
        );
        assert_eq!(s.recall("call_1", "gemini-3-flash-preview"), None);
        assert_eq!(s.recall("call_2", "gemini-3-pro-preview"), None);
    }
}
