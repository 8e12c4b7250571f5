//! Reading the inputs of `iocsieve scan`: feeds, settings and log records.

use std::io::{BufRead, Read};
use std::path::Path;

use anyhow::{Context as _, Result, bail};

use crate::component::{Feed, FeedFormat};

/// Reads feed files; with none, the built-in default feed.
pub fn read_feeds(paths: &[impl AsRef<Path>], format: FeedFormat) -> Result<Vec<Feed>> {
    if paths.is_empty() {
        return Ok(vec![Feed {
            name: iocsieve_engine::DEFAULT_FEED_NAME.to_string(),
            format: FeedFormat::ThreatfoxJson,
            content: iocsieve_engine::DEFAULT_FEED.to_vec(),
        }]);
    }
    paths
        .iter()
        .map(|p| {
            let p = p.as_ref();
            let content =
                std::fs::read(p).with_context(|| format!("cannot read feed {}", p.display()))?;
            let content = bundle_misp_feed(p, content)?;
            Ok(Feed {
                name: p.display().to_string(),
                format,
                content,
            })
        })
        .collect()
}

/// A MISP feed manifest comes with the event files next to it: they are bundled into one
/// document the engine reads (events that are not there are counted as missing).
/// Anything else is returned as it is.
pub fn bundle_misp_feed(path: &Path, content: Vec<u8>) -> Result<Vec<u8>> {
    let head = &content[..content.len().min(4096)];
    let looks_like_manifest = head.first() == Some(&b'{')
        && path.file_name().is_some_and(|n| n == "manifest.json")
        && !head.windows(7).any(|w| w == b"\"Event\"");
    if !looks_like_manifest {
        return Ok(content);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    iocsieve_engine::feed::misp::bundle_feed(&content, |file| std::fs::read(dir.join(file)).ok())
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Reads a settings file; with none, empty settings (the defaults).
pub fn read_settings(path: Option<&Path>) -> Result<String> {
    match path {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("cannot read settings {}", p.display())),
        None => Ok(String::new()),
    }
}

/// A source of records: newline-delimited JSON, or one JSON array of records as Sentinel
/// exports them (each element becomes one record).
pub enum RecordSource {
    Lines(Box<dyn BufRead>),
    Array(std::vec::IntoIter<Vec<u8>>),
}

impl RecordSource {
    /// Opens `path`, or standard input for `-`.
    pub fn open(path: &Path) -> Result<RecordSource> {
        let reader: Box<dyn BufRead> = if path == Path::new("-") {
            Box::new(std::io::BufReader::with_capacity(1 << 20, std::io::stdin()))
        } else {
            let file = std::fs::File::open(path)
                .with_context(|| format!("cannot read log file {}", path.display()))?;
            Box::new(std::io::BufReader::with_capacity(1 << 20, file))
        };
        Self::from_reader(reader, &path.display().to_string())
    }

    /// Reads records from `reader`; `name` is used in errors.
    pub fn from_reader(mut reader: Box<dyn BufRead>, name: &str) -> Result<RecordSource> {
        // A file whose first non-blank byte is `[` is one JSON array.
        let buf = reader
            .fill_buf()
            .with_context(|| format!("cannot read {name}"))?;
        let starts_with_array = buf.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
        if !starts_with_array {
            return Ok(RecordSource::Lines(reader));
        }
        let mut text = Vec::new();
        reader
            .read_to_end(&mut text)
            .with_context(|| format!("cannot read {name}"))?;
        let values: Vec<Box<serde_json::value::RawValue>> = match serde_json::from_slice(&text) {
            Ok(v) => v,
            Err(e) => bail!(
                "{name}, line {}: not a JSON array of records: {e}",
                e.line()
            ),
        };
        let records: Vec<Vec<u8>> = values.iter().map(|raw| minify(raw.get())).collect();
        Ok(RecordSource::Array(records.into_iter()))
    }

    /// The next record into `buf` (without its line ending); false at the end.
    pub fn next_record(&mut self, buf: &mut Vec<u8>) -> Result<bool> {
        buf.clear();
        match self {
            RecordSource::Lines(reader) => {
                if reader.read_until(b'\n', buf)? == 0 {
                    return Ok(false);
                }
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                }
                Ok(true)
            }
            RecordSource::Array(items) => match items.next() {
                Some(item) => {
                    *buf = item;
                    Ok(true)
                }
                None => Ok(false),
            },
        }
    }
}

/// Drops the whitespace between tokens, so that a pretty-printed record is one line; keys
/// keep their order and values their text.
fn minify(json: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for &b in json.as_bytes() {
        if in_string {
            out.push(b);
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if !b.is_ascii_whitespace() {
            in_string = b == b'"';
            out.push(b);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minify_keeps_order_and_string_contents() {
        let pretty = "{\n  \"b\": \"x y \\\" z\",\n  \"a\": [1, 2]\n}";
        assert_eq!(minify(pretty), br#"{"b":"x y \" z","a":[1,2]}"#);
    }

    #[test]
    fn reads_a_json_array_as_records() {
        let text = b" [ {\"a\": 1},\n {\"b\": 2} ]".to_vec();
        let mut source =
            RecordSource::from_reader(Box::new(std::io::Cursor::new(text)), "t").unwrap();
        let mut buf = Vec::new();
        let mut got = Vec::new();
        while source.next_record(&mut buf).unwrap() {
            got.push(String::from_utf8(buf.clone()).unwrap());
        }
        assert_eq!(got, [r#"{"a":1}"#, r#"{"b":2}"#]);
    }

    #[test]
    fn reads_lines_as_records_keeping_blank_ones() {
        let text = b"{\"a\":1}\n\nnot json\n".to_vec();
        let mut source =
            RecordSource::from_reader(Box::new(std::io::Cursor::new(text)), "t").unwrap();
        let mut buf = Vec::new();
        let mut got = Vec::new();
        while source.next_record(&mut buf).unwrap() {
            got.push(String::from_utf8(buf.clone()).unwrap());
        }
        assert_eq!(got, [r#"{"a":1}"#, "", "not json"]);
    }
}
