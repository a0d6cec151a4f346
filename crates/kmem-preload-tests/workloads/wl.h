/* wl.h — shared by the preload test programs and the benchmark workloads.
 *
 * Everything here is deterministic: a program's stdout depends only on its
 * arguments, never on the allocator, the scheduler or addresses, so a run
 * under LD_PRELOAD can be compared byte for byte with a run without it.
 * Lines that do depend on the allocator (memory use, addresses) start with
 * "# " and are left out of that comparison.
 *
 * Objects carry a tag: the first 8 bytes (and, for objects of 16 bytes or
 * more, the last 8 bytes, complemented) hold a 64-bit value chosen from the
 * program's seeded generator. Whoever frees an object checks the tag (so an
 * allocator that hands out overlapping or corrupted memory is caught) and adds
 * it to a sum; the sum over all objects is the same whichever thread frees
 * which object.
 */
#ifndef KMEM_WL_H
#define KMEM_WL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* splitmix64: a small, fast, well-mixed generator with 64 bits of state. */
static inline uint64_t rng_next(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A value in [lo, hi]. */
static inline size_t rng_range(uint64_t *state, size_t lo, size_t hi) {
    return lo + (size_t)(rng_next(state) % (uint64_t)(hi - lo + 1));
}

static inline void wl_die(const char *what) {
    fprintf(stderr, "FATAL: %s\n", what);
    fflush(stderr);
    abort();
}

static inline void *wl_malloc(size_t n) {
    void *p = malloc(n);
    if (!p) wl_die("malloc returned NULL");
    return p;
}

/* Write the tag into an object of n >= 8 bytes. */
static inline void tag_set(void *p, size_t n, uint64_t tag) {
    memcpy(p, &tag, 8);
    if (n >= 16) {
        uint64_t inv = ~tag;
        memcpy((char *)p + n - 8, &inv, 8);
    }
}

/* Read an object's tag back and check both copies agree. */
static inline uint64_t tag_get(const void *p, size_t n) {
    uint64_t tag;
    memcpy(&tag, p, 8);
    if (n >= 16) {
        uint64_t inv;
        memcpy(&inv, (const char *)p + n - 8, 8);
        if (inv != ~tag) wl_die("object corrupted: head and tail tags disagree");
    }
    return tag;
}

/* Check the tag is the expected one. */
static inline void tag_check(const void *p, size_t n, uint64_t want) {
    if (tag_get(p, n) != want) wl_die("object corrupted: wrong tag");
}

/* Fill a whole object with bytes derived from seed; fill_check verifies them. */
static inline void fill(void *p, size_t n, uint64_t seed) {
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++) b[i] = (unsigned char)(seed + i * 131u);
}

static inline int fill_ok(const void *p, size_t n, uint64_t seed) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)(seed + i * 131u)) return 0;
    return 1;
}

/* Resident set size in KiB, from /proc/self/statm (no allocation). */
static inline long rss_kib(void) {
    char buf[128];
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    long size = 0, resident = 0;
    if (!fgets(buf, sizeof buf, f) || sscanf(buf, "%ld %ld", &size, &resident) != 2) resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Integer argument argv[i], or dflt when absent. */
static inline long arg_long(int argc, char **argv, int i, long dflt) {
    if (i >= argc) return dflt;
    char *end;
    long v = strtol(argv[i], &end, 10);
    if (*end || v <= 0) {
        fprintf(stderr, "bad argument %d: %s\n", i, argv[i]);
        exit(2);
    }
    return v;
}

static inline void wl_create(pthread_t *t, void *(*fn)(void *), void *arg) {
    int e = pthread_create(t, NULL, fn, arg);
    if (e) {
        errno = e;
        perror("pthread_create");
        exit(2);
    }
}

#endif
