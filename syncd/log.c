#include "log.h"

#include <stdarg.h>
#include <stdio.h>

static bool log_syslog;
static int log_max = LOG_INFO;

void hafw_log_init(const char *ident, bool use_syslog, int max_level)
{
	log_syslog = use_syslog;
	log_max = max_level;
	if (use_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void hafw_log(int level, const char *fmt, ...)
{
	static const char *const names[] = {"emerg",   "alert",  "crit", "error",
	                                    "warning", "notice", "info", "debug"};
	va_list ap;

	if (level > log_max)
		return;
	va_start(ap, fmt);
	if (log_syslog) {
		vsyslog(level, fmt, ap);
	} else {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		fprintf(stderr, "%ld.%03ld %s: ", (long)ts.tv_sec, ts.tv_nsec / 1000000,
		        names[level & 7]);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
	va_end(ap);
}

bool hafw_ratelimit_ok(struct hafw_ratelimit *rl)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (ts.tv_sec >= rl->window + (time_t)rl->interval) {
		if (rl->suppressed)
			hafw_log(LOG_WARNING, "%lu similar messages suppressed", rl->suppressed);
		rl->window = ts.tv_sec;
		rl->printed = 0;
		rl->suppressed = 0;
	}
	if (rl->printed < rl->burst) {
		rl->printed++;
		return true;
	}
	rl->suppressed++;
	return false;
}
