//! Turns API-call sequences into integer ids the way Keras' `Tokenizer` does.
//!
//! Two modes share one vocabulary rule (indices 1.. by descending count, ties in order of
//! first appearance, an optional OOV token at index 1):
//! - [`TextMode::Keras`]: the sequence is joined into text, lower-cased and split after the
//!   default punctuation filters, exactly as `tf.keras.preprocessing.text.Tokenizer()` does
//!   (so `__exception__` becomes `exception`). Use it to reproduce published pipelines.
//! - [`TextMode::Exact`]: every API name is one token, kept as it is. mallard's default,
//!   because the filters split or merge real API names.
//!
//! Index 0 is never assigned: it is the padding value.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Keras' default `filters` argument.
pub const KERAS_FILTERS: &str = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n";

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("maxlen must be at least 1")]
    ZeroMaxlen,
    #[error("tokenizer vocabulary is inconsistent: {0}")]
    Corrupt(String),
}

/// How text is split into tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum TextMode {
    /// Keras `text_to_word_sequence`: optional lower-casing, every char of `filters`
    /// becomes `split`, then split on `split` and drop empty pieces.
    Keras {
        lower: bool,
        filters: String,
        split: char,
    },
    /// One token per API name, unchanged.
    Exact,
}

impl TextMode {
    /// `Tokenizer()` with its default arguments.
    pub fn keras_default() -> Self {
        TextMode::Keras {
            lower: true,
            filters: KERAS_FILTERS.to_string(),
            split: ' ',
        }
    }
}

/// Settings fixed before fitting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenizerConfig {
    pub text: TextMode,
    /// Keep only ids `< num_words` when converting (Keras keeps `num_words - 1` words).
    pub num_words: Option<usize>,
    pub oov_token: Option<String>,
}

impl Default for TokenizerConfig {
    fn default() -> Self {
        TokenizerConfig {
            text: TextMode::Exact,
            num_words: None,
            oov_token: None,
        }
    }
}

/// A fitted tokenizer. Serializes to its config plus the vocabulary in index order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "TokenizerFile", into = "TokenizerFile")]
pub struct Tokenizer {
    config: TokenizerConfig,
    /// `words[i]` has index `i + 1`.
    words: Vec<String>,
    counts: Vec<u64>,
    index: HashMap<String, u32>,
}

#[derive(Serialize, Deserialize)]
struct TokenizerFile {
    config: TokenizerConfig,
    words: Vec<String>,
    #[serde(default)]
    counts: Vec<u64>,
}

impl TryFrom<TokenizerFile> for Tokenizer {
    type Error = TokenizerError;
    fn try_from(f: TokenizerFile) -> Result<Self, TokenizerError> {
        if !f.counts.is_empty() && f.counts.len() != f.words.len() {
            return Err(TokenizerError::Corrupt(format!(
                "{} words but {} counts",
                f.words.len(),
                f.counts.len()
            )));
        }
        let counts = if f.counts.is_empty() {
            vec![0; f.words.len()]
        } else {
            f.counts
        };
        Ok(Tokenizer::from_parts(f.config, f.words, counts))
    }
}

impl From<Tokenizer> for TokenizerFile {
    fn from(t: Tokenizer) -> Self {
        TokenizerFile {
            config: t.config,
            words: t.words,
            counts: t.counts,
        }
    }
}

impl Tokenizer {
    fn from_parts(config: TokenizerConfig, words: Vec<String>, counts: Vec<u64>) -> Self {
        // Later entries win, as in Keras' dict(zip(...)) when the OOV token also occurs in text.
        let mut index = HashMap::with_capacity(words.len());
        for (i, w) in words.iter().enumerate() {
            index.insert(w.clone(), (i + 1) as u32);
        }
        Tokenizer {
            config,
            words,
            counts,
            index,
        }
    }

    /// Splits one sequence into tokens according to the text mode.
    pub fn split<S: AsRef<str>>(&self, apis: &[S]) -> Vec<String> {
        split_tokens(&self.config.text, apis)
    }

    /// Fits the vocabulary on sequences of API names (`fit_on_texts`).
    pub fn fit<I, S>(config: TokenizerConfig, sequences: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<[S]>,
        S: AsRef<str>,
    {
        let mut order: Vec<String> = Vec::new();
        let mut counts: HashMap<String, u64> = HashMap::new();
        for seq in sequences {
            for tok in split_tokens(&config.text, seq.as_ref()) {
                match counts.get_mut(&tok) {
                    Some(c) => *c += 1,
                    None => {
                        counts.insert(tok.clone(), 1);
                        order.push(tok);
                    }
                }
            }
        }
        let mut ranked: Vec<(String, u64)> = order
            .into_iter()
            .map(|w| {
                let c = counts[&w];
                (w, c)
            })
            .collect();
        // Stable sort: ties keep first-appearance order, like Python's sort(reverse=True).
        ranked.sort_by_key(|r| std::cmp::Reverse(r.1));
        let mut words = Vec::with_capacity(ranked.len() + 1);
        let mut cnts = Vec::with_capacity(ranked.len() + 1);
        if let Some(oov) = &config.oov_token {
            words.push(oov.clone());
            cnts.push(0);
        }
        for (w, c) in ranked {
            words.push(w);
            cnts.push(c);
        }
        Tokenizer::from_parts(config, words, cnts)
    }

    pub fn config(&self) -> &TokenizerConfig {
        &self.config
    }

    /// Words in index order: `words()[i]` has id `i + 1`.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// Training-set count of the word with id `id` (0 for the OOV token).
    pub fn count(&self, id: u32) -> Option<u64> {
        self.counts.get((id as usize).checked_sub(1)?).copied()
    }

    /// Id of a token, if it is in the vocabulary.
    pub fn id(&self, token: &str) -> Option<u32> {
        self.index.get(token).copied()
    }

    /// The token for an id (1-based), if any.
    pub fn word(&self, id: u32) -> Option<&str> {
        self.words
            .get((id as usize).checked_sub(1)?)
            .map(String::as_str)
    }

    /// Largest id `encode` can emit, plus one: the embedding table size.
    pub fn vocab_size(&self) -> usize {
        let n = self.words.len() + 1;
        match self.config.num_words {
            Some(k) if k > 0 => n.min(k),
            _ => n,
        }
    }

    fn oov_id(&self) -> Option<u32> {
        self.config.oov_token.as_deref().and_then(|t| self.id(t))
    }

    /// Whether `encode` turns `api` into vocabulary ids only: at least one token, and none
    /// unknown, past `num_words` or the OOV token. (With an OOV token `encode` never drops a
    /// name, so an empty result cannot tell.)
    pub fn knows(&self, api: &str) -> bool {
        let oov = self.oov_id();
        let limit = self.config.num_words.filter(|&k| k > 0);
        let tokens = split_tokens(&self.config.text, &[api]);
        !tokens.is_empty()
            && tokens.iter().all(|t| match self.id(t) {
                Some(i) => Some(i) != oov && limit.is_none_or(|k| (i as usize) < k),
                None => false,
            })
    }

    /// `texts_to_sequences` for one sequence.
    pub fn encode<S: AsRef<str>>(&self, apis: &[S]) -> Vec<u32> {
        let oov = self.oov_id();
        let limit = self.config.num_words.filter(|&k| k > 0);
        let mut out = Vec::new();
        for tok in split_tokens(&self.config.text, apis) {
            match self.id(&tok) {
                Some(i) if limit.is_some_and(|k| i as usize >= k) => out.extend(oov),
                Some(i) => out.push(i),
                None if self.config.oov_token.is_some() => out.extend(oov),
                None => {}
            }
        }
        out
    }
}

fn split_tokens<S: AsRef<str>>(mode: &TextMode, apis: &[S]) -> Vec<String> {
    match mode {
        TextMode::Exact => apis
            .iter()
            .map(|s| s.as_ref().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        TextMode::Keras {
            lower,
            filters,
            split,
        } => {
            let mut out = Vec::new();
            // Joining with the split char and splitting again is the same as splitting each name.
            for api in apis {
                let s = api.as_ref();
                let s = if *lower {
                    s.to_lowercase()
                } else {
                    s.to_string()
                };
                let mapped: String = s
                    .chars()
                    .map(|c| if filters.contains(c) { *split } else { c })
                    .collect();
                out.extend(
                    mapped
                        .split(*split)
                        .filter(|p| !p.is_empty())
                        .map(str::to_string),
                );
            }
            out
        }
    }
}

/// Which end `pad` pads or cuts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Pre,
    Post,
}

/// Cuts a sequence to `maxlen` (keeping the end for `Pre`, the start for `Post`), like
/// `pad_sequences`' `truncating`.
pub fn truncate(seq: &[u32], maxlen: usize, truncating: Side) -> &[u32] {
    if seq.len() <= maxlen {
        return seq;
    }
    match truncating {
        Side::Pre => &seq[seq.len() - maxlen..],
        Side::Post => &seq[..maxlen],
    }
}

/// `pad_sequences(seqs, maxlen, padding, truncating, value)`; `maxlen = None` pads to the
/// longest sequence. Returns rows of equal length.
pub fn pad_sequences(
    seqs: &[Vec<u32>],
    maxlen: Option<usize>,
    padding: Side,
    truncating: Side,
    value: u32,
) -> Result<Vec<Vec<u32>>, TokenizerError> {
    let maxlen = maxlen.unwrap_or_else(|| seqs.iter().map(Vec::len).max().unwrap_or(0));
    if maxlen == 0 && seqs.iter().any(|s| !s.is_empty()) {
        return Err(TokenizerError::ZeroMaxlen);
    }
    Ok(seqs
        .iter()
        .map(|s| {
            let t = truncate(s, maxlen, truncating);
            let mut row = vec![value; maxlen];
            match padding {
                Side::Pre => row[maxlen - t.len()..].copy_from_slice(t),
                Side::Post => row[..t.len()].copy_from_slice(t),
            }
            row
        })
        .collect())
}
