/* slab: create, alloc, free, zalloc, bulk, ctor semantics, alignment,
 * shrink, size, slabinfo, objects freed by other threads. */
#include <kmem.h>
#include <pthread.h>
#include <stdint.h>
#include "check.h"

static int ctor_calls;
static void ctor(void *p) {
    __atomic_fetch_add(&ctor_calls, 1, __ATOMIC_SEQ_CST);
    memset(p, 0x5a, 40);
}

#define NOBJ 1000
static void *objs[NOBJ];
static struct kmem_cache *shared_cache;

static void *freer(void *arg) {
    (void)arg;
    for (int i = 0; i < NOBJ; i++) {
        CHECK(*(int *)objs[i] == i);
        kmem_cache_free(shared_cache, objs[i]);
    }
    return NULL;
}

int main(void) {
    struct kmem_cache *c = kmem_cache_create("c_basic", 40, 0, SLAB_HWCACHE_ALIGN, ctor);
    CHECK(c != NULL);
    CHECK(kmem_cache_size(c) == 40);
    void *p = kmem_cache_alloc(c, GFP_KERNEL);
    CHECK(p != NULL);
    CHECK(((uintptr_t)p & 63) == 0);
    int after_first = ctor_calls;
    CHECK(after_first > 1); /* a whole slab was constructed */
    CHECK(((unsigned char *)p)[39] == 0x5a);
    ((unsigned char *)p)[0] = 1;
    kmem_cache_free(c, p);
    void *q = kmem_cache_alloc(c, GFP_KERNEL);
    CHECK(q == p);                            /* LIFO */
    CHECK(((unsigned char *)q)[0] == 1);      /* not re-constructed */
    CHECK(ctor_calls == after_first);
    kmem_cache_free(c, q);
    void *z = kmem_cache_zalloc(c, GFP_KERNEL);
    CHECK(z && ((unsigned char *)z)[0] == 0 && ((unsigned char *)z)[39] == 0);
    kmem_cache_free(c, z);

    void *bulk[300];
    CHECK(kmem_cache_alloc_bulk(c, GFP_KERNEL, 300, bulk) == 300);
    for (int i = 0; i < 300; i++) CHECK(bulk[i] != NULL);
    kmem_cache_free_bulk(c, 300, bulk);
    CHECK(kmem_cache_shrink(c) == 0);

    struct kmem_cache *a = kmem_cache_create("c_aligned", 100, 256, 0, NULL);
    CHECK(a != NULL);
    for (int i = 0; i < 50; i++) {
        void *o = kmem_cache_alloc(a, GFP_KERNEL);
        CHECK(((uintptr_t)o & 255) == 0);
        kmem_cache_free(a, o);
    }
    kmem_cache_destroy(a);

    /* Objects allocated here, freed by another thread. */
    shared_cache = kmem_cache_create("c_xthread", 64, 0, 0, NULL);
    for (int i = 0; i < NOBJ; i++) {
        objs[i] = kmem_cache_alloc(shared_cache, GFP_KERNEL);
        *(int *)objs[i] = i;
    }
    pthread_t t;
    pthread_create(&t, NULL, freer, NULL);
    pthread_join(t, NULL);
    CHECK(kmem_cache_shrink(shared_cache) == 0);

    /* slabinfo through a pipe. */
    int fds[2];
    CHECK(pipe(fds) == 0);
    void *keep = kmem_cache_alloc(c, GFP_KERNEL);
    CHECK(kmem_slabinfo_write(fds[1]) == 0);
    close(fds[1]);
    static char buf[65536];
    ssize_t n = 0, r;
    while ((r = read(fds[0], buf + n, sizeof buf - 1 - n)) > 0) n += r;
    buf[n] = 0;
    close(fds[0]);
    CHECK(strncmp(buf, "slabinfo - version: 2.1\n# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\n", 200) == 0);
    CHECK(strstr(buf, "\nc_basic ") != NULL);
    CHECK(strstr(buf, "\nc_xthread ") != NULL);
    stderr_capture_begin();
    CHECK(kmem_slabinfo_write(-1) == -9); /* -EBADF, nothing reported */
    CHECK(stderr_capture_end()[0] == 0);
    kmem_cache_free(c, keep);

    kmem_cache_destroy(shared_cache);
    kmem_cache_destroy(c);
    return check_done("slab_basic");
}
