//! `iocsieve rule`: the hunting rule an analyst publishes for a feed.
//!
//! The component contract (wit/) has no rule generation, so this runs the native engine
//! (`iocsieve_engine::rule`) directly. It builds the detector from the same feeds and
//! settings the edge loads, so the queries use the same indicators, profiles and
//! exclusions.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use iocsieve_engine::rule::{RuleOptions, Selection, write_rule};
use iocsieve_engine::{DEFAULT_FEED, DEFAULT_FEED_NAME, FeedFormat, FeedInput};

use crate::input::read_settings;

/// What `iocsieve rule` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleFormat {
    /// The whole document.
    Markdown,
    /// The queries alone.
    Kql,
}

/// The options of `iocsieve rule`.
#[derive(Debug, Clone)]
pub struct RuleCommand {
    /// Feed files; none for the built-in Mirai feed.
    pub feeds: Vec<PathBuf>,
    pub feed_format: FeedFormat,
    pub settings: Option<PathBuf>,
    pub selection: Selection,
    pub format: RuleFormat,
    pub max_list: usize,
}

/// Writes the rule for `command` to `out`.
pub fn rule(command: &RuleCommand, out: &mut impl Write) -> Result<()> {
    if command.max_list == 0 {
        bail!("--max-list must be at least 1");
    }
    let contents: Vec<(String, Vec<u8>)> = if command.feeds.is_empty() {
        vec![(DEFAULT_FEED_NAME.to_string(), DEFAULT_FEED.to_vec())]
    } else {
        command
            .feeds
            .iter()
            .map(|p| read_feed(p))
            .collect::<Result<_>>()?
    };
    let format = if command.feeds.is_empty() {
        FeedFormat::Auto
    } else {
        command.feed_format
    };
    let inputs: Vec<FeedInput<'_>> = contents
        .iter()
        .map(|(name, content)| FeedInput {
            name,
            format,
            content,
        })
        .collect();
    let settings = read_settings(command.settings.as_deref())?;
    let options = RuleOptions {
        selection: command.selection.clone(),
        max_list: command.max_list,
    };
    let rule = write_rule(&inputs, &settings, &options).map_err(|e| {
        let input = match (&command.settings, e.input.as_str()) {
            (Some(path), "settings") => path.display().to_string(),
            _ => e.input.clone(),
        };
        match e.line {
            Some(line) => anyhow::anyhow!("{input}, line {line}: {}", e.message),
            None => anyhow::anyhow!("{input}: {}", e.message),
        }
    })?;
    let text = match command.format {
        RuleFormat::Markdown => rule.markdown(),
        RuleFormat::Kql => rule.kql(),
    };
    out.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    Ok(())
}

fn read_feed(path: &Path) -> Result<(String, Vec<u8>)> {
    let content =
        std::fs::read(path).with_context(|| format!("cannot read feed {}", path.display()))?;
    Ok((path.display().to_string(), content))
}
