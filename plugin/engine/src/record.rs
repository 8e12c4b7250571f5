//! Reading the few fields a profile needs out of a JSON record, without building a tree.
//!
//! [`FieldTable`] maps field paths (`RemoteIP`, `id.orig_h`, `records.properties.SHA256`) to
//! slots. [`RecordScanner::scan`] walks the record once, validating it as JSON, and keeps
//! only the scalar values whose path is in the table. Nested keys and dotted keys name the
//! same path (`{"id":{"orig_h":..}}` and `{"id.orig_h":..}` are both `id.orig_h`), and the
//! elements of an array stand at the array's own path, so arrays are searched.
//!
//! The walk is iterative (a small explicit stack), so deeply nested input cannot overflow
//! the 8 KiB stack of Fluent Bit's wasm runtime. Buffers live in the scanner and are reused,
//! so a warm scanner allocates nothing per record or per field.

use rustc_hash::FxHashMap;

/// An index into a [`FieldTable`].
pub type Slot = u16;

/// The field paths a detector reads, each with a slot number.
#[derive(Debug, Default, Clone)]
pub struct FieldTable {
    /// Every wanted path, and every path that leads to one, in one map so that a key costs
    /// one hash lookup.
    paths: FxHashMap<Box<[u8]>, PathEntry>,
    /// The same paths in buckets chosen by their length and three of their bytes, for the
    /// record path: a key costs a few multiplications and, mostly, an empty bucket or one
    /// byte comparison, however many profiles there are.
    buckets: Vec<Vec<(Box<[u8]>, PathEntry)>>,
    /// log2 of the number of buckets.
    bucket_bits: u32,
    names: Vec<Box<str>>,
    /// For each slot, the first profile that a record having it belongs to
    /// ([`NOT_DETECTING`] for none): see [`FieldTable::detects`].
    detects: Vec<u16>,
}

/// The detection rank of a slot that tells no profile.
pub const NOT_DETECTING: u16 = u16::MAX;

impl FieldTable {
    /// Returns the slot of `path`, adding it if it is new.
    pub fn intern(&mut self, path: &str) -> Slot {
        if let Some(slot) = self.get(path) {
            return slot;
        }
        let slot = Slot::try_from(self.names.len()).expect("fewer than 65536 field paths");
        self.paths.entry(path.as_bytes().into()).or_default().slot = Some(slot);
        self.names.push(path.into());
        self.detects.push(NOT_DETECTING);
        let bytes = path.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'.' && i > 0 {
                self.paths
                    .entry(bytes[..i].into())
                    .or_default()
                    .leads_further = true;
            }
        }
        let bits = (self.paths.len() * 4)
            .next_power_of_two()
            .trailing_zeros()
            .max(6);
        self.bucket_bits = bits;
        self.buckets = vec![Vec::new(); 1 << bits];
        for (path, entry) in &self.paths {
            self.buckets[bucket_of(path, bits)].push((path.clone(), *entry));
        }
        slot
    }

    /// What `path` means to the scan, if anything.
    #[inline(always)]
    fn lookup(&self, path: &[u8]) -> Option<PathEntry> {
        if path.is_empty() || self.buckets.is_empty() {
            return None;
        }
        for (candidate, entry) in &self.buckets[bucket_of(path, self.bucket_bits)] {
            if same_bytes(candidate, path) {
                return Some(*entry);
            }
        }
        None
    }

    /// Marks `slot` as a field that makes a record belong to profile number `rank` (or to
    /// an earlier one, when several claim it). The scan keeps the lowest rank among the
    /// fields a record has, so picking the profile costs nothing per profile.
    pub fn detects(&mut self, slot: Slot, rank: u16) {
        let current = &mut self.detects[usize::from(slot)];
        *current = (*current).min(rank);
    }

    /// The slot of `path`, if the table has it.
    pub fn get(&self, path: &str) -> Option<Slot> {
        self.paths.get(path.as_bytes()).and_then(|e| e.slot)
    }

    /// The path of `slot`.
    pub fn name(&self, slot: Slot) -> &str {
        &self.names[usize::from(slot)]
    }

    /// How many slots there are.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// The bucket of a non-empty path: a multiplicative hash of its length and its first,
/// middle and last bytes, which tell most field names apart.
#[inline(always)]
fn bucket_of(path: &[u8], bits: u32) -> usize {
    let n = path.len();
    let mix = (n as u32).wrapping_mul(0x9E37_79B1)
        ^ u32::from(path[0]).wrapping_mul(0x85EB_CA77)
        ^ u32::from(path[n / 2]).wrapping_mul(0xC2B2_AE3D)
        ^ u32::from(path[n - 1]).wrapping_mul(0x27D4_EB2F);
    (mix.wrapping_mul(0x9E37_79B1) >> (32 - bits)) as usize
}

/// What a path means to the scan.
#[derive(Debug, Default, Clone, Copy)]
struct PathEntry {
    /// The path is wanted: its scalar values are captured.
    slot: Option<Slot>,
    /// A wanted path lies below this one (`id` for `id.orig_h`): objects and arrays here are
    /// walked; everywhere else they are only validated.
    leads_further: bool,
}

/// The JSON type of a captured scalar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarKind {
    String,
    Number,
    Bool,
    Null,
}

/// A captured scalar: where its text lies (in the record, or decoded in the scanner's
/// scratch buffer when the string had escapes).
#[derive(Debug, Clone, Copy)]
struct Captured {
    /// The row the value belongs to: see [`ScannedRecord::values_in_rows`].
    row: u32,
    kind: ScalarKind,
    in_scratch: bool,
    start: u32,
    end: u32,
    /// The next capture of the same slot, or [`NO_CAPTURE`].
    next: u32,
}

const NO_CAPTURE: u32 = u32::MAX;

/// Why a record could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadError {
    /// Not an object: an array, a string, nothing at all, or text that is not JSON.
    NotAnObject,
    /// Not JSON; the offset of the first byte that broke it.
    Invalid { offset: usize },
    /// Deeper than [`MAX_DEPTH`] levels.
    TooDeep,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::NotAnObject => f.write_str("not a JSON object"),
            ReadError::Invalid { offset } => write!(f, "invalid JSON at byte {offset}"),
            ReadError::TooDeep => write!(f, "JSON nested deeper than {MAX_DEPTH} levels"),
        }
    }
}

/// Records nested deeper than this are refused (and pass through unchanged).
pub const MAX_DEPTH: usize = 512;

#[derive(Debug, Clone, Copy)]
struct Frame {
    is_object: bool,
    /// Whether paths are tracked inside this container (it lies on a wanted path).
    tracked: bool,
    /// Length of the path buffer at this container (its own path).
    path_len: usize,
    /// Whether an element has been read, so a `,` is expected before the next.
    has_element: bool,
    /// The row of the values inside: a new one for each object that is an array element.
    row: u32,
}

/// The fields read from one record; borrowed from the scanner until its next scan.
pub struct ScannedRecord<'s> {
    /// The record, every string of which the walk found to be UTF-8.
    record: &'s [u8],
    scanner: &'s RecordScanner,
}

impl<'s> ScannedRecord<'s> {
    /// Every captured value of `slot`, in record order, as text (strings decoded).
    pub fn values(&self, slot: Slot) -> impl Iterator<Item = (ScalarKind, &'s str)> + '_ {
        self.values_in_rows(slot)
            .map(|(_, kind, text)| (kind, text))
    }

    /// The lowest detection rank ([`FieldTable::detects`]) among the record's fields.
    pub fn detected(&self) -> Option<u16> {
        let rank = self.scanner.detected;
        (rank != NOT_DETECTING).then_some(rank)
    }

    /// The first captured value of `slot`.
    pub fn first(&self, slot: Slot) -> Option<(ScalarKind, &'s str)> {
        self.values(slot).next()
    }

    /// Every captured value of `slot` with its row. Values outside any array of objects
    /// are in row 0; each object that is an element of an array starts a new row, which
    /// holds every value inside it (`records[3].properties.RemoteIP` and
    /// `records[3].properties.RemotePort` share a row), so fields of one element stay
    /// paired when a record wraps several rows.
    pub fn values_in_rows(
        &self,
        slot: Slot,
    ) -> impl Iterator<Item = (u32, ScalarKind, &'s str)> + '_ {
        let captured = &self.scanner.captured;
        let first = self.scanner.first_capture.get(usize::from(slot)).copied();
        std::iter::successors(first.filter(|&i| i != NO_CAPTURE), |&i| {
            Some(captured[i as usize].next).filter(|&n| n != NO_CAPTURE)
        })
        .map(|i| {
            let c = &captured[i as usize];
            (c.row, c.kind, self.text(c))
        })
    }

    /// The first value of `slot` in `row`, else the first in row 0 (a value outside every
    /// array applies to all rows).
    pub fn first_in_row(&self, slot: Slot, row: u32) -> Option<(ScalarKind, &'s str)> {
        let mut top = None;
        for (r, kind, text) in self.values_in_rows(slot) {
            if r == row {
                return Some((kind, text));
            }
            if r == 0 && top.is_none() {
                top = Some((kind, text));
            }
        }
        top
    }

    /// Whether the record has the field `slot` (with any value, even an object).
    pub fn has(&self, slot: Slot) -> bool {
        self.scanner
            .present
            .get(usize::from(slot))
            .copied()
            .unwrap_or(false)
    }

    /// The number of keys of the top-level object.
    pub fn top_level_keys(&self) -> usize {
        self.scanner.top_level_keys
    }

    /// The byte offset of the closing `}` of the top-level object.
    pub fn closing_brace(&self) -> usize {
        self.scanner.closing_brace
    }

    fn text(&self, c: &Captured) -> &'s str {
        let range = c.start as usize..c.end as usize;
        if c.in_scratch {
            // Decoded escapes: the scratch holds whole UTF-8 sequences only.
            std::str::from_utf8(&self.scanner.scratch[range]).unwrap_or("")
        } else {
            let text = self.record.get(range).unwrap_or_default();
            debug_assert!(std::str::from_utf8(text).is_ok());
            // SAFETY: a capture in the record spans the text of one string, whose bytes the
            // walk read one by one (ASCII in `skip_plain_string_bytes`, every other character
            // checked by `utf8_sequence_len`), or a number or literal, which are ASCII. A
            // check here would cost an interpreter more than all the matching of a record.
            unsafe { std::str::from_utf8_unchecked(text) }
        }
    }
}

/// Walks records and captures the fields of a [`FieldTable`]. Reuse one per thread.
#[derive(Debug, Default)]
pub struct RecordScanner {
    captured: Vec<Captured>,
    /// Per slot: the first and last capture, chained through `Captured::next` so that a
    /// profile's lookups of a slot touch only that slot's values.
    first_capture: Vec<u32>,
    last_capture: Vec<u32>,
    present: Vec<bool>,
    scratch: Vec<u8>,
    path: Vec<u8>,
    stack: Vec<Frame>,
    top_level_keys: usize,
    closing_brace: usize,
    rows: u32,
    /// The lowest detection rank among the fields seen.
    detected: u16,
}

impl RecordScanner {
    /// Reads `record` and captures the fields of `table`. The text of every string is
    /// checked to be UTF-8 as it is read (outside strings, JSON is ASCII), so a record that
    /// is not UTF-8 is an error without a separate pass over it.
    pub fn scan<'s>(
        &'s mut self,
        table: &FieldTable,
        record: &'s [u8],
    ) -> Result<ScannedRecord<'s>, ReadError> {
        let start = skip_ws(record, 0);
        if record.get(start) != Some(&b'{') {
            // Arrays, strings, numbers, nothing at all, or text that is not JSON.
            return Err(ReadError::NotAnObject);
        }
        let end = self.walk(table, record, start)?;
        let rest = skip_ws(record, end);
        if rest != record.len() {
            return Err(ReadError::Invalid { offset: rest });
        }
        Ok(ScannedRecord {
            record,
            scanner: self,
        })
    }

    /// Reads the object that opens at `start` inside a larger JSON text (an entry of a
    /// feed); returns its fields and the offset after its closing brace.
    pub fn scan_object_at<'s>(
        &'s mut self,
        table: &FieldTable,
        text: &'s [u8],
        start: usize,
    ) -> Result<(ScannedRecord<'s>, usize), ReadError> {
        if text.get(start) != Some(&b'{') {
            return Err(ReadError::Invalid { offset: start });
        }
        let end = self.walk(table, text, start)?;
        let scanned = ScannedRecord {
            record: text,
            scanner: self,
        };
        Ok((scanned, end))
    }

    /// Walks the object opening at `start`; returns the offset after its closing brace.
    /// Its members are read in a loop of their own: a record is mostly a flat object of
    /// scalars, and this loop keeps no stack of containers; a member that is an object or
    /// an array is walked by [`RecordScanner::walk_nested`].
    fn walk(&mut self, table: &FieldTable, rec: &[u8], start: usize) -> Result<usize, ReadError> {
        self.captured.clear();
        self.scratch.clear();
        self.path.clear();
        self.stack.clear();
        self.present.clear();
        self.present.resize(table.len(), false);
        self.first_capture.clear();
        self.first_capture.resize(table.len(), NO_CAPTURE);
        self.last_capture.clear();
        self.last_capture.resize(table.len(), NO_CAPTURE);
        self.top_level_keys = 0;
        self.rows = 0;
        self.detected = NOT_DETECTING;
        // The top-level object as the frame nested containers start from.
        self.stack.push(Frame {
            is_object: true,
            tracked: true,
            path_len: 0,
            has_element: false,
            row: 0,
        });
        let mut pos = skip_ws(rec, start + 1);
        if rec.get(pos) != Some(&b'}') {
            loop {
                pos = self.top_level_member(table, rec, pos)?;
                pos = skip_ws(rec, pos);
                match rec.get(pos) {
                    Some(b',') => pos = skip_ws(rec, pos + 1),
                    Some(b'}') => break,
                    _ => return Err(ReadError::Invalid { offset: pos }),
                }
            }
        }
        self.closing_brace = pos;
        Ok(pos + 1)
    }

    /// Reads the member of the top-level object at `pos` (its key's quote); returns the
    /// offset after its value. A top-level key is its own path: it is looked up where it
    /// lies, and copied into the path only when its value is an object or an array.
    #[inline(always)]
    fn top_level_member(
        &mut self,
        table: &FieldTable,
        rec: &[u8],
        pos: usize,
    ) -> Result<usize, ReadError> {
        if rec.get(pos) != Some(&b'"') {
            return Err(ReadError::Invalid { offset: pos });
        }
        self.top_level_keys += 1;
        let scratch_len = self.scratch.len();
        let (after_key, span) = self.read_string(rec, pos, StringSink::Capture)?;
        let (in_scratch, key_start, key_end) = span.expect("captured");
        let key = if in_scratch { &self.scratch } else { rec };
        let entry = table.lookup(&key[key_start as usize..key_end as usize]);
        let mut pos = skip_ws(rec, after_key);
        if rec.get(pos) != Some(&b':') {
            return Err(ReadError::Invalid { offset: pos });
        }
        pos = skip_ws(rec, pos + 1);
        let slot = entry.and_then(|e| e.slot);
        if let Some(s) = slot {
            self.mark_present(table, s);
        }
        let value = rec.get(pos).copied();
        if let Some(b'{' | b'[') = value {
            let tracked =
                entry.is_some_and(|e| e.leads_further) || (value == Some(b'[') && slot.is_some());
            if tracked {
                self.path.clear();
                let key = if in_scratch { &self.scratch } else { rec };
                self.path
                    .extend_from_slice(&key[key_start as usize..key_end as usize]);
            }
            self.scratch.truncate(scratch_len);
            self.stack.push(Frame {
                is_object: value == Some(b'{'),
                tracked,
                path_len: self.path.len(),
                has_element: false,
                row: 0,
            });
            return self.walk_nested(table, rec, pos + 1);
        }
        self.scratch.truncate(scratch_len);
        self.scalar(rec, pos, slot, 0)
    }

    /// Notes that the record has the field `slot`, and what it tells of the profile.
    #[inline(always)]
    fn mark_present(&mut self, table: &FieldTable, slot: Slot) {
        self.present[usize::from(slot)] = true;
        self.detected = self.detected.min(table.detects[usize::from(slot)]);
    }

    /// Reads the scalar value at `pos`, captured for `slot` in `row` when there is a slot;
    /// returns the offset after it.
    #[inline(always)]
    fn scalar(
        &mut self,
        rec: &[u8],
        pos: usize,
        slot: Option<Slot>,
        row: u32,
    ) -> Result<usize, ReadError> {
        let Some(&v) = rec.get(pos) else {
            return Err(ReadError::Invalid { offset: pos });
        };
        match v {
            b'"' => {
                let sink = if slot.is_some() {
                    StringSink::Capture
                } else {
                    StringSink::Discard
                };
                let (end, captured) = self.read_string(rec, pos, sink)?;
                if let (Some(slot), Some((in_scratch, start, end))) = (slot, captured) {
                    self.capture(slot, row, ScalarKind::String, in_scratch, start, end);
                }
                Ok(end)
            }
            b't' | b'f' | b'n' => {
                let (word, kind): (&[u8], _) = match v {
                    b't' => (b"true", ScalarKind::Bool),
                    b'f' => (b"false", ScalarKind::Bool),
                    _ => (b"null", ScalarKind::Null),
                };
                if !rec[pos..].starts_with(word) {
                    return Err(ReadError::Invalid { offset: pos });
                }
                if let Some(slot) = slot {
                    self.capture_raw(slot, row, kind, pos, pos + word.len());
                }
                Ok(pos + word.len())
            }
            b'-' | b'0'..=b'9' => {
                let end = number_end(rec, pos).ok_or(ReadError::Invalid { offset: pos })?;
                if let Some(slot) = slot {
                    self.capture_raw(slot, row, ScalarKind::Number, pos, end);
                }
                Ok(end)
            }
            _ => Err(ReadError::Invalid { offset: pos }),
        }
    }

    /// Walks the object or array opened just before `pos`, whose frame is on the stack
    /// above the top-level one, to its end; returns the offset after its closing bracket.
    /// Iterative, so a deep record needs no deep call stack.
    fn walk_nested(
        &mut self,
        table: &FieldTable,
        rec: &[u8],
        mut pos: usize,
    ) -> Result<usize, ReadError> {
        loop {
            let frame = *self.stack.last().expect("stack holds the open containers");
            pos = skip_ws(rec, pos);
            let Some(&b) = rec.get(pos) else {
                return Err(ReadError::Invalid { offset: pos });
            };

            // Close the container, or read the separator before the next element.
            let closes = if frame.is_object { b'}' } else { b']' };
            if b == closes {
                pos += 1;
                self.stack.pop();
                if self.stack.len() == 1 {
                    // Back in the top-level object.
                    return Ok(pos);
                }
                if let Some(parent) = self.stack.last_mut() {
                    parent.has_element = true;
                }
                continue;
            }
            if frame.has_element {
                if b != b',' {
                    return Err(ReadError::Invalid { offset: pos });
                }
                pos = skip_ws(rec, pos + 1);
            }

            // In an object, read the key and build the path of the value.
            let mut slot = None;
            let mut value_tracked = false;
            if frame.is_object {
                if rec.get(pos) != Some(&b'"') {
                    return Err(ReadError::Invalid { offset: pos });
                }
                if frame.tracked {
                    self.path.truncate(frame.path_len);
                    self.path.push(b'.');
                    let (end, _) = self.read_string(rec, pos, StringSink::Path)?;
                    pos = end;
                    if let Some(entry) = table.lookup(&self.path) {
                        slot = entry.slot;
                        value_tracked = entry.leads_further;
                    }
                } else {
                    pos = self.read_string(rec, pos, StringSink::Discard)?.0;
                }
                pos = skip_ws(rec, pos);
                if rec.get(pos) != Some(&b':') {
                    return Err(ReadError::Invalid { offset: pos });
                }
                pos = skip_ws(rec, pos + 1);
            } else if frame.tracked {
                // Array elements stand at the array's own path.
                self.path.truncate(frame.path_len);
                if let Some(entry) = table.lookup(&self.path) {
                    slot = entry.slot;
                    value_tracked = entry.leads_further;
                }
            }
            if let Some(s) = slot {
                self.mark_present(table, s);
            }

            // Read the value.
            let Some(&v) = rec.get(pos) else {
                return Err(ReadError::Invalid { offset: pos });
            };
            if let b'{' | b'[' = v {
                if self.stack.len() >= MAX_DEPTH {
                    return Err(ReadError::TooDeep);
                }
                let tracked = value_tracked || (v == b'[' && slot.is_some());
                let row = if v == b'{' && !frame.is_object && tracked {
                    self.rows += 1;
                    self.rows
                } else {
                    frame.row
                };
                self.stack.push(Frame {
                    is_object: v == b'{',
                    tracked,
                    path_len: self.path.len(),
                    has_element: false,
                    row,
                });
                pos += 1;
                continue;
            }
            pos = self.scalar(rec, pos, slot, frame.row)?;
            if let Some(top) = self.stack.last_mut() {
                top.has_element = true;
            }
        }
    }

    fn capture_raw(&mut self, slot: Slot, row: u32, kind: ScalarKind, start: usize, end: usize) {
        self.capture(slot, row, kind, false, start as u32, end as u32);
    }

    #[inline(always)]
    fn capture(
        &mut self,
        slot: Slot,
        row: u32,
        kind: ScalarKind,
        in_scratch: bool,
        start: u32,
        end: u32,
    ) {
        let index = self.captured.len() as u32;
        self.captured.push(Captured {
            row,
            kind,
            in_scratch,
            start,
            end,
            next: NO_CAPTURE,
        });
        let slot = usize::from(slot);
        match self.last_capture[slot] {
            NO_CAPTURE => self.first_capture[slot] = index,
            last => self.captured[last as usize].next = index,
        }
        self.last_capture[slot] = index;
    }

    /// Reads the string starting at the quote at `pos`; returns the offset after its closing
    /// quote and, for [`StringSink::Capture`], where its text lies.
    ///
    /// Inlined into the walk: a record has a score of short strings, and in a wasm runtime a
    /// call per string costs more than reading it. Escapes take the out-of-line slow path.
    #[inline(always)]
    fn read_string(
        &mut self,
        rec: &[u8],
        pos: usize,
        sink: StringSink,
    ) -> Result<(usize, Option<TextSpan>), ReadError> {
        let start = pos + 1;
        let i = skip_plain_string_bytes(rec, start);
        if rec.get(i) != Some(&b'"') {
            return self.read_string_slowly(rec, start, i, sink);
        }
        Ok((i + 1, self.plain_string(rec, start, i, sink)))
    }

    /// A string without escapes, from `start` to its closing quote at `end`: its text is a
    /// slice of the record.
    #[inline(always)]
    fn plain_string(
        &mut self,
        rec: &[u8],
        start: usize,
        end: usize,
        sink: StringSink,
    ) -> Option<TextSpan> {
        if let StringSink::Path = sink {
            self.path.extend_from_slice(&rec[start..end]);
        }
        matches!(sink, StringSink::Capture).then_some((false, start as u32, end as u32))
    }

    /// The rest of a string from offset `i`, where a byte that is not plain ASCII, a
    /// backslash, a control character or the end of the record stopped the fast path.
    /// Non-ASCII text is checked to be UTF-8 and stays a slice of the record; escapes are
    /// decoded into the path or the scratch buffer.
    #[cold]
    #[inline(never)]
    fn read_string_slowly(
        &mut self,
        rec: &[u8],
        start: usize,
        i: usize,
        sink: StringSink,
    ) -> Result<(usize, Option<TextSpan>), ReadError> {
        let i = plain_text_end(rec, i)?;
        match rec.get(i) {
            Some(b'"') => return Ok((i + 1, self.plain_string(rec, start, i, sink))),
            Some(b'\\') => {}
            _ => return Err(ReadError::Invalid { offset: i }),
        }
        let scratch_start = self.scratch.len();
        let mut out = std::mem::take(match sink {
            StringSink::Path => &mut self.path,
            StringSink::Capture | StringSink::Discard => &mut self.scratch,
        });
        out.extend_from_slice(&rec[start..i]);
        let result = decode_escaped(rec, i, &mut out);
        let end_of_text = out.len();
        match sink {
            StringSink::Path => self.path = out,
            StringSink::Capture | StringSink::Discard => {
                self.scratch = out;
                if matches!(sink, StringSink::Discard) {
                    self.scratch.truncate(scratch_start);
                }
            }
        }
        let end = result?;
        let captured = matches!(sink, StringSink::Capture).then_some((
            true,
            scratch_start as u32,
            end_of_text as u32,
        ));
        Ok((end, captured))
    }
}

/// Where a captured string's text lies: in the record, or decoded in the scratch buffer.
type TextSpan = (bool, u32, u32);

#[derive(Clone, Copy)]
enum StringSink {
    /// Append the key to the path buffer.
    Path,
    /// Keep the text.
    Capture,
    /// Validate only.
    Discard,
}

/// Decodes the rest of a string from the backslash at `i`; returns the offset after the
/// closing quote.
fn decode_escaped(rec: &[u8], mut i: usize, out: &mut Vec<u8>) -> Result<usize, ReadError> {
    loop {
        let Some(&b) = rec.get(i) else {
            return Err(ReadError::Invalid { offset: i });
        };
        match b {
            b'"' => return Ok(i + 1),
            b'\\' => {
                let Some(&e) = rec.get(i + 1) else {
                    return Err(ReadError::Invalid { offset: i });
                };
                i += 2;
                let simple = match e {
                    b'"' => b'"',
                    b'\\' => b'\\',
                    b'/' => b'/',
                    b'b' => 0x08,
                    b'f' => 0x0c,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'u' => {
                        let (ch, next) = decode_unicode_escape(rec, i)?;
                        i = next;
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        continue;
                    }
                    _ => return Err(ReadError::Invalid { offset: i - 1 }),
                };
                out.push(simple);
            }
            0..=0x1f => return Err(ReadError::Invalid { offset: i }),
            0x80.. => {
                let len = utf8_sequence_len(rec, i)?;
                out.extend_from_slice(&rec[i..i + len]);
                i += len;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
}

/// Reads the JSON string whose opening quote is at `pos` into `out` (escapes decoded, the
/// text checked to be UTF-8); returns the offset after its closing quote. For JSON texts
/// other than records, such as the keys of a feed export.
pub(crate) fn read_json_string(
    text: &[u8],
    pos: usize,
    out: &mut String,
) -> Result<usize, ReadError> {
    if text.get(pos) != Some(&b'"') {
        return Err(ReadError::Invalid { offset: pos });
    }
    let mut bytes = std::mem::take(out).into_bytes();
    bytes.clear();
    let i = plain_text_end(text, pos + 1);
    let end = i.and_then(|i| {
        bytes.extend_from_slice(&text[pos + 1..i]);
        match text.get(i) {
            Some(b'"') => Ok(i + 1),
            Some(b'\\') => decode_escaped(text, i, &mut bytes),
            _ => Err(ReadError::Invalid { offset: i }),
        }
    });
    // Every byte copied was checked: ASCII, a whole UTF-8 sequence, or a decoded escape.
    *out = String::from_utf8(bytes).map_err(|_| ReadError::Invalid { offset: pos })?;
    end
}

/// The end of the text of a string from `i` that needs no decoding: plain ASCII and whole
/// UTF-8 sequences, up to a quote, a backslash, a control character or the end of the
/// input. An invalid UTF-8 sequence is an error at its offset.
fn plain_text_end(rec: &[u8], mut i: usize) -> Result<usize, ReadError> {
    i = skip_plain_string_bytes(rec, i);
    while let Some(&b) = rec.get(i)
        && b >= 0x80
    {
        i = skip_plain_string_bytes(rec, i + utf8_sequence_len(rec, i)?);
    }
    Ok(i)
}

/// The length of the UTF-8 sequence of one character at `i`, or an error if the bytes
/// there are not one.
fn utf8_sequence_len(rec: &[u8], i: usize) -> Result<usize, ReadError> {
    let invalid = ReadError::Invalid { offset: i };
    let len = match rec[i] {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return Err(invalid),
    };
    let sequence = rec.get(i..i + len).ok_or(invalid)?;
    std::str::from_utf8(sequence).map_err(|_| invalid)?;
    Ok(len)
}

/// Decodes the four hex digits at `i` (after `\u`), joining a surrogate pair when a second
/// `\uXXXX` follows. A lone surrogate becomes U+FFFD: the record is still readable.
fn decode_unicode_escape(rec: &[u8], i: usize) -> Result<(char, usize), ReadError> {
    let unit = hex4(rec, i)?;
    let next = i + 4;
    if (0xD800..0xDC00).contains(&unit) {
        if rec.get(next) == Some(&b'\\') && rec.get(next + 1) == Some(&b'u') {
            let low = hex4(rec, next + 2)?;
            if (0xDC00..0xE000).contains(&low) {
                let code = 0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00);
                return Ok((char::from_u32(code).unwrap_or('\u{FFFD}'), next + 6));
            }
        }
        return Ok(('\u{FFFD}', next));
    }
    Ok((char::from_u32(u32::from(unit)).unwrap_or('\u{FFFD}'), next))
}

fn hex4(rec: &[u8], i: usize) -> Result<u16, ReadError> {
    let digits = rec.get(i..i + 4).ok_or(ReadError::Invalid { offset: i })?;
    let mut value = 0u16;
    for &d in digits {
        let nibble = (d as char)
            .to_digit(16)
            .ok_or(ReadError::Invalid { offset: i })?;
        value = value << 4 | nibble as u16;
    }
    Ok(value)
}

/// Compares two slices of equal length a word at a time. A slice comparison would call
/// `memcmp`, which in a wasm module is an out-of-line byte loop.
#[inline(always)]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut a_words, mut b_words) = (a.chunks_exact(8), b.chunks_exact(8));
    for (x, y) in a_words.by_ref().zip(b_words.by_ref()) {
        if u64::from_le_bytes(x.try_into().expect("8 bytes"))
            != u64::from_le_bytes(y.try_into().expect("8 bytes"))
        {
            return false;
        }
    }
    a_words
        .remainder()
        .iter()
        .zip(b_words.remainder())
        .all(|(x, y)| x == y)
}

/// Skips, eight bytes at a time, the bytes of a string that need no attention: everything
/// but a quote, a backslash, control characters and bytes of non-ASCII characters (which
/// the slow path checks to be UTF-8). Most of a record is string text, and a
/// word-at-a-time loop costs an interpreter or a simple compiler far less than a byte loop.
#[inline(always)]
fn skip_plain_string_bytes(rec: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A high bit set where a byte of `v` is zero (or, for `below`, less than `n`); exact
    // for the first such byte, which is all the caller needs.
    let zero_byte = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    while let Some(chunk) = rec.get(i..i + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let special = zero_byte(word ^ (ONES * u64::from(b'"')))
            | zero_byte(word ^ (ONES * u64::from(b'\\')))
            | (word.wrapping_sub(ONES * 0x20) & !word & HIGH)
            | (word & HIGH);
        if special != 0 {
            return i + (special.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = rec.get(i) {
        if b == b'"' || b == b'\\' || !(0x20..0x80).contains(&b) {
            break;
        }
        i += 1;
    }
    i
}

/// The offset of the first byte at or after `pos` that is not JSON whitespace.
#[inline(always)]
pub(crate) fn skip_ws(rec: &[u8], mut pos: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = rec.get(pos) {
        pos += 1;
        // Indentation of pretty-printed JSON (feed exports) a word of spaces at a time.
        while let Some(word) = rec.get(pos..pos + 8)
            && word == b"        "
        {
            pos += 8;
        }
    }
    pos
}

/// The end of the JSON number at `pos`, or `None` if it is malformed.
fn number_end(rec: &[u8], mut pos: usize) -> Option<usize> {
    let digits = |rec: &[u8], mut p: usize| {
        let s = p;
        while rec.get(p).is_some_and(u8::is_ascii_digit) {
            p += 1;
        }
        (p > s).then_some(p)
    };
    if rec.get(pos) == Some(&b'-') {
        pos += 1;
    }
    pos = match rec.get(pos) {
        Some(b'0') => pos + 1,
        Some(b'1'..=b'9') => digits(rec, pos)?,
        _ => return None,
    };
    if rec.get(pos) == Some(&b'.') {
        pos = digits(rec, pos + 1)?;
    }
    if let Some(b'e' | b'E') = rec.get(pos) {
        pos += 1;
        if let Some(b'+' | b'-') = rec.get(pos) {
            pos += 1;
        }
        pos = digits(rec, pos)?;
    }
    Some(pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(paths: &[&str]) -> FieldTable {
        let mut t = FieldTable::default();
        for p in paths {
            t.intern(p);
        }
        t
    }

    fn values(paths: &[&str], record: &str, field: &str) -> Vec<String> {
        let t = table(paths);
        let mut s = RecordScanner::default();
        let scanned = s.scan(&t, record.as_bytes()).expect("record reads");
        scanned
            .values(t.get(field).unwrap())
            .map(|(_, v)| v.to_string())
            .collect()
    }

    #[test]
    fn captures_top_level_strings_and_numbers() {
        let rec = r#"{"RemoteIP":"1.2.3.4","RemotePort":80,"Other":{"RemoteIP":"9.9.9.9"}}"#;
        assert_eq!(
            values(&["RemoteIP", "RemotePort"], rec, "RemoteIP"),
            ["1.2.3.4"]
        );
        assert_eq!(
            values(&["RemoteIP", "RemotePort"], rec, "RemotePort"),
            ["80"]
        );
    }

    #[test]
    fn nested_and_dotted_keys_name_the_same_path() {
        let paths = ["id.orig_h"];
        assert_eq!(
            values(&paths, r#"{"id.orig_h":"1.1.1.1"}"#, "id.orig_h"),
            ["1.1.1.1"]
        );
        assert_eq!(
            values(&paths, r#"{"id":{"orig_h":"2.2.2.2"}}"#, "id.orig_h"),
            ["2.2.2.2"]
        );
        assert!(values(&paths, r#"{"x":{"id":{"orig_h":"3.3.3.3"}}}"#, "id.orig_h").is_empty());
    }

    #[test]
    fn arrays_are_searched() {
        let rec = r#"{"answers":["a","b"],"records":[{"properties":{"SHA1":"x"}},{"properties":{"SHA1":"y"}}]}"#;
        assert_eq!(values(&["answers"], rec, "answers"), ["a", "b"]);
        assert_eq!(
            values(&["records.properties.SHA1"], rec, "records.properties.SHA1"),
            ["x", "y"]
        );
    }

    #[test]
    fn each_object_in_an_array_is_a_row() {
        let t = table(&["records.ip", "records.port", "top"]);
        let mut s = RecordScanner::default();
        let rec = br#"{"top":1,"records":[{"ip":"a","port":1},{"ip":"b"},{"x":{"ip":0},"ip":"c","port":3}]}"#;
        let scanned = s.scan(&t, rec).unwrap();
        let ip = t.get("records.ip").unwrap();
        let port = t.get("records.port").unwrap();
        let rows: Vec<_> = scanned.values_in_rows(ip).map(|(r, _, v)| (r, v)).collect();
        assert_eq!(rows, [(1, "a"), (2, "b"), (3, "c")]);
        assert_eq!(scanned.first_in_row(port, 1).map(|v| v.1), Some("1"));
        // Row 2 has no port of its own and none stands outside the rows.
        assert_eq!(scanned.first_in_row(port, 2), None);
        assert_eq!(scanned.first_in_row(port, 3).map(|v| v.1), Some("3"));
        // A value outside every array applies to all rows.
        let top = t.get("top").unwrap();
        assert_eq!(scanned.first_in_row(top, 2).map(|v| v.1), Some("1"));
    }

    #[test]
    fn decodes_escapes_in_values_and_keys() {
        let rec = r#"{"Path":"C:\\Windows\\x \u00e9 \ud83d\ude00","K\u0065y":"v"}"#;
        assert_eq!(
            values(&["Path", "Key"], rec, "Path"),
            ["C:\\Windows\\x é 😀"]
        );
        assert_eq!(values(&["Path", "Key"], rec, "Key"), ["v"]);
    }

    #[test]
    fn word_skipping_stops_at_every_special_byte() {
        for special in [b'"', b'\\', 0x00, 0x1f, b'\n', 0x80, 0xc3, 0xff] {
            for at in 0..20 {
                let mut text = vec![b'a'; 24];
                text[at] = special;
                assert_eq!(
                    skip_plain_string_bytes(&text, 0),
                    at,
                    "byte {special:#x} at {at}"
                );
            }
        }
        // Bytes just above the control range and up to 0x7f are plain.
        let plain = " !#~ abcdefgh\x7f".as_bytes();
        assert_eq!(skip_plain_string_bytes(plain, 0), plain.len());
    }

    #[test]
    fn non_ascii_text_is_checked_as_it_is_read() {
        let t = table(&["a", "é"]);
        let mut s = RecordScanner::default();
        // Valid UTF-8, with and without escapes, in keys and values, captured or not.
        for record in [
            r#"{"a":"café €𝄞","b":"ñ"}"#,
            r#"{"b":"x\"é","a":"€\n𝄞é"}"#,
            r#"{"é":"ü","a":"ok"}"#,
        ] {
            assert!(s.scan(&t, record.as_bytes()).is_ok(), "{record}");
        }
        assert_eq!(values(&["a"], r#"{"a":"café €𝄞"}"#, "a"), ["café €𝄞"]);
        assert_eq!(values(&["a"], r#"{"a":"x\té"}"#, "a"), ["x\té"]);
        assert_eq!(values(&["é"], r#"{"é":"ü"}"#, "é"), ["ü"]);
        // Invalid UTF-8 anywhere in a string is an error at its offset, even in a field
        // that is not read: the record passes unread rather than half read.
        for (record, offset) in [
            (&b"{\"b\":\"ab\xff\",\"a\":\"x\"}"[..], 8),
            (b"{\"b\":\"\xc3(\"}", 6),
            (b"{\"b\":\"x\\n\xe2\x82\"}", 9),
            (b"{\"b\xc3\":1}", 3),
            (b"{\"b\":\"\xed\xa0\x80\"}", 6),
        ] {
            assert_eq!(
                s.scan(&t, record).err(),
                Some(ReadError::Invalid { offset }),
                "{}",
                String::from_utf8_lossy(record)
            );
        }
    }

    #[test]
    fn same_bytes_compares_words_and_tails() {
        assert!(same_bytes(
            b"InitiatingProcessFileName",
            b"InitiatingProcessFileName"
        ));
        assert!(!same_bytes(
            b"InitiatingProcessFileName",
            b"InitiatingProcessFileNamf"
        ));
        assert!(!same_bytes(
            b"xnitiatingProcessFileName",
            b"InitiatingProcessFileName"
        ));
        assert!(!same_bytes(b"abc", b"abcd"));
        assert!(same_bytes(b"", b""));
    }

    #[test]
    fn lone_surrogate_becomes_replacement_character() {
        assert_eq!(values(&["a"], r#"{"a":"x\ud800y"}"#, "a"), ["x\u{FFFD}y"]);
    }

    #[test]
    fn refuses_what_is_not_a_json_object() {
        let t = table(&["a"]);
        let mut s = RecordScanner::default();
        for (input, expected) in [
            ("[1,2]", ReadError::NotAnObject),
            ("\"text\"", ReadError::NotAnObject),
            ("", ReadError::NotAnObject),
            ("{\"a\":1", ReadError::Invalid { offset: 6 }),
            ("{\"a\":01}", ReadError::Invalid { offset: 6 }),
            ("{\"a\":1,}", ReadError::Invalid { offset: 7 }),
            ("{\"a\":tru}", ReadError::Invalid { offset: 5 }),
            ("{\"a\":1} x", ReadError::Invalid { offset: 8 }),
            ("{\"a\":\"\\x\"}", ReadError::Invalid { offset: 7 }),
            ("not json", ReadError::NotAnObject),
        ] {
            assert_eq!(
                s.scan(&t, input.as_bytes()).err(),
                Some(expected),
                "{input:?}"
            );
        }
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let t = table(&["a"]);
        let mut s = RecordScanner::default();
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(s.scan(&t, deep.as_bytes()).err(), Some(ReadError::TooDeep));
        let ok = format!("{{\"b\":{}1{}}}", "[".repeat(500), "]".repeat(500));
        assert!(s.scan(&t, ok.as_bytes()).is_ok());
    }

    #[test]
    fn reports_shape_for_enrichment() {
        let t = table(&["a"]);
        let mut s = RecordScanner::default();
        let rec = br#" {"a":1, "b":{"c":2}} "#;
        let scanned = s.scan(&t, rec).unwrap();
        assert_eq!(scanned.top_level_keys(), 2);
        assert_eq!(scanned.closing_brace(), rec.len() - 2);
        let empty = s.scan(&t, b"{}").unwrap();
        assert_eq!(empty.top_level_keys(), 0);
    }

    #[test]
    fn presence_counts_objects_and_nulls() {
        let t = table(&["a", "b", "c"]);
        let mut s = RecordScanner::default();
        let scanned = s.scan(&t, br#"{"a":{"x":1},"b":null}"#).unwrap();
        assert!(scanned.has(t.get("a").unwrap()));
        assert!(scanned.has(t.get("b").unwrap()));
        assert!(!scanned.has(t.get("c").unwrap()));
    }
}
