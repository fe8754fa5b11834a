//! The models compiled into mallard; `models/README.md` says what each is and how it is
//! rebuilt. Library users get the same defaults as `mallard scan`.

use mallard_model::{Model, ModelError};

/// Kernel SVM over the set of API names of a sandbox report (MalBehavD-V1).
pub const API: &[u8] = include_bytes!("../../../models/default-api.mallard");

/// Boosted trees on EMBER v2 features of real malware and benign software.
pub const PE: &[u8] = include_bytes!("../../../models/default-pe.mallard");

/// The earlier PE model on ClaMP's header columns (`--model builtin:clamp`).
pub const CLAMP: &[u8] = include_bytes!("../../../models/clamp-pe.mallard");

/// The names `--model builtin:NAME` takes.
pub const NAMES: [&str; 3] = ["api", "pe", "clamp"];

/// The file bytes of a built-in model by name.
pub fn bytes(name: &str) -> Option<&'static [u8]> {
    match name {
        "api" => Some(API),
        "pe" => Some(PE),
        "clamp" => Some(CLAMP),
        _ => None,
    }
}

/// Loads a built-in model by name (`None` for a name that is not one).
pub fn load(name: &str) -> Option<Result<Box<dyn Model>, ModelError>> {
    bytes(name).map(mallard_model::load_bytes)
}
