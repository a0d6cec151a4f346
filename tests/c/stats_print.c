/* Statistics through the C API: kmem_stats_print's mp_pool_stats lines and
 * the slabinfo statistics columns (SLAB's cpustat) of a cache of our own,
 * exact for a known sequence on one thread. */
#include <kmem.h>
#include <stdio.h>
#include <fcntl.h>
#include "check.h"

static char buf[1 << 20];

static const char *print_stats(void) {
    char path[] = "/tmp/kmem_statsXXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(kmem_stats_print(fd) == 0);
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    close(fd);
    unlink(path);
    return buf;
}

int main(void) {
    struct kmem_cache *c = kmem_cache_create("c_stats_cache", 64, 0, 0, NULL);
    CHECK(c != NULL);
    void *p[3];
    for (int i = 0; i < 3; i++) p[i] = kmem_cache_alloc(c, GFP_KERNEL);
    for (int i = 0; i < 3; i++) kmem_cache_free(c, p[i]);
    /* A refused free is reported and counts nothing. */
    long local = 0;
    stderr_capture_begin();
    kmem_cache_free(c, &local);
    const char *err = stderr_capture_end();
    CHECK(strstr(err, "c_stats_cache") != NULL);
    const char *s = print_stats();
    CHECK(strstr(s, "kmem: pages pool: total ") != NULL);
    CHECK(strstr(s, "kmem: kmalloc pool: total ") != NULL);
    CHECK(strstr(s, "slabinfo - version: 2.1") != NULL);
    const char *row = strstr(s, "\nc_stats_cache ");
    CHECK(row != NULL);
    if (row) {
        const char *cpu = strstr(row, ": cpustat ");
        const char *eol = strchr(row + 1, '\n');
        CHECK(cpu != NULL && eol != NULL && cpu < eol);
        unsigned long ah = 9, am = 9, fh = 9, fm = 9;
        if (cpu) CHECK(sscanf(cpu, ": cpustat %lu %lu %lu %lu", &ah, &am, &fh, &fm) == 4);
        /* First allocation refills the empty array (a miss), the next two hit;
           three frees into a non-full array hit. */
        CHECK(ah == 2 && am == 1 && fh == 3 && fm == 0);
        const char *g = strstr(row, ": globalstat ");
        unsigned long listallocs = 0, high = 0, grown = 0;
        CHECK(g != NULL && g < eol);
        if (g) CHECK(sscanf(g, ": globalstat %lu %lu %lu", &listallocs, &high, &grown) == 3);
        CHECK(listallocs == 16 && high == 16 && grown == 1);
    }
    kmem_cache_destroy(c);
    return check_done("stats_print");
}
