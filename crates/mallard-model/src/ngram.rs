//! The classical baseline: n-gram TF-IDF + logistic regression over API names.

use crate::{scoring_view, Input, Meta, Model, ModelError, ModelFile, NameCounts, Reason, Tensor};
use mallard_ngram::{NgramConfig, NgramModel};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Stored {
    ngram: NgramConfig,
}

/// The vocabulary as token ids: the tokens (packed strings), every column's token ids
/// (u32 little-endian, concatenated) and each column's n-gram length (one byte).
const TOKENS: &str = "tokens";
const NGRAM_IDS: &str = "ngram_ids";
const NGRAM_LENS: &str = "ngram_lens";

pub struct NgramSeqModel {
    meta: Meta,
    model: NgramModel,
}

impl NgramSeqModel {
    pub fn new(meta: Meta, model: NgramModel) -> Self {
        NgramSeqModel { meta, model }
    }

    /// Whether any n-gram of the vocabulary holds `api`.
    fn knows(&self, api: &str) -> bool {
        self.model.vectorizer().knows_token(api)
    }

    pub(crate) fn from_file(file: ModelFile) -> Result<Self, ModelError> {
        let stored: Stored = serde_json::from_value(file.meta.config.clone())
            .map_err(|e| ModelError::Corrupt(format!("ngram config: {e}")))?;
        let tokens = crate::file::unpack_strings(file.blob(TOKENS)?)?;
        let ids = file.blob(NGRAM_IDS)?;
        if ids.len() % 4 != 0 {
            return Err(ModelError::Corrupt(
                "n-gram ids: not a whole number of u32".into(),
            ));
        }
        let flat: Vec<u32> = ids
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let lens = file.blob(NGRAM_LENS)?.to_vec();
        let tensors: Vec<_> = file
            .tensors
            .into_iter()
            .map(|t| (t.name, t.shape, t.data))
            .collect();
        let model = NgramModel::from_token_ids(
            stored.ngram,
            file.meta.labels.len(),
            tokens,
            &flat,
            &lens,
            &tensors,
        )
        .map_err(|e| ModelError::Corrupt(e.to_string()))?;
        Ok(NgramSeqModel {
            meta: file.meta,
            model,
        })
    }
}

impl Model for NgramSeqModel {
    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn predict_proba(&self, inputs: &[Input<'_>]) -> Result<Vec<f32>, ModelError> {
        let seqs = inputs
            .iter()
            .map(|i| {
                i.apis()
                    .map(|a| scoring_view(&self.meta, a, |t| self.knows(t)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.model.predict_proba(&seqs))
    }

    fn explain(&self, input: &Input<'_>, top: usize) -> Result<Vec<Reason>, ModelError> {
        // The n-gram model explains the positive logit for two classes, else the argmax,
        // already sorted by absolute contribution.
        let seq = scoring_view(&self.meta, input.apis()?, |t| self.knows(t));
        Ok(self
            .model
            .explain(&seq, top)
            .into_iter()
            .map(|(name, weight)| Reason {
                kind: "ngram".into(),
                name,
                weight,
                feature: None,
            })
            .collect())
    }

    fn known_apis(&self, apis: &[String]) -> Option<(usize, usize)> {
        Some(crate::count_known(apis, |a| self.knows(a)))
    }

    fn api_names(&self, apis: &[String]) -> Option<NameCounts> {
        Some(crate::name_counts(apis, |a| self.knows(a)))
    }

    fn to_file(&self) -> Result<ModelFile, ModelError> {
        let mut meta = self.meta.clone();
        meta.config = serde_json::to_value(Stored {
            ngram: self.model.config().clone(),
        })
        .map_err(|e| ModelError::Invalid(e.to_string()))?;
        let tensors = self
            .model
            .to_tensors()
            .into_iter()
            .map(|(n, s, d)| Tensor::new(n, s, d))
            .collect();
        let (tokens, flat, lens) = self.model.vectorizer().token_ids();
        let blobs = vec![
            (TOKENS.to_string(), crate::file::pack_strings(&tokens)),
            (
                NGRAM_IDS.to_string(),
                flat.iter().flat_map(|i| i.to_le_bytes()).collect(),
            ),
            (NGRAM_LENS.to_string(), lens),
        ];
        Ok(ModelFile {
            meta,
            tensors,
            blobs,
        })
    }
}
