//! mallard-rnn
