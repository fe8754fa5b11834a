//! `image`: texture descriptors of a file's byte plot (`mallard-image`: Nataraj et al.'s
//! grayscale picture), and the file regions a drawn plot marks.

use mallard_pe::Pe;

pub use mallard_image::{names, texture, BytePlot, Region, DIM};

/// The regions of a PE file in file offsets: `headers`, each section's raw data (by name;
/// empty ones left out) and the `overlay`. A file that does not parse is one region, `file`.
pub fn regions(bytes: &[u8]) -> Vec<Region> {
    let Ok(pe) = Pe::parse(bytes) else {
        return vec![Region {
            name: "file".into(),
            start: 0,
            end: bytes.len(),
        }];
    };
    let len = bytes.len();
    let mut out = vec![Region {
        name: "headers".into(),
        start: 0,
        end: (pe.optional.size_of_headers as usize).min(len),
    }];
    for s in &pe.sections {
        let start = (s.pointer_to_raw_data as usize).min(len);
        let end = start.saturating_add(s.size_of_raw_data as usize).min(len);
        if end > start {
            let name = s.name();
            out.push(Region {
                name: if name.is_empty() {
                    "(unnamed)".into()
                } else {
                    name
                },
                start,
                end,
            });
        }
    }
    if let Some(o) = pe.overlay_offset() {
        out.push(Region {
            name: "overlay".into(),
            start: o,
            end: len,
        });
    }
    out
}

/// What [`draw`] drew.
#[derive(Clone, Debug)]
pub struct Drawn {
    pub width: usize,
    /// Rows drawn, and rows the whole file would take.
    pub rows: usize,
    pub total_rows: usize,
    pub regions: Vec<Region>,
}

/// `W x H pixels (first R of T rows); marked: headers, .text, ...`
impl std::fmt::Display for Drawn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} x {} pixels", self.width, self.rows)?;
        if self.rows < self.total_rows {
            write!(f, " (first {} of {} rows)", self.rows, self.total_rows)?;
        }
        let names: Vec<&str> = self.regions.iter().map(|r| r.name.as_str()).collect();
        write!(f, "; marked: {}", names.join(", "))
    }
}

/// Draws `bytes` as a byte plot PNG into `out` (width: Nataraj's for the size unless given),
/// with the PE regions of [`regions`] marked; at most `max_rows` rows.
pub fn draw(
    bytes: &[u8],
    width: Option<usize>,
    max_rows: usize,
    out: impl std::io::Write,
) -> Result<Drawn, mallard_image::ImageError> {
    let plot = match width {
        Some(w) => BytePlot::with_width(bytes, w),
        None => BytePlot::new(bytes),
    };
    let regions = regions(bytes);
    let rows = mallard_image::write_png(&plot, &regions, max_rows, out)?;
    Ok(Drawn {
        width: plot.width,
        rows,
        total_rows: plot.height(),
        regions,
    })
}

/// Reads `input` (at most `max_bytes`) and writes its plot to the PNG file `out` (see
/// [`draw`]); errors name the file.
pub fn draw_file(
    input: &std::path::Path,
    out: &std::path::Path,
    width: Option<usize>,
    max_rows: usize,
    max_bytes: usize,
) -> Result<Drawn, crate::FeatureError> {
    let bytes = crate::read_capped(input, max_bytes)?;
    let named = |e: &dyn std::fmt::Display, p: &std::path::Path| {
        crate::FeatureError::Raw(format!("{}: {e}", p.display()))
    };
    if bytes.is_empty() {
        return Err(named(&"empty file, nothing to draw", input));
    }
    let file = std::fs::File::create(out).map_err(|e| named(&e, out))?;
    let mut w = std::io::BufWriter::new(file);
    let d = draw(&bytes, width, max_rows, &mut w).map_err(|e| named(&e, out))?;
    std::io::Write::flush(&mut w).map_err(|e| named(&e, out))?;
    Ok(d)
}
