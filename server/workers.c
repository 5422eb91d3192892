/*
 * workers.c - a bounded queue of jobs and the threads that run them.
 *
 * The threads run at a lower CPU priority than the rest of the process
 * (WORKER_NICE): on a busy machine a report waits for the pixel path,
 * not the other way round.  Linux gives each thread its own nice value.
 */
#define _GNU_SOURCE     /* syscall(), for the thread id setpriority wants */

#include "server/workers.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * nice +10: the scheduler then gives a busy HTTP thread about ten times
 * a worker's share of a shared core, yet a worker never starves.
 */
#define WORKER_NICE 10

struct workers {
    pthread_mutex_t lock;
    pthread_cond_t ready;           /* a job arrived, or stop */
    workers_fn *fn;
    void **ring;
    size_t cap, head, n;
    int stopping;
    unsigned n_threads;
    pthread_t threads[];
};


/*
 * Lowers the calling thread's priority.  Raising one's own nice value
 * needs no privilege; where it is refused anyway the jobs still run, at
 * the usual priority, so the result is ignored.
 */
static void
lower_priority(void)
{
    pid_t tid = (pid_t) syscall(SYS_gettid);

    (void) setpriority(PRIO_PROCESS, (id_t) tid, WORKER_NICE);
}


static void *
worker_main(void *arg)
{
    struct workers *w = arg;

    lower_priority();
    pthread_mutex_lock(&w->lock);
    for (;;) {
        void *job;

        while (w->n == 0 && !w->stopping) {
            pthread_cond_wait(&w->ready, &w->lock);
        }
        if (w->n == 0) {
            break;
        }
        job = w->ring[w->head];
        w->head = (w->head + 1) % w->cap;
        w->n--;

        pthread_mutex_unlock(&w->lock);
        w->fn(job);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}


int
workers_start(struct workers **out, unsigned n, size_t max_queue,
              workers_fn *fn, char *err, size_t errlen)
{
    struct workers *w;

    *out = NULL;
    w = calloc(1, sizeof(*w) + n * sizeof(pthread_t));
    if (w == NULL || (w->ring = calloc(max_queue, sizeof(void *))) == NULL) {
        free(w);
        snprintf(err, errlen, "workers: out of memory");
        return -1;
    }
    w->fn = fn;
    w->cap = max_queue;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->ready, NULL);

    for (; w->n_threads < n; w->n_threads++) {
        if (pthread_create(&w->threads[w->n_threads], NULL, worker_main, w)
            != 0) {
            snprintf(err, errlen, "workers: cannot start thread %u",
                     w->n_threads);
            workers_stop(w);
            return -1;
        }
    }
    *out = w;
    return 0;
}


int
workers_submit(struct workers *w, void *job)
{
    int rc = -1;

    pthread_mutex_lock(&w->lock);
    if (!w->stopping && w->n < w->cap) {
        w->ring[(w->head + w->n) % w->cap] = job;
        w->n++;
        pthread_cond_signal(&w->ready);
        rc = 0;
    }
    pthread_mutex_unlock(&w->lock);
    return rc;
}


void
workers_stop(struct workers *w)
{
    if (w == NULL) {
        return;
    }
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    pthread_cond_broadcast(&w->ready);
    pthread_mutex_unlock(&w->lock);

    for (unsigned i = 0; i < w->n_threads; i++) {
        pthread_join(w->threads[i], NULL);
    }
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->ready);
    free(w->ring);
    free(w);
}
