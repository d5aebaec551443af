//! The safety settings the proxy adds to every translated request, whatever the dialect
//! (decisions §5): HAJIMI turns every filter off.

use crate::translate::model_name::gemini_version;
use crate::wire::gemini::SafetySetting;

const SAFETY_CATEGORIES: [&str; 5] = [
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
    "HARM_CATEGORY_CIVIC_INTEGRITY",
];

/// HAJIMI's safety settings: every category `OFF` for Gemini 2.5 and later, `BLOCK_NONE`
/// for older models.
pub fn safety_settings(model: &str) -> Vec<SafetySetting> {
    let threshold = if gemini_version(model).is_some_and(|v| v >= (2, 5)) {
        "OFF"
    } else {
        "BLOCK_NONE"
    };
    SAFETY_CATEGORIES
        .iter()
        .map(|category| SafetySetting {
            category,
            threshold,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_category_is_off_for_new_models_and_block_none_for_old() {
        for (model, threshold) in [
            ("gemini-2.5-pro", "OFF"),
            ("models/gemini-3-pro-preview", "OFF"),
            ("gemini-2.0-flash", "BLOCK_NONE"),
            ("learnlm-2.0", "BLOCK_NONE"),
        ] {
            let settings = safety_settings(model);
            assert_eq!(settings.len(), 5, "{model}");
            assert!(settings.iter().all(|s| s.threshold == threshold), "{model}");
        }
    }
}
