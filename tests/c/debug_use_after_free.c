/* Bug: a write into an object after kmem_cache_free. With SLAB_POISON the
 * next allocation of that object finds the poison overwritten and reports
 * it, naming the cache, the offset, and where the object was allocated and
 * freed (C return addresses); the poison is restored and the program runs on. */
#include <kmem.h>
#include "debug_check.h"

static struct kmem_cache *c;
static char *obj;

__attribute__((noinline)) static void alloc_site(void) { obj = kmem_cache_alloc(c, GFP_KERNEL); }
__attribute__((noinline)) static void free_site(void) { kmem_cache_free(c, obj); }

int main(void) {
    c = kmem_cache_create("uaf_cache", 100, 0,
                          SLAB_POISON | SLAB_RED_ZONE | SLAB_STORE_USER, NULL);
    CHECK(c != NULL);
    alloc_site();
    free_site();
    obj[7] = 'X';                       /* the bug */
    stderr_capture_begin();
    char *again = kmem_cache_alloc(c, GFP_KERNEL);
    const char *out = stderr_capture_end();
    CHECK(again == obj);
    CHECK(reported(out, "BUG uaf_cache: Poison overwritten", "@offset=7: first byte 0x58 instead of 0x6b"));
    CHECK(site_in(site_after(out, "allocated at "), alloc_site, 64));
    CHECK(site_in(site_after(out, "freed at "), free_site, 64));
    CHECK(reported(out, "FIX uaf_cache: restored Poison", NULL));
    kmem_cache_free(c, again);
    CHECK(kmem_cache_validate(c) == 0);
    kmem_cache_destroy(c);
    return check_done("debug_use_after_free");
}
