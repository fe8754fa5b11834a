//! Training must learn an order-dependent task and be bitwise reproducible for a seed.

use mallard_rnn::{
    train, Cell, Head, Loss, Net, NetConfig, Optimizer, Output, TrainConfig, TrainSummary,
};

/// Rows hold tokens 3 and 5 once each among filler tokens; label = 3 comes before 5.
/// A bag-of-tokens model cannot beat chance here: only order matters.
fn order_task(n: usize, seed: u64) -> (Vec<Vec<u32>>, Vec<usize>) {
    let mut s = seed;
    let mut next = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 33) as usize
    };
    let filler = [1u32, 2, 4, 6, 7];
    let (mut seqs, mut labels) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let len = 3 + next() % 10;
        let mut row: Vec<u32> = (0..len).map(|_| filler[next() % filler.len()]).collect();
        let a = next() % len;
        let mut b = next() % len;
        while b == a {
            b = next() % len;
        }
        row[a] = 3;
        row[b] = 5;
        labels.push(usize::from(a < b));
        seqs.push(row);
    }
    (seqs, labels)
}

fn run(
    cell: Cell,
    head: Head,
    output: Output,
    loss: Loss,
    threads: usize,
) -> (Net, TrainSummary, f32) {
    let (seqs, labels) = order_task(900, 42);
    let (test_x, test_y) = order_task(300, 7);
    let cfg = NetConfig {
        vocab: 8,
        embed: 8,
        hidden: 16,
        cell,
        output,
        head,
    };
    let mut net = Net::new(cfg, 1).unwrap();
    let tc = TrainConfig {
        epochs: 12,
        batch_size: 32,
        optimizer: Optimizer::Adam {
            lr: 0.01,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
        },
        loss,
        validation_split: 0.2,
        early_stopping_patience: Some(3),
        class_weights: Some(vec![1.0, 1.2]),
        seed: 5,
        shuffle: true,
        threads,
        clip_norm: Some(5.0),
    };
    let mut batches = 0;
    let summary = train(
        &mut net,
        &seqs,
        &labels,
        &tc,
        &mut |_| {},
        &mut |_, _, _| batches += 1,
    )
    .unwrap();
    assert_eq!(batches, summary.history.len() * 720usize.div_ceil(32));
    let refs: Vec<&[u32]> = test_x.iter().map(|r| r.as_slice()).collect();
    let p = net.predict(&refs).unwrap();
    let k = net.config().n_out();
    let correct = (0..test_y.len())
        .filter(|&i| {
            let pred = if k == 1 {
                usize::from(p[i] > 0.5)
            } else {
                usize::from(p[i * k + 1] > p[i * k])
            };
            pred == test_y[i]
        })
        .count();
    (net, summary, correct as f32 / test_y.len() as f32)
}

#[test]
fn lstm_learns_order_and_is_deterministic() {
    let (net_a, sum_a, acc) = run(
        Cell::Lstm,
        Head::Last,
        Output::Sigmoid,
        Loss::CrossEntropy,
        2,
    );
    assert!(
        acc > 0.95,
        "held-out accuracy {acc}, history {:?}",
        sum_a.history
    );
    let (net_b, sum_b, _) = run(
        Cell::Lstm,
        Head::Last,
        Output::Sigmoid,
        Loss::CrossEntropy,
        2,
    );
    let la: Vec<u32> = sum_a.history.iter().map(|r| r.loss.to_bits()).collect();
    let lb: Vec<u32> = sum_b.history.iter().map(|r| r.loss.to_bits()).collect();
    assert_eq!(la, lb);
    assert_eq!(net_a.tensors(), net_b.tensors());
}

#[test]
fn other_cells_heads_and_softmax_learn_order() {
    for (cell, head, loss) in [
        (Cell::Gru, Head::Last, Loss::CrossEntropy),
        (Cell::BiLstm, Head::Max, Loss::Mse),
        (Cell::Lstm, Head::Mean, Loss::CrossEntropy),
    ] {
        let (_, sum, acc) = run(cell, head, Output::Softmax(2), loss, 1);
        assert!(
            acc > 0.95,
            "{cell:?} {head:?}: held-out accuracy {acc}, history {:?}",
            sum.history
        );
        let best = sum.best_epoch.unwrap();
        let best_val = sum.history[best - 1].val_loss.unwrap();
        assert!(sum.history.iter().all(|r| r.val_loss.unwrap() >= best_val));
    }
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let cfg = NetConfig {
        vocab: 4,
        embed: 2,
        hidden: 2,
        cell: Cell::Lstm,
        output: Output::Sigmoid,
        head: Head::Last,
    };
    let mut net = Net::new(cfg, 0).unwrap();
    assert!(net.predict(&[&[1, 4]]).is_err());
    assert!(net
        .loss_grad(&[&[1]], &[1.0, 0.0], None, Loss::Mse)
        .is_err());
    assert!(net
        .loss_grad(&[&[1]], &[1.0], Some(&[1.0, 2.0]), Loss::Mse)
        .is_err());
    let tc = TrainConfig {
        epochs: 1,
        ..TrainConfig::default()
    };
    assert!(train(
        &mut net,
        &[vec![1]],
        &[2],
        &tc,
        &mut |_| {},
        &mut |_, _, _| {}
    )
    .is_err());
    assert!(train(
        &mut net,
        &[vec![9]],
        &[1],
        &tc,
        &mut |_| {},
        &mut |_, _, _| {}
    )
    .is_err());
    assert!(Net::new(
        NetConfig {
            vocab: 4,
            embed: 2,
            hidden: 2,
            cell: Cell::Gru,
            output: Output::Softmax(1),
            head: Head::Last
        },
        0
    )
    .is_err());
    // Occlusion attributions: one value per token; bad tokens are errors.
    let a = net.token_attributions(&[1, 2, 3]).unwrap();
    assert_eq!(a.len(), 3);
    assert!(net.token_attributions(&[7]).is_err());
}
