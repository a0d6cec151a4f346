/* runstat — run a program and report its wall time, peak RSS and CPU time.
 *
 * Usage: runstat OUTFILE PRELOAD PROGRAM [ARGS...]
 * Runs PROGRAM with LD_PRELOAD=PRELOAD (no LD_PRELOAD when PRELOAD is ""),
 * its stdout to OUTFILE, and prints "SECONDS MAXRSS_KIB STATUS CPU_SECONDS"
 * on stdout: wall time from fork to exit (CLOCK_MONOTONIC), the child's peak
 * resident set (getrusage via wait4), its exit status (128+signal if
 * killed), and its user + system CPU time (all threads).
 * runstat itself allocates nothing the child sees: the preload applies only
 * to the child's exec.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: runstat OUTFILE PRELOAD PROGRAM [ARGS...]\n");
        return 2;
    }
    int out = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0) {
        perror(argv[1]);
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 2;
    }
    if (pid == 0) {
        dup2(out, 1);
        if (argv[2][0]) setenv("LD_PRELOAD", argv[2], 1);
        else unsetenv("LD_PRELOAD");
        execvp(argv[3], argv + 3);
        perror(argv[3]);
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid) {
        perror("wait4");
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                 (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    printf("%.4f %ld %d %.4f\n", secs, ru.ru_maxrss, code, cpu);
    return 0;
}
