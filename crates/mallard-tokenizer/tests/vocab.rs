//! Hand-computed expectations for the exact-name mode and for serialization.

use mallard_tokenizer::{pad_sequences, truncate, Side, Tokenizer, TokenizerConfig};

fn seqs() -> Vec<Vec<&'static str>> {
    vec![
        vec!["NtOpenFile", "__exception__", "NtClose"],
        vec!["NtClose", "NtClose", "LdrLoadDll"],
        vec!["__exception__", "NtOpenFile"],
    ]
}

#[test]
fn exact_mode_keeps_names_and_orders_ties_by_first_appearance() {
    let tok = Tokenizer::fit(TokenizerConfig::default(), seqs());
    // NtClose 3; NtOpenFile 2 and __exception__ 2 tie, NtOpenFile seen first; LdrLoadDll 1.
    assert_eq!(
        tok.words(),
        ["NtClose", "NtOpenFile", "__exception__", "LdrLoadDll"]
    );
    assert_eq!(
        tok.encode(&["__exception__", "Unknown", "NtClose"]),
        vec![3, 1]
    );
    assert_eq!(tok.vocab_size(), 5);
    assert_eq!(tok.count(1), Some(3));
}

#[test]
fn num_words_and_oov() {
    let cfg = TokenizerConfig {
        num_words: Some(3),
        oov_token: Some("<OOV>".into()),
        ..Default::default()
    };
    let tok = Tokenizer::fit(cfg, seqs());
    // <OOV>=1, NtClose=2, NtOpenFile=3, ...; ids >= 3 map to OOV.
    assert_eq!(
        tok.encode(&["NtOpenFile", "NtClose", "Nope"]),
        vec![1, 2, 1]
    );
    assert_eq!(tok.vocab_size(), 3);
}

#[test]
fn knows_means_encoded_to_vocabulary_ids_only() {
    let tok = Tokenizer::fit(TokenizerConfig::default(), seqs());
    assert!(tok.knows("NtClose") && tok.knows("LdrLoadDll"));
    assert!(!tok.knows("Nope") && !tok.knows(""));
    // With an OOV token and num_words, encode never drops a name: an id past the limit, an
    // unknown name and the OOV token itself are not known.
    let cfg = TokenizerConfig {
        num_words: Some(3),
        oov_token: Some("<OOV>".into()),
        ..Default::default()
    };
    let tok = Tokenizer::fit(cfg, seqs());
    assert!(tok.knows("NtClose"));
    assert!(!tok.knows("NtOpenFile"), "id 3 is past num_words");
    assert!(!tok.knows("Nope") && !tok.knows("<OOV>"));
    // Keras text mode: a name is known when every piece it splits into is.
    let cfg = TokenizerConfig {
        text: mallard_tokenizer::TextMode::keras_default(),
        ..Default::default()
    };
    let tok = Tokenizer::fit(cfg, seqs());
    assert!(tok.knows("ntclose") && tok.knows("__exception__") && tok.knows("NtClose"));
    assert!(!tok.knows("NtClose.Nope") && !tok.knows("__"));
}

#[test]
fn round_trips_through_json() {
    let tok = Tokenizer::fit(TokenizerConfig::default(), seqs());
    let json = serde_json::to_string(&tok).unwrap();
    let back: Tokenizer = serde_json::from_str(&json).unwrap();
    assert_eq!(back.words(), tok.words());
    assert_eq!(back.encode(&["LdrLoadDll"]), vec![4]);
    let bad = json.replace("\"counts\":[3,2,2,1]", "\"counts\":[3]");
    assert!(serde_json::from_str::<Tokenizer>(&bad).is_err());
}

#[test]
fn padding_and_truncation() {
    let s = vec![vec![1, 2, 3, 4], vec![5], vec![]];
    assert_eq!(
        pad_sequences(&s, Some(2), Side::Pre, Side::Pre, 0).unwrap(),
        vec![vec![3, 4], vec![0, 5], vec![0, 0]]
    );
    assert_eq!(
        pad_sequences(&s, None, Side::Post, Side::Post, 9).unwrap(),
        vec![vec![1, 2, 3, 4], vec![5, 9, 9, 9], vec![9, 9, 9, 9]]
    );
    assert_eq!(truncate(&[1, 2, 3], 2, Side::Post), &[1, 2]);
    assert!(pad_sequences(&s, Some(0), Side::Pre, Side::Pre, 0).is_err());
}
