//! Unit tests that need crate internals: f64 finite-difference gradient checks and optimizer
//! steps against hand-computed values.

use crate::kernel::{logits_impl, loss_grad_impl};
use crate::optim::{OptState, Optimizer};
use crate::params::Params;
use crate::real::Real;
use crate::rng::SplitMix64;
use crate::scratch::Scratch;
use crate::{Cell, Head, Loss, Net, NetConfig, Output};

/// A pool whose free buffers are all NaN: a kernel that read a reused buffer before writing
/// it would turn its outputs to NaN.
fn poisoned<T: Real>() -> Scratch<T> {
    let s = Scratch::new();
    for len in [
        8, 64, 300, 1000, 5000, 20000, 20000, 20000, 20000, 20000, 20000, 20000,
    ] {
        s.give(vec![T::from_f64(f64::NAN); len]);
    }
    s
}

fn perturbed(cfg: &NetConfig, seed: u64) -> Params<f64> {
    // Start from the Keras init and add noise so biases and the dense layer are non-trivial.
    let net = Net::new(cfg.clone(), seed).unwrap();
    let mut p = net.params().map(|x| x as f64);
    let mut rng = SplitMix64::new(seed ^ 0xabcdef);
    for s in p.slices_mut() {
        s.iter_mut().for_each(|x| *x += rng.range(-0.3, 0.3));
    }
    p
}

fn fd_check(cell: Cell, output: Output, loss: Loss, head: Head) {
    let cfg = NetConfig {
        vocab: 7,
        embed: 3,
        hidden: 4,
        cell,
        output,
        head,
    };
    let k = cfg.n_out();
    let mut p = perturbed(&cfg, 11);
    // Variable lengths, an empty row, repeated tokens, and unequal row weights.
    let rows: Vec<Vec<u32>> = vec![
        vec![1, 2, 3, 4, 5],
        vec![6, 0],
        vec![],
        vec![3, 3, 1, 6, 2, 2, 0],
        vec![5],
    ];
    let batch: Vec<&[u32]> = rows.iter().map(|r| r.as_slice()).collect();
    let n = batch.len();
    let mut targets = vec![0.0f64; n * k];
    for i in 0..n {
        targets[i * k + (i * 7 + 1) % k] = 1.0;
    }
    let weights = [1.0, 0.5, 2.0, 1.5, 0.25];
    // Every call shares one pool of reused buffers, NaN to begin with.
    let scratch = poisoned();
    let run = |p: &Params<f64>, threads| {
        loss_grad_impl(
            &cfg,
            p,
            &batch,
            &targets,
            Some(&weights),
            loss,
            threads,
            &scratch,
        )
    };
    let (_, g) = run(&p, 2);
    let (_, g1) = run(&p, 1);
    let eval = |p: &Params<f64>| run(p, 1).0;
    let h = 1e-6;
    let names = cfg.tensor_specs();
    let grads: Vec<Vec<f64>> = g.slices().iter().map(|s| s.to_vec()).collect();
    let grads1: Vec<Vec<f64>> = g1.slices().iter().map(|s| s.to_vec()).collect();
    let mut checked = 0;
    for (ti, (name, _)) in names.iter().enumerate() {
        for j in 0..grads[ti].len() {
            let orig = p.slices()[ti][j];
            p.slices_mut()[ti][j] = orig + h;
            let lp = eval(&p);
            p.slices_mut()[ti][j] = orig - h;
            let lm = eval(&p);
            p.slices_mut()[ti][j] = orig;
            let num = (lp - lm) / (2.0 * h);
            let ana = grads[ti][j];
            assert!(
                (num - ana).abs() <= 1e-7 + 1e-6 * num.abs(),
                "{cell:?} {output:?} {loss:?} {head:?} {name}[{j}]: analytic {ana} vs numeric {num}"
            );
            assert!(
                (grads1[ti][j] - ana).abs() <= 1e-12 + 1e-9 * ana.abs(),
                "threads disagree at {name}[{j}]"
            );
            checked += usize::from(ana.abs() > 1e-6);
        }
    }
    // Guard against a vacuous pass (all gradients zero).
    assert!(checked > 50, "only {checked} non-zero gradients");
}

#[test]
fn finite_differences_all_cells_outputs_losses_heads() {
    for cell in [Cell::Lstm, Cell::Gru, Cell::BiLstm] {
        for output in [Output::Sigmoid, Output::Softmax(3)] {
            for loss in [Loss::Mse, Loss::CrossEntropy] {
                for head in [Head::Last, Head::Mean, Head::Max] {
                    fd_check(cell, output, loss, head);
                }
            }
        }
    }
}

#[test]
fn empty_row_uses_zero_state_and_padding_changes_output() {
    let cfg = NetConfig {
        vocab: 5,
        embed: 2,
        hidden: 3,
        cell: Cell::Lstm,
        output: Output::Sigmoid,
        head: Head::Last,
    };
    let net = Net::new(cfg, 3).unwrap();
    let p = net.params().map(|x| x as f64);
    let prep = crate::kernel::prepare(&net.cfg, &p, false);
    let z = logits_impl(&net.cfg, &p, &prep, &[&[], &[0, 0, 1, 2], &[1, 2]], 1);
    // Empty row: zero final state, so the logit is the dense bias (0 at init).
    assert_eq!(z[0], 0.0);
    // Running over explicit zero padding (Keras without mask) differs from skipping it.
    assert!((z[1] - z[2]).abs() > 1e-9);
}

fn one_tensor_params(w: f32) -> (crate::params::NetConfig, Params<f32>) {
    let cfg = NetConfig {
        vocab: 1,
        embed: 1,
        hidden: 1,
        cell: Cell::Gru,
        output: Output::Sigmoid,
        head: Head::Last,
    };
    let mut p = Params::<f32>::zeros(&cfg);
    p.emb[0] = w;
    (cfg, p)
}

#[test]
fn adam_two_steps_match_hand_computation() {
    let (cfg, mut p) = one_tensor_params(1.0);
    let mut st = OptState::new(
        Optimizer::Adam {
            lr: 0.01,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
        },
        &p,
    );
    let mut g = Params::<f32>::zeros(&cfg);
    // Values from the Keras formula evaluated by hand (Python, f64).
    for (gv, want) in [
        (0.5f32, 0.990_000_063_245_153_2f64),
        (-0.25, 0.987_336_707_920_792_2),
    ] {
        g.emb[0] = gv;
        st.step(&mut p, &g);
        assert!(
            (p.emb[0] as f64 - want).abs() < 1e-6,
            "{} vs {want}",
            p.emb[0]
        );
        assert_eq!(
            p.dense_w,
            vec![0.0],
            "zero gradient must leave weights alone"
        );
    }
}

#[test]
fn rmsprop_two_steps_match_hand_computation() {
    let (cfg, mut p) = one_tensor_params(1.0);
    let mut st = OptState::new(
        Optimizer::RmsProp {
            lr: 0.01,
            rho: 0.9,
            eps: 1e-7,
        },
        &p,
    );
    let mut g = Params::<f32>::zeros(&cfg);
    // w -= lr g / sqrt(v + eps) with v = rho v + (1 - rho) g^2 (eps inside the root, TF2).
    for (gv, want) in [
        (0.5f32, 0.968_377_286_643_679_7f64),
        (-0.25, 0.983_121_456_617_157),
    ] {
        g.emb[0] = gv;
        st.step(&mut p, &g);
        assert!(
            (p.emb[0] as f64 - want).abs() < 1e-6,
            "{} vs {want}",
            p.emb[0]
        );
    }
}

#[test]
fn init_follows_keras_conventions() {
    let cfg = NetConfig {
        vocab: 50,
        embed: 6,
        hidden: 5,
        cell: Cell::Lstm,
        output: Output::Sigmoid,
        head: Head::Last,
    };
    let net = Net::new(cfg, 9).unwrap();
    let p = net.params();
    assert!(p.emb.iter().all(|x| x.abs() <= 0.05));
    let g = 20;
    let limit = (6.0f32 / (6 + g) as f32).sqrt();
    assert!(p.dirs[0].w.iter().all(|x| x.abs() <= limit));
    // Orthogonal recurrent kernel: U U^T = I (rows orthonormal).
    let u = &p.dirs[0].u;
    for a in 0..5 {
        for b in 0..5 {
            let dot: f32 = (0..g).map(|j| u[a * g + j] * u[b * g + j]).sum();
            let want = if a == b { 1.0 } else { 0.0 };
            assert!((dot - want).abs() < 1e-5, "U U^T[{a},{b}] = {dot}");
        }
    }
    // unit_forget_bias: only the forget block is 1.
    let b = &p.dirs[0].b;
    assert!(
        b[..5].iter().all(|&x| x == 0.0)
            && b[5..10].iter().all(|&x| x == 1.0)
            && b[10..].iter().all(|&x| x == 0.0)
    );
    // Same seed, same weights; another seed, other weights.
    assert_eq!(
        Net::new(net.cfg.clone(), 9).unwrap().tensors(),
        net.tensors()
    );
    assert_ne!(
        Net::new(net.cfg.clone(), 10).unwrap().tensors(),
        net.tensors()
    );
}

#[test]
fn reused_buffers_give_the_bits_of_fresh_ones() {
    // A long batch, a short one, then the long one again through one pool (NaN to begin
    // with): every gradient must be bit-identical to a run on fresh zeroed buffers. Run on
    // the f32 path, so the SIMD kernels are the ones checked.
    let mut rng = SplitMix64::new(5);
    let mut rows_of = |n: usize, maxlen: u64| -> Vec<Vec<u32>> {
        (0..n)
            .map(|_| {
                let len = rng.below(maxlen + 1) as usize;
                (0..len).map(|_| rng.below(50) as u32).collect()
            })
            .collect()
    };
    let (long, short) = (rows_of(33, 60), rows_of(17, 25));
    for cell in [Cell::Lstm, Cell::Gru, Cell::BiLstm] {
        let cfg = NetConfig {
            vocab: 50,
            embed: 8,
            hidden: 20,
            cell,
            output: Output::Sigmoid,
            head: Head::Max,
        };
        let net = Net::new(cfg.clone(), 3).unwrap();
        let shared = poisoned::<f32>();
        for rows in [&long, &short, &long] {
            let batch: Vec<&[u32]> = rows.iter().map(|r| r.as_slice()).collect();
            let targets: Vec<f32> = (0..rows.len()).map(|i| (i % 2) as f32).collect();
            let run = |s: &Scratch<f32>| {
                let (l, g) = loss_grad_impl(
                    &cfg,
                    net.params(),
                    &batch,
                    &targets,
                    None,
                    Loss::CrossEntropy,
                    2,
                    s,
                );
                let bits: Vec<u32> = g
                    .slices()
                    .iter()
                    .flat_map(|t| t.iter().map(|x| x.to_bits()))
                    .collect();
                (l.to_bits(), bits)
            };
            let (fresh, reused) = (run(&Scratch::new()), run(&shared));
            assert!(fresh.1.iter().any(|&b| b != 0));
            assert_eq!(fresh, reused, "{cell:?}, {} rows", rows.len());
        }
    }
}

#[test]
fn f32_kernels_give_the_f64_gradients() {
    // The f32 path (panel kernels, SIMD activations, blocks of steps in the backward pass)
    // against the f64 path that the finite differences check, on the same weights.
    let mut rng = SplitMix64::new(9);
    let rows: Vec<Vec<u32>> = (0..37)
        .map(|_| {
            let len = rng.below(41) as usize;
            (0..len).map(|_| rng.below(30) as u32).collect()
        })
        .collect();
    let batch: Vec<&[u32]> = rows.iter().map(|r| r.as_slice()).collect();
    for cell in [Cell::Lstm, Cell::Gru, Cell::BiLstm] {
        for head in [Head::Last, Head::Mean] {
            let cfg = NetConfig {
                vocab: 30,
                embed: 6,
                hidden: 37,
                cell,
                output: Output::Softmax(3),
                head,
            };
            let p64 = perturbed(&cfg, 4);
            let p32 = p64.map(|x| x as f32);
            let t64: Vec<f64> = (0..rows.len() * 3)
                .map(|i| f64::from(i % 3 == (i / 3) % 3))
                .collect();
            let t32: Vec<f32> = t64.iter().map(|&x| x as f32).collect();
            let (l64, g64) = loss_grad_impl(
                &cfg,
                &p64,
                &batch,
                &t64,
                None,
                Loss::CrossEntropy,
                2,
                &Scratch::new(),
            );
            let (l32, g32) = loss_grad_impl(
                &cfg,
                &p32,
                &batch,
                &t32,
                None,
                Loss::CrossEntropy,
                2,
                &Scratch::new(),
            );
            assert!(
                (l64 - l32).abs() < 1e-5 * l64.abs(),
                "{cell:?} loss {l64} vs {l32}"
            );
            for (i, (a, b)) in g64.slices().iter().zip(g32.slices()).enumerate() {
                let scale = a.iter().fold(0.0f64, |m, &x| m.max(x.abs()));
                for (j, (&x, &y)) in a.iter().zip(b.iter()).enumerate() {
                    assert!(
                        (x - y as f64).abs() <= 1e-4 * scale + 1e-7,
                        "{cell:?} {head:?} tensor {i}[{j}]: f64 {x} vs f32 {y}"
                    );
                }
            }
        }
    }
}
