//! Which kind of PE file an EMBER v2 row describes (32- or 64-bit; EXE, DLL or .NET),
//! read back from its columns, so that tables without the raw objects can be split or
//! weighted by kind.
//!
//! The machine is hashed into 10 signed buckets: "I386" lands alone in bucket 5 (+1);
//! "AMD64" and "ARM64" share bucket 6 (-1), so EMBER v2 cannot tell them apart and neither
//! can this. "DLL" is alone in characteristics bucket 0 (-1). .NET assemblies have a
//! CLR runtime header directory.

use crate::hasher::bucket;

/// The kinds, in a fixed order.
pub const KINDS: [&str; 9] = [
    "32-bit exe",
    "32-bit dll",
    "32-bit .net",
    "64-bit exe",
    "64-bit dll",
    "64-bit .net",
    "other exe",
    "other dll",
    "other .net",
];

/// Column positions of the values the kind is read from.
#[derive(Debug, Clone, Copy)]
pub struct KindColumns {
    i386: (usize, f32),
    x64: (usize, f32),
    dll: (usize, f32),
    clr: usize,
}

fn hashed(columns: &[String], group: &str, name: &str) -> Option<(usize, f32)> {
    let (b, sign) = bucket(name.as_bytes(), 10);
    let col = format!("header_{group}_hash{b}");
    columns
        .iter()
        .position(|c| *c == col)
        .map(|i| (i, sign as f32))
}

impl KindColumns {
    /// `None` unless the columns are EMBER v2's (by name).
    pub fn find(columns: &[String]) -> Option<Self> {
        Some(KindColumns {
            i386: hashed(columns, "machine", "I386")?,
            x64: hashed(columns, "machine", "AMD64")?,
            dll: hashed(columns, "characteristics", "DLL")?,
            clr: columns
                .iter()
                .position(|c| c == "datadirectories_CLR_RUNTIME_HEADER_size")?,
        })
    }

    /// Index into [`KINDS`] of one row (a row shorter than the columns is "other exe").
    pub fn kind(&self, row: &[f32]) -> usize {
        let at = |i: usize| row.get(i).copied().unwrap_or(0.0);
        let bits = if at(self.i386.0) == self.i386.1 {
            0
        } else if at(self.x64.0) == self.x64.1 {
            1
        } else {
            2
        };
        let kind = if at(self.clr) > 0.0 {
            2
        } else if at(self.dll.0) == self.dll.1 {
            1
        } else {
            0
        };
        bits * 3 + kind
    }
}
