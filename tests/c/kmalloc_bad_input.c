/* kmalloc: bad input is refused with a report and changes nothing. */
#include <kmem.h>
#include <stdint.h>
#include "check.h"

static int reported(const char *out, const char *a, const char *b) {
    return strstr(out, a) != NULL && (b == NULL || strstr(out, b) != NULL);
}

int main(void) {
    int on_stack = 0;
    const char *out;

    stderr_capture_begin();
    kfree(&on_stack);
    out = stderr_capture_end();
    CHECK(reported(out, "kfree", "not memory kmem manages"));

    char *p = kmalloc(64, GFP_KERNEL);
    stderr_capture_begin();
    kfree(p + 8);
    out = stderr_capture_end();
    CHECK(reported(out, "kmalloc-64", "into the object"));
    kfree(p);
    stderr_capture_begin();
    kfree(p);
    out = stderr_capture_end();
    CHECK(reported(out, "kmalloc-64", "double free"));

    char *big = kmalloc(50000, GFP_KERNEL);
    stderr_capture_begin();
    kfree(big + 4096);
    out = stderr_capture_end();
    CHECK(reported(out, "kfree", "into the large kmalloc block"));
    stderr_capture_begin();
    CHECK(ksize(big + 1) == 0);
    out = stderr_capture_end();
    CHECK(reported(out, "ksize", NULL));
    kfree(big);
    stderr_capture_begin();
    kfree(big);
    out = stderr_capture_end();
    CHECK(reported(out, "kfree", "free"));

    /* Another cache's object and a page block are not kmalloc's. */
    struct kmem_cache *c = kmem_cache_create("not_kmalloc", 64, 0, 0, NULL);
    void *o = kmem_cache_alloc(c, GFP_KERNEL);
    stderr_capture_begin();
    kfree(o);
    out = stderr_capture_end();
    CHECK(reported(out, "kfree", "not_kmalloc"));
    kmem_cache_free(c, o);
    kmem_cache_destroy(c);
    unsigned long pg = __get_free_pages(GFP_KERNEL, 0);
    stderr_capture_begin();
    kfree((void *)pg);
    out = stderr_capture_end();
    CHECK(reported(out, "kfree", "pages"));
    free_pages(pg, 0);

    /* krealloc of a bad pointer: NULL, reported. */
    stderr_capture_begin();
    CHECK(krealloc(&on_stack, 100, GFP_KERNEL) == NULL);
    out = stderr_capture_end();
    CHECK(reported(out, "ksize", NULL));

    /* Impossible sizes and overflow: NULL. */
    CHECK(kmalloc(SIZE_MAX, GFP_KERNEL | __GFP_NOWARN) == NULL);
    CHECK(kcalloc(SIZE_MAX, SIZE_MAX, GFP_KERNEL) == NULL);
    stderr_capture_begin();
    CHECK(kmemdup(NULL, 5, GFP_KERNEL) == NULL);
    out = stderr_capture_end();
    CHECK(reported(out, "kmemdup", "NULL"));
    stderr_capture_begin();
    CHECK(mempool_create_kmalloc_pool(2, 0) == NULL);
    out = stderr_capture_end();
    CHECK(reported(out, "mempool_create_kmalloc_pool", NULL));

    /* Still usable. */
    void *q = kmalloc(64, GFP_KERNEL);
    CHECK(q != NULL);
    kfree(q);
    return check_done("kmalloc_bad_input");
}
