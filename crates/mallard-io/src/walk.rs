//! The one directory walker. Every command that takes folders (scan, features, datasets,
//! rules) expands them here, so they all agree on links, depth and odd files.
//!
//! - Symbolic links inside folders are skipped unless `follow_symlinks` is set; when
//!   followed, a folder already on the walk (same device and inode) is not entered
//!   again, so `a -> .` or links to `..` cannot loop.
//! - Folders deeper than `max_depth` below a root are reported, not entered.
//! - Only regular files are returned. FIFOs, sockets and devices are reported as errors
//!   (opening them can hang), as are unreadable folders and entries.
//! - Paths given explicitly (the roots) are kept as given when they are regular files,
//!   whatever `keep` says: the user asked for them.

use crate::read::kind;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy)]
pub struct WalkOptions {
    pub follow_symlinks: bool,
    pub max_depth: usize,
}

impl Default for WalkOptions {
    fn default() -> Self {
        WalkOptions {
            follow_symlinks: false,
            max_depth: crate::Caps::default().max_walk_depth,
        }
    }
}

/// What a walk found.
#[derive(Debug, Default)]
pub struct Walked {
    /// Regular files, roots in the order given, folder contents sorted by name.
    pub files: Vec<PathBuf>,
    /// Paths that could not be walked or are not regular files, each with a one-line
    /// message naming the path.
    pub errors: Vec<(PathBuf, String)>,
    /// Symbolic links inside folders that were not followed.
    pub skipped_links: usize,
    /// Those links' paths, in walk order, for a caller that takes links to regular files
    /// itself (they cannot loop; links to folders can).
    pub links: Vec<PathBuf>,
}

/// Walks `roots`; inside folders keeps the regular files for which `keep` is true.
pub fn walk(roots: &[PathBuf], opts: &WalkOptions, keep: &dyn Fn(&Path) -> bool) -> Walked {
    walk_at_most(roots, opts, keep, usize::MAX).unwrap_or_default()
}

/// [`walk`], giving up (`None`) once more than `max_entries` entries of folders (files,
/// folders and links alike) have been looked at: for a walk a remote client asks for, whose
/// time and memory must not grow with whatever the folder holds.
pub fn walk_at_most(
    roots: &[PathBuf],
    opts: &WalkOptions,
    keep: &dyn Fn(&Path) -> bool,
    max_entries: usize,
) -> Option<Walked> {
    let mut out = Walked::default();
    let mut budget = max_entries;
    for root in roots {
        match std::fs::metadata(root) {
            Err(e) => out
                .errors
                .push((root.clone(), format!("{}: {e}", root.display()))),
            Ok(m) if m.is_dir() => {
                let mut on_path = HashSet::new();
                if !descend(root, 0, opts, keep, &mut on_path, &mut budget, &mut out) {
                    return None;
                }
            }
            Ok(m) if m.is_file() => out.files.push(root.clone()),
            Ok(m) => out.errors.push((
                root.clone(),
                format!("{}: not a regular file ({})", root.display(), kind(&m)),
            )),
        }
    }
    Some(out)
}

#[cfg(unix)]
fn id(m: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}
#[cfg(not(unix))]
fn id(_: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

/// False once `budget` entries are spent (the walk is then abandoned).
fn descend(
    dir: &Path,
    depth: usize,
    opts: &WalkOptions,
    keep: &dyn Fn(&Path) -> bool,
    on_path: &mut HashSet<(u64, u64)>,
    budget: &mut usize,
    out: &mut Walked,
) -> bool {
    let here = match std::fs::metadata(dir) {
        Ok(m) => id(&m),
        Err(e) => {
            out.errors
                .push((dir.to_path_buf(), format!("{}: {e}", dir.display())));
            return true;
        }
    };
    // A folder already being walked above us: a loop through links or bind mounts.
    if cfg!(unix) && !on_path.insert(here) {
        return true;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            out.errors
                .push((dir.to_path_buf(), format!("{}: {e}", dir.display())));
            on_path.remove(&here);
            return true;
        }
    };
    let mut paths = Vec::new();
    for e in entries {
        // Counted before sorting, so that one huge folder is not read whole.
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        match e {
            Ok(e) => paths.push(e.path()),
            Err(e) => out
                .errors
                .push((dir.to_path_buf(), format!("{}: {e}", dir.display()))),
        }
    }
    paths.sort();
    for p in paths {
        let lmeta = match std::fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) => {
                out.errors
                    .push((p.clone(), format!("{}: {e}", p.display())));
                continue;
            }
        };
        let meta = if lmeta.file_type().is_symlink() {
            if !opts.follow_symlinks {
                out.skipped_links += 1;
                out.links.push(p);
                continue;
            }
            match std::fs::metadata(&p) {
                Ok(m) => m,
                Err(e) => {
                    out.errors
                        .push((p.clone(), format!("{}: broken link: {e}", p.display())));
                    continue;
                }
            }
        } else {
            lmeta
        };
        if meta.is_dir() {
            if depth + 1 > opts.max_depth {
                out.errors.push((
                    p.clone(),
                    format!(
                        "{}: more than {} folders deep, not entered",
                        p.display(),
                        opts.max_depth
                    ),
                ));
            } else if !descend(&p, depth + 1, opts, keep, on_path, budget, out) {
                return false;
            }
        } else if meta.is_file() {
            if keep(&p) {
                out.files.push(p);
            }
        } else {
            out.errors.push((
                p.clone(),
                format!("{}: not a regular file ({})", p.display(), kind(&meta)),
            ));
        }
    }
    on_path.remove(&here);
    true
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::read::tests::scratch;
    use std::os::unix::fs::symlink;

    fn all(_: &Path) -> bool {
        true
    }

    fn names(w: &Walked, root: &Path) -> Vec<String> {
        w.files
            .iter()
            .map(|p| p.strip_prefix(root).unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn self_links_and_parent_links_do_not_loop() {
        let d = scratch("loops");
        std::fs::create_dir(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/a.exe"), b"MZ").unwrap();
        symlink(".", d.join("sub/self1")).unwrap();
        symlink(".", d.join("sub/self2")).unwrap();
        symlink("..", d.join("sub/up")).unwrap();
        // Default: links skipped, one file.
        let w = walk(std::slice::from_ref(&d), &WalkOptions::default(), &all);
        assert_eq!(names(&w, &d), vec!["sub/a.exe"]);
        assert_eq!(w.skipped_links, 3);
        // Following: the loop guard still gives the file exactly once.
        let follow = WalkOptions {
            follow_symlinks: true,
            ..Default::default()
        };
        let w = walk(std::slice::from_ref(&d), &follow, &all);
        assert_eq!(names(&w, &d), vec!["sub/a.exe"]);
    }

    #[test]
    fn followed_links_to_other_folders_are_walked_once_each() {
        let d = scratch("follow");
        std::fs::create_dir_all(d.join("real")).unwrap();
        std::fs::create_dir_all(d.join("top")).unwrap();
        std::fs::write(d.join("real/x.dll"), b"MZ").unwrap();
        symlink(d.join("real"), d.join("top/link")).unwrap();
        symlink(d.join("real/x.dll"), d.join("top/file-link.dll")).unwrap();
        let follow = WalkOptions {
            follow_symlinks: true,
            ..Default::default()
        };
        let w = walk(&[d.join("top")], &follow, &all);
        assert_eq!(
            names(&w, &d.join("top")),
            vec!["file-link.dll", "link/x.dll"]
        );
        let w = walk(&[d.join("top")], &WalkOptions::default(), &all);
        assert!(w.files.is_empty());
        assert_eq!(w.skipped_links, 2);
        assert_eq!(
            w.links,
            vec![d.join("top/file-link.dll"), d.join("top/link")]
        );
    }

    #[test]
    fn depth_cap_reports_the_folder() {
        let d = scratch("deep");
        let mut p = d.clone();
        for i in 0..5 {
            p = p.join(format!("d{i}"));
        }
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("f"), b"x").unwrap();
        let opts = WalkOptions {
            max_depth: 3,
            ..Default::default()
        };
        let w = walk(std::slice::from_ref(&d), &opts, &all);
        assert!(w.files.is_empty());
        assert_eq!(w.errors.len(), 1);
        assert!(
            w.errors[0].1.contains("more than 3 folders deep"),
            "{:?}",
            w.errors
        );
        let w = walk(std::slice::from_ref(&d), &WalkOptions::default(), &all);
        assert_eq!(w.files.len(), 1);
    }

    #[test]
    fn fifo_and_missing_are_errors_and_keep_filters_folder_files_only() {
        let d = scratch("odd");
        std::fs::write(d.join("a.txt"), b"x").unwrap();
        std::fs::write(d.join("b.exe"), b"MZ").unwrap();
        let fifo = d.join("c.exe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(
            made.map(|s| s.success()).unwrap_or(false),
            "mkfifo unavailable"
        );
        let exe = |p: &Path| p.extension().is_some_and(|e| e == "exe");
        let roots = vec![d.clone(), d.join("a.txt"), d.join("missing")];
        let w = walk(&roots, &WalkOptions::default(), &exe);
        assert_eq!(w.files, vec![d.join("b.exe"), d.join("a.txt")]);
        assert_eq!(w.errors.len(), 2, "{:?}", w.errors);
        assert!(w.errors[0].1.contains("FIFO"));
        assert!(w.errors[1].0.ends_with("missing"));
        let w = walk(&[fifo], &WalkOptions::default(), &exe);
        assert!(w.files.is_empty() && w.errors[0].1.contains("FIFO"));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn unreadable_subfolder_is_one_error_and_the_rest_is_walked() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        // Root reads any folder: run this test again as `nobody` so the check is real.
        let uid = std::fs::metadata("/proc/self")
            .map(|m| m.uid())
            .unwrap_or(0);
        if uid == 0 {
            let exe = std::env::current_exe().unwrap();
            let status = std::process::Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(exe)
                .args([
                    "--exact",
                    "walk::tests::unreadable_subfolder_is_one_error_and_the_rest_is_walked",
                ])
                .status()
                .expect("setpriv (util-linux) is needed to run this test as root");
            assert!(status.success(), "the test failed when run as nobody");
            return;
        }
        let d = scratch("perm");
        std::fs::create_dir(d.join("closed")).unwrap();
        std::fs::write(d.join("closed/x"), b"x").unwrap();
        std::fs::write(d.join("open"), b"x").unwrap();
        std::fs::set_permissions(d.join("closed"), std::fs::Permissions::from_mode(0o000)).unwrap();
        let w = walk(std::slice::from_ref(&d), &WalkOptions::default(), &all);
        std::fs::set_permissions(d.join("closed"), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(names(&w, &d), vec!["open"]);
        assert_eq!(w.errors.len(), 1, "{:?}", w.errors);
        assert!(w.errors[0].0.ends_with("closed"));
    }
}

/// Files as given; folders recursively through `mallard_io::walk` (links not followed,
/// depth capped), keeping files that start with "MZ". Returns the files, one error per
/// path that could not be walked or read, and the number of links skipped.
pub fn pe_files(inputs: &[PathBuf], max_depth: usize) -> PeFiles {
    let head_errors = std::cell::RefCell::new(Vec::new());
    let keep = |p: &Path| match crate::starts_like_pe(p) {
        Ok(pe) => pe,
        Err(e) => {
            head_errors
                .borrow_mut()
                .push((p.to_path_buf(), e.to_string()));
            false
        }
    };
    let opts = WalkOptions {
        follow_symlinks: false,
        max_depth,
    };
    let w = walk(inputs, &opts, &keep);
    let mut errors = w.errors;
    errors.extend(head_errors.into_inner());
    PeFiles {
        files: w.files,
        errors,
        skipped_links: w.skipped_links,
    }
}

/// PE files found under the inputs, with what could not be walked or read.
pub struct PeFiles {
    pub files: Vec<PathBuf>,
    /// One error per path that could not be walked or read.
    pub errors: Vec<(PathBuf, String)>,
    /// Links inside folders, not followed.
    pub skipped_links: usize,
}
