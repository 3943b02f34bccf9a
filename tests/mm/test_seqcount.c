/* SPDX-License-Identifier: MIT */
/*
 * tests/mm/test_seqcount.c - sequence counts (vm_sequence): parity, retry detection,
 * raw reads that see a writer versus read_seqcount_begin() that waits it
 * out, and readers that never accept a torn pair.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "mm/jiffies.h"
#include "mm/seqcount.h"

TestSuite(seqcount, .timeout = 30);

Test(seqcount, init_is_even)
{
	seqcount_t s;

	seqcount_init(&s);
	cr_assert_eq(raw_read_seqcount(&s), 0);
	cr_assert_eq(read_seqcount_begin(&s), 0, "an even count does not wait");
}

Test(seqcount, write_makes_odd_then_even)
{
	seqcount_t s;

	seqcount_init(&s);
	write_seqcount_begin(&s);
	cr_assert_eq(raw_read_seqcount(&s), 1);
	write_seqcount_end(&s);
	cr_assert_eq(raw_read_seqcount(&s), 2);
	write_seqcount_begin(&s);
	write_seqcount_end(&s);
	cr_assert_eq(raw_read_seqcount(&s), 4);
}

Test(seqcount, retry_detects_a_write)
{
	seqcount_t s;
	unsigned int start;

	seqcount_init(&s);
	start = read_seqcount_begin(&s);
	cr_assert(!read_seqcount_retry(&s, start), "no write, no retry");

	write_seqcount_begin(&s);
	cr_assert(read_seqcount_retry(&s, start), "a write in progress");
	write_seqcount_end(&s);
	cr_assert(read_seqcount_retry(&s, start), "a completed write");

	start = read_seqcount_begin(&s);
	cr_assert(!read_seqcount_retry(&s, start));
}

/* A reader that meets a write in progress. */
struct waiter {
	seqcount_t *s;
	unsigned int raw;		/* raw_read_seqcount() on arrival */
	unsigned int begun;		/* read_seqcount_begin()'s result */
	_Atomic int arrived;
	_Atomic int *write_ended;	/* set by the writer just before it ends */
	int ended_when_begun;
};

static void *waiter_fn(void *arg)
{
	struct waiter *w = arg;

	w->raw = raw_read_seqcount(w->s);
	atomic_store(&w->arrived, 1);
	w->begun = read_seqcount_begin(w->s);
	w->ended_when_begun = atomic_load(w->write_ended);
	return NULL;
}

Test(seqcount, raw_read_sees_odd_begin_waits)
{
	_Atomic int write_ended = 0;
	struct waiter w = { .write_ended = &write_ended };
	seqcount_t s;
	pthread_t tid;

	seqcount_init(&s);
	w.s = &s;
	write_seqcount_begin(&s);
	cr_assert_eq(pthread_create(&tid, NULL, waiter_fn, &w), 0);
	while (!atomic_load(&w.arrived))
		usleep(100);
	usleep(30000);			/* the reader spins in begin meanwhile */
	atomic_store(&write_ended, 1);
	write_seqcount_end(&s);
	pthread_join(tid, NULL);

	cr_assert_eq(w.raw, 1, "raw_read_seqcount() does not wait: odd");
	cr_assert_eq(w.begun, 2, "read_seqcount_begin() waited for even");
	cr_assert(w.ended_when_begun, "begin returned before the write ended");
}

/* ---- a writer keeps a == b inside its section; readers never see a != b ---- */

#define TORN_NS		300000000ull
#define TORN_READERS	2

static seqcount_t pair_seq;
static struct {
	_Atomic unsigned long a, b;
} pair;
static _Atomic int pair_stop;

static void *pair_writer(void *arg)
{
	unsigned long i = 0, *writes = arg;
	int k;

	while (!atomic_load_explicit(&pair_stop, memory_order_relaxed)) {
		i++;
		write_seqcount_begin(&pair_seq);
		atomic_store_explicit(&pair.a, i, memory_order_relaxed);
		for (k = 0; k < 16; k++)	/* widen the torn window */
			__builtin_ia32_pause();
		atomic_store_explicit(&pair.b, i, memory_order_relaxed);
		write_seqcount_end(&pair_seq);
	}
	*writes = i;
	return NULL;
}

struct pair_stats {
	unsigned long reads, retries, torn;
};

static void *pair_reader(void *arg)
{
	struct pair_stats *st = arg;
	unsigned long a, b;
	unsigned int seq;

	while (!atomic_load_explicit(&pair_stop, memory_order_relaxed)) {
		for (;;) {
			seq = read_seqcount_begin(&pair_seq);
			a = atomic_load_explicit(&pair.a, memory_order_relaxed);
			b = atomic_load_explicit(&pair.b, memory_order_relaxed);
			if (!read_seqcount_retry(&pair_seq, seq))
				break;
			st->retries++;
		}
		if (a != b)
			st->torn++;
		st->reads++;
	}
	return NULL;
}

Test(seqcount, readers_never_accept_torn_pair)
{
	struct pair_stats st[TORN_READERS] = { { 0 } };
	pthread_t writer, reader[TORN_READERS];
	unsigned long writes = 0, reads = 0;
	int i;

	seqcount_init(&pair_seq);
	cr_assert_eq(pthread_create(&writer, NULL, pair_writer, &writes), 0);
	for (i = 0; i < TORN_READERS; i++)
		cr_assert_eq(pthread_create(&reader[i], NULL, pair_reader, &st[i]), 0);
	usleep(TORN_NS / 1000);
	atomic_store(&pair_stop, 1);
	pthread_join(writer, NULL);
	for (i = 0; i < TORN_READERS; i++) {
		pthread_join(reader[i], NULL);
		cr_assert_eq(st[i].torn, 0, "reader %d accepted %lu torn pairs",
			     i, st[i].torn);
		reads += st[i].reads;
	}
	cr_assert_gt(writes, 0);
	cr_assert_gt(reads, 0);
	cr_assert_eq(raw_read_seqcount(&pair_seq), 2 * writes, "even, two per write");
}
