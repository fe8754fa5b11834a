//! MalConv training epoch and scoring, CPU against GPU in one run (issue 14: "training time
//! per epoch on the GPU measured where one is lent"), on real PE files: every file of
//! `FILES` (default `../shared/data/pe-benign`, 217 files, 52 MB), labelled by index parity
//! (a timing run: what is learnt does not matter, the arithmetic is the same). Default sizes,
//! batch 16, 16 MiB per file at most. Names the adapter; on a software one (lavapipe) the GPU
//! figure is not a GPU figure and says so.
//!
//!     cargo bench -p mallard-malconv --features wgpu --bench epoch_gpu
//!
//! env: FILES (a folder), EPOCHS (default 1), THREADS for the CPU (default: all cores),
//! CPU=0 to skip the CPU side (slow on big folders).

use mallard_malconv::gpu::GpuPooler;
use mallard_malconv::{
    predict_rows, predict_rows_pooled, train, train_pooled, Config, MalConv, TrainConfig,
};
use std::path::PathBuf;
use std::time::Instant;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let dir = std::env::var_os("FILES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/pe-benign")
        });
    let mut files: Vec<Vec<u8>> = Vec::new();
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(d) => d.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            println!("skipped: {}: {e}", dir.display());
            return;
        }
    };
    entries.sort();
    for p in entries {
        if p.extension().is_some_and(|x| x == "md" || x == "tsv") || !p.is_file() {
            continue;
        }
        if let Ok(mut b) = std::fs::read(&p) {
            b.truncate(16 << 20);
            files.push(b);
        }
    }
    let mb = files.iter().map(|b| b.len()).sum::<usize>() as f64 / 1e6;
    let labels: Vec<usize> = (0..files.len()).map(|i| i % 2).collect();
    let rows: Vec<usize> = (0..files.len()).collect();
    let source = |i: usize| -> Result<Vec<u8>, String> { Ok(files[i].clone()) };
    let threads = env_usize(
        "THREADS",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    let cfg = TrainConfig {
        epochs: env_usize("EPOCHS", 1),
        batch_size: 16,
        patience: None,
        threads,
        ..TrainConfig::default()
    };
    println!(
        "MalConv {:?}: {} files, {mb:.1} MB, {} epoch(s), batch 16",
        Config::default(),
        files.len(),
        cfg.epochs
    );
    let mut quiet = |_: &mallard_rnn::EpochReport| {};
    let net0 = MalConv::new(Config::default(), 1).expect("default config");
    let per_epoch = |s: f64| s / cfg.epochs as f64;
    let mut cpu_epoch = None;
    if std::env::var("CPU").as_deref() != Ok("0") {
        let mut net = net0.clone();
        let t = Instant::now();
        train(&mut net, &source, &labels, &rows, &[], &cfg, &mut quiet).expect("cpu train");
        let s = per_epoch(t.elapsed().as_secs_f64());
        let t = Instant::now();
        predict_rows(&net, &source, &rows, threads).expect("cpu predict");
        let p = t.elapsed().as_secs_f64();
        println!(
            "cpu ({threads} threads): epoch {s:.2} s ({:.1} MB/s), scoring {p:.2} s ({:.1} MB/s)",
            mb / s,
            mb / p
        );
        cpu_epoch = Some(s);
    }
    let mut gpu = match GpuPooler::new(&net0) {
        Ok(g) => g,
        Err(e) => {
            println!("skipped: GPU side: {e}");
            return;
        }
    };
    let mut net = net0.clone();
    let t = Instant::now();
    train_pooled(
        &mut net,
        &source,
        &labels,
        &rows,
        &[],
        &cfg,
        &mut gpu,
        &mut quiet,
    )
    .expect("gpu train");
    let s = per_epoch(t.elapsed().as_secs_f64());
    let t = Instant::now();
    predict_rows_pooled(&net, &source, &rows, threads, &mut gpu).expect("gpu predict");
    let p = t.elapsed().as_secs_f64();
    let note = if gpu.is_software() {
        " [software adapter: not a GPU figure]"
    } else {
        ""
    };
    println!(
        "gpu {}: epoch {s:.2} s ({:.1} MB/s), scoring {p:.2} s ({:.1} MB/s){note}",
        gpu.adapter(),
        mb / s,
        mb / p
    );
    if let Some(c) = cpu_epoch {
        println!("epoch time cpu / gpu: {:.2}x", c / s);
    }
}
