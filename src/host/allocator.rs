//! The C allocator's settings for training (glibc only; elsewhere nothing).
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
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's parameters; both values
    // are in range (glibc returns 0 for a refused one, which leaves the
    // default in place and costs only speed).
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}
