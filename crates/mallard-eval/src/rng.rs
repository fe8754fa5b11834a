//! The generator lives in `mallard-rand`; re-exported here for the splits.

pub use mallard_rand::SplitMix64;
