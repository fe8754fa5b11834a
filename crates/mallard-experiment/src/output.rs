//! What `eval` and `cv` write: prediction lines, a JSON report, ROC and confusion pictures.

use crate::Error;
use mallard_eval::{confusion_svg, roc_svg, Evaluation, RocSeries};
use std::io::Write;
use std::path::Path;

fn write_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |error| Error::Write {
        path: path.display().to_string(),
        error,
    }
}

/// One JSON line per row: id, true label, predicted label, class probabilities
/// (`probs` row-major `[rows, labels]`), and `"domain": false` for a row that `outside`
/// marks as outside the model's domain (rows past its end are inside).
pub fn write_predictions(
    path: &Path,
    labels: &[String],
    ids: &[&str],
    y: &[usize],
    probs: &[f32],
    outside: &[bool],
) -> Result<(), Error> {
    let k = labels.len();
    let f = std::fs::File::create(path).map_err(write_err(path))?;
    let mut w = std::io::BufWriter::new(f);
    for (i, (id, &t)) in ids.iter().zip(y).enumerate() {
        let p = probs.get(i * k..(i + 1) * k).unwrap_or(&[]);
        let best = (0..p.len()).fold(0, |b, j| if p[j] > p[b] { j } else { b });
        let mut row = serde_json::json!({ "id": id, "label": labels.get(t), "predicted": labels.get(best), "probs": p });
        if outside.get(i) == Some(&true) {
            row["domain"] = false.into();
        }
        writeln!(w, "{row}").map_err(write_err(path))?;
    }
    w.flush().map_err(write_err(path))
}

/// The evaluation as pretty JSON, with `extra`'s fields (model, dataset, timings) merged in.
pub fn write_report(path: &Path, ev: &Evaluation, extra: serde_json::Value) -> Result<(), Error> {
    let mut j = serde_json::to_value(ev).map_err(|e| write_err(path)(e.into()))?;
    if let (Some(o), serde_json::Value::Object(x)) = (j.as_object_mut(), extra) {
        o.extend(x);
    }
    let text = serde_json::to_string_pretty(&j).map_err(|e| write_err(path)(e.into()))?;
    std::fs::write(path, text + "\n").map_err(write_err(path))
}

/// The JSON report (with `extra` fields) and the plots, each where asked.
pub fn write_outputs(
    ev: &Evaluation,
    title: &str,
    report: Option<&Path>,
    plots: Option<&Path>,
    extra: serde_json::Value,
) -> Result<(), Error> {
    if let Some(out) = report {
        write_report(out, ev, extra)?;
    }
    if let Some(dir) = plots {
        write_plots(dir, ev, title)?;
    }
    Ok(())
}

/// `roc.svg` (two-class evaluations) and `confusion.svg` in `dir`, created if needed.
pub fn write_plots(dir: &Path, ev: &Evaluation, title: &str) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(write_err(dir))?;
    if let Some(points) = ev.roc() {
        let s = [RocSeries {
            name: title,
            points,
            auc: ev.roc_auc,
        }];
        let p = dir.join("roc.svg");
        std::fs::write(&p, roc_svg(&s, &format!("ROC: {title}"), true)).map_err(write_err(&p))?;
    }
    let p = dir.join("confusion.svg");
    let svg = confusion_svg(
        &ev.labels,
        &ev.confusion_matrix,
        &format!("Confusion matrix: {title}"),
    );
    std::fs::write(&p, svg).map_err(write_err(&p))
}

/// The datasets' file names for titles: `train.csv + benign.jsonl`.
pub fn dataset_names(specs: &[mallard_datasets::DatasetSpec]) -> String {
    specs
        .iter()
        .map(|a| {
            a.path.file_name().map_or_else(
                || a.path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        })
        .collect::<Vec<_>>()
        .join(" + ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prediction_lines_name_the_most_probable_class() {
        let d = std::env::temp_dir().join(format!("mallard-exp-pred-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("p.jsonl");
        let labels = ["benign".to_string(), "malicious".to_string()];
        write_predictions(
            &p,
            &labels,
            &["a", "b"],
            &[0, 1],
            &[0.3, 0.7, 0.9, 0.1],
            &[false, true],
        )
        .unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let rows: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["id"], "a");
        assert_eq!(rows[0]["label"], "benign");
        assert_eq!(rows[0]["predicted"], "malicious");
        assert_eq!(rows[1]["predicted"], "benign");
        // Only a row outside the model's domain says so.
        assert!(rows[0].get("domain").is_none());
        assert_eq!(rows[1]["domain"], false);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
