//! Pins Keras' Tokenizer and pad_sequences behaviour with the golden cases that
//! `shared/fixtures/keras/make_fixtures.py` wrote from tf_keras 2.21.

use mallard_tokenizer::{pad_sequences, Side, TextMode, Tokenizer, TokenizerConfig, KERAS_FILTERS};
use serde_json::Value;
use std::path::PathBuf;

fn shared() -> PathBuf {
    std::env::var_os("MALLARD_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

fn malbehavd_train_texts() -> Vec<String> {
    let p = shared().join("data/api-sequences/malbehavd-v1/train.csv");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let apis: Vec<&str> = l
                .trim_end_matches('\r')
                .split(',')
                .skip(2)
                .filter(|s| !s.is_empty())
                .collect();
            apis.join(" ")
        })
        .collect()
}

fn config(args: &Value) -> TokenizerConfig {
    let lower = args.get("lower").and_then(Value::as_bool).unwrap_or(true);
    let filters = args
        .get("filters")
        .and_then(Value::as_str)
        .unwrap_or(KERAS_FILTERS)
        .to_string();
    TokenizerConfig {
        text: TextMode::Keras {
            lower,
            filters,
            split: ' ',
        },
        num_words: args
            .get("num_words")
            .and_then(Value::as_u64)
            .map(|n| n as usize),
        oov_token: args
            .get("oov_token")
            .and_then(Value::as_str)
            .map(str::to_string),
    }
}

fn side(v: Option<&Value>) -> Side {
    match v.and_then(Value::as_str) {
        Some("post") => Side::Post,
        _ => Side::Pre,
    }
}

fn ids(v: &Value) -> Vec<Vec<u32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect()
        })
        .collect()
}

#[test]
fn keras_tokenizer_golden_cases() {
    let path = shared().join("fixtures/keras/tokenizer.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let fit: Vec<String> = match &case["fit_texts"] {
            Value::Array(a) => a.iter().map(|t| t.as_str().unwrap().to_string()).collect(),
            _ => malbehavd_train_texts(),
        };
        let tok = Tokenizer::fit(config(&case["tokenizer"]), fit.iter().map(|t| [t.as_str()]));

        let want = case["word_index"].as_object().unwrap();
        assert_eq!(tok.words().len(), want.len(), "{name}: vocabulary size");
        for (w, i) in want {
            assert_eq!(
                tok.id(w),
                Some(i.as_u64().unwrap() as u32),
                "{name}: index of {w:?}"
            );
        }

        let seqs: Vec<Vec<u32>> = case["texts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| tok.encode(&[t.as_str().unwrap()]))
            .collect();
        assert_eq!(seqs, ids(&case["sequences"]), "{name}: texts_to_sequences");

        let pad = &case["pad"];
        let maxlen = pad
            .get("maxlen")
            .and_then(Value::as_u64)
            .map(|n| n as usize);
        let padded = pad_sequences(
            &seqs,
            maxlen,
            side(pad.get("padding")),
            side(pad.get("truncating")),
            0,
        )
        .unwrap();
        assert_eq!(padded, ids(&case["padded"]), "{name}: pad_sequences");
    }
}
