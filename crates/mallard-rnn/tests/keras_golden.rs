//! Forward pass, MSE loss and every gradient against Keras (tf_keras 2.21) fixtures.

use std::path::PathBuf;

use mallard_rnn::{Cell, Head, Loss, Net, NetConfig, Output, Tensor};
use safetensors::{Dtype, SafeTensors};

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

fn tokens(st: &SafeTensors, name: &str) -> Vec<Vec<u32>> {
    let t = st.tensor(name).unwrap();
    assert_eq!(t.dtype(), Dtype::I32);
    let cols = t.shape()[1];
    let v: Vec<u32> = t
        .data()
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u32)
        .collect();
    v.chunks(cols).map(|r| r.to_vec()).collect()
}

/// Keras names the layers of a second Bidirectional model `forward_lstm_1`, `backward_lstm_1`.
fn canonical(name: &str) -> String {
    name.replace("forward_lstm_1/", "forward_lstm/")
        .replace("backward_lstm_1/", "backward_lstm/")
}

fn named(st: &SafeTensors, prefix: &str) -> Vec<Tensor> {
    let mut out = Vec::new();
    for name in st.names() {
        if let Some(rest) = name.strip_prefix(prefix) {
            let (shape, v) = f32s(st, name);
            out.push((canonical(rest), shape, v));
        }
    }
    out
}

/// Largest |a - b| relative to the largest |b| in the tensor (so tiny entries don't dominate).
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

fn check(file: &str, cell: Cell) {
    let bytes = std::fs::read(shared().join("fixtures/keras").join(file)).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    for case in ["dense", "masked"] {
        let cfg = NetConfig {
            vocab: 60,
            embed: 8,
            hidden: 12,
            cell,
            output: Output::Sigmoid,
            head: Head::Last,
        };
        let net = Net::from_tensors(cfg, &named(&st, &format!("{case}.weight."))).unwrap();
        let mut rows = tokens(&st, &format!("{case}.input.tokens"));
        if case == "masked" {
            // mask_zero=True on pre-padded rows == feeding only the real tokens.
            for r in &mut rows {
                let start = r.iter().position(|&t| t != 0).unwrap_or(r.len());
                r.drain(..start);
            }
            assert!(
                rows.iter().any(|r| r.len() < 10),
                "fixture should have padding"
            );
        }
        let batch: Vec<&[u32]> = rows.iter().map(|r| r.as_slice()).collect();
        let (_, labels) = f32s(&st, &format!("{case}.input.labels"));
        let (_, want_p) = f32s(&st, &format!("{case}.output.probs"));
        let (_, want_l) = f32s(&st, &format!("{case}.output.mse_loss"));

        let p = net.predict(&batch).unwrap();
        let e = rel_err(&p, &want_p);
        assert!(
            e < 2e-6,
            "{file} {case} probs rel err {e}: {p:?} vs {want_p:?}"
        );

        for threads in [1, 2] {
            let (l, g) = net
                .loss_grad_threads(&batch, &labels, None, Loss::Mse, threads)
                .unwrap();
            assert!(
                ((l - want_l[0]) / want_l[0]).abs() < 1e-5,
                "{file} {case} loss {l} vs {}",
                want_l[0]
            );
            let grads = g.tensors();
            assert_eq!(grads.len(), named(&st, &format!("{case}.grad.")).len());
            for (name, shape, want) in named(&st, &format!("{case}.grad.")) {
                let got = grads
                    .iter()
                    .find(|t| t.0 == name)
                    .unwrap_or_else(|| panic!("no grad {name}"));
                assert_eq!(got.1, shape, "{name}");
                let e = rel_err(&got.2, &want);
                assert!(e < 2e-5, "{file} {case} grad {name} rel err {e}");
            }
        }
    }
}

#[test]
fn lstm_matches_keras() {
    check("lstm.safetensors", Cell::Lstm);
}

#[test]
fn gru_matches_keras() {
    check("gru.safetensors", Cell::Gru);
}

#[test]
fn bilstm_matches_keras() {
    check("bilstm.safetensors", Cell::BiLstm);
}

#[test]
fn tensors_roundtrip_and_shape_errors() {
    let cfg = NetConfig {
        vocab: 7,
        embed: 3,
        hidden: 4,
        cell: Cell::BiLstm,
        output: Output::Softmax(3),
        head: Head::Last,
    };
    let net = Net::new(cfg.clone(), 1).unwrap();
    let t = net.tensors();
    let back = Net::from_tensors(cfg.clone(), &t).unwrap();
    assert_eq!(back.tensors(), t);
    let mut bad = t.clone();
    bad[1].1 = vec![4, 3 * 4];
    assert!(Net::from_tensors(cfg.clone(), &bad).is_err());
    let missing: Vec<Tensor> = t[1..].to_vec();
    assert!(Net::from_tensors(cfg, &missing).is_err());
}
