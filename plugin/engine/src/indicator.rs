//! The indicator set: indicators stored by how they are matched, with their metadata.
//!
//! Each kind has its own hash index keyed by the normalised binary value (a `u32` for an
//! IPv4 address, 32 bytes for a SHA-256), so a lookup hashes a few bytes and compares no
//! text. Metadata that many indicators share (threat type, malware family, tags, feed) is
//! stored once as a [`Context`] and referenced by number, which keeps an indicator with its
//! metadata well under 100 bytes.

use std::net::IpAddr;

use rustc_hash::FxHashMap;

use crate::normalize::{format_ip_port, to_hex};

/// What an indicator is, and so how it is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// An IPv4 address, matched on any port.
    Ipv4,
    /// An IPv6 address, matched on any port.
    Ipv6,
    /// An address with a port, matched on both together.
    IpPort,
    Md5,
    Sha1,
    Sha256,
}

impl Kind {
    /// Every kind, in the order counters report them.
    pub const ALL: [Kind; 6] = [
        Kind::Ipv4,
        Kind::Ipv6,
        Kind::IpPort,
        Kind::Md5,
        Kind::Sha1,
        Kind::Sha256,
    ];

    /// The name used in output and statistics.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ipv4 => "ipv4",
            Kind::Ipv6 => "ipv6",
            Kind::IpPort => "ip:port",
            Kind::Md5 => "md5",
            Kind::Sha1 => "sha1",
            Kind::Sha256 => "sha256",
        }
    }

    /// The position of the kind in [`Kind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The normalised value of an indicator: what it is looked up by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IndicatorValue {
    Ip(IpAddr),
    IpPort(IpAddr, u16),
    Md5([u8; 16]),
    Sha1([u8; 20]),
    Sha256([u8; 32]),
}

impl IndicatorValue {
    /// The kind this value is.
    pub fn kind(&self) -> Kind {
        match self {
            IndicatorValue::Ip(IpAddr::V4(_)) => Kind::Ipv4,
            IndicatorValue::Ip(IpAddr::V6(_)) => Kind::Ipv6,
            IndicatorValue::IpPort(..) => Kind::IpPort,
            IndicatorValue::Md5(_) => Kind::Md5,
            IndicatorValue::Sha1(_) => Kind::Sha1,
            IndicatorValue::Sha256(_) => Kind::Sha256,
        }
    }
}

impl std::fmt::Display for IndicatorValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IndicatorValue::Ip(addr) => write!(f, "{addr}"),
            IndicatorValue::IpPort(addr, port) => f.write_str(&format_ip_port(*addr, *port)),
            IndicatorValue::Md5(h) => f.write_str(&to_hex(h)),
            IndicatorValue::Sha1(h) => f.write_str(&to_hex(h)),
            IndicatorValue::Sha256(h) => f.write_str(&to_hex(h)),
        }
    }
}

/// Metadata shared by many indicators of a feed: stored once, referenced by number.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Context {
    /// The index of the feed in the detector's feed list.
    pub feed: u16,
    pub threat_type: Box<str>,
    pub malware: Box<str>,
    pub malware_printable: Box<str>,
    pub malware_alias: Box<str>,
    pub tags: Box<[Box<str>]>,
    pub reference: Box<str>,
}

/// Everything a feed says about one indicator, before it is stored.
#[derive(Debug, Clone, Default)]
pub struct IndicatorInfo {
    pub context: Context,
    pub id: String,
    /// 0-100.
    pub confidence: Option<u8>,
    /// Seconds since the Unix epoch.
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    /// The indicator does not match from this time on.
    pub valid_until: Option<i64>,
}

/// An index into the indicator entries.
pub type EntryId = u32;
const NO_ENTRY: EntryId = EntryId::MAX;
/// Times are stored as unsigned seconds (until 2106); 0 stands for "not given".
const NO_TIME: u32 = 0;

/// One stored indicator. Several entries may share a value (the same address reported
/// twice); they are chained through `next_same_value`.
#[derive(Debug, Clone)]
struct Entry {
    context: u32,
    id_start: u32,
    id_len: u16,
    confidence: u8,
    kind: Kind,
    first_seen: u32,
    last_seen: u32,
    valid_until: u32,
    next_same_value: EntryId,
}

/// A stored indicator, as read back for a verdict.
#[derive(Debug, Clone, Copy)]
pub struct IndicatorRef<'a> {
    pub kind: Kind,
    pub context: &'a Context,
    pub id: &'a str,
    pub confidence: Option<u8>,
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    pub valid_until: Option<i64>,
}

/// The indicators of a detector, indexed by kind.
#[derive(Debug, Default)]
pub struct IndicatorSet {
    v4: FxHashMap<u32, EntryId>,
    v6: FxHashMap<u128, EntryId>,
    v4_port: FxHashMap<u64, EntryId>,
    v6_port: FxHashMap<(u128, u16), EntryId>,
    md5: FxHashMap<[u8; 16], EntryId>,
    sha1: FxHashMap<[u8; 20], EntryId>,
    sha256: FxHashMap<[u8; 32], EntryId>,
    /// ip:port indicators by their address alone; built only when address-only matching
    /// is switched on.
    port_addresses: Option<FxHashMap<IpAddr, Vec<(u16, EntryId)>>>,
    entries: Vec<Entry>,
    ids: String,
    contexts: Vec<Context>,
    context_index: FxHashMap<Context, u32>,
    counts: [u64; Kind::ALL.len()],
}

impl IndicatorSet {
    /// Adds an indicator. Returns false if the same value with the same id and context was
    /// already there (a feed listing an entry twice).
    pub fn insert(&mut self, value: IndicatorValue, info: IndicatorInfo) -> bool {
        let context = match self.context_index.get(&info.context) {
            Some(&n) => n,
            None => {
                let n = u32::try_from(self.contexts.len()).expect("fewer than 2^32 contexts");
                self.contexts.push(info.context.clone());
                self.context_index.insert(info.context, n);
                n
            }
        };
        let id = EntryId::try_from(self.entries.len()).expect("fewer than 2^32 indicators");
        let head = match value {
            IndicatorValue::Ip(IpAddr::V4(a)) => self.v4.entry(u32::from(a)).or_insert(NO_ENTRY),
            IndicatorValue::Ip(IpAddr::V6(a)) => self.v6.entry(u128::from(a)).or_insert(NO_ENTRY),
            IndicatorValue::IpPort(IpAddr::V4(a), p) => self
                .v4_port
                .entry(v4_port_key(u32::from(a), p))
                .or_insert(NO_ENTRY),
            IndicatorValue::IpPort(IpAddr::V6(a), p) => {
                self.v6_port.entry((u128::from(a), p)).or_insert(NO_ENTRY)
            }
            IndicatorValue::Md5(h) => self.md5.entry(h).or_insert(NO_ENTRY),
            IndicatorValue::Sha1(h) => self.sha1.entry(h).or_insert(NO_ENTRY),
            IndicatorValue::Sha256(h) => self.sha256.entry(h).or_insert(NO_ENTRY),
        };

        // A repeated entry (same id and context) is not stored twice.
        let mut cursor = *head;
        while cursor != NO_ENTRY {
            let e = &self.entries[cursor as usize];
            let same_id = self.ids[e.id_start as usize..][..usize::from(e.id_len)] == info.id;
            if same_id && e.context == context {
                return false;
            }
            cursor = e.next_same_value;
        }

        let previous = std::mem::replace(head, id);
        let id_start = u32::try_from(self.ids.len()).expect("ids fit in 4 GiB");
        let id_text = truncate_utf8(&info.id, usize::from(u16::MAX));
        self.ids.push_str(id_text);
        self.entries.push(Entry {
            context,
            id_start,
            id_len: id_text.len() as u16,
            confidence: info.confidence.unwrap_or(u8::MAX),
            kind: value.kind(),
            first_seen: to_stored_time(info.first_seen),
            last_seen: to_stored_time(info.last_seen),
            valid_until: to_stored_time(info.valid_until),
            next_same_value: previous,
        });
        self.counts[value.kind().index()] += 1;
        true
    }

    /// Builds the index that address-only matching of ip:port indicators needs.
    pub fn index_port_addresses(&mut self) {
        let mut index: FxHashMap<IpAddr, Vec<(u16, EntryId)>> = FxHashMap::default();
        for (&key, &head) in &self.v4_port {
            let (addr, port) = split_v4_port_key(key);
            index
                .entry(IpAddr::V4(addr.into()))
                .or_default()
                .push((port, head));
        }
        for (&(addr, port), &head) in &self.v6_port {
            index
                .entry(IpAddr::V6(addr.into()))
                .or_default()
                .push((port, head));
        }
        self.port_addresses = Some(index);
    }

    /// Frees the spare capacity left by loading.
    pub fn shrink_to_fit(&mut self) {
        self.v4.shrink_to_fit();
        self.v6.shrink_to_fit();
        self.v4_port.shrink_to_fit();
        self.v6_port.shrink_to_fit();
        self.md5.shrink_to_fit();
        self.sha1.shrink_to_fit();
        self.sha256.shrink_to_fit();
        self.entries.shrink_to_fit();
        self.ids.shrink_to_fit();
        self.contexts.shrink_to_fit();
        // The context index is only needed while loading.
        self.context_index = FxHashMap::default();
    }

    /// The number of indicators of each kind, in [`Kind::ALL`] order.
    pub fn counts(&self) -> [u64; Kind::ALL.len()] {
        self.counts
    }

    /// The total number of indicators.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The head of the chain of entries with exactly this value.
    pub fn lookup(&self, value: &IndicatorValue) -> Option<EntryId> {
        let head = match value {
            IndicatorValue::Ip(IpAddr::V4(a)) => self.v4.get(&u32::from(*a)),
            IndicatorValue::Ip(IpAddr::V6(a)) => self.v6.get(&u128::from(*a)),
            IndicatorValue::IpPort(IpAddr::V4(a), p) => {
                self.v4_port.get(&v4_port_key(u32::from(*a), *p))
            }
            IndicatorValue::IpPort(IpAddr::V6(a), p) => self.v6_port.get(&(u128::from(*a), *p)),
            IndicatorValue::Md5(h) => self.md5.get(h),
            IndicatorValue::Sha1(h) => self.sha1.get(h),
            IndicatorValue::Sha256(h) => self.sha256.get(h),
        };
        head.copied()
    }

    /// Whether a lookup of an address or ip:port could find anything: lets the matcher skip
    /// work for records when no network indicators are loaded.
    pub fn has_network_indicators(&self) -> bool {
        !(self.v4.is_empty()
            && self.v6.is_empty()
            && self.v4_port.is_empty()
            && self.v6_port.is_empty())
    }

    /// Whether any hash indicators are loaded.
    pub fn has_hash_indicators(&self) -> bool {
        !(self.md5.is_empty() && self.sha1.is_empty() && self.sha256.is_empty())
    }

    /// Every ip:port indicator with this address, with its port, when the address-only
    /// index was built.
    pub fn lookup_port_address(&self, addr: IpAddr) -> &[(u16, EntryId)] {
        self.port_addresses
            .as_ref()
            .and_then(|i| i.get(&addr))
            .map_or(&[], Vec::as_slice)
    }

    /// The entries chained from `head`.
    pub fn chain(&self, head: EntryId) -> impl Iterator<Item = EntryId> + '_ {
        std::iter::successors(Some(head), |&id| {
            let next = self.entries[id as usize].next_same_value;
            (next != NO_ENTRY).then_some(next)
        })
    }

    /// Reads an entry back.
    pub fn get(&self, id: EntryId) -> IndicatorRef<'_> {
        let e = &self.entries[id as usize];
        IndicatorRef {
            kind: e.kind,
            context: &self.contexts[e.context as usize],
            id: &self.ids[e.id_start as usize..][..usize::from(e.id_len)],
            confidence: (e.confidence != u8::MAX).then_some(e.confidence),
            first_seen: from_stored_time(e.first_seen),
            last_seen: from_stored_time(e.last_seen),
            valid_until: from_stored_time(e.valid_until),
        }
    }

    /// Whether the entry is valid at `now`.
    pub fn is_active(&self, id: EntryId, now: i64) -> bool {
        let until = self.entries[id as usize].valid_until;
        until == NO_TIME || now < i64::from(until)
    }

    /// Approximate heap bytes held, for the load benchmark.
    pub fn heap_bytes(&self) -> usize {
        fn map<K, V>(m: &FxHashMap<K, V>) -> usize {
            // hashbrown: one control byte per bucket plus the (key, value) pairs.
            m.capacity() * (std::mem::size_of::<(K, V)>() + 1)
        }
        let contexts: usize = self
            .contexts
            .iter()
            .map(|c| {
                std::mem::size_of::<Context>()
                    + c.threat_type.len()
                    + c.malware.len()
                    + c.malware_printable.len()
                    + c.malware_alias.len()
                    + c.reference.len()
                    + c.tags.iter().map(|t| t.len() + 16).sum::<usize>()
            })
            .sum();
        map(&self.v4)
            + map(&self.v6)
            + map(&self.v4_port)
            + map(&self.v6_port)
            + map(&self.md5)
            + map(&self.sha1)
            + map(&self.sha256)
            + self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.ids.capacity()
            + contexts
    }
}

/// Reading the whole set back, for reports such as the hunting rule.
impl IndicatorSet {
    /// Every stored indicator with its value, in no particular order. Entries that share
    /// a value (reported twice, or by two feeds) each appear once.
    pub fn iter(&self) -> impl Iterator<Item = (IndicatorValue, IndicatorRef<'_>)> + '_ {
        let v4 = self
            .v4
            .iter()
            .map(|(&a, &h)| (IndicatorValue::Ip(IpAddr::V4(a.into())), h));
        let v6 = self
            .v6
            .iter()
            .map(|(&a, &h)| (IndicatorValue::Ip(IpAddr::V6(a.into())), h));
        let v4_port = self.v4_port.iter().map(|(&key, &h)| {
            let (addr, port) = split_v4_port_key(key);
            (IndicatorValue::IpPort(IpAddr::V4(addr.into()), port), h)
        });
        let v6_port = self
            .v6_port
            .iter()
            .map(|(&(a, p), &h)| (IndicatorValue::IpPort(IpAddr::V6(a.into()), p), h));
        let md5 = self.md5.iter().map(|(&x, &h)| (IndicatorValue::Md5(x), h));
        let sha1 = self
            .sha1
            .iter()
            .map(|(&x, &h)| (IndicatorValue::Sha1(x), h));
        let sha256 = self
            .sha256
            .iter()
            .map(|(&x, &h)| (IndicatorValue::Sha256(x), h));
        v4.chain(v6)
            .chain(v4_port)
            .chain(v6_port)
            .chain(md5)
            .chain(sha1)
            .chain(sha256)
            .flat_map(move |(value, head)| self.chain(head).map(move |id| (value, self.get(id))))
    }
}

fn v4_port_key(addr: u32, port: u16) -> u64 {
    u64::from(addr) << 16 | u64::from(port)
}

fn split_v4_port_key(key: u64) -> (u32, u16) {
    ((key >> 16) as u32, key as u16)
}

fn to_stored_time(t: Option<i64>) -> u32 {
    t.map_or(NO_TIME, |t| u32::try_from(t.max(1)).unwrap_or(u32::MAX))
}

fn from_stored_time(t: u32) -> Option<i64> {
    (t != NO_TIME).then_some(i64::from(t))
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str, malware: &str) -> IndicatorInfo {
        IndicatorInfo {
            context: Context {
                malware: malware.into(),
                ..Context::default()
            },
            id: id.into(),
            confidence: Some(75),
            ..IndicatorInfo::default()
        }
    }

    #[test]
    fn finds_each_kind_by_value() {
        let mut set = IndicatorSet::default();
        let ip: IpAddr = "194.48.251.24".parse().unwrap();
        let values = [
            IndicatorValue::Ip(ip),
            IndicatorValue::IpPort(ip, 80),
            IndicatorValue::Ip("2001:db8::1".parse().unwrap()),
            IndicatorValue::Sha256([7; 32]),
        ];
        for (n, v) in values.iter().enumerate() {
            assert!(set.insert(*v, info(&n.to_string(), "m")));
        }
        for v in &values {
            let head = set.lookup(v).expect("stored value is found");
            assert_eq!(set.get(head).kind, v.kind());
        }
        assert!(set.lookup(&IndicatorValue::IpPort(ip, 81)).is_none());
        assert!(set.lookup(&IndicatorValue::Sha256([8; 32])).is_none());
    }

    #[test]
    fn chains_entries_with_the_same_value_and_drops_exact_repeats() {
        let mut set = IndicatorSet::default();
        let v = IndicatorValue::Md5([1; 16]);
        assert!(set.insert(v, info("1", "a")));
        assert!(set.insert(v, info("2", "b")));
        assert!(!set.insert(v, info("1", "a")));
        let head = set.lookup(&v).unwrap();
        let ids: Vec<_> = set.chain(head).map(|e| set.get(e).id.to_string()).collect();
        assert_eq!(ids, ["2", "1"]);
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn shares_contexts() {
        let mut set = IndicatorSet::default();
        for n in 0..100u8 {
            set.insert(IndicatorValue::Md5([n; 16]), info(&n.to_string(), "same"));
        }
        assert_eq!(set.contexts.len(), 1);
    }

    #[test]
    fn iter_reads_every_entry_back_with_its_value() {
        let mut set = IndicatorSet::default();
        let ip: IpAddr = "194.48.251.24".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let values = [
            IndicatorValue::Ip(ip),
            IndicatorValue::Ip(v6),
            IndicatorValue::IpPort(ip, 80),
            IndicatorValue::IpPort(v6, 443),
            IndicatorValue::Md5([1; 16]),
            IndicatorValue::Sha1([2; 20]),
            IndicatorValue::Sha256([3; 32]),
        ];
        for (n, v) in values.iter().enumerate() {
            set.insert(*v, info(&n.to_string(), "m"));
        }
        set.insert(values[2], info("again", "other"));
        let mut read: Vec<(String, String)> = set
            .iter()
            .map(|(v, e)| (v.to_string(), e.id.to_string()))
            .collect();
        read.sort();
        let mut want: Vec<(String, String)> = values
            .iter()
            .enumerate()
            .map(|(n, v)| (v.to_string(), n.to_string()))
            .collect();
        want.push(("194.48.251.24:80".into(), "again".into()));
        want.sort();
        assert_eq!(read, want);
        assert!(set.iter().all(|(v, e)| v.kind() == e.kind));
    }

    #[test]
    fn address_only_index_lists_ports() {
        let mut set = IndicatorSet::default();
        let ip: IpAddr = "1.2.3.4".parse().unwrap();
        set.insert(IndicatorValue::IpPort(ip, 80), info("1", "m"));
        set.insert(IndicatorValue::IpPort(ip, 443), info("2", "m"));
        set.index_port_addresses();
        let mut ports: Vec<u16> = set
            .lookup_port_address(ip)
            .iter()
            .map(|&(p, _)| p)
            .collect();
        ports.sort();
        assert_eq!(ports, [80, 443]);
    }
}
