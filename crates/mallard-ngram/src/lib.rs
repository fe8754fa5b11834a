//! mallard-ngram
