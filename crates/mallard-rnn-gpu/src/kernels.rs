//! This backend's kernels on the shared device context.

use crate::shaders;
use mallard_gpu::KernelSpec;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum K {
    Gemm,
    StepFwd,
    StepBwd,
    Feat,
    HeadBack,
    Loss,
    DTable,
    ColSum,
    Transpose,
    Optim,
    SumSq,
    ClipScale,
}

pub(crate) type Ctx = mallard_gpu::Ctx<K>;
pub(crate) type Recorder = mallard_gpu::Recorder<K>;

/// Opens the device and compiles every kernel of this backend.
pub(crate) fn open() -> Result<Ctx, mallard_gpu::GpuError> {
    Ctx::new("mallard-rnn-gpu", specs())
}

/// (kernel, WGSL source, read-only flag of each storage binding 1..).
fn specs() -> Vec<KernelSpec<K>> {
    let spec = |key: K, src: String, read_only: Vec<bool>| KernelSpec {
        key,
        src,
        read_only,
    };
    vec![
        spec(
            K::Gemm,
            shaders::GEMM.into(),
            vec![true, true, false, true, true],
        ),
        spec(
            K::StepFwd,
            shaders::step_fwd(),
            vec![true, true, true, false, false, false, false],
        ),
        spec(
            K::StepBwd,
            shaders::step_bwd(),
            vec![true, true, true, true, false, false, true, true],
        ),
        spec(K::Feat, shaders::FEAT.into(), vec![true, true, true, false]),
        spec(
            K::HeadBack,
            shaders::HEAD_BACK.into(),
            vec![true, true, false],
        ),
        spec(
            K::Loss,
            shaders::loss(),
            vec![true, true, true, false, false],
        ),
        spec(
            K::DTable,
            shaders::DTABLE.into(),
            vec![true, true, true, false],
        ),
        spec(K::ColSum, shaders::COLSUM.into(), vec![true, false]),
        spec(K::Transpose, shaders::TRANSPOSE.into(), vec![true, false]),
        spec(
            K::Optim,
            shaders::OPTIM.into(),
            vec![false, true, false, false, true],
        ),
        spec(K::SumSq, shaders::SUMSQ.into(), vec![true, false]),
        spec(K::ClipScale, shaders::CLIP_SCALE.into(), vec![true, false]),
    ]
}
