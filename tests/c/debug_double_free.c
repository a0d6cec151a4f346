/* Bug: kfree twice. Refused, with where it was allocated and first freed. */
#include <kmem.h>
#include <stdlib.h>
#include "debug_check.h"

static char *p;
__attribute__((noinline)) static void first_free(void) { kfree(p); }

int main(void) {
    setenv("KMEM_DEBUG", "FZPU,kmalloc-32", 1);
    p = kmalloc(20, GFP_KERNEL);
    CHECK(p != NULL);
    first_free();
    stderr_capture_begin();
    kfree(p);                           /* the bug */
    const char *out = stderr_capture_end();
    CHECK(reported(out, "BUG kmalloc-32: double free of", NULL));
    CHECK(site_in(site_after(out, "freed at "), first_free, 64));
    CHECK(site_in(site_after(out, "bad free at "), (void (*)(void))main, 4096));
    /* Nothing changed: one allocation gets the object, the next another. */
    char *a = kmalloc(20, GFP_KERNEL), *b = kmalloc(20, GFP_KERNEL);
    CHECK(a != b);
    kfree(a);
    kfree(b);
    return check_done("debug_double_free");
}
