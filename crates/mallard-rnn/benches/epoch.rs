//! Training and inference speed on MalBehavD-V1 train (2,046 rows) with the published model:
//! Embedding(V, 32) -> LSTM(100) -> Dense(1, sigmoid), MSE, RMSprop, batch 64.
//! Also GRU and BiLSTM. Run: `cargo bench -p mallard-rnn --bench epoch`
//! (env: MALLARD_SHARED, EPOCHS (default 3), THREADS (default: all cores)).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use mallard_rnn::{train, Cell, Head, Loss, Net, NetConfig, Optimizer, Output, TrainConfig};

/// The allocator of the `mallard` binary, whose `train` these epochs stand for (with the
/// system allocator every batch's buffers came back as freshly zeroed pages).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn shared() -> PathBuf {
    match std::env::var_os("MALLARD_SHARED") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

/// (API-name rows, labels) from `sha256,labels,api...` CSV with ragged, empty trailing cells.
fn read_csv(path: &PathBuf) -> (Vec<Vec<String>>, Vec<usize>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (mut rows, mut labels) = (Vec::new(), Vec::new());
    for line in text.lines().skip(1) {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let mut cells = line.split(',');
        let _sha = cells.next();
        let label: usize = cells
            .next()
            .and_then(|l| l.trim().parse().ok())
            .expect("label");
        rows.push(
            cells
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect(),
        );
        labels.push(label);
    }
    (rows, labels)
}

/// Ids 1.. by descending frequency, ties by first appearance.
fn tokenize(rows: &[Vec<String>]) -> (Vec<Vec<u32>>, usize) {
    let mut count: HashMap<&str, (usize, usize)> = HashMap::new();
    let mut next = 0;
    for r in rows {
        for a in r {
            let e = count.entry(a.as_str()).or_insert_with(|| {
                next += 1;
                (0, next)
            });
            e.0 += 1;
        }
    }
    let mut names: Vec<(&str, (usize, usize))> = count.into_iter().collect();
    names.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.1 .1.cmp(&b.1 .1)));
    let id: HashMap<&str, u32> = names
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (*n, i as u32 + 1))
        .collect();
    let seqs = rows
        .iter()
        .map(|r| r.iter().map(|a| id[a.as_str()]).collect())
        .collect();
    (seqs, names.len() + 1)
}

/// Process CPU time (user + system) from /proc/self/stat, robust to other load on the machine.
fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the command name; 100 ticks/s.
    (ticks(11) + ticks(12)) / 100.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn bench(
    name: &str,
    cell: Cell,
    seqs: &[Vec<u32>],
    labels: &[usize],
    vocab: usize,
    epochs: usize,
    threads: usize,
) {
    if let Ok(only) = std::env::var("ONLY") {
        if !only.split(',').any(|o| o.eq_ignore_ascii_case(name)) {
            return;
        }
    }
    let cfg = NetConfig {
        vocab,
        embed: 32,
        hidden: 100,
        cell,
        output: Output::Sigmoid,
        head: Head::Last,
    };
    let mut net = Net::new(cfg, 1).unwrap();
    let tc = TrainConfig {
        epochs,
        batch_size: 64,
        optimizer: Optimizer::rmsprop(),
        loss: Loss::Mse,
        validation_split: 0.0,
        early_stopping_patience: None,
        class_weights: None,
        seed: 1,
        shuffle: true,
        threads,
        clip_norm: None,
    };
    let cpu0 = cpu_seconds();
    let s = train(&mut net, seqs, labels, &tc, &mut |_| {}, &mut |_, _, _| {}).unwrap();
    let cpu_per_epoch = (cpu_seconds() - cpu0) / epochs as f64;
    let secs: Vec<f64> = s.history.iter().map(|r| r.seconds).collect();
    let last_loss = s.history.last().map_or(f32::NAN, |r| r.loss);

    let refs: Vec<&[u32]> = seqs.iter().map(|r| r.as_slice()).collect();
    let t = Instant::now();
    let mut correct = 0;
    for (bi, b) in refs.chunks(256).enumerate() {
        let p = net.predict_threads(b, threads).unwrap();
        correct += p
            .iter()
            .enumerate()
            .filter(|&(i, &q)| usize::from(q > 0.5) == labels[bi * 256 + i])
            .count();
    }
    let batched_ms = t.elapsed().as_secs_f64() * 1e3 / refs.len() as f64;
    let single: Vec<f64> = refs
        .iter()
        .take(300)
        .map(|r| {
            let t = Instant::now();
            net.predict_threads(&[r], 1).unwrap();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    let single_ms = single.iter().sum::<f64>() / single.len() as f64;
    println!(
        "{name:<8} threads {threads}: epoch median {:.3} s (all {:?}; CPU {cpu_per_epoch:.3} s/epoch), final train loss {last_loss:.4}, train acc {:.3}; \
         predict {batched_ms:.4} ms/seq in batches of 256, {single_ms:.4} ms single; peak RSS {:.0} MiB",
        median(secs.clone()),
        secs.iter().map(|s| (s * 1000.0).round() / 1000.0).collect::<Vec<_>>(),
        correct as f64 / refs.len() as f64,
        peak_rss_mib()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing useful: run only
    // when asked to bench, so test runs stay fast.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let path = shared().join("data/api-sequences/malbehavd-v1/train.csv");
    let (rows, labels) = read_csv(&path);
    let (seqs, vocab) = tokenize(&rows);
    let ntok: usize = seqs.iter().map(Vec::len).sum();
    let maxlen = seqs.iter().map(Vec::len).max().unwrap_or(0);
    println!(
        "MalBehavD-V1 train: {} rows, {} tokens (mean {:.1}, max {maxlen}), vocab {vocab}",
        seqs.len(),
        ntok,
        ntok as f64 / seqs.len() as f64
    );
    // The machine beside the figures: they are only comparable on the same one.
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    println!(
        "machine: {cpu}; kernels {:?} (MALLARD_SIMD caps it); load {}",
        mallard_rnn::simd(),
        load.join(" ")
    );
    let epochs: usize = std::env::var("EPOCHS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads: usize = std::env::var("THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(all);
    bench("LSTM", Cell::Lstm, &seqs, &labels, vocab, epochs, threads);
    if threads > 1 {
        bench("LSTM", Cell::Lstm, &seqs, &labels, vocab, epochs, 1);
    }
    bench("GRU", Cell::Gru, &seqs, &labels, vocab, epochs, threads);
    bench(
        "BiLSTM",
        Cell::BiLstm,
        &seqs,
        &labels,
        vocab,
        epochs,
        threads,
    );
    // Keras' published setting runs over the zero pre-padding (no mask): same work as Keras.
    let padded: Vec<Vec<u32>> = seqs
        .iter()
        .map(|s| {
            std::iter::repeat_n(0, maxlen - s.len())
                .chain(s.iter().copied())
                .collect()
        })
        .collect();
    bench(
        "LSTM-pad",
        Cell::Lstm,
        &padded,
        &labels,
        vocab,
        epochs,
        threads,
    );
}
