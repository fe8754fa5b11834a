//! mallard-scan
