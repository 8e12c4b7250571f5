// The shared seed cases through the JavaScript package, and the example filter against
// `iocsieve scan` (the component under wasmtime) on the same files.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { Detector } from "iocsieve";
import { loadCases, repoDir } from "./cases.mjs";

// The seed indicators carry no end of validity; any fixed time will do.
const NOW = 1_790_000_000;
const cases = loadCases();
const iocsieve = join(repoDir, "target/release/iocsieve");
const filter = join(repoDir, "js/examples/filter.mjs");

for (const c of cases) {
  test(`case ${c.name}: every record gets its expected verdict`, () => {
    const detector = new Detector({
      feeds: c.feeds.map((f) => ({ name: f.name, content: f.content })),
      settings: c.settings,
    });
    assert.ok(detector.loadStats.indicators > 0);
    let expectedHits = 0;
    let expectedSuppressed = 0;
    for (const log of c.logs) {
      const outcomes = detector.evaluateBatch(log.records.join("\n"), NOW);
      assert.equal(outcomes.length, log.records.length, log.file);
      log.expected.forEach((expected, i) => {
        const { verdict } = outcomes[i];
        assert.equal(verdict.type, expected, `${log.file} line ${i + 1}: ${log.records[i]}`);
        if (expected === "suppressed") {
          assert.ok(verdict.exclusion.length > 0 && verdict.reason.length > 0);
        }
        // One record at a time gives the same verdict as the batch.
        assert.deepEqual(detector.evaluate(log.records[i], NOW).verdict, verdict);
      });
      expectedHits += log.expected.filter((e) => e === "hit").length;
      expectedSuppressed += log.expected.filter((e) => e === "suppressed").length;
    }
    const counters = detector.counters();
    assert.equal(counters.hits, 2 * expectedHits);
    assert.equal(counters.suppressed, 2 * expectedSuppressed);
  });

  for (const log of c.logs) {
    test(`case ${c.name}: filter.mjs writes what iocsieve scan writes for ${log.file}`, () => {
      assert.ok(existsSync(iocsieve), `${iocsieve} is missing: run ./dev build`);
      const args = [`--now=${NOW}`, ...c.feeds.map((f) => `--feed=${f.path}`)];
      if (c.settings) args.push(`--settings=${c.settingsPath}`);
      for (const extra of [[], ["--only-hits"]]) {
        const scan = spawnSync(iocsieve, ["scan", ...args, ...extra, log.path]);
        assert.equal(scan.status, 0, scan.stderr.toString());
        const js = spawnSync(process.execPath, [filter, ...args, ...extra], {
          input: readFileSync(log.path),
        });
        assert.equal(js.status, 0, js.stderr.toString());
        assert.ok(scan.stdout.length > 0);
        assert.equal(js.stdout.toString(), scan.stdout.toString(), `${log.file} ${extra}`);
        const summary = (out) => out.toString().trim().split("\n").at(-1).replace(/^\w+: /, "");
        assert.equal(summary(js.stderr), summary(scan.stderr));
      }
    });
  }
}

test("filter.mjs writes what iocsieve scan writes for the repository's samples", () => {
  const samples = ["CommonSecurityLog", "DeviceFileEvents", "DeviceNetworkEvents"].map((t) =>
    join(repoDir, `samples/${t}.ndjson`),
  );
  const scan = spawnSync(iocsieve, ["scan", `--now=${NOW}`, ...samples]);
  assert.equal(scan.status, 0, scan.stderr.toString());
  const js = spawnSync(process.execPath, [filter, `--now=${NOW}`], {
    input: Buffer.concat(samples.map((s) => readFileSync(s))),
  });
  assert.equal(js.status, 0, js.stderr.toString());
  assert.equal(js.stdout.toString(), scan.stdout.toString());
});
