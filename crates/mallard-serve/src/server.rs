//! Listening, accepting, and answering clamd's commands on each connection.

use crate::conn::{Conn, ReadError, Stream};
use crate::engine::{
    all_names, load_scanners, one_line, status_text, Database, Held, MemoryBudget, Pool, PoolError,
};
use crate::{Config, ServeError};
use mallard_scan::{ScanResult, Scanner, Verdict};
use std::ffi::OsStr;
use std::io::{BufWriter, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// The commands `VERSIONCOMMANDS` lists.
pub const COMMANDS: &str = "SCAN QUIT RELOAD PING CONTSCAN VERSIONCOMMANDS VERSION END SHUTDOWN MULTISCAN FILDES IDSESSION INSTREAM ALLMATCHSCAN JSON";

/// Stack of a connection thread: it parses and writes; scans run on the pool's threads.
const CONN_STACK: usize = 256 << 10;

/// The scanner for one-line replies (no reasons), the one for JSON replies, and what they
/// were loaded from (for `VERSION`).
struct Scanners {
    plain: Arc<Scanner>,
    json: Arc<Scanner>,
    database: Database,
}

struct Shared {
    config: Config,
    scanners: RwLock<Scanners>,
    pool: Pool,
    stop: AtomicBool,
    conns: AtomicUsize,
    /// Streams are written here (mode 0700), each file removed once scanned; the folder
    /// goes when the daemon stops.
    tmp: Mutex<Option<tempfile::TempDir>>,
    tmp_path: PathBuf,
    streams: AtomicU64,
    /// Streams held in memory rather than written to `tmp_path`.
    memory: Arc<MemoryBudget>,
    reload: Mutex<()>,
    tcp_addr: Option<SocketAddr>,
    unix_path: Option<PathBuf>,
    /// Canonical scan roots.
    roots: Vec<PathBuf>,
}

impl Shared {
    fn scanner(&self, json: bool) -> Option<Arc<Scanner>> {
        let s = self.scanners.read().ok()?;
        Some(Arc::clone(if json { &s.json } else { &s.plain }))
    }

    /// Raises the stop flag and wakes the accept loops (by connecting to them).
    fn request_stop(&self) {
        if self.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(a) = self.tcp_addr {
            let _ = TcpStream::connect_timeout(&a, Duration::from_secs(1));
        }
        if let Some(p) = &self.unix_path {
            let _ = UnixStream::connect(p);
        }
    }
}

/// A daemon bound to its sockets, models loaded, ready to [`Server::run`].
pub struct Server {
    shared: Arc<Shared>,
    tcp: Option<TcpListener>,
    unix: Option<UnixListener>,
}

/// Stops a running server from elsewhere (a signal, a test).
#[derive(Clone)]
pub struct Handle(Arc<Shared>);

impl Handle {
    /// Stops accepting; work in flight finishes (streams still arriving are refused), then
    /// `run` returns.
    pub fn shutdown(&self) {
        self.0.request_stop();
    }
}

fn io_err(what: String) -> impl FnOnce(std::io::Error) -> ServeError {
    move |source| ServeError::Io { what, source }
}

/// Binds a Unix socket, replacing a stale socket file (one nobody answers on) but never
/// another kind of file or a live daemon's socket.
fn bind_unix(p: &Path) -> Result<UnixListener, ServeError> {
    if let Ok(meta) = std::fs::symlink_metadata(p) {
        if !meta.file_type().is_socket() {
            return Err(ServeError::Config(format!(
                "{}: exists and is not a socket",
                p.display()
            )));
        }
        if UnixStream::connect(p).is_ok() {
            return Err(ServeError::Config(format!(
                "{}: another daemon is listening there",
                p.display()
            )));
        }
        std::fs::remove_file(p)
            .map_err(io_err(format!("removing stale socket {}", p.display())))?;
    }
    UnixListener::bind(p).map_err(io_err(format!("binding {}", p.display())))
}

impl Server {
    /// Loads the models, rules and lists, and binds the sockets of `config`.
    pub fn bind(config: Config) -> Result<Server, ServeError> {
        if config.unix_socket.is_none() && config.tcp.is_none() {
            return Err(ServeError::Config(
                "nothing to listen on: give --socket PATH and/or --tcp HOST:PORT (or LocalSocket/TCPSocket in the config file)".into(),
            ));
        }
        let mut roots = Vec::new();
        for r in &config.scan_roots {
            let c =
                std::fs::canonicalize(r).map_err(io_err(format!("ScanRoot {}", r.display())))?;
            roots.push(c);
        }
        let (plain, json, database) = load_scanners(&config)?;
        let tmp = tempfile::Builder::new()
            .prefix("mallard-serve-")
            .tempdir()
            .map_err(io_err("making the stream folder".into()))?;
        let tmp_path = tmp.path().to_path_buf();
        let tcp = match config.tcp {
            Some(a) => Some(TcpListener::bind(a).map_err(io_err(format!("binding {a}")))?),
            None => None,
        };
        let tcp_addr = match &tcp {
            Some(l) => Some(
                l.local_addr()
                    .map_err(io_err("reading the TCP address".into()))?,
            ),
            None => None,
        };
        let unix = match &config.unix_socket {
            Some(p) => Some(bind_unix(p)?),
            None => None,
        };
        let pool = Pool::new(
            config.workers,
            config.max_queue,
            config.scan_timeout,
            config.scan_hook.clone(),
        );
        let shared = Arc::new(Shared {
            scanners: RwLock::new(Scanners {
                plain: Arc::new(plain),
                json: Arc::new(json),
                database,
            }),
            pool,
            stop: AtomicBool::new(false),
            conns: AtomicUsize::new(0),
            tmp: Mutex::new(Some(tmp)),
            tmp_path,
            streams: AtomicU64::new(0),
            memory: MemoryBudget::new(config.stream_memory),
            reload: Mutex::new(()),
            tcp_addr,
            unix_path: config.unix_socket.clone(),
            roots,
            config,
        });
        Ok(Server { shared, tcp, unix })
    }

    /// The TCP address bound (port 0 resolved).
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.shared.tcp_addr
    }

    /// Where the server listens, in words.
    pub fn listening(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = &self.shared.unix_path {
            parts.push(format!("unix socket {}", p.display()));
        }
        if let Some(a) = self.shared.tcp_addr {
            parts.push(format!("tcp {a}"));
        }
        parts.join(", ")
    }

    /// The private folder streams are written to (removed when `run` returns).
    pub fn stream_dir(&self) -> PathBuf {
        self.shared.tmp_path.clone()
    }

    pub fn handle(&self) -> Handle {
        Handle(Arc::clone(&self.shared))
    }

    /// Stops the server on SIGTERM or SIGINT (in-flight work finishes).
    pub fn stop_on_signals(&self) -> Result<(), ServeError> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
            .map_err(io_err("catching SIGTERM".into()))?;
        let h = self.handle();
        std::thread::Builder::new()
            .name("mallard-serve-signals".into())
            .spawn(move || {
                if signals.forever().next().is_some() {
                    eprintln!("mallard serve: signal received, finishing work in flight");
                    h.shutdown();
                }
            })
            .map_err(io_err("starting the signal thread".into()))?;
        Ok(())
    }

    /// Serves until shut down (`SHUTDOWN`, a signal, [`Handle::shutdown`]); then waits for
    /// connections in flight (at most the scan timeout plus a second), removes the Unix
    /// socket and the stream folder, and returns.
    pub fn run(self) -> Result<(), ServeError> {
        let mut loops = Vec::new();
        if let Some(l) = self.tcp {
            let sh = Arc::clone(&self.shared);
            loops.push(spawn_loop("tcp", move || accept_tcp(l, sh))?);
        }
        if let Some(l) = self.unix {
            let sh = Arc::clone(&self.shared);
            loops.push(spawn_loop("unix", move || accept_unix(l, sh))?);
        }
        for h in loops {
            let _ = h.join();
        }
        let sh = &self.shared;
        let grace = Instant::now() + sh.config.scan_timeout + Duration::from_secs(1);
        while sh.conns.load(Ordering::SeqCst) > 0 && Instant::now() < grace {
            std::thread::sleep(Duration::from_millis(20));
        }
        sh.pool.close();
        if let Some(p) = &sh.unix_path {
            let _ = std::fs::remove_file(p);
        }
        if let Ok(mut t) = sh.tmp.lock() {
            if let Some(t) = t.take() {
                let _ = t.close();
            }
        }
        Ok(())
    }
}

fn spawn_loop(
    name: &str,
    f: impl FnOnce() + Send + 'static,
) -> Result<std::thread::JoinHandle<()>, ServeError> {
    std::thread::Builder::new()
        .name(format!("mallard-serve-{name}"))
        .spawn(f)
        .map_err(io_err("starting an accept thread".into()))
}

fn accept_tcp(l: TcpListener, sh: Arc<Shared>) {
    for s in l.incoming() {
        if sh.stop.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(s) = s {
            let _ = s.set_nodelay(true);
            admit(Stream::Tcp(s), &sh);
        }
    }
}

fn accept_unix(l: UnixListener, sh: Arc<Shared>) {
    for s in l.incoming() {
        if sh.stop.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(s) = s {
            admit(Stream::Unix(s), &sh);
        }
    }
}

/// Counts a connection while its thread lives.
struct Counted(Arc<Shared>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.conns.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Gives a connection its thread, or, past `MaxConnections`, an error reply.
fn admit(mut s: Stream, sh: &Arc<Shared>) {
    let n = sh.conns.fetch_add(1, Ordering::SeqCst);
    let counted = Counted(Arc::clone(sh));
    if n >= sh.config.max_connections {
        let _ = s.set_write_timeout(Duration::from_millis(200));
        let _ = s.write_all(b"Too many connections. ERROR\n");
        return;
    }
    let _ = std::thread::Builder::new()
        .name("mallard-serve-conn".into())
        .stack_size(CONN_STACK)
        .spawn(move || {
            let sh = Arc::clone(&counted.0);
            serve(s, &sh);
            drop(counted);
        });
}

/// How a command ended and how its reply ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Term {
    Z,
    N,
    Legacy,
}

impl Term {
    fn byte(self) -> u8 {
        if self == Term::Z {
            0
        } else {
            b'\n'
        }
    }
}

/// Where replies go: the terminator, and the request number inside a session.
struct Out<'c, 'a> {
    conn: &'c mut Conn<'a>,
    term: Term,
    id: Option<u64>,
}

impl Out<'_, '_> {
    fn line(&mut self, text: &str) -> bool {
        let mut b = Vec::with_capacity(text.len() + 8);
        if let Some(id) = self.id {
            b.extend_from_slice(format!("{id}: ").as_bytes());
        }
        b.extend_from_slice(text.as_bytes());
        b.push(self.term.byte());
        self.conn.write_all(&b).is_ok()
    }
}

/// Serves one connection: one command, or a session of them.
fn serve(stream: Stream, sh: &Shared) {
    let c = &sh.config;
    let _ = stream.set_write_timeout(c.idle_timeout);
    let mut conn = Conn::new(stream, &sh.stop);
    let mut session: Option<u64> = None;
    loop {
        let wait = if session.is_some() {
            c.idle_timeout
        } else {
            c.command_read_timeout
        };
        let first = match conn.peek(Instant::now() + wait) {
            Ok(b) => b,
            Err(ReadError::Timeout) if session.is_none() => {
                let _ = conn.write_all(b"COMMAND READ TIMED OUT\n");
                return;
            }
            Err(_) => return,
        };
        let deadline = Instant::now() + c.command_read_timeout;
        let max = c.max_command_length;
        let (term, raw) = match first {
            b'z' | b'n' => {
                let term = if first == b'z' { Term::Z } else { Term::N };
                let mut prefix = [0u8];
                if conn.read_exact(&mut prefix, deadline).is_err() {
                    return;
                }
                (term, conn.read_until(term.byte(), max, deadline))
            }
            _ => (Term::Legacy, conn.read_legacy(max, deadline)),
        };
        let raw = match raw {
            Ok(r) => r,
            Err(ReadError::Timeout) => {
                let _ = conn.write_all(b"COMMAND READ TIMED OUT\n");
                return;
            }
            Err(ReadError::TooLong) => {
                let mut out = Out {
                    conn: &mut conn,
                    term,
                    id: None,
                };
                out.line("UNKNOWN COMMAND");
                return;
            }
            Err(_) => return,
        };
        let id = session.map(|n| n + 1);
        if let Some(n) = &mut session {
            *n += 1;
        }
        let mut out = Out {
            conn: &mut conn,
            term,
            id,
        };
        if id.is_some() && term == Term::Legacy {
            out.line("Command invalid inside IDSESSION. ERROR");
            return;
        }
        match command(&mut out, sh, &raw, id.is_some()) {
            Next::Close => return,
            Next::StartSession if id.is_none() => session = Some(0),
            Next::StartSession | Next::Continue => {}
        }
        if session.is_none() {
            return;
        }
    }
}

enum Next {
    Continue,
    Close,
    StartSession,
}

/// The scanning commands and how each treats a folder.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Walk {
    /// Stop at the first detection.
    Scan,
    /// Go on after detections.
    Cont,
    /// Files in parallel.
    Multi,
    /// Go on, and name every decisive rule of a file.
    AllMatch,
}

fn split_command(raw: &[u8]) -> (&[u8], &[u8]) {
    match raw.iter().position(|&b| b == b' ') {
        Some(i) => (&raw[..i], &raw[i + 1..]),
        None => (raw, &[]),
    }
}

fn command(out: &mut Out, sh: &Shared, raw: &[u8], in_session: bool) -> Next {
    let (mut name, mut arg) = split_command(raw);
    let mut json = false;
    if name == b"JSON" {
        json = true;
        (name, arg) = split_command(arg);
    }
    let prefixed = out.term != Term::Legacy;
    let invalid_here = |out: &mut Out| {
        out.line("Command invalid inside IDSESSION. ERROR");
        Next::Close
    };
    let unknown = |out: &mut Out| {
        out.line("UNKNOWN COMMAND");
        Next::Close
    };
    let version = || {
        sh.scanners.read().map_or_else(
            |_| format!("mallard {}", env!("CARGO_PKG_VERSION")),
            |s| s.database.version_line(),
        )
    };
    let walk = match name {
        b"SCAN" => Some(Walk::Scan),
        b"CONTSCAN" => Some(Walk::Cont),
        b"MULTISCAN" => Some(Walk::Multi),
        b"ALLMATCHSCAN" => Some(Walk::AllMatch),
        _ => None,
    };
    if json && walk.is_none() && name != b"INSTREAM" && name != b"FILDES" {
        return unknown(out);
    }
    if let Some(w) = walk {
        if arg.is_empty() {
            return unknown(out);
        }
        for l in path_scan(sh, w, OsStr::from_bytes(arg), json) {
            if !out.line(&l) {
                return Next::Close;
            }
        }
        return Next::Continue;
    }
    match name {
        b"PING" if arg.is_empty() => {
            out.line("PONG");
            Next::Continue
        }
        b"VERSION" if arg.is_empty() => {
            out.line(&version());
            Next::Continue
        }
        b"VERSIONCOMMANDS" if arg.is_empty() => {
            out.line(&format!("{}| COMMANDS: {COMMANDS}", version()));
            Next::Continue
        }
        b"RELOAD" if arg.is_empty() => {
            if in_session {
                return invalid_here(out);
            }
            out.line(&reload(sh));
            Next::Close
        }
        b"SHUTDOWN" | b"QUIT" if arg.is_empty() => {
            if in_session {
                return invalid_here(out);
            }
            if sh.config.allow_shutdown {
                sh.request_stop();
            } else {
                out.line("SHUTDOWN is disabled (AllowShutdown no). ERROR");
            }
            Next::Close
        }
        b"IDSESSION" if arg.is_empty() && prefixed => {
            if in_session {
                return invalid_here(out);
            }
            Next::StartSession
        }
        b"END" if arg.is_empty() && in_session => Next::Close,
        b"INSTREAM" if arg.is_empty() && prefixed => instream(out, sh, json),
        b"FILDES" if arg.is_empty() && prefixed => fildes(out, sh, json),
        _ if in_session => invalid_here(out),
        _ => unknown(out),
    }
}

/// Swaps in a freshly loaded scanner; a failure keeps the one in use.
fn reload(sh: &Shared) -> String {
    let Ok(_one_at_a_time) = sh.reload.lock() else {
        return "RELOAD failed: internal error. ERROR".into();
    };
    match load_scanners(&sh.config) {
        Ok((plain, json, database)) => match sh.scanners.write() {
            Ok(mut g) => {
                *g = Scanners {
                    plain: Arc::new(plain),
                    json: Arc::new(json),
                    database,
                };
                "RELOADING".into()
            }
            Err(_) => "RELOAD failed: internal error. ERROR".into(),
        },
        Err(e) => format!(
            "RELOAD failed, the previous models and rules stay: {}. ERROR",
            one_line(&e.to_string())
        ),
    }
}

/// The reply line for one result: `LABEL: status`, or its JSON object.
fn result_line(r: &ScanResult, real: &Path, label: &str, json: bool) -> String {
    let status = status_text(r, real, label);
    if !json {
        return format!("{label}: {status}");
    }
    let real_s = real.display().to_string();
    let mut v = serde_json::to_value(r).unwrap_or(serde_json::Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert("path".into(), label.into());
        if let Some(e) = r.error.as_deref() {
            o.insert("error".into(), e.replace(&real_s, label).into());
        }
        o.insert("clamd".into(), format!("{label}: {status}").into());
    }
    serde_json::to_string(&v)
        .unwrap_or_else(|_| format!("{label}: cannot encode the result. ERROR"))
}

/// The reply for a file the pool could not scan; a JSON request still gets JSON.
fn pool_error(sh: &Shared, e: PoolError, real: &Path, label: &str, json: bool) -> String {
    let msg = e.message(sh.pool.timeout());
    if json {
        return result_line(&ScanResult::error(real, msg), real, label, true);
    }
    format!("{label}: {msg}. ERROR")
}

/// Scans one file through the pool and gives its reply line.
fn scan_one(sh: &Shared, real: &Path, label: &str, json: bool) -> String {
    let Some(scanner) = sh.scanner(json) else {
        return format!("{label}: internal error. ERROR");
    };
    match sh.pool.scan(scanner, real.to_path_buf()) {
        Ok(r) => result_line(&r, real, label, json),
        Err(e) => pool_error(sh, e, real, label, json),
    }
}

/// An I/O error's text without Rust's "(os error N)".
fn io_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// `SCAN` and its kin: a file or a folder, inside the scan roots only.
fn path_scan(sh: &Shared, walk: Walk, arg: &OsStr, json: bool) -> Vec<String> {
    let path = Path::new(arg);
    let label = one_line(&path.to_string_lossy());
    let denied = || vec![format!("{label}: Access denied. ERROR")];
    if !path.is_absolute() {
        return vec![format!(
            "{label}: File path check failure: not an absolute path. ERROR"
        )];
    }
    if sh.roots.is_empty() || path.components().any(|c| c == Component::ParentDir) {
        return denied();
    }
    let canon = match std::fs::canonicalize(path) {
        Ok(c) => c,
        Err(e) => {
            // Whether a path outside the roots exists is not told.
            if !sh
                .config
                .scan_roots
                .iter()
                .chain(&sh.roots)
                .any(|r| path.starts_with(r))
            {
                return denied();
            }
            return vec![format!(
                "{label}: File path check failure: {}. ERROR",
                io_text(&e)
            )];
        }
    };
    if !sh.roots.iter().any(|r| canon.starts_with(r)) {
        return denied();
    }
    let Some(scanner) = sh.scanner(json) else {
        return vec![format!("{label}: internal error. ERROR")];
    };
    if !canon.is_dir() {
        let r = match sh.pool.scan(scanner, canon.clone()) {
            Ok(r) => r,
            Err(e) => return vec![pool_error(sh, e, &canon, &label, json)],
        };
        if walk == Walk::AllMatch && r.verdict == Verdict::Malicious && !json {
            return all_names(&r)
                .into_iter()
                .map(|n| format!("{label}: {n} FOUND"))
                .collect();
        }
        return vec![result_line(&r, &canon, &label, json)];
    }
    // Depth capped as every walk is; the entries listed too, before anything is scanned.
    let opts = mallard_io::WalkOptions {
        follow_symlinks: false,
        max_depth: mallard_io::Caps::default().max_walk_depth,
    };
    let max = sh.config.max_directory_entries;
    let Some(expanded) = mallard_scan::expand_paths_at_most(&[path.to_path_buf()], &opts, max)
    else {
        return vec![format!(
            "{label}: Folder too large: more than {max} entries (MaxDirectoryEntries). ERROR"
        )];
    };
    let mut lines: Vec<String> = expanded
        .errors
        .iter()
        .map(|r| {
            let p = PathBuf::from(&r.path);
            let l = one_line(&r.path);
            result_line(r, &p, &l, json)
        })
        .collect();
    let mut found = false;
    let mut report = |r: &ScanResult, p: &Path, lines: &mut Vec<String>| -> bool {
        let l = one_line(&p.to_string_lossy());
        match r.verdict {
            _ if json => lines.push(result_line(r, p, &l, true)),
            Verdict::Benign => {}
            Verdict::Malicious if walk == Walk::AllMatch => {
                lines.extend(all_names(r).into_iter().map(|n| format!("{l}: {n} FOUND")))
            }
            _ => lines.push(result_line(r, p, &l, false)),
        }
        if r.verdict == Verdict::Malicious {
            found = true;
            return walk == Walk::Scan;
        }
        false
    };
    if walk == Walk::Multi {
        // A window of files in flight, as many as there are scanning threads.
        let window = sh.config.workers.max(1);
        for chunk in expanded.files.chunks(window) {
            let pending: Vec<_> = chunk
                .iter()
                .map(|p| (p, sh.pool.submit(Arc::clone(&scanner), p.clone())))
                .collect();
            for (p, rx) in pending {
                let r = match rx.and_then(|p| sh.pool.wait(&p)) {
                    Ok(r) => r,
                    Err(e) => ScanResult::error(p, e.message(sh.pool.timeout())),
                };
                report(&r, p, &mut lines);
            }
            if sh.stop.load(Ordering::SeqCst) {
                lines.push(format!("{label}: Server shutting down. ERROR"));
                break;
            }
        }
    } else {
        for p in &expanded.files {
            let r = match sh.pool.scan(Arc::clone(&scanner), p.clone()) {
                Ok(r) => r,
                Err(e) => ScanResult::error(p, e.message(sh.pool.timeout())),
            };
            if report(&r, p, &mut lines) {
                break;
            }
            if sh.stop.load(Ordering::SeqCst) {
                lines.push(format!("{label}: Server shutting down. ERROR"));
                break;
            }
        }
    }
    if lines.is_empty() && !found {
        lines.push(format!("{label}: OK"));
    }
    lines
}

/// Removes a stream's file when the stream is done with, whatever happened.
struct Removed(PathBuf);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Where a stream's bytes go: memory while the daemon's [`MemoryBudget`] has room, else a
/// private file (removed when dropped).
enum Sink {
    Memory(Vec<u8>, Held),
    File(BufWriter<std::fs::File>, Removed),
}

impl Sink {
    /// Appends `b`; `most`: the most bytes the stream may hold.
    fn write(&mut self, b: &[u8], path: &Path, most: usize) -> std::io::Result<()> {
        if let Sink::Memory(buf, held) = self {
            let need = buf.len() + b.len();
            if need <= buf.capacity() {
                buf.extend_from_slice(b);
                return Ok(());
            }
            // Doubling, as a Vec grows, with every byte of capacity counted; past 1 MiB one
            // step to 8 MiB, so that a large stream is not copied again at every doubling
            // (capacity not written to costs address space, not memory).
            let mut want = need.max(buf.capacity() * 2).max(64 << 10);
            if want > 1 << 20 {
                want = want.max((8 << 20).min(most)).max(need);
            }
            if held.grow((want - buf.capacity()) as u64) {
                buf.reserve_exact(want - buf.len());
                buf.extend_from_slice(b);
                return Ok(());
            }
            self.spill(path)?;
        }
        match self {
            Sink::File(f, _) => f.write_all(b),
            Sink::Memory(..) => Ok(()),
        }
    }

    /// A new private file at `path`, readable by the daemon's user only.
    fn file(path: &Path) -> std::io::Result<Sink> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        let removed = Removed(path.to_path_buf());
        Ok(Sink::File(
            BufWriter::with_capacity(64 << 10, file),
            removed,
        ))
    }

    /// Moves what is held in memory to a new private file at `path`.
    fn spill(&mut self, path: &Path) -> std::io::Result<()> {
        if let Sink::Memory(buf, _) = self {
            let mut file = Sink::file(path)?;
            if let Sink::File(w, _) = &mut file {
                w.write_all(buf)?;
            }
            *self = file;
        }
        Ok(())
    }
}

/// `INSTREAM`: chunks (4-byte big-endian length, then the bytes) to memory or a private
/// file until a zero length, then a scan. A PE stream held in memory is scanned from there:
/// no file written and read back (on a 2-core machine that was a tenth of the daemon's time
/// and most of a large file's wait).
fn instream(out: &mut Out, sh: &Shared, json: bool) -> Next {
    let c = &sh.config;
    let n = sh.streams.fetch_add(1, Ordering::SeqCst);
    let path = sh.tmp_path.join(format!("stream-{n}"));
    let made = match sh.memory.share() {
        Some(held) => Ok(Sink::Memory(Vec::new(), held)),
        None => Sink::file(&path),
    };
    let mut sink = match made {
        Ok(s) => s,
        Err(e) => {
            out.line(&format!(
                "stream: Can't create temporary file: {}. ERROR",
                io_text(&e)
            ));
            return Next::Close;
        }
    };
    let whole = Instant::now() + c.stream_timeout;
    let max = c
        .stream_max_length
        .min(c.max_file_size.max(c.stream_max_length));
    let most = usize::try_from(max).unwrap_or(usize::MAX);
    let mut total: u64 = 0;
    loop {
        let deadline = whole.min(Instant::now() + c.idle_timeout);
        let mut len = [0u8; 4];
        let got = out.conn.read_exact(&mut len, deadline);
        let len = u32::from_be_bytes(len) as u64;
        let got = got.and_then(|()| {
            if len == 0 {
                return Ok(true);
            }
            if total + len > max {
                return Err(ReadError::TooLong);
            }
            total += len;
            out.conn
                .copy_to(len, deadline, &mut |b| sink.write(b, &path, most))
                .map(|()| false)
        });
        match got {
            Ok(false) => {}
            Ok(true) => break,
            Err(ReadError::TooLong) => {
                out.line("INSTREAM size limit exceeded. ERROR");
                // Clients (Python's clamd) send the whole stream before reading: take what
                // is still coming for a moment so that they read the reply, not a broken pipe.
                // What is left may exceed the limit itself (a file twice the limit, plus a
                // chunk header every kilobyte): the bytes are capped at four times it, the
                // time at two seconds.
                out.conn.drain(
                    Duration::from_millis(100),
                    Instant::now() + Duration::from_secs(2),
                    max.saturating_mul(4),
                );
                return Next::Close;
            }
            Err(ReadError::Timeout) => {
                out.line("stream: Stream read timed out. ERROR");
                return Next::Close;
            }
            Err(ReadError::Stopping) => {
                out.line("stream: Server shutting down, stream refused. ERROR");
                return Next::Close;
            }
            Err(ReadError::Io(k)) if k != std::io::ErrorKind::ConnectionReset => {
                out.line("stream: Can't write to temporary file. ERROR");
                return Next::Close;
            }
            Err(_) => return Next::Close,
        }
    }
    let line = match sink {
        Sink::Memory(bytes, held) if bytes.starts_with(b"MZ") => {
            scan_pe_in_memory(sh, &path, bytes, held, json)
        }
        // Anything else (a report, or what no model reads) goes the way of a file.
        mut sink => {
            let written = sink.spill(&path).and_then(|()| match &mut sink {
                Sink::File(f, _) => f.flush(),
                Sink::Memory(..) => Ok(()),
            });
            if written.is_err() {
                out.line("stream: Can't write to temporary file. ERROR");
                return Next::Close;
            }
            let Sink::File(f, removed) = sink else {
                return Next::Close;
            };
            drop(f);
            let line = scan_one(sh, &path, "stream", json);
            drop(removed);
            line
        }
    };
    if out.line(&line) {
        Next::Continue
    } else {
        Next::Close
    }
}

/// Scans a PE stream held in memory through the pool and gives its reply line.
fn scan_pe_in_memory(sh: &Shared, path: &Path, bytes: Vec<u8>, held: Held, json: bool) -> String {
    let Some(scanner) = sh.scanner(json) else {
        return "stream: internal error. ERROR".to_string();
    };
    match sh
        .pool
        .scan_pe_bytes(scanner, path.to_path_buf(), bytes, held)
    {
        Ok(r) => result_line(&r, path, "stream", json),
        Err(e) => pool_error(sh, e, path, "stream", json),
    }
}

/// `FILDES`: a file descriptor passed over the Unix socket, scanned through /proc.
fn fildes(out: &mut Out, sh: &Shared, json: bool) -> Next {
    if !out.conn.stream.is_unix() {
        out.line("FILDES only works on a Unix socket. ERROR");
        return Next::Close;
    }
    let deadline = Instant::now() + sh.config.command_read_timeout;
    let fd = match out.conn.take_fd(deadline) {
        Ok(fd) => fd,
        Err(ReadError::Eof) => return Next::Close,
        Err(_) => {
            out.line("No file descriptor received. ERROR");
            return Next::Close;
        }
    };
    out.conn.skip_byte(0);
    let raw = fd.as_raw_fd();
    let path = PathBuf::from(format!("/proc/self/fd/{raw}"));
    let line = scan_one(sh, &path, &format!("fd[{raw}]"), json);
    drop(fd);
    if out.line(&line) {
        Next::Continue
    } else {
        Next::Close
    }
}
