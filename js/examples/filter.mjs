#!/usr/bin/env node
// A line filter a JavaScript collector can embed: NDJSON log records on standard input, the
// records to send on to standard output (hits enriched, misses unchanged or dropped), the
// counters on standard error. Same verdicts and the same output as `iocsieve scan`.
//
//   node js/examples/filter.mjs [--feed FILE]... [--feed-format auto] [--settings FILE]
//                               [--only-hits] [--now RFC3339|SECONDS] < records.ndjson
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { Detector, settingsWithMode } from "iocsieve";

// Records are handed to the engine in chunks of about this many bytes, cut at a newline.
const CHUNK_BYTES = 256 * 1024;
const NEWLINE = 0x0a;

function fail(message) {
  process.stderr.write(`filter: error: ${message}\n`);
  process.exit(2);
}

function parseNow(text) {
  if (text === undefined) return undefined; // the wrapper reads Date.now() per chunk
  if (/^-?\d+$/.test(text)) return Number(text);
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) fail(`--now ${JSON.stringify(text)} is neither RFC 3339 nor seconds`);
  return ms / 1000;
}

const { values } = parseArgs({
  options: {
    feed: { type: "string", multiple: true, default: [] },
    "feed-format": { type: "string", default: "auto" },
    settings: { type: "string" },
    "only-hits": { type: "boolean", default: false },
    now: { type: "string" },
  },
});

let detector;
try {
  let settings = values.settings === undefined ? "" : readFileSync(values.settings, "utf8");
  if (values["only-hits"]) settings = settingsWithMode(settings, "hits-only");
  const feeds = values.feed.map((path) => ({
    name: path,
    format: values["feed-format"],
    content: readFileSync(path),
  }));
  detector = new Detector({ feeds, settings });
} catch (error) {
  // Settings errors name "settings"; say which file that was.
  const named = values.settings && error.input === "settings"
    ? error.message.replace(/^settings/, values.settings)
    : error.message;
  fail(named);
}
const now = parseNow(values.now);
const stats = detector.loadStats;
process.stderr.write(
  `filter: ${stats.indicators} indicators from ${stats.feeds.map((f) => f.name).join(", ")}; ` +
    `${stats.exclusions.length} exclusions\n`,
);

async function write(bytes) {
  if (bytes.length > 0 && !process.stdout.write(bytes)) await once(process.stdout, "drain");
}

let pending = [];
let pendingBytes = 0;
for await (const chunk of process.stdin) {
  pending.push(chunk);
  pendingBytes += chunk.length;
  if (pendingBytes < CHUNK_BYTES) continue;
  const buffer = Buffer.concat(pending);
  const end = buffer.lastIndexOf(NEWLINE) + 1;
  // Whole lines go to the engine; the partial last line waits for the next chunk.
  await write(detector.filter(buffer.subarray(0, end), now));
  pending = [buffer.subarray(end)];
  pendingBytes = buffer.length - end;
}
if (pendingBytes > 0) await write(detector.filter(Buffer.concat(pending), now));
process.stderr.write(`filter: ${detector.countersLine()}\n`);
