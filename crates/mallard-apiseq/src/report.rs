//! Streaming reader for Cuckoo 2.x, Cuckoo 1.2 and CAPEv2 `report.json`.
//!
//! Reports can be gigabytes, almost all of it call arguments, screenshots, strings and
//! memory dumps. The parser walks the JSON once with hand-written serde visitors, keeps
//! only API names (interned to `u32`), one time per call and a few metadata strings, and
//! skips everything else with [`IgnoredAny`], which allocates nothing for skipped values.
//! Values of an unexpected type are ignored instead of failing the report: only broken
//! JSON, I/O errors and reports without behaviour data are errors.

use crate::guard::is_overlong;
use crate::input;
use crate::{ReadError, Sample};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::cell::Cell;
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

/// Which sandbox wrote a report; the call schema differs between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// Cuckoo 2.x: `pid`, float `time`, `behavior.apistats`.
    Cuckoo,
    /// CAPEv2: `process_id`, string `timestamp`, family in `detections`.
    Cape,
    /// Cuckoo 1.x: the schema CAPE inherited, without CAPE's extra sections.
    Cuckoo1,
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flavor::Cuckoo => "Cuckoo 2.x",
            Flavor::Cape => "CAPE",
            Flavor::Cuckoo1 => "Cuckoo 1.x",
        })
    }
}

/// Where a report's API sequence came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallSource {
    /// `behavior.processes[].calls`: the real trace, in order.
    Calls,
    /// `behavior.apistats` counts, used only when no call was logged: order is lost.
    ApiStats,
}

/// Limits and hints for [`read_report`]. The limits default to [`mallard_io::Caps`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportOptions {
    /// Keep at most this many calls per report (the first ones in file order); a warning
    /// says how many were dropped. Bounds memory on pathological traces.
    pub max_calls: usize,
    /// Refuse reports whose (decompressed) JSON is larger than this.
    pub max_bytes: u64,
    /// Refuse report files larger than this on disk (compressed size for gzip).
    pub max_file_bytes: u64,
    /// Strings longer than this (as written in the JSON, escapes included) are never
    /// buffered: an API name, process name, path or hash that long is dropped with a
    /// warning, and a key that long matches nothing.
    pub max_string_bytes: usize,
    /// The flavor the caller expects. Used when the report does not identify itself;
    /// a report that clearly is another flavor is still read, with a warning.
    pub expect: Option<Flavor>,
    /// Cuckoo 1.x and CAPE collapse identical consecutive calls into one record with a
    /// `repeated` count. By default one record gives one API (as the sandbox shows it);
    /// set this to repeat it `1 + repeated` times, as the process actually called it.
    pub expand_repeated: bool,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions::from_caps(&mallard_io::Caps::default())
    }
}

impl ReportOptions {
    /// The report limits of `caps`, no expected flavor, repeated calls not expanded.
    pub fn from_caps(caps: &mallard_io::Caps) -> Self {
        ReportOptions {
            max_calls: caps.max_calls,
            max_bytes: caps.max_report_decompressed,
            max_file_bytes: caps.max_report_bytes,
            max_string_bytes: caps.max_string_bytes,
            expect: None,
            expand_repeated: false,
        }
    }
}

/// One monitored process and its API calls in the order the sandbox logged them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessCalls {
    /// `pid` (Cuckoo 2) or `process_id` (Cuckoo 1, CAPE); 0 when the report has none.
    pub pid: u64,
    /// `process_name`.
    pub name: Option<String>,
    /// `process_path` (Cuckoo 2) or `module_path` (CAPE).
    pub path: Option<String>,
    /// The calls, each an index into [`Report::api_names`]: every distinct name is stored
    /// once, so memory is 4 bytes per call whatever the names.
    pub calls: Vec<u32>,
}

/// What mallard keeps of a sandbox report.
#[derive(Debug, Clone)]
pub struct Report {
    pub path: PathBuf,
    pub flavor: Flavor,
    /// `info.version`, e.g. "2.0.7", "1.2", "2.4-CAPE".
    pub version: Option<String>,
    /// `target.file.sha256`.
    pub sha256: Option<String>,
    /// `target.file.name`.
    pub target_name: Option<String>,
    /// Malware family named by the sandbox itself (CAPE `detections`, else `malfamily`).
    /// CAPE's `malfamily_tag` is not used: it names the detecting engine ("Yara"), not a family.
    pub family_hint: Option<String>,
    /// Every process in `behavior.processes`, also those without calls, in report order.
    pub processes: Vec<ProcessCalls>,
    pub source: CallSource,
    /// Things a user should know (truncation, fallback to apistats, skipped records).
    pub warnings: Vec<String>,
    /// Distinct API names, indexed by [`ProcessCalls::calls`], in order of first appearance.
    api_names: Vec<String>,
    /// Per process, per call: time in seconds (NaN when unknown). Parallel to `processes`.
    times: Vec<Vec<f64>>,
}

impl Report {
    /// The whole sample's trace: all processes' calls merged by time. Each process keeps
    /// its own order; calls with equal times come in process order; a call without a
    /// usable time stays right after the call before it in its process.
    ///
    /// This makes one `String` per call (about 56 bytes each); large traces are cheaper
    /// through [`Report::sequence_ids`] and [`Report::api_names`].
    pub fn sequence(&self) -> Vec<String> {
        self.sequence_ids()
            .into_iter()
            .map(|id| self.api_name(id).to_owned())
            .collect()
    }

    /// [`Report::sequence`] as indices into [`Report::api_names`] (4 bytes per call).
    pub fn sequence_ids(&self) -> Vec<u32> {
        self.merged_ids()
    }

    /// The distinct API names of the trace in order of first call (merged by time), for
    /// models that only look at which APIs were called.
    pub fn distinct_apis(&self) -> Vec<&str> {
        let mut seen = vec![false; self.api_names.len()];
        let mut out = Vec::new();
        for id in self.merged_ids() {
            if let Some(s) = seen.get_mut(id as usize) {
                if !*s {
                    *s = true;
                    out.push(self.api_name(id));
                }
            }
        }
        out
    }

    /// [`Report::sequence`] without calls equal to the call before them (what a model with
    /// `collapse_runs` sees): costs a `String` per kept call only.
    pub fn collapsed_sequence(&self) -> Vec<String> {
        let mut ids = self.merged_ids();
        ids.dedup();
        ids.into_iter()
            .map(|id| self.api_name(id).to_owned())
            .collect()
    }

    /// Every distinct API name of the report; [`ProcessCalls::calls`] index into this.
    pub fn api_names(&self) -> &[String] {
        &self.api_names
    }

    /// The name behind a call index ("" for an index out of range).
    pub fn api_name(&self, id: u32) -> &str {
        self.api_names.get(id as usize).map_or("", String::as_str)
    }

    /// The API names of the process at `index` in `processes`, in its own order.
    pub fn process_apis(&self, index: usize) -> Vec<&str> {
        self.processes.get(index).map_or_else(Vec::new, |p| {
            p.calls.iter().map(|&id| self.api_name(id)).collect()
        })
    }

    /// Number of calls kept over all processes.
    pub fn call_count(&self) -> usize {
        self.processes.iter().map(|p| p.calls.len()).sum()
    }

    /// The report as a dataset sample: [`Report::sequence`] with the target's sha256.
    pub fn to_sample(&self, id: String, label: Option<String>) -> Sample {
        Sample {
            id,
            label,
            apis: self.sequence(),
            sha256: self.sha256.clone(),
        }
    }

    /// Call name indices in merged time order (k-way merge over the processes).
    fn merged_ids(&self) -> Vec<u32> {
        let n = self.processes.len();
        let time_of = |p: usize, i: usize, prev: f64| -> f64 {
            let t = self
                .times
                .get(p)
                .and_then(|ts| ts.get(i))
                .copied()
                .unwrap_or(f64::NAN);
            if t.is_nan() {
                prev
            } else {
                t
            }
        };
        let mut out = Vec::with_capacity(self.call_count());
        let mut heap: BinaryHeap<Reverse<(TotalF64, usize, usize)>> = BinaryHeap::with_capacity(n);
        for (p, pc) in self.processes.iter().enumerate() {
            if !pc.calls.is_empty() {
                heap.push(Reverse((TotalF64(time_of(p, 0, f64::NEG_INFINITY)), p, 0)));
            }
        }
        while let Some(Reverse((TotalF64(t), p, i))) = heap.pop() {
            if let Some(&id) = self.processes.get(p).and_then(|pc| pc.calls.get(i)) {
                out.push(id);
            }
            let next = i + 1;
            if self
                .processes
                .get(p)
                .is_some_and(|pc| next < pc.calls.len())
            {
                heap.push(Reverse((TotalF64(time_of(p, next, t)), p, next)));
            }
        }
        out
    }
}

#[derive(Clone, Copy, Debug)]
struct TotalF64(f64);
impl PartialEq for TotalF64 {
    fn eq(&self, o: &Self) -> bool {
        self.0.total_cmp(&o.0) == Ordering::Equal
    }
}
impl Eq for TotalF64 {}
impl PartialOrd for TotalF64 {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for TotalF64 {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0)
    }
}

/// Reads a Cuckoo or CAPE `report.json` (plain or gzip) in one streaming pass.
///
/// When no call was logged but Cuckoo 2's `behavior.apistats` exists, each process gets
/// its APIs from the counts: every API repeated `count` times, most frequent first (ties
/// by name). This keeps the API histogram exact for count-based models; the order is
/// invented, which [`Report::source`] and a warning make explicit.
pub fn read_report(path: &Path, opts: &ReportOptions) -> Result<Report, ReadError> {
    let input = input::open_json(
        path,
        opts.max_file_bytes,
        opts.max_bytes,
        opts.max_string_bytes,
    )?;
    parse(input, path, opts)
}

/// [`read_report`] from any byte source (stdin, an archive member); `name` is used in
/// messages and as [`Report::path`].
pub fn read_report_from<R: std::io::Read + 'static>(
    reader: R,
    name: &Path,
    opts: &ReportOptions,
) -> Result<Report, ReadError> {
    parse(
        input::from_reader(
            Box::new(reader),
            name,
            Some(opts.max_bytes),
            Some(opts.max_string_bytes),
        )?,
        name,
        opts,
    )
}

/// Reports up to this size (after decompression) are parsed from memory, which is several
/// times faster than serde_json's byte-at-a-time reader; larger ones are streamed, so memory
/// stays bounded whatever the report's size.
const IN_MEMORY: u64 = 16 << 20;

fn parse(input: input::Input, path: &Path, opts: &ReportOptions) -> Result<Report, ReadError> {
    use std::io::Read;
    let over = input.over_limit.clone();
    let limit = input.limit;
    let long_keys = input.long_keys.clone();
    let json_err = |e: serde_json::Error| -> ReadError {
        if e.is_io() {
            match limit {
                Some(limit) if over.get() => ReadError::TooLarge {
                    path: path.to_path_buf(),
                    limit,
                },
                _ => ReadError::io(path, e.into()),
            }
        } else {
            let full = e.to_string();
            let msg = full
                .rsplit_once(" at line ")
                .map_or(full.as_str(), |(m, _)| m)
                .to_string();
            ReadError::Json {
                path: path.to_path_buf(),
                line: e.line(),
                column: e.column(),
                msg,
            }
        }
    };
    let mut reader = input.reader;
    let mut head = Vec::new();
    (&mut reader)
        .take(IN_MEMORY + 1)
        .read_to_end(&mut head)
        .map_err(|e| match limit {
            Some(limit) if over.get() => ReadError::TooLarge {
                path: path.to_path_buf(),
                limit,
            },
            _ => ReadError::io(path, e),
        })?;
    let mut st = State::new(opts);
    let was_object = if head.len() as u64 <= IN_MEMORY {
        let mut de = serde_json::Deserializer::from_slice(&head);
        let r = Lenient(Top(&mut st))
            .deserialize(&mut de)
            .map_err(json_err)?;
        de.end().map_err(json_err)?;
        r
    } else {
        // A BufReader directly under serde_json: std reads single bytes from its buffer
        // without a call per byte, which makes streaming several times faster.
        let source =
            std::io::BufReader::with_capacity(64 << 10, std::io::Cursor::new(head).chain(reader));
        let mut de = serde_json::Deserializer::from_reader(source);
        let r = Lenient(Top(&mut st))
            .deserialize(&mut de)
            .map_err(json_err)?;
        de.end().map_err(json_err)?;
        r
    };
    if !was_object {
        return Err(ReadError::invalid(
            path,
            "top level is not a JSON object, so not a sandbox report",
        ));
    }
    st.long_keys = long_keys.get();
    st.finish(path, opts)
}

// ---------------------------------------------------------------------------------------
// Lenient visitors: a Handler says what to do with the JSON types it cares about; every
// other type is consumed and answered with `fallback()`.

trait Handler<'de>: Sized {
    type Out;
    fn fallback(self) -> Self::Out;
    fn on_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Out, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(self.fallback())
    }
    fn on_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Out, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(self.fallback())
    }
    fn on_str(self, _s: &str) -> Self::Out {
        self.fallback()
    }
    fn on_f64(self, _v: f64) -> Self::Out {
        self.fallback()
    }
    fn on_u64(self, v: u64) -> Self::Out {
        self.on_f64(v as f64)
    }
    fn on_i64(self, v: i64) -> Self::Out {
        self.on_f64(v as f64)
    }
}

struct Lenient<H>(H);

impl<'de, H: Handler<'de>> Visitor<'de> for Lenient<H> {
    type Value = H::Out;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _v: bool) -> Result<H::Out, E> {
        Ok(self.0.fallback())
    }
    fn visit_i64<E>(self, v: i64) -> Result<H::Out, E> {
        Ok(self.0.on_i64(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<H::Out, E> {
        Ok(self.0.on_u64(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<H::Out, E> {
        Ok(self.0.on_f64(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<H::Out, E> {
        Ok(self.0.on_str(v))
    }
    fn visit_bytes<E>(self, _v: &[u8]) -> Result<H::Out, E> {
        Ok(self.0.fallback())
    }
    fn visit_unit<E>(self) -> Result<H::Out, E> {
        Ok(self.0.fallback())
    }
    fn visit_none<E>(self) -> Result<H::Out, E> {
        Ok(self.0.fallback())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<H::Out, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<H::Out, A::Error> {
        self.0.on_seq(seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<H::Out, A::Error> {
        self.0.on_map(map)
    }
}

impl<'de, H: Handler<'de>> DeserializeSeed<'de> for Lenient<H> {
    type Value = H::Out;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<H::Out, D::Error> {
        d.deserialize_any(self)
    }
}

/// A map key, looked up in a fixed table without allocating.
struct Key(&'static [&'static str]);
impl Handler<'_> for Key {
    type Out = Option<usize>;
    fn fallback(self) -> Option<usize> {
        None
    }
    fn on_str(self, s: &str) -> Option<usize> {
        self.0.iter().position(|k| *k == s)
    }
}

/// Skips a value.
fn skip<'de, A: MapAccess<'de>>(map: &mut A) -> Result<(), A::Error> {
    map.next_value::<IgnoredAny>().map(|_| ())
}

/// A string field kept from the report; an over-long one (see [`crate::guard`]) counts
/// as absent and is tallied for a warning.
struct Text<'a>(&'a Cell<u64>);
impl Handler<'_> for Text<'_> {
    type Out = Option<String>;
    fn fallback(self) -> Option<String> {
        None
    }
    fn on_str(self, s: &str) -> Option<String> {
        if is_overlong(s) {
            self.0.set(self.0.get() + 1);
            return None;
        }
        Some(s.to_owned())
    }
}

struct Uint;
impl Handler<'_> for Uint {
    type Out = Option<u64>;
    fn fallback(self) -> Option<u64> {
        None
    }
    fn on_u64(self, v: u64) -> Option<u64> {
        Some(v)
    }
    fn on_i64(self, v: i64) -> Option<u64> {
        u64::try_from(v).ok()
    }
    fn on_f64(self, v: f64) -> Option<u64> {
        (v >= 0.0 && v.fract() == 0.0 && v < 1.8e19).then_some(v as u64)
    }
    fn on_str(self, s: &str) -> Option<u64> {
        s.trim().parse().ok()
    }
}

/// A call time: float epoch seconds, or a "YYYY-mm-dd HH:MM:SS,mmm" string. NaN if unknown.
struct Time;
impl Handler<'_> for Time {
    type Out = f64;
    fn fallback(self) -> f64 {
        f64::NAN
    }
    fn on_f64(self, v: f64) -> f64 {
        v
    }
    fn on_str(self, s: &str) -> f64 {
        parse_timestamp(s)
            .or_else(|| s.trim().parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    }
}

/// Seconds since 1970 for "YYYY-mm-dd HH:MM:SS[,.]fff" (the sandbox's local clock).
pub(crate) fn parse_timestamp(s: &str) -> Option<f64> {
    let (date, time) = s.trim().split_once([' ', 'T'])?;
    let mut d = date.splitn(3, '-');
    let y: i64 = d.next()?.parse().ok()?;
    let m: i64 = d.next()?.parse().ok()?;
    let day: i64 = d.next()?.parse().ok()?;
    let (hms, frac) = match time.find([',', '.']) {
        Some(i) => (time.get(..i)?, time.get(i + 1..)?),
        None => (time, ""),
    };
    let mut t = hms.splitn(3, ':');
    let h: i64 = t.next()?.parse().ok()?;
    let mi: i64 = t.next()?.parse().ok()?;
    let sec: i64 = t.next()?.parse().ok()?;
    if !(1..=12).contains(&m)
        || !(1..=31).contains(&day)
        || !(0..24).contains(&h)
        || !(0..60).contains(&mi)
        || !(0..=60).contains(&sec)
        || !(-9999..=9999).contains(&y)
    {
        return None;
    }
    let frac = if frac.is_empty() {
        0.0
    } else {
        if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        frac.parse::<f64>().ok()? / 10f64.powi(frac.len() as i32)
    };
    // Days from 1970-01-01 in the proleptic Gregorian calendar (civil-from-days inverse).
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + mi * 60 + sec) as f64 + frac)
}

// ---------------------------------------------------------------------------------------
// Parse state.

#[derive(Default)]
struct ProcBuf {
    pid: Option<u64>,
    name: Option<String>,
    path: Option<String>,
    ids: Vec<u32>,
    times: Vec<f64>,
}

/// Each distinct API name once; calls refer to it by index.
#[derive(Default)]
struct Interner {
    ids: HashMap<String, u32>,
    names: Vec<String>,
    /// API names dropped as over-long.
    overlong: u64,
    /// Distinct names refused once `u32` indices ran out (never in a real report).
    full: bool,
}

impl Interner {
    fn get(&mut self, s: &str) -> Option<u32> {
        if let Some(&id) = self.ids.get(s) {
            return Some(id);
        }
        let Ok(id) = u32::try_from(self.names.len()) else {
            self.full = true;
            return None;
        };
        self.ids.insert(s.to_owned(), id);
        self.names.push(s.to_owned());
        Some(id)
    }
}

#[derive(Default)]
struct State {
    max_calls: usize,
    expand_repeated: bool,
    names: Interner,
    procs: Vec<ProcBuf>,
    apistats: Vec<(String, Vec<(u32, u64)>)>,
    behavior_seen: bool,
    behavior_object: bool,
    version: Option<String>,
    sha256: Option<String>,
    target_name: Option<String>,
    detections: Option<String>,
    malfamily: Option<String>,
    cape_sections: bool,
    time_float: bool,
    time_string: bool,
    /// Call records with an API name, and how many API occurrences they stand for.
    records: u64,
    wanted: u64,
    kept: usize,
    no_api: u64,
    bad_processes: u64,
    /// Kept fields (names, paths, hashes) dropped as over-long.
    long_fields: Cell<u64>,
    /// Object keys replaced as over-long (never one mallard reads).
    long_keys: u64,
}

impl State {
    fn new(opts: &ReportOptions) -> Self {
        State {
            max_calls: opts.max_calls,
            expand_repeated: opts.expand_repeated,
            ..State::default()
        }
    }

    fn detect_flavor(&self, opts: &ReportOptions, warnings: &mut Vec<String>) -> Flavor {
        let v = self.version.as_deref().map(str::trim).unwrap_or("");
        let detected = if v.to_ascii_uppercase().contains("CAPE") || self.cape_sections {
            Some(Flavor::Cape)
        } else if v.starts_with("1.") || v.starts_with("0.") {
            Some(Flavor::Cuckoo1)
        } else if v.starts_with("2.") || (self.time_float && !self.time_string) {
            Some(Flavor::Cuckoo)
        } else if self.time_string && !self.time_float && opts.expect != Some(Flavor::Cape) {
            Some(Flavor::Cuckoo1)
        } else {
            None
        };
        match (detected, opts.expect) {
            (Some(d), Some(e)) if !compatible(e, d) => {
                warnings.push(format!("expected a {e} report but this looks like {d} (info.version {v:?}); read anyway"));
                d
            }
            (Some(d), _) => d,
            (None, Some(e)) => e,
            (None, None) => Flavor::Cuckoo,
        }
    }

    fn finish(mut self, path: &Path, opts: &ReportOptions) -> Result<Report, ReadError> {
        if !self.behavior_seen || !self.behavior_object {
            return Err(ReadError::NoBehavior {
                path: path.to_path_buf(),
            });
        }
        let mut warnings = Vec::new();
        let flavor = self.detect_flavor(opts, &mut warnings);
        let mut source = CallSource::Calls;
        if self.records == 0 {
            let stats_total: u64 = self
                .apistats
                .iter()
                .flat_map(|(_, c)| c.iter().map(|&(_, n)| n))
                .fold(0, u64::saturating_add);
            if stats_total == 0 {
                return Err(ReadError::NoCalls {
                    path: path.to_path_buf(),
                });
            }
            self.fill_from_apistats(&mut warnings);
            source = CallSource::ApiStats;
            warnings.insert(
                0,
                "calls not logged; using behavior.apistats (order lost)".to_string(),
            );
        }
        if self.wanted > self.kept as u64 {
            warnings.push(format!(
                "kept the first {} of {} API calls (max_calls = {})",
                self.kept, self.wanted, self.max_calls
            ));
        }
        if self.no_api > 0 {
            warnings.push(format!(
                "skipped {} call records without an 'api' name",
                self.no_api
            ));
        }
        if self.bad_processes > 0 {
            warnings.push(format!(
                "skipped {} entries of behavior.processes that are not objects",
                self.bad_processes
            ));
        }
        let missing_pid = self.procs.iter().filter(|p| p.pid.is_none()).count();
        if missing_pid > 0 {
            warnings.push(format!(
                "{missing_pid} processes have no pid; reported as pid 0"
            ));
        }
        if self.names.overlong > 0 {
            warnings.push(format!(
                "skipped {} calls whose API name is longer than max_string_bytes = {} bytes",
                self.names.overlong, opts.max_string_bytes
            ));
        }
        // Long values in skipped sections (arguments, dumps) are normal and not reported.
        let long_fields = self.long_fields.get();
        if long_fields > 0 {
            warnings.push(format!(
                "left out {long_fields} names, paths or hashes longer than max_string_bytes = {} bytes",
                opts.max_string_bytes
            ));
        }
        if self.long_keys > 0 {
            warnings.push(format!(
                "ignored {} object keys longer than max_string_bytes = {} bytes",
                self.long_keys, opts.max_string_bytes
            ));
        }
        if self.names.full {
            warnings.push(
                "more distinct API names than can be indexed; calls to the rest skipped".into(),
            );
        }
        let names = self.names.names;
        let mut processes = Vec::with_capacity(self.procs.len());
        let mut times = Vec::with_capacity(self.procs.len());
        for mut p in self.procs {
            // Growth leaves up to half of each vector unused; give it back.
            p.ids.shrink_to_fit();
            p.times.shrink_to_fit();
            processes.push(ProcessCalls {
                pid: p.pid.unwrap_or(0),
                name: p.name,
                path: p.path,
                calls: p.ids,
            });
            times.push(p.times);
        }
        Ok(Report {
            path: path.to_path_buf(),
            flavor,
            version: self.version,
            sha256: self.sha256,
            target_name: self.target_name,
            family_hint: self.detections.or(self.malfamily),
            processes,
            source,
            warnings,
            api_names: names,
            times,
        })
    }

    fn fill_from_apistats(&mut self, warnings: &mut Vec<String>) {
        let stats = std::mem::take(&mut self.apistats);
        for (key, mut counts) in stats {
            let pid = key.trim().parse::<u64>().ok();
            if pid.is_none() {
                warnings.push(format!(
                    "behavior.apistats key {key:?} is not a pid; reported as pid 0"
                ));
            }
            let names = &self.names.names;
            counts.sort_by(|a, b| {
                b.1.cmp(&a.1)
                    .then_with(|| names.get(a.0 as usize).cmp(&names.get(b.0 as usize)))
            });
            let idx = match self
                .procs
                .iter()
                .position(|p| p.pid.is_some() && p.pid == pid && p.ids.is_empty())
            {
                Some(i) => i,
                None => {
                    self.procs.push(ProcBuf {
                        pid,
                        ..ProcBuf::default()
                    });
                    self.procs.len() - 1
                }
            };
            let Some(proc_buf) = self.procs.get_mut(idx) else {
                continue;
            };
            for (id, n) in counts {
                self.wanted = self.wanted.saturating_add(n);
                let room = self.max_calls.saturating_sub(self.kept);
                let take = usize::try_from(n).unwrap_or(usize::MAX).min(room);
                proc_buf.ids.extend(std::iter::repeat_n(id, take));
                proc_buf.times.extend(std::iter::repeat_n(f64::NAN, take));
                self.kept += take;
            }
        }
    }
}

fn compatible(expect: Flavor, got: Flavor) -> bool {
    expect == got || (expect == Flavor::Cuckoo && got == Flavor::Cuckoo1)
}

// ---------------------------------------------------------------------------------------
// The report's shape.

struct Top<'a>(&'a mut State);
impl<'de> Handler<'de> for Top<'_> {
    type Out = bool;
    fn fallback(self) -> bool {
        false
    }
    fn on_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        const KEYS: &[&str] = &[
            "behavior",
            "target",
            "info",
            "detections",
            "malfamily",
            "CAPE",
            "malscore",
        ];
        let st = self.0;
        while let Some(k) = map.next_key_seed(Lenient(Key(KEYS)))? {
            match k {
                Some(0) => {
                    st.behavior_seen = true;
                    if map.next_value_seed(Lenient(Behavior(&mut *st)))? {
                        st.behavior_object = true;
                    }
                }
                Some(1) => map.next_value_seed(Lenient(Target(&mut *st)))?,
                Some(2) => map.next_value_seed(Lenient(Info(&mut *st)))?,
                Some(3) => {
                    let d = map.next_value_seed(Lenient(Detections))?;
                    st.detections = st.detections.take().or(d);
                }
                Some(4) => {
                    st.malfamily = map
                        .next_value_seed(Lenient(Text(&st.long_fields)))?
                        .filter(|s| !s.trim().is_empty())
                }
                Some(5) | Some(6) => {
                    st.cape_sections = true;
                    skip(&mut map)?;
                }
                _ => skip(&mut map)?,
            }
        }
        Ok(true)
    }
}

struct Target<'a>(&'a mut State);
impl<'de> Handler<'de> for Target<'_> {
    type Out = ();
    fn fallback(self) {}
    fn on_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(k) = map.next_key_seed(Lenient(Key(&["file"])))? {
            match k {
                Some(0) => map.next_value_seed(Lenient(TargetFile(&mut *self.0)))?,
                _ => skip(&mut map)?,
            }
        }
        Ok(())
    }
}

struct TargetFile<'a>(&'a mut State);
impl<'de> Handler<'de> for TargetFile<'_> {
    type Out = ();
    fn fallback(self) {}
    fn on_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(k) = map.next_key_seed(Lenient(Key(&["name", "sha256"])))? {
            match k {
                Some(0) => {
                    self.0.target_name = map.next_value_seed(Lenient(Text(&self.0.long_fields)))?
                }
                Some(1) => {
                    self.0.sha256 = map.next_value_seed(Lenient(Text(&self.0.long_fields)))?
                }
                _ => skip(&mut map)?,
            }
        }
        Ok(())
    }
}

struct Info<'a>(&'a mut State);
impl<'de> Handler<'de> for Info<'_> {
    type Out = ();
    fn fallback(self) {}
    fn on_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(k) = map.next_key_seed(Lenient(Key(&["version"])))? {
            match k {
                Some(0) => {
                    self.0.version = map.next_value_seed(Lenient(Text(&self.0.long_fields)))?
                }
                _ => skip(&mut map)?,
            }
        }
        Ok(())
    }
}

/// CAPE `detections`: "QakBot" (2.2) or `[{"family": "SunCrypt", "details": [...]}, ...]` (2.4).
/// The first family named wins.
struct Detections;
impl<'de> Handler<'de> for Detections {
    type Out = Option<String>;
    fn fallback(self) -> Option<String> {
        None
    }
    fn on_str(self, s: &str) -> Option<String> {
        Some(s.trim().to_owned()).filter(|s| !s.is_empty() && !is_overlong(s))
    }
    fn on_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<String>, A::Error> {
        let mut family = None;
        while let Some(k) = map.next_key_seed(Lenient(Key(&["family"])))? {
            match k {
                Some(0) => {
                    let f = map.next_value_seed(Lenient(Detections))?;
                    family = family.or(f);
                }
                _ => skip(&mut map)?,
            }
        }
        Ok(family)
    }
    fn on_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<String>, A::Error> {
        let mut family = None;
        while let Some(f) = seq.next_element_seed(Lenient(Detections))? {
            family = family.or(f);
        }
        Ok(family)
    }
}

/// `behavior`; answers whether it was an object.
struct Behavior<'a>(&'a mut State);
impl<'de> Handler<'de> for Behavior<'_> {
    type Out = bool;
    fn fallback(self) -> bool {
        false
    }
    fn on_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let st = self.0;
        while let Some(k) = map.next_key_seed(Lenient(Key(&["processes", "apistats"])))? {
            match k {
                Some(0) => map.next_value_seed(Lenient(Processes(&mut *st)))?,
                Some(1) => map.next_value_seed(Lenient(ApiStats(&mut *st)))?,
                _ => skip(&mut map)?,
            }
        }
        Ok(true)
    }
}

struct Processes<'a>(&'a mut State);
impl<'de> Handler<'de> for Processes<'_> {
    type Out = ();
    fn fallback(self) {}
    fn on_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(was_object) = seq.next_element_seed(Lenient(Process(&mut *self.0)))? {
            if !was_object {
                self.0.bad_processes += 1;
            }
        }
        Ok(())
    }
}

struct Process<'a>(&'a mut State);
impl<'de> Handler<'de> for Process<'_> {
    type Out = bool;
    fn fallback(self) -> bool {
        false
    }
    fn on_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        const KEYS: &[&str] = &[
            "pid",
            "process_id",
            "process_name",
            "process_path",
            "module_path",
            "calls",
        ];
        let st = self.0;
        let mut p = ProcBuf::default();
        while let Some(k) = map.next_key_seed(Lenient(Key(KEYS)))? {
            match k {
                Some(0) | Some(1) => {
                    let v = map.next_value_seed(Lenient(Uint))?;
                    p.pid = p.pid.or(v);
                }
                Some(2) => {
                    p.name = map
                        .next_value_seed(Lenient(Text(&st.long_fields)))?
                        .or(p.name)
                }
                Some(3) | Some(4) => {
                    p.path = map
                        .next_value_seed(Lenient(Text(&st.long_fields)))?
                        .or(p.path)
                }
                Some(5) => map.next_value_seed(Lenient(Calls {
                    st: &mut *st,
                    p: &mut p,
                }))?,
                _ => skip(&mut map)?,
            }
        }
        st.procs.push(p);
        Ok(true)
    }
}

struct Calls<'a> {
    st: &'a mut State,
    p: &'a mut ProcBuf,
}
impl<'de> Handler<'de> for Calls<'_> {
    type Out = ();
    fn fallback(self) {}
    fn on_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(Lenient(Call {
                st: &mut *self.st,
                p: &mut *self.p,
            }))?
            .is_some()
        {}
        Ok(())
    }
}

struct Call<'a> {
    st: &'a mut State,
    p: &'a mut ProcBuf,
}
impl<'de> Handler<'de> for Call<'_> {
    type Out = ();
    fn fallback(self) {
        self.st.no_api += 1;
    }
    fn on_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let st = self.st;
        let long_before = st.names.overlong;
        let mut api = None;
        let mut time = f64::NAN;
        let mut repeated = 0u64;
        while let Some(k) =
            map.next_key_seed(Lenient(Key(&["api", "time", "timestamp", "repeated"])))?
        {
            match k {
                Some(0) => api = map.next_value_seed(Lenient(ApiName(&mut st.names)))?,
                Some(1) => {
                    time = map.next_value_seed(Lenient(Time))?;
                    st.time_float = true;
                }
                Some(2) => {
                    time = map.next_value_seed(Lenient(Time))?;
                    st.time_string = true;
                }
                Some(3) => repeated = map.next_value_seed(Lenient(Uint))?.unwrap_or(0),
                _ => skip(&mut map)?,
            }
        }
        let Some(id) = api else {
            if st.names.overlong == long_before {
                st.no_api += 1;
            }
            return Ok(());
        };
        st.records += 1;
        let want = if st.expand_repeated {
            repeated.saturating_add(1)
        } else {
            1
        };
        st.wanted = st.wanted.saturating_add(want);
        let room = st.max_calls.saturating_sub(st.kept);
        let take = usize::try_from(want).unwrap_or(usize::MAX).min(room);
        for _ in 0..take {
            self.p.ids.push(id);
            self.p.times.push(time);
        }
        st.kept += take;
        Ok(())
    }
}

struct ApiName<'a>(&'a mut Interner);
impl Handler<'_> for ApiName<'_> {
    type Out = Option<u32>;
    fn fallback(self) -> Option<u32> {
        None
    }
    fn on_str(self, s: &str) -> Option<u32> {
        if is_overlong(s) {
            self.0.overlong += 1;
            return None;
        }
        if s.is_empty() {
            return None;
        }
        self.0.get(s)
    }
}

/// Cuckoo 2 `behavior.apistats`: `{"<pid>": {"<api>": count}}`.
struct ApiStats<'a>(&'a mut State);
impl<'de> Handler<'de> for ApiStats<'_> {
    type Out = ();
    fn fallback(self) {}
    fn on_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(pid) = map.next_key::<String>()? {
            let counts = map.next_value_seed(Lenient(ApiCounts(&mut self.0.names)))?;
            self.0.apistats.push((pid, counts));
        }
        Ok(())
    }
}

struct ApiCounts<'a>(&'a mut Interner);
impl<'de> Handler<'de> for ApiCounts<'_> {
    type Out = Vec<(u32, u64)>;
    fn fallback(self) -> Vec<(u32, u64)> {
        Vec::new()
    }
    fn on_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<(u32, u64)>, A::Error> {
        let mut out = Vec::new();
        while let Some(api) = map.next_key_seed(Lenient(ApiName(&mut *self.0)))? {
            let n = map.next_value_seed(Lenient(Uint))?;
            if let (Some(id), Some(n)) = (api, n) {
                out.push((id, n));
            }
        }
        Ok(out)
    }
}
