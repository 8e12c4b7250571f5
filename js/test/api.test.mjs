// The package's API: loading, errors that name the bad input, verdict shapes, counters.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  DEFAULT_FEED_NAME,
  Detector,
  builtinSettings,
  defaultFeed,
  settingsWithMode,
} from "iocsieve";

const NOW = 1_790_000_000;
const HIT = '{"RemoteIP":"194.48.251.24","RemotePort":80}';
const MISS = '{"RemoteIP":"10.1.2.3","RemotePort":80}';
const FEED = JSON.stringify({
  7: [{ ioc_value: "45.95.147.9:443", ioc_type: "ip:port", threat_type: "botnet_cc",
        malware: "elf.test", malware_printable: "Test", confidence_level: 90 }],
});

test("the built-in feed loads by default and reports its name", () => {
  const d = new Detector();
  assert.equal(d.loadStats.indicators, 2);
  assert.equal(d.loadStats.feeds[0].name, DEFAULT_FEED_NAME);
  assert.ok(d.loadStats.exclusions.includes("admin-netstat"));
  const { verdict, emit } = d.evaluate(HIT, NOW);
  assert.equal(verdict.type, "hit");
  const [m] = verdict.matches;
  assert.equal(m.kind, "ip:port");
  assert.equal(m.indicator, "194.48.251.24:80");
  assert.equal(m.field, "RemoteIP");
  assert.equal(m.role, "DstIpAddr");
  assert.equal(m.feed, DEFAULT_FEED_NAME);
  assert.equal(m.malwarePrintable, "Mirai");
  assert.equal(m.confidence, 75);
  assert.equal(m.addressOnly, false);
  assert.equal(emit.type, "enriched");
  assert.equal(JSON.parse(emit.record).iocsieve.ThreatConfidence !== undefined, true);
  assert.deepEqual(d.evaluate(MISS, NOW), { verdict: { type: "miss" }, emit: { type: "unchanged" } });
  assert.match(defaultFeed(), /194\.48\.251\.24:80/);
  assert.match(builtinSettings(), /\[\[exclusions\]\]/);
});

test("a bad feed throws an Error naming the feed and line; the old set stays", () => {
  const d = new Detector();
  assert.throws(
    () => d.load({ feeds: [{ name: "broken.json", content: '{"1": [\n{"ioc_value": }' }] }),
    (e) => e instanceof Error && e.message.startsWith("broken.json") && e.input === "broken.json",
  );
  assert.equal(d.evaluate(HIT, NOW).verdict.type, "hit");
  assert.throws(
    () => new Detector({ feeds: [{ name: "x.csv", format: "yaml", content: "" }] }),
    { name: "IocsieveLoadError", input: "x.csv", message: /^x\.csv: unknown feed format "yaml"/ },
  );
  assert.throws(() => new Detector({ feeds: [{ name: "n", content: 42 }] }), /^TypeError: n:/);
});

test("bad settings throw an Error naming the settings, the line and the field", () => {
  assert.throws(
    () => new Detector({ settings: 'mode = "tag"\nloudness = 3\n' }),
    (e) => e.input === "settings" && e.line === 2 && /loudness/.test(e.message) &&
      e.message.startsWith("settings, line 2"),
  );
  assert.throws(() => new Detector({ settings: 'mode = "loud"' }), {
    name: "IocsieveLoadError",
    message: /^settings, line 1: .*loud/,
  });
  assert.throws(() => settingsWithMode("mode = [", "hits-only"), (e) =>
    e instanceof Error && e.message.startsWith("settings") && e.input === "settings");
});

test("a reload swaps the indicators and keeps the counters", () => {
  const d = new Detector();
  d.evaluate(HIT, NOW);
  const stats = d.load({ feeds: [{ name: "test-feed.json", content: FEED }] });
  assert.equal(stats.indicators, 1);
  assert.equal(d.evaluate(HIT, NOW).verdict.type, "miss");
  const hit = d.evaluate({ RemoteIP: "45.95.147.9", RemotePort: 443 }, new Date(NOW * 1000));
  assert.equal(hit.verdict.type, "hit");
  assert.equal(hit.verdict.matches[0].feed, "test-feed.json");
  const c = d.counters();
  assert.equal(c.recordsIn, 3);
  assert.equal(c.hits, 2);
  assert.equal(c.hitsByKind["ip:port"], 2);
});

test("exclusions suppress a hit and say which rule and why", () => {
  const settings = `
[[exclusions]]
name = "lab-scanner"
reason = "the lab's scanner connects to everything"
when.all = [{ field = "DeviceName", equals = "lab-scan-01" }]
`;
  const d = new Detector({ settings });
  const record = { RemoteIP: "194.48.251.24", RemotePort: 80, DeviceName: "lab-scan-01" };
  const { verdict, emit } = d.evaluate(record, NOW);
  assert.equal(verdict.type, "suppressed");
  assert.equal(verdict.exclusion, "lab-scanner");
  assert.equal(verdict.reason, "the lab's scanner connects to everything");
  assert.equal(verdict.matches[0].indicator, "194.48.251.24:80");
  assert.equal(emit.type, "enriched");
  assert.equal(d.counters().suppressionsByExclusion["lab-scanner"], 1);
});

test("batches: strings, bytes and arrays agree; unreadable lines pass through", () => {
  const d = new Detector();
  const text = `${HIT}\n[1,2]\n${MISS}\n`;
  const fromText = d.evaluateBatch(text, NOW);
  assert.deepEqual(fromText.map((o) => o.verdict.type), ["hit", "unreadable", "miss"]);
  assert.deepEqual(d.evaluateBatch(new TextEncoder().encode(text), NOW), fromText);
  assert.deepEqual(d.evaluateBatch([HIT, [1, 2], JSON.parse(MISS)], NOW), fromText);
  assert.deepEqual(d.evaluateBatch("", NOW), []);
  const bytes = Uint8Array.of(...new TextEncoder().encode(`${MISS}\n`), 0xff, 0x0a);
  const out = d.filter(bytes, NOW);
  assert.ok(out instanceof Uint8Array);
  assert.deepEqual([...out.slice(-2)], [0xff, 0x0a], "non-UTF-8 bytes pass through as they are");
  const c = d.counters();
  assert.equal(c.recordsIn, 11);
  assert.equal(c.unreadable, 4);
});

test("hits-only mode drops misses in the filter output", () => {
  const d = new Detector({ settings: settingsWithMode("", "hits-only") });
  const out = d.filter(`${MISS}\n${HIT}\n${MISS}`, NOW);
  const lines = out.trim().split("\n");
  assert.equal(lines.length, 1);
  assert.equal(JSON.parse(lines[0]).RemoteIP, "194.48.251.24");
  assert.equal(d.counters().droppedMisses, 2);
  assert.match(d.countersLine(), /^records_in=3 records_out=1 hits=1 /);
});

test("now defaults to the current time and validity windows apply", () => {
  const feed = JSON.stringify({
    1: [{ ioc_value: "198.51.100.7", ioc_type: "ip:port", threat_type: "botnet_cc",
          malware_printable: "Old", first_seen_utc: "2020-01-01 00:00:00" }],
  });
  // A feed entry without a port is skipped, not fatal: the stats say why.
  const d = new Detector({ feeds: [{ name: "old.json", content: feed }] });
  assert.equal(d.loadStats.indicators, 0);
  assert.ok(Object.keys(d.loadStats.feeds[0].skipped).length > 0);
  assert.throws(() => d.evaluate(HIT, "soon"), /^TypeError: now:/);
  assert.equal(new Detector().evaluate(HIT).verdict.type, "hit");
});
