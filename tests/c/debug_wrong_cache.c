/* Bug: an object of cache b freed into cache a. */
#include <kmem.h>
#include "debug_check.h"

int main(void) {
    struct kmem_cache *a = kmem_cache_create("wrong_a", 48, 0, SLAB_STORE_USER, NULL);
    struct kmem_cache *b = kmem_cache_create("wrong_b", 48, 0, SLAB_STORE_USER, NULL);
    CHECK(a && b);
    void *ob = kmem_cache_alloc(b, GFP_KERNEL);
    stderr_capture_begin();
    kmem_cache_free(a, ob);             /* the bug */
    const char *out = stderr_capture_end();
    CHECK(reported(out, "BUG wrong_a: free of", "into the wrong cache: it belongs to wrong_b"));
    CHECK(site_in(site_after(out, "allocated at "), (void (*)(void))main, 4096));
    kmem_cache_free(b, ob);
    kmem_cache_destroy(a);
    kmem_cache_destroy(b);
    return check_done("debug_wrong_cache");
}
