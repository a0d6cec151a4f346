/* slab: every bad input is refused with a report naming the cache, and the
 * cache stays consistent and usable. */
#include <kmem.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include "check.h"

static int reported(const char *out, const char *a, const char *b) {
    return strstr(out, a) != NULL && (b == NULL || strstr(out, b) != NULL);
}

int main(void) {
    struct kmem_cache *a = kmem_cache_create("bad_a", 64, 0, 0, NULL);
    struct kmem_cache *b = kmem_cache_create("bad_b", 64, 0, 0, NULL);
    CHECK(a && b);
    char *p = kmem_cache_alloc(a, GFP_KERNEL);
    char *p2 = kmem_cache_alloc(a, GFP_KERNEL);
    void *pb = kmem_cache_alloc(b, GFP_KERNEL);
    int on_stack = 0;
    const char *out;

    stderr_capture_begin();
    kmem_cache_free(a, &on_stack);
    out = stderr_capture_end();
    CHECK(reported(out, "kmem_cache_free(bad_a)", "not memory kmem manages"));

    stderr_capture_begin();
    kmem_cache_free(a, p + 8);
    out = stderr_capture_end();
    CHECK(reported(out, "kmem_cache_free(bad_a)", "into the object"));

    stderr_capture_begin();
    kmem_cache_free(a, pb);
    out = stderr_capture_end();
    CHECK(reported(out, "kmem_cache_free(bad_a)", "belongs to cache bad_b"));

    /* An object of a's slab that was never handed out. */
    char *never = (p + 64 == p2) ? p + 128 : p + 64;
    stderr_capture_begin();
    kmem_cache_free(a, never);
    out = stderr_capture_end();
    CHECK(reported(out, "kmem_cache_free(bad_a)", "not allocated"));

    kmem_cache_free(a, p);
    stderr_capture_begin();
    kmem_cache_free(a, p);
    out = stderr_capture_end();
    CHECK(reported(out, "kmem_cache_free(bad_a)", "double free"));

    /* Still consistent: the next two allocations are distinct and usable. */
    char *x = kmem_cache_alloc(a, GFP_KERNEL);
    char *y = kmem_cache_alloc(a, GFP_KERNEL);
    CHECK(x && y && x != y);
    memset(x, 1, 64);
    memset(y, 2, 64);
    kmem_cache_free(a, x);
    kmem_cache_free(a, y);
    kmem_cache_free(NULL, NULL); /* no-op */
    kmem_cache_free(a, NULL);    /* no-op */

    /* Destroy with live objects: reported with the count, cache kept. */
    stderr_capture_begin();
    kmem_cache_destroy(a);
    out = stderr_capture_end();
    CHECK(reported(out, "kmem_cache_destroy(bad_a)", "1 objects still in use"));
    p2[63] = 7; /* still valid */
    void *again = kmem_cache_alloc(a, GFP_KERNEL);
    CHECK(again != NULL);
    kmem_cache_free(a, again);
    kmem_cache_free(a, p2);
    stderr_capture_begin();
    kmem_cache_destroy(a);
    out = stderr_capture_end();
    CHECK(out[0] == 0);

    /* Destroy twice, and use after destroy: refused, no crash. */
    stderr_capture_begin();
    kmem_cache_destroy(a);
    out = stderr_capture_end();
    CHECK(reported(out, "kmem_cache_destroy", "not a live cache"));
    stderr_capture_begin();
    CHECK(kmem_cache_alloc(a, GFP_KERNEL) == NULL);
    CHECK(kmem_cache_size(a) == 0);
    CHECK(kmem_cache_shrink(a) < 0);
    kmem_cache_free(a, pb);
    out = stderr_capture_end();
    CHECK(reported(out, "kmem_cache_alloc", "not a live kmem_cache"));
    CHECK(reported(out, "kmem_cache_free", "not a live kmem_cache"));
    stderr_capture_begin();
    CHECK(kmem_cache_alloc((struct kmem_cache *)&on_stack, GFP_KERNEL) == NULL);
    out = stderr_capture_end();
    CHECK(reported(out, "kmem_cache_alloc", "not a live kmem_cache"));

    /* Bad creation arguments. */
    stderr_capture_begin();
    CHECK(kmem_cache_create("zero", 0, 0, 0, NULL) == NULL);
    CHECK(kmem_cache_create("align3", 64, 3, 0, NULL) == NULL);
    CHECK(kmem_cache_create(NULL, 64, 0, 0, NULL) == NULL);
    out = stderr_capture_end();
    CHECK(reported(out, "kmem_cache_create(zero)", NULL));
    CHECK(reported(out, "kmem_cache_create(align3)", "alignment"));

    /* SLAB_PANIC: a cache that cannot be created aborts the process. */
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 2);
        kmem_cache_create("panics", 0, 0, SLAB_PANIC, NULL);
        _exit(0); /* not reached */
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);

    /* Bulk: bad entries are reported and skipped. */
    void *v[3] = { kmem_cache_alloc(b, GFP_KERNEL), &on_stack, NULL };
    stderr_capture_begin();
    kmem_cache_free_bulk(b, 3, v);
    out = stderr_capture_end();
    CHECK(reported(out, "kmem_cache_free(bad_b)", "not memory kmem manages"));

    kmem_cache_free(b, pb);
    CHECK(kmem_cache_shrink(b) == 0);
    kmem_cache_destroy(b);
    return check_done("slab_bad_input");
}
