//! GPU results against the CPU network (and, through it, Keras). They are compiled only with
//! the `wgpu` feature, that is when the GPU path is asked for; then a machine without a
//! Vulkan adapter fails them with a message saying so (lavapipe, Mesa's software driver,
//! is enough: `.ci/run` installs it), so they are never counted as passed without running.

use mallard_rnn::{
    train, Cell, Head, Loss, Net, NetConfig, Optimizer, Output, Tensor, TrainConfig,
};

use crate::{GpuError, GpuNet};

const NO_ADAPTER: &str =
    "no Vulkan adapter: install Mesa's lavapipe (apt-get install mesa-vulkan-drivers)";

/// A GpuNet for `net`; a machine without an adapter fails the test, saying so.
fn gpu(net: &Net, test: &str) -> Option<GpuNet> {
    match GpuNet::from_net(net) {
        Ok(g) => Some(g),
        Err(GpuError::NoAdapter(e)) => panic!("{test}: {NO_ADAPTER} ({e})"),
        Err(e) => panic!("{test}: {e}"),
    }
}

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Largest |a - b| relative to the largest |b| in the tensor.
fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b
        .iter()
        .fold(0.0f64, |m, &x| m.max(x.abs() as f64))
        .max(1e-12);
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).abs())
        .fold(0.0, f64::max)
        / scale
}

fn random_rows(rng: &mut Lcg, n: usize, vocab: usize, maxlen: usize) -> Vec<Vec<u32>> {
    (0..n)
        .map(|i| {
            // One empty row exercises the zero-state path.
            let len = if i == 3 { 0 } else { 1 + rng.below(maxlen) };
            (0..len).map(|_| rng.below(vocab) as u32).collect()
        })
        .collect()
}

fn targets(rng: &mut Lcg, cfg: &NetConfig, n: usize) -> Vec<f32> {
    let k = cfg.n_out();
    let mut y = vec![0.0; n * k];
    for r in 0..n {
        match cfg.output {
            Output::Sigmoid => y[r] = rng.below(2) as f32,
            Output::Softmax(c) => y[r * k + rng.below(c)] = 1.0,
        }
    }
    y
}

/// Asserts every gradient within `tol`; returns the worst relative error.
fn compare_grads(what: &str, got: &[Tensor], want: &[Tensor], tol: f64) -> f64 {
    assert_eq!(got.len(), want.len(), "{what}");
    let mut worst = 0.0f64;
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.0, w.0, "{what}");
        assert_eq!(g.1, w.1, "{what} {}", g.0);
        let e = rel_err(&g.2, &w.2);
        assert!(e < tol, "{what}: grad {} rel err {e}", g.0);
        worst = worst.max(e);
    }
    worst
}

#[test]
fn predict_and_grads_match_cpu_on_random_configs() {
    let mut rng = Lcg(7);
    let cases = [
        (Cell::Lstm, Output::Sigmoid, Head::Last, Loss::Mse, false),
        (
            Cell::Gru,
            Output::Sigmoid,
            Head::Last,
            Loss::CrossEntropy,
            true,
        ),
        (Cell::BiLstm, Output::Sigmoid, Head::Last, Loss::Mse, false),
        (
            Cell::Lstm,
            Output::Softmax(3),
            Head::Mean,
            Loss::CrossEntropy,
            false,
        ),
        (Cell::Gru, Output::Softmax(4), Head::Max, Loss::Mse, true),
        (
            Cell::BiLstm,
            Output::Softmax(3),
            Head::Max,
            Loss::CrossEntropy,
            true,
        ),
        (
            Cell::Lstm,
            Output::Sigmoid,
            Head::Max,
            Loss::CrossEntropy,
            false,
        ),
        (Cell::Gru, Output::Sigmoid, Head::Mean, Loss::Mse, false),
    ];
    for (ci, &(cell, output, head, loss, weighted)) in cases.iter().enumerate() {
        let cfg = NetConfig {
            vocab: 5 + rng.below(40),
            embed: 1 + rng.below(12),
            // Above 64 units the step kernels span several workgroups per row.
            hidden: if ci % 3 == 2 { 70 } else { 1 + rng.below(20) },
            cell,
            output,
            head,
        };
        let net = Net::new(cfg.clone(), ci as u64 + 1).expect("net");
        let Some(mut g) = gpu(&net, "predict_and_grads_match_cpu") else {
            return;
        };
        let n = 3 + rng.below(30);
        let rows = random_rows(&mut rng, n, cfg.vocab, 25);
        let batch: Vec<&[u32]> = rows.iter().map(|r| r.as_slice()).collect();
        let what = format!("case {ci} {cfg:?} n={n}");

        let want = net.predict(&batch).expect("cpu predict");
        let got = g.predict(&batch).expect("gpu predict");
        let e = rel_err(&got, &want);
        assert!(e < 1e-4, "{what}: predict rel err {e}");

        // Larger weights drive the gates into saturation, where the outputs are not all ~0.5.
        let big: Vec<Tensor> = net
            .tensors()
            .into_iter()
            .map(|(name, shape, v)| (name, shape, v.into_iter().map(|x| 4.0 * x).collect()))
            .collect();
        let net_big = Net::from_tensors(cfg.clone(), &big).expect("scaled");
        g.load(&net_big).expect("load");
        let e_big = rel_err(
            &g.predict(&batch).expect("gpu"),
            &net_big.predict(&batch).expect("cpu"),
        );
        assert!(
            e_big < 1e-4,
            "{what}: predict (scaled weights) rel err {e_big}"
        );
        g.load(&net).expect("load");

        let y = targets(&mut rng, &cfg, n);
        let w: Vec<f32> = (0..n).map(|_| 0.5 + rng.below(4) as f32 * 0.5).collect();
        let wt = weighted.then_some(w.as_slice());
        let (lc, gc) = net.loss_grad(&batch, &y, wt, loss).expect("cpu grads");
        let (lg, gg) = g.loss_grad(&batch, &y, wt, loss).expect("gpu grads");
        assert!(
            ((lg - lc) / lc.abs().max(1e-6)).abs() < 1e-4,
            "{what}: loss {lg} vs {lc}"
        );
        let eg = compare_grads(&what, gg.tensors(), &gc.tensors(), 1e-4);
        println!("{what}: predict rel err {e:.2e} (scaled {e_big:.2e}), loss {lg} vs {lc}, worst grad rel err {eg:.2e}");
    }
}

#[test]
fn large_predict_batch_spans_blocks() {
    let cfg = NetConfig {
        vocab: 30,
        embed: 6,
        hidden: 9,
        cell: Cell::Lstm,
        output: Output::Sigmoid,
        head: Head::Last,
    };
    let net = Net::new(cfg, 3).expect("net");
    let Some(mut g) = gpu(&net, "large_predict_batch_spans_blocks") else {
        return;
    };
    let mut rng = Lcg(11);
    let rows = random_rows(&mut rng, 5000, 30, 12);
    let batch: Vec<&[u32]> = rows.iter().map(|r| r.as_slice()).collect();
    let e = rel_err(
        &g.predict(&batch).expect("gpu"),
        &net.predict(&batch).expect("cpu"),
    );
    assert!(e < 1e-4, "rel err {e}");
}

#[test]
fn bad_input_is_an_error() {
    let cfg = NetConfig {
        vocab: 10,
        embed: 3,
        hidden: 4,
        cell: Cell::Gru,
        output: Output::Sigmoid,
        head: Head::Last,
    };
    let net = Net::new(cfg, 1).expect("net");
    let Some(mut g) = gpu(&net, "bad_input_is_an_error") else {
        return;
    };
    let bad: &[u32] = &[1, 10];
    assert!(g.predict(&[bad]).is_err());
    assert!(g
        .loss_grad(&[&[1, 2]], &[1.0, 0.0], None, Loss::Mse)
        .is_err());
    assert!(g.predict(&[]).expect("empty").is_empty());
}

/// A few minibatches of training on the GPU against `mallard_rnn::train` (no shuffling,
/// one thread), for both optimizers.
#[test]
fn train_epoch_matches_cpu_training() {
    let mut rng = Lcg(5);
    for (cell, opt) in [
        (Cell::Lstm, Optimizer::rmsprop()),
        (Cell::Gru, Optimizer::adam()),
        (Cell::BiLstm, Optimizer::adam()),
    ] {
        let cfg = NetConfig {
            vocab: 25,
            embed: 5,
            hidden: 8,
            cell,
            output: Output::Sigmoid,
            head: Head::Last,
        };
        let mut cpu = Net::new(cfg.clone(), 9).expect("net");
        let Some(mut g) = gpu(&cpu, "train_epoch_matches_cpu_training") else {
            return;
        };
        let rows = random_rows(&mut rng, 40, 25, 15);
        let labels: Vec<usize> = (0..40).map(|_| rng.below(2)).collect();
        let tc = TrainConfig {
            epochs: 2,
            batch_size: 16,
            optimizer: opt,
            loss: Loss::Mse,
            shuffle: false,
            threads: 1,
            ..TrainConfig::default()
        };
        let s = train(
            &mut cpu,
            &rows,
            &labels,
            &tc,
            &mut |_| {},
            &mut |_, _, _| {},
        )
        .expect("cpu train");
        let batch: Vec<&[u32]> = rows.iter().map(|r| r.as_slice()).collect();
        let y: Vec<f32> = labels.iter().map(|&l| l as f32).collect();
        let order: Vec<usize> = (0..40).collect();
        // Predicting first caches the input tables; training must not reuse stale ones.
        g.predict(&batch).expect("predict before training");
        for (ep, rep) in s.history.iter().enumerate() {
            let l = g
                .train_epoch(&batch, &y, None, &order, 16, Loss::Mse, opt)
                .expect("gpu epoch");
            assert!(
                ((l - rep.loss) / rep.loss).abs() < 1e-4,
                "{cell:?} epoch {ep}: loss {l} vs {}",
                rep.loss
            );
        }
        let got = g.tensors().expect("weights");
        for (a, b) in got.iter().zip(cpu.tensors()) {
            let max_diff =
                a.2.iter()
                    .zip(&b.2)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0f32, f32::max);
            // Several optimizer steps amplify rounding a little; still far below one step.
            assert!(max_diff < 1e-4, "{cell:?} {}: max diff {max_diff}", a.0);
        }
        let e = rel_err(
            &g.predict(&batch).expect("gpu"),
            &cpu.predict(&batch).expect("cpu"),
        );
        assert!(e < 1e-4, "{cell:?}: predict after training rel err {e}");
    }
}

/// Runs `mallard_rnn::train` (one thread) and the GPU `train` from the same weights with a
/// validation split, early stopping, class weights, clipping and shuffling, and compares the
/// histories, the summaries and the final weights.
/// `learnable`: labels mostly follow the rows (else random); `every_batch`: report every
/// minibatch to `on_batch` and compare those calls with the CPU's.
fn check_train_matches_cpu(
    cell: Cell,
    output: Output,
    loss: Loss,
    opt: Optimizer,
    seed: u64,
    learnable: bool,
    every_batch: bool,
) {
    let what = format!("{cell:?} {output:?} {loss:?}");
    let mut rng = Lcg(seed);
    let cfg = NetConfig {
        vocab: 20,
        embed: 6,
        hidden: 10,
        cell,
        output,
        head: Head::Last,
    };
    let classes = cfg.n_classes();
    let n = 60;
    let rows = random_rows(&mut rng, n, cfg.vocab, 12);
    // Random labels overfit at once (early stopping after a few epochs); a label the rows
    // determine (random every fifth row) keeps improving for longer.
    let labels: Vec<usize> = rows
        .iter()
        .map(|r| match r.first() {
            Some(&t) if learnable && rng.below(5) > 0 => t as usize % classes,
            _ => rng.below(classes),
        })
        .collect();
    let tc = TrainConfig {
        epochs: 10,
        batch_size: 8,
        optimizer: opt,
        loss,
        validation_split: 0.25,
        early_stopping_patience: Some(2),
        class_weights: Some((0..classes).map(|c| 1.0 + 0.75 * c as f32).collect()),
        seed: 42,
        shuffle: true,
        threads: 1,
        clip_norm: None,
    };
    let start = Net::new(cfg.clone(), seed).expect("net");
    // Clip at half the first minibatch's gradient norm, so that clipping bites.
    let batch: Vec<&[u32]> = rows[..8].iter().map(|r| r.as_slice()).collect();
    let y: Vec<f32> = match output {
        Output::Sigmoid => labels[..8].iter().map(|&l| l as f32).collect(),
        Output::Softmax(k) => labels[..8]
            .iter()
            .flat_map(|&l| (0..k).map(move |j| f32::from(u8::from(j == l))))
            .collect(),
    };
    let (_, g0) = start.loss_grad(&batch, &y, None, loss).expect("grads");
    let tc = TrainConfig {
        clip_norm: Some(0.5 * g0.global_norm()),
        ..tc
    };

    let mut cpu = start.clone();
    let mut cpu_calls = Vec::new();
    let want = train(
        &mut cpu,
        &rows,
        &labels,
        &tc,
        &mut |_| {},
        &mut |d, t, l| cpu_calls.push((d, t, l)),
    )
    .expect("cpu train");
    let mut gpu_net = start.clone();
    let mut epochs_seen = Vec::new();
    let mut batch_calls = Vec::new();
    let every = if every_batch {
        std::time::Duration::ZERO
    } else {
        std::time::Duration::from_secs(1)
    };
    let got = match crate::train::train_reporting(
        &mut gpu_net,
        &rows,
        &labels,
        &tc,
        &mut |r| epochs_seen.push(r.clone()),
        &mut |done, total, l| batch_calls.push((done, total, l)),
        every,
    ) {
        Ok(s) => s,
        Err(GpuError::NoAdapter(e)) => panic!("train_matches_cpu: {NO_ADAPTER} ({e})"),
        Err(e) => panic!("{what}: gpu train: {e}"),
    };
    println!(
        "{what}: {} epochs, best {:?}, stopped early {}",
        got.history.len(),
        got.best_epoch,
        got.stopped_early
    );
    assert_eq!(got.history.len(), want.history.len(), "{what}: epochs");
    assert_eq!(got.best_epoch, want.best_epoch, "{what}: best epoch");
    assert_eq!(
        got.stopped_early, want.stopped_early,
        "{what}: stopped early"
    );
    assert_eq!(epochs_seen, got.history, "{what}: on_epoch");
    let rel = |a: f32, b: f32| ((a - b) / b.abs().max(1e-6)).abs();
    for (g, w) in got.history.iter().zip(&want.history) {
        let (gv, wv) = (g.val_loss.expect("val"), w.val_loss.expect("val"));
        println!(
            "  epoch {}: loss {} vs {}, val_loss {gv} vs {wv}, val_acc {:?} vs {:?}",
            g.epoch, g.loss, w.loss, g.val_accuracy, w.val_accuracy
        );
        assert_eq!(g.epoch, w.epoch);
        assert!(rel(g.loss, w.loss) < 1e-3, "{what} epoch {}: loss", g.epoch);
        assert!(rel(gv, wv) < 1e-3, "{what} epoch {}: val_loss", g.epoch);
        assert_eq!(g.val_accuracy, w.val_accuracy, "{what} epoch {}", g.epoch);
    }
    // on_batch: the epoch's last report covers every minibatch with the epoch's loss.
    let total = 45usize.div_ceil(8);
    let finals: Vec<f32> = batch_calls
        .iter()
        .filter(|c| c.0 == total)
        .map(|c| c.2)
        .collect();
    assert!(batch_calls.iter().all(|c| c.1 == total && c.0 >= 1));
    assert_eq!(finals.len(), got.history.len(), "{what}: on_batch");
    for (l, r) in finals.iter().zip(&got.history) {
        assert!(
            rel(*l, r.loss) < 1e-6,
            "{what}: on_batch loss {l} vs {}",
            r.loss
        );
    }
    if every_batch {
        assert_eq!(batch_calls.len(), cpu_calls.len(), "{what}: on_batch calls");
        for (g, c) in batch_calls.iter().zip(&cpu_calls) {
            assert_eq!((g.0, g.1), (c.0, c.1), "{what}: on_batch");
            assert!(rel(g.2, c.2) < 1e-3, "{what}: on_batch {g:?} vs {c:?}");
        }
    }
    let mut worst_w = 0.0f32;
    for (a, b) in gpu_net.tensors().iter().zip(cpu.tensors()) {
        let max_diff =
            a.2.iter()
                .zip(&b.2)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
        assert!(max_diff < 1e-3, "{what} {}: max diff {max_diff}", a.0);
        worst_w = worst_w.max(max_diff);
    }
    println!("{what}: final weights max abs diff {worst_w:.2e}");
    // The weights moved, so the comparison above is not vacuous.
    let moved = gpu_net
        .tensors()
        .iter()
        .zip(start.tensors())
        .map(|(a, b)| rel_err(&a.2, &b.2))
        .fold(0.0, f64::max);
    assert!(moved > 1e-2, "{what}: weights barely moved ({moved})");
}

#[test]
fn train_matches_cpu_lstm() {
    let adam = Optimizer::Adam {
        lr: 0.02,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-7,
    };
    check_train_matches_cpu(
        Cell::Lstm,
        Output::Sigmoid,
        Loss::CrossEntropy,
        adam,
        21,
        false,
        false,
    );
}

#[test]
fn train_matches_cpu_gru() {
    let rms = Optimizer::RmsProp {
        lr: 0.01,
        rho: 0.9,
        eps: 1e-7,
    };
    check_train_matches_cpu(Cell::Gru, Output::Sigmoid, Loss::Mse, rms, 22, true, true);
}

#[test]
fn train_matches_cpu_bilstm_softmax() {
    let adam = Optimizer::Adam {
        lr: 0.02,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-7,
    };
    check_train_matches_cpu(
        Cell::BiLstm,
        Output::Softmax(3),
        Loss::CrossEntropy,
        adam,
        24,
        true,
        false,
    );
}

/// Input errors are the CPU's, reported before any device is opened.
#[test]
fn train_rejects_bad_input() {
    let cfg = NetConfig {
        vocab: 10,
        embed: 3,
        hidden: 4,
        cell: Cell::Lstm,
        output: Output::Sigmoid,
        head: Head::Last,
    };
    let mut net = Net::new(cfg, 1).expect("net");
    let rows = vec![vec![1, 2], vec![3], vec![4, 5, 6], vec![7]];
    let tc = TrainConfig {
        threads: 1,
        ..TrainConfig::default()
    };
    let mut run = |rows: &[Vec<u32>], labels: &[usize], tc: &TrainConfig| {
        crate::train(&mut net, rows, labels, tc, &mut |_| {}, &mut |_, _, _| {})
    };
    assert!(matches!(
        run(&rows, &[0, 1, 0], &tc),
        Err(GpuError::Rnn(mallard_rnn::RnnError::Length { .. }))
    ));
    assert!(matches!(
        run(&rows, &[0, 1, 2, 0], &tc),
        Err(GpuError::Rnn(mallard_rnn::RnnError::Label { row: 2, .. }))
    ));
    assert!(matches!(
        run(&[vec![1], vec![10]], &[0, 1], &tc),
        Err(GpuError::Rnn(mallard_rnn::RnnError::TokenOutOfRange {
            row: 1,
            ..
        }))
    ));
    let bad_split = TrainConfig {
        validation_split: 1.0,
        ..tc.clone()
    };
    assert!(matches!(
        run(&rows, &[0, 1, 0, 1], &bad_split),
        Err(GpuError::Rnn(mallard_rnn::RnnError::Config(_)))
    ));
    let bad_weights = TrainConfig {
        class_weights: Some(vec![1.0]),
        ..tc.clone()
    };
    assert!(matches!(
        run(&rows, &[0, 1, 0, 1], &bad_weights),
        Err(GpuError::Rnn(mallard_rnn::RnnError::Length { .. }))
    ));
}

mod keras {
    use std::path::PathBuf;

    use safetensors::{Dtype, SafeTensors};

    use super::*;

    fn shared() -> PathBuf {
        match std::env::var_os("MALLARD_SHARED") {
            Some(p) => PathBuf::from(p),
            None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
        }
    }

    fn f32s(st: &SafeTensors, name: &str) -> (Vec<usize>, Vec<f32>) {
        let t = st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(t.dtype(), Dtype::F32, "{name}");
        let v = t
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        (t.shape().to_vec(), v)
    }

    /// Keras' masked case (pre-padded with 0, `mask_zero=True`) equals feeding only the real
    /// tokens, which is what the GPU kernels do with variable-length rows.
    fn check(file: &str, cell: Cell) {
        let path = shared().join("fixtures/keras").join(file);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| {
            panic!("keras fixture {}: {e} (set MALLARD_SHARED)", path.display())
        });
        let st = SafeTensors::deserialize(&bytes).expect("safetensors");
        let mut tensors = Vec::new();
        for name in st.names() {
            if let Some(rest) = name.strip_prefix("masked.weight.") {
                let (shape, v) = f32s(&st, name);
                // Keras names the second Bidirectional model's layers `*_lstm_1`.
                let name = rest
                    .replace("forward_lstm_1/", "forward_lstm/")
                    .replace("backward_lstm_1/", "backward_lstm/");
                tensors.push((name, shape, v));
            }
        }
        let cfg = NetConfig {
            vocab: 60,
            embed: 8,
            hidden: 12,
            cell,
            output: Output::Sigmoid,
            head: Head::Last,
        };
        let net = Net::from_tensors(cfg, &tensors).expect("keras weights");
        let Some(mut g) = gpu(&net, "keras fixture") else {
            return;
        };
        let t = st.tensor("masked.input.tokens").expect("tokens");
        let cols = t.shape()[1];
        let flat: Vec<u32> = t
            .data()
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u32)
            .collect();
        let rows: Vec<Vec<u32>> = flat
            .chunks(cols)
            .map(|r| r.iter().copied().skip_while(|&x| x == 0).collect())
            .collect();
        let batch: Vec<&[u32]> = rows.iter().map(|r| r.as_slice()).collect();
        let (_, labels) = f32s(&st, "masked.input.labels");
        let (_, want_p) = f32s(&st, "masked.output.probs");
        let (_, want_l) = f32s(&st, "masked.output.mse_loss");

        let p = g.predict(&batch).expect("predict");
        let e = rel_err(&p, &want_p);
        assert!(e < 1e-5, "{file}: probs rel err {e}");
        let (l, grads) = g
            .loss_grad(&batch, &labels, None, Loss::Mse)
            .expect("grads");
        assert!(((l - want_l[0]) / want_l[0]).abs() < 1e-5, "{file}: loss");
        for (name, _, got) in grads.tensors() {
            let key = st
                .names()
                .into_iter()
                .find(|k| {
                    k.strip_prefix("masked.grad.").is_some_and(|r| {
                        r.replace("forward_lstm_1/", "forward_lstm/")
                            .replace("backward_lstm_1/", "backward_lstm/")
                            == *name
                    })
                })
                .unwrap_or_else(|| panic!("{file}: no Keras gradient for {name}"));
            let (_, want) = f32s(&st, key);
            let e = rel_err(got, &want);
            assert!(e < 1e-4, "{file}: grad {name} rel err {e}");
        }
    }

    #[test]
    fn lstm_matches_keras_masked() {
        check("lstm.safetensors", Cell::Lstm);
    }

    #[test]
    fn gru_matches_keras_masked() {
        check("gru.safetensors", Cell::Gru);
    }

    #[test]
    fn bilstm_matches_keras_masked() {
        check("bilstm.safetensors", Cell::BiLstm);
    }
}
