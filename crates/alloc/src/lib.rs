//! How the server's allocator keeps memory (docs/adr/0007). glibc's malloc, left to itself,
//! keeps the memory of large requests: its mmap threshold rises to the largest block freed (so
//! later large buffers come from the heap, and stay there), each thread may get an arena of its
//! own (up to eight per core), and the pages freed inside the heap stay with the process. After
//! a few hostile 10 MB and 19 MB bodies the server held 124 MiB at its peak and kept 124 MiB.
//!
//! [`configure`] (first thing in `main`) fixes the mmap threshold at 128 KiB, so large buffers
//! are mapped on their own and unmapped when freed, and bounds the arenas to one per core and one for the main thread (call it before the
//! runtime starts its workers, which then take one each);
//! [`release_freed`] gives the free pages back to the system, after a large request.
//!
//! Elsewhere (not glibc) both do nothing.

/// Buffers of at least this size are mapped on their own, and unmapped when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

/// Sets the allocator up for a server (see the module).
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        // One for the main thread, one for each runtime worker (the first threads to start
        // after this call): two workers sharing an arena contended on its lock, and took
        // twice to four times as long over a batch of small allocations.
        let arenas = libc::c_int::try_from(cores.max(2) + 1).unwrap_or(3);
        // SAFETY: mallopt only stores allocator parameters, and may be called at any time.
        #[allow(unsafe_code)]
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}

/// Gives the allocator's free pages back to the system (after a large request, whose many
/// small blocks were freed inside the heap).
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the system; it may be called at any time.
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    /// Large blocks are mapped once `configure` ran: freeing one gives its memory back at once
    /// (the resident size falls by its size), which glibc does not do after a larger block was
    /// freed (its threshold rises to that block's size). And `release_freed` gives back what
    /// small blocks freed.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn freed_memory_goes_back_to_the_system() {
        fn resident_kib() -> i64 {
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        }
        super::configure();
        // Would raise glibc's dynamic threshold to 16 MiB.
        drop(std::hint::black_box(vec![1u8; 16 << 20]));
        let before = resident_kib();
        let block = std::hint::black_box(vec![1u8; 8 << 20]);
        let with = resident_kib();
        drop(block);
        let after = resident_kib();
        assert!(with - before > 7 * 1024, "{before} {with}");
        assert!(
            with - after > 7 * 1024,
            "not given back: {before} {with} {after}"
        );

        // 8 MiB in small blocks, freed: given back by release_freed.
        let small: Vec<Vec<u8>> = (0..8192).map(|_| vec![1u8; 1000]).collect();
        let with = resident_kib();
        drop(std::hint::black_box(small));
        super::release_freed();
        let after = resident_kib();
        assert!(with - after > 6 * 1024, "small blocks kept: {with} {after}");
    }
}
