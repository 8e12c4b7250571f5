//! End to end in a real Fluent Bit: the shipped configs (fluent-bit/conf), changed only in
//! their paths, tail a generated log file through the module, and the records that come
//! out carry the seed cases' verdicts. Runs when a `fluent-bit` binary (4.2 or later, with
//! wasm support) is named by FLUENT_BIT_BIN or found on PATH; prints SKIPPED otherwise.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use iocsieve_host::cases::{Expected, load_case, shared_dir};
use iocsieve_host::fluent_bit::locate_module;

fn fluent_bit() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("FLUENT_BIT_BIN") {
        return Some(PathBuf::from(bin));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("fluent-bit"))
        .find(|p| p.is_file())
}

fn skipped(test: &str) {
    // Straight to the terminal: the test harness captures print! output of passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: no fluent-bit binary (set FLUENT_BIT_BIN or put fluent-bit on PATH)"
    );
}

fn shipped(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fluent-bit/conf")
        .join(file)
}

/// A scratch directory with the shipped iocsieve directory, the seed feed, an empty log
/// file and the config `file` with its paths pointed there.
fn stage(name: &str, config_file: &str, feed: &[u8]) -> (PathBuf, PathBuf) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("fluent-bit-e2e")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    for sub in ["iocsieve", "logs", "db"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    for file in ["iocsieve.toml", "iocsieve-fluent-bit.toml"] {
        std::fs::copy(
            shipped(&format!("iocsieve/{file}")),
            dir.join("iocsieve").join(file),
        )
        .unwrap();
    }
    std::fs::write(dir.join("iocsieve/feed-threatfox.json"), feed).unwrap();
    std::fs::copy(shipped("parsers.conf"), dir.join("parsers.conf")).unwrap();
    std::fs::write(dir.join("logs/app.json"), "").unwrap();
    let module = locate_module().expect("the module is built");
    let config = std::fs::read_to_string(shipped(config_file))
        .unwrap()
        .replace(
            "/var/log/app/*.json",
            &dir.join("logs/*.json").display().to_string(),
        )
        .replace("/var/lib/fluent-bit", &dir.join("db").display().to_string())
        .replace(
            "/usr/local/lib/iocsieve/iocsieve_fluent_bit.wasm",
            &module.display().to_string(),
        )
        .replace(
            "/etc/fluent-bit/iocsieve",
            &dir.join("iocsieve").display().to_string(),
        );
    let config_path = dir.join(config_file);
    std::fs::write(&config_path, config).unwrap();
    (dir, config_path)
}

/// Fluent Bit's stdout and stderr, line by line, on one channel.
fn start(bin: &Path, config: &Path) -> (Child, mpsc::Receiver<(bool, String)>) {
    let mut child = Command::new(bin)
        .arg("-c")
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("fluent-bit starts");
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send((true, line));
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx2.send((false, line));
        }
    });
    (child, rx)
}

/// Waits until `done` holds for the lines so far, or `timeout`; returns (stdout, stderr).
fn collect(
    rx: &mpsc::Receiver<(bool, String)>,
    timeout: Duration,
    mut done: impl FnMut(&[String], &[String]) -> bool,
) -> (Vec<String>, Vec<String>) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + timeout;
    while !done(&out, &err) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((true, line)) => out.push(line),
            Ok((false, line)) => err.push(line),
            Err(_) => break,
        }
    }
    (out, err)
}

fn records_of(out: &[String]) -> Vec<serde_json::Value> {
    out.iter()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("stdout json_lines"))
        .collect()
}

fn run_shipped_config(config_file: &str) {
    let Some(bin) = fluent_bit() else {
        skipped(&format!("fluent_bit_e2e {config_file}"));
        return;
    };
    let case = load_case(&shared_dir().join("cases/seed-mirai")).unwrap();
    let feed = &case.feeds[0].1;
    let (dir, config) = stage(&config_file.replace('.', "-"), config_file, feed);

    // The log: every seed record, then a 64 KiB record that hits and a line that is
    // not JSON (tail passes it on as {"log": ...}).
    let mut lines: Vec<String> = Vec::new();
    let mut expected: Vec<Option<&str>> = Vec::new();
    for log in &case.logs {
        for (record, class) in log.records.iter().zip(&log.expected) {
            lines.push(record.clone());
            expected.push(match class {
                Expected::Hit => Some("hit"),
                Expected::Excluded => Some("suppressed"),
                Expected::Miss => None,
            });
        }
    }
    let head = r#"{"DeviceName":"big","RemoteIP":"194.48.251.24","RemotePort":80,"pad":""#;
    let big = format!("{head}{}\"}}", "x".repeat(65_536 - head.len() - 2));
    lines.push(big.clone());
    expected.push(Some("hit"));
    lines.push("this line is not JSON".to_string());
    expected.push(None);

    let (mut child, rx) = start(&bin, &config);
    let (_, err) = collect(&rx, Duration::from_secs(20), |_, err| {
        err.iter()
            .any(|l| l.contains("inotify_fs_add") || l.contains("[iocsieve] fatal"))
    });
    assert!(
        err.iter()
            .any(|l| l.starts_with("[iocsieve] loaded 2 indicators")),
        "{config_file}: no load line in {err:#?}"
    );
    std::fs::write(dir.join("logs/app.json"), lines.join("\n") + "\n").unwrap();
    let (out, _) = collect(&rx, Duration::from_secs(30), |out, _| {
        out.iter().filter(|l| l.starts_with('{')).count() >= lines.len()
    });
    let _ = child.kill();
    let _ = child.wait();

    let records = records_of(&out);
    assert_eq!(
        records.len(),
        lines.len(),
        "{config_file}: records in != records out"
    );
    for (n, (record, verdict)) in records.iter().zip(&expected).enumerate() {
        assert_eq!(
            record["iocsieve"]["Verdict"].as_str(),
            *verdict,
            "{config_file} record {}: {record}",
            n + 1
        );
    }
    let big_out = &records[lines.len() - 2];
    assert_eq!(
        big_out["pad"].as_str().map(str::len),
        Some(65_536 - head.len() - 2)
    );
    assert_eq!(records[lines.len() - 1]["log"], "this line is not JSON");
    let version = Command::new(&bin).arg("--version").output().unwrap();
    let _ = writeln!(
        std::io::stderr(),
        "fluent_bit_e2e {config_file}: {} records through {}",
        records.len(),
        String::from_utf8_lossy(&version.stdout)
            .lines()
            .next()
            .unwrap_or("?")
    );
}

#[test]
fn the_shipped_classic_config_tags_the_seed_records_in_fluent_bit() {
    run_shipped_config("fluent-bit.conf");
}

#[test]
fn the_shipped_yaml_config_tags_the_seed_records_in_fluent_bit() {
    run_shipped_config("fluent-bit.yaml");
}

#[test]
fn fluent_bit_refuses_to_start_on_a_bad_feed() {
    let Some(bin) = fluent_bit() else {
        skipped("fluent_bit_e2e bad feed");
        return;
    };
    let (_, config) = stage("bad-feed", "fluent-bit.conf", b"{\"1\": [");
    let (mut child, rx) = start(&bin, &config);
    let (_, err) = collect(&rx, Duration::from_secs(20), |_, err| {
        err.iter().any(|l| l.contains("failed to instantiate"))
    });
    let exited = (0..100).find_map(|_| {
        std::thread::sleep(Duration::from_millis(100));
        child.try_wait().unwrap()
    });
    if exited.is_none() {
        let _ = child.kill();
    }
    assert!(
        err.iter()
            .any(|l| l.starts_with("[iocsieve] fatal:") && l.contains("feed-threatfox.json")),
        "{err:#?}"
    );
    let status = exited.expect("fluent-bit exits when the filter cannot start");
    assert!(!status.success());
}
