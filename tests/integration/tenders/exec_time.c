/* tender_exec_time: median, min and max wall time from fork+exec of a
 * command to its exit, over N runs (stdout/stderr to /dev/null).
 *   tender_exec_time N COMMAND [ARGS...]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s N COMMAND [ARGS...]\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[1]);
    if (n < 1 || n > 10000) {
        fprintf(stderr, "%s: N must be 1..10000\n", argv[0]);
        return 2;
    }
    double *ms = calloc(n, sizeof *ms);
    int devnull = open("/dev/null", O_WRONLY);
    if (!ms || devnull < 0) {
        perror("setup");
        return 2;
    }
    for (int i = 0; i < n; i++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 2;
        }
        if (pid == 0) {
            dup2(devnull, 1);
            dup2(devnull, 2);
            execv(argv[2], argv + 2);
            _exit(127);
        }
        int ws;
        waitpid(pid, &ws, 0);
        clock_gettime(CLOCK_MONOTONIC, &b);
        if (!WIFEXITED(ws) || WEXITSTATUS(ws) == 127) {
            fprintf(stderr, "%s: run %d of %s failed (wait status 0x%x)\n", argv[0], i, argv[2], ws);
            return 1;
        }
        ms[i] = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
    }
    qsort(ms, n, sizeof *ms, cmp);
    double median = n % 2 ? ms[n / 2] : (ms[n / 2 - 1] + ms[n / 2]) / 2;
    printf("runs %d  median %.3f ms  min %.3f ms  max %.3f ms\n", n, median, ms[0], ms[n - 1]);
    return 0;
}
