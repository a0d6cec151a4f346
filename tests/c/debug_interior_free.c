/* Bug: kfree of a pointer into the middle of an object. */
#include <kmem.h>
#include <stdlib.h>
#include "debug_check.h"

int main(void) {
    setenv("KMEM_DEBUG", "FZPU,kmalloc-128", 1);
    char *p = kmalloc(100, GFP_KERNEL);
    CHECK(p != NULL);
    stderr_capture_begin();
    kfree(p + 16);                      /* the bug */
    const char *out = stderr_capture_end();
    CHECK(reported(out, "BUG kmalloc-128: free of", "(interior pointer)"));
    CHECK(reported(out, "is 16 bytes inside the object at", NULL));
    CHECK(site_in(site_after(out, "allocated at "), (void (*)(void))main, 4096));
    kfree(p);                           /* the real free still works */
    return check_done("debug_interior_free");
}
