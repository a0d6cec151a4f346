/* mt — a multi-threaded program that checks every byte it allocates.
 *
 * Each thread keeps 256 slots and, driven by its own seeded generator,
 * replaces objects (malloc), resizes them (realloc, keeping the common prefix),
 * allocates zeroed arrays (calloc, checked zero), aligned objects
 * (posix_memalign, checked aligned), and sends objects to the next thread,
 * which checks and frees them (cross-thread frees, also of the 32-byte message
 * that carries them). Sizes run from 1 byte to 1 MiB. Every object is filled
 * with a pattern derived from its seed and checked in full before it is freed
 * or resized, so an allocator that overlaps two live objects, loses realloc'd
 * data or returns non-zeroed calloc memory fails here.
 *
 * Output (deterministic): the number of objects and the sum of their seeds.
 * Usage: mt [threads=4] [operations per thread=60000]
 */
#include "wl.h"

#define SLOTS 256

struct msg {
    struct msg *next;
    void *ptr;
    size_t size;
    uint64_t seed;
};

struct inbox {
    pthread_mutex_t lock;
    struct msg *head;
};

struct worker {
    int id;
    uint64_t rng;
    uint64_t sum;  /* seeds of objects this thread retired */
    long created;  /* objects this thread created */
};

static long nthreads, nops;
static struct inbox *inboxes;
static struct worker *workers;

static size_t pick_size(uint64_t *rng) {
    unsigned r = (unsigned)(rng_next(rng) % 1000);
    if (r < 600) return rng_range(rng, 1, 128);
    if (r < 900) return rng_range(rng, 129, 4096);
    if (r < 990) return rng_range(rng, 4097, 65536);
    return rng_range(rng, 65537, 1 << 20);
}

static void retire(struct worker *w, void *p, size_t n, uint64_t seed) {
    if (!fill_ok(p, n, seed)) wl_die("mt: object corrupted");
    w->sum += seed;
}

static void drain(struct worker *w) {
    struct inbox *in = &inboxes[w->id];
    pthread_mutex_lock(&in->lock);
    struct msg *m = in->head;
    in->head = NULL;
    pthread_mutex_unlock(&in->lock);
    while (m) {
        struct msg *next = m->next;
        retire(w, m->ptr, m->size, m->seed);
        free(m->ptr);
        free(m);
        m = next;
    }
}

static void *run(void *arg) {
    struct worker *w = arg;
    void *ptr[SLOTS] = {0};
    size_t size[SLOTS] = {0};
    uint64_t seed[SLOTS] = {0};
    for (long i = 0; i < nops; i++) {
        size_t k = (size_t)(rng_next(&w->rng) % SLOTS);
        unsigned op = (unsigned)(rng_next(&w->rng) % 100);
        uint64_t s = rng_next(&w->rng);
        if (ptr[k] && op < 15) {
            /* realloc: the common prefix must survive. */
            size_t n = pick_size(&w->rng);
            size_t keep = n < size[k] ? n : size[k];
            if (!fill_ok(ptr[k], size[k], seed[k])) wl_die("mt: object corrupted before realloc");
            unsigned char *q = realloc(ptr[k], n);
            if (!q) wl_die("mt: realloc returned NULL");
            if (!fill_ok(q, keep, seed[k])) wl_die("mt: realloc lost data");
            w->sum += seed[k];
            fill(q, n, s);
            ptr[k] = q;
            size[k] = n;
            seed[k] = s;
            w->created++;
            continue;
        }
        if (ptr[k] && op < 45) {
            /* send it to the next thread, which frees it */
            struct msg *m = wl_malloc(sizeof *m);
            *m = (struct msg){.ptr = ptr[k], .size = size[k], .seed = seed[k]};
            struct inbox *in = &inboxes[(w->id + 1) % nthreads];
            pthread_mutex_lock(&in->lock);
            m->next = in->head;
            in->head = m;
            pthread_mutex_unlock(&in->lock);
            ptr[k] = NULL;
        } else if (ptr[k]) {
            retire(w, ptr[k], size[k], seed[k]);
            free(ptr[k]);
            ptr[k] = NULL;
        }
        size_t n = pick_size(&w->rng);
        void *p;
        if (op % 10 == 1) {
            size_t elems = n / 8 + 1;
            unsigned char *z = calloc(elems, 8);
            if (!z) wl_die("mt: calloc returned NULL");
            for (size_t j = 0; j < elems * 8; j++)
                if (z[j]) wl_die("mt: calloc memory not zeroed");
            p = z;
            n = elems * 8;
        } else if (op % 10 == 2) {
            size_t align = (size_t)16 << (rng_next(&w->rng) % 9); /* 16 .. 4096 */
            if (posix_memalign(&p, align, n)) wl_die("mt: posix_memalign failed");
            if ((uintptr_t)p % align) wl_die("mt: posix_memalign misaligned");
        } else {
            p = wl_malloc(n);
        }
        fill(p, n, s);
        ptr[k] = p;
        size[k] = n;
        seed[k] = s;
        w->created++;
        if (i % 64 == 0) drain(w);
    }
    for (int k = 0; k < SLOTS; k++) {
        if (!ptr[k]) continue;
        retire(w, ptr[k], size[k], seed[k]);
        free(ptr[k]);
    }
    return NULL;
}

int main(int argc, char **argv) {
    nthreads = arg_long(argc, argv, 1, 4);
    nops = arg_long(argc, argv, 2, 60000);
    inboxes = calloc((size_t)nthreads, sizeof *inboxes);
    workers = calloc((size_t)nthreads, sizeof *workers);
    pthread_t *tid = calloc((size_t)nthreads, sizeof *tid);
    if (!inboxes || !workers || !tid) wl_die("calloc");
    for (long t = 0; t < nthreads; t++) {
        pthread_mutex_init(&inboxes[t].lock, NULL);
        workers[t] = (struct worker){.id = (int)t, .rng = 0x6d74 + (uint64_t)t * 7919};
        wl_create(&tid[t], run, &workers[t]);
    }
    for (long t = 0; t < nthreads; t++) pthread_join(tid[t], NULL);
    /* Objects sent after their receiver's last drain: main retires them. */
    uint64_t sum = 0;
    long created = 0;
    for (long t = 0; t < nthreads; t++) {
        drain(&workers[t]);
        sum += workers[t].sum;
        created += workers[t].created;
    }
    free(inboxes);
    free(workers);
    free(tid);
    printf("mt: threads=%ld objects=%ld sum=%016llx\n", nthreads, created, (unsigned long long)sum);
    return 0;
}
