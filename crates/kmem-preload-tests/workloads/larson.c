/* larson — a server whose threads allocate objects that other threads free.
 *
 * After Larson & Krishnan's benchmark: each worker owns an array of slots and
 * repeatedly frees a random slot's object and puts a new one of random size
 * (8..1000 bytes) there. At the end of each epoch every worker exits, and the
 * next epoch's workers take over the arrays rotated by one: each new thread
 * frees objects that a thread which has since exited allocated.
 *
 * Usage: larson [threads=2] [ops per thread per epoch=2400000] [epochs=8] [slots=5000]
 * Prints the sum of every freed object's tag (deterministic).
 */
#include "wl.h"

struct slots {
    void **ptr;
    size_t *size;
    uint64_t *tag;
    uint64_t rng;
    uint64_t sum;
};

static long nslots, ops;
static struct slots *arrays;

static void *worker(void *arg) {
    struct slots *a = arg;
    for (long i = 0; i < ops; i++) {
        size_t k = (size_t)(rng_next(&a->rng) % (uint64_t)nslots);
        if (a->ptr[k]) {
            tag_check(a->ptr[k], a->size[k], a->tag[k]);
            a->sum += a->tag[k];
            free(a->ptr[k]);
        }
        size_t n = rng_range(&a->rng, 8, 1000);
        uint64_t tag = rng_next(&a->rng);
        a->ptr[k] = wl_malloc(n);
        tag_set(a->ptr[k], n, tag);
        a->size[k] = n;
        a->tag[k] = tag;
    }
    return NULL;
}

int main(int argc, char **argv) {
    long threads = arg_long(argc, argv, 1, 2);
    ops = arg_long(argc, argv, 2, 2400000);
    long epochs = arg_long(argc, argv, 3, 8);
    nslots = arg_long(argc, argv, 4, 5000);

    arrays = calloc((size_t)threads, sizeof *arrays);
    pthread_t *tid = calloc((size_t)threads, sizeof *tid);
    if (!arrays || !tid) wl_die("calloc");
    for (long t = 0; t < threads; t++) {
        arrays[t].ptr = calloc((size_t)nslots, sizeof(void *));
        arrays[t].size = calloc((size_t)nslots, sizeof(size_t));
        arrays[t].tag = calloc((size_t)nslots, sizeof(uint64_t));
        if (!arrays[t].ptr || !arrays[t].size || !arrays[t].tag) wl_die("calloc");
        arrays[t].rng = 0x1a250 + (uint64_t)t;
    }
    for (long e = 0; e < epochs; e++) {
        /* Epoch e's thread t works on array (t + e) % threads. */
        for (long t = 0; t < threads; t++) wl_create(&tid[t], worker, &arrays[(t + e) % threads]);
        for (long t = 0; t < threads; t++) pthread_join(tid[t], NULL);
    }
    uint64_t sum = 0;
    long live = 0;
    for (long t = 0; t < threads; t++) {
        for (long k = 0; k < nslots; k++) {
            if (!arrays[t].ptr[k]) continue;
            tag_check(arrays[t].ptr[k], arrays[t].size[k], arrays[t].tag[k]);
            sum += arrays[t].tag[k];
            free(arrays[t].ptr[k]);
            live++;
        }
        sum += arrays[t].sum;
        free(arrays[t].ptr);
        free(arrays[t].size);
        free(arrays[t].tag);
    }
    free(arrays);
    free(tid);
    printf("larson: threads=%ld epochs=%ld ops=%ld live-at-end=%ld sum=%016llx\n", threads, epochs,
           threads * epochs * ops, live, (unsigned long long)sum);
    return 0;
}
