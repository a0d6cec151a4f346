/* Bug: kmem_cache_free of a pointer kmem never handed out (a stack address). */
#include <kmem.h>
#include "debug_check.h"

int main(void) {
    struct kmem_cache *c = kmem_cache_create("invalid_cache", 32, 0,
                                             SLAB_CONSISTENCY_CHECKS | SLAB_STORE_USER, NULL);
    CHECK(c != NULL);
    char local[32] = {0};
    stderr_capture_begin();
    kmem_cache_free(c, local);          /* the bug */
    const char *out = stderr_capture_end();
    CHECK(reported(out, "BUG invalid_cache: free of", "not memory kmem manages (invalid pointer)"));
    CHECK(local[0] == 0);
    kmem_cache_destroy(c);
    return check_done("debug_invalid_free");
}
