//! Vertex AI as a second upstream: the building blocks the pipeline drives, free of
//! `AppState` and handlers.
//!
//! - [`credentials`]: service accounts (`GOOGLE_CREDENTIALS_JSON`, `STORAGE_DIR/credentials`)
//!   and express keys (`VERTEX_EXPRESS_API_KEY`), validated, reported by position and email.
//! - [`token`]: the OAuth JWT-bearer grant and a per-account access-token cache with
//!   single-flight refresh; token-endpoint refusals classified for the key pool.
//! - [`models`]: HAJIMI's Vertex model names (`[PAY]`, `[EXPRESS] `, the `-search`,
//!   `-nothinking`, `-max`, `-encrypt`, `-encrypt-full`, `-auto` suffixes), what each does to
//!   a Gemini request, the built-in model list and the publisher-models page.
//!
//! Vertex URLs are built in [`crate::upstream::endpoint`] (`vertex_*`), like every URL.

pub mod models;
pub mod pool;
pub mod render;
pub mod send;
pub mod token;

pub use crate::config::credentials::{Account, ExpressKey, Loaded, Origin, Problem, ProblemKind};
pub use pool::VertexCreds;
pub use token::{AccessToken, TokenCache, TokenError, TokenSource};

/// Throwaway RSA keys for the tests, generated once per test process (never committed).
#[cfg(test)]
pub(crate) mod testkey {
    use std::sync::OnceLock;

    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use aws_lc_rs::signature::KeyPair as _;
    use base64::Engine;

    fn pem_of(label: &str, der: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let mut out = format!("-----BEGIN {label}-----\n");
        for line in b64.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(line));
            out.push('\n');
        }
        out.push_str(&format!("-----END {label}-----\n"));
        out
    }

    type Generated = (String, Vec<u8>);

    /// (PKCS#8 PEM, public key DER) of two keys.
    fn keys() -> &'static [Generated; 2] {
        static KEYS: OnceLock<[Generated; 2]> = OnceLock::new();
        KEYS.get_or_init(|| {
            [0, 1].map(|_| {
                let kp = KeyPair::generate(KeySize::Rsa2048).unwrap_or_else(|_| unreachable!());
                let der = kp.as_der().map(|d| d.as_ref().to_vec()).unwrap_or_default();
                let public = kp
                    .public_key()
                    .as_der()
                    .map(|d| d.as_ref().to_vec())
                    .unwrap_or_default();
                (pem_of("PRIVATE KEY", &der), public)
            })
        })
    }

    /// The i-th key's public key (X.509 SubjectPublicKeyInfo DER).
    pub fn public_der(i: usize) -> Vec<u8> {
        keys()[i].1.clone()
    }

    /// The i-th (0 or 1) throwaway key as PKCS#8 PEM, the form Google issues.
    pub fn pem(i: usize) -> String {
        keys()[i].0.clone()
    }

    /// The same key as PKCS#1 (`BEGIN RSA PRIVATE KEY`).
    pub fn pkcs1_pem(i: usize) -> String {
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem(i).as_bytes());
        let der = key.map(|k| k.as_bytes().to_vec()).unwrap_or_default();
        pem_of("RSA PRIVATE KEY", &der)
    }

    /// An EC P-256 key in PKCS#8 (not usable for RS256).
    pub fn ec_pem() -> String {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        let der = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .and_then(|k| k.to_pkcs8v1())
            .map(|d| d.as_ref().to_vec())
            .unwrap_or_default();
        pem_of("PRIVATE KEY", &der)
    }
}

#[cfg(test)]
mod tests {
    use crate::wire::gemini::GenerateContentResponse;

    /// Vertex answers are GenerateContentResponses: recorded ones parse with their usage
    /// (reasoning tokens included), finish reason and the missing `index`.
    #[test]
    fn recorded_vertex_answers_parse_as_gemini_answers() {
        let unary: GenerateContentResponse = serde_json::from_str(include_str!(
            "../../tests/fixtures/vertex/generateContent.response.max-tokens-logprobs-score.json"
        ))
        .unwrap_or_default();
        let usage = unary.usage_metadata.unwrap_or_default();
        assert_eq!(
            (
                usage.prompt_token_count,
                usage.candidates_token_count,
                usage.thoughts_token_count,
                usage.total_token_count
            ),
            (6, 155, 42, 203)
        );
        let candidates = unary.candidates.unwrap_or_default();
        assert_eq!(candidates[0].finish_reason.as_deref(), Some("MAX_TOKENS"));
        assert_eq!(candidates[0].index, None);
        assert_eq!(unary.model_version.as_deref(), Some("gemini-2.5-flash"));

        let events: Vec<GenerateContentResponse> = serde_json::from_str(include_str!(
            "../../tests/fixtures/vertex/streamGenerateContent.chunks.text-max-tokens.json"
        ))
        .unwrap_or_default();
        assert_eq!(events.len(), 4);
        let last = events[3].usage_metadata.unwrap_or_default();
        assert_eq!(
            (last.thoughts_token_count, last.total_token_count),
            (41, 203)
        );
        // Intermediate events carry only `trafficType`: no counts.
        assert_eq!(
            events[1]
                .usage_metadata
                .unwrap_or_default()
                .total_token_count,
            0
        );
    }
}
