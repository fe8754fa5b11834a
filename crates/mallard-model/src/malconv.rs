//! MalConv as a [`Model`]: raw file bytes in, P(malicious) out, with the byte ranges that
//! drove the score named by the part of the PE file they lie in. Training and grouped
//! cross-validation over files on disk.

use crate::fit::{CvRun, FoldDone};
use crate::train::Observer;
use crate::{Input, InputKind, Meta, Model, ModelError, ModelFile, Reason, Tensor};
pub use mallard_malconv::TrainConfig;
use mallard_malconv::{Config, MalConv, Scratch};
pub use mallard_rnn::Optimizer;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Layer sizes and the longest prefix of a file read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MalConvSettings {
    pub embed: usize,
    pub channels: usize,
    pub window: usize,
    pub hidden: usize,
    /// Bytes of a file read for training and scoring (its first ones).
    pub max_bytes: u64,
}

impl Default for MalConvSettings {
    fn default() -> Self {
        let c = Config::default();
        MalConvSettings {
            embed: c.embed,
            channels: c.channels,
            window: c.window,
            hidden: c.hidden,
            max_bytes: 16 << 20,
        }
    }
}

impl MalConvSettings {
    fn config(&self) -> Config {
        Config {
            embed: self.embed,
            channels: self.channels,
            window: self.window,
            hidden: self.hidden,
        }
    }
}

/// How to train MalConv on files.
#[derive(Clone, Debug)]
pub struct MalConvOptions {
    pub settings: MalConvSettings,
    pub train: TrainConfig,
    /// Share of the training groups held out (stratified) for early stopping; 0 for none.
    pub validation: f32,
    /// Weight classes by inverse frequency.
    pub class_weights: bool,
    /// Run the forward passes (training and scoring) on a GPU; needs the `gpu` feature.
    pub gpu: bool,
}

impl Default for MalConvOptions {
    fn default() -> Self {
        MalConvOptions {
            settings: MalConvSettings::default(),
            train: TrainConfig::default(),
            validation: 0.1,
            class_weights: true,
            gpu: false,
        }
    }
}

/// Labelled files: paths, two labels (one benign), named groups (family, project) or none.
pub struct FileSet<'a> {
    pub paths: &'a [PathBuf],
    pub labels: &'a [String],
    pub groups: &'a [Option<String>],
}

/// A trained MalConv.
pub struct MalConvModel {
    meta: Meta,
    net: MalConv,
    settings: MalConvSettings,
}

impl MalConvModel {
    pub fn net(&self) -> &MalConv {
        &self.net
    }

    pub(crate) fn from_file(file: ModelFile, caps: &crate::Caps) -> Result<Self, ModelError> {
        let settings: MalConvSettings = serde_json::from_value(file.meta.config.clone())
            .map_err(|e| ModelError::Corrupt(format!("malconv config: {e}")))?;
        if file.meta.labels.len() != 2 || file.meta.positive.is_none() {
            return Err(ModelError::Corrupt(
                "a MalConv model has two labels, one of them benign".into(),
            ));
        }
        if settings.max_bytes == 0 || settings.max_bytes > caps.max_pe_bytes.max(1 << 20) {
            return Err(ModelError::Corrupt(format!(
                "max_bytes {} is not between 1 and the cap of {} (max_pe_bytes)",
                settings.max_bytes, caps.max_pe_bytes
            )));
        }
        let tensors: Vec<mallard_malconv::Tensor> = file
            .tensors
            .iter()
            .map(|t| (t.name.clone(), t.shape.clone(), t.data.clone()))
            .collect();
        let net = MalConv::from_tensors(settings.config(), &tensors)
            .map_err(|e| ModelError::Corrupt(e.to_string()))?;
        Ok(MalConvModel {
            meta: file.meta,
            net,
            settings,
        })
    }

    fn probability(&self, bytes: &[u8], s: &mut Scratch) -> f32 {
        let n = bytes.len().min(self.settings.max_bytes as usize);
        self.net.score_bytes(&bytes[..n], s)
    }
}

impl Model for MalConvModel {
    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn predict_proba(&self, inputs: &[Input<'_>]) -> Result<Vec<f32>, ModelError> {
        let pos = self.meta.positive.unwrap_or(1);
        let mut s = Scratch::default();
        let mut out = Vec::with_capacity(inputs.len() * 2);
        for input in inputs {
            let p = self.probability(input.bytes()?, &mut s);
            out.extend(crate::binary_row(p, pos));
        }
        Ok(out)
    }

    /// The windows whose channels moved the logit most (gradient x activation at the
    /// pooled maximum), named by the PE region they start in.
    fn explain(&self, input: &Input<'_>, top: usize) -> Result<Vec<Reason>, ModelError> {
        let bytes = input.bytes()?;
        let n = bytes.len().min(self.settings.max_bytes as usize);
        let bytes = &bytes[..n];
        let mut s = Scratch::default();
        let pooled = self.net.pool_bytes(bytes, &mut s);
        let regions = mallard_pefeatures::image::regions(bytes);
        Ok(self
            .net
            .attributions(&pooled)
            .into_iter()
            .take(top)
            .map(|r| {
                let end = r.end.min(n as u64).max(r.start);
                Reason {
                    kind: "bytes".into(),
                    name: format!(
                        "bytes 0x{:x}-0x{:x} in {}",
                        r.start,
                        end,
                        region_of(&regions, r.start as usize, end as usize)
                    ),
                    weight: r.weight,
                    feature: None,
                }
            })
            .collect())
    }

    fn to_file(&self) -> Result<ModelFile, ModelError> {
        let mut meta = self.meta.clone();
        meta.config =
            serde_json::to_value(&self.settings).map_err(|e| ModelError::Invalid(e.to_string()))?;
        Ok(ModelFile {
            meta,
            tensors: self
                .net
                .tensors()
                .into_iter()
                .map(|(n, s, d)| Tensor::new(n, s, d))
                .collect(),
            blobs: Vec::new(),
        })
    }
}

/// The region (headers, a section by name, overlay) holding most of `start..end`; past
/// the file's end, `padding`.
fn region_of(regions: &[mallard_pefeatures::image::Region], start: usize, end: usize) -> String {
    if start >= end {
        return "padding".into();
    }
    let mut best: Option<(&str, usize)> = None;
    for r in regions {
        let overlap = end.min(r.end).saturating_sub(start.max(r.start));
        if overlap > 0 && best.is_none_or(|b| overlap > b.1) {
            best = Some((r.name.as_str(), overlap));
        }
    }
    match best {
        Some((name @ ("headers" | "overlay" | "file"), _)) => name.to_string(),
        Some((name, _)) => format!("section {name}"),
        None => "a gap between sections".into(),
    }
}

/// The first `max` bytes of a file.
pub fn read_prefix(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut v = Vec::new();
    f.take(max)
        .read_to_end(&mut v)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(v)
}

fn labels_of(files: &FileSet<'_>) -> Result<(Vec<String>, Vec<usize>, usize), ModelError> {
    let names = crate::train::label_set(files.labels);
    let pos = crate::positive_index(&names)
        .filter(|_| names.len() == 2)
        .ok_or_else(|| {
            ModelError::Invalid(format!(
                "MalConv needs two labels, one of them benign; the data has {names:?}"
            ))
        })?;
    let y = files
        .labels
        .iter()
        .map(|l| usize::from(names.iter().position(|n| n == l) == Some(pos)))
        .collect();
    Ok((names, y, pos))
}

/// Each file's group: files with the same contents share one, and so do files with the
/// same named group, transitively.
pub fn file_groups(files: &FileSet<'_>, max_bytes: u64) -> Result<Vec<usize>, ModelError> {
    let keys: Vec<Result<[u8; 32], String>> = files
        .paths
        .iter()
        .map(|p| {
            let b = read_prefix(p, max_bytes)?;
            Ok(Sha256::digest(&b).into())
        })
        .collect();
    let keys: Vec<[u8; 32]> = keys
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(ModelError::Invalid)?;
    let named: Vec<Option<&str>> = files.groups.iter().map(|g| g.as_deref()).collect();
    mallard_eval::groups_union(&keys, &named).map_err(|e| ModelError::Invalid(e.to_string()))
}

/// The GPU's forward pass when `opts.gpu` (one device for every fold).
fn open_gpu(
    opts: &MalConvOptions,
) -> Result<Option<Box<dyn mallard_malconv::BatchPooler>>, ModelError> {
    if !opts.gpu {
        return Ok(None);
    }
    #[cfg(feature = "gpu")]
    {
        // The pooler holds one network's shapes; its weights are replaced by every `load`.
        let net = MalConv::new(opts.settings.config(), 0)
            .map_err(|e| ModelError::Invalid(e.to_string()))?;
        let p = mallard_malconv::gpu::GpuPooler::new(&net)
            .map_err(|e| ModelError::Compute(e.to_string()))?;
        Ok(Some(Box::new(p)))
    }
    #[cfg(not(feature = "gpu"))]
    Err(ModelError::Invalid(
        "this mallard was built without GPU support; rebuild with `cargo build --release --features gpu`".into(),
    ))
}

/// Scores `rows` on the CPU, or on the GPU when one is open.
fn predict(
    net: &MalConv,
    source: &mallard_malconv::Source<'_>,
    rows: &[usize],
    threads: usize,
    gpu: Option<&mut Box<dyn mallard_malconv::BatchPooler>>,
) -> Result<Vec<f32>, ModelError> {
    match gpu {
        Some(p) => mallard_malconv::predict_rows_pooled(net, source, rows, threads, p.as_mut()),
        None => mallard_malconv::predict_rows(net, source, rows, threads),
    }
    .map_err(|e| ModelError::Compute(e.to_string()))
}

/// Trains on `rows` of `files` (`y` 0/1), holding out a stratified share of their groups
/// for early stopping.
fn fit_rows(
    files: &FileSet<'_>,
    y: &[usize],
    groups: &[usize],
    rows: &[usize],
    opts: &MalConvOptions,
    gpu: Option<&mut Box<dyn mallard_malconv::BatchPooler>>,
    obs: &mut dyn Observer,
) -> Result<(MalConv, serde_json::Value), ModelError> {
    let mut train_rows = rows.to_vec();
    let mut val_rows = Vec::new();
    if opts.validation > 0.0 && opts.train.patience.is_some() {
        let g: Vec<usize> = rows.iter().map(|&i| groups[i]).collect();
        let yy: Vec<usize> = rows.iter().map(|&i| y[i]).collect();
        let (tr, va) =
            mallard_eval::stratified_group_split(&g, &yy, opts.validation as f64, opts.train.seed)
                .map_err(|e| ModelError::Invalid(e.to_string()))?;
        train_rows = tr.into_iter().map(|j| rows[j]).collect();
        val_rows = va.into_iter().map(|j| rows[j]).collect();
    }
    let mut cfg = opts.train.clone();
    if opts.class_weights {
        let pos = train_rows.iter().filter(|&&i| y[i] == 1).count() as f32;
        let n = train_rows.len() as f32;
        if pos > 0.0 && pos < n {
            cfg.class_weights = Some([n / (2.0 * (n - pos)), n / (2.0 * pos)]);
        }
    }
    let max = opts.settings.max_bytes;
    let source = |i: usize| read_prefix(&files.paths[i], max);
    let mut net = MalConv::new(opts.settings.config(), cfg.seed)
        .map_err(|e| ModelError::Invalid(e.to_string()))?;
    let batches = train_rows.len().div_ceil(cfg.batch_size.max(1));
    obs.epoch_start(1, cfg.epochs, batches);
    let mut on_epoch = |r: &mallard_rnn::EpochReport| {
        obs.epoch_end(r);
        if r.epoch < cfg.epochs {
            obs.epoch_start(r.epoch + 1, cfg.epochs, batches);
        }
    };
    let gpu_used = gpu.is_some();
    let summary = match gpu {
        Some(p) => mallard_malconv::train_pooled(
            &mut net,
            &source,
            y,
            &train_rows,
            &val_rows,
            &cfg,
            p.as_mut(),
            &mut on_epoch,
        ),
        None => mallard_malconv::train(
            &mut net,
            &source,
            y,
            &train_rows,
            &val_rows,
            &cfg,
            &mut on_epoch,
        ),
    }
    .map_err(|e| ModelError::Compute(e.to_string()))?;
    let history: Vec<serde_json::Value> = summary
        .history
        .iter()
        .map(|r| serde_json::json!({"epoch": r.epoch, "loss": r.loss, "val_loss": r.val_loss, "seconds": r.seconds}))
        .collect();
    let training = serde_json::json!({
        "samples": train_rows.len(),
        "validation_samples": val_rows.len(),
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "best_epoch": summary.best_epoch,
        "stopped_early": summary.stopped_early,
        "class_weights": cfg.class_weights,
        "seed": cfg.seed,
        "device": if gpu_used { "gpu" } else { "cpu" },
        "history": history,
    });
    Ok((net, training))
}

/// Trains MalConv on labelled files.
pub fn train_files(
    files: &FileSet<'_>,
    opts: &MalConvOptions,
    obs: &mut dyn Observer,
) -> Result<MalConvModel, ModelError> {
    let (names, y, pos) = labels_of(files)?;
    let groups = file_groups(files, opts.settings.max_bytes)?;
    let all: Vec<usize> = (0..y.len()).collect();
    let mut gpu = open_gpu(opts)?;
    let (net, training) = fit_rows(files, &y, &groups, &all, opts, gpu.as_mut(), obs)?;
    let mut meta = Meta::new("malconv", InputKind::Bytes, names);
    meta.positive = Some(pos);
    meta.training = training;
    Ok(MalConvModel {
        meta,
        net,
        settings: opts.settings.clone(),
    })
}

/// Grouped, stratified k-fold cross-validation of MalConv on files (folds never split
/// identical files or a named group), or on `fixed` folds (each fold's test rows, from a
/// [`mallard_eval::FoldPlan`]) shared with other detectors.
pub fn cross_validate_files(
    files: &FileSet<'_>,
    opts: &MalConvOptions,
    k: usize,
    seed: u64,
    fixed: Option<Vec<Vec<usize>>>,
    obs: &mut dyn Observer,
) -> Result<CvRun, ModelError> {
    let (names, y, pos) = labels_of(files)?;
    let groups = file_groups(files, opts.settings.max_bytes)?;
    let folds = match fixed {
        Some(folds) => {
            crate::fit::warn_straddling(&groups, &folds, obs);
            folds
        }
        None => mallard_eval::stratified_group_kfold(&groups, &y, k, seed)
            .map_err(|e| ModelError::Invalid(e.to_string()))?,
    };
    let t = std::time::Instant::now();
    let mut probs = Vec::new();
    let max = opts.settings.max_bytes;
    let source = |i: usize| read_prefix(&files.paths[i], max);
    let mut gpu = open_gpu(opts)?;
    for (f, test) in folds.iter().enumerate() {
        let rows = mallard_eval::complement(y.len(), test);
        let (net, _) = fit_rows(files, &y, &groups, &rows, opts, gpu.as_mut(), obs)?;
        let p = predict(&net, &source, test, opts.train.threads, gpu.as_mut())?;
        let mut fold_probs = Vec::with_capacity(test.len() * 2);
        for pi in p {
            fold_probs.extend(crate::binary_row(pi, pos));
        }
        probs.push(fold_probs);
        obs.fold_done(&FoldDone {
            fold: f + 1,
            of: folds.len(),
            train_rows: rows.len(),
            test_rows: test.len(),
        });
    }
    let n_groups = groups
        .iter()
        .collect::<std::collections::HashSet<_>>()
        .len();
    Ok(CvRun {
        names,
        y: y.iter()
            .map(|&v| if v == 1 { pos } else { 1 - pos })
            .collect(),
        folds,
        probs,
        positive: Some(pos),
        n_groups,
        train_secs: t.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> MalConvModel {
        let settings = MalConvSettings {
            embed: 4,
            channels: 6,
            window: 64,
            hidden: 5,
            max_bytes: 1 << 20,
        };
        let net = MalConv::new(settings.config(), 3).unwrap();
        let meta = Meta::new(
            "malconv",
            InputKind::Bytes,
            vec!["benign".into(), "malicious".into()],
        );
        MalConvModel {
            meta,
            net,
            settings,
        }
    }

    #[test]
    fn file_round_trip_scores_the_same() {
        let m = model();
        let bytes: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        let p = m.predict_proba(&[Input::Bytes(&bytes)]).unwrap();
        let mut s = Scratch::default();
        assert_eq!(p[1], m.net.score_bytes(&bytes, &mut s));
        assert!((p[0] + p[1] - 1.0).abs() < 1e-6);
        let back = crate::load_bytes(&m.to_file().unwrap().to_bytes().unwrap()).unwrap();
        assert_eq!(back.meta().kind, "malconv");
        assert_eq!(back.predict_proba(&[Input::Bytes(&bytes)]).unwrap(), p);
        // A byte model refuses other inputs by name.
        let e = back.predict_proba(&[Input::Features(&[1.0])]).unwrap_err();
        assert!(e.to_string().contains("file bytes"), "{e}");
    }

    #[test]
    fn a_file_asking_for_too_much_is_refused() {
        let mut f = model().to_file().unwrap();
        f.meta.config["max_bytes"] = serde_json::json!(u64::MAX);
        assert!(crate::from_file(f).is_err());
        let mut f = model().to_file().unwrap();
        f.meta.config["window"] = serde_json::json!(1usize << 40);
        assert!(crate::from_file(f).is_err());
    }

    #[test]
    fn reasons_name_the_pe_region_of_their_window() {
        let regions = vec![
            mallard_pefeatures::image::Region {
                name: "headers".into(),
                start: 0,
                end: 0x400,
            },
            mallard_pefeatures::image::Region {
                name: ".text".into(),
                start: 0x400,
                end: 0x1000,
            },
            mallard_pefeatures::image::Region {
                name: "overlay".into(),
                start: 0x1000,
                end: 0x1800,
            },
        ];
        assert_eq!(region_of(&regions, 0, 0x200), "headers");
        // Most of 0x300..0x700 lies in .text.
        assert_eq!(region_of(&regions, 0x300, 0x700), "section .text");
        assert_eq!(region_of(&regions, 0x1200, 0x1400), "overlay");
        assert_eq!(region_of(&regions, 0x1800, 0x1800), "padding");
        assert_eq!(
            region_of(&regions, 0x2000, 0x2200),
            "a gap between sections"
        );
        let m = model();
        let bytes = vec![0x41u8; 300];
        let r = m.explain(&Input::Bytes(&bytes), 3).unwrap();
        assert!(!r.is_empty() && r.len() <= 3);
        assert!(
            r.iter()
                .all(|x| x.kind == "bytes" && x.name.contains(" in file")),
            "{r:?}"
        );
    }
}
