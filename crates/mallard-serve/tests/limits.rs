//! The daemon's limits, forced rather than waited for: a scan held on its thread by a
//! `ScanHook` until the test lets it go, so that a timeout or a full queue happens every run.

mod common;
use common::*;
use mallard_serve::ScanHook;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Holds the scans `held` picks until `open`; says on `entered` which file reached it.
struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }
}

fn gate(
    held: impl Fn(&Path) -> bool + Send + Sync + 'static,
) -> (ScanHook, Arc<Gate>, Receiver<PathBuf>) {
    let g = Arc::new(Gate {
        open: Mutex::new(false),
        cv: Condvar::new(),
    });
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let g2 = Arc::clone(&g);
    let hook = ScanHook(Arc::new(move |p: &Path| {
        let _ = tx.lock().unwrap().send(p.to_path_buf());
        if !held(p) {
            return;
        }
        // Bounded, so that a failing test never leaves a thread stuck for good.
        let mut open = g2.open.lock().unwrap();
        let until = Instant::now() + Duration::from_secs(60);
        while !*open && Instant::now() < until {
            open = g2.cv.wait_timeout(open, Duration::from_secs(1)).unwrap().0;
        }
    }));
    (hook, g, rx)
}

/// Opens the gate when dropped (a test that fails still lets its held scans go).
struct OpenOnDrop(Arc<Gate>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

fn marked() -> Vec<u8> {
    let mut m = b"x".to_vec();
    m.extend_from_slice(MARKER);
    m
}

#[test]
fn a_scan_past_scan_timeout_gets_an_error_and_a_stand_in_thread_serves_on() {
    let (hook, g, entered) = gate(|p| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("slow"))
    });
    let d = start(move |c, _| {
        c.workers = 1;
        c.scan_timeout = Duration::from_secs(1);
        c.scan_hook = Some(hook);
    });
    let slow = d.root.join("slow.json");
    let slow2 = d.root.join("slow2.json");
    let fast = d.root.join("fast.json");
    for p in [&slow, &slow2, &fast] {
        std::fs::write(p, marked()).unwrap();
    }
    let ask = |cmd: String| text(unix(&d.sock, cmd.as_bytes()));
    let t0 = Instant::now();
    assert_eq!(
        ask(format!("nSCAN {}\n", slow.display())),
        format!("{}: Scan timed out after 1 s. ERROR\n", slow.display())
    );
    assert!(t0.elapsed() >= Duration::from_secs(1), "answered early");
    assert_eq!(entered.try_recv().unwrap(), slow);
    // The only thread is still held: a stand-in answers the next file.
    assert_eq!(
        ask(format!("nSCAN {}\n", fast.display())),
        format!("{}: Mallard.Rule.Serve_Test_Marker FOUND\n", fast.display())
    );
    assert_eq!(
        unix(&d.sock, format!("zSCAN {}\0", slow2.display()).as_bytes()),
        format!("{}: Scan timed out after 1 s. ERROR\0", slow2.display()).into_bytes()
    );
    // A JSON request gets its timeout as a JSON object too.
    let j = ask(format!("nJSON SCAN {}\n", slow.display()));
    let v: serde_json::Value = serde_json::from_str(j.trim_end()).unwrap();
    assert_eq!(v["verdict"], "error", "{j}");
    assert_eq!(
        v["clamd"],
        format!("{}: Scan timed out after 1 s. ERROR", slow.display())
    );
    assert_eq!(
        text(unix(&d.sock, &instream("n", &marked()))),
        "stream: Mallard.Rule.Serve_Test_Marker FOUND\n"
    );
    g.open();
    assert_eq!(text(unix(&d.sock, b"nPING\n")), "PONG\n");
    assert_eq!(
        ask(format!("nSCAN {}\n", fast.display())),
        format!("{}: Mallard.Rule.Serve_Test_Marker FOUND\n", fast.display())
    );
}

#[test]
fn a_full_queue_refuses_scans_and_the_daemon_serves_on() {
    let (hook, g, entered) = gate(|_| true);
    let d = start(move |c, _| {
        c.workers = 1;
        c.max_queue = 1;
        c.scan_hook = Some(hook);
        // Six clients at once on busy cores: the tests' 2 s command timeout could answer one
        // of them with a timeout instead of "queue full" (seen under CPU oversubscription).
        c.command_read_timeout = Duration::from_secs(30);
        c.idle_timeout = Duration::from_secs(30);
    });
    // A failed assertion must not leave the held scan (and the daemon's shutdown) waiting
    // out the gate's 60 s: dropped before `d`, this opens the gate whatever happens.
    let _release = OpenOnDrop(Arc::clone(&g));
    let (tx, replies) = mpsc::channel();
    let client = |tx: mpsc::Sender<String>| {
        let sock = d.sock.clone();
        std::thread::spawn(move || {
            tx.send(text(unix(&sock, &instream("n", b"hello"))))
                .unwrap()
        })
    };
    // The first file must be on the only thread before the others come: otherwise, on busy
    // cores, the thread may not have taken it from the queue yet and a fifth client is
    // refused (the race that made this test flaky).
    let mut clients = vec![client(tx.clone())];
    entered
        .recv_timeout(Duration::from_secs(30))
        .expect("the first file never reached the scan thread");
    // With the only thread held, one more file waits in the queue: of the 5 clients that
    // come now, exactly 4 are refused, whatever the order they come in.
    clients.extend((0..5).map(|_| client(tx.clone())));
    for _ in 0..4 {
        assert_eq!(
            replies.recv_timeout(Duration::from_secs(30)).unwrap(),
            "stream: Server busy: scan queue full. ERROR\n"
        );
    }
    assert_eq!(text(unix(&d.sock, b"nPING\n")), "PONG\n");
    assert!(
        replies.recv_timeout(Duration::from_millis(300)).is_err(),
        "a fifth client was answered while the queue was held"
    );
    g.open();
    for _ in 0..2 {
        assert_eq!(
            replies.recv_timeout(Duration::from_secs(30)).unwrap(),
            "stream: OK\n"
        );
    }
    for c in clients {
        c.join().unwrap();
    }
    assert_eq!(text(unix(&d.sock, b"nPING\n")), "PONG\n");
    assert_eq!(
        text(unix(&d.sock, &instream("z", b"hello"))),
        "stream: OK\0"
    );
    assert_eq!(entries(&d.streams), 0, "a stream file was left behind");
}

#[test]
fn folder_listings_stop_at_max_directory_entries_and_the_depth_cap() {
    let d = start(|c, _| c.max_directory_entries = 5);
    let found = "Mallard.Rule.Serve_Test_Marker FOUND";
    let fill = |dir: &Path, names: &[&str]| {
        std::fs::create_dir_all(dir).unwrap();
        for n in names {
            std::fs::write(dir.join(n), marked()).unwrap();
        }
    };
    let five = d.root.join("five");
    fill(&five, &["a.json", "b.json", "c.json", "d.json", "e.json"]);
    let six = d.root.join("six");
    fill(
        &six,
        &["a.json", "b.json", "c.json", "d.json", "e.json", "f.json"],
    );
    // Five files in two folders, six entries: folders count too.
    let nested = d.root.join("nested");
    fill(&nested, &["a.json", "b.json"]);
    fill(&nested.join("sub"), &["c.json", "d.json", "e.json"]);
    let ask = |cmd: &str, p: &Path| {
        text(unix(
            &d.sock,
            format!("n{cmd} {}\n", p.display()).as_bytes(),
        ))
    };
    let lines = ask("CONTSCAN", &five);
    assert_eq!(lines.lines().count(), 5, "{lines}");
    assert!(lines.lines().all(|l| l.ends_with(found)), "{lines}");
    for cmd in [
        "SCAN",
        "CONTSCAN",
        "MULTISCAN",
        "ALLMATCHSCAN",
        "JSON CONTSCAN",
    ] {
        for dir in [&six, &nested] {
            assert_eq!(
                ask(cmd, dir),
                format!(
                    "{}: Folder too large: more than 5 entries (MaxDirectoryEntries). ERROR\n",
                    dir.display()
                ),
                "{cmd}"
            );
        }
    }
    // A single file is no listing.
    assert_eq!(
        ask("SCAN", &six.join("f.json")),
        format!("{}: {found}\n", six.join("f.json").display())
    );
    assert_eq!(text(unix(&d.sock, b"nPING\n")), "PONG\n");

    // Depth: folders below the walk cap are reported, not entered.
    let d = start(|_, _| {});
    let ask = |cmd: &str, p: &Path| {
        text(unix(
            &d.sock,
            format!("n{cmd} {}\n", p.display()).as_bytes(),
        ))
    };
    let cap = mallard_io::Caps::default().max_walk_depth;
    let deep = d.root.join("deep");
    let mut p = deep.clone();
    for _ in 0..cap + 3 {
        p.push("d");
    }
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(p.join("bottom.json"), marked()).unwrap();
    std::fs::write(deep.join("top.json"), marked()).unwrap();
    let mut first_unentered = deep.clone();
    for _ in 0..=cap {
        first_unentered.push("d");
    }
    assert_eq!(
        ask("CONTSCAN", &deep),
        format!(
            "{}: more than {cap} folders deep, not entered. ERROR\n{}: {found}\n",
            first_unentered.display(),
            deep.join("top.json").display()
        )
    );
}
