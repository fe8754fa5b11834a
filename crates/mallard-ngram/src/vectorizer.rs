use std::collections::HashMap as StdHashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Multiply-rotate hashing for the vocabulary tables: several times faster than SipHash on
/// short keys, which matters for model load time. The tables' keys come from training, and
/// lookups cannot add keys, so crafted input cannot grow a collision chain.
#[derive(Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]));
        }
        let mut last = [0u8; 8];
        let rem = chunks.remainder();
        last[..rem.len()].copy_from_slice(rem);
        self.add(u64::from_le_bytes(last) ^ ((rem.len() as u64) << 56));
    }
    fn write_u32(&mut self, v: u32) {
        self.add(v as u64);
    }
    fn write_u64(&mut self, v: u64) {
        self.add(v);
    }
    fn write_usize(&mut self, v: usize) {
        self.add(v as u64);
    }
}

impl FastHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type HashMap<K, V> = StdHashMap<K, V, BuildHasherDefault<FastHasher>>;

use serde::{Deserialize, Serialize};

use crate::{CsrMatrix, NgramError, Result};

/// Longest n-gram accepted; longer ones only memorise single samples.
pub const MAX_NGRAM: usize = 16;

/// How raw n-gram counts become term frequencies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TfMode {
    /// Raw count (scikit-learn default).
    #[default]
    Raw,
    /// 1 if present (scikit-learn `binary=True`).
    Binary,
    /// `1 + ln(count)` (scikit-learn `sublinear_tf=True`).
    Sublinear,
}

/// Row normalisation applied last.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Norm {
    /// Unit Euclidean length (scikit-learn default).
    #[default]
    L2,
    /// Unit sum of absolute values.
    L1,
    /// No normalisation.
    None,
}

/// Vectorizer settings. Defaults equal scikit-learn's `TfidfVectorizer` with
/// `ngram_range=(1,3)`; `tf = Raw, use_idf = false, norm = None` gives plain counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VectorizerConfig {
    /// Shortest n-gram (>= 1).
    pub ngram_min: usize,
    /// Longest n-gram (<= 16).
    pub ngram_max: usize,
    /// Keep n-grams seen in at least this many training documents.
    pub min_df: usize,
    /// Keep only this many n-grams, highest document frequency first, ties broken
    /// by the lexicographic order of the n-gram name (deterministic). Note:
    /// scikit-learn ranks by total count and breaks ties arbitrarily; the two agree
    /// whenever no n-gram repeats inside a document and there is no tie at the cut.
    pub max_features: Option<usize>,
    /// Term-frequency transform.
    pub tf: TfMode,
    /// Multiply by inverse document frequency.
    pub use_idf: bool,
    /// idf = ln((1+n)/(1+df)) + 1 if true, else ln(n/df) + 1.
    pub smooth_idf: bool,
    /// Row normalisation.
    pub norm: Norm,
}

impl Default for VectorizerConfig {
    fn default() -> Self {
        Self {
            ngram_min: 1,
            ngram_max: 3,
            min_df: 1,
            max_features: None,
            tf: TfMode::Raw,
            use_idf: true,
            smooth_idf: true,
            norm: Norm::L2,
        }
    }
}

impl VectorizerConfig {
    /// Checks ranges; called by `fit` and `from_parts`.
    pub fn validate(&self) -> Result<()> {
        if self.ngram_min == 0 || self.ngram_min > self.ngram_max || self.ngram_max > MAX_NGRAM {
            return Err(NgramError::InvalidConfig(format!(
                "ngram range {}..={} must satisfy 1 <= min <= max <= {MAX_NGRAM}",
                self.ngram_min, self.ngram_max
            )));
        }
        if self.min_df == 0 {
            return Err(NgramError::InvalidConfig("min_df must be >= 1".into()));
        }
        if self.max_features == Some(0) {
            return Err(NgramError::InvalidConfig(
                "max_features must be >= 1".into(),
            ));
        }
        Ok(())
    }
}

/// Token n-gram TF-IDF vectorizer over API-name sequences.
///
/// Tokens are taken exactly as given (no case folding, no splitting, empty
/// strings are tokens too); an n-gram's name is its tokens joined by one space,
/// and columns are ordered by name like scikit-learn's `vocabulary_`.
#[derive(Clone, Debug)]
pub struct NgramVectorizer {
    config: VectorizerConfig,
    /// Token -> id, only for tokens occurring in some kept n-gram.
    tokens: HashMap<String, u32>,
    /// n-gram (token ids) -> column.
    features: HashMap<Box<[u32]>, u32>,
    n_features: usize,
    /// Column -> token ids, and token id -> token: names without building them all.
    keys: Vec<Box<[u32]>>,
    token_names: Vec<String>,
    /// Column -> n-gram name; built on first use when loaded from token ids (scoring
    /// needs only the maps, so model load skips 20k string joins).
    names: std::sync::OnceLock<Vec<String>>,
    /// Column -> idf (empty when `use_idf` is false).
    idf: Vec<f64>,
}

/// Column -> token ids and token id -> token, inverted from the lookup maps.
fn index(
    tokens: &HashMap<String, u32>,
    features: &HashMap<Box<[u32]>, u32>,
    n: usize,
) -> (Vec<Box<[u32]>>, Vec<String>) {
    let mut names = vec![String::new(); tokens.len()];
    for (t, &i) in tokens {
        if let Some(slot) = names.get_mut(i as usize) {
            *slot = t.clone();
        }
    }
    let mut keys: Vec<Box<[u32]>> = vec![Box::from([]); n];
    for (k, &c) in features {
        if let Some(slot) = keys.get_mut(c as usize) {
            *slot = k.clone();
        }
    }
    (keys, names)
}

/// Interns tokens; an owned map so fit can count before the vocabulary exists.
fn intern<'a>(map: &mut HashMap<&'a str, u32>, tok: &'a str) -> u32 {
    let next = map.len() as u32;
    *map.entry(tok).or_insert(next)
}

impl NgramVectorizer {
    /// Learns the vocabulary and idf from training documents.
    pub fn fit<D, T>(docs: &[D], config: &VectorizerConfig) -> Result<Self>
    where
        D: AsRef<[T]>,
        T: AsRef<str>,
    {
        config.validate()?;
        if docs.is_empty() {
            return Err(NgramError::EmptyInput);
        }
        let mut tok_ids: HashMap<&str, u32> = HashMap::default();
        // n-gram -> (document frequency, last document that counted it)
        let mut df: HashMap<Box<[u32]>, (u32, u32)> = HashMap::default();
        let mut ids: Vec<u32> = Vec::new();
        for (d, doc) in docs.iter().enumerate() {
            ids.clear();
            for t in doc.as_ref() {
                let t = t.as_ref();
                if t.contains(' ') {
                    return Err(NgramError::TokenHasSpace(t.to_string()));
                }
                ids.push(intern(&mut tok_ids, t));
            }
            let d = d as u32;
            for n in config.ngram_min..=config.ngram_max {
                for w in ids.windows(n) {
                    match df.get_mut(w) {
                        Some(e) => {
                            if e.1 != d {
                                e.0 += 1;
                                e.1 = d;
                            }
                        }
                        None => {
                            df.insert(w.into(), (1, d));
                        }
                    }
                }
            }
        }
        let mut names_by_id: Vec<&str> = vec![""; tok_ids.len()];
        for (&t, &i) in &tok_ids {
            names_by_id[i as usize] = t;
        }
        let mut kept: Vec<(String, u32)> = df
            .into_iter()
            .filter(|(_, (c, _))| *c as usize >= config.min_df)
            .map(|(k, (c, _))| {
                let name = k
                    .iter()
                    .map(|&i| names_by_id[i as usize])
                    .collect::<Vec<_>>()
                    .join(" ");
                (name, c)
            })
            .collect();
        if let Some(limit) = config.max_features {
            kept.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            kept.truncate(limit);
        }
        if kept.is_empty() {
            return Err(NgramError::EmptyVocabulary);
        }
        kept.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let n = docs.len() as f64;
        let idf = if config.use_idf {
            kept.iter()
                .map(|&(_, c)| idf_value(n, c as f64, config.smooth_idf))
                .collect()
        } else {
            Vec::new()
        };
        let names = kept.into_iter().map(|(s, _)| s).collect();
        Self::build(config.clone(), names, idf)
    }

    /// Rebuilds a fitted vectorizer from its vocabulary (n-gram names in column
    /// order) and idf (`None` iff `use_idf` is false), as saved by a caller.
    pub fn from_parts(
        config: VectorizerConfig,
        vocab: Vec<String>,
        idf: Option<Vec<f64>>,
    ) -> Result<Self> {
        config.validate()?;
        if vocab.is_empty() {
            return Err(NgramError::InvalidParts("empty vocabulary".into()));
        }
        let idf = match (config.use_idf, idf) {
            (true, Some(v)) => {
                if v.len() != vocab.len() {
                    return Err(NgramError::InvalidParts(format!(
                        "idf has {} entries for {} features",
                        v.len(),
                        vocab.len()
                    )));
                }
                if v.iter().any(|x| !x.is_finite()) {
                    return Err(NgramError::InvalidParts("non-finite idf".into()));
                }
                v
            }
            (false, None) => Vec::new(),
            (true, None) => return Err(NgramError::InvalidParts("use_idf set but no idf".into())),
            (false, Some(_)) => {
                return Err(NgramError::InvalidParts(
                    "idf given but use_idf is false".into(),
                ))
            }
        };
        Self::build(config, vocab, idf)
    }

    fn build(config: VectorizerConfig, names: Vec<String>, idf: Vec<f64>) -> Result<Self> {
        if names.len() > u32::MAX as usize {
            return Err(NgramError::InvalidParts("too many features".into()));
        }
        let mut tokens: HashMap<String, u32> = HashMap::default();
        let mut features: HashMap<Box<[u32]>, u32> =
            HashMap::with_capacity_and_hasher(names.len(), Default::default());
        let mut key = Vec::new();
        for (col, name) in names.iter().enumerate() {
            key.clear();
            for t in name.split(' ') {
                let id = match tokens.get(t) {
                    Some(&id) => id,
                    None => {
                        let id = tokens.len() as u32;
                        tokens.insert(t.to_string(), id);
                        id
                    }
                };
                key.push(id);
            }
            if key.len() < config.ngram_min || key.len() > config.ngram_max {
                return Err(NgramError::InvalidParts(format!(
                    "feature {name:?} has {} tokens, outside {}..={}",
                    key.len(),
                    config.ngram_min,
                    config.ngram_max
                )));
            }
            if features.insert(key.as_slice().into(), col as u32).is_some() {
                return Err(NgramError::InvalidParts(format!(
                    "duplicate feature {name:?}"
                )));
            }
        }
        let n_features = names.len();
        let (keys, token_names) = index(&tokens, &features, n_features);
        Ok(Self {
            config,
            tokens,
            features,
            n_features,
            keys,
            token_names,
            names: names.into(),
            idf,
        })
    }

    /// The vocabulary as token ids: (tokens by id, every column's token ids concatenated,
    /// each column's n-gram length). [`NgramVectorizer::from_token_ids`] reads it back.
    pub fn token_ids(&self) -> (Vec<String>, Vec<u32>, Vec<u8>) {
        let flat = self.keys.iter().flat_map(|k| k.iter().copied()).collect();
        let lens = self.keys.iter().map(|k| k.len() as u8).collect();
        (self.token_names.clone(), flat, lens)
    }

    /// The name of one column (tokens joined by a space), without building the others.
    pub fn name(&self, col: usize) -> Option<String> {
        let key = self.keys.get(col)?;
        let parts: Vec<&str> = key
            .iter()
            .map(|&i| self.token_names.get(i as usize).map_or("", String::as_str))
            .collect();
        Some(parts.join(" "))
    }

    /// Rebuilds a vectorizer from [`NgramVectorizer::token_ids`]; every id and length is
    /// checked, so a corrupt file gives an error.
    pub fn from_token_ids(
        config: VectorizerConfig,
        tokens: Vec<String>,
        flat: &[u32],
        lens: &[u8],
        idf: Option<Vec<f64>>,
    ) -> Result<Self> {
        config.validate()?;
        let n = lens.len();
        if n == 0 {
            return Err(NgramError::InvalidParts("empty vocabulary".into()));
        }
        let idf = match (config.use_idf, idf) {
            (true, Some(v)) if v.len() == n && v.iter().all(|x| x.is_finite()) => v,
            (false, None) => Vec::new(),
            _ => {
                return Err(NgramError::InvalidParts(
                    "idf does not match the vocabulary and settings".into(),
                ))
            }
        };
        let mut map: HashMap<String, u32> =
            HashMap::with_capacity_and_hasher(tokens.len(), Default::default());
        for (i, t) in tokens.into_iter().enumerate() {
            if map.insert(t, i as u32).is_some() {
                return Err(NgramError::InvalidParts("a token appears twice".into()));
            }
        }
        let mut features: HashMap<Box<[u32]>, u32> =
            HashMap::with_capacity_and_hasher(n, Default::default());
        let mut at = 0usize;
        for (col, &len) in lens.iter().enumerate() {
            let len = len as usize;
            let key = flat
                .get(at..at + len)
                .ok_or_else(|| NgramError::InvalidParts("n-gram ids end early".into()))?;
            if len < config.ngram_min
                || len > config.ngram_max
                || key.iter().any(|&i| i as usize >= map.len())
            {
                return Err(NgramError::InvalidParts(format!(
                    "column {col}: bad n-gram"
                )));
            }
            if features.insert(key.into(), col as u32).is_some() {
                return Err(NgramError::InvalidParts(format!(
                    "column {col}: duplicate n-gram"
                )));
            }
            at += len;
        }
        if at != flat.len() {
            return Err(NgramError::InvalidParts("extra n-gram ids".into()));
        }
        let (keys, token_names) = index(&map, &features, n);
        Ok(Self {
            config,
            tokens: map,
            features,
            n_features: n,
            keys,
            token_names,
            names: std::sync::OnceLock::new(),
            idf,
        })
    }

    /// Weights documents; n-grams outside the vocabulary are ignored.
    pub fn transform<D, T>(&self, docs: &[D]) -> CsrMatrix
    where
        D: AsRef<[T]>,
        T: AsRef<str>,
    {
        let mut indptr = Vec::with_capacity(docs.len() + 1);
        indptr.push(0);
        let mut indices = Vec::new();
        let mut values = Vec::new();
        let mut cols = Vec::new();
        for doc in docs {
            self.transform_into(doc.as_ref(), &mut cols, &mut indices, &mut values);
            indptr.push(indices.len());
        }
        CsrMatrix::from_raw(self.n_features, indptr, indices, values)
    }

    /// Appends one document's sorted (column, weight) pairs.
    fn transform_into<T: AsRef<str>>(
        &self,
        doc: &[T],
        cols: &mut Vec<u32>,
        indices: &mut Vec<u32>,
        values: &mut Vec<f64>,
    ) {
        const UNKNOWN: u32 = u32::MAX;
        let ids: Vec<u32> = doc
            .iter()
            .map(|t| self.tokens.get(t.as_ref()).copied().unwrap_or(UNKNOWN))
            .collect();
        cols.clear();
        for n in self.config.ngram_min..=self.config.ngram_max {
            for w in ids.windows(n) {
                if w.contains(&UNKNOWN) {
                    continue;
                }
                if let Some(&c) = self.features.get(w) {
                    cols.push(c);
                }
            }
        }
        cols.sort_unstable();
        let start = values.len();
        let mut i = 0;
        while i < cols.len() {
            let c = cols[i];
            let mut j = i + 1;
            while j < cols.len() && cols[j] == c {
                j += 1;
            }
            let count = (j - i) as f64;
            let tf = match self.config.tf {
                TfMode::Raw => count,
                TfMode::Binary => 1.0,
                TfMode::Sublinear => 1.0 + count.ln(),
            };
            let w = if self.config.use_idf {
                tf * self.idf[c as usize]
            } else {
                tf
            };
            indices.push(c);
            values.push(w);
            i = j;
        }
        let row = &mut values[start..];
        let norm = match self.config.norm {
            Norm::L2 => row.iter().map(|v| v * v).sum::<f64>().sqrt(),
            Norm::L1 => row.iter().map(|v| v.abs()).sum::<f64>(),
            Norm::None => 1.0,
        };
        if norm > 0.0 && norm != 1.0 {
            row.iter_mut().for_each(|v| *v /= norm);
        }
    }

    /// Fits on `docs` and returns their matrix.
    pub fn fit_transform<D, T>(docs: &[D], config: &VectorizerConfig) -> Result<(Self, CsrMatrix)>
    where
        D: AsRef<[T]>,
        T: AsRef<str>,
    {
        let v = Self::fit(docs, config)?;
        let x = v.transform(docs);
        Ok((v, x))
    }

    /// N-gram names (tokens joined by a space), in column order.
    pub fn vocab(&self) -> &[String] {
        self.names.get_or_init(|| {
            (0..self.n_features)
                .map(|c| self.name(c).unwrap_or_default())
                .collect()
        })
    }

    /// Inverse document frequencies in column order; `None` without idf.
    pub fn idf(&self) -> Option<&[f64]> {
        self.config.use_idf.then_some(self.idf.as_slice())
    }

    /// Whether a token occurs in any n-gram of the vocabulary.
    pub fn knows_token(&self, token: &str) -> bool {
        self.tokens.contains_key(token)
    }

    /// Number of features (columns).
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// The settings this vectorizer was fitted with.
    pub fn config(&self) -> &VectorizerConfig {
        &self.config
    }
}

fn idf_value(n: f64, df: f64, smooth: bool) -> f64 {
    if smooth {
        ((1.0 + n) / (1.0 + df)).ln() + 1.0
    } else {
        (n / df).ln() + 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs() -> Vec<Vec<&'static str>> {
        vec![vec!["a", "b", "a", "b"], vec!["b", "c"], vec!["c"]]
    }

    #[test]
    fn counts_by_hand() {
        let cfg = VectorizerConfig {
            ngram_max: 2,
            tf: TfMode::Raw,
            use_idf: false,
            norm: Norm::None,
            ..Default::default()
        };
        let (v, x) = NgramVectorizer::fit_transform(&docs(), &cfg).unwrap();
        assert_eq!(v.vocab(), ["a", "a b", "b", "b a", "b c", "c"]);
        assert_eq!(
            x.to_dense(),
            vec![
                2.0, 2.0, 2.0, 1.0, 0.0, 0.0, //
                0.0, 0.0, 1.0, 0.0, 1.0, 1.0, //
                0.0, 0.0, 0.0, 0.0, 0.0, 1.0,
            ]
        );
        assert!(v.idf().is_none());
    }

    #[test]
    fn idf_and_l2_by_hand() {
        let cfg = VectorizerConfig {
            ngram_max: 1,
            ..Default::default()
        };
        let (v, x) = NgramVectorizer::fit_transform(&docs(), &cfg).unwrap();
        // n = 3; df(a)=1, df(b)=2, df(c)=2
        let ia = (4.0f64 / 2.0).ln() + 1.0;
        let ib = (4.0f64 / 3.0).ln() + 1.0;
        let idf = v.idf().unwrap();
        assert!((idf[0] - ia).abs() < 1e-15 && (idf[1] - ib).abs() < 1e-15);
        let (r0a, r0b) = (2.0 * ia, 2.0 * ib);
        let nrm = (r0a * r0a + r0b * r0b).sqrt();
        let d = x.to_dense();
        assert!((d[0] - r0a / nrm).abs() < 1e-15);
        assert!((d[1] - r0b / nrm).abs() < 1e-15);
        assert!((d[8] - 1.0).abs() < 1e-15); // doc 2 has only c
    }

    #[test]
    fn min_df_max_features_and_unknowns() {
        let cfg = VectorizerConfig {
            ngram_max: 2,
            min_df: 2,
            use_idf: false,
            norm: Norm::None,
            ..Default::default()
        };
        let v = NgramVectorizer::fit(&docs(), &cfg).unwrap();
        assert_eq!(v.vocab(), ["b", "c"]);
        // df: a 1, a b 1, b 2, b a 1, b c 1, c 2 -> top 3 by df, ties by name: b, c, a
        let cfg = VectorizerConfig {
            max_features: Some(3),
            ..cfg
        };
        let cfg = VectorizerConfig { min_df: 1, ..cfg };
        let v = NgramVectorizer::fit(&docs(), &cfg).unwrap();
        assert_eq!(v.vocab(), ["a", "b", "c"]);
        let x = v.transform(&[vec!["zz", "b", "zz", "b", "c"]]);
        assert_eq!(x.to_dense(), vec![0.0, 2.0, 1.0]);
        // empty document gives an empty row, not NaN
        let x = v.transform(&[Vec::<&str>::new()]);
        assert_eq!(x.nnz(), 0);
    }

    #[test]
    fn names_are_exact_and_spaces_rejected() {
        let cfg = VectorizerConfig {
            ngram_max: 1,
            ..Default::default()
        };
        let v = NgramVectorizer::fit(&[vec!["NtClose", "ntclose", "__exception__"]], &cfg).unwrap();
        assert_eq!(v.vocab(), ["NtClose", "__exception__", "ntclose"]);
        let err = NgramVectorizer::fit(&[vec!["a b"]], &cfg).unwrap_err();
        assert!(matches!(err, NgramError::TokenHasSpace(_)));
        assert!(NgramVectorizer::fit(&Vec::<Vec<&str>>::new(), &cfg).is_err());
        let bad = VectorizerConfig {
            ngram_min: 3,
            ngram_max: 2,
            ..Default::default()
        };
        assert!(NgramVectorizer::fit(&[vec!["a"]], &bad).is_err());
    }

    #[test]
    fn from_parts_roundtrip_and_validation() {
        let cfg = VectorizerConfig::default();
        let (v, x) = NgramVectorizer::fit_transform(&docs(), &cfg).unwrap();
        let v2 = NgramVectorizer::from_parts(
            cfg.clone(),
            v.vocab().to_vec(),
            v.idf().map(|s| s.to_vec()),
        )
        .unwrap();
        assert_eq!(v2.transform(&docs()), x);
        assert!(NgramVectorizer::from_parts(cfg.clone(), v.vocab().to_vec(), None).is_err());
        assert!(NgramVectorizer::from_parts(
            cfg.clone(),
            vec!["a".into(), "a".into()],
            Some(vec![1.0, 1.0])
        )
        .is_err());
        assert!(NgramVectorizer::from_parts(cfg, vec!["a b c d".into()], Some(vec![1.0])).is_err());
    }
}
