//! No unbounded allocation: an allocator that aborts (a crash the fuzzer
//! keeps the input of) when one allocation asks for more than any request
//! could need, or, in the fuzz targets, when everything live passes a
//! bound. The fuzz crate makes it the global allocator of every target
//! ([`Capped::EVERYWHERE`]); the tests make it theirs for the threads
//! running a target ([`Capped::WHILE_FUZZING`], [`capped`]). Allocations
//! made by C code (zstd's) do not pass here: libFuzzer's `-rss_limit_mb`
//! bounds those.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The most one allocation may take: a few times the largest message the
/// server takes (4 MiB by default), for the buffers that double.
pub const MAX_ONE: usize = 32 << 20;
/// The most that may be live at once, in the fuzz targets.
pub const MAX_LIVE: usize = 256 << 20;

/// The system's allocator with the caps above.
#[derive(Debug)]
pub struct Capped {
    /// Capped on every thread, live bytes counted; else only on a thread
    /// inside [`capped`], one allocation at a time.
    everywhere: bool,
}

impl Capped {
    /// Capped everywhere: the fuzz targets' allocator.
    pub const EVERYWHERE: Self = Self { everywhere: true };
    /// Capped while a target runs on this thread: the tests' allocator.
    pub const WHILE_FUZZING: Self = Self { everywhere: false };

    /// Aborts if a block of `size` bytes, adding `more` to those live,
    /// would pass a cap.
    fn check(&self, size: usize, more: usize) {
        let live = LIVE.load(Ordering::Relaxed);
        let over = if self.everywhere {
            size > MAX_ONE || live.saturating_add(more) > MAX_LIVE
        } else {
            size > MAX_ONE && RUNNING.with(Cell::get)
        };
        if over {
            // Once: the report itself must not come back here.
            if !REPORTED.swap(true, Ordering::Relaxed) {
                let _ = writeln!(
                    std::io::stderr(),
                    "an allocation of {size} bytes with {live} live: past the fuzz targets' caps \
                     ({MAX_ONE} at once, {MAX_LIVE} live)"
                );
            }
            std::process::abort();
        }
    }

    fn count(&self, added: usize, removed: usize) {
        if self.everywhere {
            LIVE.fetch_add(added, Ordering::Relaxed);
            LIVE.fetch_sub(removed, Ordering::Relaxed);
        }
    }
}

static LIVE: AtomicUsize = AtomicUsize::new(0);
static REPORTED: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Whether this thread is running a fuzz target (for `WHILE_FUZZING`).
    static RUNNING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `target` with this thread's allocations capped (for an allocator
/// [`Capped::WHILE_FUZZING`]).
pub fn capped<T>(target: impl FnOnce() -> T) -> T {
    /// Unmarks the thread however `target` ends, a panic included.
    struct Running;
    impl Drop for Running {
        fn drop(&mut self) {
            RUNNING.with(|running| running.set(false));
        }
    }
    RUNNING.with(|running| running.set(true));
    let _running = Running;
    target()
}

// SAFETY: every call goes to the system's allocator as it came; the caps
// only look at the sizes, and the count of live bytes is kept beside.
unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.check(layout.size(), layout.size());
        // SAFETY: the caller's layout, as `GlobalAlloc::alloc` requires.
        let block = unsafe { System.alloc(layout) };
        if !block.is_null() {
            self.count(layout.size(), 0);
        }
        block
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.check(layout.size(), layout.size());
        // SAFETY: as for `alloc`.
        let block = unsafe { System.alloc_zeroed(layout) };
        if !block.is_null() {
            self.count(layout.size(), 0);
        }
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        // SAFETY: a block of this allocator, with its layout, as
        // `GlobalAlloc::dealloc` requires.
        unsafe { System.dealloc(block, layout) };
        self.count(0, layout.size());
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.check(new_size, new_size.saturating_sub(layout.size()));
        // SAFETY: a block of this allocator, with its layout, as
        // `GlobalAlloc::realloc` requires.
        let moved = unsafe { System.realloc(block, layout, new_size) };
        if !moved.is_null() {
            self.count(new_size, layout.size());
        }
        moved
    }
}
