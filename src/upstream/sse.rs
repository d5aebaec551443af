//! The one SSE parser: bytes in any chunking → the `data` payload of each event. Handles
//! LF, CRLF and CR line endings (Google sends `\r\n\r\n`), multi-line data, comments, events
//! far larger than 128 KiB (thought signatures), and refuses events over a hard bound so a
//! broken upstream cannot eat our memory. Incomplete trailing events are dropped at EOF
//! (a cut stream), which the caller detects by the missing finish reason.

use bytes::{Bytes, BytesMut};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("upstream SSE event exceeds {limit} bytes")]
pub struct EventTooLarge {
    pub limit: usize,
}

pub struct SseParser {
    buf: BytesMut,
    /// Bytes of `buf` already known to hold no line ending.
    scanned: usize,
    data: Vec<u8>,
    has_data: bool,
    limit: usize,
}

impl SseParser {
    pub fn new(limit: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            scanned: 0,
            data: Vec::new(),
            has_data: false,
            limit,
        }
    }

    /// Feeds bytes; complete events' data are appended to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<Bytes>) -> Result<(), EventTooLarge> {
        self.buf.extend_from_slice(chunk);
        self.drain_lines(out, false)
    }

    /// End of input: a final line without terminator is processed; an event not closed by a
    /// blank line is dropped, as the SSE specification says.
    pub fn finish(&mut self, out: &mut Vec<Bytes>) -> Result<(), EventTooLarge> {
        self.drain_lines(out, true)?;
        if !self.buf.is_empty() {
            let line = self.buf.split().freeze();
            self.line(&line, out);
        }
        self.data.clear();
        self.has_data = false;
        Ok(())
    }

    fn drain_lines(&mut self, out: &mut Vec<Bytes>, eof: bool) -> Result<(), EventTooLarge> {
        loop {
            let Some(rel) = self.buf[self.scanned..]
                .iter()
                .position(|b| *b == b'\n' || *b == b'\r')
            else {
                self.scanned = self.buf.len();
                if self.buf.len() + self.data.len() > self.limit {
                    return Err(EventTooLarge { limit: self.limit });
                }
                return Ok(());
            };
            let end = self.scanned + rel;
            let terminator_len = if self.buf[end] == b'\r' {
                match self.buf.get(end + 1) {
                    Some(b'\n') => 2,
                    Some(_) => 1,
                    // A lone `\r` at the end of what we have: wait to see whether `\n` follows.
                    None if !eof => {
                        self.scanned = end;
                        return Ok(());
                    }
                    None => 1,
                }
            } else {
                1
            };
            let line = self.buf.split_to(end + terminator_len);
            self.scanned = 0;
            self.line(&line[..end], out);
            if self.data.len() > self.limit {
                return Err(EventTooLarge { limit: self.limit });
            }
        }
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<Bytes>) {
        if line.is_empty() {
            if self.has_data {
                if self.data.last() == Some(&b'\n') {
                    self.data.pop();
                }
                out.push(Bytes::from(std::mem::take(&mut self.data)));
                self.has_data = false;
            }
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match line.iter().position(|b| *b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &[][..]),
        };
        if field == b"data" {
            self.data.extend_from_slice(value);
            self.data.push(b'\n');
            self.has_data = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_all(chunks: &[&[u8]]) -> Vec<String> {
        let mut p = SseParser::new(1 << 20);
        let mut out = Vec::new();
        for c in chunks {
            p.push(c, &mut out).expect("within limit");
        }
        p.finish(&mut out).expect("within limit");
        out.into_iter()
            .map(|b| String::from_utf8(b.to_vec()).expect("utf8"))
            .collect()
    }

    #[test]
    fn crlf_events_are_split() {
        let raw = b"data: {\"a\": 1}\r\n\r\ndata: {\"b\": 2}\r\n\r\n";
        assert_eq!(parse_all(&[raw]), vec!["{\"a\": 1}", "{\"b\": 2}"]);
    }

    #[test]
    fn the_recorded_google_stream_parses() {
        let raw = std::fs::read(format!("{}/tests/fixtures/gemini/streamGenerateContent.sse.function-call-finish-message.crlf.txt", env!("CARGO_MANIFEST_DIR"))).expect("fixture");
        let events = parse_all(&[&raw]);
        assert!(!events.is_empty());
        for e in &events {
            serde_json::from_str::<serde_json::Value>(e).expect("each event is JSON");
        }
    }

    #[test]
    fn lf_cr_comments_and_multiline_data() {
        let raw = b": keep-alive\n\ndata: one\ndata: two\n\nevent: x\rdata: three\r\r";
        assert_eq!(parse_all(&[raw]), vec!["one\ntwo", "three"]);
    }

    #[test]
    fn an_unterminated_event_is_dropped_at_eof() {
        assert_eq!(parse_all(&[b"data: done\r\n\r\ndata: half"]), vec!["done"]);
    }

    #[test]
    fn large_events_pass_and_oversized_ones_fail() {
        let big = "x".repeat(300 * 1024);
        let raw = format!("data: {big}\r\n\r\n");
        assert_eq!(parse_all(&[raw.as_bytes()]), vec![big.clone()]);
        let mut p = SseParser::new(128 * 1024);
        let mut out = Vec::new();
        assert_eq!(
            p.push(raw.as_bytes(), &mut out),
            Err(EventTooLarge { limit: 128 * 1024 })
        );
    }

    proptest! {
        #[test]
        fn any_chunking_gives_the_same_events(cuts in proptest::collection::vec(0usize..200, 0..20)) {
            let raw = b"data: {\"candidates\": [1]}\r\n\r\n: c\r\ndata: second\r\ndata: line\r\n\r\ndata: third\n\n".to_vec();
            let expected = parse_all(&[&raw]);
            let mut points: Vec<usize> = cuts.into_iter().map(|c| c % (raw.len() + 1)).collect();
            points.sort_unstable();
            let mut chunks = Vec::new();
            let mut last = 0;
            for p in points {
                chunks.push(&raw[last..p]);
                last = p;
            }
            chunks.push(&raw[last..]);
            prop_assert_eq!(parse_all(&chunks), expected);
        }
    }
}
