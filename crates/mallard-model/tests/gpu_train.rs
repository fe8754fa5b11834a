//! `TrainOptions::gpu`: the recurrent nets train through the wgpu backend and learn.
//! Runs with `--features gpu`; without a Vulkan adapter it fails, saying so (lavapipe is
//! enough; `.ci/run` installs it).
#![cfg(feature = "gpu")]

use mallard_model::train::{train, ModelKind, Preset, Quiet, TrainOptions};
use mallard_model::Input;

#[test]
fn a_gru_trained_on_the_gpu_learns_a_separable_rule() {
    // Malicious rows encrypt and delete; benign rows close and read the clock.
    let (mut seqs, mut labels) = (Vec::new(), Vec::new());
    for i in 0..96 {
        let mal = i % 2 == 0;
        let mut s = vec!["NtOpenFile".to_string(), "NtReadFile".to_string()];
        if i % 3 == 0 {
            s.push("RegOpenKeyExW".into());
        }
        s.extend(
            if mal {
                ["CryptEncrypt", "DeleteFileW"]
            } else {
                ["NtClose", "GetSystemTime"]
            }
            .map(String::from),
        );
        seqs.push(s);
        labels.push(if mal { "malicious" } else { "benign" }.to_string());
    }
    let mut o = TrainOptions::new(ModelKind::parse("gru").unwrap(), Preset::Default);
    o.gpu = true;
    o.epochs = Some(15);
    o.hidden = Some(16);
    let model = match train(&seqs, &labels, &o, &mut Quiet) {
        Ok(m) => m,
        Err(e) => {
            panic!("{e} (without a GPU, Mesa's lavapipe: apt-get install mesa-vulkan-drivers)")
        }
    };
    assert_eq!(model.meta().training["device"], "gpu");
    let history = model.meta().training["history"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        !history.is_empty() && history.iter().all(|h| h["val_loss"].is_number()),
        "{history:?}"
    );
    let inputs: Vec<Input> = seqs.iter().map(|s| Input::Apis(s)).collect();
    let p = model.predict_proba(&inputs).unwrap();
    let pos = model.meta().positive.unwrap();
    let k = model.meta().labels.len();
    let right = (0..seqs.len())
        .filter(|&i| (p[i * k + pos] >= 0.5) == (labels[i] == "malicious"))
        .count();
    assert_eq!(right, seqs.len(), "the rule is learnable in a few epochs");
}
