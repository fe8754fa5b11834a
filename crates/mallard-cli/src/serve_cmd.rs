//! `mallard serve`: the clamd-protocol daemon of `mallard_serve`, in the foreground.

use anyhow::{Context, Result};
use clap::Args;
use mallard_serve::{parse_tcp, Config, Server};
use std::path::PathBuf;

#[derive(Args)]
#[command(after_long_help = mallard_serve::CONFIG_HELP)]
pub struct ServeArgs {
    /// Unix socket to listen on (clamd's LocalSocket); FILDES works only here.
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// TCP address to listen on: HOST:PORT, or PORT for 127.0.0.1. Any other host (0.0.0.0)
    /// only when written out: clamd's protocol has no authentication.
    #[arg(long, value_name = "HOST:PORT")]
    pub tcp: Option<String>,
    /// Configuration file in clamd.conf's style (keys below, with --help); flags win
    /// (--threads over MaxThreads too).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `threads`: --threads when given (else MaxThreads, else all cores).
pub fn run(a: ServeArgs, threads: Option<usize>) -> Result<()> {
    let mut c = match &a.config {
        Some(p) => Config::from_file(p)?,
        None => Config::default(),
    };
    if let Some(p) = a.socket {
        c.unix_socket = Some(p);
    }
    if let Some(t) = &a.tcp {
        c.tcp = Some(parse_tcp(t)?);
    }
    // --threads wins over MaxThreads, as every flag wins over the file.
    if let Some(t) = threads {
        c.workers = t;
    }
    crate::no_huge_pages();
    let server = Server::bind(c).context("mallard serve")?;
    server.stop_on_signals()?;
    eprintln!("mallard serve: ready ({})", server.listening());
    server.run()?;
    eprintln!("mallard serve: stopped");
    Ok(())
}
