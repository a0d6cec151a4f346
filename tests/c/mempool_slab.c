/* mempool over a slab cache: mempool_create_slab_pool and the stock
 * mempool_alloc_slab / mempool_free_slab pair, plus their bad inputs. */
#include <kmem.h>
#include "check.h"

struct request { int id; char payload[120]; };

static int constructed;
static void ctor(void *p) { ((struct request *)p)->id = -1; constructed++; }

int main(void) {
    struct kmem_cache *cache = kmem_cache_create("request_cache", sizeof(struct request), 0,
                                                 SLAB_HWCACHE_ALIGN, ctor);
    CHECK(cache != NULL);
    mempool_t *pool = mempool_create_slab_pool(8, cache);
    CHECK(pool != NULL);
    CHECK(constructed > 0); /* the reserve came from the cache: objects constructed */

    struct request *r[32];
    for (int i = 0; i < 32; i++) {
        r[i] = mempool_alloc(pool, GFP_KERNEL);
        CHECK(r[i] != NULL);
        CHECK(r[i]->id == -1); /* constructed state */
        r[i]->id = i;
    }
    for (int i = 0; i < 32; i++) {
        CHECK(r[i]->id == i);
        r[i]->id = -1; /* back in constructed state, as the kernel expects */
        mempool_free(r[i], pool);
    }

    /* The stock pair is the cache's own alloc/free. */
    void *o = mempool_alloc_slab(GFP_KERNEL, cache);
    CHECK(o != NULL);
    mempool_free_slab(o, cache);

    /* Bad input: reported, NULL, nothing changes. */
    int not_a_cache[16];
    stderr_capture_begin();
    CHECK(mempool_create_slab_pool(4, (struct kmem_cache *)not_a_cache) == NULL);
    CHECK(mempool_alloc_slab(GFP_KERNEL, NULL) == NULL);
    int on_stack;
    mempool_free_slab(&on_stack, cache); /* not an object of the cache */
    const char *err = stderr_capture_end();
    CHECK(strstr(err, "mempool_create_slab_pool") != NULL);
    CHECK(strstr(err, "kmem_cache") != NULL);
    CHECK(strstr(err, "request_cache") != NULL);

    mempool_destroy(pool);
    kmem_cache_destroy(cache); /* no live objects left: gone without a report */
    return check_done("mempool_slab");
}
