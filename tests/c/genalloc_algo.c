/* genalloc's algorithms through the C ABI: set_algo, alloc_algo with each
 * built-in, a user algorithm with the kernel's signature, and the built-ins
 * called directly on a bitmap of the caller's own. */
#include "kmem.h"
#include "check.h"

#define BASE 0x200000000000UL

/* A user algorithm: last fit (highest run that fits). */
static int calls;
static unsigned long last_fit(unsigned long *map, unsigned long size, unsigned long start,
                              unsigned int nr, void *data, struct gen_pool *pool,
                              unsigned long start_addr) {
    (void)start; (void)data; (void)pool; (void)start_addr;
    calls++;
    for (unsigned long p = size - nr + 1; p-- > 0;) {
        unsigned long i;
        for (i = p; i < p + nr; i++)
            if (map[i / 64] >> (i % 64) & 1) break;
        if (i == p + nr) return p;
    }
    return size;
}

int main(void) {
    struct gen_pool *p = gen_pool_create(0, -1); /* 1-byte granules */
    CHECK(gen_pool_add(p, BASE, 100, -1) == 0);
    /* Holes: 0..5 (5), 10..12 (2), 20..23 (3), 30..100 (70). */
    struct genpool_data_fixed fx[3] = {{5}, {12}, {23}};
    unsigned int fxn[3] = {5, 8, 7};
    for (int i = 0; i < 3; i++)
        CHECK(gen_pool_alloc_algo(p, fxn[i], gen_pool_fixed_alloc, &fx[i]) == BASE + fx[i].offset);
    CHECK(gen_pool_alloc_algo(p, 1, gen_pool_fixed_alloc, &fx[0]) == 0);   /* taken */

    gen_pool_set_algo(p, gen_pool_best_fit, NULL);
    unsigned long b = gen_pool_alloc(p, 2);
    CHECK(b == BASE + 10);                                   /* exact fit */
    gen_pool_set_algo(p, gen_pool_worst_fit, NULL);
    unsigned long w = gen_pool_alloc(p, 2);
    CHECK(w == BASE + 30);
    gen_pool_set_algo(p, NULL, NULL);                        /* back to first fit */
    unsigned long f = gen_pool_alloc(p, 4);
    CHECK(f == BASE);
    struct genpool_data_align al = {.align = 16};
    unsigned long a = gen_pool_alloc_algo(p, 3, gen_pool_first_fit_align, &al);
    CHECK(a == BASE + 32);
    unsigned long o = gen_pool_alloc_algo(p, 5, gen_pool_first_fit_order_align, NULL);
    CHECK(o == BASE + 40);                                    /* aligned to 8 */
    gen_pool_set_algo(p, last_fit, NULL);
    unsigned long l = gen_pool_alloc(p, 3);
    CHECK(l == BASE + 97 && calls == 1);
    CHECK(gen_pool_alloc_algo(p, 3, last_fit, NULL) == BASE + 94);

    unsigned long frees[][2] = {{b, 2}, {w, 2}, {f, 4}, {a, 3}, {o, 5}, {l, 3}, {BASE + 94, 3},
                                {BASE + 5, 5}, {BASE + 12, 8}, {BASE + 23, 7}};
    for (unsigned i = 0; i < sizeof frees / sizeof frees[0]; i++) gen_pool_free(p, frees[i][0], frees[i][1]);
    CHECK(gen_pool_avail(p) == 100);
    gen_pool_destroy(p);

    /* The built-ins on a bitmap of our own, as kernel code may call them. */
    unsigned long map[2] = {0x0f0fUL, 0};  /* bits 0-3 and 8-11 set */
    CHECK(gen_pool_first_fit(map, 128, 0, 4, NULL, NULL, 0) == 4);
    CHECK(gen_pool_first_fit(map, 128, 0, 5, NULL, NULL, 0) == 12);
    CHECK(gen_pool_best_fit(map, 128, 0, 4, NULL, NULL, 0) == 4);
    CHECK(gen_pool_worst_fit(map, 128, 0, 1, NULL, NULL, 0) == 12);
    CHECK(gen_pool_first_fit_order_align(map, 128, 0, 3, NULL, NULL, 0) == 4);
    struct genpool_data_align a16 = {16};
    CHECK(gen_pool_first_fit_align(map, 128, 0, 1, &a16, NULL, 0) == 16);
    struct genpool_data_fixed f6 = {6}, f9 = {9};
    CHECK(gen_pool_fixed_alloc(map, 128, 0, 2, &f6, NULL, 0) == 6);
    CHECK(gen_pool_fixed_alloc(map, 128, 0, 1, &f9, NULL, 0) >= 128);
    CHECK(gen_pool_first_fit(map, 128, 0, 200, NULL, NULL, 0) >= 128);
    stderr_capture_begin();
    CHECK(gen_pool_fixed_alloc(map, 128, 0, 1, NULL, NULL, 0) >= 128);
    CHECK(gen_pool_first_fit(NULL, 128, 0, 1, NULL, NULL, 0) >= 128);
    const char *err = stderr_capture_end();
    CHECK(strstr(err, "NULL genpool_data_fixed") && strstr(err, "NULL bitmap"));
    return check_done("genalloc_algo");
}
