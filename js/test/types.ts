// Compiled with `tsc --noEmit` by types.test.mjs: uses the package as its index.d.ts
// describes it, so a wrong or missing declaration fails the test.
import { Detector, DEFAULT_FEED_NAME, defaultFeed, settingsWithMode } from "iocsieve";
import type { Counters, IndicatorMatch, LoadError, LoadStats, Outcome } from "iocsieve";

const detector = new Detector({
  feeds: [{ name: DEFAULT_FEED_NAME, format: "threatfox-json", content: defaultFeed() }],
  settings: settingsWithMode("", "hits-only"),
});
const stats: LoadStats = detector.loadStats;
const outcome: Outcome = detector.evaluate({ RemoteIP: "194.48.251.24", RemotePort: 80 }, new Date());
const v = outcome.verdict;
let matches: IndicatorMatch[] = [];
switch (v.type) {
  case "hit":
    matches = v.matches;
    break;
  case "suppressed":
    matches = v.matches;
    console.log(v.exclusion.toUpperCase(), v.reason.length);
    break;
  case "unreadable":
    console.log(v.error.length);
    break;
  case "miss":
    break;
}
const confidence: number | null = matches[0]?.confidence ?? null;
const sent: string | null = outcome.emit.type === "enriched" ? outcome.emit.record : null;
const batch: Outcome[] = detector.evaluateBatch(["{}", { a: 1 }], 1_790_000_000);
const text: string = detector.filter("{}\n");
const bytes: Uint8Array = detector.filter(new Uint8Array(0));
const counters: Counters = detector.counters();
const perKind: number = counters.hitsByKind["ip:port"] ?? 0;
try {
  detector.load({ settings: "mode = 1" });
} catch (e) {
  const error = e as LoadError;
  console.log(error.input, error.line ?? 0, error.message);
}
console.log(stats.indicators, confidence, sent, batch.length, text, bytes.length, perKind);
detector.free();
