//! Loaders, tokenization, collation and metrics of the data layer.

mod files;
mod formats;
mod layout;
mod metrics;
mod real;
