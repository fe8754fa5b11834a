//! `mallard image`: a file as Nataraj's byte plot, PE regions marked.

use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ImageArgs {
    /// The file to draw (any file; PE files get their headers, sections and overlay marked).
    pub file: PathBuf,
    /// The PNG to write.
    #[arg(long, value_name = "FILE.png")]
    pub out: PathBuf,
    /// Pixels per row (default: Nataraj et al.'s width for the file's size, 32 to 1,024).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub width: Option<u32>,
    /// Draw at most N rows (the rest of the file is left out, and said so).
    #[arg(long, value_name = "N", default_value_t = 16384)]
    pub max_rows: usize,
}

pub fn run(a: ImageArgs) -> Result<()> {
    let max = mallard_io::Caps::DEFAULT_MAX_PE_BYTES as usize;
    let width = a.width.map(|w| w as usize);
    let d = mallard_pefeatures::image::draw_file(&a.file, &a.out, width, a.max_rows, max)?;
    eprintln!("{}: {d}", a.out.display());
    Ok(())
}
