//! The `mallard` command line.

mod attack_cmd;
mod eval_cmd;
mod features_cmd;
mod image_cmd;
mod inspect_cmd;
mod mutate_cmd;
mod scan_cmd;
mod serve_cmd;
mod stack_cmd;
mod train_cmd;
mod ui;

use clap::{Parser, Subcommand};

// Parsing a report or loading a model makes many small allocations; glibc's malloc and free
// were a fifth of a one-report scan (docs/decisions.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::process::ExitCode;

/// Machine-learning detection of Windows malware from sandbox reports and API-call datasets.
#[derive(Parser)]
#[command(name = "mallard", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// No progress bars or per-epoch lines on stderr.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Worker threads (default: all cores; at most 4 per core, or 16 on small machines).
    #[arg(long, global = true)]
    threads: Option<usize>,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model on a labelled dataset and write it to a file.
    Train(train_cmd::TrainArgs),
    /// Score a labelled dataset with a model (default: the built-in one) and report metrics.
    Eval(eval_cmd::EvalArgs),
    /// Estimate a model kind's quality by de-duplicated, stratified k-fold cross-validation.
    Cv(eval_cmd::CvArgs),
    /// Give a verdict, a score and reasons for PE files and sandbox reports (files or folders).
    Scan(scan_cmd::ScanArgs),
    /// Serve verdicts over clamd's socket protocol (Unix and/or TCP) to clamdscan and
    /// other clamd clients, with models and rules loaded once.
    Serve(serve_cmd::ServeArgs),
    /// Extract static features (EMBER v2 and v3, ClaMP PE header, Saxe-Berlin, opcodes, image, .NET metadata) from PE files.
    Features(features_cmd::FeaturesArgs),
    /// Draw a file as a grayscale byte plot (Nataraj et al.), PE sections marked, to a PNG.
    Image(image_cmd::ImageArgs),
    /// Attack PE files with functionality-preserving edits (overlay, sections, headers,
    /// slack, certificate) against a PE model and report how many evade it.
    Attack(attack_cmd::AttackArgs),
    /// Write random functionality-preserving mutants of PE files (the edits of `attack`),
    /// to train a model on them.
    Mutate(mutate_cmd::MutateArgs),
    /// Combine trained PE models (trees, MalConv, opcode models) into one, weighted by a
    /// logistic regression fitted on their out-of-fold predictions.
    Stack(stack_cmd::StackArgs),
    /// Show what a model file holds: kind, labels, threshold, training summary, feature importance.
    Inspect(inspect_cmd::InspectArgs),
}

/// mimalloc asks for transparent huge pages on its arena. Zeroing 2 MiB pages costs a
/// one-file PE scan about 0.7 ms, a seventh of it, while parsing a large report gains from
/// them; `scan` calls this when every input is a PE file.
pub fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and changes nothing but the
    // page-size policy of this process; its result is irrelevant.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// Training frees big buffers (a table's values once binned) and then allocates others;
/// mimalloc returns freed memory to the system only after a 10 ms delay, long enough for the
/// next buffers to come from fresh pages, so peak memory counted both. Purging at once took
/// a 100 MB CSV's training from 362 to 274 MB (docs/limits.md). Scans keep the default, and
/// so does training on sequences: their per-batch buffers came back as fresh pages every
/// step, and an LSTM epoch took 1.6x the time (see `tables_among`).
/// Whether any dataset is read as a table (features), not as sequences (API calls, opcodes).
fn tables_among(datasets: &[mallard_datasets::DatasetSpec]) -> bool {
    use mallard_datasets::DataFormat;
    datasets.iter().any(|d| !matches!(d.format, DataFormat::Seq(_) | DataFormat::Opcodes))
}

/// Sets mimalloc's purge delay (mi_option_purge_delay, 15 in its v2 and v3 option enums):
/// 0 returns freed memory at once (training on tables, above); -1 never, which `main` sets
/// as it returns, since the system takes the memory back at once while mimalloc's clean-up
/// at exit returned it region by region: ~70 `madvise` calls after a one-file scan, 0.1-0.2
/// ms of it (docs/decisions.md).
fn purge_delay(ms: std::ffi::c_long) {
    // SAFETY: setting an option takes plain integers and is thread-safe.
    unsafe { libmimalloc_sys::mi_option_set(15, ms) };
}

pub struct Global {
    pub quiet: bool,
    pub threads: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Thousands of threads only thrash (and 100,000 hung at start-up): refuse them plainly.
    let max_threads = cores.saturating_mul(4).max(16);
    if cli.threads.is_some_and(|t| t > max_threads) {
        eprintln!(
            "error: --threads {}: at most {max_threads} (4 per core, {cores} cores here)",
            cli.threads.unwrap_or(0)
        );
        return ExitCode::from(2);
    }
    let threads = cli.threads.unwrap_or(cores).max(1);
    // Only commands that use rayon size its pool: building it starts every worker at
    // once, which a one-file scan paid for without using (`scan` runs its own threads).
    // Ignore the error: a pool may exist already in tests that call main twice.
    if !matches!(
        cli.command,
        Command::Scan(_) | Command::Serve(_) | Command::Inspect(_) | Command::Image(_)
    ) {
        let _ = rayon::ThreadPoolBuilder::new().num_threads(threads).build_global();
    }
    let g = Global { quiet: cli.quiet, threads };
    // `serve` needs to know whether --threads was given, to let it win over MaxThreads.
    let flag_threads = cli.threads.map(|t| t.max(1));
    let result = match cli.command {
        Command::Train(a) => {
            if tables_among(&a.dataset) {
                purge_delay(0);
            }
            train_cmd::run(a, &g).map(|()| ExitCode::SUCCESS)
        }
        Command::Eval(a) => eval_cmd::run(a, &g).map(|()| ExitCode::SUCCESS),
        Command::Cv(a) => {
            if tables_among(&a.dataset) {
                purge_delay(0);
            }
            eval_cmd::run_cv(a, &g).map(|()| ExitCode::SUCCESS)
        }
        Command::Scan(a) => scan_cmd::run(a, &g),
        Command::Serve(a) => serve_cmd::run(a, flag_threads).map(|()| ExitCode::SUCCESS),
        Command::Features(a) => features_cmd::run(a, &g),
        Command::Inspect(a) => inspect_cmd::run(a).map(|()| ExitCode::SUCCESS),
        Command::Image(a) => image_cmd::run(a).map(|()| ExitCode::SUCCESS),
        Command::Stack(a) => stack_cmd::run(a, &g).map(|()| ExitCode::SUCCESS),
        Command::Attack(a) => attack_cmd::run(a, &g).map(|()| ExitCode::SUCCESS),
        Command::Mutate(a) => mutate_cmd::run(a, &g).map(|()| ExitCode::SUCCESS),
    };
    purge_delay(-1);
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
