//! A wgpu device with compiled WGSL compute kernels, storage buffers and a recorder that
//! batches many small dispatches into one submission: what mallard's GPU backends
//! (`mallard-rnn-gpu`, MalConv in `mallard-malconv`) share. It runs on NVIDIA (and other)
//! GPUs through Vulkan and, for tests, on Mesa's software Vulkan (lavapipe).
//!
//! Everything here is behind the `wgpu` cargo feature; without it this crate is empty.

#[cfg(feature = "wgpu")]
mod ctx;

/// WGSL `sigm(x)`: the logistic function without overflow (exp of a large positive value
/// is never formed), for kernels to prepend to their source.
pub const SIGMOID_WGSL: &str = r#"
fn sigm(x: f32) -> f32 {
    if (x >= 0.0) {
        return 1.0 / (1.0 + exp(-x));
    }
    let e = exp(x);
    return e / (1.0 + e);
}
"#;

#[cfg(feature = "wgpu")]
pub use ctx::{
    as_bytes, grid_1d, Arg, Buf, Ctx, GBuf, KernelKey, KernelSpec, Pod, Recorder, MAX_GROUPS,
};

/// Errors from the device.
#[cfg(feature = "wgpu")]
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// No GPU (or software Vulkan) adapter could be opened.
    #[error(
        "no GPU adapter found ({0}); install a Vulkan driver (e.g. the NVIDIA driver, or Mesa's \
         lavapipe: apt-get install mesa-vulkan-drivers)"
    )]
    NoAdapter(String),
    /// The device failed: creation, validation, out of memory, or a lost device.
    #[error("GPU device error: {0}")]
    Device(String),
    /// A shape or batch the backend does not handle.
    #[error("unsupported on the GPU backend: {0}")]
    Unsupported(String),
}

#[cfg(all(test, feature = "wgpu"))]
mod tests {
    use super::*;

    const AXPY: &str = r#"
struct P { n: u32, a: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
    let i = g.x + g.y * 65535u * 64u;
    if (i < p.n) { y[i] = p.a * x[i] + y[i]; }
}
"#;

    /// Two recorded dispatches in one submission, the second reading the first's output,
    /// against the same arithmetic on the host (exact: one rounding per step either way).
    #[test]
    fn recorded_dispatches_run_in_order() {
        let ctx = match Ctx::new(
            "mallard-gpu test",
            vec![KernelSpec {
                key: 0u8,
                src: AXPY.into(),
                read_only: vec![true, false],
            }],
        ) {
            Ok(c) => c,
            Err(GpuError::NoAdapter(e)) => panic!(
                "no Vulkan adapter ({e}): install mesa-vulkan-drivers; the GPU tests run in \
                 .ci/run's GPU stage"
            ),
            Err(e) => panic!("{e}"),
        };
        let n = 1000usize;
        let x: Vec<f32> = (0..n).map(|i| i as f32 * 0.25).collect();
        let y0: Vec<f32> = (0..n).map(|i| 1.0 - i as f32).collect();
        let (bx, by) = (ctx.buffer(4 * n as u64, "x"), ctx.buffer(4 * n as u64, "y"));
        ctx.upload(&bx, &x);
        ctx.upload(&by, &y0);
        let mut rec = ctx.recorder();
        rec.dispatch_1d(0, &[n.into(), 2.0f32.into()], &[&bx, &by], n);
        rec.dispatch_1d(0, &[n.into(), (-0.5f32).into()], &[&bx, &by], n);
        rec.submit(&ctx).unwrap();
        let got = ctx.read_f32(&by, n).unwrap();
        for i in 0..n {
            let want = -0.5 * x[i] + (2.0 * x[i] + y0[i]);
            assert_eq!(got[i], want, "element {i}");
        }
    }
}
