// Records per second through the JavaScript package in Node.js, on NDJSON records and a
// feed such as ../shared/tools/gen_bench.py writes:
//   node js/bench.mjs FEED RECORDS [REPEAT]
// Prints the best of REPEAT runs for each way of calling the engine.
import { readFileSync } from "node:fs";
import { Detector } from "iocsieve";

const [feedPath, recordsPath, repeatArg] = process.argv.slice(2);
if (!feedPath || !recordsPath) {
  console.error("usage: node js/bench.mjs FEED RECORDS [REPEAT]");
  process.exit(2);
}
const repeat = Number(repeatArg ?? 3);
const bytes = readFileSync(recordsPath);
const text = bytes.toString("utf8");
const lines = text.split("\n").filter((l) => l !== "");
const count = lines.length;

let started = performance.now();
const detector = new Detector({ feeds: [{ name: feedPath, content: readFileSync(feedPath) }] });
const loadMs = performance.now() - started;
console.log(
  `load: ${detector.loadStats.indicators} indicators in ${loadMs.toFixed(0)} ms; ` +
    `${count} records, ${(bytes.length / count).toFixed(0)} bytes each on average`,
);

// Cuts `bytes` into chunks of about `size` bytes that end at a newline.
function chunks(size) {
  const out = [];
  for (let start = 0; start < bytes.length; ) {
    let end = bytes.indexOf(0x0a, Math.min(start + size, bytes.length - 1));
    end = end < 0 ? bytes.length : end + 1;
    out.push(bytes.subarray(start, end));
    start = end;
  }
  return out;
}

function best(name, run) {
  let fastest = Infinity;
  let result;
  for (let i = 0; i < repeat; i++) {
    const t = performance.now();
    result = run();
    fastest = Math.min(fastest, performance.now() - t);
  }
  const perSecond = (count / fastest) * 1000;
  console.log(`${name.padEnd(44)} ${Math.round(perSecond).toLocaleString("en")} records/s  (${fastest.toFixed(0)} ms; ${result})`);
}

const now = Date.now() / 1000;
const batches = [];
for (let i = 0; i < lines.length; i += 1000) batches.push(lines.slice(i, i + 1000).join("\n"));
const byteChunks = chunks(256 * 1024);

best("filter(), 256 KiB NDJSON chunks (filter.mjs)", () => {
  let out = 0;
  for (const chunk of byteChunks) out += detector.filter(chunk, now).length;
  return `${out} bytes out`;
});
best("evaluateBatch(), 1000 records per call", () => {
  let hits = 0;
  for (const batch of batches) {
    for (const o of detector.evaluateBatch(batch, now)) if (o.verdict.type === "hit") hits++;
  }
  return `${hits} hits`;
});
best("evaluate(), one record per call", () => {
  let hits = 0;
  for (const line of lines) if (detector.evaluate(line, now).verdict.type === "hit") hits++;
  return `${hits} hits`;
});
