//! mallard-model
