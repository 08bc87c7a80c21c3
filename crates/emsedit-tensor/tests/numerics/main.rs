//! Integration tests of the backend layer, in one binary.

mod common;
mod normalizer;
mod optim;
mod ridge;
