//! mallard-apiseq
