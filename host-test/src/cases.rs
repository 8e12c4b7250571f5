//! The shared cases with expected verdicts (`../shared/cases/*/`), read for conformance
//! tests: every build of the engine (native, component, Fluent Bit module, JavaScript) must
//! give each record the verdict its case's `EXPECTED.md` states.
//!
//! A case folder holds `feed*` files, log files named after their table
//! (`DeviceNetworkEvents.ndjson`), an optional `settings.toml`, and `EXPECTED.md` with one
//! section per log file (`## DeviceNetworkEvents.ndjson`) and one numbered line per record:
//! `3. excluded: ...`, `1. hit: ...`, `4. none: ...` or `3. no ip:port hit: ...`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

/// The verdict class a case expects for a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    Hit,
    /// A hit that an exclusion suppresses.
    Excluded,
    Miss,
}

/// One log file of a case with the expected verdict of each record.
#[derive(Debug, Clone)]
pub struct CaseLog {
    pub file: String,
    pub records: Vec<String>,
    pub expected: Vec<Expected>,
}

/// One case folder.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub dir: PathBuf,
    /// Feed files: name and bytes.
    pub feeds: Vec<(String, Vec<u8>)>,
    pub settings: String,
    pub logs: Vec<CaseLog>,
}

/// The shared material: `IOCSIEVE_SHARED`, or `../shared` beside the repository.
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("IOCSIEVE_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    }
}

/// Reads every case under `shared_dir()/cases`.
pub fn load_cases() -> Result<Vec<Case>> {
    let root = shared_dir().join("cases");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .with_context(|| format!("cannot read the cases in {}", root.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("EXPECTED.md").is_file())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        bail!("no cases under {}", root.display());
    }
    dirs.iter().map(|d| load_case(d)).collect()
}

/// Reads one case folder.
pub fn load_case(dir: &Path) -> Result<Case> {
    let expected_text = std::fs::read_to_string(dir.join("EXPECTED.md"))?;
    let mut feeds = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in &entries {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with("feed") {
            feeds.push((name.to_string(), std::fs::read(path)?));
        }
    }
    let settings = std::fs::read_to_string(dir.join("settings.toml")).unwrap_or_default();

    let mut logs: Vec<CaseLog> = Vec::new();
    for line in expected_text.lines() {
        if let Some(file) = line.strip_prefix("## ") {
            let file = file.trim().to_string();
            let text = std::fs::read_to_string(dir.join(&file))
                .with_context(|| format!("{}: EXPECTED.md names {file}", dir.display()))?;
            let records = text.lines().map(str::to_string).collect();
            logs.push(CaseLog {
                file,
                records,
                expected: Vec::new(),
            });
            continue;
        }
        let Some(log) = logs.last_mut() else { continue };
        let Some((number, rest)) = line.split_once(". ") else {
            continue;
        };
        let Ok(number) = number.trim().parse::<usize>() else {
            continue;
        };
        if number != log.expected.len() + 1 {
            bail!(
                "{}: {} expects line {} after line {}",
                dir.display(),
                log.file,
                number,
                log.expected.len()
            );
        }
        let verdict = rest.split(':').next().unwrap_or_default().trim();
        log.expected.push(match verdict {
            v if v.starts_with("hit") => Expected::Hit,
            v if v.starts_with("excluded") => Expected::Excluded,
            v if v.starts_with("none") || v.starts_with("no ") => Expected::Miss,
            other => bail!(
                "{}: {} line {number}: unknown verdict {other:?}",
                dir.display(),
                log.file
            ),
        });
    }
    for log in &logs {
        if log.expected.len() != log.records.len() {
            bail!(
                "{}: {} has {} records but EXPECTED.md lists {}",
                dir.display(),
                log.file,
                log.records.len(),
                log.expected.len()
            );
        }
    }
    Ok(Case {
        name: dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string(),
        dir: dir.to_path_buf(),
        feeds,
        settings,
        logs,
    })
}
