/* Bug: objects never freed. The leak report groups them by allocation site
 * (the C return address) with counts and bytes; destroying the cache
 * reports them too and keeps the cache. */
#include <kmem.h>
#include "debug_check.h"

static struct kmem_cache *c;
static void *kept[8];

__attribute__((noinline)) static void site_a(int i) { kept[i] = kmem_cache_alloc(c, GFP_KERNEL); }
__attribute__((noinline)) static void site_b(int i) { kept[i] = kmem_cache_zalloc(c, GFP_KERNEL); }

int main(void) {
    c = kmem_cache_create("leak_cache", 72, 0, SLAB_STORE_USER, NULL);
    CHECK(c != NULL);
    for (int i = 0; i < 3; i++) site_a(i);
    for (int i = 3; i < 5; i++) site_b(i);
    stderr_capture_begin();
    size_t n = kmem_leak_report();
    const char *out = stderr_capture_end();
    CHECK(n >= 5);
    CHECK(site_in(site_after(out, "3 objects (216 bytes) of leak_cache allocated at "), (void (*)(void))site_a, 64));
    CHECK(site_in(site_after(out, "2 objects (144 bytes) of leak_cache allocated at "), (void (*)(void))site_b, 64));
    stderr_capture_begin();
    kmem_cache_destroy(c);
    out = stderr_capture_end();
    CHECK(reported(out, "kmem_cache_destroy(leak_cache): 5 objects still in use", NULL));
    CHECK(reported(out, "kmem_cache_destroy(leak_cache): 3 objects (216 bytes) of leak_cache allocated at", NULL));
    /* The cache was kept: its objects are valid and can be freed. */
    for (int i = 0; i < 5; i++) kmem_cache_free(c, kept[i]);
    stderr_capture_begin();
    kmem_cache_destroy(c);
    out = stderr_capture_end();
    CHECK(out[0] == 0);
    return check_done("debug_leak");
}
