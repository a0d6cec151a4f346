/* churn — small-object churn, each thread on its own.
 *
 * Each thread keeps a ring of 2048 slots of 8..128-byte objects: it replaces a
 * random slot's object, and every 50000 operations frees the whole ring in
 * allocation order and refills it (a phase change, as a request handler or a
 * parser resets its state). The per-thread fast path is all that matters here.
 *
 * Usage: churn [threads=2] [ops per thread=36000000]
 * Prints the number of operations and the sum of freed objects' tags.
 */
#include "wl.h"

#define RING 2048
#define PHASE 50000

static long ops;

struct result {
    uint64_t seed, sum;
};

static void *worker(void *arg) {
    struct result *r = arg;
    uint64_t rng = r->seed;
    static __thread void *ptr[RING];
    static __thread size_t size[RING];
    static __thread uint64_t tag[RING];
    for (int k = 0; k < RING; k++) ptr[k] = NULL;
    for (long i = 0; i < ops; i++) {
        if (i % PHASE == PHASE - 1) {
            for (int k = 0; k < RING; k++) {
                if (!ptr[k]) continue;
                tag_check(ptr[k], size[k], tag[k]);
                r->sum += tag[k];
                free(ptr[k]);
                ptr[k] = NULL;
            }
            continue;
        }
        size_t k = (size_t)(rng_next(&rng) % RING);
        if (ptr[k]) {
            tag_check(ptr[k], size[k], tag[k]);
            r->sum += tag[k];
            free(ptr[k]);
        }
        size[k] = rng_range(&rng, 8, 128);
        tag[k] = rng_next(&rng);
        ptr[k] = wl_malloc(size[k]);
        tag_set(ptr[k], size[k], tag[k]);
    }
    for (int k = 0; k < RING; k++) {
        if (!ptr[k]) continue;
        r->sum += tag_get(ptr[k], size[k]);
        free(ptr[k]);
    }
    return NULL;
}

int main(int argc, char **argv) {
    long threads = arg_long(argc, argv, 1, 2);
    ops = arg_long(argc, argv, 2, 36000000);
    pthread_t *tid = calloc((size_t)threads, sizeof *tid);
    struct result *res = calloc((size_t)threads, sizeof *res);
    if (!tid || !res) wl_die("calloc");
    for (long t = 0; t < threads; t++) {
        res[t].seed = 0xc4u + (uint64_t)t;
        wl_create(&tid[t], worker, &res[t]);
    }
    uint64_t sum = 0;
    for (long t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        sum += res[t].sum;
    }
    free(tid);
    free(res);
    printf("churn: threads=%ld ops=%ld sum=%016llx\n", threads, threads * ops, (unsigned long long)sum);
    return 0;
}
