//! GPU vs CPU on MalBehavD-V1 train (2,046 rows) with the published model:
//! Embedding(V, 32) -> LSTM(100) -> Dense(1, sigmoid), MSE, RMSprop, batch 64.
//! Prints seconds per training epoch (forward + backward + optimizer step over every row) and
//! inference ms/sequence for both backends in one run, naming the GPU adapter.
//!
//! Run: `cargo bench -p mallard-rnn-gpu --features wgpu --bench epoch_gpu`
//! (env: MALLARD_SHARED, EPOCHS (default 2), CELLS (default "lstm"; also "gru", "bilstm"),
//! THREADS for the CPU (default: all cores)).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use mallard_rnn::{train, Cell, Head, Loss, Net, NetConfig, Optimizer, Output, TrainConfig};
use mallard_rnn_gpu::{GpuError, GpuNet};

fn shared() -> PathBuf {
    match std::env::var_os("MALLARD_SHARED") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

/// Token rows (ids 1.. by descending API-name frequency) and labels from
/// `sha256,labels,api...` CSV rows with empty trailing cells.
fn load(path: &PathBuf) -> (Vec<Vec<u32>>, Vec<usize>, usize) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut rows: Vec<Vec<&str>> = Vec::new();
    let mut labels = Vec::new();
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let mut cells = line.trim_end_matches('\r').split(',');
        cells.next();
        let label = cells
            .next()
            .and_then(|l| l.trim().parse().ok())
            .expect("label");
        labels.push(label);
        rows.push(cells.filter(|c| !c.is_empty()).collect());
    }
    let mut freq: HashMap<&str, (usize, usize)> = HashMap::new();
    for r in &rows {
        for &a in r {
            let next = freq.len();
            freq.entry(a).or_insert((0, next)).0 += 1;
        }
    }
    let mut names: Vec<(&str, (usize, usize))> = freq.into_iter().collect();
    names.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.1 .1.cmp(&b.1 .1)));
    let id: HashMap<&str, u32> = names
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (*n, i as u32 + 1))
        .collect();
    let seqs = rows
        .iter()
        .map(|r| r.iter().map(|a| id[a]).collect())
        .collect();
    (seqs, labels, names.len() + 1)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Fisher-Yates with a 64-bit LCG: the bench only needs a fresh order per epoch.
fn shuffle(order: &mut [usize], state: &mut u64) {
    for i in (1..order.len()).rev() {
        *state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = ((*state >> 33) % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
}

fn ms_per_seq(n: usize, f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64() * 1e3 / n as f64
}

#[allow(clippy::too_many_arguments)]
fn bench(
    name: &str,
    cell: Cell,
    seqs: &[Vec<u32>],
    labels: &[usize],
    vocab: usize,
    epochs: usize,
    threads: usize,
) -> Result<(), GpuError> {
    let cfg = NetConfig {
        vocab,
        embed: 32,
        hidden: 100,
        cell,
        output: Output::Sigmoid,
        head: Head::Last,
    };
    let opt = Optimizer::rmsprop();
    let net0 = Net::new(cfg, 1)?;
    let mut gpu = GpuNet::from_net(&net0)?;
    println!(
        "{name}: GPU adapter {}{}",
        gpu.adapter(),
        if gpu.is_software() {
            " -- a software (CPU) Vulkan driver: these are not GPU figures"
        } else {
            ""
        }
    );
    let refs: Vec<&[u32]> = seqs.iter().map(|r| r.as_slice()).collect();
    let y: Vec<f32> = labels.iter().map(|&l| l as f32).collect();

    // CPU: the crate's own training loop.
    let mut cpu = net0.clone();
    let tc = TrainConfig {
        epochs,
        batch_size: 64,
        optimizer: opt,
        loss: Loss::Mse,
        seed: 1,
        threads,
        ..TrainConfig::default()
    };
    let s = train(&mut cpu, seqs, labels, &tc, &mut |_| {}, &mut |_, _, _| {})?;
    let cpu_epoch = median(s.history.iter().map(|r| r.seconds).collect());
    let cpu_loss = s.history.last().map_or(f32::NAN, |r| r.loss);

    // GPU: same rows, batch size and optimizer, a shuffled order per epoch.
    let mut order: Vec<usize> = (0..seqs.len()).collect();
    let mut state = 1u64;
    let (mut secs, mut gpu_loss) = (Vec::new(), f32::NAN);
    for _ in 0..epochs {
        shuffle(&mut order, &mut state);
        let t = Instant::now();
        gpu_loss = gpu.train_epoch(&refs, &y, None, &order, 64, Loss::Mse, opt)?;
        secs.push(t.elapsed().as_secs_f64());
    }
    let gpu_epoch = median(secs.clone());

    // Inference with the trained CPU weights on both backends.
    gpu.load(&cpu)?;
    let cpu_b256 = ms_per_seq(refs.len(), || {
        for b in refs.chunks(256) {
            let _ = cpu.predict_threads(b, threads);
        }
    });
    let mut gpu_res = Ok(());
    let gpu_b256 = ms_per_seq(refs.len(), || {
        for b in refs.chunks(256) {
            if let Err(e) = gpu.predict(b) {
                gpu_res = Err(e);
            }
        }
    });
    gpu_res?;
    let t = Instant::now();
    let p_gpu = gpu.predict(&refs)?;
    let gpu_all = t.elapsed().as_secs_f64() * 1e3 / refs.len() as f64;
    let p_cpu = cpu.predict_threads(&refs, threads)?;
    let max_diff = p_gpu
        .iter()
        .zip(&p_cpu)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    let single_n = 50;
    let cpu_single = ms_per_seq(single_n, || {
        for r in refs.iter().take(single_n) {
            let _ = cpu.predict_threads(&[r], 1);
        }
    });
    let mut gpu_res = Ok(());
    let gpu_single = ms_per_seq(single_n, || {
        for r in refs.iter().take(single_n) {
            if let Err(e) = gpu.predict(&[r]) {
                gpu_res = Err(e);
            }
        }
    });
    gpu_res?;

    println!(
        "{name:<7} train epoch (batch 64, RMSprop, MSE): CPU {cpu_epoch:.3} s ({threads} threads, final loss {cpu_loss:.4}) | \
         GPU {gpu_epoch:.3} s (all {:?}, final loss {gpu_loss:.4})",
        secs.iter().map(|s| (s * 1000.0).round() / 1000.0).collect::<Vec<_>>()
    );
    println!(
        "{name:<7} predict ms/seq: batches of 256 CPU {cpu_b256:.4} | GPU {gpu_b256:.4}; \
         all {} rows in one call GPU {gpu_all:.4}; single sequence CPU {cpu_single:.4} | GPU {gpu_single:.4}; \
         max |p_gpu - p_cpu| {max_diff:.2e}",
        refs.len()
    );
    Ok(())
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: stay quiet there.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let (seqs, labels, vocab) = load(&shared().join("data/api-sequences/malbehavd-v1/train.csv"));
    let ntok: usize = seqs.iter().map(Vec::len).sum();
    println!(
        "MalBehavD-V1 train: {} rows, {ntok} tokens, max length {}, vocab {vocab}",
        seqs.len(),
        seqs.iter().map(Vec::len).max().unwrap_or(0)
    );
    let env = |k: &str| std::env::var(k).ok();
    let epochs: usize = env("EPOCHS").and_then(|s| s.parse().ok()).unwrap_or(2);
    let threads: usize = env("THREADS")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let cells = env("CELLS").unwrap_or_else(|| "lstm".into());
    for c in cells.split(',') {
        let (name, cell) = match c.trim().to_ascii_lowercase().as_str() {
            "lstm" => ("LSTM", Cell::Lstm),
            "gru" => ("GRU", Cell::Gru),
            "bilstm" => ("BiLSTM", Cell::BiLstm),
            other => {
                eprintln!("unknown cell {other:?}");
                continue;
            }
        };
        match bench(name, cell, &seqs, &labels, vocab, epochs, threads) {
            Ok(()) => {}
            Err(GpuError::NoAdapter(e)) => {
                println!("no GPU adapter ({e}): GPU bench skipped");
                return;
            }
            Err(e) => {
                eprintln!("{name}: {e}");
                std::process::exit(1);
            }
        }
    }
}
