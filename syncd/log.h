/* Logging to stderr or syslog, with a rate limiter for causes that can
 * repeat per packet or per datagram. */
#ifndef HAFW_LOG_H
#define HAFW_LOG_H

#include <stdbool.h>
#include <syslog.h>
#include <time.h>

void hafw_log_init(const char *ident, bool use_syslog, int max_level);
void hafw_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* At most `burst` lines per `interval` seconds; the rest are counted and
 * summarised when the next window opens. */
struct hafw_ratelimit {
	time_t window;
	unsigned interval;
	unsigned burst;
	unsigned printed;
	unsigned long suppressed;
};

#define HAFW_RATELIMIT_INIT(interval_, burst_)                                                     \
	{                                                                                          \
		.interval = (interval_), .burst = (burst_)                                         \
	}

bool hafw_ratelimit_ok(struct hafw_ratelimit *rl);

#define hafw_log_rl(rl, level, ...)                                                                \
	do {                                                                                       \
		if (hafw_ratelimit_ok(rl))                                                         \
			hafw_log(level, __VA_ARGS__);                                              \
	} while (0)

#endif
