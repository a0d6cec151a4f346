/* One memory bug per run, chosen by argv[1] — what the debug checks of a
 * kmem preload (KMEM_DEBUG=FZPU, KMEM_LEAKS=1) must report while the program
 * keeps running and exits 0. Prints the address range of the function that
 * functions that make the calls ("site <name> <start> <end>"), so the test
 * can check that the reports name call sites in the program (not in kmem),
 * then "done".
 *   uaf       write after free, found when the object is handed out again
 *   overflow  write past the end of the bucket, found by free
 *   underflow write before the start, found by free
 *   double    free twice
 *   invalid   free of a stack address
 *   interior  free of a pointer into an object
 *   leak      3 x malloc(100) and 2 x malloc(200) never freed
 *   clean     no bug: with every check on, nothing may be reported */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile int off;        /* keeps the compiler from seeing the bugs */
static char *kept[8];

#define SITE(name) \
    printf("site %s %p %p\n", #name, (void *)(uintptr_t)name, (void *)((uintptr_t)name + 256))

__attribute__((noipa)) static char *alloc_site(size_t n) { return malloc(n); }
__attribute__((noipa)) static void free_site(char *p) { free(p); }
__attribute__((noipa)) static void leak_a(int i) { kept[i] = malloc(100); }
__attribute__((noipa)) static void leak_b(int i) { kept[i] = malloc(200); }

int main(int argc, char **argv) {
    const char *bug = argc > 1 ? argv[1] : "clean";
    SITE(alloc_site);
    SITE(free_site);
    SITE(leak_a);
    SITE(leak_b);
    SITE(main);
    fflush(stdout);
    if (!strcmp(bug, "uaf")) {
        char *p = alloc_site(40);
        free_site(p);
        p[off + 5] = 'A';
        /* Take every free object until the poisoned one comes back. */
        char *v[2000];
        for (int i = 0; i < 2000; i++) v[i] = malloc(40);
        for (int i = 0; i < 2000; i++) free(v[i]);
    } else if (!strcmp(bug, "overflow")) {
        char *p = alloc_site(24);
        p[off + 32] = 1;
        free_site(p);
    } else if (!strcmp(bug, "underflow")) {
        char *p = alloc_site(24);
        p[off - 1] = 1;
        free_site(p);
    } else if (!strcmp(bug, "double")) {
        char *p = alloc_site(24);
        free(p);
        free_site(p);
    } else if (!strcmp(bug, "invalid")) {
        char local[16] = {0};
        free_site(local + off);
    } else if (!strcmp(bug, "interior")) {
        char *p = alloc_site(24);
        free_site(p + off + 8);
        free(p);
    } else if (!strcmp(bug, "leak")) {
        for (int i = 0; i < 3 + off; i++) leak_a(i);
        for (int i = 3; i < 5 + off; i++) leak_b(i);
    } else {
        for (int r = 0; r < 20; r++) {
            char *v[200];
            for (int i = 0; i < 200; i++) {
                v[i] = malloc((size_t)(i * 37 % 3000 + 1));
                memset(v[i], r, (size_t)(i * 37 % 3000 + 1));
            }
            for (int i = 0; i < 200; i++) v[i] = realloc(v[i], (size_t)(i * 13 % 500 + 1));
            for (int i = 0; i < 200; i++) free(v[i]);
        }
        char *z = calloc(10, 10);
        free(z);
    }
    printf("done\n");
    return 0;
}
