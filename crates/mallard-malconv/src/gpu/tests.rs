//! The GPU pooling against the CPU's (itself tested against the direct-loop definition):
//! the same windows and values to float rounding, the same training run.

use super::GpuPooler;
use crate::{
    predict_rows, predict_rows_pooled, train, train_pooled, Config, MalConv, MalConvError, Scratch,
    TrainConfig,
};
use mallard_rand::SplitMix64;

const NO_ADAPTER: &str = "no Vulkan adapter: install mesa-vulkan-drivers (lavapipe); \
                          .ci/run's GPU stage does";

fn pooler(net: &MalConv, chunk: usize) -> GpuPooler {
    match GpuPooler::with_chunk(net, chunk) {
        Ok(p) => p,
        Err(e) => panic!("{NO_ADAPTER} ({e})"),
    }
}

fn small() -> Config {
    Config {
        embed: 3,
        channels: 4,
        window: 8,
        hidden: 5,
    }
}

/// A fresh network has zero biases; give them values so the kernels' use of them is tested.
fn biased(mut net: MalConv, seed: u64) -> MalConv {
    let mut r = SplitMix64::new(seed);
    for b in net.weights_mut().conv_bias.iter_mut() {
        *b = r.range(-0.5, 0.5) as f32;
    }
    net
}

fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut r = SplitMix64::new(seed);
    (0..n).map(|_| r.below(256) as u8).collect()
}

/// Same windows (unless two are within rounding of each other) and values to rounding.
fn assert_pools_like_cpu(net: &MalConv, inputs: &[Vec<u8>], gpu: &mut GpuPooler, what: &str) {
    let win = net.config().window;
    let mut s = Scratch::default();
    let refs: Vec<&[u8]> = inputs.iter().map(|v| v.as_slice()).collect();
    let got = gpu.pool_inputs(&refs).unwrap();
    assert_eq!(got.len(), inputs.len());
    for (i, (input, g)) in inputs.iter().zip(&got).enumerate() {
        let want = net.pool_bytes(input, &mut s);
        assert_eq!(g.windows, want.windows, "{what}: input {i} windows");
        for ch in 0..net.config().channels {
            let tol = 1e-4 * (1.0 + want.z[ch].abs());
            assert!(
                (g.z[ch] - want.z[ch]).abs() <= tol,
                "{what}: input {i} channel {ch}: z {} vs {}",
                g.z[ch],
                want.z[ch]
            );
            if g.at[ch] != want.at[ch] {
                // Only a near-tie may pick another window: the CPU's value of the GPU's
                // window must equal its maximum to rounding.
                let w = g.at[ch] as usize;
                let end = ((w + 1) * win).min(input.len());
                let alone = net.pool_bytes(&input[(w * win).min(end)..end], &mut s);
                assert!(
                    (alone.z[ch] - want.z[ch]).abs() <= tol,
                    "{what}: input {i} channel {ch}: window {} vs {}",
                    g.at[ch],
                    want.at[ch]
                );
            } else {
                assert!((g.value[ch] - want.value[ch]).abs() <= tol);
                assert!((g.gate[ch] - want.gate[ch]).abs() <= tol);
            }
        }
    }
}

#[test]
fn pooling_matches_the_cpu_across_chunk_edges() {
    let net = biased(MalConv::new(small(), 7).unwrap(), 70);
    // Empty, shorter than a window, one window, ragged, many chunks.
    let inputs: Vec<Vec<u8>> = [(0, 1), (5, 2), (8, 3), (61, 4), (513, 5), (2000, 6)]
        .iter()
        .map(|&(n, seed)| bytes(n, seed))
        .collect();
    for chunk in [1, 3, 8, 64, 4096] {
        let mut gpu = pooler(&net, chunk);
        assert_pools_like_cpu(&net, &inputs, &mut gpu, &format!("chunk {chunk}"));
        // A second batch on the same buffers, fewer inputs: no state carried over.
        assert_pools_like_cpu(
            &net,
            &inputs[3..5],
            &mut gpu,
            &format!("chunk {chunk}, again"),
        );
    }
}

#[test]
fn default_sizes_and_ties_pool_like_the_cpu() {
    let net = biased(MalConv::new(Config::default(), 3).unwrap(), 30);
    let mut gpu = pooler(&net, 16);
    // 70,000 random bytes, and a file of zeros whose windows all tie but the last
    // (padded): the first window must win every tie.
    let mut zeros = vec![0u8; 512 * 40 + 100];
    zeros[512 * 39 + 7] = 0x90;
    let inputs = vec![bytes(70_000, 9), zeros, Vec::new()];
    assert_pools_like_cpu(&net, &inputs, &mut gpu, "default config");
    let got = gpu.pool_inputs(&[&inputs[1]]).unwrap();
    let want = net.pool_bytes(&inputs[1], &mut Scratch::default());
    assert_eq!(got[0].at, want.at, "ties go to the first window");
    assert!(gpu.chunk_windows() == 16);
}

fn dataset(n: usize) -> (Vec<Vec<u8>>, Vec<usize>) {
    let mut r = SplitMix64::new(5);
    let mut inputs = Vec::new();
    let mut labels = Vec::new();
    for i in 0..n {
        let len = 40 + r.below(200) as usize;
        let mut b = bytes(len, 100 + i as u64);
        let y = i % 2;
        if y == 1 {
            // A planted run for the network to find.
            let at = r.below(len as u64 - 16) as usize;
            b[at..at + 16].fill(0xCC);
        }
        inputs.push(b);
        labels.push(y);
    }
    (inputs, labels)
}

/// Two epochs with the forward pass on the GPU against the CPU's: the same shuffles and
/// updates, so the weights agree to float rounding.
#[test]
fn training_on_the_gpu_follows_the_cpu() {
    let (inputs, labels) = dataset(24);
    let source = |i: usize| -> Result<Vec<u8>, String> { Ok(inputs[i].clone()) };
    let rows: Vec<usize> = (0..20).collect();
    let val: Vec<usize> = (20..24).collect();
    let cfg = TrainConfig {
        epochs: 2,
        batch_size: 4,
        patience: None,
        seed: 3,
        threads: 2,
        ..TrainConfig::default()
    };
    let mut cpu = MalConv::new(small(), 1).unwrap();
    let mut on = |_: &mallard_rnn::EpochReport| {};
    let a = train(&mut cpu, &source, &labels, &rows, &val, &cfg, &mut on).unwrap();
    let mut gpu_net = MalConv::new(small(), 1).unwrap();
    let mut gpu = pooler(&gpu_net, 5);
    let b = train_pooled(
        &mut gpu_net,
        &source,
        &labels,
        &rows,
        &val,
        &cfg,
        &mut gpu,
        &mut on,
    )
    .unwrap();
    assert_eq!(a.history.len(), b.history.len());
    for (x, y) in a.history.iter().zip(&b.history) {
        assert!(
            (x.loss - y.loss).abs() < 1e-4,
            "loss {} vs {}",
            x.loss,
            y.loss
        );
    }
    for (name, (x, y)) in [
        "embed",
        "conv",
        "conv_bias",
        "dense",
        "dense_bias",
        "out",
        "out_bias",
    ]
    .iter()
    .zip(
        cpu.weights()
            .slices()
            .into_iter()
            .zip(gpu_net.weights().slices()),
    ) {
        for (i, (p, q)) in x.iter().zip(y).enumerate() {
            assert!((p - q).abs() < 1e-4, "{name}[{i}]: {p} vs {q}");
        }
    }
    let all: Vec<usize> = (0..24).collect();
    let pc = predict_rows(&gpu_net, &source, &all, 2).unwrap();
    let pg = predict_rows_pooled(&gpu_net, &source, &all, 2, &mut gpu).unwrap();
    for (p, q) in pc.iter().zip(&pg) {
        assert!((p - q).abs() < 1e-5, "{p} vs {q}");
    }
}

#[test]
fn another_networks_weights_are_refused() {
    let net = MalConv::new(small(), 1).unwrap();
    let mut gpu = pooler(&net, 8);
    let other = MalConv::new(
        Config {
            channels: 8,
            ..small()
        },
        1,
    )
    .unwrap();
    use crate::BatchPooler;
    assert!(matches!(gpu.load(&other), Err(MalConvError::Config(_))));
}
