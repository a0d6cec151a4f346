/* thread_exit — thousands of threads that allocate and exit.
 *
 * Threads run in waves of 8. Each allocates 300 objects (8 bytes .. 64 KiB),
 * frees two thirds itself and leaves the rest to the main thread, which frees
 * them after the thread has exited. An allocator that does not flush a dying
 * thread's caches leaks them: resident memory then grows with the number of
 * threads, which the "# rss-kib" lines show (the test compares them).
 *
 * Output: "thread_exit: N threads, M objects, sum=..." (deterministic) and
 * "# rss-kib after N threads: X" lines (allocator-dependent).
 * Usage: thread_exit [threads=4000]
 */
#include "wl.h"

#define WAVE 8
#define OBJS 300

struct job {
    uint64_t seed;
    uint64_t sum;
    void *left[OBJS];
    size_t left_size[OBJS];
    uint64_t left_tag[OBJS];
    int nleft;
};

static void *run(void *arg) {
    struct job *j = arg;
    uint64_t rng = j->seed;
    void *p[OBJS];
    size_t n[OBJS];
    uint64_t tag[OBJS];
    for (int i = 0; i < OBJS; i++) {
        n[i] = (i % 50 == 0) ? rng_range(&rng, 8192, 65536) : rng_range(&rng, 8, 2048);
        tag[i] = rng_next(&rng);
        p[i] = wl_malloc(n[i]);
        tag_set(p[i], n[i], tag[i]);
    }
    j->nleft = 0;
    for (int i = 0; i < OBJS; i++) {
        if (i % 3 == 0) {
            j->left[j->nleft] = p[i];
            j->left_size[j->nleft] = n[i];
            j->left_tag[j->nleft] = tag[i];
            j->nleft++;
        } else {
            tag_check(p[i], n[i], tag[i]);
            j->sum += tag[i];
            free(p[i]);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    long total = arg_long(argc, argv, 1, 4000);
    struct job *jobs = calloc(WAVE, sizeof *jobs);
    if (!jobs) wl_die("calloc");
    uint64_t sum = 0;
    long objects = 0, started = 0, next_report = 250;
    while (started < total) {
        pthread_t tid[WAVE];
        int n = (int)(total - started < WAVE ? total - started : WAVE);
        for (int i = 0; i < n; i++) {
            jobs[i].seed = 0x7e + (uint64_t)(started + i);
            jobs[i].sum = 0;
            wl_create(&tid[i], run, &jobs[i]);
        }
        for (int i = 0; i < n; i++) {
            pthread_join(tid[i], NULL);
            /* The thread is gone; free what it left behind. */
            for (int k = 0; k < jobs[i].nleft; k++) {
                tag_check(jobs[i].left[k], jobs[i].left_size[k], jobs[i].left_tag[k]);
                sum += jobs[i].left_tag[k];
                free(jobs[i].left[k]);
            }
            sum += jobs[i].sum;
            objects += OBJS;
        }
        started += n;
        if (started >= next_report || started == total) {
            printf("# rss-kib after %ld threads: %ld\n", started, rss_kib());
            while (next_report <= started) next_report *= 2;
        }
    }
    free(jobs);
    printf("thread_exit: %ld threads, %ld objects, sum=%016llx\n", total, objects, (unsigned long long)sum);
    return 0;
}
