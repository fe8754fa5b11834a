//! What a person sees on stderr: progress bars on a terminal, one line per step otherwise.

use indicatif::{ProgressBar, ProgressStyle};
use mallard_experiment::Observer;
use mallard_model::fit::FoldDone;
use mallard_model::train::EpochReport;
use std::io::IsTerminal;

/// A bar of `len` steps when stderr is a terminal and there is more than one step.
pub fn bar(quiet: bool, len: usize, template: &str) -> Option<ProgressBar> {
    if quiet || len < 2 || !std::io::stderr().is_terminal() {
        return None;
    }
    let b = ProgressBar::new(len as u64);
    b.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    Some(b)
}

/// A line on stderr above the bar, if there is one.
pub fn line(bar: Option<&ProgressBar>, line: &str) {
    match bar {
        Some(b) => b.println(line),
        None => eprintln!("{line}"),
    }
}

/// Training and evaluation progress: a bar per epoch (one tick per minibatch) on a
/// terminal, one line per epoch otherwise; warnings always, the rest unless `--quiet`.
pub struct Progress {
    quiet: bool,
    bar: Option<ProgressBar>,
    epochs: usize,
    batches: usize,
    done_epochs: usize,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        Progress { quiet, bar: None, epochs: 0, batches: 0, done_epochs: 0 }
    }

    fn line(&self, text: &str) {
        line(self.bar.as_ref().filter(|b| !b.is_hidden() && !b.is_finished()), text)
    }
}

impl Observer for Progress {
    fn stage(&mut self, what: &str) {
        if !self.quiet {
            self.line(&format!("{what}..."));
        }
    }
    fn epoch_start(&mut self, _epoch: usize, epochs: usize, batches: usize) {
        self.epochs = epochs;
        self.batches = batches.max(1);
        let len = (epochs * self.batches) as u64;
        // One bar for all epochs of a fit; a new fit (a cv fold) starts a new one.
        if self.bar.as_ref().is_some_and(|b| b.length() == Some(len) && b.position() < len) {
            return;
        }
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        let template = "training {bar:30} {msg} [{elapsed}<{eta}]";
        self.bar = bar(self.quiet, epochs * self.batches, template);
    }
    fn batch(&mut self, done: usize, total: usize, loss: f32) {
        if let Some(b) = &self.bar {
            b.set_position((self.done_epochs * self.batches + done) as u64);
            let (e, of) = (self.done_epochs + 1, self.epochs);
            b.set_message(format!("epoch {e}/{of} batch {done}/{total} loss {loss:.4}"));
        }
    }
    fn epoch_end(&mut self, r: &EpochReport) {
        self.done_epochs = r.epoch;
        if let Some(b) = &self.bar {
            b.set_position((r.epoch * self.batches) as u64);
        }
        if !self.quiet {
            let val = match (r.val_loss, r.val_accuracy) {
                (Some(l), Some(a)) => format!(" val_loss {l:.4} val_acc {a:.4}"),
                _ => String::new(),
            };
            let (e, of, loss, s) = (r.epoch, self.epochs, r.loss, r.seconds);
            self.line(&format!("epoch {e}/{of}: loss {loss:.4}{val} ({s:.2} s)"));
        }
    }
    fn fold_done(&mut self, f: &FoldDone) {
        self.done_epochs = 0;
        if !self.quiet {
            let (n, of, tr, te) = (f.fold, f.of, f.train_rows, f.test_rows);
            self.line(&format!("fold {n}/{of}: {tr} train, {te} test"));
        }
    }
    fn info(&mut self, line: &str) {
        if !self.quiet {
            self.line(line);
        }
    }
    fn warning(&mut self, message: &str) {
        self.line(&format!("warning: {message}"));
    }
    fn note(&mut self, message: &str) {
        if !self.quiet {
            self.line(&format!("warning: {message}"));
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
