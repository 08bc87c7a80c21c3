//! Loaders, tokenization, collation and metrics of the data layer.

mod files;
mod layout;
mod metrics;
mod real;
