//! mallard's safe input layer, shared by every reader and front end.
//!
//! - [`Caps`]: the one set of limits on what an input may cost (file sizes, decompressed
//!   sizes, string lengths, counts, depths), with documented defaults.
//! - [`read_capped`] / [`open_regular`]: open only regular files (never a FIFO, device
//!   or socket: those hang or never end), check the size before reading, and never read
//!   more than the cap.
//! - [`walk`]: the one directory walker (no symlink following by default, loop
//!   detection when following, a depth cap, errors per path).
//! - [`le`]: bounds-checked little-endian reads for the binary-format readers.

mod caps;
mod date;
pub mod le;
mod read;
pub mod walk;

pub use caps::Caps;
pub use date::civil_date;
pub use read::{open_capped, open_regular, read_capped, read_head, starts_like_pe, IoError};
pub use walk::{walk, walk_at_most, WalkOptions, Walked};
