use super::*;

fn small() -> Config {
    Config {
        embed: 3,
        channels: 4,
        window: 8,
        hidden: 5,
    }
}

fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut r = SplitMix64::new(seed);
    (0..n).map(|_| r.below(256) as u8).collect()
}

/// Direct loops, no sgemm, no chunks: the definition.
fn reference(net: &MalConv, input: &[u8]) -> f64 {
    let (cfg, w) = (net.config(), net.weights());
    let (e, win, c, hn) = (cfg.embed, cfg.window, cfg.channels, cfg.hidden);
    let windows = input.len().div_ceil(win).max(1);
    let mut z = vec![f64::NEG_INFINITY; c];
    for wi in 0..windows {
        for ch in 0..c {
            let (mut a, mut g) = (w.conv_bias[ch] as f64, w.conv_bias[c + ch] as f64);
            for pos in 0..win {
                let tok = input.get(wi * win + pos).map_or(PAD, |&b| b as usize);
                for d in 0..e {
                    let x = w.embed[tok * e + d] as f64;
                    let k = pos * e + d;
                    a += x * w.conv[k * 2 * c + ch] as f64;
                    g += x * w.conv[k * 2 * c + c + ch] as f64;
                }
            }
            z[ch] = z[ch].max(a / (1.0 + (-g).exp()));
        }
    }
    let mut logit = w.out_bias[0] as f64;
    for j in 0..hn {
        let mut h = w.dense_bias[j] as f64;
        for ch in 0..c {
            h += z[ch] * w.dense[ch * hn + j] as f64;
        }
        logit += h.max(0.0) * w.out[j] as f64;
    }
    1.0 / (1.0 + (-logit).exp())
}

#[test]
fn forward_matches_the_direct_definition() {
    let net = MalConv::new(small(), 7).unwrap();
    let mut s = Scratch::default();
    // Empty, shorter than a window, ragged end, several chunks (64 windows of 8 bytes).
    for (n, seed) in [(0, 1), (5, 2), (8, 3), (61, 4), (513, 5), (2000, 6)] {
        let b = bytes(n, seed);
        let got = net.score_bytes(&b, &mut s) as f64;
        let want = reference(&net, &b);
        assert!((got - want).abs() < 1e-5, "{n} bytes: {got} vs {want}");
    }
    let net = MalConv::new(Config::default(), 3).unwrap();
    let b = bytes(70_000, 9);
    let got = net.score_bytes(&b, &mut s) as f64;
    assert!((got - reference(&net, &b)).abs() < 1e-4);
}

/// Hands out at most `step` bytes per read, to cross chunk edges anywhere.
struct Trickle<'a>(&'a [u8], usize);
impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.1.min(buf.len()).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn streaming_pools_exactly_as_in_memory() {
    let net = MalConv::new(small(), 11).unwrap();
    let mut s = Scratch::default();
    for n in [0, 3, 512, 513, 1500, 5000] {
        let b = bytes(n, n as u64);
        let whole = net.pool_bytes(&b, &mut s);
        for step in [1, 7, 512, 4096] {
            let streamed = net
                .pool_reader(Trickle(&b, step), u64::MAX, &mut s)
                .unwrap();
            assert_eq!(streamed, whole, "{n} bytes read {step} at a time");
        }
        // The cap reads a prefix.
        let capped = net.pool_reader(&b[..], 100, &mut s).unwrap();
        assert_eq!(capped, net.pool_bytes(&b[..n.min(100)], &mut s));
    }
}

fn loss_of(net: &MalConv, b: &[u8], t: f32, w: f32) -> f64 {
    let p = reference(net, b);
    -(w as f64) * (t as f64 * p.ln() + (1.0 - t as f64) * (1.0 - p).ln())
}

#[test]
fn gradient_matches_finite_differences() {
    let mut net = MalConv::new(small(), 5).unwrap();
    // Larger head weights so that every layer's gradient is well above rounding.
    for x in net.weights_mut().dense.iter_mut() {
        *x *= 3.0;
    }
    let b = bytes(37, 8);
    for (t, w) in [(1.0f32, 1.0f32), (0.0, 2.5)] {
        let mut g = net.zero_grads();
        let mut s = Scratch::default();
        let loss = net.accumulate_grad(&b, t, w, &mut g, &mut s) as f64;
        assert!((loss - loss_of(&net, &b, t, w)).abs() < 1e-5);
        let analytic: Vec<Vec<f32>> = g.slices().iter().map(|s| s.to_vec()).collect();
        let (mut checked, mut nonzero) = (0, 0);
        for (ti, grad) in analytic.iter().enumerate() {
            for j in 0..grad.len() {
                let eps = 1e-3f32;
                let mut plus = net.clone();
                plus.weights_mut().slices_mut()[ti][j] += eps;
                let mut minus = net.clone();
                minus.weights_mut().slices_mut()[ti][j] -= eps;
                let fd =
                    (loss_of(&plus, &b, t, w) - loss_of(&minus, &b, t, w)) / (2.0 * eps as f64);
                let tol = 2e-3 + 2e-2 * fd.abs();
                // The padding row is not a weight: it stays zero and gets no gradient.
                if ti == 0 && j >= PAD * net.config().embed {
                    assert_eq!(grad[j], 0.0);
                    continue;
                }
                assert!(
                    (grad[j] as f64 - fd).abs() < tol,
                    "tensor {ti} [{j}]: analytic {} vs finite difference {fd}",
                    grad[j]
                );
                checked += 1;
                nonzero += usize::from(fd.abs() > 1e-3);
            }
        }
        assert!(
            checked > 900 && nonzero > 100,
            "{checked} checked, {nonzero} non-zero"
        );
    }
}

#[test]
fn tensors_round_trip_and_bad_ones_are_refused() {
    let net = MalConv::new(small(), 1).unwrap();
    let t = net.tensors();
    assert_eq!(MalConv::from_tensors(small(), &t).unwrap(), net);
    let mut short = t.clone();
    short[1].2.pop();
    assert!(matches!(
        MalConv::from_tensors(small(), &short),
        Err(MalConvError::Tensor { .. })
    ));
    let mut nan = t.clone();
    nan[3].2[0] = f32::NAN;
    assert!(MalConv::from_tensors(small(), &nan).is_err());
    let huge = Config {
        window: 65536,
        channels: 1024,
        ..small()
    };
    assert!(huge.check().is_err());
}

#[test]
fn attributions_add_up_to_gradient_times_activation() {
    let net = MalConv::new(small(), 4).unwrap();
    let b = bytes(300, 2);
    let mut s = Scratch::default();
    let p = net.pool_bytes(&b, &mut s);
    let r = net.attributions(&p);
    assert_eq!(r.iter().map(|x| x.channels).sum::<usize>(), 4);
    let dz = net.dlogit_dz(&p.z);
    let want: f32 = dz.iter().zip(&p.z).map(|(a, b)| a * b).sum();
    let got: f32 = r.iter().map(|x| x.weight).sum();
    assert!((want - got).abs() < 1e-5);
    assert!(r.windows(2).all(|w| w[0].weight.abs() >= w[1].weight.abs()));
    assert!(r.iter().all(|x| x.end - x.start == 8 && x.start % 8 == 0));
}

#[test]
fn learns_a_planted_byte_pattern() {
    // Malicious rows carry a run of 80 0xCC bytes (a whole window of it, however aligned)
    // at a random offset; MalConv must find it wherever it is (max pooling), on rows it
    // has not seen.
    let marker = [0xCCu8; 80];
    let mut rng = SplitMix64::new(3);
    let mut rows = Vec::new();
    let mut labels = Vec::new();
    for i in 0..240 {
        let n = 200 + rng.below(800) as usize;
        let mut b = bytes(n, 100 + i);
        let y = i % 2;
        if y == 1 {
            let at = rng.below((n - marker.len()) as u64) as usize;
            b[at..at + marker.len()].copy_from_slice(&marker);
        }
        rows.push(b);
        labels.push(y as usize);
    }
    let cfg = Config {
        embed: 4,
        channels: 8,
        window: 32,
        hidden: 8,
    };
    let mut net = MalConv::new(cfg, 1).unwrap();
    let source = |i: usize| Ok(rows[i].clone());
    let train_rows: Vec<usize> = (0..160).collect();
    let test_rows: Vec<usize> = (160..240).collect();
    let tc = TrainConfig {
        epochs: 30,
        batch_size: 8,
        optimizer: mallard_rnn::Optimizer::Adam {
            lr: 1e-2,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
        },
        patience: None,
        class_weights: None,
        seed: 2,
        threads: 2,
    };
    let summary = train(
        &mut net,
        &source,
        &labels,
        &train_rows,
        &[],
        &tc,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(summary.history.len(), 30);
    let p = predict_rows(&net, &source, &test_rows, 2).unwrap();
    let right = test_rows
        .iter()
        .zip(&p)
        .filter(|(&i, &pi)| (pi >= 0.5) == (labels[i] == 1))
        .count();
    assert!(right >= 76, "{right} of 80 held-out rows right");
    // The marker's window is the top reason of a malicious row.
    let i = test_rows.iter().copied().find(|&i| labels[i] == 1).unwrap();
    let at = rows[i]
        .windows(marker.len())
        .position(|w| w == marker)
        .unwrap() as u64;
    let mut s = Scratch::default();
    let top = &net.attributions(&net.pool_bytes(&rows[i], &mut s))[0];
    assert!(top.weight > 0.0);
    assert!(
        top.start <= at + marker.len() as u64 && at < top.end,
        "{top:?} vs marker at {at}"
    );
}

#[test]
fn training_is_reproducible_and_refuses_bad_labels() {
    let rows: Vec<Vec<u8>> = (0..20).map(|i| bytes(100, i)).collect();
    let labels: Vec<usize> = (0..20).map(|i| i % 2).collect();
    let source = |i: usize| Ok(rows[i].clone());
    let tc = TrainConfig {
        epochs: 2,
        threads: 2,
        ..TrainConfig::default()
    };
    let all: Vec<usize> = (0..20).collect();
    let run = || {
        let mut net = MalConv::new(small(), 9).unwrap();
        train(
            &mut net,
            &source,
            &labels,
            &all[..16],
            &all[16..],
            &tc,
            &mut |_| {},
        )
        .unwrap();
        net
    };
    assert_eq!(run(), run());
    let mut net = MalConv::new(small(), 9).unwrap();
    let bad = vec![2usize; 20];
    assert!(train(&mut net, &source, &bad, &all, &[], &tc, &mut |_| {}).is_err());
    let failing = |i: usize| Err(format!("file {i}: gone"));
    let e = train(&mut net, &failing, &labels, &all, &[], &tc, &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains("gone"));
}
