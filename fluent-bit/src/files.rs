//! Where the module finds its files, and what they say.
//!
//! Fluent Bit gives a wasm module no arguments and no environment, only the directories of
//! the filter's `accessible_paths`. The module uses the first of them that holds
//! `iocsieve.toml`, its *iocsieve directory*:
//!
//! - `iocsieve.toml` (required, may be empty): the engine's settings, the same file as
//!   `iocsieve scan --settings` (mode, exclusions, profiles, output).
//! - `iocsieve-fluent-bit.toml` (optional): this module's own settings, [`ModuleSettings`].
//! - the feeds: every file whose name starts with `feed` (`feed-threatfox.json`,
//!   `feed-extra.csv`), in name order, unless `iocsieve-fluent-bit.toml` lists them. At
//!   least one is required. Hits name the feed file they came from.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Deserialize;

/// The engine's settings file, which also marks the iocsieve directory.
pub const SETTINGS_FILE: &str = "iocsieve.toml";
/// This module's settings file.
pub const MODULE_SETTINGS_FILE: &str = "iocsieve-fluent-bit.toml";
/// Feed files start with this, unless the module settings list them.
pub const FEED_PREFIX: &str = "feed";

/// `iocsieve-fluent-bit.toml`, read once at start-up.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleSettings {
    /// Feed files in the iocsieve directory, by name. Default: every file named `feed*`.
    #[serde(default)]
    pub feeds: Vec<String>,
    /// Check the files' modification times at most this often, from the filter call
    /// (default 60; 0 checks on every record).
    #[serde(default = "one_minute")]
    pub refresh_seconds: u64,
    /// Print the counters to stderr at most this often (default 60; 0: never).
    #[serde(default = "one_minute")]
    pub summary_seconds: u64,
}

fn one_minute() -> u64 {
    60
}

impl Default for ModuleSettings {
    fn default() -> Self {
        ModuleSettings {
            feeds: Vec::new(),
            refresh_seconds: one_minute(),
            summary_seconds: one_minute(),
        }
    }
}

/// What the indicator set was built from: each file with its size and modification time
/// (`None` when it could not be read). A different signature means the files changed.
pub type Signature = Vec<(PathBuf, Option<(u64, SystemTime)>)>;

/// The files of one load.
#[derive(Debug)]
pub struct Inputs {
    pub settings: String,
    /// Feed file name and content.
    pub feeds: Vec<(String, Vec<u8>)>,
}

/// Finds the iocsieve directory among the preopened ones.
pub fn find_directory() -> Result<PathBuf, String> {
    let dirs = preopened_directories();
    dirs.iter()
        .map(PathBuf::from)
        .find(|d| d.join(SETTINGS_FILE).is_file())
        .ok_or_else(|| {
            format!(
                "no {SETTINGS_FILE} in the filter's accessible_paths ({}); put it (it may be \
                 empty) and the feed files in one of them",
                if dirs.is_empty() {
                    "none given".to_string()
                } else {
                    dirs.join(", ")
                }
            )
        })
}

/// Reads `iocsieve-fluent-bit.toml` from `dir`; the defaults when it is absent.
pub fn read_module_settings(dir: &Path) -> Result<ModuleSettings, String> {
    let path = dir.join(MODULE_SETTINGS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ModuleSettings::default()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// The feed files of `dir`: those `settings` lists, or every `feed*` file in name order.
pub fn feed_paths(dir: &Path, settings: &ModuleSettings) -> Result<Vec<PathBuf>, String> {
    if !settings.feeds.is_empty() {
        return Ok(settings.feeds.iter().map(|f| dir.join(f)).collect());
    }
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut feeds: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(FEED_PREFIX))
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    feeds.sort();
    if feeds.is_empty() {
        return Err(format!(
            "no feed file in {} (files named {FEED_PREFIX}*, or `feeds` in {MODULE_SETTINGS_FILE})",
            dir.display()
        ));
    }
    Ok(feeds)
}

/// The current signature of the settings file and the feeds.
pub fn signature(dir: &Path, settings: &ModuleSettings) -> Signature {
    let mut paths = vec![dir.join(SETTINGS_FILE)];
    paths.extend(feed_paths(dir, settings).unwrap_or_default());
    paths
        .into_iter()
        .map(|p| {
            let stamp = std::fs::metadata(&p)
                .ok()
                .and_then(|m| Some((m.len(), m.modified().ok()?)));
            (p, stamp)
        })
        .collect()
}

/// Reads the settings file and the feeds.
pub fn read_inputs(dir: &Path, settings: &ModuleSettings) -> Result<Inputs, String> {
    let settings_path = dir.join(SETTINGS_FILE);
    let settings_text = std::fs::read_to_string(&settings_path)
        .map_err(|e| format!("{}: {e}", settings_path.display()))?;
    let feeds = feed_paths(dir, settings)?
        .into_iter()
        .map(|p| {
            let content = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            let name = p
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            Ok((name, content))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Inputs {
        settings: settings_text,
        feeds,
    })
}

/// The names of the directories the host preopened (Fluent Bit's `accessible_paths`, as
/// written), in order.
#[cfg(target_os = "wasi")]
fn preopened_directories() -> Vec<String> {
    #[repr(C)]
    struct Prestat {
        tag: u8,
        name_len: u32,
    }
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    unsafe extern "C" {
        fn fd_prestat_get(fd: u32, buf: *mut Prestat) -> u16;
        fn fd_prestat_dir_name(fd: u32, path: *mut u8, len: u32) -> u16;
    }
    const PREOPEN_DIR: u8 = 0;

    let mut names = Vec::new();
    // Preopens are numbered from 3 up, without gaps; the first error ends them.
    for fd in 3.. {
        let mut stat = Prestat {
            tag: 0,
            name_len: 0,
        };
        // SAFETY: `stat` is a valid prestat buffer.
        if unsafe { fd_prestat_get(fd, &mut stat) } != 0 {
            break;
        }
        if stat.tag != PREOPEN_DIR {
            continue;
        }
        let mut name = vec![0u8; stat.name_len as usize];
        // SAFETY: `name` holds `name_len` bytes.
        if unsafe { fd_prestat_dir_name(fd, name.as_mut_ptr(), stat.name_len) } != 0 {
            continue;
        }
        // Some runtimes count a trailing NUL in the length.
        while name.last() == Some(&0) {
            name.pop();
        }
        names.push(String::from_utf8_lossy(&name).into_owned());
    }
    names
}

/// Outside WASI (host builds, for linting) the working directory stands for the preopens.
#[cfg(not(target_os = "wasi"))]
fn preopened_directories() -> Vec<String> {
    vec![".".to_string()]
}
