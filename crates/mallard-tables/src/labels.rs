//! One label per row, stored as an index into the distinct names: a million-row table of
//! "benign"/"malicious" costs 4 MB instead of 40 (one heap string per row).

use std::collections::HashMap;

/// Row labels. Compare, index and iterate them as `&str`.
#[derive(Debug, Clone, Default)]
pub struct Labels {
    /// Distinct names in order of first appearance.
    names: Vec<String>,
    ids: Vec<u32>,
    /// Each name's index: a search of `names` per row was quadratic in the distinct labels
    /// (a column of 200,000 identifiers took 22 s to read).
    index: HashMap<String, u32>,
}

/// Up to this many distinct names a row's label is found by comparing them in turn.
const FEW: usize = 8;

impl Labels {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(rows: usize) -> Self {
        Labels {
            names: Vec::new(),
            ids: Vec::with_capacity(rows),
            index: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Appends one row's label. Past `u32::MAX` distinct labels (more than any table that
    /// fits in memory holds) a new label panics.
    pub fn push(&mut self, label: &str) {
        // Labels repeat in runs: try the last one first, then the (few) others.
        let id = match self.ids.last() {
            Some(&i) if self.names[i as usize] == label => i,
            _ => {
                let found = if self.names.len() <= FEW {
                    self.names.iter().position(|n| n == label).map(|i| i as u32)
                } else {
                    self.index.get(label).copied()
                };
                match found {
                    Some(i) => i,
                    None => {
                        let i = u32::try_from(self.names.len()).expect("fewer than 2^32 labels");
                        self.names.push(label.to_string());
                        self.index.insert(label.to_string(), i);
                        i
                    }
                }
            }
        };
        self.ids.push(id);
    }

    pub fn get(&self, row: usize) -> Option<&str> {
        self.ids.get(row).map(|&i| self.names[i as usize].as_str())
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + Clone + '_ {
        self.ids.iter().map(|&i| self.names[i as usize].as_str())
    }

    /// The distinct labels, in order of first appearance.
    pub fn distinct(&self) -> &[String] {
        &self.names
    }

    /// Each row's label as an index into `classes`, reusing this storage (a narrow table of
    /// millions of rows should not hold two label columns); errors on a label not in
    /// `classes`.
    pub fn into_class_ids(self, classes: &[String]) -> Result<Vec<u32>, String> {
        let by_name: HashMap<&str, u32> = classes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i as u32))
            .rev()
            .collect();
        let map: Vec<Option<u32>> = self
            .names
            .iter()
            .map(|n| by_name.get(n.as_str()).copied())
            .collect();
        if let Some(n) = self.names.iter().zip(&map).find(|(_, m)| m.is_none()) {
            return Err(format!("label {:?} is not one of {classes:?}", n.0));
        }
        let mut ids = self.ids;
        for id in &mut ids {
            *id = map[*id as usize].unwrap_or_default();
        }
        Ok(ids)
    }

    /// The labels of the given rows, in that order (rows out of range are skipped).
    pub fn select(&self, rows: &[usize]) -> Labels {
        let mut out = Labels::with_capacity(rows.len());
        for &r in rows {
            if let Some(l) = self.get(r) {
                out.push(l);
            }
        }
        out
    }

    pub fn extend(&mut self, other: &Labels) {
        self.ids.reserve(other.len());
        for l in other.iter() {
            self.push(l);
        }
    }

    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_string).collect()
    }
}

impl std::ops::Index<usize> for Labels {
    type Output = str;
    fn index(&self, row: usize) -> &str {
        &self.names[self.ids[row] as usize]
    }
}

/// Equal when every row has the same label (however the names are numbered).
impl PartialEq for Labels {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<S: AsRef<str>> FromIterator<S> for Labels {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut out = Labels::new();
        for l in iter {
            out.push(l.as_ref());
        }
        out
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a str;
    type IntoIter = Box<dyn Iterator<Item = &'a str> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_keep_their_labels() {
        let l: Labels = ["b", "m", "m", "b", "x"].into_iter().collect();
        assert_eq!(l.len(), 5);
        assert_eq!(l.distinct(), ["b", "m", "x"]);
        assert_eq!(&l[1], "m");
        assert_eq!(l.get(4), Some("x"));
        assert_eq!(l.get(5), None);
        assert_eq!(l.select(&[4, 0, 9]).to_vec(), ["x", "b"]);
        let mut a: Labels = ["x"].into_iter().collect();
        a.extend(&l);
        assert_eq!(a.to_vec(), ["x", "b", "m", "m", "b", "x"]);
        // equality is by row, not by numbering
        let b: Labels = ["m", "b"].into_iter().collect();
        let c: Labels = ["b", "m"].into_iter().collect();
        assert_ne!(b, c);
        assert_eq!(b, l.select(&[1, 0]));
    }

    /// Past the few names compared in turn, names are found through the map: the same ids,
    /// in order of first appearance, as a search would give, and class ids by name.
    #[test]
    fn many_distinct_labels_keep_their_rows() {
        let rows: Vec<String> = (0..3000)
            .map(|i| format!("l{}", (i * 7919) % 1000))
            .collect();
        let l: Labels = rows.iter().collect();
        let mut first: Vec<&String> = Vec::new();
        for r in &rows {
            if !first.contains(&r) {
                first.push(r);
            }
        }
        assert_eq!(l.distinct().iter().collect::<Vec<_>>(), first);
        assert_eq!(l.to_vec(), rows);
        let mut classes: Vec<String> = first.iter().map(|s| s.to_string()).collect();
        classes.sort();
        let ids = l.clone().into_class_ids(&classes).unwrap();
        for (r, id) in rows.iter().zip(&ids) {
            assert_eq!(&classes[*id as usize], r);
        }
    }

    #[test]
    fn class_ids_follow_the_given_order() {
        let l: Labels = ["m", "b", "m", "x"].into_iter().collect();
        let classes = ["b".to_string(), "x".to_string(), "m".to_string()];
        assert_eq!(l.clone().into_class_ids(&classes).unwrap(), [2, 0, 2, 1]);
        let err = l.into_class_ids(&classes[..2]).unwrap_err();
        assert!(err.contains("\"m\""), "{err}");
    }
}
