/* clock.h - wall-clock time in UTC milliseconds. */
#ifndef BEACON_CLOCK_H
#define BEACON_CLOCK_H

#include <stdint.h>

int64_t clock_now_ms(void);

#endif
