//! A daemon on a temporary Unix socket and a loopback TCP port, and clients that speak
//! clamd's protocol byte by byte.
#![allow(dead_code)]

use mallard_serve::{Config, Handle, ServeError, Server};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

/// Bytes no benign file holds; the test rule (tagged malicious) matches them.
pub const MARKER: &[u8] = b"MALLARD-SERVE-TEST-MARKER-7f3a";
pub const RULE: &str = "rule Serve_Test_Marker : malicious {\n  strings:\n    $m = \"MALLARD-SERVE-TEST-MARKER-7f3a\"\n  condition:\n    $m\n}\n";

pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub sock: PathBuf,
    pub tcp: SocketAddr,
    pub streams: PathBuf,
    pub root: PathBuf,
    pub handle: Handle,
    pub join: Option<JoinHandle<Result<(), ServeError>>>,
}

/// The configuration tests start from: our marker rule only, short timeouts.
pub fn test_config(dir: &Path) -> Config {
    Config {
        unix_socket: Some(dir.join("mallard.sock")),
        tcp: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        scan_roots: vec![dir.join("root")],
        rules: vec![dir.join("rules.yar")],
        builtin_rules: false,
        workers: 2,
        command_read_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(2),
        stream_max_length: 1 << 20,
        ..Config::default()
    }
}

pub fn start(tweak: impl FnOnce(&mut Config, &Path)) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(dir.path().join("rules.yar"), RULE).unwrap();
    let mut c = test_config(dir.path());
    tweak(&mut c, dir.path());
    let server = Server::bind(c).unwrap();
    let tcp = server.tcp_addr().unwrap();
    let streams = server.stream_dir();
    let handle = server.handle();
    let join = std::thread::spawn(move || server.run());
    Daemon {
        sock: dir.path().join("mallard.sock"),
        root,
        dir,
        tcp,
        streams,
        handle,
        join: Some(join),
    }
}

impl Daemon {
    pub fn stop(&mut self) {
        self.handle.shutdown();
        if let Some(j) = self.join.take() {
            j.join().unwrap().unwrap();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

fn read_to_close(s: &mut dyn Read) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return out,
            Err(e) => panic!(
                "reading the reply: {e} (so far {:?})",
                String::from_utf8_lossy(&out)
            ),
        }
    }
}

/// Sends `bytes` on the Unix socket and reads until the daemon closes.
pub fn unix(sock: &Path, bytes: &[u8]) -> Vec<u8> {
    let mut s = UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(bytes).unwrap();
    read_to_close(&mut s)
}

/// The same over TCP.
pub fn tcp(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(bytes).unwrap();
    read_to_close(&mut s)
}

pub fn text(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap()
}

/// An INSTREAM body: `payload` in chunks of `chunk` bytes, then the zero length.
pub fn chunks(payload: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for c in payload.chunks(chunk.max(1)) {
        out.extend_from_slice(&(c.len() as u32).to_be_bytes());
        out.extend_from_slice(c);
    }
    out.extend_from_slice(&0u32.to_be_bytes());
    out
}

pub fn instream(prefix: &str, payload: &[u8]) -> Vec<u8> {
    let term = if prefix == "z" { "\0" } else { "\n" };
    let mut b = format!("{prefix}INSTREAM{term}").into_bytes();
    b.extend(chunks(payload, 4096));
    b
}

/// Files in a folder (the stream folder must be empty between streams).
pub fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

pub fn shared() -> PathBuf {
    match std::env::var_os("MALLARD_SHARED") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

/// Real benign PE files of ../shared/data/pe-benign (MZ magic), sorted.
pub fn benign_pes(n: usize) -> Vec<PathBuf> {
    let dir = shared().join("data/pe-benign");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| mallard_io_like_pe(p))
        .collect();
    v.sort();
    v.truncate(n);
    assert!(!v.is_empty(), "no PE files in {}", dir.display());
    v
}

fn mallard_io_like_pe(p: &Path) -> bool {
    let mut head = [0u8; 2];
    std::fs::File::open(p)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head == b"MZ"
}
