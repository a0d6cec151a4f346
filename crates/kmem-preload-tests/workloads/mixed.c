/* mixed — mixed sizes around a long-lived working set.
 *
 * Each thread first allocates a working set of objects, half of which stay
 * until the end (long-lived: they pin the pages they sit on), then replaces
 * random objects of the other half. Sizes follow a skewed mix: 70% 16..256
 * bytes, 20% 256 B..4 KiB, 9% 4..32 KiB, 1% 64..512 KiB. Every object is
 * written in full, as a program would, so peak RSS measures how well the
 * allocator packs and reuses memory, not only its metadata.
 *
 * Usage: mixed [threads=2] [replacements per thread=6000000] [working set per thread=10000]
 * Prints the sum of freed objects' tags and the bytes allocated.
 */
#include "wl.h"

static long replacements, wset;

struct result {
    uint64_t seed, sum, bytes;
};

static size_t pick_size(uint64_t *rng) {
    unsigned r = (unsigned)(rng_next(rng) % 100);
    if (r < 70) return rng_range(rng, 16, 256);
    if (r < 90) return rng_range(rng, 257, 4096);
    if (r < 99) return rng_range(rng, 4097, 32768);
    return rng_range(rng, 65536, 524288);
}

static void *make(uint64_t *rng, size_t *n, uint64_t *tag, struct result *r) {
    *n = pick_size(rng);
    *tag = rng_next(rng);
    void *p = wl_malloc(*n);
    if (*n <= 4096) {
        memset(p, (int)(*tag & 0xff), *n);
    } else {
        /* Large objects: touch every page, as a program filling it would. */
        for (size_t off = 0; off < *n; off += 4096)
            memset((char *)p + off, (int)(*tag & 0xff), *n - off < 64 ? *n - off : 64);
    }
    tag_set(p, *n, *tag);
    r->bytes += *n;
    return p;
}

static void *worker(void *arg) {
    struct result *r = arg;
    uint64_t rng = r->seed;
    void **ptr = calloc((size_t)wset, sizeof *ptr);
    size_t *size = calloc((size_t)wset, sizeof *size);
    uint64_t *tag = calloc((size_t)wset, sizeof *tag);
    if (!ptr || !size || !tag) wl_die("calloc");
    for (long k = 0; k < wset; k++) ptr[k] = make(&rng, &size[k], &tag[k], r);
    long half = wset / 2 > 0 ? wset / 2 : 1;
    for (long i = 0; i < replacements; i++) {
        /* Only the upper half is replaced: the lower half is long-lived. */
        size_t k = (size_t)(wset - half) + (size_t)(rng_next(&rng) % (uint64_t)half);
        tag_check(ptr[k], size[k], tag[k]);
        r->sum += tag[k];
        free(ptr[k]);
        ptr[k] = make(&rng, &size[k], &tag[k], r);
    }
    for (long k = 0; k < wset; k++) {
        tag_check(ptr[k], size[k], tag[k]);
        r->sum += tag[k];
        free(ptr[k]);
    }
    free(ptr);
    free(size);
    free(tag);
    return NULL;
}

int main(int argc, char **argv) {
    long threads = arg_long(argc, argv, 1, 2);
    replacements = arg_long(argc, argv, 2, 6000000);
    wset = arg_long(argc, argv, 3, 10000);
    pthread_t *tid = calloc((size_t)threads, sizeof *tid);
    struct result *res = calloc((size_t)threads, sizeof *res);
    if (!tid || !res) wl_die("calloc");
    for (long t = 0; t < threads; t++) {
        res[t].seed = 0x313ed + (uint64_t)t;
        wl_create(&tid[t], worker, &res[t]);
    }
    uint64_t sum = 0, bytes = 0;
    for (long t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        sum += res[t].sum;
        bytes += res[t].bytes;
    }
    free(tid);
    free(res);
    printf("mixed: threads=%ld replacements=%ld bytes=%llu sum=%016llx\n", threads, threads * replacements,
           (unsigned long long)bytes, (unsigned long long)sum);
    printf("# peak-ish rss at exit: %ld KiB\n", rss_kib());
    return 0;
}
