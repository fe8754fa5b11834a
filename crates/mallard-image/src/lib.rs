//! mallard-image: a file as a picture, after Nataraj, Karthikeyan, Jacob and Manjunath (2011),
//! "Malware images: visualization and automatic classification": each byte is a gray pixel
//! (0 black, 255 white), rows of a width chosen from the file's size, so that files of one
//! family, packed or built alike, look alike.
//!
//! * [`BytePlot`]: the picture; [`write_png`] draws it with file regions (headers, sections,
//!   overlay) marked in a coloured strip on the left and a tinted line where each begins.
//! * [`texture`]: descriptors of the picture for the `image` feature set: a 16 x 16 thumbnail,
//!   a uniform local-binary-pattern histogram and grey-level co-occurrence statistics of the
//!   64 x 64 thumbnail, and global byte statistics. Computed in one pass over the bytes
//!   without drawing the whole picture, so a large file costs no picture-sized memory.

#![forbid(unsafe_code)]

use std::io::Write;

/// Errors writing a picture.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("empty file: nothing to draw")]
    Empty,
    #[error("writing PNG: {0}")]
    Png(#[from] png::EncodingError),
    #[error("writing: {0}")]
    Io(#[from] std::io::Error),
}

/// Nataraj et al.'s width for a file of `len` bytes (their Table 1): 32 pixels under 10 KB
/// up to 1,024 over 1 MB.
pub fn nataraj_width(len: usize) -> usize {
    const KB: usize = 1024;
    match len {
        n if n < 10 * KB => 32,
        n if n < 30 * KB => 64,
        n if n < 60 * KB => 128,
        n if n < 100 * KB => 256,
        n if n < 200 * KB => 384,
        n if n < 500 * KB => 512,
        n if n < 1000 * KB => 768,
        _ => 1024,
    }
}

/// A file's bytes as rows of `width` gray pixels; the last row is padded with black.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BytePlot<'a> {
    pub bytes: &'a [u8],
    pub width: usize,
}

impl<'a> BytePlot<'a> {
    /// The plot at Nataraj's width for the file's size.
    pub fn new(bytes: &'a [u8]) -> Self {
        BytePlot {
            bytes,
            width: nataraj_width(bytes.len()),
        }
    }

    pub fn with_width(bytes: &'a [u8], width: usize) -> Self {
        BytePlot {
            bytes,
            width: width.max(1),
        }
    }

    pub fn height(&self) -> usize {
        self.bytes.len().div_ceil(self.width)
    }

    /// Row of file offset `offset`.
    pub fn row_of(&self, offset: usize) -> usize {
        offset / self.width
    }
}

/// A range of the file to mark (`[start, end)` in file offsets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    pub name: String,
    pub start: usize,
    pub end: usize,
}

/// Width of the strip on the left that shows which region each row belongs to.
pub const MARGIN: usize = 8;

/// Distinct colours for regions, in turn (headers and overlay have their own).
const PALETTE: [[u8; 3]; 8] = [
    [230, 25, 75],
    [60, 180, 75],
    [0, 130, 200],
    [245, 130, 48],
    [145, 30, 180],
    [70, 240, 240],
    [240, 50, 230],
    [210, 245, 60],
];

/// The colour of region `i` (`headers` grey and `overlay` white-on-red keep theirs).
pub fn region_colour(regions: &[Region], i: usize) -> [u8; 3] {
    match regions.get(i).map(|r| r.name.as_str()) {
        Some("headers") => [128, 128, 128],
        Some("overlay") => [255, 0, 0],
        _ => PALETTE[i % PALETTE.len()],
    }
}

/// Writes `plot` as an RGB PNG, at most `max_rows` rows (the rest of the file is left out):
/// an 8-pixel strip on the left in the colour of the region each row starts in (black:
/// none), the plot beside it, and each region's first row tinted half-way to its colour.
/// Returns the number of rows drawn.
pub fn write_png(
    plot: &BytePlot,
    regions: &[Region],
    max_rows: usize,
    out: impl Write,
) -> Result<usize, ImageError> {
    if plot.bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    let rows = plot.height().min(max_rows.max(1));
    let w = MARGIN + plot.width;
    let mut enc = png::Encoder::new(out, w as u32, rows as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header()?;
    let mut data = vec![0u8; w * rows * 3];
    // Which region starts each row; regions later in the list win (sections over headers).
    let mut row_region: Vec<Option<usize>> = vec![None; rows];
    let mut first_rows: Vec<(usize, usize)> = Vec::new();
    for (i, r) in regions.iter().enumerate() {
        if r.end <= r.start {
            continue;
        }
        let (a, b) = (plot.row_of(r.start), plot.row_of(r.end - 1));
        for slot in row_region.iter_mut().take(b.saturating_add(1)).skip(a) {
            *slot = Some(i);
        }
        if a < rows {
            first_rows.push((a, i));
        }
    }
    for (y, line) in data.chunks_exact_mut(w * 3).enumerate() {
        let strip = row_region[y].map_or([0, 0, 0], |i| region_colour(regions, i));
        for px in line[..MARGIN * 3].chunks_exact_mut(3) {
            px.copy_from_slice(&strip);
        }
        let start = y * plot.width;
        let end = (start + plot.width).min(plot.bytes.len());
        for (px, &b) in line[MARGIN * 3..]
            .chunks_exact_mut(3)
            .zip(&plot.bytes[start..end])
        {
            px.copy_from_slice(&[b, b, b]);
        }
    }
    for (y, i) in first_rows {
        let c = region_colour(regions, i);
        let line = &mut data[y * w * 3..(y + 1) * w * 3];
        for px in line[MARGIN * 3..].chunks_exact_mut(3) {
            for k in 0..3 {
                px[k] = ((u16::from(px[k]) + u16::from(c[k])) / 2) as u8;
            }
        }
    }
    writer.write_image_data(&data)?;
    writer.finish()?;
    Ok(rows)
}

/// Side of the thumbnail that LBP and co-occurrence statistics are computed on.
pub const THUMB: usize = 64;
const SMALL: usize = 16;
const LEVELS: usize = 16;
const OFFSETS: [(isize, isize); 4] = [(0, 1), (1, 0), (1, 1), (1, -1)];
const GLCM_STATS: [&str; 5] = ["contrast", "homogeneity", "asm", "correlation", "entropy"];
const LBP_BINS: usize = 59;

/// Number of texture columns.
pub const DIM: usize = SMALL * SMALL + LBP_BINS + OFFSETS.len() * GLCM_STATS.len() + 5;

/// Names of the texture columns, in [`texture`]'s order.
pub fn names() -> Vec<String> {
    let mut n = Vec::with_capacity(DIM);
    for y in 0..SMALL {
        for x in 0..SMALL {
            n.push(format!("image_thumb_r{y}_c{x}"));
        }
    }
    for i in 0..LBP_BINS - 1 {
        n.push(format!("image_lbp_uniform{i}"));
    }
    n.push("image_lbp_nonuniform".into());
    for (dy, dx) in OFFSETS {
        for s in GLCM_STATS {
            n.push(format!("image_glcm_{s}_d{dy}_{dx}").replace('-', "m"));
        }
    }
    for s in ["mean", "std", "zero_share", "ff_share", "entropy"] {
        n.push(format!("image_{s}"));
    }
    n
}

/// The plot area-averaged to `side` x `side` (values 0..=1, row-major): each cell is the
/// mean of the block of pixels in its share of the rows and columns (at least one of each,
/// so a plot smaller than the thumbnail is enlarged); pixels past the file's end are black.
pub fn thumbnail(plot: &BytePlot, side: usize) -> Vec<f32> {
    let (w, h) = (plot.width, plot.height().max(1));
    let span = |i: usize, n: usize| {
        let a = i * n / side;
        (a, ((i + 1) * n / side).max(a + 1))
    };
    let mut out = Vec::with_capacity(side * side);
    for y in 0..side {
        let (r0, r1) = span(y, h);
        for x in 0..side {
            let (c0, c1) = span(x, w);
            let mut sum = 0u64;
            for r in r0..r1 {
                let row = plot
                    .bytes
                    .get(r * w + c0..(r * w + c1).min(plot.bytes.len()));
                sum += row.map_or(0, |b| b.iter().map(|&x| u64::from(x)).sum::<u64>());
            }
            let cells = ((r1 - r0) * (c1 - c0)) as f64;
            out.push((sum as f64 / cells / 255.0) as f32);
        }
    }
    out
}

/// Index of each 8-bit LBP code among the 58 uniform ones (at most two 0/1 transitions
/// around the circle), in increasing code order; 58 for the others.
fn uniform_index() -> [u8; 256] {
    let mut map = [58u8; 256];
    let mut next = 0u8;
    for code in 0..256u32 {
        let rotated = ((code >> 1) | ((code & 1) << 7)) & 0xff;
        if (code ^ rotated).count_ones() <= 2 {
            map[code as usize] = next;
            next += 1;
        }
    }
    map
}

/// Haralick's statistics of the symmetric, normalised grey-level co-occurrence matrix of an
/// `n` x `n` image of `levels` grey levels (`q`, row-major) at offset (`dy`, `dx`):
/// contrast, homogeneity, angular second moment (energy squared), correlation (1 for a flat image)
/// and entropy in bits, as scikit-image's `graycomatrix(symmetric=True, normed=True)` and
/// `graycoprops` define them (entropy as `-sum p log2 p`).
fn glcm_stats(q: &[usize], n: usize, levels: usize, dy: isize, dx: isize) -> [f64; 5] {
    let mut m = vec![0f64; levels * levels];
    let mut total = 0f64;
    let n = n as isize;
    for y in 0..n {
        for x in 0..n {
            let (y2, x2) = (y + dy, x + dx);
            if y2 < 0 || y2 >= n || x2 < 0 || x2 >= n {
                continue;
            }
            let (a, b) = (q[(y * n + x) as usize], q[(y2 * n + x2) as usize]);
            m[a * levels + b] += 1.0;
            m[b * levels + a] += 1.0;
            total += 2.0;
        }
    }
    if total == 0.0 {
        return [0.0, 1.0, 1.0, 1.0, 0.0];
    }
    let cells = || (0..levels).flat_map(move |i| (0..levels).map(move |j| (i, j)));
    let p = |i: usize, j: usize| m[i * levels + j] / total;
    let (mut contrast, mut homogeneity, mut energy, mut entropy, mut mean) =
        (0.0, 0.0, 0.0, 0.0, 0.0);
    for (i, j) in cells() {
        let pij = p(i, j);
        let d = i as f64 - j as f64;
        contrast += pij * d * d;
        homogeneity += pij / (1.0 + d * d);
        energy += pij * pij;
        if pij > 0.0 {
            entropy -= pij * pij.log2();
        }
        mean += i as f64 * pij;
    }
    // Symmetric: both marginals have the same mean and variance.
    let var: f64 = cells()
        .map(|(i, j)| (i as f64 - mean).powi(2) * p(i, j))
        .sum();
    let correlation = if var > 0.0 {
        cells()
            .map(|(i, j)| (i as f64 - mean) * (j as f64 - mean) * p(i, j))
            .sum::<f64>()
            / var
    } else {
        1.0
    };
    [contrast, homogeneity, energy, correlation, entropy]
}

/// Texture descriptors of a file's byte plot (see the crate docs; [`names`] in order).
pub fn texture(bytes: &[u8]) -> Vec<f32> {
    let mut v = Vec::with_capacity(DIM);
    if bytes.is_empty() {
        v.resize(DIM, 0.0);
        return v;
    }
    let plot = BytePlot::new(bytes);
    v.extend(thumbnail(&plot, SMALL));
    let t = thumbnail(&plot, THUMB);
    let at = |y: isize, x: isize| t[(y as usize) * THUMB + x as usize];
    // Uniform LBP, 8 neighbours at distance 1, on the inner 62 x 62 pixels.
    let map = uniform_index();
    let mut lbp = [0f32; LBP_BINS];
    const RING: [(isize, isize); 8] = [
        (-1, -1),
        (-1, 0),
        (-1, 1),
        (0, 1),
        (1, 1),
        (1, 0),
        (1, -1),
        (0, -1),
    ];
    let n = THUMB as isize;
    for y in 1..n - 1 {
        for x in 1..n - 1 {
            let c = at(y, x);
            let code = RING.iter().enumerate().fold(0usize, |acc, (k, (dy, dx))| {
                acc | (usize::from(at(y + dy, x + dx) >= c) << k)
            });
            lbp[usize::from(map[code])] += 1.0;
        }
    }
    let inner = ((THUMB - 2) * (THUMB - 2)) as f32;
    v.extend(lbp.iter().map(|c| c / inner));
    // Grey-level co-occurrence, 16 levels, symmetric, normalised, per offset.
    let q: Vec<usize> = t
        .iter()
        .map(|&x| ((x * LEVELS as f32) as usize).min(LEVELS - 1))
        .collect();
    for (dy, dx) in OFFSETS {
        v.extend(glcm_stats(&q, THUMB, LEVELS, dy, dx).map(|x| x as f32));
    }
    // Global byte statistics.
    let mut hist = [0u64; 256];
    for &b in bytes {
        hist[usize::from(b)] += 1;
    }
    let len = bytes.len() as f64;
    let mean = hist
        .iter()
        .enumerate()
        .map(|(b, &c)| b as f64 * c as f64)
        .sum::<f64>()
        / len;
    let var = hist
        .iter()
        .enumerate()
        .map(|(b, &c)| (b as f64 - mean).powi(2) * c as f64)
        .sum::<f64>()
        / len;
    let entropy: f64 = hist
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / len;
            -p * p.log2()
        })
        .sum();
    v.extend(
        [
            mean / 255.0,
            var.sqrt() / 255.0,
            hist[0] as f64 / len,
            hist[255] as f64 / len,
            entropy / 8.0,
        ]
        .map(|x| x as f32),
    );
    debug_assert_eq!(v.len(), DIM);
    v
}

#[cfg(test)]
mod tests;
