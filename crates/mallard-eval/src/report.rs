use std::fmt::Write;

use crate::Evaluation;

fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{x:.4}"))
}

/// Plain-text report for a terminal: headline metrics, per-class scores and the
/// confusion matrix with class names (rows = true, columns = predicted).
pub fn render_table(e: &Evaluation) -> String {
    let mut s = String::new();
    let mut head = format!("n = {}", e.n);
    if let (Some(label), Some(t)) = (&e.positive_label, e.threshold) {
        let _ = write!(head, "   positive = {label}   threshold = {t}");
    }
    let _ = writeln!(s, "{head}\n");

    let tpr = e.tpr_at_fpr;
    let rows: Vec<(&str, Option<f64>)> = vec![
        ("accuracy", Some(e.accuracy)),
        ("roc_auc", e.roc_auc),
        ("tpr @ fpr <= 0.1%", tpr.map(|t| t.fpr_0_001)),
        ("tpr @ fpr <= 1%", tpr.map(|t| t.fpr_0_01)),
        ("precision", e.precision),
        ("recall", e.recall),
        ("f1", e.f1),
        ("macro_f1", Some(e.macro_f1)),
        ("log_loss", Some(e.log_loss)),
    ];
    let binary = e.positive.is_some();
    for (name, v) in rows {
        // Binary-only rows are noise in a multi-class report.
        if v.is_none() && !binary && name != "roc_auc" {
            continue;
        }
        let _ = writeln!(s, "{name:<20}{:>10}", num(v));
    }

    let w = e
        .labels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0)
        .max("true \\ pred".len())
        + 2;
    let _ = writeln!(
        s,
        "\n{:<w$}{:>10}{:>10}{:>10}{:>10}",
        "class", "precision", "recall", "f1", "support"
    );
    for c in &e.per_class {
        let _ = writeln!(
            s,
            "{:<w$}{:>10.4}{:>10.4}{:>10.4}{:>10}",
            c.label, c.precision, c.recall, c.f1, c.support
        );
    }

    // Long class names would make every column wide: then the columns are headed
    // by class index and the rows say which index is which.
    let long = e.labels.iter().any(|l| l.chars().count() > 12);
    let heads: Vec<String> = if long {
        (0..e.labels.len()).map(|i| format!("[{i}]")).collect()
    } else {
        e.labels.clone()
    };
    let rows: Vec<String> = if long {
        e.labels
            .iter()
            .enumerate()
            .map(|(i, l)| format!("[{i}] {l}"))
            .collect()
    } else {
        e.labels.clone()
    };
    let w = rows
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0)
        .max(w - 2)
        + 2;
    let cw = heads
        .iter()
        .map(|l| l.chars().count())
        .chain(
            e.confusion_matrix
                .iter()
                .flatten()
                .map(|v| v.to_string().len()),
        )
        .max()
        .unwrap_or(1)
        + 2;
    let _ = writeln!(s, "\nconfusion matrix (rows = true, columns = predicted)");
    let _ = write!(s, "{:<w$}", "true \\ pred");
    for h in &heads {
        let _ = write!(s, "{h:>cw$}");
    }
    s.push('\n');
    for (l, row) in rows.iter().zip(&e.confusion_matrix) {
        let _ = write!(s, "{l:<w$}");
        for v in row {
            let _ = write!(s, "{v:>cw$}");
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate;

    #[test]
    fn table_has_aligned_matrix_and_metrics() {
        let labels = vec!["benign".to_string(), "malicious".to_string()];
        let e = evaluate(
            &labels,
            &[0, 0, 1, 1, 1],
            &[0.1, 0.6, 0.9, 0.8, 0.2],
            None,
            None,
        )
        .unwrap();
        let t = render_table(&e);
        assert!(t.contains("positive = malicious"), "{t}");
        assert!(t.contains("accuracy                0.6000"), "{t}");
        let m: Vec<&str> = t
            .lines()
            .skip_while(|l| !l.starts_with("true"))
            .take(3)
            .collect();
        assert_eq!(m[0], "true \\ pred       benign  malicious");
        assert_eq!(m[1], "benign                 1          1");
        assert_eq!(m[2], "malicious              1          2");
    }

    #[test]
    fn long_labels_use_index_headers() {
        let labels: Vec<String> = ["benign", "a-very-long-family-name"]
            .map(String::from)
            .to_vec();
        let e = evaluate(&labels, &[0, 1], &[0.9, 0.1, 0.2, 0.8], None, None).unwrap();
        let t = render_table(&e);
        let m: Vec<&str> = t
            .lines()
            .skip_while(|l| !l.starts_with("true"))
            .take(3)
            .collect();
        assert_eq!(m[0], "true \\ pred                    [0]  [1]");
        assert_eq!(m[2], "[1] a-very-long-family-name      0    1");
    }
}
