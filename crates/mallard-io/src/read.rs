//! Reads that cannot hang or blow up: regular files only, size checked before reading.

use std::fs::{File, Metadata};
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum IoError {
    #[error("{path}: not a regular file ({kind})")]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{path}: {size} bytes, over the cap of {cap} bytes")]
    TooLarge { path: PathBuf, size: u64, cap: u64 },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl IoError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        IoError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// What a non-regular file is, in words.
pub(crate) fn kind(meta: &Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
    }
    if meta.is_dir() {
        "a folder"
    } else {
        "not a plain file"
    }
}

/// Opens `path` only if it is a regular file (symlinks to one are fine). The open itself
/// is non-blocking, so a FIFO swapped in after the check cannot hang it, and the file's
/// own metadata is checked again after opening.
pub fn open_regular(path: &Path) -> Result<(File, Metadata), IoError> {
    let meta = std::fs::metadata(path).map_err(|e| IoError::io(path, e))?;
    if !meta.is_file() {
        return Err(IoError::NotRegular {
            path: path.to_path_buf(),
            kind: kind(&meta),
        });
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        const O_NONBLOCK: i32 = 0o4000;
        opts.custom_flags(O_NONBLOCK);
    }
    let file = opts.open(path).map_err(|e| IoError::io(path, e))?;
    let meta = file.metadata().map_err(|e| IoError::io(path, e))?;
    if !meta.is_file() {
        return Err(IoError::NotRegular {
            path: path.to_path_buf(),
            kind: kind(&meta),
        });
    }
    Ok((file, meta))
}

/// [`open_regular`], refusing a file larger than `cap` bytes on disk (the error names its
/// real size). Callers that stream must still read at most `cap` bytes: it may grow.
pub fn open_capped(path: &Path, cap: u64) -> Result<(File, Metadata), IoError> {
    let (file, meta) = open_regular(path)?;
    if meta.len() > cap {
        return Err(IoError::TooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
            cap,
        });
    }
    Ok((file, meta))
}

/// Reads a whole regular file of at most `cap` bytes. The size on disk is checked first
/// (the error says the real size), and the read stops at `cap + 1` bytes in case the
/// file grows meanwhile.
pub fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, IoError> {
    let (file, meta) = open_capped(path, cap)?;
    let mut buf = Vec::with_capacity(meta.len() as usize);
    file.take(cap.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| IoError::io(path, e))?;
    if buf.len() as u64 > cap {
        return Err(IoError::TooLarge {
            path: path.to_path_buf(),
            size: buf.len() as u64,
            cap,
        });
    }
    Ok(buf)
}

/// The first `n` bytes of a regular file (fewer if it is shorter); for magic checks.
pub fn read_head(path: &Path, n: usize) -> Result<Vec<u8>, IoError> {
    let (file, _) = open_regular(path)?;
    let mut buf = Vec::with_capacity(n);
    file.take(n as u64)
        .read_to_end(&mut buf)
        .map_err(|e| IoError::io(path, e))?;
    Ok(buf)
}

/// The one "is this a PE file" check: whether a regular file starts with the `MZ` magic.
/// Errors (not a regular file, unreadable) are kept apart so callers can report them.
pub fn starts_like_pe(path: &Path) -> Result<bool, IoError> {
    Ok(read_head(path, 2)? == b"MZ")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fresh empty folder under the system temp folder.
    pub(crate) fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mallard-io-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn the_pe_check_reads_two_bytes_of_regular_files() {
        let d = scratch("mz");
        std::fs::write(d.join("a.exe"), b"MZ\x90\x00").unwrap();
        std::fs::write(d.join("b.txt"), b"M").unwrap();
        assert!(starts_like_pe(&d.join("a.exe")).unwrap());
        assert!(!starts_like_pe(&d.join("b.txt")).unwrap());
        assert!(
            starts_like_pe(&d).is_err(),
            "a folder is not a regular file"
        );
        assert!(starts_like_pe(&d.join("missing")).is_err());
    }

    #[test]
    fn reads_small_and_refuses_large_with_real_size() {
        let d = scratch("cap");
        let f = d.join("a.bin");
        std::fs::write(&f, vec![7u8; 100]).unwrap();
        assert_eq!(read_capped(&f, 100).unwrap().len(), 100);
        let e = read_capped(&f, 99).unwrap_err().to_string();
        assert!(e.contains("100 bytes") && e.contains("99"), "{e}");
        assert_eq!(read_head(&f, 2).unwrap(), vec![7, 7]);
    }

    #[test]
    fn sparse_file_refused_before_reading() {
        let d = scratch("sparse");
        let f = d.join("big.exe");
        let file = File::create(&f).unwrap();
        file.set_len(1 << 30).unwrap();
        let t = std::time::Instant::now();
        let e = read_capped(&f, 1 << 20).unwrap_err().to_string();
        assert!(e.contains("1073741824 bytes"), "{e}");
        assert!(t.elapsed().as_millis() < 500);
    }

    #[test]
    fn folder_is_not_regular() {
        let d = scratch("dir");
        let e = read_capped(&d, 10).unwrap_err().to_string();
        assert!(e.contains("a folder"), "{e}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn fifo_refused_without_hanging() {
        let d = scratch("fifo");
        let f = d.join("x.exe");
        let ok = std::process::Command::new("mkfifo").arg(&f).status();
        if !ok.map(|s| s.success()).unwrap_or(false) {
            panic!("mkfifo unavailable: cannot test FIFO handling");
        }
        let e = read_capped(&f, 10).unwrap_err().to_string();
        assert!(e.contains("FIFO"), "{e}");
        let e = read_head(&f, 2).unwrap_err().to_string();
        assert!(e.contains("FIFO"), "{e}");
    }
}
