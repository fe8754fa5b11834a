//! Hand-written SVG: no plotting dependency, no system fonts needed at build time.
//! Text uses a generic sans-serif stack; widths are estimated (0.6 em per char).

use std::fmt::Write;

use crate::roc::{drop_intermediate, RocPoint};
use crate::Evaluation;

const FONT: &str = "DejaVu Sans, Helvetica, Arial, sans-serif";
const PALETTE: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

/// One curve for [`roc_svg`].
#[derive(Debug, Clone, Copy)]
pub struct RocSeries<'a> {
    pub name: &'a str,
    pub points: &'a [RocPoint],
    pub auc: Option<f64>,
}

impl<'a> RocSeries<'a> {
    /// The binary ROC curve of an evaluation, if it has one.
    pub fn from_eval(name: &'a str, e: &'a Evaluation) -> Option<Self> {
        e.roc().map(|points| RocSeries {
            name,
            points,
            auc: e.roc_auc,
        })
    }
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if c.is_control() => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

fn text_width(s: &str, font_px: f64) -> f64 {
    s.chars().count() as f64 * font_px * 0.6
}

fn shorten(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max_chars.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn header(s: &mut String, w: f64, h: f64) {
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="{FONT}">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
}

fn text(s: &mut String, x: f64, y: f64, size: f64, anchor: &str, extra: &str, body: &str) {
    let _ = writeln!(
        s,
        r#"<text x="{x:.1}" y="{y:.1}" font-size="{size}" text-anchor="{anchor}" {extra}>{}</text>"#,
        esc(body)
    );
}

fn percent_label(v: f64) -> String {
    let p = v * 100.0;
    if p >= 1.0 {
        format!("{p:.0}%")
    } else {
        // 0.1%, 0.01%, ... without trailing noise.
        let digits = (-p.log10()).ceil() as usize;
        format!("{p:.digits$}%")
    }
}

/// ROC curves as an SVG document: axes, grid, chance diagonal, one line per
/// series and a legend with AUCs.
///
/// `log_fpr` puts FPR on a log axis, which is where detectors are compared
/// (0.1 % and 1 % FPR); FPR = 0 points are drawn on the left edge.
pub fn roc_svg(series: &[RocSeries<'_>], title: &str, log_fpr: bool) -> String {
    let (l, t, size) = (76.0, 52.0, 420.0);
    let (w, h) = (l + size + 28.0, t + size + 66.0);
    // Log axis starts at the decade below the smallest non-zero FPR, within [1e-6, 1e-3] so
    // that both headline limits (0.1 % and 1 %) are on the axis.
    let min_pos = series
        .iter()
        .flat_map(|s| s.points.iter())
        .map(|p| p.fpr)
        .filter(|&f| f > 0.0 && f.is_finite())
        .fold(1.0f64, f64::min);
    let decades = (-min_pos.log10()).ceil().clamp(3.0, 6.0) as i32;
    let x_min = 10f64.powi(-decades);
    let px = |fpr: f64| -> f64 {
        let u = if log_fpr {
            (fpr.max(x_min).log10() + decades as f64) / decades as f64
        } else {
            fpr
        };
        l + u.clamp(0.0, 1.0) * size
    };
    let py = |tpr: f64| t + (1.0 - tpr.clamp(0.0, 1.0)) * size;

    let mut s = String::new();
    header(&mut s, w, h);
    text(
        &mut s,
        w / 2.0,
        30.0,
        16.0,
        "middle",
        r#"font-weight="bold""#,
        title,
    );

    // Grid and tick labels.
    let xt: Vec<(f64, String)> = if log_fpr {
        (0..=decades)
            .map(|d| {
                let v = 10f64.powi(d - decades);
                (v, percent_label(v))
            })
            .collect()
    } else {
        (0..=5)
            .map(|i| (i as f64 / 5.0, format!("{:.1}", i as f64 / 5.0)))
            .collect()
    };
    for (v, lab) in &xt {
        let x = px(*v);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{t}" x2="{x:.1}" y2="{}" stroke="#e3e3e3"/>"##,
            t + size
        );
        text(&mut s, x, t + size + 18.0, 12.0, "middle", "", lab);
    }
    for i in 0..=5 {
        let v = i as f64 / 5.0;
        let y = py(v);
        let _ = writeln!(
            s,
            r##"<line x1="{l}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#e3e3e3"/>"##,
            l + size
        );
        text(
            &mut s,
            l - 8.0,
            y + 4.0,
            12.0,
            "end",
            "",
            &format!("{v:.1}"),
        );
    }
    let _ = writeln!(
        s,
        r##"<rect x="{l}" y="{t}" width="{size}" height="{size}" fill="none" stroke="#444"/>"##
    );
    let xlabel = if log_fpr {
        "False positive rate (log scale)"
    } else {
        "False positive rate"
    };
    text(
        &mut s,
        l + size / 2.0,
        t + size + 44.0,
        13.0,
        "middle",
        "",
        xlabel,
    );
    let (yx, yy) = (l - 46.0, t + size / 2.0);
    text(
        &mut s,
        yx,
        yy,
        13.0,
        "middle",
        &format!(r#"transform="rotate(-90 {yx} {yy})""#),
        "True positive rate",
    );

    // Chance line, clipped curves.
    let _ = writeln!(
        s,
        r#"<clipPath id="plot"><rect x="{l}" y="{t}" width="{size}" height="{size}"/></clipPath>"#
    );
    let diag: Vec<(f64, f64)> = if log_fpr {
        (0..=60)
            .map(|i| {
                let v = 10f64.powf(-(decades as f64) * (1.0 - i as f64 / 60.0));
                (px(v), py(v))
            })
            .collect()
    } else {
        vec![(px(0.0), py(0.0)), (px(1.0), py(1.0))]
    };
    polyline(&mut s, &diag, "#999", 1.2, r#"stroke-dasharray="5,4""#);
    for (i, ser) in series.iter().enumerate() {
        let pts: Vec<(f64, f64)> = drop_intermediate(ser.points)
            .iter()
            .map(|p| (px(p.fpr), py(p.tpr)))
            .collect();
        polyline(&mut s, &pts, PALETTE[i % PALETTE.len()], 2.0, "");
    }

    // Legend, bottom right inside the plot (the empty corner of a ROC plot).
    let entries: Vec<String> = series
        .iter()
        .map(|ser| match ser.auc {
            Some(a) => format!("{} (AUC = {a:.4})", shorten(ser.name, 40)),
            None => shorten(ser.name, 40),
        })
        .chain(std::iter::once("chance".to_string()))
        .collect();
    let lw = entries
        .iter()
        .map(|e| text_width(e, 12.0))
        .fold(0.0, f64::max)
        + 44.0;
    let lh = entries.len() as f64 * 18.0 + 10.0;
    let (lx, ly) = (l + size - 10.0 - lw, t + size - 10.0 - lh);
    let _ = writeln!(
        s,
        r##"<rect x="{lx:.1}" y="{ly:.1}" width="{lw:.1}" height="{lh:.1}" fill="white" fill-opacity="0.9" stroke="#bbb"/>"##
    );
    for (i, e) in entries.iter().enumerate() {
        let y = ly + 18.0 * (i as f64 + 1.0);
        let (color, dash) = if i < series.len() {
            (PALETTE[i % PALETTE.len()], "")
        } else {
            ("#999", r#"stroke-dasharray="5,4""#)
        };
        let _ = writeln!(
            s,
            r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="2" {dash}/>"#,
            lx + 8.0,
            y - 4.0,
            lx + 32.0,
            y - 4.0
        );
        text(&mut s, lx + 38.0, y, 12.0, "start", "", e);
    }
    s.push_str("</svg>\n");
    s
}

/// Polyline in pixel space; consecutive points closer than 0.1 px are merged so
/// curves with many thousand thresholds stay small.
fn polyline(s: &mut String, pts: &[(f64, f64)], color: &str, width: f64, extra: &str) {
    let mut out = String::new();
    let mut last: Option<(i64, i64)> = None;
    for &(x, y) in pts {
        let q = ((x * 10.0).round() as i64, (y * 10.0).round() as i64);
        if last != Some(q) {
            let _ = write!(out, "{:.1},{:.1} ", q.0 as f64 / 10.0, q.1 as f64 / 10.0);
            last = Some(q);
        }
    }
    let _ = writeln!(
        s,
        r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="{width}" stroke-linejoin="round" clip-path="url(#plot)" {extra}/>"#,
        out.trim_end()
    );
}

/// Confusion matrix as an SVG document: rows = true class, columns = predicted.
///
/// Cell colour is the share of the row (recall per true class), so imbalanced
/// classes stay readable; each cell shows the count and that share.
pub fn confusion_svg(labels: &[String], matrix: &[Vec<u64>], title: &str) -> String {
    let k = labels.len().max(matrix.len()).max(1);
    let names: Vec<String> = (0..k)
        .map(|i| shorten(labels.get(i).map_or("?", |s| s.as_str()), 22))
        .collect();
    let cell = (420.0 / k as f64).clamp(36.0, 110.0);
    let label_w = names
        .iter()
        .map(|n| text_width(n, 13.0))
        .fold(0.0, f64::max);
    let rotate = label_w > cell - 8.0;
    let left = 40.0 + label_w + 12.0;
    let top = 76.0;
    let bottom = if rotate { label_w * 0.6 + 56.0 } else { 64.0 };
    let w = (left + k as f64 * cell + 30.0).max(text_width(title, 16.0) + 40.0);
    let h = top + k as f64 * cell + bottom;

    let mut s = String::new();
    header(&mut s, w, h);
    text(
        &mut s,
        w / 2.0,
        30.0,
        16.0,
        "middle",
        r#"font-weight="bold""#,
        title,
    );
    text(
        &mut s,
        w / 2.0,
        50.0,
        11.0,
        "middle",
        r##"fill="#555""##,
        "colour = share of the true class (row)",
    );

    let count_px = (cell / 3.6).clamp(10.0, 18.0);
    for r in 0..k {
        let row = matrix.get(r).map_or(&[][..], |v| v.as_slice());
        let total: u64 = row.iter().sum();
        for c in 0..k {
            let v = row.get(c).copied().unwrap_or(0);
            let frac = if total == 0 {
                0.0
            } else {
                v as f64 / total as f64
            };
            // White (247,251,255) to dark blue (8,48,107).
            let mix = |a: f64, b: f64| (a + (b - a) * frac).round() as u8;
            let fill = format!(
                "#{:02x}{:02x}{:02x}",
                mix(247.0, 8.0),
                mix(251.0, 48.0),
                mix(255.0, 107.0)
            );
            let (x, y) = (left + c as f64 * cell, top + r as f64 * cell);
            let _ = writeln!(
                s,
                r##"<rect x="{x:.1}" y="{y:.1}" width="{cell:.1}" height="{cell:.1}" fill="{fill}" stroke="#fff"/>"##
            );
            let ink = if frac > 0.5 { "#fff" } else { "#111" };
            let cx = x + cell / 2.0;
            if cell >= 56.0 {
                text(
                    &mut s,
                    cx,
                    y + cell / 2.0,
                    count_px,
                    "middle",
                    &format!(r#"fill="{ink}" font-weight="bold""#),
                    &v.to_string(),
                );
                let pct = if total == 0 {
                    "–".to_string()
                } else {
                    format!("{:.1}%", frac * 100.0)
                };
                text(
                    &mut s,
                    cx,
                    y + cell / 2.0 + count_px,
                    11.0,
                    "middle",
                    &format!(r#"fill="{ink}""#),
                    &pct,
                );
            } else {
                text(
                    &mut s,
                    cx,
                    y + cell / 2.0 + count_px * 0.35,
                    count_px,
                    "middle",
                    &format!(r#"fill="{ink}""#),
                    &v.to_string(),
                );
            }
        }
    }
    let _ = writeln!(
        s,
        r##"<rect x="{left:.1}" y="{top:.1}" width="{0:.1}" height="{0:.1}" fill="none" stroke="#444"/>"##,
        k as f64 * cell
    );
    for (i, n) in names.iter().enumerate() {
        let mid = i as f64 * cell + cell / 2.0;
        text(&mut s, left - 8.0, top + mid + 4.5, 13.0, "end", "", n);
        let (x, y) = (left + mid, top + k as f64 * cell + 18.0);
        if rotate {
            text(
                &mut s,
                x + 4.0,
                y - 4.0,
                13.0,
                "end",
                &format!(r#"transform="rotate(-35 {:.1} {:.1})""#, x + 4.0, y - 4.0),
                n,
            );
        } else {
            text(&mut s, x, y, 13.0, "middle", "", n);
        }
    }
    let grid = k as f64 * cell;
    text(
        &mut s,
        left + grid / 2.0,
        h - 14.0,
        13.0,
        "middle",
        r#"font-weight="bold""#,
        "Predicted class",
    );
    let (yx, yy) = (20.0, top + grid / 2.0);
    text(
        &mut s,
        yx,
        yy,
        13.0,
        "middle",
        &format!(r#"font-weight="bold" transform="rotate(-90 {yx} {yy})""#),
        "True class",
    );
    s.push_str("</svg>\n");
    s
}

/// Where the scores of attacked files went: for every score `x` on a logit axis, the share
/// of files scoring at least `x` before the attack (blue) and after it (red), and the
/// model's threshold (dashed). The share of detected files left above the threshold after
/// the attack is where the red curve crosses the dashed line.
pub fn score_shift_svg(before: &[f32], after: &[f32], threshold: f32, title: &str) -> String {
    let (l, t, pw, ph) = (76.0, 52.0, 520.0, 320.0);
    let (w, h) = (l + pw + 28.0, t + ph + 82.0);
    // logit from 1e-4 to 1 - 1e-7: scores of detectors pile up near 1.
    let logit = |p: f64| {
        let p = p.clamp(1e-9, 1.0 - 1e-9);
        (p / (1.0 - p)).ln()
    };
    let (lo, hi) = (logit(1e-4), logit(1.0 - 1e-7));
    let px = |p: f64| l + ((logit(p) - lo) / (hi - lo)).clamp(0.0, 1.0) * pw;
    let py = |share: f64| t + (1.0 - share.clamp(0.0, 1.0)) * ph;
    let mut s = String::new();
    header(&mut s, w, h);
    text(
        &mut s,
        w / 2.0,
        30.0,
        16.0,
        "middle",
        r#"font-weight="bold""#,
        title,
    );
    for p in [1e-4, 0.01, 0.5, 0.99, 0.9999, 1.0 - 1e-6] {
        let x = px(p);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{t}" x2="{x:.1}" y2="{:.1}" stroke="#e5e5e5"/>"##,
            t + ph
        );
        let label = if p < 0.5 {
            format!("{p}")
        } else {
            let nines = (-(1.0 - p).log10()).round() as usize;
            if nines <= 1 {
                format!("{p}")
            } else {
                format!("0.{}", "9".repeat(nines))
            }
        };
        text(&mut s, x, t + ph + 18.0, 11.0, "middle", "", &label);
    }
    for i in 0..=4 {
        let v = i as f64 / 4.0;
        let y = py(v);
        let _ = writeln!(
            s,
            r##"<line x1="{l}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e5e5e5"/>"##,
            l + pw
        );
        text(
            &mut s,
            l - 8.0,
            y + 4.0,
            11.0,
            "end",
            "",
            &format!("{:.0}%", v * 100.0),
        );
    }
    let _ = writeln!(
        s,
        r##"<rect x="{l}" y="{t}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>"##
    );
    text(
        &mut s,
        l + pw / 2.0,
        t + ph + 40.0,
        12.0,
        "middle",
        "",
        "score (logit axis)",
    );
    text(
        &mut s,
        18.0,
        t + ph / 2.0,
        12.0,
        "middle",
        &format!(r#"transform="rotate(-90 18 {:.1})""#, t + ph / 2.0),
        "files scoring at least this",
    );
    // Survival curves as steps, from the left edge down.
    for (scores, colour) in [(before, PALETTE[0]), (after, PALETTE[1])] {
        let mut v: Vec<f64> = scores
            .iter()
            .map(|&x| f64::from(x))
            .filter(|x| x.is_finite())
            .collect();
        if v.is_empty() {
            continue;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len() as f64;
        let mut d = format!("M{:.1},{:.1}", l, py(1.0));
        for (i, x) in v.iter().enumerate() {
            let share = (v.len() - i) as f64 / n;
            let _ = write!(d, " L{:.1},{:.1}", px(*x), py(share));
            let _ = write!(d, " L{:.1},{:.1}", px(*x), py(share - 1.0 / n));
        }
        let _ = write!(d, " L{:.1},{:.1}", l + pw, py(0.0));
        let _ = writeln!(
            s,
            r#"<path d="{d}" fill="none" stroke="{colour}" stroke-width="2"/>"#
        );
    }
    let x = px(f64::from(threshold));
    let _ = writeln!(
        s,
        r##"<line x1="{x:.1}" y1="{t}" x2="{x:.1}" y2="{:.1}" stroke="#333" stroke-dasharray="5,4"/>"##,
        t + ph
    );
    let legend = [
        (PALETTE[0], format!("before ({} files)", before.len())),
        (
            PALETTE[1],
            format!("after the attack ({} files)", after.len()),
        ),
        ("#333", format!("threshold {threshold:.4}")),
    ];
    for (i, (colour, name)) in legend.iter().enumerate() {
        let y = t + ph + 62.0;
        let x0 = l + i as f64 * 180.0;
        let _ = writeln!(
            s,
            r#"<line x1="{x0:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="2"/>"#,
            y - 4.0,
            x0 + 22.0,
            y - 4.0
        );
        text(&mut s, x0 + 28.0, y, 11.0, "start", "", &shorten(name, 26));
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roc_curve;

    #[test]
    fn score_shift_svg_puts_scores_on_a_logit_axis() {
        // One file at 0.5: logit 0 sits at (0 - ln(1e-4/(1-1e-4))) / (ln((1-1e-7)/1e-7) -
        // ln(1e-4/(1-1e-4))) = 9.2102 / 25.3283 = 0.36363 of 520 px, after the 76 px margin.
        let svg = score_shift_svg(&[0.5], &[0.5], 0.5, "a & b");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("a &amp; b"));
        assert!(
            svg.contains(r#"d="M76.0,52.0 L265.1,52.0 L265.1,372.0 L596.0,372.0""#),
            "{svg}"
        );
        assert!(svg.contains(r##"x1="265.1" y1="52" x2="265.1" y2="372.0" stroke="#333""##));
        // Half the files above 0.99 after: the red curve steps down at 0.01 and at 0.999.
        let svg = score_shift_svg(&[0.999, 0.999], &[0.01, 0.999], 0.99, "t");
        assert!(svg.contains("before (2 files)") && svg.contains("threshold 0.9900"));
        assert_eq!(svg.matches("<path").count(), 2);
        // Nothing attacked: still a valid picture.
        let empty = score_shift_svg(&[], &[], 0.9, "none");
        assert!(empty.trim_end().ends_with("</svg>") && !empty.contains("<path"));
    }

    #[test]
    fn roc_svg_is_well_formed_and_maps_points() {
        let c = roc_curve(&[true, false, true, false], &[0.9, 0.8, 0.7, 0.1]).unwrap();
        let svg = roc_svg(
            &[RocSeries {
                name: "a<b",
                points: &c,
                auc: Some(0.75),
            }],
            "ROC",
            false,
        );
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("a&lt;b (AUC = 0.7500)"));
        // Points (0,0) (0,.5) (.5,.5) (.5,1) (1,1); (.5,.5) is not collinear so stays.
        // x = 76 + fpr*420, y = 52 + (1-tpr)*420.
        assert!(
            svg.contains(r#"points="76.0,472.0 76.0,262.0 286.0,262.0 286.0,52.0 496.0,52.0""#),
            "{svg}"
        );
        let log = roc_svg(
            &[RocSeries {
                name: "m",
                points: &c,
                auc: None,
            }],
            "ROC",
            true,
        );
        assert!(log.contains(">0.1%<") && log.contains(">100%<"));
        // Empty input still gives a valid (empty) plot.
        assert!(roc_svg(&[], "", true).contains("</svg>"));
    }

    #[test]
    fn confusion_svg_counts_and_colours() {
        let labels = vec!["benign".to_string(), "malicious & co".to_string()];
        let m = vec![vec![254, 2], vec![32, 224]];
        let svg = confusion_svg(&labels, &m, "Confusion");
        for needle in [
            ">254<",
            ">2<",
            ">32<",
            ">224<",
            "malicious &amp; co",
            "99.2%",
            "87.5%",
        ] {
            assert!(svg.contains(needle), "{needle}");
        }
        // Zero row and a ragged matrix do not panic.
        let svg = confusion_svg(&labels, &[vec![0, 0]], "x");
        assert!(svg.contains(">0<"));
    }

    #[test]
    fn percent_labels() {
        assert_eq!(percent_label(1e-3), "0.1%");
        assert_eq!(percent_label(1e-4), "0.01%");
        assert_eq!(percent_label(1e-2), "1%");
        assert_eq!(percent_label(1.0), "100%");
    }
}
