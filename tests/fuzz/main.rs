//! Random and adversarial inputs against every public entry point that reads a file or takes
//! a user's sizes: "an error or a valid result, never a panic, an abort or a runaway
//! allocation".
//!
//! The binary runs under [`cap::Capped`], a global allocator that refuses any single
//! allocation above 256 MiB and any growth of live memory above 3 GiB: an allocation sized by
//! an unchecked number from a file fails (the process aborts, failing the run) instead of
//! going unnoticed on a machine with memory to spare. Each property runs a fixed number of
//! cases from a fixed seed, in seconds.

mod cap;
mod cases;
mod gguf;
mod inputs;

#[global_allocator]
static ALLOC: cap::Capped = cap::Capped;
