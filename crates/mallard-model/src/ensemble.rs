//! A weighted average of member models' class probabilities.

use crate::{Input, Meta, Model, ModelError, ModelFile, NameCounts, Reason};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct StoredMember {
    weight: f32,
    meta: Meta,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    members: Vec<StoredMember>,
}

pub struct Ensemble {
    meta: Meta,
    members: Vec<(f32, Box<dyn Model>)>,
}

impl Ensemble {
    /// Members must share labels; weights are normalised to sum to 1.
    pub fn new(mut meta: Meta, members: Vec<(f32, Box<dyn Model>)>) -> Result<Self, ModelError> {
        if members.is_empty() {
            return Err(ModelError::Invalid("an ensemble needs members".into()));
        }
        for (_, m) in &members {
            if m.meta().labels != meta.labels {
                return Err(ModelError::Invalid(format!(
                    "member {} has labels {:?}, the ensemble {:?}",
                    m.meta().kind,
                    m.meta().labels,
                    meta.labels
                )));
            }
        }
        let total: f32 = members.iter().map(|(w, _)| *w).sum();
        if total.is_nan() || total <= 0.0 || members.iter().any(|(w, _)| w.is_nan() || *w < 0.0) {
            return Err(ModelError::Invalid(
                "ensemble weights must be non-negative with a positive sum".into(),
            ));
        }
        meta.kind = "ensemble".into();
        let members = members.into_iter().map(|(w, m)| (w / total, m)).collect();
        Ok(Ensemble { meta, members })
    }

    pub fn members(&self) -> impl Iterator<Item = (f32, &dyn Model)> {
        self.members.iter().map(|(w, m)| (*w, m.as_ref()))
    }

    pub(crate) fn from_file(file: ModelFile, caps: &crate::Caps) -> Result<Self, ModelError> {
        let stored: Stored = serde_json::from_value(file.meta.config.clone())
            .map_err(|e| ModelError::Corrupt(format!("ensemble config: {e}")))?;
        let mut members = Vec::new();
        for (i, m) in stored.members.into_iter().enumerate() {
            if m.meta.kind == "ensemble" {
                return Err(ModelError::Corrupt(
                    "nested ensembles are not supported".into(),
                ));
            }
            members.push((
                m.weight,
                crate::from_file_with(file.member(i, m.meta), caps)?,
            ));
        }
        Ensemble::new(file.meta, members)
    }
}

impl Model for Ensemble {
    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn predict_proba(&self, inputs: &[Input<'_>]) -> Result<Vec<f32>, ModelError> {
        let mut out = vec![0.0f32; inputs.len() * self.meta.labels.len()];
        for (w, m) in &self.members {
            for (o, p) in out.iter_mut().zip(m.predict_proba(inputs)?) {
                *o += w * p;
            }
        }
        Ok(out)
    }

    fn explain(&self, input: &Input<'_>, top: usize) -> Result<Vec<Reason>, ModelError> {
        let mut all = Vec::new();
        for (w, m) in &self.members {
            all.extend(m.explain(input, top)?.into_iter().map(|mut r| {
                r.weight *= w;
                r
            }));
        }
        all.sort_by(|a, b| b.weight.abs().total_cmp(&a.weight.abs()));
        all.truncate(top);
        Ok(all)
    }

    fn known_apis(&self, apis: &[String]) -> Option<(usize, usize)> {
        self.members
            .iter()
            .filter_map(|(_, m)| m.known_apis(apis))
            .max()
    }

    /// The counts of the member that reads the most names (each maps into its own vocabulary).
    fn api_names(&self, apis: &[String]) -> Option<NameCounts> {
        self.members
            .iter()
            .filter_map(|(_, m)| m.api_names(apis))
            .max_by_key(|c| (c.known + c.mapped, c.known))
    }

    fn to_file(&self) -> Result<ModelFile, ModelError> {
        let mut out = ModelFile::container(self.meta.clone());
        let mut stored = Vec::new();
        for (i, (w, m)) in self.members.iter().enumerate() {
            let meta = out.add_member(i, m.to_file()?);
            stored.push(StoredMember { weight: *w, meta });
        }
        out.meta.config = serde_json::to_value(Stored { members: stored })
            .map_err(|e| ModelError::Invalid(e.to_string()))?;
        Ok(out)
    }
}
