//! The allocation cap of the fuzz binary.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Largest single allocation allowed.
pub const MAX_ONE: usize = 256 << 20;
/// Most live heap bytes allowed (the tests run in parallel, each with a tiny model).
pub const MAX_LIVE: usize = 3 << 30;

static LIVE: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, refusing requests past [`MAX_ONE`] or [`MAX_LIVE`].
pub struct Capped;

// SAFETY: forwards to `System`, only refusing some requests (returning null, which the
// caller must handle as an allocation failure).
unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > MAX_ONE
            || LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size() > MAX_LIVE
        {
            if layout.size() <= MAX_ONE {
                LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            }
            return std::ptr::null_mut();
        }
        // SAFETY: same layout contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = layout.size();
        if new_size > old {
            let grow = new_size - old;
            if new_size > MAX_ONE || LIVE.fetch_add(grow, Ordering::Relaxed) + grow > MAX_LIVE {
                if new_size <= MAX_ONE {
                    LIVE.fetch_sub(grow, Ordering::Relaxed);
                }
                return std::ptr::null_mut();
            }
        } else {
            LIVE.fetch_sub(old - new_size, Ordering::Relaxed);
        }
        // SAFETY: `ptr` came from `alloc` with `layout`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() && new_size > old {
            LIVE.fetch_sub(new_size - old, Ordering::Relaxed);
        }
        p
    }
}

#[test]
fn the_cap_refuses_a_huge_request() {
    let layout = Layout::from_size_align(MAX_ONE + 1, 8).unwrap();
    // SAFETY: a valid layout; a null result is checked and nothing is freed.
    let p = unsafe { Capped.alloc(layout) };
    assert!(p.is_null());
}
