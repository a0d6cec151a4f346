/* edge — the malloc family's edge cases, as programs rely on them.
 *
 * Run with and without LD_PRELOAD: every check here holds for glibc's malloc.
 * With --kmem it also checks what is specific to kmem's preload: free() of a
 * pointer it never handed out (a stack address, a static array, a page mapped
 * by the program itself) is refused with a "kmem:" report on stderr, without
 * crashing, and the allocator keeps working.
 *
 * First it checks that every malloc-family function comes from the same
 * library as malloc: a preload that leaves one out (say pvalloc) makes the
 * program call glibc's version and hand glibc's memory to the preload's free.
 * A function that is not interposed is reported and its checks skipped.
 *
 * Prints "edge: N passed, M failed"; exits 1 if anything failed.
 * Usage: edge [--kmem]
 */
#include <dlfcn.h>
#include <malloc.h>
#include <sys/mman.h>
#include "wl.h"

/* A failed realloc leaves the old object valid, which is what is checked
 * after each failing call; GCC cannot know the call failed. */
#pragma GCC diagnostic ignored "-Wuse-after-free"

static int passed, failed;
/* What is being checked, named in a failure's message (set with CTX). */
static char ctx[160];
#define CTX(...) snprintf(ctx, sizeof ctx, __VA_ARGS__)

/* Hide a size from the compiler, so it neither warns about nor folds a call
 * it can prove must fail. */
static size_t opaque(size_t x) {
    volatile size_t v = x;
    return v;
}

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (cond) {                                                                    \
            passed++;                                                                  \
        } else {                                                                       \
            failed++;                                                                  \
            fprintf(stderr, "edge.c:%d: %s: CHECK failed: %s\n", __LINE__, ctx, #cond); \
        }                                                                              \
    } while (0)

/* Which functions the library that provides malloc also provides. */
static const char *family[] = {"malloc",        "free",          "calloc",  "realloc",
                               "reallocarray",  "posix_memalign", "aligned_alloc", "memalign",
                               "valloc",        "pvalloc",       "malloc_usable_size"};
#define NFAMILY (sizeof family / sizeof family[0])
static int interposed[NFAMILY];

static int has(const char *name) {
    for (size_t i = 0; i < NFAMILY; i++)
        if (!strcmp(family[i], name)) return interposed[i];
    return 0;
}

static void check_interposition(void) {
    Dl_info base;
    void *m = dlsym(RTLD_DEFAULT, "malloc");
    if (!m || !dladdr(m, &base)) wl_die("cannot locate malloc");
    printf("# malloc comes from %s\n", base.dli_fname);
    for (size_t i = 0; i < NFAMILY; i++) {
        CTX("%s interposed", family[i]);
        Dl_info info;
        void *f = dlsym(RTLD_DEFAULT, family[i]);
        interposed[i] = f && dladdr(f, &info) && !strcmp(info.dli_fname, base.dli_fname);
        if (!interposed[i]) {
            fprintf(stderr, "edge: %s does not come from %s (it comes from %s): calling it would mix heaps; its checks are skipped\n",
                    family[i], base.dli_fname, f && dladdr(f, &info) ? info.dli_fname : "nowhere");
        }
        CHECK(interposed[i]);
    }
}

/* The alignment C requires for an object of n bytes on x86-64 (max_align_t is 16). */
static size_t required_align(size_t n) {
    if (n >= 16) return 16;
    if (n >= 8) return 8;
    if (n >= 4) return 4;
    if (n >= 2) return 2;
    return 1;
}

static void check_sizes(void) {
    /* Every size class boundary a malloc is likely to have, and a few large sizes. */
    size_t sizes[256];
    size_t ns = 0;
    for (size_t n = 1; n <= 48; n++) sizes[ns++] = n;
    for (size_t p = 64; p <= ((size_t)8 << 20); p *= 2) {
        sizes[ns++] = p - 1;
        sizes[ns++] = p;
        sizes[ns++] = p + 1;
        sizes[ns++] = p + p / 2;
    }
    void *ptr[256];
    for (size_t i = 0; i < ns; i++) {
        size_t n = sizes[i];
        CTX("malloc(%zu)", n);
        ptr[i] = malloc(n);
        CHECK(ptr[i] != NULL);
        if (!ptr[i]) continue;
        CHECK((uintptr_t)ptr[i] % required_align(n) == 0);
        size_t usable = malloc_usable_size(ptr[i]);
        CHECK(usable >= n);
        /* All of the usable size may be written. */
        memset(ptr[i], 0xee, usable);
        fill(ptr[i], n, i);
    }
    /* All live at once: none overlaps another. */
    for (size_t i = 0; i < ns; i++) {
        if (!ptr[i]) continue;
        CTX("malloc(%zu) kept its content while others were live", sizes[i]);
        CHECK(fill_ok(ptr[i], sizes[i], i));
        free(ptr[i]);
    }
}

static void check_zero_and_null(void) {
    CTX("malloc(0), calloc(0, n), realloc(NULL, n)");
    void *a = malloc(0), *b = malloc(0);
    /* glibc, jemalloc and mimalloc all return a unique pointer; programs treat NULL as failure. */
    CHECK(a != NULL);
    CHECK(b != NULL);
    CHECK(a != b);
    free(a);
    free(b);
    free(NULL);
    CHECK(malloc_usable_size(NULL) == 0);

    void *c = calloc(0, 16), *d = calloc(16, 0);
    CHECK(c != NULL && d != NULL);
    free(c);
    free(d);

    /* realloc(NULL, n) is malloc(n). */
    char *r = realloc(NULL, 100);
    CHECK(r != NULL);
    if (r) {
        CHECK(malloc_usable_size(r) >= 100);
        memset(r, 1, 100);
    }
    /* realloc(p, 0): glibc frees p and returns NULL; others return a minimal
     * object. Either is allowed; what is returned must be freeable. */
    errno = 0;
    void *z = realloc(r, 0);
    printf("# realloc(p, 0) returned %s\n", z ? "an object" : "NULL");
    free(z);
    CHECK(1);
}

static void check_calloc(void) {
    size_t sizes[] = {1, 24, 100, 4096, 5000, 100000, (size_t)1 << 20, (size_t)3 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        /* Dirty memory of the same size first, so calloc may get it back. */
        CTX("calloc(1, %zu) after a dirty malloc of that size", sizes[i]);
        for (int round = 0; round < 3; round++) {
            unsigned char *m = malloc(sizes[i]);
            CHECK(m != NULL);
            if (m) memset(m, 0xa5, sizes[i]);
            free(m);
            unsigned char *c = calloc(1, sizes[i]);
            CHECK(c != NULL);
            if (!c) continue;
            int zero = 1;
            for (size_t j = 0; j < sizes[i]; j++) zero &= c[j] == 0;
            CHECK(zero);
            free(c);
        }
    }
    struct {
        size_t n, size;
    } over[] = {{SIZE_MAX / 2 + 2, 2}, {(size_t)1 << 33, (size_t)1 << 33}, {SIZE_MAX, SIZE_MAX}, {2, SIZE_MAX / 2 + 1}};
    for (size_t i = 0; i < sizeof over / sizeof over[0]; i++) {
        CTX("calloc(%zu, %zu) overflows", over[i].n, over[i].size);
        errno = 0;
        void *p = calloc(opaque(over[i].n), opaque(over[i].size));
        CHECK(p == NULL);
        CHECK(errno == ENOMEM);
        free(p);
    }
}

static void check_huge(void) {
    size_t huge[] = {SIZE_MAX, SIZE_MAX - 4095, SIZE_MAX / 2 + 1, (size_t)1 << 50};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        huge[i] = opaque(huge[i]);
        CTX("malloc/realloc/posix_memalign(%zu)", huge[i]);
        errno = 0;
        void *p = malloc(huge[i]);
        CHECK(p == NULL);
        CHECK(errno == ENOMEM);
        free(p);

        char *q = malloc(100);
        CHECK(q != NULL);
        if (!q) continue;
        fill(q, 100, 7);
        errno = 0;
        void *r = realloc(q, huge[i]);
        CHECK(r == NULL);
        CHECK(errno == ENOMEM);
        /* A failed realloc leaves the old object alone. */
        CHECK(fill_ok(q, 100, 7));
        free(r == NULL ? q : r);

        void *m = (void *)0x1;
        CHECK(posix_memalign(&m, 64, huge[i]) == ENOMEM);
        if (has("aligned_alloc")) {
            CTX("aligned_alloc(64, %zu)", huge[i] & ~(size_t)63);
            errno = 0;
            CHECK(aligned_alloc(64, huge[i] & ~(size_t)63) == NULL);
            CHECK(errno == ENOMEM);
        }
        if (has("memalign")) {
            CTX("memalign(64, %zu)", huge[i]);
            errno = 0;
            CHECK(memalign(64, huge[i]) == NULL);
            CHECK(errno == ENOMEM);
        }
        if (has("valloc")) {
            CTX("valloc(%zu)", huge[i]);
            errno = 0;
            CHECK(valloc(huge[i]) == NULL);
            CHECK(errno == ENOMEM);
        }
        if (has("pvalloc")) {
            CTX("pvalloc(%zu)", huge[i]);
            errno = 0;
            CHECK(pvalloc(huge[i]) == NULL);
            CHECK(errno == ENOMEM);
        }
    }
}

static void check_realloc(void) {
    /* Grow 1 byte to 6 MiB in steps of 1.5x and shrink back: the prefix survives each move. */
    CTX("realloc growth 1 B .. 6 MiB and back");
    size_t n = 1;
    unsigned char *p = malloc(n);
    CHECK(p != NULL);
    if (!p) return;
    fill(p, n, 3);
    int steps = 0;
    while (n < ((size_t)6 << 20)) {
        size_t m = n + n / 2 + 1;
        unsigned char *q = realloc(p, m);
        CHECK(q != NULL);
        if (!q) break;
        CHECK(fill_ok(q, n, 3 + (uint64_t)steps));
        CHECK(malloc_usable_size(q) >= m);
        p = q;
        n = m;
        steps++;
        fill(p, n, 3 + (uint64_t)steps);
    }
    while (n > 1) {
        size_t m = n / 3 + 1 < n ? n / 3 : 1;
        if (m == 0) m = 1;
        unsigned char *q = realloc(p, m);
        CHECK(q != NULL);
        if (!q) break;
        CHECK(fill_ok(q, m, 3 + (uint64_t)steps));
        CHECK(malloc_usable_size(q) >= m);
        p = q;
        n = m;
    }
    free(p);

    if (has("reallocarray")) {
        CTX("reallocarray");
        unsigned char *a = reallocarray(NULL, 10, 10);
        CHECK(a != NULL);
        if (a) {
            CHECK(malloc_usable_size(a) >= 100);
            fill(a, 100, 9);
            errno = 0;
            CHECK(reallocarray(a, opaque(SIZE_MAX / 2 + 2), 2) == NULL);
            CHECK(errno == ENOMEM);
            errno = 0;
            CHECK(reallocarray(a, opaque((size_t)1 << 33), opaque((size_t)1 << 33)) == NULL);
            CHECK(errno == ENOMEM);
            CHECK(fill_ok(a, 100, 9));
            unsigned char *b = reallocarray(a, 20, 20);
            CHECK(b != NULL);
            if (b) {
                CHECK(fill_ok(b, 100, 9));
                a = b;
            }
            free(a);
        }
    }
}

static void check_aligned(void) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t sizes[] = {1, 7, 100, 4096, 5000, 100000};
    /* posix_memalign: alignment must be a power of two multiple of sizeof(void *). */
    size_t bad[] = {0, 1, 2, 4, 3, 12, 24, 48, 100, sizeof(void *) + 1, 3 * 4096};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CTX("posix_memalign(&p, %zu, 64)", bad[i]);
        void *sentinel = (void *)0x1234, *m = sentinel;
        CHECK(posix_memalign(&m, opaque(bad[i]), 64) == EINVAL);
        /* POSIX: on failure memptr is left alone or set to NULL. */
        CHECK(m == sentinel || m == NULL);
    }
    for (size_t align = sizeof(void *); align <= ((size_t)2 << 20); align *= 2) {
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            size_t n = sizes[i];
            CTX("posix_memalign/memalign/aligned_alloc(align %zu, size %zu)", align, n);
            void *m = NULL;
            CHECK(posix_memalign(&m, align, n) == 0);
            if (m) {
                CHECK((uintptr_t)m % align == 0);
                CHECK(malloc_usable_size(m) >= n);
                memset(m, 0x11, n);
                free(m);
            }
            if (has("memalign")) {
                void *q = memalign(align, n);
                CHECK(q != NULL && (uintptr_t)q % align == 0);
                if (q) {
                    CHECK(malloc_usable_size(q) >= n);
                    memset(q, 0x22, n);
                }
                free(q);
            }
            if (has("aligned_alloc")) {
                /* C11 wants the size to be a multiple of the alignment. */
                size_t an = (n + align - 1) / align * align;
                void *q = aligned_alloc(align, an);
                CHECK(q != NULL && (uintptr_t)q % align == 0);
                if (q) {
                    CHECK(malloc_usable_size(q) >= an);
                    memset(q, 0x33, an);
                }
                free(q);
            }
        }
    }
    if (has("aligned_alloc")) {
        /* Small powers of two are valid alignments for aligned_alloc. */
        for (size_t align = 1; align < sizeof(void *); align *= 2) {
            CTX("aligned_alloc(%zu, 10)", align);
            void *q = aligned_alloc(align, 10);
            CHECK(q != NULL && (uintptr_t)q % align == 0);
            free(q);
        }
        /* Not a power of two: NULL with EINVAL (C17, glibc >= 2.38), or (older
         * glibc) an object aligned at least to the next power of two. */
        CTX("aligned_alloc(24, 48)");
        errno = 0;
        void *q = aligned_alloc(opaque(24), 48);
        CHECK((q == NULL && errno == EINVAL) || (q != NULL && (uintptr_t)q % 8 == 0));
        free(q);
    }
    if (has("valloc")) {
        size_t vs[] = {1, 100, 4096, 5000, 1 << 20};
        for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
            CTX("valloc(%zu)", vs[i]);
            void *v = valloc(vs[i]);
            CHECK(v != NULL && (uintptr_t)v % page == 0);
            if (v) {
                CHECK(malloc_usable_size(v) >= vs[i]);
                memset(v, 0x44, vs[i]);
            }
            free(v);
        }
    }
    if (has("pvalloc")) {
        size_t vs[] = {1, 100, 4096, 5000, 1 << 20};
        for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
            size_t rounded = (vs[i] + page - 1) / page * page;
            CTX("pvalloc(%zu)", vs[i]);
            void *v = pvalloc(vs[i]);
            CHECK(v != NULL && (uintptr_t)v % page == 0);
            if (v) {
                /* pvalloc rounds the size up to whole pages, all usable. */
                CHECK(malloc_usable_size(v) >= rounded);
                memset(v, 0x55, rounded);
            }
            free(v);
        }
    }
}

/* Run free(p) with stderr captured; returns what it reported. */
static const char *free_captured(void *p) {
    static char buf[4096];
    fflush(stderr);
    FILE *tmp = tmpfile();
    if (!tmp) wl_die("tmpfile");
    int saved = dup(2);
    dup2(fileno(tmp), 2);
    free(p);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    size_t n = fread(buf, 1, sizeof buf - 1, tmp);
    buf[n] = 0;
    fclose(tmp);
    return buf;
}

static char static_array[256];

static void check_foreign_free(void) {
    int local = 42;
    void *mapped = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(mapped != MAP_FAILED);
    void *foreign[] = {&local, static_array + 16, mapped, (char *)mapped + 4096};
    const char *what[] = {"a stack address", "a static array", "a page the program mapped", "inside that mapping"};
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++) {
        CTX("free(%s)", what[i]);
        const char *report = free_captured(foreign[i]);
        /* Refused, and said so: one "kmem:" line on stderr. */
        int reported = strstr(report, "kmem:") != NULL;
        if (!reported) fprintf(stderr, "edge: free() of %s was not reported\n", what[i]);
        else printf("# free(%s) reported: %.*s\n", what[i], (int)strcspn(report, "\n"), report);
        CHECK(reported);
    }
    CTX("after the foreign frees");
    CHECK(local == 42);
    /* Nothing was written to memory that was not the allocator's. */
    int clean = 1;
    for (size_t i = 0; i < 4 * 4096; i++) clean &= ((unsigned char *)mapped)[i] == 0;
    CHECK(clean);
    munmap(mapped, 4 * 4096);
    /* And the allocator still works. */
    void *p[64];
    for (int i = 0; i < 64; i++) {
        p[i] = malloc((size_t)(i * 61 + 1));
        CHECK(p[i] != NULL);
        if (p[i]) fill(p[i], (size_t)(i * 61 + 1), (uint64_t)i);
    }
    for (int i = 0; i < 64; i++) {
        if (p[i]) CHECK(fill_ok(p[i], (size_t)(i * 61 + 1), (uint64_t)i));
        free(p[i]);
    }
}

int main(int argc, char **argv) {
    int kmem = argc > 1 && !strcmp(argv[1], "--kmem");
    check_interposition();
    check_zero_and_null();
    check_sizes();
    check_calloc();
    check_huge();
    check_realloc();
    check_aligned();
    if (kmem) check_foreign_free();
    printf("edge: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
