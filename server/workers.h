/*
 * workers.h - a few threads that run slow jobs (API requests, reports)
 * off the HTTP threads, so a long report never holds up a pixel fetch.
 */
#ifndef BEACON_WORKERS_H
#define BEACON_WORKERS_H

#include <stddef.h>

struct workers;

typedef void workers_fn(void *job);

/*
 * Starts n threads that call fn on each submitted job; at most max_queue
 * jobs wait.  -1 with a message in err.
 */
int workers_start(struct workers **out, unsigned n, size_t max_queue,
                  workers_fn *fn, char *err, size_t errlen);

/* Queues job.  -1 when the queue is full or the workers are stopping. */
int workers_submit(struct workers *w, void *job);

/* Refuses new jobs, runs every queued one, joins the threads.  NULL ok. */
void workers_stop(struct workers *w);

#endif
