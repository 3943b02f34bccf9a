/* SPDX-License-Identifier: MIT */
/*
 * test_config.c - struct uspf_config defaults and validation, names of
 * policies, intakes and counters (src/config.c, src/policy/policy.c, src/stats.c).
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include <criterion/criterion.h>

#include "uspf.h"
#include "stats.h"

Test(config, defaults_are_valid)
{
	struct uspf_config cfg;
	char msg[128] = "x";

	uspf_config_init(&cfg);
	cr_assert_eq(cfg.policy, USPF_POLICY_SPF);
	cr_assert_eq(cfg.intake, USPF_INTAKE_POLL);
	cr_assert_eq(cfg.spin_us, 50);
	cr_assert_eq(cfg.handlers, 0);
	cr_assert_eq(cfg.hz, 250);
	cr_assert_eq(cfg.folio_pages, 1);
	cr_assert_eq(cfg.fault_around, 1);	/* the old name, the same field */
	cr_assert(cfg.batch_wake);
	cr_assert_eq(uspf_config_validate(&cfg, msg, sizeof(msg)), 0);
	cr_assert_str_empty(msg);
}

struct bad_case {
	void (*set)(struct uspf_config *);
	const char *names;	/* the field the message must name */
};

static void bad_policy(struct uspf_config *c) { c->policy = USPF_NR_POLICIES; }
static void bad_handlers(struct uspf_config *c) { c->handlers = 257; }
static void bad_intake(struct uspf_config *c) { c->intake = USPF_NR_INTAKES; }
static void bad_depth0(struct uspf_config *c) { c->uring_depth = 0; }
static void bad_depth(struct uspf_config *c) { c->uring_depth = 65; }
static void bad_batch(struct uspf_config *c) { c->read_batch = 0; }
static void bad_around0(struct uspf_config *c) { c->folio_pages = 0; }
static void bad_around(struct uspf_config *c) { c->folio_pages = 513; }
static void bad_hz_low(struct uspf_config *c) { c->hz = 9; }
static void bad_hz_high(struct uspf_config *c) { c->hz = 10001; }
static void bad_aborts(struct uspf_config *c) { c->spf_backoff_aborts = 0; }
static void bad_jiffies(struct uspf_config *c) { c->spf_backoff_jiffies = 1001; }
static void bad_spin(struct uspf_config *c) { c->spin_us = 10001; }
static void bad_probe(struct uspf_config *c) { c->probe_ms = 60001; }

Test(config, every_bad_value_is_named)
{
	static const struct bad_case cases[] = {
		{ bad_policy, "policy" }, { bad_handlers, "handlers" }, { bad_intake, "intake" },
		{ bad_depth0, "uring_depth" }, { bad_depth, "uring_depth" },
		{ bad_batch, "read_batch" }, { bad_around0, "folio_pages" },
		{ bad_around, "folio_pages" }, { bad_hz_low, "hz" }, { bad_hz_high, "hz" },
		{ bad_aborts, "spf_backoff_aborts" }, { bad_jiffies, "spf_backoff_jiffies" },
		{ bad_spin, "spin_us" }, { bad_probe, "probe_ms" },
	};
	struct uspf_config cfg;
	struct uspf *u = NULL;
	char msg[128];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uspf_config_init(&cfg);
		cases[i].set(&cfg);
		cr_assert_eq(uspf_config_validate(&cfg, msg, sizeof(msg)), -EINVAL);
		cr_assert(!strncmp(msg, cases[i].names, strlen(cases[i].names)),
			  "message '%s' does not name %s", msg, cases[i].names);
		cr_assert(strstr(msg, "accepted"), "message '%s' does not say what is accepted", msg);
		cr_assert_null(strchr(msg, '\n'));
		cr_assert_eq(uspf_create(&u, &cfg), -EINVAL);
		cr_assert_null(u);
	}
	cr_assert_eq(uspf_config_validate(NULL, msg, sizeof(msg)), -EINVAL);
}

Test(config, names_round_trip)
{
	enum uspf_policy_id p;
	enum uspf_intake in;
	int i;

	for (i = 0; i < USPF_NR_POLICIES; i++) {
		cr_assert_eq(uspf_policy_from_name(uspf_policy_name(i), &p), 0);
		cr_assert_eq(p, i);
	}
	for (i = 0; i < USPF_NR_INTAKES; i++) {
		cr_assert_eq(uspf_intake_from_name(uspf_intake_name(i), &in), 0);
		cr_assert_eq(in, i);
	}
	cr_assert_str_eq(uspf_policy_name(USPF_POLICY_SPF), "spf");
	cr_assert_str_eq(uspf_policy_name(USPF_POLICY_MMAP_LOCK), "mmap-lock");
	cr_assert_eq(uspf_policy_from_name("nope", &p), -EINVAL);
	cr_assert_eq(uspf_intake_from_name("", &in), -EINVAL);
	cr_assert_null(uspf_policy_name(USPF_NR_POLICIES));
	cr_assert_null(uspf_intake_name(USPF_NR_INTAKES));
	for (i = 0; i < USPF_NR_COUNTERS; i++)
		cr_assert_not_null(uspf_counter_name(i), "counter %d has no name", i);
	cr_assert_null(uspf_counter_name(USPF_NR_COUNTERS));
	cr_assert_str_eq(uspf_counter_name(USPF_C_SPF_SUCCESS), "speculative_pgfault");
	cr_assert_str_eq(uspf_counter_name(USPF_C_ADAPTIVE_SUCCESS), "adaptive_success");
}

/* Percentiles come from a log-linear histogram: within 12.5% of the truth. */
Test(config, histogram_percentiles)
{
	static struct uspf_stats st;
	uint64_t v, got;
	int i;

	for (i = 1; i <= 1000; i++)
		st.hist[hist_bucket((uint64_t)i * 1000)]++;
	got = uspf_stats_percentile(&st, 50);
	cr_assert(got <= 500000 && got >= 500000 * 7 / 8, "p50 %lu", (unsigned long)got);
	got = uspf_stats_percentile(&st, 99);
	cr_assert(got <= 990000 && got >= 990000 * 7 / 8, "p99 %lu", (unsigned long)got);
	for (v = 1; v < (1ull << 40); v = v * 3 + 1)
		cr_assert_leq(hist_bucket_value(hist_bucket(v)), v);
	cr_assert_eq(uspf_stats_percentile(NULL, 50), 0);
}

/*
 * pct out of range is clamped; NaN is no percentile at all and gets 0, as a
 * NULL st or an empty histogram does: never the top bucket's bound.
 */
Test(config, histogram_percentile_bad_pct)
{
	static struct uspf_stats st;
	int i;

	for (i = 1; i <= 1000; i++)
		st.hist[hist_bucket((uint64_t)i * 1000)]++;
	cr_assert_eq(uspf_stats_percentile(&st, -5), uspf_stats_percentile(&st, 0));
	cr_assert_eq(uspf_stats_percentile(&st, -INFINITY), uspf_stats_percentile(&st, 0));
	cr_assert_eq(uspf_stats_percentile(&st, 1e300), uspf_stats_percentile(&st, 100));
	cr_assert_eq(uspf_stats_percentile(&st, INFINITY), uspf_stats_percentile(&st, 100));
	cr_assert_eq(uspf_stats_percentile(&st, NAN), 0, "NaN gave %lu",
		     (unsigned long)uspf_stats_percentile(&st, NAN));
	cr_assert_eq(uspf_stats_percentile(&st, -NAN), 0);
}
