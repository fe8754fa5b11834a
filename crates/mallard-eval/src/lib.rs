//! mallard-eval
