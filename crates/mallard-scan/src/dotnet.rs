//! The built-in .NET specialist (`models/default-dotnet.*`): boosted trees on a .NET
//! assembly's metadata that add `intercept + weight x logit(p)` to the built-in PE model's
//! logit on .NET files, and nothing on other files (fitted out of fold on the built-in
//! model's own out-of-fold scores: `models/build-default-dotnet.sh`). Loaded at the first
//! .NET file a scanner sees, so a scan of native files never pays for it.

use crate::builtin;
use mallard_model::{Input, Model, Reason};
use mallard_pefeatures::Pe;
use mallard_pefeatures::{dotnet, FeatureSet};
use std::sync::OnceLock;

/// The specialist's place in the stack (`models/default-dotnet.json`).
#[derive(serde::Deserialize)]
struct Params {
    intercept: f64,
    weight: f64,
}

/// What the specialist adds to a .NET file's logit, and why.
pub(crate) struct Added {
    pub shift: f64,
    pub reasons: Vec<Reason>,
}

/// The trees, and each of their columns' place in the set's vector.
type Trees = (Box<dyn Model>, Vec<Option<usize>>);
type Loaded = Option<Trees>;

pub(crate) struct Specialist {
    params: Params,
    model: OnceLock<Loaded>,
}

impl Specialist {
    /// The built-in specialist; `None` if its parameters do not read (a build error the
    /// tests catch).
    pub fn builtin() -> Option<Self> {
        let params: Params = serde_json::from_str(builtin::DOTNET_STACKING).ok()?;
        (params.intercept.is_finite() && params.weight.is_finite()).then(|| Specialist {
            params,
            model: OnceLock::new(),
        })
    }

    fn model(&self) -> Option<&Trees> {
        self.model
            .get_or_init(|| {
                let m = crate::setup::load_builtin("dotnet").ok()?;
                let cols = crate::column_map(
                    &m.meta().feature_names,
                    &mallard_pefeatures::names(FeatureSet::Dotnet),
                );
                Some((m, cols))
            })
            .as_ref()
    }

    /// On a .NET file whose metadata reads: the shift of the logit and, with `top` > 0,
    /// the specialist's own score and reasons (weights scaled as they enter the logit).
    pub fn added(&self, bytes: &[u8], top: usize) -> Option<Added> {
        let pe = Pe::parse(bytes).ok()?;
        if !pe.is_dotnet() {
            return None;
        }
        let mut v = vec![0f32; dotnet::DIM];
        dotnet::fill(&pe, &mut v);
        if v[1] == 0.0 {
            return None; // metadata unreadable: outside the specialist's domain
        }
        let (m, cols) = self.model()?;
        let row: Vec<f32> = cols
            .iter()
            .map(|c| c.and_then(|i| v.get(i).copied()).unwrap_or(f32::NAN))
            .collect();
        let input = Input::Features(&row);
        let pos = m.meta().positive.unwrap_or(1);
        let p = *m
            .predict_proba(std::slice::from_ref(&input))
            .ok()?
            .get(pos)?;
        let shift =
            self.params.intercept + self.params.weight * mallard_model::stack::logit(p) as f64;
        let mut reasons = Vec::new();
        if top > 0 {
            reasons.push(Reason {
                kind: "model".into(),
                name: format!(".NET metadata model scores {p:.3}"),
                weight: shift as f32,
                feature: None,
            });
            let mut own = m.explain(&input, top.saturating_mul(4)).unwrap_or_default();
            mallard_model::stack::describe_reasons(&mut own, FeatureSet::Dotnet, bytes);
            for mut r in own {
                r.weight *= self.params.weight as f32;
                r.name = format!("[.NET] {}", r.name);
                reasons.push(r);
            }
        }
        Some(Added { shift, reasons })
    }
}
