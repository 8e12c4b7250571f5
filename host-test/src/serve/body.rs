//! Request bodies as Vector's `http` sink sends them: newline-delimited JSON (with or
//! without a final newline) or one JSON array of records, plain or compressed as its
//! `Content-Encoding` says.

use std::io::{Cursor, Read};

use crate::input::RecordSource;

/// Why a body cannot become records. Each maps to a status that tells the sender not to
/// retry the same bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Larger than the limit, before or after decompression (413).
    TooLarge(usize),
    /// A `Content-Encoding` this sidecar does not decode (415).
    UnsupportedEncoding(String),
    /// Not readable as the encoding or the format it claims (400).
    Malformed(String),
}

impl BodyError {
    /// The HTTP status for the sender.
    pub fn status(&self) -> u16 {
        match self {
            BodyError::TooLarge(_) => 413,
            BodyError::UnsupportedEncoding(_) => 415,
            BodyError::Malformed(_) => 400,
        }
    }
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::TooLarge(limit) => write!(f, "the body is larger than {limit} bytes"),
            BodyError::UnsupportedEncoding(e) => write!(
                f,
                "Content-Encoding {e:?} is not supported; use gzip, deflate (zlib) or none"
            ),
            BodyError::Malformed(m) => f.write_str(m),
        }
    }
}

/// Reads at most `limit` bytes from `raw`, decoded as `content_encoding` says.
pub fn read_body(
    raw: &mut dyn Read,
    content_encoding: Option<&str>,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    let encoding = content_encoding
        .map(|e| e.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let take = limit as u64 + 1;
    let mut body = Vec::new();
    let result = match encoding.as_str() {
        "" | "identity" => raw.take(take).read_to_end(&mut body),
        "gzip" | "x-gzip" => flate2::read::MultiGzDecoder::new(raw)
            .take(take)
            .read_to_end(&mut body),
        // HTTP's `deflate` is zlib-wrapped, which is what Vector's `zlib` compression sends.
        "deflate" => flate2::read::ZlibDecoder::new(raw)
            .take(take)
            .read_to_end(&mut body),
        other => return Err(BodyError::UnsupportedEncoding(other.to_string())),
    };
    if let Err(e) = result {
        return Err(BodyError::Malformed(format!(
            "cannot read the body as {}: {e}",
            if encoding.is_empty() {
                "sent"
            } else {
                &encoding
            }
        )));
    }
    if body.len() > limit {
        return Err(BodyError::TooLarge(limit));
    }
    Ok(body)
}

/// The records of one request, ready for the component's batch call.
#[derive(Default)]
pub struct Batch {
    /// The records as the component reads them: one per line.
    pub text: String,
    /// The records as received, to pass on unchanged.
    originals: Vec<u8>,
    ranges: Vec<(usize, usize)>,
    /// Lines that were not UTF-8 (sent to the component as empty lines).
    pub not_utf8: u64,
}

impl Batch {
    /// Splits `body` into records: one JSON array, or one record per non-blank line.
    pub fn parse(body: Vec<u8>) -> Result<Batch, BodyError> {
        let mut source = RecordSource::from_reader(Box::new(Cursor::new(body)), "the body")
            .map_err(|e| BodyError::Malformed(format!("{e:#}")))?;
        let mut batch = Batch::default();
        let mut record = Vec::new();
        loop {
            match source.next_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(BodyError::Malformed(format!("{e:#}"))),
            }
            if record.last() == Some(&b'\r') {
                record.pop();
            }
            // Blank lines frame nothing: they are not records.
            if record.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            batch.push(&record);
        }
        Ok(batch)
    }

    /// Splits newline-delimited records, whatever their first byte (a socket carries one
    /// record per line, never an array).
    pub fn from_lines(lines: &[u8]) -> Batch {
        let mut batch = Batch::default();
        for line in lines.split(|b| *b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if !line.iter().all(u8::is_ascii_whitespace) {
                batch.push(line);
            }
        }
        batch
    }

    fn push(&mut self, record: &[u8]) {
        let start = self.originals.len();
        self.originals.extend_from_slice(record);
        self.ranges.push((start, self.originals.len()));
        match std::str::from_utf8(record) {
            Ok(text) => self.text.push_str(text),
            // An empty line stands in for it: the component calls it unreadable and passes
            // it on unchanged, and the original bytes are what is sent on.
            Err(_) => self.not_utf8 += 1,
        }
        self.text.push('\n');
    }

    /// Records in the batch.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Record `index` as received.
    pub fn original(&self, index: usize) -> &[u8] {
        let (start, end) = self.ranges[index];
        &self.originals[start..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn records(batch: &Batch) -> Vec<String> {
        (0..batch.len())
            .map(|i| String::from_utf8_lossy(batch.original(i)).into_owned())
            .collect()
    }

    #[test]
    fn ndjson_with_or_without_a_final_newline_and_blank_lines() {
        for body in ["{\"a\":1}\n{\"b\":2}", "{\"a\":1}\r\n\n{\"b\":2}\n"] {
            let batch = Batch::parse(body.as_bytes().to_vec()).unwrap();
            assert_eq!(records(&batch), [r#"{"a":1}"#, r#"{"b":2}"#], "{body:?}");
            assert_eq!(batch.text, "{\"a\":1}\n{\"b\":2}\n");
        }
    }

    #[test]
    fn lines_are_records_even_when_they_start_with_a_bracket() {
        let batch = Batch::from_lines(b"[1,2]\r\n\n{\"a\":1}");
        assert_eq!(records(&batch), ["[1,2]", r#"{"a":1}"#]);
    }

    #[test]
    fn a_json_array_is_one_record_per_element() {
        let batch = Batch::parse(b"[{\"a\": 1},\n{\"b\":[2, 3]}]".to_vec()).unwrap();
        assert_eq!(records(&batch), [r#"{"a":1}"#, r#"{"b":[2,3]}"#]);
    }

    #[test]
    fn a_broken_array_is_malformed() {
        let error = Batch::parse(b"[{\"a\": 1},".to_vec()).err().unwrap();
        assert_eq!(error.status(), 400, "{error}");
    }

    #[test]
    fn a_line_that_is_not_utf8_is_kept_and_counted() {
        let batch = Batch::parse(b"{\"a\":\"\xff\"}\n{\"b\":2}".to_vec()).unwrap();
        assert_eq!(batch.len(), 2);
        assert_eq!(batch.not_utf8, 1);
        assert_eq!(batch.original(0), b"{\"a\":\"\xff\"}");
        assert_eq!(batch.text, "\n{\"b\":2}\n");
    }

    #[test]
    fn gzip_and_zlib_bodies_are_decoded() {
        let plain = b"{\"a\":1}\n{\"b\":2}".to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        let mut zl = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        zl.write_all(&plain).unwrap();
        let zl = zl.finish().unwrap();
        assert_eq!(read_body(&mut &gz[..], Some("gzip"), 100).unwrap(), plain);
        assert_eq!(
            read_body(&mut &zl[..], Some("Deflate"), 100).unwrap(),
            plain
        );
        assert_eq!(read_body(&mut &plain[..], None, 100).unwrap(), plain);
    }

    #[test]
    fn limits_and_unknown_encodings_are_refused() {
        let plain = [b'x'; 101];
        assert_eq!(
            read_body(&mut &plain[..], None, 100),
            Err(BodyError::TooLarge(100))
        );
        let zero = vec![0u8; 1 << 20];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&zero).unwrap();
        let gz = gz.finish().unwrap();
        assert!(gz.len() < 100_000);
        assert_eq!(
            read_body(&mut &gz[..], Some("gzip"), 100_000),
            Err(BodyError::TooLarge(100_000))
        );
        assert_eq!(
            read_body(&mut &plain[..], Some("zstd"), 1000)
                .unwrap_err()
                .status(),
            415
        );
        assert_eq!(
            read_body(&mut &plain[..], Some("gzip"), 1000)
                .unwrap_err()
                .status(),
            400
        );
    }
}
