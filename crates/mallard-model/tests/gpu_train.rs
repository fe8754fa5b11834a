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

/// `MalConvOptions::gpu`: the same training run as on the CPU (the GPU does the forward
/// passes, the CPU the rest), so both models score every file alike to float rounding.
#[test]
fn malconv_trained_on_the_gpu_matches_the_cpu() {
    use mallard_model::malconv::{train_files, FileSet, MalConvOptions, MalConvSettings};
    use mallard_model::Model;
    let dir = std::env::temp_dir().join(format!("mallard-gpu-malconv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = mallard_rand::SplitMix64::new(9);
    let (mut paths, mut labels) = (Vec::new(), Vec::new());
    for i in 0..24 {
        let mut b: Vec<u8> = (0..300 + rng.below(900))
            .map(|_| rng.below(256) as u8)
            .collect();
        let mal = i % 2 == 0;
        if mal {
            let at = rng.below(b.len() as u64 - 64) as usize;
            b[at..at + 64].fill(0xCC);
        }
        let p = dir.join(format!("f{i}.bin"));
        std::fs::write(&p, &b).unwrap();
        paths.push(p);
        labels.push(if mal { "malicious" } else { "benign" }.to_string());
    }
    let groups = vec![None; paths.len()];
    let files = FileSet {
        paths: &paths,
        labels: &labels,
        groups: &groups,
    };
    let mut o = MalConvOptions {
        settings: MalConvSettings {
            embed: 4,
            channels: 8,
            window: 32,
            hidden: 8,
            max_bytes: 1 << 20,
        },
        validation: 0.0,
        ..MalConvOptions::default()
    };
    o.train.epochs = 3;
    o.train.batch_size = 6;
    o.train.threads = 2;
    let cpu = train_files(&files, &o, &mut mallard_model::train::Quiet).unwrap();
    o.gpu = true;
    let gpu = match train_files(&files, &o, &mut mallard_model::train::Quiet) {
        Ok(m) => m,
        Err(e) => {
            panic!("{e} (without a GPU, Mesa's lavapipe: apt-get install mesa-vulkan-drivers)")
        }
    };
    assert_eq!(gpu.meta().training["device"], "gpu");
    assert_eq!(cpu.meta().training["device"], "cpu");
    let bytes: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let inputs: Vec<mallard_model::Input> = bytes
        .iter()
        .map(|b| mallard_model::Input::Bytes(b))
        .collect();
    let (pc, pg) = (
        cpu.predict_proba(&inputs).unwrap(),
        gpu.predict_proba(&inputs).unwrap(),
    );
    for (i, (a, b)) in pc.iter().zip(&pg).enumerate() {
        assert!((a - b).abs() < 1e-3, "value {i}: cpu {a} gpu {b}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
