/* The page functions of kmem.h: every order, zeroing, alignment, buddyinfo,
 * and every kind of bad input (reported on stderr, nothing changed). */
#include <fcntl.h>
#include <stdint.h>
#include <kmem.h>
#include "check.h"

static int buddyinfo(char *buf, size_t len) {
    char path[] = "/tmp/kmem-buddyinfo-XXXXXX";
    int fd = mkstemp(path);
    int r = kmem_buddyinfo_write(fd);
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, buf, len - 1);
    buf[n < 0 ? 0 : n] = 0;
    close(fd);
    unlink(path);
    return r;
}

int main(void) {
    /* Every order, aligned to its size, writable end to end. */
    unsigned long blocks[MAX_PAGE_ORDER + 1];
    for (unsigned order = 0; order <= MAX_PAGE_ORDER; order++) {
        unsigned long a = __get_free_pages(GFP_KERNEL, order);
        CHECK(a != 0);
        CHECK(a % (PAGE_SIZE << order) == 0);
        memset((void *)a, (int)order + 1, PAGE_SIZE << order);
        blocks[order] = a;
    }
    for (unsigned order = 0; order <= MAX_PAGE_ORDER; order++) {
        unsigned char *p = (unsigned char *)blocks[order];
        CHECK(p[0] == order + 1 && p[(PAGE_SIZE << order) - 1] == order + 1);
        free_pages(blocks[order], order);
    }

    /* get_zeroed_page and __GFP_ZERO give zeroed memory, even when reused. */
    unsigned long z = __get_free_pages(GFP_KERNEL, 2);
    memset((void *)z, 0xaa, 4 * PAGE_SIZE);
    free_pages(z, 2);
    unsigned long z2 = __get_free_pages(GFP_KERNEL | __GFP_ZERO, 2);
    int all_zero = 1;
    for (size_t i = 0; i < 4 * PAGE_SIZE; i++) all_zero &= ((unsigned char *)z2)[i] == 0;
    CHECK(all_zero);
    free_pages(z2, 2);
    unsigned long g = get_zeroed_page(GFP_ATOMIC);
    CHECK(g != 0 && ((uint64_t *)g)[511] == 0);
    free_page(g);

    /* buddyinfo: "Node 0, zone   Normal" then 11 counts of "%6lu ". */
    char info[512];
    CHECK(buddyinfo(info, sizeof info) == 0);
    CHECK(strncmp(info, "Node 0, zone   Normal ", 22) == 0);
    CHECK(strlen(info) == 22 + 11 * 7 + 1);
    CHECK(info[strlen(info) - 1] == '\n');
    CHECK(kmem_buddyinfo_write(-1) < 0);

    /* Bad input: reported, nothing changes. */
    unsigned long keep = __get_free_pages(GFP_KERNEL, 1);
    char before[512], after[512];
    buddyinfo(before, sizeof before);
    int on_stack[1024];
    stderr_capture_begin();
    free_pages((unsigned long)on_stack & ~(PAGE_SIZE - 1), 0); /* never handed out */
    free_pages(keep, 0);                                        /* wrong order */
    free_pages(keep + PAGE_SIZE, 0);                            /* interior page */
    free_pages(keep + 8, 1);                                    /* unaligned */
    free_pages(keep, 11);                                       /* order above max */
    free_pages(0, 3);                                           /* NULL: a no-op, silent */
    const char *err = stderr_capture_end();
    CHECK(strstr(err, "is not memory kmem handed out") != NULL);
    CHECK(strstr(err, "freed as order 0") != NULL);
    CHECK(strstr(err, "not its start") != NULL);
    CHECK(strstr(err, "above MAX_PAGE_ORDER") != NULL);
    int lines = 0;
    for (const char *c = err; *c; c++) lines += *c == '\n';
    CHECK(lines == 5);
    buddyinfo(after, sizeof after);
    CHECK(strcmp(before, after) == 0);

    free_pages(keep, 1);
    stderr_capture_begin();
    free_pages(keep, 1); /* double free */
    err = stderr_capture_end();
    CHECK(strstr(err, "double free") != NULL);

    stderr_capture_begin();
    CHECK(__get_free_pages(GFP_KERNEL, 11) == 0);
    CHECK(__get_free_pages(GFP_KERNEL, 4000000000u) == 0);
    err = stderr_capture_end();
    CHECK(strstr(err, "order 11 is above MAX_PAGE_ORDER (10)") != NULL);

    return check_done("pages");
}
