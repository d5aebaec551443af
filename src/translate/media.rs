//! Inline media as clients write it: `data:` URLs (OpenAI image and file parts, Anthropic and
//! Responses URL sources, fetched images) → Gemini inline data.

use crate::wire::gemini::Blob;

/// `data:<mime>;base64,<data>` → inline data.
pub fn parse_data_url(url: &str) -> Option<Blob> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let mime = meta.strip_suffix(";base64")?;
    let mime = if mime.is_empty() {
        "application/octet-stream"
    } else {
        mime
    };
    Some(Blob {
        mime_type: mime.to_owned(),
        data: data.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_data_urls_become_blobs() {
        let blob = parse_data_url("data:image/png;base64,iVBORw0KGgo=").expect("a data URL");
        assert_eq!(blob.mime_type, "image/png");
        assert_eq!(blob.data, "iVBORw0KGgo=");
        let blob = parse_data_url("data:;base64,AAAA").expect("no MIME type");
        assert_eq!(blob.mime_type, "application/octet-stream");
        assert!(
            parse_data_url("data:text/plain,hello").is_none(),
            "not base64"
        );
        assert!(parse_data_url("https://example.com/a.png").is_none());
    }
}
