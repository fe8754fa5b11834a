//! Buffers reused from one minibatch to the next for the saved activations and gate
//! gradients.
//!
//! Why: a batch's saved gate activations and gate gradients are megabytes each (18 MB each
//! for a padded batch of 64 rows x 175 steps). Allocated afresh per batch, the allocator
//! handed them back as fresh pages the kernel had to clear, and `vec![0; n]` cleared them
//! again: 16% of a padded epoch's CPU. Every element of these buffers is written before it
//! is read, so they are reused as they are, old contents and all; buffers that must start
//! at zero (states, gradient sums) are not taken from here.

use std::sync::Mutex;

/// Free buffers kept at most; more are dropped (a chunk of a bidirectional layer's batch
/// holds up to 10 at once).
const KEEP: usize = 64;

/// A pool of buffers shared by a run's worker threads.
pub(crate) struct Scratch<T> {
    free: Mutex<Vec<Vec<T>>>,
}

impl<T: Copy + Default> Scratch<T> {
    pub(crate) fn new() -> Self {
        Scratch {
            free: Mutex::new(Vec::new()),
        }
    }

    /// A buffer of `len` elements whose contents are unspecified (whatever an earlier user
    /// left): only for buffers whose every element is written before it is read.
    pub(crate) fn take(&self, len: usize) -> Vec<T> {
        let mut v = {
            let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
            // The smallest buffer that holds `len`, else the largest (grown below).
            let fit = (0..free.len())
                .filter(|&i| free[i].capacity() >= len)
                .min_by_key(|&i| free[i].capacity())
                .or_else(|| (0..free.len()).max_by_key(|&i| free[i].capacity()));
            fit.map(|i| free.swap_remove(i)).unwrap_or_default()
        };
        if v.len() >= len {
            v.truncate(len);
        } else {
            v.resize(len, T::default());
        }
        v
    }

    /// Returns a buffer for later `take`s.
    pub(crate) fn give(&self, v: Vec<T>) {
        if v.capacity() == 0 {
            return;
        }
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if free.len() < KEEP {
            free.push(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_returns_the_length_asked_and_reuses_the_best_fit() {
        let s = Scratch::<f32>::new();
        let a = s.take(1000);
        assert_eq!(a.len(), 1000);
        let b = s.take(10);
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        s.give(a);
        s.give(b);
        // 8 fits in both; the smaller one is handed out.
        let c = s.take(8);
        assert_eq!((c.len(), c.as_ptr()), (8, pb));
        // 500 fits only in the large one, with its old contents.
        let d = s.take(500);
        assert_eq!((d.len(), d.as_ptr()), (500, pa));
        // Nothing free: a new buffer.
        let e = s.take(3);
        assert_eq!(e.len(), 3);
        assert_ne!(e.as_ptr(), pa);
    }
}
