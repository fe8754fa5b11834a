//! How much of a CAPE report the built-in API model reads, before and after mapping names
//! into its vocabulary (`mallard_apiseq::canon`). Figures: `docs/api-names.md`.
//! Run with `cargo test --release -p mallard-scan -- --ignored --nocapture`.

use mallard_apiseq::canon::{resolve, Resolved};
use mallard_apiseq::{read_report, ReadError, ReportOptions};
use mallard_scan::builtin;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

fn shared() -> PathBuf {
    match std::env::var_os("MALLARD_SHARED") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

/// Issue 13's target for the share of a report's distinct names the model reads.
const TARGET: f64 = 0.90;

/// CAPE names in the shared reports that no call of MalBehavD's 286-name vocabulary performs:
/// the model cannot read them without retraining. Each was checked by hand against the
/// vocabulary (`docs/api-names.md` says why for each group); a name not listed here that
/// stays unmapped fails the test, so it gets the same review.
const NO_EQUIVALENT: &[&str] = &[
    // CAPE's own events and C runtime hooks, not Windows API calls
    "__anomaly__",
    "DllLoadNotification",
    "memcpy",
    "srand",
    "COleScript_ParseScriptText",
    // synchronisation and timers (Cuckoo's monitor logs none of these)
    "NtWaitForSingleObject",
    "MsgWaitForMultipleObjectsEx",
    "NtCreateEvent",
    "NtOpenEvent",
    "NtReleaseMutant",
    "NtSetTimer",
    "NtSetTimerEx",
    "NtYieldExecution",
    // process, thread and token information
    "GetCommandLineA",
    "GetCommandLineW",
    "NtQueryInformationThread",
    "NtSetInformationProcess",
    "NtOpenProcessToken",
    "NtQueryInformationToken",
    "UpdateProcThreadAttribute",
    "NtQueryLicenseValue",
    "SaferIdentifyLevel",
    "LsaOpenPolicy",
    // atoms, transactions, heaps, resources, paths
    "NtAddAtomEx",
    "NtDeleteAtom",
    "NtFindAtom",
    "NtQueryInformationAtom",
    "NtCreateTransaction",
    "NtCommitTransaction",
    "RtlSetCurrentTransaction",
    "HeapCreate",
    "LockResource",
    "RtlDosPathNameToNtPathName_U",
    // files, pipes, registry, volumes
    "NtCreateNamedPipeFile",
    "FindFirstChangeNotificationW",
    "GetVolumeInformationByHandleW",
    "NtLoadKey",
    "RegNotifyChangeKeyValue",
    // user interface and input
    "ChangeWindowMessageFilter",
    "GetKeyboardLayout",
    "GetLastInputInfo",
    "PostMessageA",
    "PostMessageW",
    "PostThreadMessageA",
    "PostThreadMessageW",
    "SystemParametersInfoW",
    "SHGetFileInfoW",
    "ScriptIsComplex",
    "StrCmpNICW",
    "VarBstrCat",
    // devices, networking, proxies
    "SetupDiGetClassDevsW",
    "SetupDiGetDeviceRegistryPropertyA",
    "SetupDiGetDeviceRegistryPropertyW",
    "RasConnectionNotificationW",
    "NSPStartup",
    "WinHttpGetIEProxyConfigForCurrentUser",
    "WinHttpGetProxyForUrl",
    "WinHttpReceiveResponse",
    "UrlCanonicalizeW",
    // cryptography the MalBehavD vocabulary has no call for
    "BCryptImportKey",
    "BCryptImportKeyPair",
    "CryptImportKey",
    "CryptImportPublicKeyInfo",
    "CryptDestroyHash",
    "CryptDestroyKey",
    "CryptGenRandom",
];

#[test]
#[ignore = "data: reads ../shared/data"]
fn cape_reports_names_mapped_into_the_builtin_vocabulary() {
    let model = builtin::load("api").expect("built-in").expect("loads");
    let dir = shared().join("data/sandbox-reports/cape");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 16, "the README lists 16 CAPE reports");
    let (mut scored, mut at_target) = (0, 0);
    let mut left: BTreeSet<String> = BTreeSet::new();
    let mut mapped: BTreeMap<String, String> = BTreeMap::new();
    let knows = |n: &str| model.known_apis(&[n.to_string()]) == Some((1, 1));
    println!("report                                                  names  before  after");
    for f in &files {
        let report = match read_report(f, &ReportOptions::default()) {
            Ok(r) => r,
            // Two reports have no monitored process (README): nothing to map.
            Err(ReadError::NoCalls { .. }) => continue,
            Err(e) => panic!("{e}"),
        };
        let names: Vec<String> = report
            .distinct_apis()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let c = model.api_names(&names).expect("an API model");
        let (known, total) = model.known_apis(&names).expect("an API model");
        assert_eq!((c.known, c.distinct), (known, total));
        assert_eq!(c.known + c.mapped + c.unseen, c.distinct);
        let before = c.known as f64 / c.distinct as f64;
        let after = (c.known + c.mapped) as f64 / c.distinct as f64;
        println!(
            "{:<55} {:>6} {:>6.1}% {:>5.1}%",
            f.file_name().unwrap().to_string_lossy(),
            c.distinct,
            100.0 * before,
            100.0 * after
        );
        assert!(after > before, "{}: nothing mapped", f.display());
        for n in &names {
            match resolve(n, knows) {
                Resolved::Known => {}
                Resolved::Mapped(to) => {
                    mapped.insert(n.clone(), to);
                }
                Resolved::Unknown => {
                    left.insert(n.clone());
                }
            }
        }
        scored += 1;
        at_target += usize::from(after >= TARGET);
    }
    assert_eq!(scored, 14);
    println!(
        "{at_target} of {scored} reports reach {:.0}%",
        100.0 * TARGET
    );
    println!("mapped ({}):", mapped.len());
    for (from, to) in &mapped {
        println!("  {from} -> {to}");
    }
    println!("left unmapped ({}): {left:?}", left.len());
    let unreviewed: Vec<&String> = left
        .iter()
        .filter(|n| !NO_EQUIVALENT.contains(&n.as_str()))
        .collect();
    assert!(
        unreviewed.is_empty(),
        "unmapped names not reviewed (map them in canon::TABLE or list them): {unreviewed:?}"
    );
    // The list holds only names that are still unmapped.
    let stale: Vec<&&str> = NO_EQUIVALENT
        .iter()
        .filter(|n| !left.contains(**n))
        .collect();
    assert!(
        stale.is_empty(),
        "mapped now, drop from NO_EQUIVALENT: {stale:?}"
    );
}
