/* Every mp_* function of kmem.h, with good and bad input. */
#include <stdint.h>
#include <string.h>

#include "kmem.h"
#include "check.h"

static int order[8], norder;
static void note(void *data) { order[norder++] = *(int *)data; }

static int reported(const char *out, const char *what) { return strstr(out, what) != NULL; }

int main(void) {
    const char *err;

    /* ---- mp_create_pool ---- */
    stderr_capture_begin();
    CHECK(mp_create_pool(0) == NULL);
    CHECK(mp_create_pool(SIZE_MAX) == NULL);
    err = stderr_capture_end();
    CHECK(reported(err, "mp_create_pool(0)"));
    CHECK(reported(err, "too large"));

    mp_pool_t *p = mp_create_pool(4000);
    mp_pool_t *q = mp_create_pool(100);
    CHECK(p && q);

    /* ---- NULL pool: NULL / -1 / no-op, each reported ---- */
    struct mp_pool_stats s;
    memset(&s, 0xff, sizeof s);
    stderr_capture_begin();
    CHECK(mp_alloc(NULL, 10) == NULL);
    CHECK(mp_nalloc(NULL, 10) == NULL);
    CHECK(mp_calloc(NULL, 10) == NULL);
    CHECK(mp_memalign(NULL, 10, 16) == NULL);
    CHECK(mp_free(NULL, p) == -1);
    CHECK(mp_cleanup_add(NULL, 8) == NULL);
    mp_reset_pool(NULL);
    mp_destroy_pool(NULL);
    mp_pool_stats(NULL, &s);
    mp_pool_stats(p, NULL);
    err = stderr_capture_end();
    CHECK(reported(err, "mp_alloc: NULL pool") && reported(err, "mp_nalloc: NULL pool"));
    CHECK(reported(err, "mp_calloc: NULL pool") && reported(err, "mp_memalign: NULL pool"));
    CHECK(reported(err, "mp_free: NULL pool") && reported(err, "mp_cleanup_add: NULL pool"));
    CHECK(reported(err, "mp_reset_pool: NULL pool") && reported(err, "mp_destroy_pool: NULL pool"));
    CHECK(reported(err, "mp_pool_stats: NULL pool") && reported(err, "NULL out"));
    CHECK(s.total_allocated == 0 && s.allocation_count == 0 && s.failed_count == 0);

    /* ---- zero sizes, overflow, bad alignment: NULL, reported, counted ---- */
    stderr_capture_begin();
    CHECK(mp_alloc(p, 0) == NULL);
    CHECK(mp_nalloc(p, 0) == NULL);
    CHECK(mp_calloc(p, 0) == NULL);
    CHECK(mp_memalign(p, 0, 16) == NULL);
    CHECK(mp_alloc(p, SIZE_MAX) == NULL);
    CHECK(mp_calloc(p, SIZE_MAX / 2) == NULL);
    CHECK(mp_memalign(p, 16, 3) == NULL);
    CHECK(mp_memalign(p, 16, 0) == NULL);
    CHECK(mp_memalign(p, 16, (size_t)1 << 63) == NULL);
    CHECK(mp_cleanup_add(p, SIZE_MAX) == NULL);
    err = stderr_capture_end();
    CHECK(reported(err, "mp_alloc(pool 0x") && reported(err, ", 0): size 0"));
    CHECK(reported(err, "too large"));
    CHECK(reported(err, "alignment 3 is not a power of two"));
    CHECK(reported(err, "mp_cleanup_add(pool"));
    mp_pool_stats(p, &s);
    CHECK(s.failed_count == 9 && s.allocation_count == 0);

    /* ---- alignment of every entry point ---- */
    for (size_t size = 1; size < 9000; size = size * 3 + 1) {
        CHECK(mp_nalloc(p, 1) != NULL);
        char *m = mp_alloc(p, size);
        CHECK(m && (uintptr_t)m % MP_ALIGNMENT == 0);
        CHECK(mp_nalloc(p, 1) != NULL);
        unsigned char *z = mp_calloc(p, size);
        CHECK(z && (uintptr_t)z % MP_ALIGNMENT == 0);
        int zero = 1;
        for (size_t i = 0; z && i < size; i++) zero &= z[i] == 0;
        CHECK(zero);
    }
    char *n1 = mp_nalloc(p, 3), *n2 = mp_nalloc(p, 5);
    CHECK(n2 == n1 + 3);
    for (int shift = 0; shift <= 23; shift++) {
        CHECK(mp_nalloc(p, 1) != NULL);
        void *m = mp_memalign(p, 100, (size_t)1 << shift);
        CHECK(m && (uintptr_t)m % ((size_t)1 << shift) == 0);
    }

    /* ---- mp_free: 0 for a large block, -1 for anything else ---- */
    mp_reset_pool(p);
    char *small = mp_alloc(p, 100);
    char *big = mp_alloc(p, 10000);
    char *theirs = mp_alloc(q, 10000);
    int local = 0;
    stderr_capture_begin();
    CHECK(mp_free(p, NULL) == -1);
    CHECK(mp_free(p, small) == -1);
    err = stderr_capture_end();
    CHECK(err[0] == 0); /* declining NULL and small pointers is not an error */
    stderr_capture_begin();
    CHECK(mp_free(p, &local) == -1);
    CHECK(mp_free(p, theirs) == -1);
    CHECK(mp_free(p, big + 8) == -1);
    CHECK(mp_free(p, big) == 0);
    CHECK(mp_free(p, big) == -1); /* double free */
    err = stderr_capture_end();
    CHECK(reported(err, "was not allocated from this pool"));
    CHECK(reported(err, "belongs to another pool"));
    CHECK(reported(err, "inside the large allocation"));
    CHECK(mp_free(q, theirs) == 0);
    /* Large-list entries are reused: freeing and allocating again in a loop
     * keeps working and the statistics balance. */
    for (int i = 0; i < 100; i++) {
        void *m = mp_alloc(p, 5000 + i);
        CHECK(m && mp_free(p, m) == 0);
    }

    /* ---- statistics ---- */
    mp_reset_pool(p);
    mp_pool_stats(p, &s);
    CHECK(s.current_allocated == 0 && s.allocation_count == s.free_count);
    size_t total0 = s.total_allocated, count0 = s.allocation_count;
    CHECK(mp_alloc(p, 100) && mp_nalloc(p, 7));
    void *l = mp_alloc(p, 6000);
    CHECK(l && mp_free(p, l) == 0);
    mp_pool_stats(p, &s);
    CHECK(s.total_allocated == total0 + 6107);
    CHECK(s.current_allocated == 107);
    CHECK(s.peak_allocated >= 6107);
    CHECK(s.allocation_count == count0 + 3 && s.free_count == count0 + 1);

    /* ---- first fit from `current` (one 4000-byte allocation per block) ---- */
    mp_pool_t *r = mp_create_pool(4000);
    char *b1 = mp_alloc(r, 4000), *b2 = mp_alloc(r, 4000);
    char *in_first = mp_alloc(r, 16);
    CHECK(b1 && b2 && in_first);
    CHECK(((uintptr_t)in_first & ~(uintptr_t)8191) == ((uintptr_t)b1 & ~(uintptr_t)8191));
    mp_destroy_pool(r);

    /* ---- cleanups: LIFO on destroy, never on reset; data survives reset ---- */
    mp_pool_t *c = mp_create_pool(256);
    for (int i = 1; i <= 3; i++) {
        mp_cleanup_t *rec = mp_cleanup_add(c, sizeof(int));
        CHECK(rec && rec->data && (uintptr_t)rec->data % MP_ALIGNMENT == 0 && rec->handler == NULL);
        *(int *)rec->data = i;
        rec->handler = note;
    }
    mp_cleanup_t *none = mp_cleanup_add(c, 0);
    CHECK(none && none->data == NULL);
    mp_reset_pool(c);
    for (int i = 0; i < 100; i++) memset(mp_alloc(c, 200), 0x55, 200);
    mp_reset_pool(c);
    CHECK(norder == 0);
    mp_destroy_pool(c);
    CHECK(norder == 3 && order[0] == 3 && order[1] == 2 && order[2] == 1);

    /* ---- reset rewinds: the same memory again ---- */
    mp_reset_pool(p);
    void *again1 = mp_alloc(p, 64);
    mp_reset_pool(p);
    CHECK(mp_alloc(p, 64) == again1);

    mp_destroy_pool(q);
    mp_destroy_pool(p);
    return check_done("arena_api");
}
