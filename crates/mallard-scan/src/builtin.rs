//! The models compiled into mallard; `models/README.md` says what each is and how it is
//! rebuilt. Library users get the same defaults as `mallard scan`.

use mallard_model::{Model, ModelError};

/// A file's bytes placed 8-aligned, so that trees can read their nodes where they lie
/// (`mallard_model::load_static_for_scoring`): inside the file the header is padded to 8
/// bytes and the f32 tensors come first, which the test below checks for each model.
#[repr(C, align(8))]
struct Aligned<B: ?Sized>(B);

static API_FILE: &Aligned<[u8]> = &Aligned(*include_bytes!("../../../models/default-api.mallard"));
static PE_FILE: &Aligned<[u8]> = &Aligned(*include_bytes!("../../../models/default-pe.mallard"));
static CLAMP_FILE: &Aligned<[u8]> = &Aligned(*include_bytes!("../../../models/clamp-pe.mallard"));

/// Kernel SVM over the set of API names of a sandbox report (MalBehavD-V1).
pub static API: &[u8] = &API_FILE.0;

/// Boosted trees on EMBER v2 features of real malware and benign software.
pub static PE: &[u8] = &PE_FILE.0;

/// The earlier PE model on ClaMP's header columns (`--model builtin:clamp`).
pub static CLAMP: &[u8] = &CLAMP_FILE.0;

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Each built-in model lies 8-aligned, and its trees' nodes 4-aligned within it, so that
    /// the trees read them in place (a model rebuilt with another layout would silently
    /// lose that; `mallard_gbdt`'s tests show aligned nodes are read in place).
    #[test]
    fn built_in_models_lie_aligned_for_their_trees() {
        for name in NAMES {
            let b = bytes(name).unwrap();
            assert_eq!(b.as_ptr() as usize % 8, 0, "{name}");
            let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
            let header: serde_json::Value = serde_json::from_slice(&b[8..8 + n]).unwrap();
            if let Some(nodes) = header.get("gbdt.nodes") {
                let begin = nodes["data_offsets"][0].as_u64().unwrap() as usize;
                assert_eq!((b.as_ptr() as usize + 8 + n + begin) % 4, 0, "{name}");
            } else {
                assert_eq!(name, "api", "only the report model has no trees");
            }
        }
    }
}
