/* kmalloc: every function of the kmalloc section, sizes across all classes,
 * alignment, large blocks, krealloc, the helpers, the kmalloc mempool and
 * kmem_stats_print. */
#include <kmem.h>
#include <stdint.h>
#include <fcntl.h>
#include "check.h"

int main(void) {
    static const size_t classes[] = {8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192};
    for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++) {
        size_t c = classes[i];
        unsigned char *p = kmalloc(c, GFP_KERNEL);
        CHECK(p != NULL);
        CHECK(ksize(p) == c);
        if ((c & (c - 1)) == 0) CHECK((uintptr_t)p % c == 0);
        memset(p, 0xab, c);
        unsigned char *q = kmalloc(c - 1 ? c - 1 : 1, GFP_KERNEL);
        CHECK(ksize(q) == c);
        kfree(q);
        kfree(p);
    }
    CHECK(kmalloc(0, GFP_KERNEL) == ZERO_SIZE_PTR);
    CHECK(ZERO_OR_NULL_PTR(kmalloc(0, GFP_KERNEL)));
    CHECK(ZERO_OR_NULL_PTR(NULL));
    CHECK(ksize(ZERO_SIZE_PTR) == 0 && ksize(NULL) == 0);
    kfree(ZERO_SIZE_PTR);
    kfree(NULL);

    /* Large: page blocks by order, and a huge mapping. */
    char *l = kzalloc(100000, GFP_KERNEL);
    CHECK(l != NULL && ksize(l) == 131072 && (uintptr_t)l % 131072 == 0);
    int zero = 1;
    for (size_t i = 0; i < 100000; i++) zero &= l[i] == 0;
    CHECK(zero);
    kfree(l);
    char *h = kmalloc((size_t)6 << 20, GFP_KERNEL);
    CHECK(h != NULL && ksize(h) >= ((size_t)6 << 20));
    h[(6 << 20) - 1] = 1;
    kfree(h);

    /* krealloc: in place while it fits, else moved with its contents. */
    char *r = kmalloc(100, GFP_KERNEL);
    memset(r, 'x', 100);
    CHECK(krealloc(r, 120, GFP_KERNEL) == r);
    char *r2 = krealloc(r, 5000, GFP_KERNEL);
    CHECK(r2 != NULL && r2[99] == 'x' && ksize(r2) == 8192);
    char *r3 = krealloc(NULL, 10, GFP_KERNEL);
    CHECK(r3 != NULL && ksize(r3) == 16);
    CHECK(krealloc(r3, 0, GFP_KERNEL) == ZERO_SIZE_PTR);
    kfree(r2);

    /* Arrays: zeroed, and NULL on overflow. */
    int *a = kcalloc(100, sizeof(int), GFP_KERNEL);
    CHECK(a != NULL && a[99] == 0);
    kfree(a);
    CHECK(kcalloc(SIZE_MAX / 2 + 1, 2, GFP_KERNEL) == NULL);
    CHECK(kmalloc_array((size_t)1 << 33, (size_t)1 << 33, GFP_KERNEL) == NULL);
    /* An impossible size: NULL, and said so (no __GFP_NOWARN). */
    stderr_capture_begin();
    CHECK(kmalloc(SIZE_MAX / 2, GFP_KERNEL) == NULL);
    CHECK(strstr(stderr_capture_end(), "out of memory") != NULL);
    void *ma = kmalloc_array(10, 10, GFP_KERNEL);
    CHECK(ma != NULL && ksize(ma) == 128);
    kfree(ma);

    char *s = kstrdup("kmalloc-96", GFP_KERNEL);
    CHECK(s != NULL && strcmp(s, "kmalloc-96") == 0);
    CHECK(kstrdup(NULL, GFP_KERNEL) == NULL);
    kfree(s);
    char *d = kmemdup("abc", 3, GFP_KERNEL);
    CHECK(d != NULL && memcmp(d, "abc", 3) == 0);
    kfree_sensitive(d);
    kfree_sensitive(NULL);

    /* The kmalloc mempool. */
    mempool_t *mp = mempool_create_kmalloc_pool(4, 200);
    CHECK(mp != NULL);
    void *e = mempool_alloc(mp, GFP_KERNEL);
    CHECK(e != NULL && ksize(e) == 256);
    mempool_free(e, mp);
    mempool_destroy(mp);
    void *e2 = mempool_kmalloc(GFP_KERNEL, (void *)(size_t)40);
    CHECK(e2 != NULL && ksize(e2) == 64);
    mempool_kfree(e2, (void *)(size_t)40);

    /* kmem_stats_print names the kmalloc caches. */
    char path[] = "/tmp/kmalloc_statsXXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(kmem_stats_print(fd) == 0);
    lseek(fd, 0, SEEK_SET);
    static char buf[65536];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    CHECK(strstr(buf, "kmalloc-96") != NULL && strstr(buf, "slabinfo - version: 2.1") != NULL);
    close(fd);
    unlink(path);
    CHECK(kmem_stats_print(-1) < 0);
    return check_done("kmalloc_basic");
}
