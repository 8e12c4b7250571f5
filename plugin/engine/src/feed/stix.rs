//! STIX 2.0 and 2.1 bundles: the patterns of `indicator` objects.
//!
//! A pattern is a disjunction of observations (`[..] OR [..]`); inside an observation,
//! comparisons combine with `AND` and `OR` (and parentheses). Each disjunct of the whole
//! that is one of these becomes an indicator:
//!
//! - `ipv4-addr:value = '..'`, `ipv6-addr:value = '..'` (an address or a network; also
//!   `ISSUBSET '<network>'`), `domain-name:value`, `url:value`;
//! - `file:hashes.<algorithm> = '..'` with the algorithm in any spelling (`'SHA-256'`,
//!   `SHA256`, `sha256`, `MD5`, `'SHA-1'`);
//! - `network-traffic:dst_ref.value = '..'`, alone (an address) or `AND`
//!   `network-traffic:dst_port = n` (an ip:port); `dst_ref.type` is allowed alongside.
//!
//! Anything else (other objects and operators, `AND` of unrelated comparisons, `AND` or
//! `FOLLOWEDBY` between observations, qualifiers) is not guessed at: the disjunct is
//! counted as `unsupported STIX pattern` and listed among the examples.

use serde::Deserialize;

use super::{FeedEntry, FeedLoader};
use crate::indicator::{Context, IndicatorInfo};
use crate::timestamp::parse_feed_time;

type ReadResult = Result<(), (Option<u32>, String)>;

#[derive(Deserialize)]
struct Bundle {
    #[serde(default)]
    objects: Vec<serde_json::Value>,
}

pub(super) fn read(text: &str, loader: &mut FeedLoader<'_>) -> ReadResult {
    let bundle: Bundle =
        serde_json::from_str(text).map_err(|e| (Some(e.line() as u32), e.to_string()))?;
    for object in &bundle.objects {
        if object.get("type").and_then(|t| t.as_str()) != Some("indicator") {
            continue;
        }
        read_indicator(object, loader);
    }
    Ok(())
}

fn read_indicator(o: &serde_json::Value, loader: &mut FeedLoader<'_>) {
    let s = |key: &str| o.get(key).and_then(|v| v.as_str());
    let pattern = s("pattern").unwrap_or_default();
    if let Some(kind) = s("pattern_type")
        && kind != "stix"
    {
        loader.skip_entry(&format!("unsupported pattern type: {kind}"), pattern);
        return;
    }
    if o.get("revoked").and_then(|v| v.as_bool()) == Some(true) {
        loader.skip_entry("STIX indicator revoked", pattern);
        return;
    }
    let list = |key: &str| -> Vec<Box<str>> {
        o.get(key)
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
            .map(Box::from)
            .collect()
    };
    let mut tags = list("indicator_types");
    tags.extend(list("labels"));
    let info = IndicatorInfo {
        context: Context {
            threat_type: tags.first().cloned().unwrap_or_default(),
            tags: tags.into(),
            ..Context::default()
        },
        id: s("id").unwrap_or_default().to_string(),
        confidence: o
            .get("confidence")
            .and_then(|v| v.as_u64())
            .and_then(|c| u8::try_from(c).ok())
            .filter(|c| *c <= 100),
        valid_from: s("valid_from").and_then(parse_feed_time),
        valid_until: s("valid_until").and_then(parse_feed_time),
        ..IndicatorInfo::default()
    };
    let disjuncts = match parse_pattern(pattern) {
        Ok(d) => d,
        Err(_) => {
            loader.skip_entry("unreadable STIX pattern", pattern);
            return;
        }
    };
    for conjunction in disjuncts {
        match express(&conjunction) {
            Some((ioc_type, value)) => loader.add(FeedEntry {
                ioc_type: ioc_type.to_string().into(),
                value: value.into(),
                info: info.clone(),
            }),
            None => loader.skip_entry("unsupported STIX pattern", pattern),
        }
    }
}

/// One comparison: `object:path op value`.
#[derive(Debug, Clone, PartialEq)]
struct Comparison {
    object: String,
    path: String,
    op: String,
    value: String,
}

/// A conjunction of comparisons, or something that cannot be one (`None`).
type Conjunction = Option<Vec<Comparison>>;

/// What one conjunction means as an indicator, if it is one we match.
fn express(conjunction: &Conjunction) -> Option<(&'static str, String)> {
    let terms = conjunction.as_ref()?;
    if let [c] = terms.as_slice() {
        return express_one(c);
    }
    // network-traffic: dst_ref.value AND dst_port (dst_ref.type allowed).
    let mut addr = None;
    let mut port = None;
    for c in terms {
        if c.object != "network-traffic" || c.op != "=" {
            return None;
        }
        match c.path.as_str() {
            "dst_ref.value" if addr.is_none() => addr = Some(c.value.as_str()),
            "dst_port" if port.is_none() => port = Some(c.value.as_str()),
            "dst_ref.type" => {}
            _ => return None,
        }
    }
    let addr = addr?;
    match port {
        Some(port) if addr.contains(':') => Some(("ip:port", format!("[{addr}]:{port}"))),
        Some(port) => Some(("ip:port", format!("{addr}:{port}"))),
        None => Some(("ip", addr.to_string())),
    }
}

fn express_one(c: &Comparison) -> Option<(&'static str, String)> {
    let value = c.value.clone();
    match (c.object.as_str(), c.path.as_str(), c.op.as_str()) {
        ("ipv4-addr" | "ipv6-addr", "value", "=" | "ISSUBSET") => Some(("ip", value)),
        ("domain-name", "value", "=") => Some(("domain", value)),
        ("url", "value", "=") => Some(("url", value)),
        ("network-traffic", "dst_ref.value", "=") => Some(("ip", value)),
        ("file" | "artifact", path, "=") => {
            let algorithm = path.strip_prefix("hashes.")?;
            let algorithm: String = algorithm
                .trim_matches('\'')
                .chars()
                .filter(|c| *c != '-' && *c != '_')
                .collect::<String>()
                .to_ascii_lowercase();
            match algorithm.as_str() {
                "md5" => Some(("md5", value)),
                "sha1" => Some(("sha1", value)),
                "sha256" => Some(("sha256", value)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// A token of a pattern.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    LParen,
    RParen,
    Word(String),
    Str(String),
}

fn tokenize(pattern: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '[' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ']' => {
                tokens.push(Token::Close);
                i += 1;
            }
            '(' => {
                tokens.push(Token::LParen);
                i += 1;
            }
            ')' => {
                tokens.push(Token::RParen);
                i += 1;
            }
            '\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("unterminated string".into()),
                        Some('\\') => {
                            s.push(*chars.get(i + 1).ok_or("unterminated escape")?);
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                tokens.push(Token::Str(s));
            }
            _ => {
                // A word: an object path (with quoted parts such as hashes.'SHA-256'), an
                // operator, a keyword or a number.
                let mut s = String::new();
                while let Some(&ch) = chars.get(i) {
                    if ch == '\'' && s.ends_with('.') {
                        // A quoted path component.
                        s.push(ch);
                        i += 1;
                        while let Some(&q) = chars.get(i) {
                            s.push(q);
                            i += 1;
                            if q == '\'' {
                                break;
                            }
                        }
                        continue;
                    }
                    if ch.is_whitespace() || "[]()'".contains(ch) {
                        break;
                    }
                    s.push(ch);
                    i += 1;
                }
                if s.is_empty() {
                    return Err(format!("unexpected {c:?}"));
                }
                tokens.push(Token::Word(s));
            }
        }
    }
    Ok(tokens)
}

/// Parses a pattern into its disjuncts, each a conjunction of comparisons (or `None` where
/// a part has no such form).
fn parse_pattern(pattern: &str) -> Result<Vec<Conjunction>, String> {
    let tokens = tokenize(pattern)?;
    let mut parser = Parser { tokens, at: 0 };
    let result = parser.observations()?;
    if parser.at != parser.tokens.len() {
        return Err("trailing text".into());
    }
    Ok(result)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn keyword(&self) -> Option<String> {
        match self.peek() {
            Some(Token::Word(w)) => Some(w.to_ascii_uppercase()),
            _ => None,
        }
    }

    /// observation (OR observation)*; any other joining of observations, or a qualifier,
    /// makes the whole unsupported.
    fn observations(&mut self) -> Result<Vec<Conjunction>, String> {
        let mut out = self.observation()?;
        let mut unsupported = false;
        while let Some(word) = self.keyword() {
            match word.as_str() {
                "OR" => {
                    self.at += 1;
                    out.extend(self.observation()?);
                }
                "AND" | "FOLLOWEDBY" => {
                    self.at += 1;
                    self.observation()?;
                    unsupported = true;
                }
                // Qualifiers: WITHIN n SECONDS, REPEATS n TIMES, START t STOP t.
                _ => {
                    self.at += 1;
                    while matches!(self.peek(), Some(Token::Word(_) | Token::Str(_))) {
                        if matches!(self.keyword().as_deref(), Some("OR" | "AND" | "FOLLOWEDBY")) {
                            break;
                        }
                        self.at += 1;
                    }
                    unsupported = true;
                }
            }
        }
        Ok(if unsupported { vec![None] } else { out })
    }

    fn observation(&mut self) -> Result<Vec<Conjunction>, String> {
        match self.peek() {
            Some(Token::Open) => {
                self.at += 1;
                let inner = self.or_expr()?;
                if self.peek() != Some(&Token::Close) {
                    return Err("expected ]".into());
                }
                self.at += 1;
                Ok(inner)
            }
            Some(Token::LParen) => {
                self.at += 1;
                let inner = self.observations()?;
                if self.peek() != Some(&Token::RParen) {
                    return Err("expected )".into());
                }
                self.at += 1;
                Ok(inner)
            }
            _ => Err("expected [".into()),
        }
    }

    /// and_expr (OR and_expr)*, as a list of disjuncts.
    fn or_expr(&mut self) -> Result<Vec<Conjunction>, String> {
        let mut out = self.and_expr()?;
        while self.keyword().as_deref() == Some("OR") {
            self.at += 1;
            out.extend(self.and_expr()?);
        }
        Ok(out)
    }

    /// term (AND term)*: the product of the terms' disjuncts.
    fn and_expr(&mut self) -> Result<Vec<Conjunction>, String> {
        let mut out: Vec<Conjunction> = self.term()?;
        while self.keyword().as_deref() == Some("AND") {
            self.at += 1;
            let right = self.term()?;
            let mut product = Vec::new();
            for l in &out {
                for r in &right {
                    product.push(match (l, r) {
                        (Some(l), Some(r)) => Some(l.iter().chain(r).cloned().collect()),
                        _ => None,
                    });
                }
            }
            out = product;
        }
        Ok(out)
    }

    fn term(&mut self) -> Result<Vec<Conjunction>, String> {
        if self.peek() == Some(&Token::LParen) {
            self.at += 1;
            let inner = self.or_expr()?;
            if self.peek() != Some(&Token::RParen) {
                return Err("expected )".into());
            }
            self.at += 1;
            return Ok(inner);
        }
        let Some(Token::Word(path)) = self.peek().cloned() else {
            return Err("expected a comparison".into());
        };
        self.at += 1;
        let mut op = match self.peek() {
            Some(Token::Word(w)) => w.to_ascii_uppercase(),
            _ => return Err("expected an operator".into()),
        };
        self.at += 1;
        if op == "NOT" {
            let Some(Token::Word(w)) = self.peek().cloned() else {
                return Err("expected an operator after NOT".into());
            };
            op = format!("NOT {}", w.to_ascii_uppercase());
            self.at += 1;
        }
        let value = match self.peek().cloned() {
            Some(Token::Str(s)) => s,
            Some(Token::Word(w)) => w,
            Some(Token::LParen) => {
                // A set: ('a', 'b'); not matched, but skipped over.
                while !matches!(self.peek(), Some(Token::RParen) | None) {
                    self.at += 1;
                }
                String::new()
            }
            _ => return Err("expected a value".into()),
        };
        self.at += 1;
        let Some((object, path)) = path.split_once(':') else {
            return Err(format!("{path:?} is not an object path"));
        };
        let comparison = Comparison {
            object: object.to_string(),
            path: path.to_string(),
            op,
            value,
        };
        Ok(vec![Some(vec![comparison])])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expressed(pattern: &str) -> Vec<Option<(&'static str, String)>> {
        parse_pattern(pattern)
            .unwrap()
            .iter()
            .map(express)
            .collect()
    }

    #[test]
    fn reads_equality_or_and_hash_spellings() {
        assert_eq!(
            expressed("[file:hashes.'SHA-256' = 'AB' OR file:hashes.SHA256 = 'CD']"),
            [Some(("sha256", "AB".into())), Some(("sha256", "CD".into()))]
        );
        assert_eq!(
            expressed("[ipv4-addr:value = '1.2.3.4'] OR [domain-name:value = 'a.example']"),
            [
                Some(("ip", "1.2.3.4".into())),
                Some(("domain", "a.example".into()))
            ]
        );
        assert_eq!(
            expressed("[file:hashes.'SHA-1' = 'x' OR file:hashes.MD5 = 'y']"),
            [Some(("sha1", "x".into())), Some(("md5", "y".into()))]
        );
    }

    #[test]
    fn reads_network_traffic_with_dst_ref_and_dst_port() {
        let p = "[network-traffic:dst_ref.type = 'ipv4-addr' AND \
                 network-traffic:dst_ref.value = '198.51.100.7' AND network-traffic:dst_port = 443]";
        assert_eq!(expressed(p), [Some(("ip:port", "198.51.100.7:443".into()))]);
    }

    #[test]
    fn does_not_guess_what_it_cannot_express() {
        assert_eq!(
            expressed("[file:hashes.MD5 = 'a' AND file:name = 'b']"),
            [None]
        );
        assert_eq!(
            expressed("[x509-certificate:issuer = 'a' AND x509-certificate:serial_number = 'b']"),
            [None]
        );
        assert_eq!(
            expressed("[ipv4-addr:value = '1.2.3.4'] AND [url:value = 'x']"),
            [None]
        );
        assert_eq!(expressed("[domain-name:value LIKE '%.example']"), [None]);
        assert_eq!(
            expressed("[ipv4-addr:value = '1.2.3.4'] WITHIN 300 SECONDS"),
            [None]
        );
        assert!(parse_pattern("[ipv4-addr:value = '1.2.3.4'").is_err());
    }
}
