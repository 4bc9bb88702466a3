/* The core's clock: monotonic time for intervals and cache stamps, wall
 * time for epochs and versions, both replaceable (tests move their own). */
#include "repl_int.h"

#include <time.h>

/* how far ahead of our wall clock a received version may pull ours */
#define VERSION_FUTURE_US (60ull * 1000000)

uint64_t repl_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t sys_wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t repl_now_ms(const struct repl *r)
{
	return r->clock.mono_ms ? r->clock.mono_ms(r->clock.arg) : repl_mono_ms();
}

uint32_t repl_now_s(const struct repl *r)
{
	return (uint32_t)(repl_now_ms(r) / 1000);
}

uint64_t repl_wall_us(const struct repl *r)
{
	return r->clock.wall_us ? r->clock.wall_us(r->clock.arg) : sys_wall_us();
}

/* Versions are a hybrid logical clock: wall time in µs, but always past
 * every version this node has sent or received. So versions of one sender
 * grow with its changes, and a node that takes over a flow and changes it
 * gives it a version above the one the old owner gave. */
uint64_t repl_next_version(struct repl *r)
{
	uint64_t w = repl_wall_us(r);

	r->hlc = r->hlc + 1 > w ? r->hlc + 1 : w;
	return r->hlc;
}

void repl_observe_version(struct repl *r, uint64_t v)
{
	if (v <= r->hlc)
		return;
	/* a peer with a wild clock (or a forged version) must not drag ours
	 * into the far future: past this bound, versions are still compared
	 * but ours does not follow */
	if (v > repl_wall_us(r) + VERSION_FUTURE_US) {
		r->st.version_future++;
		return;
	}
	r->hlc = v;
}

uint32_t repl_aged(uint32_t timeout, uint32_t stamp, uint32_t now)
{
	uint32_t age = now - stamp;

	return timeout > age + 1 ? timeout - age : 1;
}

uint64_t repl_slice_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void repl_slice_done(struct repl *r, uint64_t t0)
{
	uint64_t d = repl_slice_clock() - t0;

	if (d > r->st.slice_max_us)
		r->st.slice_max_us = d;
}
