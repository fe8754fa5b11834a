//! Device setup, compiled kernels, buffers and a recorder that batches many small dispatches
//! into one submission.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::GpuError;

/// Size of each dispatch's uniform block as bound (every kernel's struct fits in it).
const PARAM_BYTES: u64 = 128;
/// Largest workgroup count in one grid dimension guaranteed by WebGPU.
pub const MAX_GROUPS: u32 = 65_535;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A storage buffer with an id, so bind groups can be cached by the buffers they name.
pub struct GBuf {
    pub id: u64,
    pub buf: wgpu::Buffer,
    pub size: u64,
}

pub type Buf = Arc<GBuf>;

/// A backend's kernel names: any small copyable key (an enum of its kernels).
pub trait KernelKey: Copy + Eq + Hash + Debug {}
impl<T: Copy + Eq + Hash + Debug> KernelKey for T {}

/// One kernel to compile: its key, WGSL source (entry point `main`, scalars in a uniform
/// block at binding 0) and the read-only flag of each storage binding 1.. .
pub struct KernelSpec<K> {
    pub key: K,
    pub src: String,
    pub read_only: Vec<bool>,
}

struct Kernel {
    layout: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
}

/// A device, its queue and the kernels compiled for it.
pub struct Ctx<K: KernelKey> {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    kernels: HashMap<K, Kernel>,
    align: u64,
    /// Tiny buffers bound where a kernel's binding is unused in a given mode.
    pub dummy_r: Buf,
    pub dummy_w: [Buf; 2],
}

impl<K: KernelKey> Ctx<K> {
    /// Opens the first high-performance adapter (a GPU, or lavapipe) and compiles `specs`;
    /// `label` names the device in driver messages.
    pub fn new(label: &str, specs: Vec<KernelSpec<K>>) -> Result<Ctx<K>, GpuError> {
        pollster::block_on(Self::new_async(label, specs))
    }

    async fn new_async(label: &str, specs: Vec<KernelSpec<K>>) -> Result<Ctx<K>, GpuError> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: false,
                compatible_surface: None,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        let needed = specs.iter().map(|s| s.read_only.len()).max().unwrap_or(0) as u32;
        if limits.max_storage_buffers_per_shader_stage < needed {
            return Err(GpuError::Unsupported(format!(
                "adapter {} allows {} storage buffers per shader stage, {needed} are needed",
                info.name, limits.max_storage_buffers_per_shader_stage
            )));
        }
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some(label),
                required_features: wgpu::Features::empty(),
                // Everything the adapter offers: large vocabularies need big storage bindings.
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::Device(e.to_string()))?;
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut kernels = HashMap::new();
        for spec in specs {
            let kernel = build_kernel(&device, spec.key, &spec.src, &spec.read_only);
            kernels.insert(spec.key, kernel);
        }
        if let Some(e) = scope.pop().await {
            return Err(GpuError::Device(format!("building kernels: {e}")));
        }
        let mk = |size: u64| new_buf(&device, size, "dummy");
        Ok(Ctx {
            align: limits
                .min_uniform_buffer_offset_alignment
                .max(PARAM_BYTES as u32) as u64,
            dummy_r: mk(16),
            dummy_w: [mk(16), mk(16)],
            device,
            queue,
            info,
            kernels,
        })
    }

    /// Name and backend of the adapter, e.g. "NVIDIA H100 (Vulkan, DiscreteGpu)".
    pub fn adapter(&self) -> String {
        let i = &self.info;
        format!("{} ({:?}, {:?})", i.name, i.backend, i.device_type)
    }

    /// True on a CPU (software) adapter such as lavapipe: timings there are not GPU figures.
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// The largest storage buffer one binding may cover, in bytes.
    pub fn max_binding(&self) -> u64 {
        self.device.limits().max_storage_buffer_binding_size
    }

    pub fn buffer(&self, bytes: u64, label: &str) -> Buf {
        new_buf(&self.device, bytes, label)
    }

    pub fn upload<T: Pod>(&self, buf: &Buf, data: &[T]) {
        if !data.is_empty() {
            self.queue.write_buffer(&buf.buf, 0, as_bytes(data));
        }
    }

    /// Copy `n` f32 values from the start of `buf` to the host (waits for queued work).
    pub fn read_f32(&self, buf: &Buf, n: usize) -> Result<Vec<f32>, GpuError> {
        Ok(self
            .read_words(buf, n)?
            .into_iter()
            .map(f32::from_bits)
            .collect())
    }

    /// Copy `n` u32 values from the start of `buf` to the host (waits for queued work).
    pub fn read_u32(&self, buf: &Buf, n: usize) -> Result<Vec<u32>, GpuError> {
        self.read_words(buf, n)
    }

    fn read_words(&self, buf: &Buf, n: usize) -> Result<Vec<u32>, GpuError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let bytes = (n * 4) as u64;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        enc.copy_buffer_to_buffer(&buf.buf, 0, &staging, 0, bytes);
        self.queue.submit([enc.finish()]);
        let slice = staging.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            // The receiver outlives the poll below; a send error cannot lose a result we need.
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Device(format!("waiting for the device: {e}")))?;
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(GpuError::Device(format!("mapping a buffer: {e}"))),
            Err(_) => return Err(GpuError::Device("buffer map callback never ran".into())),
        }
        let view = slice
            .get_mapped_range()
            .map_err(|e| GpuError::Device(format!("reading a mapped buffer: {e}")))?;
        let out = view
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        drop(view);
        staging.unmap();
        Ok(out)
    }

    /// Queue a copy of the first `bytes` of `src` into `dst` (ordered after earlier work).
    pub fn copy(&self, src: &Buf, dst: &Buf, bytes: u64) {
        if bytes == 0 {
            return;
        }
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        enc.copy_buffer_to_buffer(&src.buf, 0, &dst.buf, 0, bytes);
        self.queue.submit([enc.finish()]);
    }

    pub fn recorder(&self) -> Recorder<K> {
        Recorder {
            align: self.align,
            params: Vec::new(),
            cmds: Vec::new(),
        }
    }
}

fn new_buf(device: &wgpu::Device, bytes: u64, label: &str) -> Buf {
    let size = bytes.max(16).div_ceil(16) * 16;
    let buf = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    Arc::new(GBuf {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        buf,
        size,
    })
}

fn build_kernel<K: KernelKey>(
    device: &wgpu::Device,
    k: K,
    src: &str,
    read_only: &[bool],
) -> Kernel {
    let label = format!("{k:?}");
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(&label),
        source: wgpu::ShaderSource::Wgsl(src.into()),
    });
    let mut entries = vec![wgpu::BindGroupLayoutEntry {
        binding: 0,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: true,
            min_binding_size: None,
        },
        count: None,
    }];
    for (i, &ro) in read_only.iter().enumerate() {
        entries.push(wgpu::BindGroupLayoutEntry {
            binding: i as u32 + 1,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only: ro },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        });
    }
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(&label),
        entries: &entries,
    });
    let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(&label),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(&label),
        layout: Some(&pl),
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    Kernel { layout, pipeline }
}

/// Plain-old-data element types that may be viewed as bytes.
pub trait Pod: Copy {}
impl Pod for f32 {}
impl Pod for u32 {}

pub fn as_bytes<T: Pod>(v: &[T]) -> &[u8] {
    // SAFETY: f32 and u32 have no padding and every byte pattern of them is initialised;
    // the byte length covers exactly the slice.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
}

/// A scalar for a kernel's uniform block.
#[derive(Clone, Copy)]
pub enum Arg {
    U(u32),
    F(f32),
}

impl From<u32> for Arg {
    fn from(v: u32) -> Arg {
        Arg::U(v)
    }
}
impl From<usize> for Arg {
    // Callers check sizes against u32 before recording.
    fn from(v: usize) -> Arg {
        Arg::U(v as u32)
    }
}
impl From<f32> for Arg {
    fn from(v: f32) -> Arg {
        Arg::F(v)
    }
}

enum Cmd<K> {
    Dispatch {
        k: K,
        bufs: Vec<Buf>,
        param_off: u32,
        groups: (u32, u32),
    },
    Clear(Buf),
}

/// Collects dispatches; `submit` uploads all uniform blocks at once and encodes everything
/// into one command buffer (wgpu inserts the barriers between dependent dispatches).
pub struct Recorder<K: KernelKey> {
    align: u64,
    params: Vec<u8>,
    cmds: Vec<Cmd<K>>,
}

impl<K: KernelKey> Recorder<K> {
    /// Dispatch `k` over a `groups` grid with scalars `args` and storage buffers `bufs`.
    pub fn dispatch(&mut self, k: K, args: &[Arg], bufs: &[&Buf], groups: (u32, u32)) {
        if groups.0 == 0 || groups.1 == 0 {
            return;
        }

        let off = self.params.len();
        for a in args {
            let w = match *a {
                Arg::U(u) => u,
                Arg::F(f) => f.to_bits(),
            };
            self.params.extend_from_slice(&w.to_le_bytes());
        }
        let end = off as u64 + self.align;
        self.params.resize(end as usize, 0);
        self.cmds.push(Cmd::Dispatch {
            k,
            bufs: bufs.iter().map(|b| Arc::clone(b)).collect(),
            param_off: off as u32,
            groups,
        });
    }

    /// Dispatch over `n` threads in workgroups of 64 (kernels fold the y index back in).
    pub fn dispatch_1d(&mut self, k: K, args: &[Arg], bufs: &[&Buf], n: usize) {
        self.dispatch(k, args, bufs, grid_1d(n));
    }

    pub fn clear(&mut self, b: &Buf) {
        self.cmds.push(Cmd::Clear(Arc::clone(b)));
    }

    pub fn submit(self, ctx: &Ctx<K>) -> Result<(), GpuError> {
        if self.cmds.is_empty() {
            return Ok(());
        }
        for c in &self.cmds {
            if let Cmd::Dispatch { k, .. } = c {
                if !ctx.kernels.contains_key(k) {
                    return Err(GpuError::Device(format!("kernel {k:?} was not built")));
                }
            }
        }
        let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let oom = ctx.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let ubuf = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("params"),
            size: (self.params.len() as u64).max(PARAM_BYTES),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        ctx.queue.write_buffer(&ubuf, 0, &self.params);
        // Bind groups by (kernel, buffers): the per-step dispatches share one.
        let mut groups: HashMap<(K, Vec<u64>), wgpu::BindGroup> = HashMap::new();
        for c in &self.cmds {
            if let Cmd::Dispatch { k, bufs, .. } = c {
                let key = (*k, bufs.iter().map(|b| b.id).collect::<Vec<_>>());
                if groups.contains_key(&key) {
                    continue;
                }
                let Some(kern) = ctx.kernels.get(k) else {
                    continue;
                };
                let mut entries = vec![wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &ubuf,
                        offset: 0,
                        size: wgpu::BufferSize::new(PARAM_BYTES),
                    }),
                }];
                for (i, b) in bufs.iter().enumerate() {
                    entries.push(wgpu::BindGroupEntry {
                        binding: i as u32 + 1,
                        resource: b.buf.as_entire_binding(),
                    });
                }
                let bg = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: None,
                    layout: &kern.layout,
                    entries: &entries,
                });
                groups.insert(key, bg);
            }
        }
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        let mut i = 0;
        while i < self.cmds.len() {
            match &self.cmds[i] {
                Cmd::Clear(b) => {
                    enc.clear_buffer(&b.buf, 0, None);
                    i += 1;
                }
                Cmd::Dispatch { .. } => {
                    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
                    while let Some(Cmd::Dispatch {
                        k,
                        bufs,
                        param_off,
                        groups: (gx, gy),
                    }) = self.cmds.get(i)
                    {
                        let key = (*k, bufs.iter().map(|b| b.id).collect::<Vec<_>>());
                        // Both lookups succeed: kernels were checked above, groups built for every key.
                        if let (Some(kern), Some(bg)) = (ctx.kernels.get(k), groups.get(&key)) {
                            pass.set_pipeline(&kern.pipeline);
                            pass.set_bind_group(0, bg, &[*param_off]);
                            pass.dispatch_workgroups(*gx, *gy, 1);
                        }
                        i += 1;
                    }
                }
            }
        }
        ctx.queue.submit([enc.finish()]);
        if let Some(e) = pollster::block_on(oom.pop()) {
            return Err(GpuError::Device(format!("out of memory: {e}")));
        }
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Device(e.to_string()));
        }
        Ok(())
    }
}

/// Workgroups (64 threads each) covering `n` threads, as (x, y) within the per-dimension cap.
pub fn grid_1d(n: usize) -> (u32, u32) {
    let wg = n.div_ceil(64);
    if wg <= MAX_GROUPS as usize {
        (wg as u32, 1)
    } else {
        (MAX_GROUPS, wg.div_ceil(MAX_GROUPS as usize) as u32)
    }
}
