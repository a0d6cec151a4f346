/* Bug: kmalloc(50) and a write one byte past its bucket (ksize is 64). With
 * KMEM_DEBUG=ZP,kmalloc-64 (set before the first kmalloc) the kfree finds
 * the right red zone overwritten, reports it naming kmalloc-64 and the
 * freeing call site, restores it, and the object is freed. */
#include <kmem.h>
#include <stdlib.h>
#include "debug_check.h"

static char *p;
__attribute__((noinline)) static void free_site(void) { kfree(p); }

int main(void) {
    setenv("KMEM_DEBUG", "ZPU,kmalloc-64", 1);
    p = kmalloc(50, GFP_KERNEL);
    CHECK(p != NULL && ksize(p) == 64);
    memset(p, 1, 64);                   /* the whole bucket is ours */
    p[64] = 0x11;                       /* the bug */
    stderr_capture_begin();
    free_site();
    const char *out = stderr_capture_end();
    CHECK(reported(out, "BUG kmalloc-64: Right Redzone overwritten (buffer overflow)",
                   "@offset=64: first byte 0x11 instead of 0xcc"));
    CHECK(site_in(site_after(out, "freed at "), free_site, 64));
    CHECK(reported(out, "FIX kmalloc-64: restored Redzone", NULL));
    /* Other classes are not debug caches: no report for them. */
    char *q = kmalloc(100, GFP_KERNEL);
    stderr_capture_begin();
    kfree(q);
    out = stderr_capture_end();
    CHECK(out[0] == 0);
    return check_done("debug_overflow");
}
