#ifndef FLASHBACK_SYSTEM_MEMORY_H
#define FLASHBACK_SYSTEM_MEMORY_H

/// Returns memory that the C allocator holds but no longer uses to the kernel
/// (glibc's malloc_trim); a no-op elsewhere. Returns 1 when memory was released.
int fb_release_free_memory(void);

/// ``fb_release_free_memory`` when the C allocator holds more than `bytes` free (glibc's
/// mallinfo2, which reads a few counters per arena); otherwise nothing. Returns 1 when memory
/// was released.
int fb_release_free_memory_above(unsigned long long bytes);

/// Restarts this executable (same PID, same arguments) with what the process reads only at start
/// when it is not set yet: glibc's malloc tunables MALLOC_MMAP_THRESHOLD_=33554432,
/// MALLOC_TRIM_THRESHOLD_=536870912 and MALLOC_ARENA_MAX=2 (request-sized buffers are reused
/// instead of being returned to the kernel and faulted in again; each one set unless present,
/// all skipped when FLASHBACK_NO_ALLOCATOR_TUNING is set) and, when `backtrace_setting` is not NULL,
/// SWIFT_BACKTRACE. Returns only when nothing was missing, on other systems, or when exec failed.
int fb_exec_with_runtime_settings(char *const argv[], const char *backtrace_setting);

/// Marks every socket the process holds close-on-exec, so that no child (the Swift runtime's
/// crash helper included) inherits a listening port. Returns how many were marked, or -1.
int fb_mark_sockets_close_on_exec(void);

/// Makes a fatal signal (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGABRT) end the process once
/// the handler installed before (the Swift runtime's crash report) has run, also when the signal
/// was sent by another process. Call once, early. Returns 0, or -1 when a handler could not be set.
int fb_exit_after_crash_report(void);

#endif
