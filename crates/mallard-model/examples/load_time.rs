//! Prints how long loading a model file takes, by stage.
//! `cargo run --release -p mallard-model --example load_time -- MODEL`
use std::time::Instant;

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: load_time MODEL");
        std::process::exit(2);
    };
    let t = Instant::now();
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let read = t.elapsed();
    let t = Instant::now();
    let file = mallard_model::ModelFile::from_bytes(&bytes).unwrap_or_else(|e| panic!("{e}"));
    let parse = t.elapsed();
    let t = Instant::now();
    let model = mallard_model::from_file(file).unwrap_or_else(|e| panic!("{e}"));
    let build = t.elapsed();
    let apis: Vec<String> = ["NtOpenFile", "NtReadFile", "NtClose"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let t = Instant::now();
    let p = model
        .predict_proba(&[mallard_model::Input::Apis(&apis)])
        .unwrap_or_else(|e| panic!("{e}"));
    let predict = t.elapsed();
    println!("read {read:?}  parse {parse:?}  build {build:?}  predict {predict:?}  p {p:?}");
}
