/* Bug: a write just before an object. SLAB_RED_ZONE catches it on free. */
#include <kmem.h>
#include "debug_check.h"

int main(void) {
    struct kmem_cache *c = kmem_cache_create("underflow_cache", 64, 64, SLAB_RED_ZONE, NULL);
    CHECK(c != NULL);
    char *p = kmem_cache_alloc(c, GFP_KERNEL);
    CHECK(p != NULL && ((uintptr_t)p & 63) == 0);
    p[-3] = 0;                          /* the bug */
    stderr_capture_begin();
    kmem_cache_free(c, p);
    const char *out = stderr_capture_end();
    CHECK(reported(out, "BUG underflow_cache: Left Redzone overwritten (buffer underflow)",
                   "@offset=-3: first byte 0x00 instead of 0xcc"));
    CHECK(kmem_cache_validate(c) == 0);
    kmem_cache_destroy(c);
    return check_done("debug_underflow");
}
