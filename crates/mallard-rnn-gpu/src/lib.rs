//! GPU backend for [`mallard_rnn`] networks (Embedding -> LSTM / GRU / BiLSTM -> Dense),
//! written as WGSL compute kernels on wgpu, so it runs on NVIDIA (and other) GPUs through
//! Vulkan and, for tests, on Mesa's software Vulkan (lavapipe).
//!
//! Everything here is behind the `wgpu` cargo feature; without it this crate is empty.
//! Enable it with `cargo test -p mallard-rnn-gpu --features wgpu`.
//!
//! The GPU kernels follow the CPU kernel's design: rows are sorted by length so step `t`
//! runs only over the rows still running, the input projection is a per-batch table
//! `E·W + b`, and the backward pass is hand-written BPTT over saved activations. Results
//! match [`mallard_rnn::Net`] to float rounding (summation order differs).
//!
//! [`GpuNet`] holds a network's weights on the device (inference, gradients, training epochs);
//! [`train`] is `mallard_rnn::train` (validation, early stopping, class weights, clipping, the
//! same shuffle) with the minibatches run on the GPU.

#[cfg(feature = "wgpu")]
mod kernels;
#[cfg(feature = "wgpu")]
mod net;
#[cfg(feature = "wgpu")]
mod shaders;
#[cfg(feature = "wgpu")]
mod train;

#[cfg(all(test, feature = "wgpu"))]
mod tests;

#[cfg(feature = "wgpu")]
pub use net::{GpuGrads, GpuNet};
#[cfg(feature = "wgpu")]
pub use train::train;

/// Errors from the GPU backend.
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
    /// A network shape or batch this backend does not handle.
    #[error("unsupported on the GPU backend: {0}")]
    Unsupported(String),
    /// Invalid input (tokens, lengths, tensors), as the CPU network reports it.
    #[error(transparent)]
    Rnn(#[from] mallard_rnn::RnnError),
}

#[cfg(feature = "wgpu")]
impl From<mallard_gpu::GpuError> for GpuError {
    fn from(e: mallard_gpu::GpuError) -> Self {
        match e {
            mallard_gpu::GpuError::NoAdapter(s) => GpuError::NoAdapter(s),
            mallard_gpu::GpuError::Device(s) => GpuError::Device(s),
            mallard_gpu::GpuError::Unsupported(s) => GpuError::Unsupported(s),
        }
    }
}
