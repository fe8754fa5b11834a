//! Train, evaluate and cross-validate models on `FORMAT:PATH` datasets: what `mallard
//! train`, `eval` and `cv` do, as library calls that any front end (the command line, the
//! Python package, a notebook) makes the same way.
//!
//! Progress, warnings and one-line summaries go to a [`Observer`]; nothing here prints.
//!
//! ```no_run
//! use mallard_experiment::{settings::ModelSettings, train, TrainRequest};
//! use mallard_model::train::Quiet;
//! let datasets = ["malbehavd:train.csv".parse().unwrap()];
//! let file = train(
//!     &TrainRequest {
//!         datasets: &datasets,
//!         read: &Default::default(),
//!         settings: &ModelSettings::default(),
//!         manifests: &[],
//!         command: "example",
//!     },
//!     &mut Quiet,
//! )
//! .unwrap();
//! file.write(std::path::Path::new("api.mallard")).unwrap();
//! ```

pub mod attack;
pub mod output;
pub mod settings;

mod cv;
mod evaluate;
pub mod stack;
mod train;

pub use cv::{cross_validate, read_fold_plan, write_fold_plan, CvOutcome, CvRequest};
pub use evaluate::{default_model, score, Scored};
pub use mallard_model::train::Observer;
pub use train::{train, TrainRequest};

use mallard_datasets::DatasetError;
use mallard_eval::EvalError;
use mallard_model::ModelError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting out of range or a model kind that does not fit the data.
    #[error("{0}")]
    Settings(String),
    /// Datasets and options that do not go together.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Data(#[from] DatasetError),
    /// `step` names what failed: training, scoring... The message carries the cause's (not
    /// also chained as a `source`, which printed it twice under `{:#}`).
    #[error("{step}: {error}")]
    Model {
        step: &'static str,
        error: ModelError,
    },
    #[error("computing metrics: {0}")]
    Metrics(#[from] EvalError),
    #[error("writing {path}: {error}")]
    Write { path: String, error: std::io::Error },
}

impl From<ModelError> for Error {
    fn from(error: ModelError) -> Self {
        Error::Model {
            step: "model",
            error,
        }
    }
}

/// Attaches the step that failed to a model error.
pub(crate) fn during<T>(step: &'static str, r: Result<T, ModelError>) -> Result<T, Error> {
    r.map_err(|error| Error::Model { step, error })
}

/// Hands a reader's warnings and notes to the observer.
pub(crate) fn pass_on(obs: &mut dyn Observer, warnings: Vec<String>, notes: Vec<String>) {
    warnings.iter().for_each(|w| obs.warning(w));
    notes.iter().for_each(|n| obs.note(n));
}
