//! Helpers shared by the CLI's integration tests.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs the mallard binary built for these tests.
pub fn mallard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mallard"))
        .args(args)
        .output()
        .expect("run mallard")
}

/// A fresh, empty temporary folder for one test (`prefix` names the test binary).
pub fn tmp_in(prefix: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("{prefix}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The team's read-only data: `$MALLARD_SHARED`, else `../shared` beside the checkout.
pub fn shared() -> PathBuf {
    std::env::var_os("MALLARD_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}
