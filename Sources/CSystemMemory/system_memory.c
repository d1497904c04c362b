#include "system_memory.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <stdlib.h>
#include <sys/stat.h>
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

int fb_release_free_memory_above(unsigned long long bytes) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 info = mallinfo2();
    if (info.fordblks <= bytes) return 0;
    return fb_release_free_memory();
#else
    (void)bytes;
    return 0;
#endif
}

int fb_exec_with_runtime_settings(char *const argv[], const char *backtrace_setting) {
#if defined(__linux__) && defined(__GLIBC__)
    /* glibc reads its malloc tunables once, before the first allocation; mallopt() later in
     * the process was measured to leave peak RSS about a third higher. The Swift runtime reads
     * SWIFT_BACKTRACE once at start too. So set what is missing and start this executable again
     * (same PID). Returns only when nothing was missing or exec is not possible.
     *
     * The ingest path allocates and frees buffers of megabytes per request (bodies, parsed
     * columns, pending samples). Each freed buffer that glibc hands back to the kernel (its own
     * mapping, or the top of a heap trimmed) is paid again in page faults when the next request
     * takes it: 18 % of the CPU under load in perf. So buffers below 32 MiB come from the heaps
     * and stay there (trimmed only past 512 MiB free at the top of a heap; the flush service
     * calls malloc_trim past 64 MiB free in all, and after a burst), and two
     * arenas hold them, so that the buffers kept are not multiplied by one arena per thread. */
    static const char *const tunables[][2] = {
        {"MALLOC_MMAP_THRESHOLD_", "33554432"},
        {"MALLOC_TRIM_THRESHOLD_", "536870912"},
        {"MALLOC_ARENA_MAX", "2"},
    };
    int changed = 0;
    if (getenv("FLASHBACK_NO_ALLOCATOR_TUNING") == NULL) {
        for (size_t index = 0; index < sizeof(tunables) / sizeof(tunables[0]); index++) {
            if (getenv(tunables[index][0]) != NULL) continue;
            if (setenv(tunables[index][0], tunables[index][1], 1) != 0) return -1;
            changed = 1;
        }
    }
    if (backtrace_setting != NULL && getenv("SWIFT_BACKTRACE") == NULL) {
        if (setenv("SWIFT_BACKTRACE", backtrace_setting, 1) != 0) return -1;
        changed = 1;
    }
    if (!changed) return 0;
    execv("/proc/self/exe", argv);
    return -1;
#else
    (void)argv;
    (void)backtrace_setting;
    return 0;
#endif
}

int fb_mark_sockets_close_on_exec(void) {
#if defined(__linux__)
    /* SwiftNIO opens sockets without SOCK_CLOEXEC. A child started later (the Swift runtime's
     * crash helper, swift-backtrace) would inherit them and keep the listening ports bound after
     * the process itself is gone; so mark every socket this process holds close-on-exec. */
    DIR *directory = opendir("/proc/self/fd");
    if (directory == NULL) return -1;
    int marked = 0;
    int own = dirfd(directory);
    struct dirent *entry;
    while ((entry = readdir(directory)) != NULL) {
        char *end = NULL;
        long fd = strtol(entry->d_name, &end, 10);
        if (end == entry->d_name || *end != '\0' || fd < 0 || fd == own) continue;
        struct stat info;
        if (fstat((int)fd, &info) != 0 || !S_ISSOCK(info.st_mode)) continue;
        int flags = fcntl((int)fd, F_GETFD);
        if (flags < 0 || (flags & FD_CLOEXEC)) continue;
        if (fcntl((int)fd, F_SETFD, flags | FD_CLOEXEC) == 0) marked += 1;
    }
    closedir(directory);
    return marked;
#else
    return 0;
#endif
}

#if defined(__linux__)
static struct sigaction fb_previous_actions[NSIG];

static void fb_crash_handler(int sig, siginfo_t *info, void *context) {
    /* Let the handler installed before ours (the Swift runtime's backtracer) report, then die
     * with the default action. The runtime's own handler returns so that the faulting
     * instruction faults again; a signal sent with kill() would not, and the process would live
     * on half-broken while holding its ports. */
    struct sigaction *previous = &fb_previous_actions[sig];
    if ((previous->sa_flags & SA_SIGINFO) && previous->sa_sigaction != NULL) {
        previous->sa_sigaction(sig, info, context);
    } else if (previous->sa_handler != SIG_DFL && previous->sa_handler != SIG_IGN && previous->sa_handler != NULL) {
        previous->sa_handler(sig);
    }
    signal(sig, SIG_DFL);
    sigset_t unblock;
    sigemptyset(&unblock);
    sigaddset(&unblock, sig);
    sigprocmask(SIG_UNBLOCK, &unblock, NULL);
    raise(sig);
    _exit(128 + sig);
}
#endif

int fb_exit_after_crash_report(void) {
#if defined(__linux__)
    const int signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGABRT};
    for (size_t index = 0; index < sizeof(signals) / sizeof(signals[0]); index++) {
        int sig = signals[index];
        struct sigaction action;
        memset(&action, 0, sizeof(action));
        if (sigaction(sig, NULL, &fb_previous_actions[sig]) != 0) return -1;
        action.sa_sigaction = fb_crash_handler;
        action.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&action.sa_mask);
        if (sigaction(sig, &action, NULL) != 0) return -1;
    }
    return 0;
#else
    return 0;
#endif
}
