/* fork — fork while other threads are allocating; the child must be able to
 * allocate, free what the parent allocated, start threads, and exit cleanly.
 *
 * An allocator that does not take its locks around fork (pthread_atfork)
 * leaves the child with a lock some other thread of the parent held at the
 * moment of fork, and the child hangs on its first malloc; one that does not
 * reset its per-thread state hands the child's threads the parent's caches.
 * Each child sets an alarm, so a hang ends as a SIGALRM the parent reports.
 * The main thread forks, and so does one of the allocating threads.
 *
 * Output (deterministic): "fork: N children exited cleanly".
 * Usage: fork [forks from main=60] [allocating threads=3]
 */
#include <sys/wait.h>
#include "wl.h"

#define INHERITED 64

static atomic_int stop;
static void *inherited[INHERITED];
static size_t inherited_size[INHERITED];
static long nforks;
static atomic_long failures, children;

static void *child_thread(void *arg) {
    uint64_t rng = (uint64_t)(uintptr_t)arg;
    for (int i = 0; i < 2000; i++) {
        size_t n = rng_range(&rng, 1, 3000);
        void *p = wl_malloc(n);
        fill(p, n, (uint64_t)i);
        if (!fill_ok(p, n, (uint64_t)i)) wl_die("child thread: corrupted");
        free(p);
    }
    return NULL;
}

/* What a child does: allocate, free the parent's objects, run threads, exit. */
static void child(uint64_t seed) {
    alarm(20);
    uint64_t rng = seed;
    for (int k = 0; k < INHERITED; k++) {
        if (!fill_ok(inherited[k], inherited_size[k], (uint64_t)k)) wl_die("child: inherited object corrupted");
        free(inherited[k]);
    }
    void *keep[256] = {0};
    for (int i = 0; i < 20000; i++) {
        int k = (int)(rng_next(&rng) % 256);
        free(keep[k]);
        size_t n = (i % 1000 == 0) ? rng_range(&rng, 100000, 3000000) : rng_range(&rng, 1, 2048);
        keep[k] = wl_malloc(n);
        memset(keep[k], 0x5a, n);
    }
    for (int k = 0; k < 256; k++) free(keep[k]);
    pthread_t t[2];
    for (int i = 0; i < 2; i++) wl_create(&t[i], child_thread, (void *)(uintptr_t)(seed + (uint64_t)i));
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    char *s = strdup("the child allocated and is exiting");
    if (!s || strlen(s) != 34) wl_die("child: strdup");
    free(s);
    exit(0);
}

static void fork_one(uint64_t seed) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        atomic_fetch_add(&failures, 1);
        return;
    }
    if (pid == 0) child(seed);
    int status;
    if (waitpid(pid, &status, 0) != pid) {
        perror("waitpid");
        atomic_fetch_add(&failures, 1);
        return;
    }
    atomic_fetch_add(&children, 1);
    if (WIFSIGNALED(status)) {
        fprintf(stderr, "fork: child %ld killed by signal %d%s\n", (long)pid, WTERMSIG(status),
                WTERMSIG(status) == SIGALRM ? " (it hung: a lock held across fork?)" : "");
        atomic_fetch_add(&failures, 1);
    } else if (WEXITSTATUS(status) != 0) {
        fprintf(stderr, "fork: child %ld exited with %d\n", (long)pid, WEXITSTATUS(status));
        atomic_fetch_add(&failures, 1);
    }
}

static void *allocator_thread(void *arg) {
    uintptr_t id = (uintptr_t)arg;
    uint64_t rng = 0xf0e + id;
    void *slot[512] = {0};
    long i = 0, forked = 0;
    while (!atomic_load(&stop)) {
        int k = (int)(rng_next(&rng) % 512);
        free(slot[k]);
        size_t n = (i % 5000 == 0) ? rng_range(&rng, 65536, 4 << 20) : rng_range(&rng, 1, 4096);
        slot[k] = wl_malloc(n);
        memset(slot[k], (int)id, n < 64 ? n : 64);
        /* Thread 0 forks too, a quarter as often as main. */
        if (id == 0 && i % 20000 == 19999 && forked < nforks / 4) {
            fork_one(rng);
            forked++;
        }
        i++;
    }
    for (int k = 0; k < 512; k++) free(slot[k]);
    if (id == 0) {
        for (; forked < nforks / 4; forked++) fork_one(rng_next(&rng));
    }
    return NULL;
}

int main(int argc, char **argv) {
    nforks = arg_long(argc, argv, 1, 60);
    long nthreads = arg_long(argc, argv, 2, 3);
    for (int k = 0; k < INHERITED; k++) {
        inherited_size[k] = (size_t)(k * 97 % 5000) + 1 + (k == 7 ? (1 << 20) : 0);
        inherited[k] = wl_malloc(inherited_size[k]);
        fill(inherited[k], inherited_size[k], (uint64_t)k);
    }
    pthread_t *tid = calloc((size_t)nthreads, sizeof *tid);
    if (!tid) wl_die("calloc");
    for (long t = 0; t < nthreads; t++) wl_create(&tid[t], allocator_thread, (void *)(uintptr_t)t);
    for (long i = 0; i < nforks; i++) {
        fork_one(0x1000 + (uint64_t)i);
        usleep(1000);
    }
    atomic_store(&stop, 1);
    for (long t = 0; t < nthreads; t++) pthread_join(tid[t], NULL);
    free(tid);
    for (int k = 0; k < INHERITED; k++) {
        if (!fill_ok(inherited[k], inherited_size[k], (uint64_t)k)) wl_die("parent: object corrupted");
        free(inherited[k]);
    }
    long f = atomic_load(&failures);
    printf("fork: %ld children exited cleanly\n", atomic_load(&children) - f);
    return f ? 1 : 0;
}
