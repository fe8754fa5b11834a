//! `mallard serve`: a scanning daemon that answers ClamAV's clamd protocol with mallard's
//! verdicts, so that tools which talk to clamd (clamdscan, the Python `clamd` clients,
//! mail filters) get machine-learning verdicts unchanged.
//!
//! Threads, not an async runtime: one thread per connection (capped by `MaxConnections`,
//! every read and write under a timeout) and a fixed pool of scanning threads fed through a
//! bounded queue. Models, rules and lists are loaded once and shared; `RELOAD` swaps in a
//! whole new set or keeps the old one. See the README's "Scanning daemon" section.

mod config;
mod conn;
mod engine;
mod server;

pub use config::{parse_size, parse_tcp, Config, ScanHook, CONFIG_HELP};
pub use engine::{detection_name, load_scanner, load_scanners};
pub use server::{Handle, Server, COMMANDS};

/// What can stop the daemon from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("loading models, rules or lists: {0}")]
    Setup(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}
