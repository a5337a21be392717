/* A C guest (wasi-libc): printf, clock_gettime on both clocks, nanosleep, and an
 * exit code (3). */
#include <stdio.h>
#include <time.h>

static long long ms_between(const struct timespec *a, const struct timespec *b) {
    return (long long)(b->tv_sec - a->tv_sec) * 1000 + (b->tv_nsec - a->tv_nsec) / 1000000;
}

int main(int argc, char **argv) {
    struct timespec start, now, wall;
    clock_gettime(CLOCK_MONOTONIC, &start);
    clock_gettime(CLOCK_REALTIME, &wall);
    printf("c_clock: %s with %d args, wall clock %lld s since 1970\n", argv[0], argc - 1,
           (long long)wall.tv_sec);
    for (int i = 0; i < 3; i++) {
        struct timespec pause = {0, 50 * 1000 * 1000};
        nanosleep(&pause, NULL);
        clock_gettime(CLOCK_MONOTONIC, &now);
        printf("c_clock: tick %d at %lld ms\n", i, ms_between(&start, &now));
    }
    fprintf(stderr, "c_clock: exiting with 3\n");
    return 3;
}
