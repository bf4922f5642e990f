//! The C allocator's settings for training and drawing (glibc only;
//! elsewhere nothing).
//!
//! glibc serves a block above its mmap threshold (128 KiB, rising as such
//! blocks are freed, at most 32 MiB) with a fresh mapping and unmaps it when
//! it is freed, and it returns the top of the heap to the kernel once more
//! than 128 KiB is free there. A training step frees and allocates the same
//! large activations every step, so each step's tensors arrive as new pages
//! that fault in one at a time (perf: 13% of a CPU step in the kernel).

/// Keeps freed memory in the process: no block is served by its own mapping
/// and the heap is never trimmed, so a step reuses the last step's pages.
/// The process then holds its peak memory until it exits, which suits a
/// training run and not an interactive session: call it where training
/// starts. `bench train --preset reed` on this project's 2-core CPU: 35.6
/// images/s before, 42.4 after (the same as GLIBC_TUNABLES
/// `glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=2147483647`).
pub fn keep_freed_memory() {
    KEEPS_ALL.store(true, std::sync::atomic::Ordering::Relaxed);
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's parameters; both values
    // are in range (glibc returns 0 for a refused one, which leaves the
    // default in place and costs only speed).
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

/// Whether [`keep_freed_memory`] has run (drawing's bounded setting must
/// not undo it in a process that trains).
static KEEPS_ALL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The largest block glibc serves from the heap under
/// [`keep_drawing_memory`] (glibc's own ceiling for the threshold on 64-bit).
pub const DRAWING_MMAP_THRESHOLD: i32 = 32 << 20;

/// How much free memory the heap keeps at its top under
/// [`keep_drawing_memory`] before it gives the rest back.
pub const DRAWING_TRIM_THRESHOLD: i32 = 256 << 20;

/// Drawing on the CPU has training's trouble (each chunk through G frees
/// and allocates the same maps, and they arrive as fresh pages), but an
/// interactive session should not hold its peak for good. So: blocks up to
/// [`DRAWING_MMAP_THRESHOLD`] come from the heap, and the heap keeps at most
/// [`DRAWING_TRIM_THRESHOLD`] free. `bench generate --batch 64` of the
/// shipped `procedural-flowers` on this project's 2-core CPU: about 97 ms
/// before, 79 after, the same as keeping everything (README, Speed).
/// Does nothing after [`keep_freed_memory`], which keeps more.
pub fn keep_drawing_memory() {
    if KEEPS_ALL.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: as in `keep_freed_memory`; both values are within glibc's
    // ranges (the threshold at its 64-bit maximum).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, DRAWING_MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, DRAWING_TRIM_THRESHOLD);
    }
}
