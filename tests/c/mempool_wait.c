/* mempool: a GFP_KERNEL allocation on an empty pool waits, and a free from
 * another thread wakes it with that very element; the seed's device read
 * path never fails while its backend does. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <kmem.h>
#include "check.h"

static atomic_int failing;
static void *obj_alloc(gfp_t gfp, void *pool_data) {
    (void)gfp; (void)pool_data;
    return atomic_load(&failing) ? NULL : malloc(256);
}
static void obj_free(void *e, void *pool_data) { (void)pool_data; free(e); }

static mempool_t *pool;
static atomic_int started;
static void *waiter(void *arg) {
    (void)arg;
    atomic_store(&started, 1);
    return mempool_alloc(pool, GFP_KERNEL);   /* blocks until the free */
}

#define READERS 4
#define READS 2000
static void *reader(void *arg) {
    (void)arg;
    char buf[256];
    for (int i = 0; i < READS; i++) {
        /* example_read: never NULL with GFP_KERNEL */
        char *item = mempool_alloc(pool, GFP_KERNEL);
        if (!item) return (void *)1;
        memset(item, 0xAB, 256);
        memcpy(buf, item, sizeof buf);
        mempool_free(item, pool);
        if ((unsigned char)buf[255] != 0xAB) return (void *)1;
    }
    return NULL;
}

int main(void) {
    pool = mempool_create(1, obj_alloc, obj_free, NULL);
    CHECK(pool != NULL);
    atomic_store(&failing, 1);
    void *only = mempool_alloc(pool, GFP_KERNEL);
    CHECK(only != NULL);

    pthread_t t;
    pthread_create(&t, NULL, waiter, NULL);
    while (!atomic_load(&started)) usleep(100);
    usleep(20000);              /* let it reach the wait (it cannot finish without us) */
    mempool_free(only, pool);
    void *got;
    pthread_join(t, &got);
    CHECK(got == only);
    mempool_free(got, pool);

    /* The seed's device: 4 readers over a 2-object reserve, backend dead. */
    atomic_store(&failing, 0);
    CHECK(mempool_resize(pool, 2) == 0);
    atomic_store(&failing, 1);
    pthread_t r[READERS];
    stderr_capture_begin();
    for (int i = 0; i < READERS; i++) pthread_create(&r[i], NULL, reader, NULL);
    for (int i = 0; i < READERS; i++) {
        void *res;
        pthread_join(r[i], &res);
        CHECK(res == NULL);
    }
    CHECK(stderr_capture_end()[0] == 0);   /* nothing went wrong on the way */
    atomic_store(&failing, 0);
    mempool_destroy(pool);
    return check_done("mempool_wait");
}
