/* check.h — a tiny harness for kmem's C tests.
 *
 * CHECK(cond) counts a failure (and says where) without stopping the test;
 * a test's main() returns check_done(), which prints "N passed, N failed"
 * and returns non-zero if anything failed.
 * stderr_capture_begin()/stderr_capture_end() collect what kmem reports on
 * stderr so a test can assert that bad input was reported.
 */
#ifndef KMEM_TEST_CHECK_H
#define KMEM_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int check_passed, check_failed;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (cond) {                                                              \
            check_passed++;                                                      \
        } else {                                                                 \
            check_failed++;                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                        \
    } while (0)

static int check_done(const char *name) {
    printf("%s: %d passed, %d failed\n", name, check_passed, check_failed);
    return check_failed ? 1 : 0;
}

static int saved_stderr = -1;
static char capture_path[64];

/* Redirect stderr into a temporary file. */
static void stderr_capture_begin(void) {
    fflush(stderr);
    snprintf(capture_path, sizeof capture_path, "/tmp/kmem-c-test-XXXXXX");
    int fd = mkstemp(capture_path);
    if (fd < 0) { perror("mkstemp"); exit(2); }
    saved_stderr = dup(2);
    dup2(fd, 2);
    close(fd);
}

/* Restore stderr; returns what was written meanwhile (static buffer). */
static const char *stderr_capture_end(void) {
    static char buf[65536];
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    FILE *f = fopen(capture_path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = 0;
    if (f) fclose(f);
    unlink(capture_path);
    return buf;
}

#endif
