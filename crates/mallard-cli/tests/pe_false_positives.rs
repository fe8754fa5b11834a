//! Known false-positive sources for static models, scanned with the built-in PE model:
//! programs built here and now with the toolchains whose output models most often mistake
//! for malware (Go, MinGW-w64, Rust, Mono's C# compiler), and the script launchers of
//! `../shared/data/pe-benign` (other versions of them are in the training corpus, these files
//! are not). None may be flagged.
//!
//! Self-extracting archives (a MinGW program with a compressed payload appended) and
//! UPX-packed programs are made here too.
//!
//! The compilers come from Debian (`golang-go`, `gcc-mingw-w64`, `mono-mcs`, `rustc` with
//! `libstd-rust-dev-windows`, and `upx-ucl`
//! from bookworm-backports; `.ci/run` installs them). Without one, its test says "skipped" and passes, except under CI=true,
//! where a missing compiler fails the test.

mod common;
use common::{mallard, shared};

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn tmp(name: &str) -> PathBuf {
    common::tmp_in("mallard-fp", name)
}

/// Whether `tool` runs. These tests are `#[ignore]`d by default (they need compilers a
/// developer machine may lack) and run where the tools are (`.ci/run` installs them), so a
/// missing tool is a failure, never a silent pass.
fn have(tool: &str) -> bool {
    let runs = |arg: &str| {
        Command::new(tool).arg(arg).output().map(|o| o.status.success()).unwrap_or(false)
    };
    assert!(
        runs("--version") || runs("version"),
        "{tool} is not installed: .ci/run installs it (this test runs with --ignored)"
    );
    true
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run compiler");
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Scans `files` with the built-in PE model; every verdict must be benign.
fn assert_benign(files: &[PathBuf]) {
    assert!(!files.is_empty());
    let mut args = vec!["scan", "--json", "--no-builtin-rules"];
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    let out = mallard(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), files.len(), "{stdout}");
    let flagged: Vec<String> = rows
        .iter()
        .filter(|r| r["verdict"] != "benign")
        .map(|r| format!("{} {} {}: {}", r["path"], r["verdict"], r["score"], r["reasons"]))
        .collect();
    assert!(flagged.is_empty(), "flagged:\n{}", flagged.join("\n"));
}

const GO_PROGRAM: &str = r#"package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
)

func main() {
	url := flag.String("url", "", "fetch this URL and print its sha256")
	flag.Parse()
	var r io.Reader = os.Stdin
	if *url != "" {
		resp, err := http.Get(*url)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer resp.Body.Close()
		r = resp.Body
	}
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(hex.EncodeToString(h.Sum(nil)))
}
"#;

#[test]
#[ignore = "tools: needs Go, MinGW-w64, mcs, rustc with the Windows std, upx-ucl (.ci/run installs them)"]
fn go_programs_are_not_flagged() {
    if !have("go") {
        return;
    }
    let d = tmp("go");
    std::fs::write(d.join("main.go"), GO_PROGRAM).unwrap();
    std::fs::write(d.join("go.mod"), "module example.com/sum\n\ngo 1.19\n").unwrap();
    let mut files = Vec::new();
    for (arch, flags) in [("amd64", ""), ("386", ""), ("amd64", "-s -w")] {
        let out =
            d.join(format!("sum-{arch}{}.exe", if flags.is_empty() { "" } else { "-stripped" }));
        run(Command::new("go")
            .current_dir(&d)
            .env("GOOS", "windows")
            .env("GOARCH", arch)
            .env("CGO_ENABLED", "0")
            .env("GOCACHE", d.join("cache"))
            .env("GOPATH", d.join("gopath"))
            .env("GOFLAGS", "-mod=mod")
            .args(["build", "-trimpath", "-ldflags", flags, "-o"])
            .arg(&out)
            .arg("."));
        files.push(out);
    }
    assert_benign(&files);
}

const C_PROGRAM: &str = r#"#include <windows.h>
#include <stdio.h>

/* Counts the lines of the files named on the command line and remembers the last
   count in the registry, as small utilities do. */
int main(int argc, char **argv) {
    long total = 0;
    for (int i = 1; i < argc; i++) {
        HANDLE f = CreateFileA(argv[i], GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
        if (f == INVALID_HANDLE_VALUE) { fprintf(stderr, "%s: error %lu\n", argv[i], GetLastError()); continue; }
        char buf[4096]; DWORD n;
        while (ReadFile(f, buf, sizeof buf, &n, NULL) && n > 0)
            for (DWORD k = 0; k < n; k++) total += buf[k] == '\n';
        CloseHandle(f);
    }
    HKEY key;
    if (RegCreateKeyExA(HKEY_CURRENT_USER, "Software\\LineCount", 0, NULL, 0, KEY_WRITE, NULL, &key, NULL) == ERROR_SUCCESS) {
        RegSetValueExA(key, "Last", 0, REG_DWORD, (const BYTE *)&total, sizeof(DWORD));
        RegCloseKey(key);
    }
    printf("%ld\n", total);
    return 0;
}
"#;

const C_LIBRARY: &str = r#"#include <windows.h>
__declspec(dllexport) int checksum(const unsigned char *p, int n) {
    unsigned s = 0;
    for (int i = 0; i < n; i++) s = s * 31 + p[i];
    return (int)s;
}
__declspec(dllexport) int tick(void) { return (int)GetTickCount(); }
BOOL WINAPI DllMain(HINSTANCE h, DWORD reason, LPVOID r) { (void)h; (void)reason; (void)r; return TRUE; }
"#;

#[test]
#[ignore = "tools: needs Go, MinGW-w64, mcs, rustc with the Windows std, upx-ucl (.ci/run installs them)"]
fn mingw_programs_and_libraries_are_not_flagged() {
    let mut files = Vec::new();
    let d = tmp("mingw");
    std::fs::write(d.join("lines.c"), C_PROGRAM).unwrap();
    std::fs::write(d.join("sum.c"), C_LIBRARY).unwrap();
    for cc in ["x86_64-w64-mingw32-gcc", "i686-w64-mingw32-gcc"] {
        if !have(cc) {
            return;
        }
        let exe = d.join(format!("lines-{cc}.exe"));
        run(Command::new(cc)
            .current_dir(&d)
            .args(["-O2", "-o"])
            .arg(&exe)
            .arg("lines.c")
            .arg("-ladvapi32"));
        let dll = d.join(format!("sum-{cc}.dll"));
        run(Command::new(cc).current_dir(&d).args(["-O2", "-shared", "-o"]).arg(&dll).arg("sum.c"));
        files.extend([exe, dll]);
    }
    assert_benign(&files);
}

const RUST_PROGRAM: &str = r#"use std::collections::HashMap;
use std::io::Read;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for a in &args[1..] {
        if let Ok(mut f) = std::fs::File::open(a) {
            let mut s = String::new();
            let _ = f.read_to_string(&mut s);
            for w in s.split_whitespace() {
                *counts.entry(w.to_lowercase()).or_default() += 1;
            }
        }
    }
    let h = std::thread::spawn(move || counts.len());
    println!("{} distinct words", h.join().unwrap_or(0));
}
"#;

const RUST_LIBRARY: &str = r#"#[no_mangle]
pub extern "C" fn add(a: i32, b: i32) -> i32 { a.wrapping_add(b) }
#[no_mangle]
pub extern "C" fn greet(n: usize) -> usize { format!("hello {n}").len() }
"#;

/// Rust's Windows standard library for the GNU target comes from Debian
/// (`libstd-rust-dev-windows`, for Debian's `rustc` in /usr/bin), linked by MinGW-w64.
#[test]
#[ignore = "tools: needs Go, MinGW-w64, mcs, rustc with the Windows std, upx-ucl (.ci/run installs them)"]
fn rust_programs_and_libraries_are_not_flagged() {
    let rustc = "/usr/bin/rustc";
    if !have(rustc) || !have("x86_64-w64-mingw32-gcc") {
        return;
    }
    let d = tmp("rust");
    std::fs::write(d.join("words.rs"), RUST_PROGRAM).unwrap();
    std::fs::write(d.join("sum.rs"), RUST_LIBRARY).unwrap();
    let target = ["--target", "x86_64-pc-windows-gnu", "-C", "linker=x86_64-w64-mingw32-gcc"];
    let mut files = Vec::new();
    for (name, extra) in [
        ("words-debug.exe", vec!["-C", "opt-level=0"]),
        ("words-release.exe", vec!["-C", "opt-level=3", "-C", "strip=symbols"]),
        ("sum.dll", vec!["--crate-type", "cdylib", "-C", "opt-level=3"]),
    ] {
        let out = d.join(name);
        let src = if name.ends_with(".dll") { "sum.rs" } else { "words.rs" };
        run(Command::new(rustc)
            .current_dir(&d)
            .args(["--edition", "2021"])
            .args(target)
            .args(&extra)
            .arg("-o")
            .arg(&out)
            .arg(src));
        files.push(out);
    }
    // The same files with a 2018 link timestamp: a fresh date must not be what saves them.
    for f in files.clone() {
        let mut b = std::fs::read(&f).unwrap();
        let pe = u32::from_le_bytes(b[0x3c..0x40].try_into().unwrap()) as usize;
        b[pe + 8..pe + 12].copy_from_slice(&1_514_764_800u32.to_le_bytes());
        let old = d.join(format!("2018-{}", f.file_name().unwrap().to_str().unwrap()));
        std::fs::write(&old, b).unwrap();
        files.push(old);
    }
    assert_benign(&files);
}

const CS_PROGRAM: &str = r#"using System;
using System.IO;
using System.Linq;
using System.Security.Cryptography;

public static class Inventory {
    public static int Main(string[] args) {
        var dir = args.Length > 0 ? args[0] : ".";
        using (var sha = SHA256.Create()) {
            foreach (var f in Directory.EnumerateFiles(dir).OrderBy(x => x)) {
                var h = sha.ComputeHash(File.ReadAllBytes(f));
                Console.WriteLine("{0}  {1}", BitConverter.ToString(h).Replace("-", "").ToLowerInvariant(), Path.GetFileName(f));
            }
        }
        return 0;
    }
}
"#;

#[test]
#[ignore = "tools: needs Go, MinGW-w64, mcs, rustc with the Windows std, upx-ucl (.ci/run installs them)"]
fn dotnet_assemblies_are_not_flagged() {
    if !have("mcs") {
        return;
    }
    let d = tmp("dotnet");
    std::fs::write(d.join("inventory.cs"), CS_PROGRAM).unwrap();
    let exe = d.join("inventory.exe");
    run(Command::new("mcs")
        .current_dir(&d)
        .arg(format!("-out:{}", exe.display()))
        .arg("inventory.cs"));
    let dll = d.join("inventory.dll");
    run(Command::new("mcs")
        .current_dir(&d)
        .args(["-target:library"])
        .arg(format!("-out:{}", dll.display()))
        .arg("inventory.cs"));
    assert_benign(&[exe, dll]);
}

/// Builds the MinGW line counter for both machines into `d`; None when MinGW is missing.
fn mingw_programs(d: &std::path::Path) -> Option<Vec<PathBuf>> {
    std::fs::write(d.join("lines.c"), C_PROGRAM).unwrap();
    let mut out = Vec::new();
    for cc in ["x86_64-w64-mingw32-gcc", "i686-w64-mingw32-gcc"] {
        if !have(cc) {
            return None;
        }
        let exe = d.join(format!("lines-{cc}.exe"));
        run(Command::new(cc)
            .current_dir(d)
            .args(["-O2", "-s", "-o"])
            .arg(&exe)
            .arg("lines.c")
            .arg("-ladvapi32"));
        out.push(exe);
    }
    Some(out)
}

/// Real data to pack: the licence texts and manuals every Debian system carries.
fn payload_source(limit: usize) -> Vec<u8> {
    let mut raw = Vec::new();
    for dir in ["/usr/share/common-licenses", "/usr/share/doc/bash", "/usr/share/doc/coreutils"] {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files {
            if let Ok(b) = std::fs::read(&f) {
                raw.extend(b);
            }
            if raw.len() >= limit {
                return raw;
            }
        }
    }
    assert!(raw.len() > 100_000, "too little data to build a payload");
    raw
}

#[test]
#[ignore = "tools: needs Go, MinGW-w64, mcs, rustc with the Windows std, upx-ucl (.ci/run installs them)"]
fn self_extracting_archives_are_not_flagged() {
    // An installer or self-extracting archive is a small program with a compressed payload
    // appended (the overlay). Models that never saw one flag them for their entropy alone.
    use flate2::write::{DeflateEncoder, GzEncoder};
    use std::io::Write;
    let d = tmp("sfx");
    let Some(stubs) = mingw_programs(&d) else {
        return;
    };
    let raw = payload_source(3 << 20);
    let mut deflated = DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    deflated.write_all(&raw).unwrap();
    let deflated = deflated.finish().unwrap();
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw[..raw.len() / 3]).unwrap();
    let gz = gz.finish().unwrap();
    let mut files = Vec::new();
    for (i, stub) in stubs.iter().enumerate() {
        let body = std::fs::read(stub).unwrap();
        for (name, data) in [("deflate", &deflated), ("gzip", &gz)] {
            let f = d.join(format!("setup-{i}-{name}.exe"));
            std::fs::write(&f, [body.as_slice(), data.as_slice()].concat()).unwrap();
            files.push(f);
        }
    }
    assert_benign(&files);
}

#[test]
#[ignore = "tools: needs Go, MinGW-w64, mcs, rustc with the Windows std, upx-ucl (.ci/run installs them)"]
fn upx_packed_programs_are_not_flagged() {
    // Benign tools are shipped UPX-packed too; packing alone must not decide.
    let d = tmp("upx");
    let upx = if have("upx-ucl") { "upx-ucl" } else { return };
    let Some(programs) = mingw_programs(&d) else {
        return;
    };
    let mut files = Vec::new();
    for p in &programs {
        let packed = p.with_extension("upx.exe");
        run(Command::new(upx).args(["-9", "-q", "-o"]).arg(&packed).arg(p));
        files.push(packed);
    }
    assert_benign(&files);
}

#[test]
#[ignore = "data: reads ../shared/data"]
fn launchers_and_self_extracting_stubs_are_not_flagged() {
    // distlib's and setuptools' launchers: stubs that run the script or zip appended to them.
    // Every model trained without their family flagged them all.
    let dir = shared().join("data/pe-benign");
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("distlib__") || n.starts_with("setuptools__")
        })
        .collect();
    assert_eq!(files.len(), 12, "{files:?}");
    assert_benign(&files);
}
