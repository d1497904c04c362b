#!/usr/bin/env bash
# The machine's own jitter: one fixed, deterministic CPU and memory workload (sort 300,000
# integers, write 16 MiB) timed 400 times. On a shared VM its p99 / p50 ratio bounds how close
# any benchmark's p99 can come to its p50. Usage: Benchmarks/machine-noise.sh
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/noise.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double ms(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e3 + t.tv_nsec / 1e6; }
static int by_int(const void *a, const void *b) { int x = *(const int *)a, y = *(const int *)b; return (x > y) - (x < y); }
static int by_double(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }
int main(void) {
    enum { n = 300000, runs = 400 };
    int *values = malloc(n * sizeof *values);
    double took[runs];
    for (int run = 0; run < runs; run++) {
        srand(1);
        for (int i = 0; i < n; i++) values[i] = rand();
        char *buffer = malloc(16 << 20);
        double start = ms();
        qsort(values, n, sizeof *values, by_int);
        memset(buffer, run, 16 << 20);
        took[run] = ms() - start;
        free(buffer);
    }
    qsort(took, runs, sizeof *took, by_double);
    printf("fixed workload, %d runs: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms (p99/p50 %.1f)\n",
           runs, took[runs / 2], took[runs * 9 / 10], took[runs * 99 / 100], took[runs - 1], took[runs * 99 / 100] / took[runs / 2]);
    return 0;
}
C
cc -O2 -o "$work/noise" "$work/noise.c"
"$work/noise"
