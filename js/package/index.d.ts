// Types of the iocsieve package. The shapes follow wit/iocsieve.wit: names in camelCase,
// variants as objects with a `type` field, named counts as objects keyed by name.

/** How a feed's bytes are written; `auto` detects the format from the content. */
export type FeedFormat = "auto" | "threatfox-json" | "threatfox-csv" | "threatfox-api";

/** One feed to load. */
export interface Feed {
  /** The name hits report as their source, such as the file name. */
  name: string;
  format?: FeedFormat;
  content: string | Uint8Array | ArrayBuffer;
}

export interface DetectorOptions {
  /** The feeds; none (the default) loads the built-in Mirai feed. */
  feeds?: Feed[];
  /** Settings as TOML or JSON text (mode, exclusions, profiles, output); "" for defaults. */
  settings?: string;
}

/** What one feed contributed. */
export interface FeedStats {
  name: string;
  /** The format the feed was read as, after detection. */
  format: string;
  /** Entries read from the feed, whatever became of them. */
  entries: number;
  /** Indicators loaded, by kind. */
  loaded: Record<string, number>;
  /** Entries not loaded, by reason. */
  skipped: Record<string, number>;
}

/** What a successful load built. */
export interface LoadStats {
  /** Distinct indicator entries now matched. */
  indicators: number;
  feeds: FeedStats[];
  /** The exclusion rules in force, by name. */
  exclusions: string[];
  /** The field profiles in force, by name. */
  profiles: string[];
}

/** The error a load throws: its message names the bad input (and line, where known). */
export interface LoadError extends Error {
  /** The feed name, or `settings`. */
  input: string;
  /** The 1-based line of the input, where it is known. */
  line: number | null;
}

/** One indicator that matched a value of the record. */
export interface IndicatorMatch {
  /** `ipv4`, `ipv6`, `ip:port`, `md5`, `sha1` or `sha256`. */
  kind: string;
  /** The indicator as normalised at load, e.g. `194.48.251.24:80`. */
  indicator: string;
  /** The record field the value was found in, e.g. `DestinationIP`. */
  field: string;
  /** The ASIM role of that field, e.g. `DstIpAddr`. */
  role: string;
  /** The value as the record has it (with the port for ip:port matches). */
  observed: string;
  /** An ip:port indicator that matched on its address alone (opt-in). */
  addressOnly: boolean;
  feed: string;
  /** The feed's id of the indicator. */
  id: string;
  threatType: string;
  /** The malware family id, e.g. `elf.mirai`. */
  malware: string;
  /** The malware's printable name, e.g. `Mirai`. */
  malwarePrintable: string;
  malwareAlias: string;
  /** 0-100, as the feed gives it. */
  confidence: number | null;
  /** RFC 3339 times. */
  firstSeen: string | null;
  lastSeen: string | null;
  tags: string[];
  reference: string;
}

/** What the detector concluded about one record. */
export type Verdict =
  /** Nothing matched. */
  | { type: "miss" }
  /** At least one indicator matched, most confident first. */
  | { type: "hit"; matches: IndicatorMatch[] }
  /** Indicators matched, but an exclusion rule says this is a known false positive. */
  | { type: "suppressed"; matches: IndicatorMatch[]; exclusion: string; reason: string }
  /** The record is not a JSON object; it passes through unchanged. */
  | { type: "unreadable"; error: string };

/** What to send on for the record. */
export type Emit =
  | { type: "unchanged" }
  /** The record with the enrichment fields added. */
  | { type: "enriched"; record: string }
  /** Nothing: the settings pass only hits. */
  | { type: "dropped" };

export interface Outcome {
  verdict: Verdict;
  emit: Emit;
}

/** Running totals since the detector was created. */
export interface Counters {
  recordsIn: number;
  recordsOut: number;
  /** Records that were not JSON objects (passed through unchanged). */
  unreadable: number;
  /** Records no profile applied to (passed through as misses). */
  withoutProfile: number;
  /** Records with at least one hit that no exclusion suppressed. */
  hits: number;
  /** Records whose hits an exclusion suppressed. */
  suppressed: number;
  /** Hits on an ip:port indicator's address alone. */
  addressOnlyHits: number;
  /** Misses dropped in hits-only mode. */
  droppedMisses: number;
  /** Suppressed hits dropped in hits-only mode. */
  droppedSuppressed: number;
  /** Records whose enrichment key already existed and was written under another name. */
  outputKeyCollisions: number;
  /** Matching values by indicator kind (suppressed ones included). */
  hitsByKind: Record<string, number>;
  suppressionsByExclusion: Record<string, number>;
  recordsByProfile: Record<string, number>;
}

/** A record: JSON text, or an object serialised with JSON.stringify. */
export type RecordInput = string | object;

/** The current time for indicator validity: seconds since 1970, or a Date. */
export type Now = number | Date;

/** An indicator set with its settings, evaluating log records. */
export class Detector {
  /** Loads the feeds and settings; throws a {@link LoadError} naming the bad input. */
  constructor(options?: DetectorOptions);
  /** Reloads; counters carry on. On error the previous indicator set stays in force. */
  load(options?: DetectorOptions): LoadStats;
  /** What the last successful load built. */
  readonly loadStats: LoadStats;
  /** Evaluates one record at `now` (default: Date.now()). */
  evaluate(record: RecordInput, now?: Now): Outcome;
  /** Evaluates NDJSON text or bytes, or an array of records: one outcome per record. */
  evaluateBatch(records: string | Uint8Array | RecordInput[], now?: Now): Outcome[];
  /**
   * What to send on for NDJSON records, as `iocsieve scan` writes it (one record per
   * line, dropped ones left out): a string for string or array input, bytes for bytes.
   */
  filter(records: string | RecordInput[], now?: Now): string;
  filter(records: Uint8Array, now?: Now): Uint8Array;
  counters(): Counters;
  /** The counters as the one summary line `iocsieve scan` prints. */
  countersLine(): string;
  /** Frees the WebAssembly memory now rather than at garbage collection. */
  free(): void;
}

/** The name hits from the built-in Mirai feed report as their feed. */
export const DEFAULT_FEED_NAME: string;
/** The built-in feed as ThreatFox JSON export text. */
export function defaultFeed(): string;
/** The built-in profiles and exclusions, as a settings file would write them (TOML). */
export function builtinSettings(): string;
/** `settings` with `mode` set, as `iocsieve scan --only-hits` does. */
export function settingsWithMode(settings: string, mode: "tag" | "hits-only"): string;
