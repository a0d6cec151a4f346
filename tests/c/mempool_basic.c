/* mempool: the reserve under a failing backend, the kernel's gfp order,
 * resize, destroy, the page pool, and every kind of bad input. */
#include <errno.h>
#include <stdint.h>
#include <kmem.h>
#include "check.h"

/* A user backend: malloc'd 64-byte buffers, failing on demand, counting. */
static int failing, allocs, frees, calls;
static gfp_t last_gfp[8];
static void *user_alloc(gfp_t gfp, void *pool_data) {
    if (calls < 8) last_gfp[calls] = gfp;
    calls++;
    if (failing || (pool_data && allocs >= *(int *)pool_data)) return NULL;
    allocs++;
    return malloc(64);
}
static void user_free(void *e, void *pool_data) {
    (void)pool_data;
    frees++;
    free(e);
}

int main(void) {
    /* With the backend failing completely, exactly min_nr allocations succeed. */
    mempool_t *pool = mempool_create(4, user_alloc, user_free, NULL);
    CHECK(pool != NULL);
    CHECK(allocs == 4 && last_gfp[0] == GFP_KERNEL);
    failing = 1;
    void *e[5];
    for (int i = 0; i < 4; i++) {
        e[i] = mempool_alloc(pool, GFP_ATOMIC);
        CHECK(e[i] != NULL);
    }
    e[4] = mempool_alloc(pool, GFP_ATOMIC);
    CHECK(e[4] == NULL);
    CHECK(mempool_alloc(pool, GFP_NOWAIT) == NULL);

    /* The kernel's order: a weakened try (no direct reclaim, no I/O, plus
     * NORETRY|NOWARN), then for GFP_KERNEL-like flags the full ones. */
    calls = 0;
    CHECK(mempool_alloc(pool, GFP_ATOMIC) == NULL);
    CHECK(calls == 1);
    CHECK((last_gfp[0] & __GFP_NORETRY) && (last_gfp[0] & __GFP_NOWARN));

    /* Frees refill the reserve; the next goes back to the backend. */
    failing = 0;
    for (int i = 0; i < 4; i++) mempool_free(e[i], pool);
    CHECK(frees == 0);
    void *x = mempool_alloc(pool, GFP_KERNEL);
    CHECK(x != NULL && allocs == 5);
    mempool_free(x, pool);
    CHECK(frees == 1);

    /* __GFP_ZERO is refused and reported. */
    stderr_capture_begin();
    void *z = mempool_alloc(pool, GFP_KERNEL | __GFP_ZERO);
    const char *err = stderr_capture_end();
    CHECK(z == NULL);
    CHECK(strstr(err, "__GFP_ZERO") != NULL && strstr(err, "mempool 0x") != NULL);

    /* Resize: grow fills from the backend, shrink gives back the surplus. */
    CHECK(mempool_resize(pool, 10) == 0);
    CHECK(allocs == 11);
    CHECK(mempool_resize(pool, 2) == 0);
    CHECK(frees == 9);
    stderr_capture_begin();
    CHECK(mempool_resize(pool, 0) == -EINVAL);
    CHECK(mempool_resize(pool, -3) == -EINVAL);
    CHECK(mempool_resize(NULL, 3) == -EINVAL);
    err = stderr_capture_end();
    CHECK(strstr(err, "new_min_nr 0") != NULL && strstr(err, "new_min_nr -3") != NULL);
    CHECK(strstr(err, "mempool_resize: NULL pool") != NULL);

    /* Destroy with an element out: reported, pool kept and still usable. */
    void *held = mempool_alloc(pool, GFP_KERNEL);
    stderr_capture_begin();
    mempool_destroy(pool);
    err = stderr_capture_end();
    CHECK(strstr(err, "1 element(s) still allocated; pool kept") != NULL);
    mempool_free(held, pool);

    /* A double free (nothing outstanding) is reported and changes nothing. */
    int frees_before = frees;
    stderr_capture_begin();
    mempool_free(held, pool);
    err = stderr_capture_end();
    CHECK(strstr(err, "freed while no element is outstanding") != NULL);
    CHECK(frees == frees_before);

    /* Freeing NULL is a no-op, silently, as in the kernel. */
    stderr_capture_begin();
    mempool_free(NULL, pool);
    mempool_destroy(NULL);
    err = stderr_capture_end();
    CHECK(err[0] == 0);

    mempool_destroy(pool);
    CHECK(allocs == frees);

    /* A destroyed or foreign pool is recognised. */
    int on_stack = 0;
    stderr_capture_begin();
    CHECK(mempool_alloc(pool, GFP_ATOMIC) == NULL);
    CHECK(mempool_alloc((mempool_t *)&on_stack, GFP_ATOMIC) == NULL);
    CHECK(mempool_alloc(NULL, GFP_KERNEL) == NULL);
    mempool_free(&on_stack, NULL);
    err = stderr_capture_end();
    CHECK(strstr(err, "is not a mempool") != NULL);
    CHECK(strstr(err, "mempool_alloc: NULL pool") != NULL);
    CHECK(strstr(err, "mempool_free: NULL pool") != NULL);

    /* Creation fails cleanly, freeing what it got. */
    int budget = 3;
    allocs = frees = 0;
    CHECK(mempool_create(5, user_alloc, user_free, &budget) == NULL);
    CHECK(allocs == 3 && frees == 3);
    stderr_capture_begin();
    CHECK(mempool_create(-1, user_alloc, user_free, NULL) == NULL);
    CHECK(mempool_create(1, NULL, user_free, NULL) == NULL);
    CHECK(mempool_create_page_pool(1, 11) == NULL);
    CHECK(mempool_create_page_pool(1, -1) == NULL);
    err = stderr_capture_end();
    CHECK(strstr(err, "min_nr -1 is negative") != NULL);
    CHECK(strstr(err, "NULL alloc_fn") != NULL);
    CHECK(strstr(err, "order 11") != NULL && strstr(err, "order -1") != NULL);

    /* min_nr 0 is allowed. */
    mempool_t *zero = mempool_create(0, user_alloc, user_free, NULL);
    CHECK(zero != NULL);
    mempool_destroy(zero);

    /* The page pool: blocks of 2^order pages, aligned to their size. */
    mempool_t *pages = mempool_create_page_pool(8, 2);
    CHECK(pages != NULL);
    void *blk[8];
    for (int i = 0; i < 8; i++) {
        blk[i] = mempool_alloc(pages, GFP_KERNEL);
        CHECK(blk[i] != NULL && ((uintptr_t)blk[i] % (4 * PAGE_SIZE)) == 0);
        memset(blk[i], 0x5a, 4 * PAGE_SIZE);
    }
    for (int i = 0; i < 8; i++) mempool_free(blk[i], pages);
    CHECK(mempool_resize(pages, 16) == 0);
    mempool_destroy(pages);

    /* The stock page pair refuses what is not its own. */
    stderr_capture_begin();
    mempool_free_pages(&on_stack, (void *)0L);
    void *one = mempool_alloc_pages(GFP_KERNEL, (void *)1L);
    mempool_free_pages(one, (void *)0L);   /* wrong order: refused */
    err = stderr_capture_end();
    CHECK(one != NULL);
    CHECK(strstr(err, "not memory kmem handed out") != NULL);
    CHECK(strstr(err, "order-1 block, freed as order 0") != NULL);
    mempool_free_pages(one, (void *)1L);
    stderr_capture_begin();
    CHECK(mempool_alloc_pages(GFP_KERNEL, (void *)11L) == NULL);
    err = stderr_capture_end();
    CHECK(strstr(err, "order 11 is above MAX_PAGE_ORDER") != NULL);

    return check_done("mempool_basic");
}
