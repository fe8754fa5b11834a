//! MalConv inference speed on one core (issue 14 target: at least 20 MB/s), beside the
//! direct definition's speed on the same bytes, and the memory of a 1 MB against a 100 MB
//! stream (MalConv2's chunked pooling: it must not grow).
//!
//!     cargo bench -p mallard-malconv --bench throughput

use mallard_malconv::{Config, MalConv, Scratch};
use std::io::Read;
use std::time::Instant;

/// Pseudo-random bytes, generated as read (no buffer of the whole stream).
struct Noise {
    left: u64,
    state: u64,
}
impl Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        for b in &mut buf[..n] {
            self.state = self
                .state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *b = (self.state >> 56) as u8;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn noise(n: u64) -> Vec<u8> {
    let mut v = Vec::new();
    Noise { left: n, state: 1 }.read_to_end(&mut v).unwrap();
    v
}

/// One window's gated channels by direct loops (the definition, no sgemm).
fn direct(net: &MalConv, input: &[u8]) -> f32 {
    let (cfg, w) = (net.config(), net.weights());
    let (e, win, c) = (cfg.embed, cfg.window, cfg.channels);
    let mut best = f32::NEG_INFINITY;
    for chunk in input.chunks(win) {
        for ch in 0..c {
            let (mut a, mut g) = (w.conv_bias[ch], w.conv_bias[c + ch]);
            for (pos, &b) in chunk.iter().enumerate() {
                for d in 0..e {
                    let x = w.embed[b as usize * e + d];
                    let k = (pos * e + d) * 2 * c;
                    a += x * w.conv[k + ch];
                    g += x * w.conv[k + c + ch];
                }
            }
            best = best.max(a / (1.0 + (-g).exp()));
        }
    }
    best
}

fn main() {
    let cfg = Config::default();
    let net = MalConv::new(cfg.clone(), 1).unwrap();
    let mut s = Scratch::default();
    println!(
        "MalConv {:?}: {} multiply-adds per byte, one thread",
        cfg,
        cfg.embed * 2 * cfg.channels
    );
    let data = noise(32 << 20);
    net.score_bytes(&data[..1 << 20], &mut s); // warm up
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        std::hint::black_box(net.score_bytes(&data, &mut s));
        best = best.min(t.elapsed().as_secs_f64());
    }
    let mbps = data.len() as f64 / best / 1e6;
    let small = &data[..1 << 20];
    let t = Instant::now();
    std::hint::black_box(direct(&net, small));
    let direct_mbps = small.len() as f64 / t.elapsed().as_secs_f64() / 1e6;
    println!("malconv (sgemm, chunked):   {mbps:8.1} MB/s per core  (target >= 20)");
    println!(
        "direct loops (definition): {direct_mbps:8.1} MB/s per core  ratio {:.1}x",
        mbps / direct_mbps
    );
    for mb in [1u64, 100] {
        let mut s = Scratch::default();
        let t = Instant::now();
        let p = net
            .pool_reader(
                Noise {
                    left: mb << 20,
                    state: 7,
                },
                u64::MAX,
                &mut s,
            )
            .unwrap();
        println!(
            "stream of {mb:>3} MB: {} windows in {:.2} s, scratch {} KB",
            p.windows,
            t.elapsed().as_secs_f64(),
            s.bytes() / 1024
        );
    }
}
