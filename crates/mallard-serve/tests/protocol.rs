//! Each clamd command and each kind of bad input against a daemon on a temporary Unix socket
//! and loopback TCP port; the expected replies are clamd's documented (and observed, 1.4.6)
//! ones.

mod common;
use common::*;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::Duration;

#[test]
fn ping_version_and_prefixes_over_both_sockets() {
    let d = start(|_, _| {});
    for send in [
        &(|b: &[u8]| unix(&d.sock, b)) as &dyn Fn(&[u8]) -> Vec<u8>,
        &|b: &[u8]| tcp(d.tcp, b),
    ] {
        assert_eq!(text(send(b"nPING\n")), "PONG\n");
        assert_eq!(send(b"zPING\0"), b"PONG\0");
        assert_eq!(text(send(b"PING\n")), "PONG\n");
        // A legacy command is what one read brings, newline or not (clamd does the same).
        assert_eq!(text(send(b"PING")), "PONG\n");
        let v = text(send(b"nVERSION\n"));
        let fields: Vec<&str> = v.trim_end().split('/').collect();
        // clamd's shape: PROGRAM VERSION/DATABASE/DATE.
        assert_eq!(fields.len(), 3, "{v}");
        assert!(
            fields[0].starts_with("mallard ") && v.ends_with('\n'),
            "{v}"
        );
        assert!(
            fields[1].len() == 12 && fields[1].bytes().all(|b| b.is_ascii_hexdigit()),
            "{v}"
        );
        assert_eq!(fields[2].split_whitespace().count(), 5, "{v}");
        let vc = text(send(b"nVERSIONCOMMANDS\n"));
        let (_, cmds) = vc.trim_end().split_once("| COMMANDS: ").unwrap();
        for c in [
            "SCAN",
            "CONTSCAN",
            "MULTISCAN",
            "ALLMATCHSCAN",
            "INSTREAM",
            "FILDES",
            "IDSESSION",
            "END",
            "PING",
            "VERSION",
            "VERSIONCOMMANDS",
            "RELOAD",
            "SHUTDOWN",
        ] {
            assert!(cmds.split(' ').any(|x| x == c), "{c} missing from {vc}");
        }
    }
}

#[test]
fn unknown_commands_and_garbage_get_unknown_command() {
    let d = start(|_, _| {});
    assert_eq!(text(unix(&d.sock, b"nFOO\n")), "UNKNOWN COMMAND\n");
    assert_eq!(text(unix(&d.sock, b"FOO\n")), "UNKNOWN COMMAND\n");
    assert_eq!(unix(&d.sock, b"zFOO\0"), b"UNKNOWN COMMAND\0");
    assert_eq!(text(unix(&d.sock, b"nSCAN\n")), "UNKNOWN COMMAND\n");
    assert_eq!(text(unix(&d.sock, b"nPING extra\n")), "UNKNOWN COMMAND\n");
    // clamd refuses INSTREAM without the n/z prefix.
    assert_eq!(text(unix(&d.sock, b"INSTREAM\n")), "UNKNOWN COMMAND\n");
    // Binary garbage (a fixed pseudo-random stream, never starting with n or z).
    let mut x: u32 = 0x1234_5678;
    let garbage: Vec<u8> = (0..4000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect();
    let mut g = garbage.clone();
    g[0] = 0xff;
    assert_eq!(text(tcp(d.tcp, &g)), "UNKNOWN COMMAND\n");
    // A prefixed command longer than the limit, with no terminator in sight.
    let mut long = b"n".to_vec();
    long.extend(std::iter::repeat_n(b'A', 20_000));
    assert_eq!(text(tcp(d.tcp, &long)), "UNKNOWN COMMAND\n");
    // A command never finished: clamd's reply after CommandReadTimeout.
    assert_eq!(text(tcp(d.tcp, b"nPI")), "COMMAND READ TIMED OUT\n");
    assert_eq!(text(unix(&d.sock, b"nPING\n")), "PONG\n");
}

#[test]
fn instream_gives_the_verdict_and_what_decided() {
    let d = start(|_, _| {});
    let mut marked = b"plain bytes around ".to_vec();
    marked.extend_from_slice(MARKER);
    assert_eq!(
        text(unix(&d.sock, &instream("n", &marked))),
        "stream: Mallard.Rule.Serve_Test_Marker FOUND\n"
    );
    assert_eq!(
        unix(&d.sock, &instream("z", &marked)),
        b"stream: Mallard.Rule.Serve_Test_Marker FOUND\0"
    );
    // Neither a PE file nor a report: nothing for the models, OK as clamd says of a file
    // it finds nothing in.
    assert_eq!(
        text(tcp(d.tcp, &instream("n", b"hello world"))),
        "stream: OK\n"
    );
    // A PE file: the reply matches the library's own verdict on the same bytes.
    let pe = mallard_pe::synth::tiny_pe32();
    let f = d.dir.path().join("tiny.dll");
    std::fs::write(&f, &pe).unwrap();
    let scanner = mallard_serve::load_scanner(&test_config(d.dir.path())).unwrap();
    let r = scanner.scan_path(&f);
    let want = match r.verdict {
        mallard_scan::Verdict::Benign => "stream: OK\n".to_string(),
        mallard_scan::Verdict::Malicious => {
            assert_eq!(mallard_serve::detection_name(&r), "Mallard.PE.Static");
            format!("stream: {} FOUND\n", mallard_serve::detection_name(&r))
        }
        mallard_scan::Verdict::Error => panic!("the tiny PE does not scan: {:?}", r.error),
    };
    assert_eq!(text(tcp(d.tcp, &instream("n", &pe))), want);
    // The JSON answer: mallard's whole result, plus clamd's line.
    let j = text(unix(&d.sock, &{
        let mut b = b"nJSON INSTREAM\n".to_vec();
        b.extend(chunks(&pe, 100));
        b
    }));
    let v: serde_json::Value = serde_json::from_str(j.trim_end()).unwrap();
    assert_eq!(v["path"], "stream");
    assert_eq!(v["decided_by"], "static model");
    assert!(v["score"].is_number(), "{j}");
    assert!(v["reasons"].is_array(), "{j}");
    assert_eq!(format!("{}\n", v["clamd"].as_str().unwrap()), want);
    assert_eq!(entries(&d.streams), 0, "a stream file was left behind");
}

#[test]
fn a_stream_gets_the_same_reply_from_memory_as_from_a_file() {
    // Held in memory (the default), always written to a file (StreamMemory 0), and moved to
    // a file part-way, once it outgrows a small budget.
    let mut daemons = [
        start(|c, _| c.stream_max_length = 8 << 20),
        start(|c, _| {
            c.stream_max_length = 8 << 20;
            c.stream_memory = 0
        }),
        start(|c, _| {
            c.stream_max_length = 8 << 20;
            c.stream_memory = 4096
        }),
    ];
    let tiny = mallard_pe::synth::tiny_pe32();
    let mut big = tiny.clone();
    big.resize(50_000, 0);
    let mut marked = big.clone();
    marked.extend_from_slice(MARKER);
    // Past 1 MiB the in-memory buffer grows in one step to 8 MiB.
    let mut large = tiny.clone();
    large.resize(3 << 20, 7);
    let inputs: [(&str, &[u8]); 6] = [
        ("tiny PE", &tiny),
        ("PE with an overlay", &big),
        ("PE of 3 MiB", &large),
        ("PE with the marker", &marked),
        ("MZ and nothing after", b"MZ\x90\x00"),
        ("text", b"hello world"),
    ];
    for (what, bytes) in inputs {
        let replies: Vec<(String, String)> = daemons
            .iter()
            .map(|d| {
                let mut j = b"nJSON INSTREAM\n".to_vec();
                j.extend(chunks(bytes, 3000));
                (
                    text(unix(&d.sock, &instream("n", bytes))),
                    text(tcp(d.tcp, &j)),
                )
            })
            .collect();
        assert!(replies[0].0.starts_with("stream: "), "{what}: {replies:?}");
        for r in &replies[1..] {
            assert_eq!(r, &replies[0], "{what}");
        }
    }
    assert_eq!(
        text(unix(&daemons[0].sock, &instream("n", &marked))),
        "stream: Mallard.Rule.Serve_Test_Marker FOUND\n"
    );
    for d in &mut daemons {
        assert_eq!(entries(&d.streams), 0, "a stream file was left behind");
        d.stop();
    }
}

#[test]
fn instream_limits_and_broken_streams() {
    let d = start(|c, _| c.stream_max_length = 10_000);
    // A chunk length above the limit is refused before its bytes are read.
    let mut b = b"nINSTREAM\n".to_vec();
    b.extend_from_slice(&0x8000_0000u32.to_be_bytes());
    assert_eq!(
        text(tcp(d.tcp, &b)),
        "INSTREAM size limit exceeded. ERROR\n"
    );
    // Small chunks that add up past it.
    let big = vec![b'a'; 12_000];
    assert_eq!(
        text(unix(&d.sock, &instream("n", &big))),
        "INSTREAM size limit exceeded. ERROR\n"
    );
    assert_eq!(
        unix(&d.sock, &instream("z", &big)),
        b"INSTREAM size limit exceeded. ERROR\0"
    );
    // A client that stops half-way and hangs up.
    {
        let mut s = UnixStream::connect(&d.sock).unwrap();
        s.write_all(b"nINSTREAM\n").unwrap();
        s.write_all(&1000u32.to_be_bytes()).unwrap();
        s.write_all(&[7u8; 10]).unwrap();
    }
    // One that stops half-way and stays: the idle timeout ends it with a reply.
    let mut half = b"nINSTREAM\n".to_vec();
    half.extend_from_slice(&1000u32.to_be_bytes());
    half.extend_from_slice(&[7u8; 10]);
    assert_eq!(
        text(tcp(d.tcp, &half)),
        "stream: Stream read timed out. ERROR\n"
    );
    assert_eq!(text(unix(&d.sock, &instream("n", b"fine"))), "stream: OK\n");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(entries(&d.streams), 0, "a stream file was left behind");
}

#[test]
fn sessions_number_their_replies() {
    let d = start(|_, _| {});
    let mut b = b"nIDSESSION\nnPING\nnVERSION\n".to_vec();
    b.extend(instream("n", b"hello"));
    let mut marked = b"x".to_vec();
    marked.extend_from_slice(MARKER);
    b.extend(instream("n", &marked));
    b.extend_from_slice(b"nEND\n");
    let r = text(unix(&d.sock, &b));
    let lines: Vec<&str> = r.lines().collect();
    assert_eq!(lines.len(), 4, "{r}");
    assert_eq!(lines[0], "1: PONG");
    assert!(lines[1].starts_with("2: mallard "), "{r}");
    assert_eq!(lines[2], "3: stream: OK");
    assert_eq!(lines[3], "4: stream: Mallard.Rule.Serve_Test_Marker FOUND");
    // NUL-terminated sessions answer NUL-terminated.
    assert_eq!(unix(&d.sock, b"zIDSESSION\0zPING\0zEND\0"), b"1: PONG\0");
    // What clamd answers (1.4.6, observed) to a bad command inside a session.
    assert_eq!(
        text(tcp(d.tcp, b"nIDSESSION\nnPING\nnFOO\nnPING\n")),
        "1: PONG\n2: Command invalid inside IDSESSION. ERROR\n"
    );
    assert_eq!(
        text(tcp(d.tcp, b"nIDSESSION\nnIDSESSION\n")),
        "1: Command invalid inside IDSESSION. ERROR\n"
    );
    assert_eq!(text(tcp(d.tcp, b"nEND\n")), "UNKNOWN COMMAND\n");
    // An idle session is closed after IdleTimeout, without a reply.
    assert_eq!(text(tcp(d.tcp, b"nIDSESSION\nnPING\n")), "1: PONG\n");
}

#[test]
fn path_commands_stay_inside_the_scan_roots() {
    let d = start(|_, _| {});
    let root = &d.root;
    let mut marked = b"x".to_vec();
    marked.extend_from_slice(MARKER);
    std::fs::create_dir(root.join("sub")).unwrap();
    // Report-like names, so that the folder walk takes them.
    std::fs::write(root.join("sub/a.json"), &marked).unwrap();
    std::fs::write(root.join("sub/b.json"), &marked).unwrap();
    std::fs::write(root.join("clean.txt"), b"nothing here").unwrap();
    std::fs::create_dir(root.join("empty")).unwrap();
    let p = |x: &str| root.join(x).display().to_string();
    let found = "Mallard.Rule.Serve_Test_Marker FOUND";
    let ask = |cmd: &str| text(unix(&d.sock, format!("n{cmd}\n").as_bytes()));
    assert_eq!(
        ask(&format!("SCAN {}", p("clean.txt"))),
        format!("{}: OK\n", p("clean.txt"))
    );
    assert_eq!(
        ask(&format!("SCAN {}", p("sub/a.json"))),
        format!("{}: {found}\n", p("sub/a.json"))
    );
    // SCAN stops at the first detection in a folder; CONTSCAN and MULTISCAN go on.
    assert_eq!(
        ask(&format!("SCAN {}", p("sub"))),
        format!("{}: {found}\n", p("sub/a.json"))
    );
    let both = format!(
        "{}: {found}\n{}: {found}\n",
        p("sub/a.json"),
        p("sub/b.json")
    );
    assert_eq!(ask(&format!("CONTSCAN {}", p("sub"))), both);
    let mut multi: Vec<String> = ask(&format!("MULTISCAN {}", p("sub")))
        .lines()
        .map(String::from)
        .collect();
    multi.sort();
    assert_eq!(multi.join("\n") + "\n", both);
    assert_eq!(
        ask(&format!("ALLMATCHSCAN {}", p("sub/b.json"))),
        format!("{}: {found}\n", p("sub/b.json"))
    );
    assert_eq!(
        ask(&format!("CONTSCAN {}", p("empty"))),
        format!("{}: OK\n", p("empty"))
    );
    // Outside the roots, by name, by .., or through a link: refused, existence untold.
    assert_eq!(
        ask("SCAN /etc/passwd"),
        "/etc/passwd: Access denied. ERROR\n"
    );
    assert_eq!(
        ask("SCAN /etc/nonexistent-x"),
        "/etc/nonexistent-x: Access denied. ERROR\n"
    );
    let dotdot = format!("{}/../rules.yar", root.display());
    assert_eq!(
        ask(&format!("SCAN {dotdot}")),
        format!("{dotdot}: Access denied. ERROR\n")
    );
    std::os::unix::fs::symlink("/etc/passwd", root.join("link")).unwrap();
    assert_eq!(
        ask(&format!("SCAN {}", p("link"))),
        format!("{}: Access denied. ERROR\n", p("link"))
    );
    assert_eq!(
        ask(&format!("SCAN {}", p("missing"))),
        format!(
            "{}: File path check failure: No such file or directory. ERROR\n",
            p("missing")
        )
    );
    assert_eq!(
        ask("SCAN relative/path"),
        "relative/path: File path check failure: not an absolute path. ERROR\n"
    );
    // JSON: one object per file.
    let j = ask(&format!("JSON CONTSCAN {}", p("sub")));
    assert_eq!(j.lines().count(), 2, "{j}");
    for l in j.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["decided_by"], "rules");
    }
    assert_eq!(text(unix(&d.sock, b"nPING\n")), "PONG\n");
}

#[test]
fn path_commands_refused_without_scan_roots() {
    let d = start(|c, _| c.scan_roots.clear());
    let f = d.root.join("x.txt");
    std::fs::write(&f, b"x").unwrap();
    assert_eq!(
        text(unix(&d.sock, format!("nSCAN {}\n", f.display()).as_bytes())),
        format!("{}: Access denied. ERROR\n", f.display())
    );
}

#[test]
fn fildes_scans_a_passed_descriptor_on_the_unix_socket_only() {
    let d = start(|_, _| {});
    let mut marked = b"x".to_vec();
    marked.extend_from_slice(MARKER);
    let f = d.dir.path().join("passed.bin");
    std::fs::write(&f, &marked).unwrap();
    let file = std::fs::File::open(&f).unwrap();
    let s = UnixStream::connect(&d.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    (&s).write_all(b"nFILDES\n").unwrap();
    {
        use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
        use std::os::fd::AsFd;
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut anc = SendAncillaryBuffer::new(&mut space);
        let fds = [file.as_fd()];
        assert!(anc.push(SendAncillaryMessage::ScmRights(&fds)));
        rustix::net::sendmsg(
            &s,
            &[std::io::IoSlice::new(b"\0")],
            &mut anc,
            SendFlags::empty(),
        )
        .unwrap();
    }
    let mut r = String::new();
    std::io::Read::read_to_string(&mut &s, &mut r).unwrap();
    let (label, rest) = r.split_once(": ").unwrap();
    assert!(label.starts_with("fd[") && label.ends_with(']'), "{r}");
    assert_eq!(rest, "Mallard.Rule.Serve_Test_Marker FOUND\n");
    assert_eq!(
        text(tcp(d.tcp, b"nFILDES\n")),
        "FILDES only works on a Unix socket. ERROR\n"
    );
    // The command without a descriptor: clamd's reply, once the read time is up.
    assert_eq!(
        text(unix(&d.sock, b"nFILDES\nx")),
        "No file descriptor received. ERROR\n"
    );
}

#[test]
fn reload_swaps_the_whole_set_or_keeps_the_old_one() {
    let d = start(|_, _| {});
    let rules = d.dir.path().join("rules.yar");
    let mut marked = b"x".to_vec();
    marked.extend_from_slice(MARKER);
    let found = "stream: Mallard.Rule.Serve_Test_Marker FOUND\n";
    // VERSION's database part: the digest of what is loaded.
    let database = || {
        let v = text(unix(&d.sock, b"nVERSION\n"));
        v.split('/').nth(1).unwrap_or_default().to_string()
    };
    let first = database();
    assert_eq!(text(unix(&d.sock, b"nRELOAD\n")), "RELOADING\n");
    assert_eq!(database(), first, "the same files, the same digest");
    assert_eq!(text(unix(&d.sock, &instream("n", &marked))), found);
    std::fs::write(&rules, "rule broken : malicious { condition: }").unwrap();
    let r = text(unix(&d.sock, b"nRELOAD\n"));
    assert!(
        r.starts_with("RELOAD failed") && r.ends_with(" ERROR\n"),
        "{r}"
    );
    assert_eq!(
        text(unix(&d.sock, &instream("n", &marked))),
        found,
        "the old rules must stay"
    );
    assert_eq!(database(), first, "the old set is still the one in use");
    std::fs::write(&rules, RULE.replace("Serve_Test_Marker", "Renamed_Marker")).unwrap();
    assert_eq!(text(unix(&d.sock, b"nRELOAD\n")), "RELOADING\n");
    assert_eq!(
        text(unix(&d.sock, &instream("n", &marked))),
        "stream: Mallard.Rule.Renamed_Marker FOUND\n"
    );
    assert_ne!(database(), first, "an edited rule file is another database");
}

#[test]
fn shutdown_stops_cleanly_and_leaves_no_file() {
    let mut d = start(|_, _| {});
    assert_eq!(text(unix(&d.sock, &instream("n", b"a"))), "stream: OK\n");
    // A stream under way when the daemon stops is refused with a reply.
    let mut s = UnixStream::connect(&d.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"nINSTREAM\n").unwrap();
    s.write_all(&100u32.to_be_bytes()).unwrap();
    s.write_all(&[1u8; 10]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(text(unix(&d.sock, b"nSHUTDOWN\n")), "");
    let mut r = String::new();
    std::io::Read::read_to_string(&mut s, &mut r).unwrap();
    assert_eq!(r, "stream: Server shutting down, stream refused. ERROR\n");
    d.stop();
    assert!(!d.sock.exists(), "the socket file was left behind");
    assert!(!d.streams.exists(), "the stream folder was left behind");
}

#[test]
fn connections_past_the_limit_get_an_error_and_the_rest_serve_on() {
    let d = start(|c, _| c.max_connections = 4);
    let idle: Vec<UnixStream> = (0..4)
        .map(|_| UnixStream::connect(&d.sock).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        text(tcp(d.tcp, b"nPING\n")),
        "Too many connections. ERROR\n"
    );
    drop(idle);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(text(tcp(d.tcp, b"nPING\n")), "PONG\n");
}

#[test]
fn config_file_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("mallard.conf");
    std::fs::write(
        &f,
        "LocalSocket /tmp/x.sock\nTCPAddr 0.0.0.0\nTCPSocket 3310\nMaxThreads 3\n",
    )
    .unwrap();
    let c = mallard_serve::Config::from_file(&f).unwrap();
    assert_eq!(c.tcp.unwrap().to_string(), "0.0.0.0:3310");
    assert_eq!(c.workers, 3);
    let e = mallard_serve::Server::bind(mallard_serve::Config::default())
        .err()
        .unwrap();
    assert!(e.to_string().contains("nothing to listen on"), "{e}");
}
