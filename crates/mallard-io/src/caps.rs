//! The one set of caps. Every reader takes its limits from here, so a user can see and
//! change them in one place (`docs/limits.md` lists them with the flags that set them).

/// Limits on what one input may cost. `Caps::default()` holds the documented defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Largest PE file scanned or featurised (bytes on disk).
    pub max_pe_bytes: u64,
    /// Largest report file on disk (compressed size for `.gz`).
    pub max_report_bytes: u64,
    /// Largest decompressed report (what a `.json.gz` may expand to).
    pub max_report_decompressed: u64,
    /// Longest string kept from a report (API names, process names, keys, hashes);
    /// longer ones are refused, never copied.
    pub max_string_bytes: usize,
    /// API calls kept per report (the rest are counted, not stored).
    pub max_calls: usize,
    /// Largest model file.
    pub max_model_bytes: u64,
    /// Largest count read from a model file (trees, nodes, vocabulary, sequence length).
    pub max_model_count: usize,
    /// Deepest tree accepted from a model file.
    pub max_tree_depth: usize,
    /// Longest input sequence (`maxlen`) a sequence model file may ask for: rows are
    /// padded to it and occlusion explanations cost its square.
    pub max_seq_len: usize,
    /// Largest table file (CSV, JSON lines) and longest cell in it.
    pub max_table_bytes: u64,
    pub max_cell_bytes: usize,
    /// Deepest folder nesting the walker descends.
    pub max_walk_depth: usize,
    /// Seconds one input may take before it is given an error result.
    pub per_file_seconds: u64,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            max_pe_bytes: 256 << 20,
            max_report_bytes: 2 << 30,
            max_report_decompressed: 4 << 30,
            max_string_bytes: 4 << 10,
            max_calls: 5_000_000,
            max_model_bytes: 1 << 30,
            max_model_count: 50_000_000,
            max_tree_depth: 256,
            max_seq_len: 100_000,
            max_table_bytes: 8 << 30,
            max_cell_bytes: 1 << 20,
            max_walk_depth: 64,
            per_file_seconds: 60,
        }
    }
}

impl Caps {
    /// The defaults; same as `Caps::default()`, usable in `const` contexts.
    pub const DEFAULT_MAX_PE_BYTES: u64 = 256 << 20;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_pe_cap_matches_constant() {
        assert_eq!(Caps::default().max_pe_bytes, Caps::DEFAULT_MAX_PE_BYTES);
    }
}
