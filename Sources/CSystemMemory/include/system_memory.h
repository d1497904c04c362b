#ifndef FLASHBACK_SYSTEM_MEMORY_H
#define FLASHBACK_SYSTEM_MEMORY_H

/// Returns memory that the C allocator holds but no longer uses to the kernel
/// (glibc's malloc_trim); a no-op elsewhere. Returns 1 when memory was released.
int fb_release_free_memory(void);

/// Restarts this executable (same PID, same arguments) with glibc's malloc tunable
/// MALLOC_MMAP_THRESHOLD_=262144 when it is not set yet, so that request-sized buffers get their
/// own mappings and go back to the kernel when freed. Returns only when nothing was done
/// (already set, FLASHBACK_NO_ALLOCATOR_TUNING set, not glibc) or exec failed.
int fb_exec_with_allocator_tuning(char *const argv[]);

#endif
