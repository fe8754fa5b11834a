//! The configuration file, in clamd.conf's spirit: one `Key value` per line, `#` comments,
//! keys case-insensitive, repeatable keys (`Model`, `Rules`, `ScanRoot`) given once per value.

use crate::ServeError;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Called on a scanning thread with each file's path just before it is scanned: lets tests
/// (and embedders) hold a scan at a known point to force timeouts and a full queue.
#[derive(Clone)]
pub struct ScanHook(pub Arc<dyn Fn(&Path) + Send + Sync>);

impl std::fmt::Debug for ScanHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScanHook")
    }
}

/// Everything `mallard serve` runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Unix socket to listen on (`LocalSocket`).
    pub unix_socket: Option<PathBuf>,
    /// TCP address to listen on (`TCPAddr` + `TCPSocket`, or `--tcp HOST:PORT`).
    pub tcp: Option<SocketAddr>,
    /// Connections served at once; more are answered with an error and closed.
    pub max_connections: usize,
    /// Scanning threads shared by all connections.
    pub workers: usize,
    /// Files waiting for a scanning thread; past it a file gets a "queue full" error.
    pub max_queue: usize,
    /// Time a client has to send a whole command (clamd's `CommandReadTimeout`).
    pub command_read_timeout: Duration,
    /// Time a connection may wait for data: between session commands and between the
    /// chunks of a stream (clamd's `IdleTimeout` and `ReadTimeout` in one).
    pub idle_timeout: Duration,
    /// Time one whole `INSTREAM` may take to arrive.
    pub stream_timeout: Duration,
    /// Time one file's scan may take; past it the file gets an error reply.
    pub scan_timeout: Duration,
    /// Largest stream accepted (clamd's `StreamMaxLength`).
    pub stream_max_length: u64,
    /// Bytes of streams kept in memory, all connections together; a stream that does not
    /// fit goes to a private file, as every stream does when this is 0.
    pub stream_memory: u64,
    /// Longest command line accepted, in bytes.
    pub max_command_length: usize,
    /// Folders under which `SCAN`, `CONTSCAN`, `MULTISCAN` and `ALLMATCHSCAN` may read;
    /// none: path commands are refused (streams and `FILDES` still work).
    pub scan_roots: Vec<PathBuf>,
    /// Entries (files, folders, links) a folder command may list; past it the request is
    /// refused before any file is scanned.
    pub max_directory_entries: usize,
    /// Model files or `builtin:NAME` (at most one per kind of input).
    pub models: Vec<PathBuf>,
    /// Extra YARA rule files or folders.
    pub rules: Vec<PathBuf>,
    pub builtin_rules: bool,
    pub allow_list: Option<PathBuf>,
    pub deny_list: Option<PathBuf>,
    pub threshold: Option<f32>,
    /// Reasons given per verdict in JSON replies.
    pub reasons: usize,
    /// Whether `SHUTDOWN` (and `QUIT`) from a client stops the daemon, as in clamd.
    pub allow_shutdown: bool,
    /// Largest file `SCAN`/`FILDES` reads (and the cap on `StreamMaxLength`).
    pub max_file_size: u64,
    /// Not in the file: see [`ScanHook`].
    pub scan_hook: Option<ScanHook>,
}

impl Default for Config {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Config {
            unix_socket: None,
            tcp: None,
            max_connections: 64,
            workers: cores,
            max_queue: 256,
            command_read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            stream_timeout: Duration::from_secs(120),
            scan_timeout: Duration::from_secs(60),
            stream_max_length: 25 << 20,
            stream_memory: 256 << 20,
            max_command_length: 8192,
            scan_roots: Vec::new(),
            max_directory_entries: 100_000,
            models: Vec::new(),
            rules: Vec::new(),
            builtin_rules: true,
            allow_list: None,
            deny_list: None,
            threshold: None,
            reasons: 5,
            allow_shutdown: true,
            max_file_size: mallard_io::Caps::default().max_pe_bytes,
            scan_hook: None,
        }
    }
}

/// The help text for the configuration file (`mallard serve --help`).
pub const CONFIG_HELP: &str = "\
Configuration file (--config FILE): one `Key value` per line, # comments, keys as in clamd.conf:
  LocalSocket PATH         Unix socket (--socket wins)
  TCPSocket PORT           TCP port, on TCPAddr (default 127.0.0.1; --tcp wins)
  TCPAddr HOST             address for TCPSocket; a non-loopback one only when named here
  MaxConnections N         connections served at once (64); more get an error reply
  MaxThreads N             scanning threads (all cores; --threads wins)
  MaxQueue N               files waiting for a thread (256); more get \"queue full\"
  CommandReadTimeout S     seconds to send a whole command (5)
  IdleTimeout S            seconds a connection may sit idle or stall a stream (30)
  StreamTimeout S          seconds one INSTREAM may take to arrive (120)
  ScanTimeout S            seconds one file's scan may take (60)
  StreamMaxLength SIZE     largest INSTREAM, with K/M/G suffix (25M)
  StreamMemory SIZE        streams held in memory, all connections together (256M); a
                           stream past it goes to a private file; 0: every stream does
  MaxFileSize SIZE         largest file SCAN or FILDES reads (the scan caps' PE size)
  ScanRoot DIR             folder SCAN/CONTSCAN/MULTISCAN/ALLMATCHSCAN may read; repeatable;
                           none: path commands are refused
  MaxDirectoryEntries N    files, folders and links one folder command may list (100000);
                           more: the request is refused; folders deeper than 64 not entered
  Model SPEC               model file or builtin:NAME; repeatable (one per input kind)
  Rules PATH               extra YARA rules (file or folder); repeatable
  BuiltinRules yes|no      run mallard's built-in rules (yes)
  AllowList FILE           sha256 values benign whatever the models say
  DenyList FILE            sha256 values malicious whatever the models say
  Threshold P              decision threshold on P(malicious)
  Reasons N                reasons per verdict in JSON replies (5)
  AllowShutdown yes|no     whether clients may send SHUTDOWN (yes, as clamd)";

fn bad(file: &Path, line: usize, msg: String) -> ServeError {
    ServeError::Config(format!("{}:{line}: {msg}", file.display()))
}

/// A size with an optional K, M or G suffix (powers of 1024), as clamd.conf writes them.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, shift) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 10),
        Some((i, 'm' | 'M')) => (&s[..i], 20),
        Some((i, 'g' | 'G')) => (&s[..i], 30),
        _ => (s, 0),
    };
    num.parse::<u64>().ok()?.checked_mul(1u64 << shift)
}

/// `HOST:PORT`, or a bare `PORT` (loopback): the address to listen on.
pub fn parse_tcp(s: &str) -> Result<SocketAddr, ServeError> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.to_socket_addrs()
        .map_err(|e| ServeError::Config(format!("TCP address {s:?}: {e}")))?
        .next()
        .ok_or_else(|| ServeError::Config(format!("TCP address {s:?} resolves to nothing")))
}

impl Config {
    /// Reads a configuration file over the defaults.
    pub fn from_file(path: &Path) -> Result<Config, ServeError> {
        let bytes = mallard_io::read_capped(path, 1 << 20)
            .map_err(|e| ServeError::Config(e.to_string()))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| ServeError::Config(format!("{}: not UTF-8 text", path.display())))?;
        Config::parse(&text, path)
    }

    /// Parses configuration text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Config, ServeError> {
        let mut c = Config::default();
        let (mut tcp_port, mut tcp_addr) = (None::<u16>, None::<String>);
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let (key, value) = match line.split_once(char::is_whitespace) {
                Some((k, v)) => (k, v.trim()),
                None => return Err(bad(origin, n, format!("{line:?} has no value"))),
            };
            let num = |what: &str| {
                value
                    .parse::<usize>()
                    .ok()
                    .filter(|v| *v > 0)
                    .ok_or_else(|| bad(origin, n, format!("{key}: {what}, not {value:?}")))
            };
            let secs = || {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v > 0.0 && *v <= 86_400.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| {
                        bad(
                            origin,
                            n,
                            format!("{key}: seconds in (0, 86400], not {value:?}"),
                        )
                    })
            };
            let size = || {
                parse_size(value).filter(|v| *v > 0).ok_or_else(|| {
                    bad(
                        origin,
                        n,
                        format!("{key}: a size such as 25M, not {value:?}"),
                    )
                })
            };
            let yes = || match value.to_ascii_lowercase().as_str() {
                "yes" | "true" | "1" => Ok(true),
                "no" | "false" | "0" => Ok(false),
                _ => Err(bad(origin, n, format!("{key}: yes or no, not {value:?}"))),
            };
            match key.to_ascii_lowercase().as_str() {
                "localsocket" => c.unix_socket = Some(PathBuf::from(value)),
                "tcpsocket" => {
                    tcp_port =
                        Some(value.parse().map_err(|_| {
                            bad(origin, n, format!("TCPSocket: a port, not {value:?}"))
                        })?)
                }
                "tcpaddr" => tcp_addr = Some(value.to_string()),
                "maxconnections" => c.max_connections = num("a positive count")?.min(100_000),
                "maxthreads" => c.workers = num("a positive count")?.min(1024),
                "maxqueue" => c.max_queue = num("a positive count")?.min(1_000_000),
                "commandreadtimeout" => c.command_read_timeout = secs()?,
                "idletimeout" => c.idle_timeout = secs()?,
                "streamtimeout" => c.stream_timeout = secs()?,
                "scantimeout" => c.scan_timeout = secs()?,
                "streammaxlength" => c.stream_max_length = size()?,
                "streammemory" => {
                    c.stream_memory = parse_size(value).ok_or_else(|| {
                        bad(
                            origin,
                            n,
                            format!("{key}: a size such as 256M (0: none), not {value:?}"),
                        )
                    })?
                }
                "maxfilesize" => c.max_file_size = size()?,
                "scanroot" => c.scan_roots.push(PathBuf::from(value)),
                "maxdirectoryentries" => {
                    c.max_directory_entries = num("a positive count")?.min(100_000_000)
                }
                "model" => c.models.push(PathBuf::from(value)),
                "rules" => c.rules.push(PathBuf::from(value)),
                "builtinrules" => c.builtin_rules = yes()?,
                "allowlist" => c.allow_list = Some(PathBuf::from(value)),
                "denylist" => c.deny_list = Some(PathBuf::from(value)),
                "threshold" => {
                    c.threshold = Some(
                        value
                            .parse::<f32>()
                            .ok()
                            .filter(|p| (0.0..=1.0).contains(p))
                            .ok_or_else(|| {
                                bad(origin, n, format!("Threshold: in [0, 1], not {value:?}"))
                            })?,
                    )
                }
                "reasons" => {
                    c.reasons = value
                        .parse::<usize>()
                        .ok()
                        .filter(|v| *v <= 1000)
                        .ok_or_else(|| {
                            bad(origin, n, format!("Reasons: 0 to 1000, not {value:?}"))
                        })?
                }
                "allowshutdown" => c.allow_shutdown = yes()?,
                _ => return Err(bad(origin, n, format!("unknown key {key:?}"))),
            }
        }
        match (tcp_port, tcp_addr) {
            (Some(p), Some(a)) => c.tcp = Some(parse_tcp(&format!("{a}:{p}"))?),
            (Some(p), None) => c.tcp = Some(SocketAddr::from(([127, 0, 0, 1], p))),
            (None, Some(_)) => {
                return Err(ServeError::Config(format!(
                    "{}: TCPAddr without TCPSocket",
                    origin.display()
                )))
            }
            (None, None) => {}
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_keys_and_errors() {
        assert_eq!(parse_size("25M"), Some(25 << 20));
        assert_eq!(parse_size("10k"), Some(10 << 10));
        assert_eq!(parse_size("7"), Some(7));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("99999999999G"), None);
        let c = Config::parse(
            "# comment\nLocalSocket /tmp/s\nTCPSocket 3310\nstreammaxlength 1M\nScanRoot /a\nScanRoot /b\nBuiltinRules no\n",
            Path::new("x.conf"),
        )
        .unwrap();
        assert_eq!(c.unix_socket, Some(PathBuf::from("/tmp/s")));
        assert_eq!(c.tcp, Some(SocketAddr::from(([127, 0, 0, 1], 3310))));
        assert_eq!(c.stream_max_length, 1 << 20);
        assert_eq!(c.scan_roots.len(), 2);
        assert!(!c.builtin_rules);
        let e = Config::parse("Nope 1\n", Path::new("x.conf")).unwrap_err();
        assert!(e.to_string().contains("x.conf:1: unknown key"), "{e}");
        let e = Config::parse("\nIdleTimeout -1\n", Path::new("x.conf")).unwrap_err();
        assert!(e.to_string().contains("x.conf:2:"), "{e}");
        assert_eq!(
            parse_tcp("4000").unwrap(),
            SocketAddr::from(([127, 0, 0, 1], 4000))
        );
    }
}
