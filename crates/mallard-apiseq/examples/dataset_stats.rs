//! `cargo run --release -p mallard-apiseq --example dataset_stats -- FORMAT PATH [MAX_CALLS]`:
//! reads a dataset with `read_dataset` and prints counts, time and peak memory.

use mallard_apiseq::{read_dataset, DatasetOptions, Format};
use std::path::Path;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(format), Some(path)) = (args.first(), args.get(1)) else {
        eprintln!("usage: dataset_stats FORMAT PATH [MAX_CALLS]");
        std::process::exit(2);
    };
    let format: Format = format.parse().unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let opts = DatasetOptions {
        max_calls: args.get(2).and_then(|s| s.parse().ok()),
        ..DatasetOptions::default()
    };
    let t = Instant::now();
    match read_dataset(format, Path::new(path), &opts) {
        Ok(ds) => {
            let calls: usize = ds.samples.iter().map(|s| s.apis.len()).sum();
            let peak = std::fs::read_to_string("/proc/self/status")
                .unwrap_or_default()
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:").map(|v| v.trim().to_string()))
                .unwrap_or_default();
            println!(
                "{} samples, {} calls, {} errors, {} warnings, {:.2} s, peak RSS {peak}",
                ds.samples.len(),
                calls,
                ds.errors.len(),
                ds.warnings.len(),
                t.elapsed().as_secs_f64()
            );
            for (_, e) in ds.errors.iter().take(10) {
                println!("  error: {e}");
            }
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
