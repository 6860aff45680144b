//! Splits a byte stream into JSON-RPC messages.
//!
//! OVSDB sends JSON objects back to back with no delimiter or length prefix (RFC 7047 §4).
//! [`FrameDecoder`] scans incoming bytes with a small brace/string/escape state machine that
//! remembers where it stopped, so a message split across many reads is scanned once, and several
//! messages in one read come out one by one. Each complete object is parsed with
//! `serde_json::from_slice` exactly once. Anything that is not a JSON object, and any message
//! larger than the configured limit, is an error: the connection is then unusable.

use serde_json::Value;

/// The default largest message accepted (a full NB dump of 100k+ rows stays well below it).
pub const DEFAULT_MAX_MESSAGE: usize = 256 << 20;
/// The buffer a decoder starts with.
const INITIAL_CAPACITY: usize = 64 << 10;
/// A consumed buffer bigger than this is freed.
const KEEP_CAPACITY: usize = 1 << 20;

/// Why the byte stream cannot be decoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("unexpected byte {byte:#04x} between messages")]
    Garbage { byte: u8 },
    #[error("message larger than {max} bytes")]
    TooLarge { max: usize },
    #[error("malformed JSON message: {0}")]
    Json(#[from] serde_json::Error),
    #[error("stream ended inside a message ({pending} bytes pending)")]
    Truncated { pending: usize },
}

/// Incremental decoder of concatenated JSON objects.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Start of the first undecoded byte in `buf`.
    start: usize,
    /// How far the current message has been scanned.
    scanned: usize,
    depth: usize,
    in_string: bool,
    escaped: bool,
    max: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new(DEFAULT_MAX_MESSAGE)
    }
}

impl FrameDecoder {
    /// A decoder that rejects messages longer than `max_message` bytes.
    pub fn new(max_message: usize) -> FrameDecoder {
        FrameDecoder {
            buf: Vec::with_capacity(INITIAL_CAPACITY),
            start: 0,
            scanned: 0,
            depth: 0,
            in_string: false,
            escaped: false,
            max: max_message,
        }
    }

    /// Appends bytes read from the stream.
    pub fn extend(&mut self, data: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(data);
    }

    /// The buffer to append incoming bytes to (e.g. with `AsyncReadExt::read_buf`); only append.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        self.compact();
        if self.buf.capacity() - self.buf.len() < 16 << 10 {
            self.buf.reserve(64 << 10);
        }
        &mut self.buf
    }

    /// Drops consumed bytes once they are the larger part of the buffer (amortized O(1)), and
    /// gives back the room a big message (an NB dump, a full sync's echo) needed once it has
    /// been consumed, rather than holding it for the life of the connection.
    fn compact(&mut self) {
        if self.buf.capacity() > KEEP_CAPACITY
            && self.buf[self.start..].iter().all(u8::is_ascii_whitespace)
        {
            self.buf = Vec::with_capacity(INITIAL_CAPACITY);
            self.start = 0;
            self.scanned = 0;
        } else if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
    }

    /// Bytes received but not yet returned as a message (other than whitespace).
    pub fn pending(&self) -> usize {
        self.buf[self.start..]
            .iter()
            .filter(|b| !b.is_ascii_whitespace())
            .count()
    }

    /// The next complete message, `Ok(None)` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Value>, FrameError> {
        match self.next_frame()? {
            Some(frame) => Ok(Some(serde_json::from_slice(frame)?)),
            None => Ok(None),
        }
    }

    /// The bytes of the next complete message (one JSON object, not yet parsed).
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, FrameError> {
        let Some(end) = self.scan()? else {
            return Ok(None);
        };
        let start = self.start;
        self.start = end;
        self.scanned = end;
        Ok(Some(&self.buf[start..end]))
    }

    /// Advances the state machine; returns the end offset of a complete object.
    fn scan(&mut self) -> Result<Option<usize>, FrameError> {
        let mut i = self.scanned;
        let buf = &self.buf;
        while i < buf.len() {
            if self.in_string && !self.escaped {
                // Most bytes are inside strings: jump to the next quote or backslash.
                match buf[i..].iter().position(|&b| b == b'"' || b == b'\\') {
                    Some(skip) => i += skip,
                    None => {
                        i = buf.len();
                        break;
                    }
                }
            }
            let b = buf[i];
            if self.depth == 0 {
                // Between messages: skip whitespace, then only an object may start.
                if b.is_ascii_whitespace() {
                    self.start = i + 1;
                } else if b == b'{' {
                    self.depth = 1;
                } else {
                    return Err(FrameError::Garbage { byte: b });
                }
            } else if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
            } else {
                match b {
                    b'"' => self.in_string = true,
                    b'{' | b'[' => self.depth += 1,
                    b'}' | b']' => {
                        self.depth -= 1;
                        if self.depth == 0 {
                            if i + 1 - self.start > self.max {
                                return Err(FrameError::TooLarge { max: self.max });
                            }
                            self.scanned = i + 1;
                            return Ok(Some(i + 1));
                        }
                    }
                    _ => {}
                }
            }
            i += 1;
        }
        self.scanned = i;
        if i - self.start > self.max {
            return Err(FrameError::TooLarge { max: self.max });
        }
        Ok(None)
    }

    /// Called at end of stream: an error if a message was cut off.
    pub fn finish(&self) -> Result<(), FrameError> {
        match self.pending() {
            0 => Ok(()),
            pending => Err(FrameError::Truncated { pending }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode_all(d: &mut FrameDecoder) -> Result<Vec<Value>, FrameError> {
        let mut out = Vec::new();
        while let Some(v) = d.next_message()? {
            out.push(v);
        }
        Ok(out)
    }

    #[test]
    fn several_messages_per_read_and_split_messages() {
        let mut d = FrameDecoder::default();
        d.extend(br#" {"a":"}{\"x"} {"b":[1,{"c":2}]}{"d"#);
        assert_eq!(
            decode_all(&mut d).unwrap(),
            vec![json!({"a":"}{\"x"}), json!({"b":[1,{"c":2}]})]
        );
        d.extend(br#"":3}"#);
        assert_eq!(decode_all(&mut d).unwrap(), vec![json!({"d":3})]);
        d.finish().unwrap();
    }

    #[test]
    fn the_room_of_a_big_message_is_given_back_once_consumed() {
        let mut d = FrameDecoder::default();
        let big = json!({"rows": "x".repeat(4 << 20)}).to_string() + "\n";
        d.extend(big.as_bytes());
        d.extend(br#"{"tail""#);
        assert_eq!(decode_all(&mut d).unwrap().len(), 1);
        // The rest of a message is still pending: the room stays.
        d.extend(b":1}");
        assert!(d.buf.capacity() > KEEP_CAPACITY);
        assert_eq!(decode_all(&mut d).unwrap(), vec![json!({"tail": 1})]);
        d.extend(br#"{"next":2}"#);
        assert!(d.buf.capacity() <= KEEP_CAPACITY);
        assert_eq!(decode_all(&mut d).unwrap(), vec![json!({"next": 2})]);
    }

    #[test]
    fn garbage_oversize_and_truncation_are_errors() {
        let mut d = FrameDecoder::default();
        d.extend(b"hello");
        assert!(matches!(
            d.next_message(),
            Err(FrameError::Garbage { byte: b'h' })
        ));
        let mut d = FrameDecoder::new(16);
        d.extend(br#"{"a":"0123456789abcdef"#);
        assert!(matches!(d.next_message(), Err(FrameError::TooLarge { .. })));
        let mut d = FrameDecoder::default();
        d.extend(br#"{"a":[}"#);
        assert!(d.next_message().unwrap().is_none());
        assert!(d.finish().is_err());
        let mut d = FrameDecoder::default();
        d.extend(br#"{"a":]}"#);
        assert!(matches!(d.next_message(), Err(FrameError::Json(_))));
    }
}
