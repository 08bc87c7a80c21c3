//! Process allocator settings for the CPU backend's many short-lived tensors.

/// The largest mmap threshold glibc accepts on 64-bit targets (32 MiB).
pub const MMAP_THRESHOLD: usize = 32 << 20;

/// glibc's malloc arenas: one for the main thread and one shared by the threads a split pass
/// runs on ([`crate::threads::scoped_map`] starts new ones for every pass).
pub const ARENAS: usize = 2;

/// Keeps freed tensor buffers of up to [`MMAP_THRESHOLD`] in the process heap for the next
/// tensor instead of returning them to the kernel (glibc's `M_MMAP_THRESHOLD` and
/// `M_TRIM_THRESHOLD`), so that a pass does not pay for fresh zeroed pages on every
/// allocation, and caps the arenas at [`ARENAS`] (`M_ARENA_MAX`): each arena keeps its own
/// freed buffers, and with one per thread (glibc's default, up to 8 per core) the threads of
/// split passes hold several copies of a pass's buffers (docs/performance.md). A
/// `MALLOC_ARENA_MAX` in the environment wins over [`ARENAS`] (glibc reads it at start; it is
/// left as set, for A/B runs). Process-wide and opt-in: the `emsedit` command, the examples,
/// the benches and `cargo xtask` call it first thing. Returns whether the settings took
/// (`false` off glibc).
pub fn reuse_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes glibc's allocation parameters; it is safe to call at
        // any time and from any thread.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30) == 1
                && (std::env::var_os("MALLOC_ARENA_MAX").is_some()
                    || libc::mallopt(libc::M_ARENA_MAX, ARENAS as libc::c_int) == 1)
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_takes_the_settings() {
        let took = reuse_freed_memory();
        assert_eq!(took, cfg!(all(target_os = "linux", target_env = "gnu")));
        // Allocation still works after the change.
        let v = vec![1.0f32; MMAP_THRESHOLD / 4];
        assert_eq!(v.len(), MMAP_THRESHOLD / 4);
    }
}
