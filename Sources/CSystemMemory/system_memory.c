#include "system_memory.h"

#include <stdlib.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

int fb_release_free_memory(void) {
#if defined(__GLIBC__)
    return malloc_trim(0);
#else
    return 0;
#endif
}

int fb_exec_with_allocator_tuning(char *const argv[]) {
#if defined(__linux__) && defined(__GLIBC__)
    /* glibc reads its malloc tunables once, before the first allocation; mallopt() later in
     * the process was measured to leave peak RSS about a third higher. So set the tunable and
     * start this executable again (same PID). Returns only when that is not possible. */
    if (getenv("MALLOC_MMAP_THRESHOLD_") != NULL || getenv("FLASHBACK_NO_ALLOCATOR_TUNING") != NULL) return 0;
    if (setenv("MALLOC_MMAP_THRESHOLD_", "262144", 1) != 0) return -1;
    execv("/proc/self/exe", argv);
    unsetenv("MALLOC_MMAP_THRESHOLD_");
    return -1;
#else
    (void)argv;
    return 0;
#endif
}
