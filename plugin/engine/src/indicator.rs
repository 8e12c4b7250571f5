//! The indicator set: indicators stored by how they are matched, with their metadata.
//!
//! Each kind has its own hash index keyed by the normalised binary value (a `u32` for an
//! IPv4 address, 32 bytes for a SHA-256), so a lookup hashes a few bytes and compares no
//! text. Metadata that many indicators share (threat type, malware family, tags, feed) is
//! stored once as a [`Context`] and referenced by number, which keeps an indicator with its
//! metadata well under 100 bytes.

use std::hash::BuildHasher;
use std::net::IpAddr;

use hashbrown::HashTable;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use rustc_hash::{FxBuildHasher, FxHashMap};

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
    /// An IPv4 network: every address inside matches.
    Ipv4Cidr,
    /// An IPv6 network: every address inside matches.
    Ipv6Cidr,
    /// A domain name, matched exactly or with its subdomains as the feed says.
    Domain,
    /// A URL, normalised.
    Url,
}

impl Kind {
    /// Every kind, in the order counters report them.
    pub const ALL: [Kind; 10] = [
        Kind::Ipv4,
        Kind::Ipv6,
        Kind::IpPort,
        Kind::Md5,
        Kind::Sha1,
        Kind::Sha256,
        Kind::Ipv4Cidr,
        Kind::Ipv6Cidr,
        Kind::Domain,
        Kind::Url,
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
            Kind::Ipv4Cidr => "ipv4-cidr",
            Kind::Ipv6Cidr => "ipv6-cidr",
            Kind::Domain => "domain",
            Kind::Url => "url",
        }
    }

    /// The group a minimum confidence is set for: `ip`, `domain`, `url` or `hash`.
    pub fn confidence_group(self) -> &'static str {
        match self {
            Kind::Ipv4 | Kind::Ipv6 | Kind::IpPort | Kind::Ipv4Cidr | Kind::Ipv6Cidr => "ip",
            Kind::Md5 | Kind::Sha1 | Kind::Sha256 => "hash",
            Kind::Domain => "domain",
            Kind::Url => "url",
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
    /// A network wider than one address (a single-address network is stored as `Ip`).
    Net(IpNet),
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
            IndicatorValue::Net(IpNet::V4(_)) => Kind::Ipv4Cidr,
            IndicatorValue::Net(IpNet::V6(_)) => Kind::Ipv6Cidr,
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
            IndicatorValue::Net(net) => write!(f, "{net}"),
        }
    }
}

/// A stored indicator's value as read back: a binary value, or the text of a domain or URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredValue {
    Value(IndicatorValue),
    Text(Kind, String),
}

impl StoredValue {
    /// The kind of the value.
    pub fn kind(&self) -> Kind {
        match self {
            StoredValue::Value(v) => v.kind(),
            StoredValue::Text(kind, _) => *kind,
        }
    }
}

impl std::fmt::Display for StoredValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoredValue::Value(v) => v.fmt(f),
            StoredValue::Text(_, text) => f.write_str(text),
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
    /// The indicator does not match before this time.
    pub valid_from: Option<i64>,
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
    valid_from: u32,
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
    pub valid_from: Option<i64>,
    pub valid_until: Option<i64>,
}

/// Whether an indicator applies at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    Active,
    NotYetValid,
    Expired,
}

/// Text values (domains, URLs) stored once in an arena and found through a hash table of
/// `(start, len, head)`: 12 bytes per value plus the text, instead of a `String` each.
#[derive(Debug, Default)]
struct TextIndex {
    table: HashTable<(u32, u32, EntryId)>,
    arena: String,
}

impl TextIndex {
    fn hash(text: &str) -> u64 {
        FxBuildHasher.hash_one(text)
    }

    /// Every stored text with the head of its chain.
    fn iter(&self) -> impl Iterator<Item = (&str, EntryId)> + '_ {
        self.table
            .iter()
            .map(|&(start, len, head)| (self.text(start, len), head))
    }

    fn text(&self, start: u32, len: u32) -> &str {
        &self.arena[start as usize..][..len as usize]
    }

    fn get(&self, text: &str) -> Option<EntryId> {
        self.table
            .find(Self::hash(text), |&(s, l, _)| self.text(s, l) == text)
            .map(|&(_, _, head)| head)
    }

    fn head_mut(&mut self, text: &str) -> &mut EntryId {
        let hash = Self::hash(text);
        let TextIndex { table, arena } = self;
        let entry = table.entry(
            hash,
            |&(s, l, _)| &arena[s as usize..][..l as usize] == text,
            |&(s, l, _)| Self::hash(&arena[s as usize..][..l as usize]),
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(o) => &mut o.into_mut().2,
            hashbrown::hash_table::Entry::Vacant(v) => {
                let start = u32::try_from(arena.len()).expect("text values fit in 4 GiB");
                arena.push_str(text);
                &mut v.insert((start, text.len() as u32, NO_ENTRY)).into_mut().2
            }
        }
    }

    fn shrink_to_fit(&mut self) {
        let TextIndex { table, arena } = self;
        table.shrink_to_fit(|&(s, l, _)| Self::hash(&arena[s as usize..][..l as usize]));
        arena.shrink_to_fit();
    }

    fn heap_bytes(&self) -> usize {
        self.table.capacity() * (std::mem::size_of::<(u32, u32, EntryId)>() + 1)
            + self.arena.capacity()
    }

    fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

/// Networks of one address family, one hash map per prefix length, keyed by the network
/// address. A lookup probes only the lengths that hold networks, longest first, so it
/// costs one hash probe per distinct length whatever the number of networks.
#[derive(Debug)]
struct NetIndex<K> {
    by_len: Vec<FxHashMap<K, EntryId>>,
    /// The prefix lengths that hold networks, longest first.
    lens: Vec<u8>,
}

impl<K> Default for NetIndex<K> {
    fn default() -> Self {
        NetIndex {
            by_len: Vec::new(),
            lens: Vec::new(),
        }
    }
}

impl<K: std::hash::Hash + Eq + Copy> NetIndex<K> {
    fn head_mut(&mut self, key: K, len: u8) -> &mut EntryId {
        let at = usize::from(len);
        if self.by_len.len() <= at {
            self.by_len.resize_with(at + 1, FxHashMap::default);
        }
        if !self.lens.contains(&len) {
            self.lens.push(len);
            self.lens.sort_unstable_by(|a, b| b.cmp(a));
        }
        self.by_len[at].entry(key).or_insert(NO_ENTRY)
    }

    /// The networks of the index that hold an address, most specific first, as network
    /// key, prefix length and chain head; `network_of` gives the address's network at a
    /// prefix length.
    fn holding<'a>(
        &'a self,
        network_of: impl Fn(u8) -> K + 'a,
    ) -> impl Iterator<Item = (K, u8, EntryId)> + 'a {
        self.lens.iter().filter_map(move |&len| {
            let key = network_of(len);
            self.get(key, len).map(|head| (key, len, head))
        })
    }

    fn get(&self, key: K, len: u8) -> Option<EntryId> {
        self.by_len.get(usize::from(len))?.get(&key).copied()
    }

    fn shrink_to_fit(&mut self) {
        self.by_len.iter_mut().for_each(FxHashMap::shrink_to_fit);
    }

    fn heap_bytes(&self) -> usize {
        self.by_len
            .iter()
            .map(|m| m.capacity() * (std::mem::size_of::<(K, EntryId)>() + 1))
            .sum()
    }

    fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }
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
    nets4: NetIndex<u32>,
    nets6: NetIndex<u128>,
    domains: TextIndex,
    urls: TextIndex,
    /// ip:port indicators by their address alone; built only when address-only matching
    /// is switched on.
    port_addresses: Option<FxHashMap<IpAddr, Vec<(u16, EntryId)>>>,
    entries: Vec<Entry>,
    ids: String,
    contexts: Vec<Context>,
    /// Contexts by a 128-bit fingerprint of their value, while loading. Comparing
    /// fingerprints rather than the contexts' strings keeps a lookup to one probe of a small
    /// table: the strings lie scattered in the heap, and a load streaming through hundreds
    /// of megabytes of feed text would miss the cache on each of them. Two different
    /// contexts share a fingerprint with a probability of about 2^-128 (two 64-bit hashes
    /// with independent seeds).
    context_index: FxHashMap<u128, u32>,
    counts: [u64; Kind::ALL.len()],
}

impl IndicatorSet {
    /// Adds an indicator. Returns false if the same value with the same id and context was
    /// already there (a feed listing an entry twice).
    pub fn insert(&mut self, value: IndicatorValue, info: IndicatorInfo) -> bool {
        let context = self.context_of(&info);
        let kind = value.kind();
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
            IndicatorValue::Net(IpNet::V4(n)) => {
                self.nets4.head_mut(u32::from(n.network()), n.prefix_len())
            }
            IndicatorValue::Net(IpNet::V6(n)) => {
                self.nets6.head_mut(u128::from(n.network()), n.prefix_len())
            }
        };
        Self::store(
            head,
            &mut self.entries,
            &mut self.ids,
            &mut self.counts,
            kind,
            context,
            info,
        )
    }

    /// Adds a domain (`Kind::Domain`, normalised) or URL (`Kind::Url`, normalised)
    /// indicator. Returns false for a repeated entry.
    pub fn insert_text(&mut self, kind: Kind, text: &str, info: IndicatorInfo) -> bool {
        let context = self.context_of(&info);
        let head = match kind {
            Kind::Domain => self.domains.head_mut(text),
            Kind::Url => self.urls.head_mut(text),
            other => panic!("{} is not a text kind", other.name()),
        };
        Self::store(
            head,
            &mut self.entries,
            &mut self.ids,
            &mut self.counts,
            kind,
            context,
            info,
        )
    }

    fn context_of(&mut self, info: &IndicatorInfo) -> u32 {
        let fingerprint = fingerprint(&info.context);
        match self.context_index.get(&fingerprint) {
            Some(&n) => n,
            None => {
                let n = u32::try_from(self.contexts.len()).expect("fewer than 2^32 contexts");
                self.contexts.push(info.context.clone());
                self.context_index.insert(fingerprint, n);
                n
            }
        }
    }

    fn store(
        head: &mut EntryId,
        entries: &mut Vec<Entry>,
        ids: &mut String,
        counts: &mut [u64; Kind::ALL.len()],
        kind: Kind,
        context: u32,
        info: IndicatorInfo,
    ) -> bool {
        let id = EntryId::try_from(entries.len()).expect("fewer than 2^32 indicators");
        // A repeated entry (same id and context) is not stored twice.
        let mut cursor = *head;
        while cursor != NO_ENTRY {
            let e = &entries[cursor as usize];
            let same_id = ids[e.id_start as usize..][..usize::from(e.id_len)] == info.id;
            if same_id && e.context == context {
                return false;
            }
            cursor = e.next_same_value;
        }

        let previous = std::mem::replace(head, id);
        let id_start = u32::try_from(ids.len()).expect("ids fit in 4 GiB");
        let id_text = truncate_utf8(&info.id, usize::from(u16::MAX));
        ids.push_str(id_text);
        entries.push(Entry {
            context,
            id_start,
            id_len: id_text.len() as u16,
            confidence: info.confidence.unwrap_or(u8::MAX),
            kind,
            first_seen: to_stored_time(info.first_seen),
            last_seen: to_stored_time(info.last_seen),
            valid_from: to_stored_time(info.valid_from),
            valid_until: to_stored_time(info.valid_until),
            next_same_value: previous,
        });
        counts[kind.index()] += 1;
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
        self.nets4.shrink_to_fit();
        self.nets6.shrink_to_fit();
        self.domains.shrink_to_fit();
        self.urls.shrink_to_fit();
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
            IndicatorValue::Net(IpNet::V4(n)) => {
                return self.nets4.get(u32::from(n.network()), n.prefix_len());
            }
            IndicatorValue::Net(IpNet::V6(n)) => {
                return self.nets6.get(u128::from(n.network()), n.prefix_len());
            }
        };
        head.copied()
    }

    /// The head of the chain of domain (`Kind::Domain`) or URL (`Kind::Url`) entries with
    /// exactly this normalised text.
    pub fn lookup_text(&self, kind: Kind, text: &str) -> Option<EntryId> {
        match kind {
            Kind::Domain => self.domains.get(text),
            Kind::Url => self.urls.get(text),
            _ => None,
        }
    }

    /// Every network indicator holding `addr`, most specific first, calling `found` with
    /// the network and the head of its chain.
    pub fn lookup_networks(&self, addr: IpAddr, mut found: impl FnMut(IpNet, EntryId)) {
        // The network of a prefix length: the address with its host bits cleared.
        match addr {
            IpAddr::V4(a) => {
                let bits = u32::from(a);
                let network_of = |len: u8| bits & !u32::MAX.checked_shr(len.into()).unwrap_or(0);
                for (key, len, head) in self.nets4.holding(network_of) {
                    let net = Ipv4Net::new(key.into(), len).expect("prefix length <= 32");
                    found(IpNet::V4(net), head);
                }
            }
            IpAddr::V6(a) => {
                let bits = u128::from(a);
                let network_of = |len: u8| bits & !u128::MAX.checked_shr(len.into()).unwrap_or(0);
                for (key, len, head) in self.nets6.holding(network_of) {
                    let net = Ipv6Net::new(key.into(), len).expect("prefix length <= 128");
                    found(IpNet::V6(net), head);
                }
            }
        }
    }

    /// Whether any network indicators are loaded.
    pub fn has_networks(&self) -> bool {
        !(self.nets4.is_empty() && self.nets6.is_empty())
    }

    /// Whether any domain indicators are loaded.
    pub fn has_domains(&self) -> bool {
        !self.domains.is_empty()
    }

    /// Whether any URL indicators are loaded.
    pub fn has_urls(&self) -> bool {
        !self.urls.is_empty()
    }

    /// Whether a lookup of an address or ip:port could find anything: lets the matcher skip
    /// work for records when no network indicators are loaded.
    pub fn has_network_indicators(&self) -> bool {
        !(self.v4.is_empty()
            && self.v6.is_empty()
            && self.v4_port.is_empty()
            && self.v6_port.is_empty()
            && self.nets4.is_empty()
            && self.nets6.is_empty())
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
            valid_from: from_stored_time(e.valid_from),
            valid_until: from_stored_time(e.valid_until),
        }
    }

    /// The feed index of an entry, without reading the rest.
    pub fn feed_of(&self, id: EntryId) -> u16 {
        self.contexts[self.entries[id as usize].context as usize].feed
    }

    /// Whether the entry applies at `now`.
    pub fn validity(&self, id: EntryId, now: i64) -> Validity {
        let e = &self.entries[id as usize];
        if e.valid_until != NO_TIME && now >= i64::from(e.valid_until) {
            Validity::Expired
        } else if e.valid_from != NO_TIME && now < i64::from(e.valid_from) {
            Validity::NotYetValid
        } else {
            Validity::Active
        }
    }

    /// Whether the entry is valid at `now`.
    pub fn is_active(&self, id: EntryId, now: i64) -> bool {
        self.validity(id, now) == Validity::Active
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
            + self.nets4.heap_bytes()
            + self.nets6.heap_bytes()
            + self.domains.heap_bytes()
            + self.urls.heap_bytes()
            + self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.ids.capacity()
            + contexts
    }
}

/// Reading the whole set back, for reports such as the hunting rule.
impl IndicatorSet {
    /// Every stored indicator with its value, in no particular order. Entries that share
    /// a value (reported twice, or by two feeds) each appear once.
    pub fn iter(&self) -> impl Iterator<Item = (StoredValue, IndicatorRef<'_>)> + '_ {
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
        let nets4 = self.nets4.by_len.iter().enumerate().flat_map(|(len, map)| {
            map.iter().filter_map(move |(&net, &h)| {
                let net = ipnet::Ipv4Net::new(net.into(), len as u8).ok()?;
                Some((IndicatorValue::Net(IpNet::V4(net)), h))
            })
        });
        let nets6 = self.nets6.by_len.iter().enumerate().flat_map(|(len, map)| {
            map.iter().filter_map(move |(&net, &h)| {
                let net = ipnet::Ipv6Net::new(net.into(), len as u8).ok()?;
                Some((IndicatorValue::Net(IpNet::V6(net)), h))
            })
        });
        let texts = self
            .domains
            .iter()
            .map(|(t, h)| (StoredValue::Text(Kind::Domain, t.to_string()), h))
            .chain(
                self.urls
                    .iter()
                    .map(|(t, h)| (StoredValue::Text(Kind::Url, t.to_string()), h)),
            );
        v4.chain(v6)
            .chain(v4_port)
            .chain(v6_port)
            .chain(md5)
            .chain(sha1)
            .chain(sha256)
            .chain(nets4)
            .chain(nets6)
            .map(|(value, head)| (StoredValue::Value(value), head))
            .chain(texts)
            .flat_map(move |(value, head)| {
                self.chain(head)
                    .map(move |id| (value.clone(), self.get(id)))
            })
    }
}

/// Two foldhash values of a context under different fixed seeds (the same on every load).
/// SipHash, twice, was a tenth of the load in an interpreter.
fn fingerprint(context: &Context) -> u128 {
    use foldhash::quality::FixedState;
    let first = FixedState::with_seed(0x243f_6a88_85a3_08d3).hash_one(context);
    let second = FixedState::with_seed(0x1319_8a2e_0370_7344).hash_one(context);
    u128::from(first) << 64 | u128::from(second)
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
    fn every_network_holding_an_address_is_found_from_slash_0_to_the_full_length() {
        let mut set = IndicatorSet::default();
        for net in [
            "0.0.0.0/0",
            "10.0.0.0/8",
            "10.1.2.3/32",
            "::/0",
            "2001:db8::/32",
            "2001:db8::1/128",
        ] {
            set.insert(IndicatorValue::Net(net.parse().unwrap()), info(net, "m"));
        }
        let found = |addr: &str| {
            let mut nets = Vec::new();
            set.lookup_networks(addr.parse().unwrap(), |net, _| nets.push(net.to_string()));
            nets
        };
        assert_eq!(
            found("10.1.2.3"),
            ["10.1.2.3/32", "10.0.0.0/8", "0.0.0.0/0"]
        );
        assert_eq!(found("11.0.0.1"), ["0.0.0.0/0"]);
        assert_eq!(
            found("2001:db8::1"),
            ["2001:db8::1/128", "2001:db8::/32", "::/0"]
        );
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

    #[test]
    fn networks_are_found_most_specific_first() {
        let mut set = IndicatorSet::default();
        for (n, net) in ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "2001:db8::/32"]
            .iter()
            .enumerate()
        {
            let net: IpNet = net.parse().unwrap();
            assert!(set.insert(IndicatorValue::Net(net), info(&n.to_string(), "m")));
        }
        let mut found = Vec::new();
        set.lookup_networks("10.1.2.3".parse().unwrap(), |net, _| {
            found.push(net.to_string())
        });
        assert_eq!(found, ["10.1.2.0/24", "10.1.0.0/16", "10.0.0.0/8"]);
        found.clear();
        set.lookup_networks("11.1.2.3".parse().unwrap(), |net, _| {
            found.push(net.to_string())
        });
        assert!(found.is_empty(), "near miss outside every network");
        set.lookup_networks("2001:db8:1::1".parse().unwrap(), |net, _| {
            found.push(net.to_string())
        });
        assert_eq!(found, ["2001:db8::/32"]);
        assert_eq!(set.counts()[Kind::Ipv4Cidr.index()], 3);
    }

    #[test]
    fn text_values_are_found_exactly() {
        let mut set = IndicatorSet::default();
        assert!(set.insert_text(Kind::Domain, "evil.example", info("1", "m")));
        assert!(set.insert_text(Kind::Url, "http://evil.example/a", info("2", "m")));
        assert!(!set.insert_text(Kind::Domain, "evil.example", info("1", "m")));
        set.shrink_to_fit();
        assert!(set.lookup_text(Kind::Domain, "evil.example").is_some());
        assert!(set.lookup_text(Kind::Domain, "vil.example").is_none());
        assert!(
            set.lookup_text(Kind::Url, "http://evil.example/a")
                .is_some()
        );
        assert!(
            set.lookup_text(Kind::Url, "http://evil.example/A")
                .is_none()
        );
    }

    #[test]
    fn validity_has_a_start_and_an_end() {
        let mut set = IndicatorSet::default();
        let mut i = info("1", "m");
        i.valid_from = Some(100);
        i.valid_until = Some(200);
        set.insert(IndicatorValue::Md5([3; 16]), i);
        assert_eq!(set.validity(0, 99), Validity::NotYetValid);
        assert_eq!(set.validity(0, 150), Validity::Active);
        assert_eq!(set.validity(0, 200), Validity::Expired);
    }
}
