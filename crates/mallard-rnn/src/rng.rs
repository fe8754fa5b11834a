//! The one generator (`mallard-rand`), with the batch order the recurrent code has always
//! drawn (the 53 high bits modulo the range), so training runs reproduce.

pub(crate) use mallard_rand::SplitMix64;

pub(crate) trait ShuffleHigh {
    /// Fisher-Yates from the back with [`SplitMix64::below_53`].
    fn shuffle_53<T>(&mut self, v: &mut [T]);
}

impl ShuffleHigh for SplitMix64 {
    fn shuffle_53<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below_53(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}
