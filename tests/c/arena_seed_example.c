/* The seed's user-space memory pool (§4.1, with the statistics of §4.3.3),
 * compiled against include/kmem.h.
 *
 * §4.1 defines the pool (mp_pool_s, mp_node_s, mp_large_s, mp_create_pool,
 * mp_alloc_small, mp_alloc_large, mp_alloc) but gives no main(); here the
 * pool comes from libkmem, and the program uses it the way the seed's code
 * is meant to be used: create a pool of MP_PAGE_SIZE, take small
 * allocations (aligned to MP_ALIGNMENT, bumped from the blocks) and large
 * ones (above MP_MAX_ALLOC_FROM_POOL, listed), with §4.3.3's
 * mp_alloc_with_stats keeping the seed's statistics beside the pool's own.
 * Adapted only as needed: the structures are libkmem's (mp_pool_t is
 * opaque), and the pool is freed with mp_destroy_pool. The seed includes
 * <pthread.h>; libkmem's pools are thread-safe, so the last part shares one
 * pool between threads.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include "kmem.h"
#include "check.h"

/* §4.3.3: "add statistics to the pool" — here kept by the caller, to check
 * that the pool's own mp_pool_stats counts the same way. */
static struct mp_pool_stats seed_stats;

static void *mp_alloc_with_stats(mp_pool_t *pool, size_t size) {
    void *p = mp_alloc(pool, size);
    if (p) {
        seed_stats.allocation_count++;
        seed_stats.current_allocated += size;
        if (seed_stats.current_allocated > seed_stats.peak_allocated) {
            seed_stats.peak_allocated = seed_stats.current_allocated;
        }
    } else {
        seed_stats.failed_count++;
    }
    return p;
}

struct worker { mp_pool_t *pool; int id; int ok; };

static void *work(void *arg) {
    struct worker *w = arg;
    unsigned char *mine[500];
    w->ok = 1;
    for (int i = 0; i < 500; i++) {
        mine[i] = mp_alloc(w->pool, 24);
        if (!mine[i]) { w->ok = 0; return NULL; }
        memset(mine[i], w->id, 24);
    }
    for (int i = 0; i < 500; i++)
        for (int j = 0; j < 24; j++)
            if (mine[i][j] != (unsigned char)w->id) w->ok = 0;
    return NULL;
}

int main(void) {
    mp_pool_t *p = mp_create_pool(MP_PAGE_SIZE);
    CHECK(p != NULL);

    /* Small allocations: bumped, MP_ALIGNMENT-aligned, one after another. */
    char *a = mp_alloc_with_stats(p, 10);
    char *b = mp_alloc_with_stats(p, 20);
    CHECK(a && b);
    CHECK((uintptr_t)a % MP_ALIGNMENT == 0 && (uintptr_t)b % MP_ALIGNMENT == 0);
    CHECK(b == a + 16); /* 10 bytes rounded up to the next 16-byte boundary */
    strcpy(a, "hello");
    memset(b, 'x', 20);

    /* Up to MP_MAX_ALLOC_FROM_POOL is small; above it, a large allocation. */
    char *edge = mp_alloc_with_stats(p, MP_MAX_ALLOC_FROM_POOL);
    char *large = mp_alloc_with_stats(p, MP_MAX_ALLOC_FROM_POOL + 1);
    CHECK(edge && large);
    memset(edge, 1, MP_MAX_ALLOC_FROM_POOL);
    memset(large, 2, MP_MAX_ALLOC_FROM_POOL + 1);
    CHECK(mp_free(p, edge) == -1);  /* small: freed with the pool */
    CHECK(mp_free(p, large) == 0);  /* large: freed now */
    seed_stats.current_allocated -= MP_MAX_ALLOC_FROM_POOL + 1;

    /* Many allocations of every size the seed's code would serve. */
    for (size_t size = 1; size <= 3 * MP_PAGE_SIZE; size += 37) {
        unsigned char *m = mp_alloc_with_stats(p, size);
        CHECK(m && (uintptr_t)m % MP_ALIGNMENT == 0);
        if (m) memset(m, 0xAB, size);
    }
    CHECK(strcmp(a, "hello") == 0 && b[19] == 'x');

    struct mp_pool_stats s;
    mp_pool_stats(p, &s);
    CHECK(s.allocation_count == seed_stats.allocation_count);
    CHECK(s.current_allocated == seed_stats.current_allocated);
    CHECK(s.peak_allocated == seed_stats.peak_allocated);
    CHECK(s.failed_count == seed_stats.failed_count && s.failed_count == 0);
    CHECK(s.free_count == 1);

    /* The seed includes <pthread.h>: one pool, four threads. */
    pthread_t t[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){ p, i + 1, 0 };
        pthread_create(&t[i], NULL, work, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK(w[i].ok);
    }
    mp_pool_stats(p, &s);
    CHECK(s.allocation_count == seed_stats.allocation_count + 4 * 500);

    /* Good input is never reported. */
    stderr_capture_begin();
    mp_reset_pool(p);
    mp_destroy_pool(p);
    CHECK(stderr_capture_end()[0] == 0);
    return check_done("arena_seed_example");
}
