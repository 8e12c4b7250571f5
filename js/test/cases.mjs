// The shared cases with expected verdicts (../shared/cases/*/), read as
// host-test/src/cases.rs reads them: feed* files, an optional settings.toml, log files named
// by `## File.ndjson` sections of EXPECTED.md, and one numbered line per record starting
// with hit, excluded, none or "no ...".
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const repoDir = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** The shared material: IOCSIEVE_SHARED, or ../shared beside the repository. */
export function sharedDir() {
  return process.env.IOCSIEVE_SHARED ?? resolve(repoDir, "../shared");
}

function expectedClass(verdict, where) {
  if (verdict.startsWith("hit")) return "hit";
  if (verdict.startsWith("excluded")) return "suppressed";
  if (verdict.startsWith("none") || verdict.startsWith("no ")) return "miss";
  throw new Error(`${where}: unknown verdict ${JSON.stringify(verdict)}`);
}

/** Reads one case folder. */
export function loadCase(dir) {
  const files = readdirSync(dir).sort();
  const feeds = files
    .filter((f) => f.startsWith("feed"))
    .map((f) => ({ name: f, path: join(dir, f), content: readFileSync(join(dir, f)) }));
  const settingsPath = join(dir, "settings.toml");
  const settings = existsSync(settingsPath) ? readFileSync(settingsPath, "utf8") : "";
  const logs = [];
  for (const line of readFileSync(join(dir, "EXPECTED.md"), "utf8").split("\n")) {
    if (line.startsWith("## ")) {
      const file = line.slice(3).trim();
      const text = readFileSync(join(dir, file), "utf8");
      const records = text.split("\n");
      if (records.at(-1) === "") records.pop();
      logs.push({ file, path: join(dir, file), records, expected: [] });
      continue;
    }
    const log = logs.at(-1);
    const m = /^\s*(\d+)\. (.*)$/.exec(line);
    if (!log || !m) continue;
    const number = Number(m[1]);
    if (number !== log.expected.length + 1) {
      throw new Error(`${dir}: ${log.file} expects line ${number} after ${log.expected.length}`);
    }
    const verdict = m[2].split(":")[0].trim();
    log.expected.push(expectedClass(verdict, `${dir}: ${log.file} line ${number}`));
  }
  for (const log of logs) {
    if (log.expected.length !== log.records.length) {
      throw new Error(
        `${dir}: ${log.file} has ${log.records.length} records but EXPECTED.md lists ` +
          `${log.expected.length}`,
      );
    }
  }
  return { name: dir.split("/").at(-1), dir, feeds, settings, settingsPath, logs };
}

/** Every case under sharedDir()/cases. */
export function loadCases() {
  const root = join(sharedDir(), "cases");
  const dirs = readdirSync(root)
    .map((d) => join(root, d))
    .filter((d) => existsSync(join(d, "EXPECTED.md")))
    .sort();
  if (dirs.length === 0) throw new Error(`no cases under ${root}`);
  return dirs.map(loadCase);
}
