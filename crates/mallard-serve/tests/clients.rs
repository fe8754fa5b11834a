//! Clients nobody here wrote, against `mallard serve`: the PyPI `clamd` package and Debian's
//! `clamdscan`, both installed by clients/install.sh (which .ci/run calls; it prints
//! `skipped: ...` for a client it cannot install, and these tests then are not run). A
//! client missing when a test runs fails it: never a silent pass.

mod common;
use common::*;
use std::path::PathBuf;
use std::process::Command;

fn venv_python() -> PathBuf {
    let venv = std::env::var_os("MALLARD_SERVE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap())
                .join(".cache/mallard/serve-clients-venv")
        });
    venv.join("bin/python")
}

#[test]
#[ignore = "clients: needs crates/mallard-serve/clients/install.sh and ../shared/data"]
fn pypi_clamd_client_ping_instream_scan_multiscan() {
    let py = venv_python();
    assert!(
        py.exists(),
        "{} missing: run crates/mallard-serve/clients/install.sh",
        py.display()
    );
    let d = start(|_, _| {});
    let pes = benign_pes(5);
    for p in &pes {
        std::fs::copy(p, d.root.join(p.file_name().unwrap())).unwrap();
    }
    let mut marked = b"x".to_vec();
    marked.extend_from_slice(MARKER);
    std::fs::write(d.root.join("marked.json"), &marked).unwrap();
    let script = r#"
import clamd, io, json, os, sys
sock, tcp_port, root, pe = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
out = {}
for name, c in [("unix", clamd.ClamdUnixSocket(path=sock)), ("tcp", clamd.ClamdNetworkSocket(host="127.0.0.1", port=tcp_port))]:
    out[name + "_ping"] = c.ping()
    out[name + "_version"] = c.version()
    out[name + "_instream_pe"] = c.instream(open(pe, "rb"))
    out[name + "_instream_marked"] = c.instream(io.BytesIO(b"x" + b"MALLARD-SERVE-TEST-MARKER-7f3a"))
    out[name + "_scan_pe"] = c.scan(os.path.join(root, os.path.basename(pe)))
    out[name + "_scan_marked"] = c.scan(os.path.join(root, "marked.json"))
    out[name + "_multiscan"] = c.multiscan(root)
    try:
        c.instream(io.BytesIO(b"a" * (2 << 20)))
        out[name + "_too_big"] = "accepted"
    except clamd.BufferTooLongError as e:
        out[name + "_too_big"] = str(e)
print(json.dumps(out))
"#;
    let o = Command::new(&py)
        .arg("-c")
        .arg(script)
        .arg(&d.sock)
        .arg(d.tcp.port().to_string())
        .arg(&d.root)
        .arg(&pes[0])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    println!("{v:#}");
    let root = d.root.display().to_string();
    let pe_in_root = format!("{root}/{}", pes[0].file_name().unwrap().to_string_lossy());
    let marked_path = format!("{root}/marked.json");
    for s in ["unix", "tcp"] {
        assert_eq!(v[format!("{s}_ping")], "PONG");
        assert!(v[format!("{s}_version")]
            .as_str()
            .unwrap()
            .starts_with("mallard "));
        assert_eq!(
            v[format!("{s}_instream_pe")]["stream"],
            serde_json::json!(["OK", null])
        );
        assert_eq!(
            v[format!("{s}_instream_marked")]["stream"],
            serde_json::json!(["FOUND", "Mallard.Rule.Serve_Test_Marker"])
        );
        assert_eq!(
            v[format!("{s}_scan_pe")][&pe_in_root],
            serde_json::json!(["OK", null])
        );
        assert_eq!(
            v[format!("{s}_scan_marked")][&marked_path],
            serde_json::json!(["FOUND", "Mallard.Rule.Serve_Test_Marker"])
        );
        // MULTISCAN lists detections only, then nothing for clean files.
        assert_eq!(
            v[format!("{s}_multiscan")],
            serde_json::json!({ &marked_path: ["FOUND", "Mallard.Rule.Serve_Test_Marker"] })
        );
        assert_eq!(
            v[format!("{s}_too_big")],
            "INSTREAM size limit exceeded. ERROR"
        );
    }
}

#[test]
#[ignore = "clients: needs crates/mallard-serve/clients/install.sh and ../shared/data"]
fn debian_clamdscan_stream_and_path_modes() {
    let Ok(which) = Command::new("sh")
        .args(["-c", "command -v clamdscan"])
        .output()
    else {
        panic!("no sh");
    };
    assert!(
        which.status.success(),
        "clamdscan missing: run crates/mallard-serve/clients/install.sh"
    );
    let d = start(|_, _| {});
    let pes = benign_pes(5);
    for p in &pes {
        std::fs::copy(p, d.root.join(p.file_name().unwrap())).unwrap();
    }
    let conf = d.dir.path().join("clamd.conf");
    std::fs::write(&conf, format!("LocalSocket {}\n", d.sock.display())).unwrap();
    let mut marked = b"x".to_vec();
    marked.extend_from_slice(MARKER);
    let marked_path = d.root.join("marked.json");
    std::fs::write(&marked_path, &marked).unwrap();
    let run = |args: &[&str]| {
        let o = Command::new("clamdscan")
            .arg(format!("--config-file={}", conf.display()))
            .args(["--no-summary"])
            .args(args)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let clean: Vec<String> = pes
        .iter()
        .map(|p| d.root.join(p.file_name().unwrap()).display().to_string())
        .collect();
    let clean_refs: Vec<&str> = clean.iter().map(String::as_str).collect();
    for mode in [
        &["--stream"][..],
        &[][..],
        &["--fdpass"][..],
        &["--multiscan"][..],
    ] {
        // Clean PE files: each OK, exit 0.
        let mut args = mode.to_vec();
        args.extend(&clean_refs);
        let (code, out, err) = run(&args);
        assert_eq!(code, Some(0), "{mode:?}: {out}{err}");
        for c in &clean {
            assert!(out.contains(&format!("{c}: OK")), "{mode:?}: {out}{err}");
        }
        // The marked file: found, named by the rule, exit 1 (clamdscan's "virus found").
        let mut args = mode.to_vec();
        let m = marked_path.display().to_string();
        args.push(&m);
        let (code, out, err) = run(&args);
        assert_eq!(code, Some(1), "{mode:?}: {out}{err}");
        assert!(
            out.contains(&format!("{m}: Mallard.Rule.Serve_Test_Marker FOUND")),
            "{mode:?}: {out}{err}"
        );
    }
    // A folder in path mode: the detection listed.
    let (code, out, err) = run(&[&d.root.display().to_string()]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains("marked.json: Mallard.Rule.Serve_Test_Marker FOUND"),
        "{out}{err}"
    );
}
