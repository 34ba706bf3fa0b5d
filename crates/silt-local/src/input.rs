//! Reading input files as messages, with memory bounded by the message size
//! limit however long a hostile line is.
//!
//! `*.json` files hold one document: an SQS event (each record's body is a
//! message, as the ingest Lambda sees them), or any other single message
//! such as a DynamoDB Streams event. Every other file is JSON lines, one
//! message per line, and a message's reference is `file:line`.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

/// One message read from an input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputMessage {
    /// Where it came from, spelt out only when asked: most messages are
    /// never rejected, and a formatted reference per line showed in
    /// profiles of ingest.
    place: Place,
    /// Its bytes (cut just past the limit if longer).
    pub bytes: Vec<u8>,
    /// Its full length, which may exceed `bytes.len()`.
    pub len: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    /// Line `line` of the file named `file`.
    Line { file: Arc<str>, line: u64 },
    /// Spelt out already (documents and their records).
    Text(String),
}

impl InputMessage {
    /// Where the message came from: `file:line` or `file#Records[i] (message id)`.
    pub fn reference(&self) -> String {
        match &self.place {
            Place::Line { file, line } => format!("{file}:{line}"),
            Place::Text(t) => t.clone(),
        }
    }
}

/// Opens `path` as a stream of messages. Lines longer than `limit` come cut
/// (with their true length), so the caller can reject them without holding them.
pub fn read_messages(path: &Path, limit: usize) -> std::io::Result<MessageReader> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path)?;
    if path.extension().is_some_and(|e| e == "json") {
        let mut bytes = Vec::new();
        // A whole-document file is bounded too: sixteen messages' worth at most.
        file.take((limit as u64).saturating_mul(16))
            .read_to_end(&mut bytes)?;
        let mut messages = Vec::new();
        let sqs = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| {
                let records = v.get("Records")?.as_array()?.clone();
                let all_sqs = !records.is_empty()
                    && records
                        .iter()
                        .all(|r| r.get("eventSource").and_then(|s| s.as_str()) == Some("aws:sqs"));
                all_sqs.then_some(records)
            });
        match sqs {
            Some(records) => {
                for (i, r) in records.iter().enumerate() {
                    let body = r
                        .get("body")
                        .and_then(|b| b.as_str())
                        .unwrap_or_default()
                        .as_bytes()
                        .to_vec();
                    let id = r.get("messageId").and_then(|m| m.as_str()).unwrap_or("");
                    messages.push(InputMessage {
                        place: Place::Text(format!("{name}#Records[{i}] (message {id})")),
                        len: body.len(),
                        bytes: body,
                    });
                }
            }
            None => messages.push(InputMessage {
                place: Place::Text(name.clone()),
                len: bytes.len(),
                bytes,
            }),
        }
        messages.reverse();
        return Ok(MessageReader {
            name: name.into(),
            limit,
            inner: Inner::Document(messages),
            line_no: 0,
        });
    }
    Ok(MessageReader {
        name: name.into(),
        limit,
        inner: Inner::Lines(BufReader::with_capacity(1 << 20, file)),
        line_no: 0,
    })
}

/// Messages of one input file, read lazily.
pub struct MessageReader {
    name: Arc<str>,
    limit: usize,
    inner: Inner,
    line_no: u64,
}

enum Inner {
    Document(Vec<InputMessage>),
    Lines(BufReader<std::fs::File>),
}

impl Iterator for MessageReader {
    type Item = std::io::Result<InputMessage>;

    fn next(&mut self) -> Option<Self::Item> {
        let reader = match &mut self.inner {
            Inner::Document(messages) => return messages.pop().map(Ok),
            Inner::Lines(r) => r,
        };
        loop {
            let mut buf: Vec<u8> = Vec::new();
            let mut len = 0usize;
            let mut eof = false;
            loop {
                let chunk = match reader.fill_buf() {
                    Ok(c) => c,
                    Err(e) => return Some(Err(e)),
                };
                if chunk.is_empty() {
                    eof = true;
                    break;
                }
                let (part, found) = match chunk.iter().position(|c| *c == b'\n') {
                    Some(i) => (&chunk[..i], true),
                    None => (chunk, false),
                };
                let room = (self.limit + 1).saturating_sub(buf.len());
                buf.extend_from_slice(&part[..part.len().min(room)]);
                len += part.len();
                let used = part.len() + usize::from(found);
                reader.consume(used);
                if found {
                    break;
                }
            }
            if eof && len == 0 {
                return None;
            }
            self.line_no += 1;
            if buf.last() == Some(&b'\r') && len == buf.len() {
                buf.pop();
                len -= 1;
            }
            if len > buf.len() || !buf.iter().all(u8::is_ascii_whitespace) {
                return Some(Ok(InputMessage {
                    place: Place::Line {
                        file: self.name.clone(),
                        line: self.line_no,
                    },
                    bytes: buf,
                    len,
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_numbered_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("in.jsonl");
        let long = "x".repeat(100);
        std::fs::write(&p, format!("{{\"a\":1}}\n\n{long}\r\n{{\"b\":2}}")).unwrap();
        let got: Vec<InputMessage> = read_messages(&p, 10).unwrap().map(Result::unwrap).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].bytes, b"{\"a\":1}");
        assert!(got[0].reference().ends_with(":1"));
        assert!(got[1].reference().ends_with(":3"));
        assert_eq!(got[1].len, 101);
        assert!(got[1].bytes.len() <= 11);
        assert!(got[2].reference().ends_with(":4"));
        assert_eq!(got[2].bytes, b"{\"b\":2}");
    }

    #[test]
    fn sqs_event_files_yield_bodies() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("e.json");
        std::fs::write(
            &p,
            r#"{"Records":[{"messageId":"m1","eventSource":"aws:sqs","body":"{\"x\":1}"}]}"#,
        )
        .unwrap();
        let got: Vec<InputMessage> = read_messages(&p, 1000)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].bytes, b"{\"x\":1}");
        assert!(got[0].reference().contains("message m1"));
    }
}
