//! mallard-tokenizer
