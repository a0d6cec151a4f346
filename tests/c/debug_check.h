/* Helpers of the debug-check corpus (tests/c/debug_*.c): each program has
 * one kind of memory bug, must get a "BUG <cache>: <what>" report, and must
 * keep running and exit 0. */
#ifndef KMEM_TEST_DEBUG_CHECK_H
#define KMEM_TEST_DEBUG_CHECK_H
#include <stdint.h>
#include "check.h"

static inline int reported(const char *out, const char *a, const char *b) {
    return strstr(out, a) != NULL && (b == NULL || strstr(out, b) != NULL);
}

/* The address printed after `key` (e.g. "allocated at "), or 0. */
static inline uintptr_t site_after(const char *out, const char *key) {
    const char *p = strstr(out, key);
    return p ? (uintptr_t)strtoull(p + strlen(key), NULL, 16) : 0;
}

/* Whether a recorded return address lies in function `fn` (which must be
 * shorter than `len` bytes): the C call site was recorded, not kmem's own. */
static inline int site_in(uintptr_t site, void (*fn)(void), uintptr_t len) {
    uintptr_t f = (uintptr_t)fn;
    return site > f && site < f + len;
}
#endif
