/* xmalloc — cross-thread producer/consumer frees.
 *
 * After Lever & Boreham's xmalloc-test: producers allocate objects of 24..512
 * bytes and pass them, in batches of 64, through a bounded queue to consumers,
 * which check and free them. Every object is freed by a thread other than the
 * one that allocated it, which is the path per-thread caches find hardest.
 *
 * Usage: xmalloc [threads=2] [objects per producer=16000000]
 * threads/2 producers (at least 1) and as many consumers.
 * Prints the number of objects and the sum of their tags (deterministic).
 */
#include "wl.h"

#define BATCH 64
#define QCAP 256

struct batch {
    void *obj[BATCH];
    int n;
};

static struct batch queue[QCAP];
static size_t q_head, q_tail; /* q_tail - q_head = batches queued */
static int producers_left;
static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_not_full = PTHREAD_COND_INITIALIZER;
static pthread_cond_t q_not_empty = PTHREAD_COND_INITIALIZER;
static long per_producer;

struct result {
    uint64_t sum;
    long count;
};

static void *producer(void *arg) {
    uint64_t rng = 0xc0ffee + (uint64_t)(uintptr_t)arg;
    struct batch b = {.n = 0};
    for (long i = 0; i < per_producer; i++) {
        size_t n = rng_range(&rng, 24, 512);
        void *p = wl_malloc(n);
        uint64_t tag = rng_next(&rng);
        /* The consumer learns the size from the object itself (bytes 8..16). */
        tag_set(p, n, tag);
        memcpy((char *)p + 8, &n, sizeof n);
        b.obj[b.n++] = p;
        if (b.n == BATCH || i + 1 == per_producer) {
            pthread_mutex_lock(&q_lock);
            while (q_tail - q_head == QCAP) pthread_cond_wait(&q_not_full, &q_lock);
            queue[q_tail++ % QCAP] = b;
            pthread_cond_signal(&q_not_empty);
            pthread_mutex_unlock(&q_lock);
            b.n = 0;
        }
    }
    pthread_mutex_lock(&q_lock);
    producers_left--;
    pthread_cond_broadcast(&q_not_empty);
    pthread_mutex_unlock(&q_lock);
    return NULL;
}

static void *consumer(void *arg) {
    struct result *r = arg;
    for (;;) {
        pthread_mutex_lock(&q_lock);
        while (q_tail == q_head && producers_left > 0) pthread_cond_wait(&q_not_empty, &q_lock);
        if (q_tail == q_head) {
            pthread_mutex_unlock(&q_lock);
            return NULL;
        }
        struct batch b = queue[q_head++ % QCAP];
        pthread_cond_signal(&q_not_full);
        pthread_mutex_unlock(&q_lock);
        for (int i = 0; i < b.n; i++) {
            size_t n;
            memcpy(&n, (char *)b.obj[i] + 8, sizeof n);
            if (n < 24 || n > 512) wl_die("object corrupted: bad size");
            r->sum += tag_get(b.obj[i], n);
            r->count++;
            free(b.obj[i]);
        }
    }
}

int main(int argc, char **argv) {
    long threads = arg_long(argc, argv, 1, 2);
    per_producer = arg_long(argc, argv, 2, 16000000);
    long pairs = threads / 2 > 0 ? threads / 2 : 1;
    producers_left = (int)pairs;
    pthread_t *tid = calloc((size_t)pairs * 2, sizeof *tid);
    struct result *res = calloc((size_t)pairs, sizeof *res);
    if (!tid || !res) wl_die("calloc");
    for (long i = 0; i < pairs; i++) wl_create(&tid[i], producer, (void *)(uintptr_t)i);
    for (long i = 0; i < pairs; i++) wl_create(&tid[pairs + i], consumer, &res[i]);
    for (long i = 0; i < 2 * pairs; i++) pthread_join(tid[i], NULL);
    uint64_t sum = 0;
    long count = 0;
    for (long i = 0; i < pairs; i++) {
        sum += res[i].sum;
        count += res[i].count;
    }
    free(tid);
    free(res);
    printf("xmalloc: producers=%ld consumers=%ld objects=%ld sum=%016llx\n", pairs, pairs, count,
           (unsigned long long)sum);
    return count == pairs * per_producer ? 0 : 1;
}
