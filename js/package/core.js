// The package's API over the wasm-bindgen class: both entry points (index.js for browsers,
// node.js for Node.js) initialise the WebAssembly module, then re-export this file.
import {
  RawDetector,
  builtinSettings as rawBuiltinSettings,
  defaultFeed as rawDefaultFeed,
  settingsWithMode as rawSettingsWithMode,
} from "./iocsieve_js.js";

const encoder = new TextEncoder();

/** The name hits from the built-in Mirai feed report as their feed. */
export const DEFAULT_FEED_NAME = "builtin:threatfox-mirai";

/** The built-in feed (ThreatFox JSON export of the Mirai hunting rule's indicators). */
export function defaultFeed() {
  return rawDefaultFeed();
}

/** The built-in profiles and exclusions, as a settings file would write them (TOML). */
export function builtinSettings() {
  return rawBuiltinSettings();
}

/** `settings` with `mode` ("tag" or "hits-only") set, as `iocsieve scan --only-hits` does. */
export function settingsWithMode(settings, mode) {
  return rawSettingsWithMode(settings, mode);
}

// The engine counts whole seconds since 1970; JavaScript clocks count milliseconds.
function toSeconds(now) {
  if (now === undefined || now === null) return Date.now() / 1000;
  if (now instanceof Date) return now.getTime() / 1000;
  if (typeof now === "number" && Number.isFinite(now)) return now;
  throw new TypeError(`now: expected seconds since 1970 or a Date, got ${String(now)}`);
}

function toBytes(value, what) {
  if (typeof value === "string") return encoder.encode(value);
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  throw new TypeError(`${what}: expected a string, Uint8Array or ArrayBuffer`);
}

function recordText(record, what) {
  if (typeof record === "string") return record;
  if (record instanceof Uint8Array) return new TextDecoder().decode(record);
  if (record !== null && typeof record === "object") return JSON.stringify(record);
  throw new TypeError(`${what}: expected a JSON string or an object`);
}

// A batch as NDJSON bytes: a string, bytes, or an array of strings or objects.
function batchBytes(records) {
  if (Array.isArray(records)) {
    const text = records.map((r, i) => recordText(r, `records[${i}]`).replace(/\n/g, " "));
    return encoder.encode(text.join("\n"));
  }
  return toBytes(records, "records");
}

/**
 * A detector: an indicator set with its settings, evaluating log records. Construct it
 * with the feeds and settings; it throws an `Error` naming the bad input (and with
 * `input` and `line` properties) when they do not load.
 */
export class Detector {
  #raw;
  #stats;

  constructor(options = {}) {
    this.#raw = new RawDetector();
    this.load(options);
  }

  /**
   * Loads new feeds and settings, keeping the counters. On error the detector keeps the
   * indicator set it had, and the thrown `Error` names the bad input.
   */
  load({ feeds, settings = "" } = {}) {
    if (typeof settings !== "string") {
      throw new TypeError("settings: expected TOML or JSON text");
    }
    const list = feeds ?? [];
    if (!Array.isArray(list)) throw new TypeError("feeds: expected an array of feeds");
    // Check every feed before staging any, so that a bad one leaves nothing staged.
    const staged = list.map((feed, i) => {
      const name = String(feed?.name ?? `feeds[${i}]`);
      return [name, feed?.format ?? "auto", toBytes(feed?.content, name)];
    });
    for (const [name, format, content] of staged) this.#raw.stageFeed(name, format, content);
    this.#stats = JSON.parse(this.#raw.load(settings));
    return this.#stats;
  }

  /** What the last successful load built. */
  get loadStats() {
    return this.#stats;
  }

  /**
   * Evaluates one record: JSON text, or an object (serialised with JSON.stringify).
   * `now` is seconds since 1970 or a Date; default the current time.
   */
  evaluate(record, now) {
    return JSON.parse(this.#raw.evaluate(recordText(record, "record"), toSeconds(now)));
  }

  /**
   * Evaluates many records with one call: NDJSON text or bytes (one record per line), or
   * an array of JSON strings or objects. Returns one outcome per record, in order.
   */
  evaluateBatch(records, now) {
    return JSON.parse(this.#raw.evaluateBatch(batchBytes(records), toSeconds(now)));
  }

  /**
   * Evaluates NDJSON records and returns what to send on, as `iocsieve scan` writes it:
   * each record unchanged or enriched, one per line; dropped records left out. Returns a
   * string for string input, bytes for bytes.
   */
  filter(records, now) {
    const out = this.#raw.filter(batchBytes(records), toSeconds(now));
    return typeof records === "string" || Array.isArray(records)
      ? new TextDecoder().decode(out)
      : out;
  }

  /** The running totals since the detector was created. */
  counters() {
    return JSON.parse(this.#raw.counters());
  }

  /** The counters as the one summary line `iocsieve scan` prints. */
  countersLine() {
    return this.#raw.countersLine();
  }

  /** Frees the WebAssembly memory now rather than at garbage collection. */
  free() {
    this.#raw.free();
  }
}
