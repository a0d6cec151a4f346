/* realloc — buffers grown a few bytes at a time with realloc.
 *
 * Each thread keeps 64 buffers. It picks one and appends 1..64 bytes to it
 * with realloc(buf, len + k), as naive string builders and vectors do; when a
 * buffer passes its limit (256 bytes .. 64 KiB, chosen when it was started) its
 * whole content is checked against a running hash and it is freed. In-place
 * growth and the cost of moving are what this measures.
 *
 * Usage: realloc [threads=2] [appends per thread=4000000]
 * Prints the number of finished buffers and the sum of their hashes.
 */
#include "wl.h"

#define NBUF 64

static long appends;

struct buf {
    unsigned char *p;
    size_t len, limit;
    uint64_t hash;
};

struct result {
    uint64_t seed, sum;
    long finished;
};

static uint64_t hash_step(uint64_t h, unsigned char c) { return (h ^ c) * 0x100000001b3ULL; }

static void finish(struct buf *b, struct result *r) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < b->len; i++) h = hash_step(h, b->p[i]);
    if (h != b->hash) wl_die("realloc lost data: hash mismatch");
    r->sum += h;
    r->finished++;
    free(b->p);
    b->p = NULL;
    b->len = 0;
    b->hash = 0xcbf29ce484222325ULL;
}

static void *worker(void *arg) {
    struct result *r = arg;
    uint64_t rng = r->seed;
    struct buf bufs[NBUF];
    for (int i = 0; i < NBUF; i++) {
        bufs[i] = (struct buf){.p = NULL, .len = 0, .limit = 0, .hash = 0xcbf29ce484222325ULL};
    }
    for (long i = 0; i < appends; i++) {
        struct buf *b = &bufs[rng_next(&rng) % NBUF];
        if (!b->p) b->limit = rng_range(&rng, 256, 65536);
        size_t k = rng_range(&rng, 1, 64);
        unsigned char *q = realloc(b->p, b->len + k);
        if (!q) wl_die("realloc returned NULL");
        b->p = q;
        unsigned char c = (unsigned char)rng_next(&rng);
        for (size_t j = 0; j < k; j++) {
            q[b->len + j] = (unsigned char)(c + j);
            b->hash = hash_step(b->hash, (unsigned char)(c + j));
        }
        b->len += k;
        if (b->len >= b->limit) finish(b, r);
    }
    for (int i = 0; i < NBUF; i++)
        if (bufs[i].p) finish(&bufs[i], r);
    return NULL;
}

int main(int argc, char **argv) {
    long threads = arg_long(argc, argv, 1, 2);
    appends = arg_long(argc, argv, 2, 4000000);
    pthread_t *tid = calloc((size_t)threads, sizeof *tid);
    struct result *res = calloc((size_t)threads, sizeof *res);
    if (!tid || !res) wl_die("calloc");
    for (long t = 0; t < threads; t++) {
        res[t].seed = 0x4ea11 + (uint64_t)t;
        wl_create(&tid[t], worker, &res[t]);
    }
    uint64_t sum = 0;
    long finished = 0;
    for (long t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        sum += res[t].sum;
        finished += res[t].finished;
    }
    free(tid);
    free(res);
    printf("realloc: threads=%ld appends=%ld buffers=%ld sum=%016llx\n", threads, threads * appends,
           finished, (unsigned long long)sum);
    return 0;
}
