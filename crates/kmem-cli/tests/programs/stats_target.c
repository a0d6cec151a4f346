/* A program for kmem top's tests: holds objects of a few kmalloc sizes,
 * says "ready PID" on stdout, and frees everything and exits 0 when its
 * stdin closes. With "fork", a child that exits normally (running the
 * preload's destructor) has come and gone before "ready". With "env", it
 * first prints "KMEM_STATS=<value>". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define N24 1000
#define N200 500
#define N3000 100

int main(int argc, char **argv) {
    static void *small[N24], *mid[N200], *big[N3000];
    for (int i = 0; i < N24; i++) small[i] = memset(malloc(24), 1, 24);
    for (int i = 0; i < N200; i++) mid[i] = memset(malloc(200), 2, 200);
    for (int i = 0; i < N3000; i++) big[i] = memset(malloc(3000), 3, 3000);
    if (argc > 1 && strcmp(argv[1], "fork") == 0) {
        pid_t c = fork();
        if (c == 0) {
            free(malloc(100));
            exit(0);
        }
        int st;
        if (c < 0 || waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "fork child failed\n");
            return 1;
        }
    }
    if (argc > 1 && strcmp(argv[1], "env") == 0) {
        const char *v = getenv("KMEM_STATS");
        printf("KMEM_STATS=%s\n", v ? v : "(unset)");
    }
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    char buf[64];
    while (fread(buf, 1, sizeof buf, stdin) > 0) {
    }
    for (int i = 0; i < N24; i++) free(small[i]);
    for (int i = 0; i < N200; i++) free(mid[i]);
    for (int i = 0; i < N3000; i++) free(big[i]);
    return 0;
}
