//! Folds fixed ahead of time, so that several detectors trained on the same files (trees on
//! EMBER features, opcode trees, MalConv on the raw bytes) test every file in the same fold,
//! and a stack fitted on their out-of-fold predictions is cross-fitted over those folds.
//!
//! The file is tab-separated text, one `SHA256<TAB>FOLD` line per file (folds numbered from
//! 1), an optional `sha256<TAB>fold` header, blank lines and `#` comments allowed.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::EvalError;

/// Largest fold number a plan may use: far more than any cross-validation asks for, small
/// enough that a stray number cannot make a caller allocate for it.
pub const MAX_FOLDS: usize = 1000;

/// A fold per file, by lower-case sha256.
#[derive(Clone, Debug, PartialEq)]
pub struct FoldPlan {
    by_key: HashMap<String, usize>,
    k: usize,
}

fn bad(line: usize, why: impl Into<String>) -> EvalError {
    EvalError::FoldPlan(format!("line {line}: {}", why.into()))
}

impl FoldPlan {
    /// Parses the text of a fold file (see the module's docs).
    pub fn parse(text: &str) -> Result<FoldPlan, EvalError> {
        let mut by_key = HashMap::new();
        let mut k = 0;
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let mut cells = line.split('\t');
            let (Some(key), Some(fold), None) = (cells.next(), cells.next(), cells.next()) else {
                return Err(bad(n, "expected SHA256<TAB>FOLD"));
            };
            if n == 1 && key.eq_ignore_ascii_case("sha256") && fold.eq_ignore_ascii_case("fold") {
                continue;
            }
            let key = key.trim().to_ascii_lowercase();
            if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad(n, format!("{key:?} is not a sha256")));
            }
            let fold: usize = match fold.trim().parse() {
                Ok(f) if (1..=MAX_FOLDS).contains(&f) => f,
                _ => {
                    return Err(bad(
                        n,
                        format!("fold {fold:?} is not a number in 1..={MAX_FOLDS}"),
                    ))
                }
            };
            if let Some(old) = by_key.insert(key.clone(), fold - 1) {
                if old != fold - 1 {
                    return Err(bad(
                        n,
                        format!("{key} is in fold {} and fold {fold}", old + 1),
                    ));
                }
            }
            k = k.max(fold);
        }
        if by_key.is_empty() {
            return Err(EvalError::FoldPlan("no files in the fold file".into()));
        }
        Ok(FoldPlan { by_key, k })
    }

    /// The highest fold number: how many folds the plan has.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Files in the plan.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether the plan lists no file (never true for a parsed plan).
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Each fold's test rows (ascending) for rows with these sha256 keys. Every key must be
    /// in the plan (a row missing from it could land in no fold or any fold, and either is a
    /// different experiment), and every fold must test at least one row.
    pub fn folds<S: AsRef<str>>(&self, keys: &[S]) -> Result<Vec<Vec<usize>>, EvalError> {
        let mut folds = vec![Vec::new(); self.k];
        let mut missing = Vec::new();
        for (row, key) in keys.iter().enumerate() {
            match self.by_key.get(&key.as_ref().to_ascii_lowercase()) {
                Some(&f) => folds[f].push(row),
                None => missing.push(key.as_ref()),
            }
        }
        if let Some(first) = missing.first() {
            return Err(EvalError::FoldPlan(format!(
                "{} of {} rows are not in the fold file, e.g. {first}",
                missing.len(),
                keys.len()
            )));
        }
        if let Some(f) = folds.iter().position(Vec::is_empty) {
            return Err(EvalError::FoldPlan(format!(
                "fold {} of {} tests none of these rows",
                f + 1,
                self.k
            )));
        }
        Ok(folds)
    }

    /// The text of a fold file giving row `i` (key `keys[i]`) the fold whose test rows hold
    /// it. Rows in no fold are left out; a key seen twice keeps its first fold.
    pub fn render<S: AsRef<str>>(keys: &[S], folds: &[Vec<usize>]) -> String {
        let mut fold_of = vec![None; keys.len()];
        for (f, rows) in folds.iter().enumerate() {
            for &r in rows {
                if let Some(slot) = fold_of.get_mut(r) {
                    slot.get_or_insert(f);
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        let mut out = String::from("sha256\tfold\n");
        for (key, f) in keys.iter().zip(fold_of) {
            let key = key.as_ref().to_ascii_lowercase();
            if let Some(f) = f {
                if seen.insert(key.clone()) {
                    let _ = writeln!(out, "{key}\t{}", f + 1);
                }
            }
        }
        out
    }
}

/// How many groups have rows in more than one of `folds` (test rows per fold): with fixed
/// folds, the near-duplicates a detector groups together may straddle them.
pub fn straddling_groups(groups: &[usize], folds: &[Vec<usize>]) -> usize {
    let mut fold_of: HashMap<usize, usize> = HashMap::new();
    let mut split = std::collections::HashSet::new();
    for (f, rows) in folds.iter().enumerate() {
        for &r in rows {
            let Some(&g) = groups.get(r) else { continue };
            match fold_of.get(&g) {
                Some(&o) if o != f => {
                    split.insert(g);
                }
                Some(_) => {}
                None => {
                    fold_of.insert(g, f);
                }
            }
        }
    }
    split.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(i: usize) -> String {
        format!("{i:064x}")
    }

    #[test]
    fn a_plan_round_trips_and_orders_rows_by_its_folds() {
        let keys: Vec<String> = (0..7).map(sha).collect();
        let folds = vec![vec![0, 3, 6], vec![1, 4], vec![2, 5]];
        let text = FoldPlan::render(&keys, &folds);
        assert!(text.starts_with("sha256\tfold\n"));
        assert_eq!(text.lines().count(), 8);
        let plan = FoldPlan::parse(&text).unwrap();
        assert_eq!((plan.k(), plan.len()), (3, 7));
        assert_eq!(plan.folds(&keys).unwrap(), folds);
        // Other rows, other order, upper case: each still finds its file's fold.
        let other = [sha(5).to_uppercase(), sha(0), sha(4)];
        assert_eq!(plan.folds(&other).unwrap(), vec![vec![1], vec![2], vec![0]]);
    }

    #[test]
    fn bad_plans_and_missing_rows_are_refused_with_the_line() {
        let ok = format!("{}\t1\n{}\t2\n", sha(1), sha(2));
        assert!(FoldPlan::parse(&ok).is_ok());
        for (text, want) in [
            (String::new(), "no files"),
            (format!("{}\t0\n", sha(1)), "line 1: fold"),
            (format!("{}\t1\n{}\tx\n", sha(1), sha(2)), "line 2: fold"),
            ("abc\t1\n".to_string(), "is not a sha256"),
            (format!("{}\t1\t3\n", sha(1)), "expected SHA256<TAB>FOLD"),
            (
                format!("{}\t1\n{}\t2\n", sha(1), sha(1)),
                "in fold 1 and fold 2",
            ),
            (format!("{}\t1001\n", sha(1)), "1..=1000"),
        ] {
            let e = FoldPlan::parse(&text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
        let plan = FoldPlan::parse(&ok).unwrap();
        let e = plan.folds(&[sha(1), sha(3)]).unwrap_err().to_string();
        assert!(e.contains("1 of 2 rows are not in the fold file"), "{e}");
        let e = plan.folds(&[sha(1)]).unwrap_err().to_string();
        assert!(e.contains("fold 2 of 2 tests none"), "{e}");
    }

    #[test]
    fn straddling_groups_are_counted_once() {
        // Group 7 spans folds 0 and 1 (three rows); group 8 stays in fold 2.
        let groups = [7, 7, 7, 8, 8];
        assert_eq!(
            straddling_groups(&groups, &[vec![0], vec![1, 2], vec![3, 4]]),
            1
        );
        assert_eq!(straddling_groups(&groups, &[vec![0, 1, 2], vec![3, 4]]), 0);
    }
}
