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
static DOTNET_FILE: &Aligned<[u8]> =
    &Aligned(*include_bytes!("../../../models/default-dotnet.mallard"));

/// Kernel SVM over the set of API names of a sandbox report (MalBehavD-V1).
pub static API: &[u8] = &API_FILE.0;

/// Boosted trees on EMBER v2 features of real malware and benign software.
pub static PE: &[u8] = &PE_FILE.0;

/// The earlier PE model on ClaMP's header columns (`--model builtin:clamp`).
pub static CLAMP: &[u8] = &CLAMP_FILE.0;

/// Boosted trees on .NET metadata: the built-in PE model's specialist for .NET files
/// (`Scanner` adds it to `pe` on them; `--model builtin:dotnet` scores with it alone).
pub static DOTNET: &[u8] = &DOTNET_FILE.0;

/// The specialist's intercept and weight, fitted out of fold on `pe`'s own out-of-fold
/// scores (`models/build-default-dotnet.sh`).
pub static DOTNET_STACKING: &str = include_str!("../../../models/default-dotnet.json");

/// The names `--model builtin:NAME` takes.
pub const NAMES: [&str; 4] = ["api", "pe", "clamp", "dotnet"];

/// The file bytes of a built-in model by name.
pub fn bytes(name: &str) -> Option<&'static [u8]> {
    match name {
        "api" => Some(API),
        "pe" => Some(PE),
        "clamp" => Some(CLAMP),
        "dotnet" => Some(DOTNET),
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

    /// A scan takes the built-in models' trees without their node-by-node checks
    /// (`mallard_model::load_builtin_for_scoring`): every one of those checks passes here,
    /// and the trusted model scores and explains rows to the bit as the checked one does.
    #[test]
    fn built_in_models_pass_every_check_and_score_alike_unchecked() {
        use mallard_model::Input;
        let caps = mallard_io::Caps::default();
        for name in NAMES {
            let b = bytes(name).unwrap();
            let checked = mallard_model::load_static_for_scoring(b, &caps).unwrap();
            let full = mallard_model::load_bytes_with(b, &caps).unwrap();
            let trusted = mallard_model::load_builtin_for_scoring(name, b, &caps).unwrap();
            let n = checked.meta().feature_names.len();
            if n == 0 {
                assert_eq!(name, "api", "only the report model reads no features");
                continue;
            }
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            for r in 0..40 {
                let row: Vec<f32> = (0..n)
                    .map(|_| {
                        x = x
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        let v = (x >> 40) as f32 / (1u64 << 24) as f32;
                        // Mostly small counts and fractions, some large values, some missing.
                        match r % 3 {
                            0 => v,
                            1 => (v * 1e5).floor(),
                            _ if v < 0.1 => f32::NAN,
                            _ => v * 300.0,
                        }
                    })
                    .collect();
                let input = [Input::Features(&row)];
                let p = checked.predict_proba(&input).unwrap();
                for m in [&full, &trusted] {
                    assert_eq!(m.predict_proba(&input).unwrap(), p, "{name} row {r}");
                    let (a, b) = (m.explain(&input[0], 10), checked.explain(&input[0], 10));
                    let w = |v: Vec<mallard_model::Reason>| {
                        v.into_iter()
                            .map(|r| (r.name, r.weight.to_bits()))
                            .collect::<Vec<_>>()
                    };
                    assert_eq!(w(a.unwrap()), w(b.unwrap()), "{name} row {r}");
                }
            }
        }
    }

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
