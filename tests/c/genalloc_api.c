/* genalloc through the C ABI: every function, and bad input reported on
 * stderr with no change of state. The managed ranges are never mapped. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include "kmem.h"
#include "check.h"

#define BASE 0x100000000000UL /* nothing is mapped here */

static void count_chunk(struct gen_pool *pool, struct gen_pool_chunk *c, void *data) {
    (void)pool;
    size_t *acc = data;
    acc[0]++;
    acc[1] += gen_pool_chunk_end(c) - gen_pool_chunk_start(c) + 1;
    acc[2] += gen_pool_chunk_avail(c);
    if (gen_pool_chunk_start(c) == BASE) acc[3] = (size_t)gen_pool_chunk_phys(c);
}

static void test_basics(void) {
    struct gen_pool *p = gen_pool_create(12, -1);
    CHECK(p != NULL);
    CHECK(gen_pool_min_alloc_order(p) == 12);
    CHECK(gen_pool_add_virt(p, BASE, 0x80000000ULL, 1 << 20, -1) == 0);
    CHECK(gen_pool_add(p, BASE + (1UL << 30), 1 << 16, -1) == 0);
    CHECK(gen_pool_size(p) == (1 << 20) + (1 << 16));
    CHECK(gen_pool_avail(p) == gen_pool_size(p));

    /* The newest chunk is searched first, as in the kernel. */
    unsigned long a = gen_pool_alloc(p, 5000);
    CHECK(a == BASE + (1UL << 30));
    CHECK(gen_pool_avail(p) == (1 << 20) + (1 << 16) - 8192);
    unsigned long big = gen_pool_alloc(p, 1 << 19);
    CHECK(big == BASE);
    CHECK(gen_pool_virt_to_phys(p, big + 0x123) == 0x80000123ULL);
    CHECK(gen_pool_virt_to_phys(p, a) == (phys_addr_t)-1);       /* added without phys */
    CHECK(gen_pool_virt_to_phys(p, 0x1000) == (phys_addr_t)-1);  /* in no chunk */
    CHECK(gen_pool_has_addr(p, BASE, 1 << 20));
    CHECK(!gen_pool_has_addr(p, BASE + (1 << 20) - 4096, 8192));

    dma_addr_t dma = 0;
    void *v = gen_pool_dma_alloc(p, 4096, &dma);
    CHECK(v != NULL && dma != 0);
    CHECK(gen_pool_virt_to_phys(p, (unsigned long)v) == dma || dma == (dma_addr_t)-1);
    void *w = gen_pool_dma_alloc_align(p, 4096, &dma, 1 << 18);
    CHECK(w != NULL && (unsigned long)w % (1 << 18) == 0);
    CHECK(dma == 0x80000000ULL + ((unsigned long)w - BASE));

    size_t acc[4] = {0, 0, 0, 0};
    gen_pool_for_each_chunk(p, count_chunk, acc);
    CHECK(acc[0] == 2);
    CHECK(acc[1] == gen_pool_size(p));
    CHECK(acc[2] == gen_pool_avail(p));
    CHECK(acc[3] == 0x80000000UL);

    gen_pool_free(p, a, 5000);
    gen_pool_free(p, big, 1 << 19);
    gen_pool_free(p, (unsigned long)v, 4096);
    gen_pool_free(p, (unsigned long)w, 4096);
    CHECK(gen_pool_avail(p) == gen_pool_size(p));
    gen_pool_destroy(p);
}

static void test_bad_input(void) {
    struct gen_pool *p = gen_pool_create(12, -1);
    CHECK(gen_pool_add(p, BASE, 1 << 20, -1) == 0);
    unsigned long a = gen_pool_alloc(p, 3 * 4096);
    size_t avail = gen_pool_avail(p);
    const char *err;

    stderr_capture_begin();
    gen_pool_free(p, BASE + (2UL << 20), 4096);                  /* outside any chunk */
    err = stderr_capture_end();
    CHECK(strstr(err, "kmem: gen_pool_free") && strstr(err, "in no chunk"));

    stderr_capture_begin();
    gen_pool_free(p, a + 100, 4096);                              /* unaligned */
    err = stderr_capture_end();
    CHECK(strstr(err, "granule boundary") != NULL);

    stderr_capture_begin();
    gen_pool_free(p, a, 4 * 4096);                                /* not (all) allocated */
    err = stderr_capture_end();
    CHECK(strstr(err, "not allocated") != NULL);

    stderr_capture_begin();
    gen_pool_free(p, BASE + (1 << 20) - 4096, 8192);              /* past the chunk's end */
    err = stderr_capture_end();
    CHECK(strstr(err, "runs past the end") != NULL);

    stderr_capture_begin();
    gen_pool_free(p, a, 0);                                       /* size 0 */
    CHECK(gen_pool_alloc(p, 0) == 0);
    err = stderr_capture_end();
    CHECK(strstr(err, "gen_pool_free") && strstr(err, "gen_pool_alloc") && strstr(err, "size 0"));

    stderr_capture_begin();
    CHECK(gen_pool_add(p, BASE + (1 << 19), 1 << 20, -1) == -EINVAL); /* overlaps */
    CHECK(gen_pool_add(p, BASE + (8UL << 20), 100, -1) == -EINVAL);   /* under a granule */
    err = stderr_capture_end();
    CHECK(strstr(err, "overlaps") && strstr(err, "smaller than one granule"));
    CHECK(gen_pool_size(p) == 1 << 20);
    CHECK(gen_pool_avail(p) == avail);

    stderr_capture_begin();
    CHECK(gen_pool_create(63, -1) == NULL);
    CHECK(gen_pool_create(-1, -1) == NULL);
    CHECK(gen_pool_alloc(NULL, 4096) == 0);
    gen_pool_free(NULL, a, 4096);
    CHECK(gen_pool_alloc_algo(p, 4096, gen_pool_fixed_alloc, NULL) == 0);
    struct genpool_data_align bad = {.align = 3};
    CHECK(gen_pool_alloc_algo(p, 4096, gen_pool_first_fit_align, &bad) == 0);
    err = stderr_capture_end();
    CHECK(strstr(err, "NULL pool") && strstr(err, "genpool_data_fixed") && strstr(err, "power of two"));
    CHECK(gen_pool_avail(p) == avail);

    /* A double free: the second is reported and changes nothing. */
    gen_pool_free(p, a, 4096);
    avail = gen_pool_avail(p);
    stderr_capture_begin();
    gen_pool_free(p, a, 4096);
    err = stderr_capture_end();
    CHECK(strstr(err, "double free") != NULL);
    CHECK(gen_pool_avail(p) == avail);

    /* Destroy with live allocations: reported, pool kept and usable. */
    stderr_capture_begin();
    gen_pool_destroy(p);
    err = stderr_capture_end();
    CHECK(strstr(err, "gen_pool_destroy") && strstr(err, "8192 bytes allocated"));
    CHECK(gen_pool_avail(p) == avail);
    gen_pool_free(p, a + 4096, 2 * 4096);
    CHECK(gen_pool_avail(p) == gen_pool_size(p));
    stderr_capture_begin();
    gen_pool_destroy(p);
    err = stderr_capture_end();
    CHECK(err[0] == 0);
}

struct thread_arg { struct gen_pool *p; int bad; };

static void *worker(void *v) {
    struct thread_arg *t = v;
    unsigned long held[16];
    for (int round = 0; round < 20000; round++) {
        int n = 0;
        for (int i = 0; i < 16; i++) {
            held[n] = gen_pool_alloc(t->p, (size_t)(i % 4 + 1) * 4096);
            if (held[n]) n++;
        }
        for (int i = 0; i < n; i++) gen_pool_free(t->p, held[i], (size_t)(i % 4 + 1) * 4096);
        if (n != 16) t->bad++;
    }
    return NULL;
}

static void test_threads(void) {
    struct gen_pool *p = gen_pool_create(12, -1);
    CHECK(gen_pool_add(p, BASE, 4 * 16 * 10 * 4096, -1) == 0);
    pthread_t th[4];
    struct thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct thread_arg){p, 0};
        pthread_create(&th[i], NULL, worker, &args[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(args[i].bad == 0);   /* the pool holds 4 x 40 granules at most */
    }
    CHECK(gen_pool_avail(p) == gen_pool_size(p));
    gen_pool_destroy(p);
}

int main(void) {
    test_basics();
    test_bad_input();
    test_threads();
    return check_done("genalloc_api");
}
