/* SPDX-License-Identifier: MIT */
/*
 * cmd/bench/report.c - `uspf bench` results: the row list, the ratios to the
 * references, the latency histogram, and output as a table, JSON or CSV.
 *
 * CSV is one header line and one line per row.  The columns are fixed for a
 * kind of row (fault rows, vmas, index), and for fault rows the counters
 * follow as counter_NAME columns: every uspf counter in uspf_counter_name()
 * order, then minflt (native), then any other name a row carries, in the
 * order first seen.  A field is empty where the row has no such value (a
 * reference's handler latency, native's uspf counters, a missing ratio).
 *
 * The histogram is log-linear: values below 8 ns have a bucket each; above,
 * each power of two is cut into 8 linear sub-buckets, so a percentile is
 * exact to 1/8 of its power of two (12.5%).  A percentile is reported as
 * the middle of its bucket.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/bench/bench.h"

/* ---- histogram ---- */

void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
	unsigned int i;

	for (i = 0; i < BENCH_HIST_BUCKETS; i++)
		dst->bucket[i] += src->bucket[i];
	dst->count += src->count;
	if (src->max > dst->max)
		dst->max = src->max;
}

static uint64_t hist_bucket_value(unsigned int idx)
{
	unsigned int msb, sub;
	uint64_t low, width;

	if (idx < BENCH_HIST_SUB)
		return idx;
	msb = idx / BENCH_HIST_SUB + 2;
	sub = idx % BENCH_HIST_SUB;
	low = (uint64_t)(BENCH_HIST_SUB + sub) << (msb - 3);
	width = 1ULL << (msb - 3);
	return low + width / 2;
}

uint64_t bench_hist_percentile(const struct bench_hist *h, double pct)
{
	uint64_t target, seen = 0;
	unsigned int i;

	if (!h->count)
		return 0;
	target = (uint64_t)ceil((double)h->count * pct / 100.0);
	if (target < 1)
		target = 1;
	for (i = 0; i < BENCH_HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= target)
			return hist_bucket_value(i);
	}
	return hist_bucket_value(BENCH_HIST_BUCKETS - 1);
}

void bench_row_latency(struct bench_pft_row *row, const struct bench_hist *lat)
{
	row->p50_ns = bench_hist_percentile(lat, 50.0);
	row->p90_ns = bench_hist_percentile(lat, 90.0);
	row->p99_ns = bench_hist_percentile(lat, 99.0);
	row->max_ns = lat->max;
}

/* ---- rows ---- */

struct bench_row *bench_report_add(struct bench_report *rep, enum bench_row_kind kind)
{
	struct bench_row *rows, *row;
	size_t cap;

	if (rep->nr_rows == rep->cap_rows) {
		cap = rep->cap_rows ? rep->cap_rows * 2 : 16;
		rows = realloc(rep->rows, cap * sizeof(*rows));
		if (!rows) {
			fprintf(stderr, "uspf bench: %s\n", strerror(ENOMEM));
			return NULL;
		}
		rep->rows = rows;
		rep->cap_rows = cap;
	}
	row = &rep->rows[rep->nr_rows++];
	memset(row, 0, sizeof(*row));
	row->kind = kind;
	if (kind == BENCH_ROW_PFT) {
		row->pft.ratio_native = NAN;
		row->pft.ratio_naive = NAN;
		row->pft.ratio_raw = NAN;
	}
	return row;
}

void bench_report_free(struct bench_report *rep)
{
	free(rep->rows);
	rep->rows = NULL;
	rep->nr_rows = 0;
	rep->cap_rows = 0;
}

void bench_pft_row_counter(struct bench_pft_row *row, const char *name, uint64_t value)
{
	if (row->nr_counters == BENCH_MAX_COUNTERS)
		return;
	row->counters[row->nr_counters].name = name;
	row->counters[row->nr_counters].value = value;
	row->nr_counters++;
}

/* The reference row; for raw, the one with the same handler settings (handlers_variant). */
static const struct bench_pft_row *find_ref(const struct bench_report *rep,
					    const char *workload, const char *policy,
					    unsigned int threads, const char *variant)
{
	size_t i;

	for (i = 0; i < rep->nr_rows; i++) {
		const struct bench_pft_row *r = &rep->rows[i].pft;

		if (rep->rows[i].kind == BENCH_ROW_PFT && r->threads == threads &&
		    !strcmp(r->policy, policy) && !strcmp(bench_row_workload(r), workload) &&
		    (variant ? r->handlers_variant && !strcmp(r->handlers_variant, variant) :
			       !r->variant))
			return r;
	}
	return NULL;
}

void bench_report_ratios(struct bench_report *rep)
{
	const struct bench_pft_row *native, *naive, *raw;
	struct bench_pft_row *r;
	size_t i;

	for (i = 0; i < rep->nr_rows; i++) {
		if (rep->rows[i].kind != BENCH_ROW_PFT)
			continue;
		r = &rep->rows[i].pft;
		native = find_ref(rep, bench_row_workload(r), "native", r->threads, NULL);
		naive = find_ref(rep, bench_row_workload(r), "naive", r->threads, NULL);
		if (native && native->hmean > 0)
			r->ratio_native = r->hmean / native->hmean;
		if (naive && naive->hmean > 0)
			r->ratio_naive = r->hmean / naive->hmean;
		/* The protocol's cost: a policy against the same handlers with no model. */
		raw = r->intake && strcmp(r->policy, "raw") && strcmp(r->policy, "naive") ?
		      find_ref(rep, bench_row_workload(r), "raw", r->threads,
			       r->handlers_variant) : NULL;
		if (raw && raw->hmean > 0)
			r->ratio_raw = r->hmean / raw->hmean;
	}
}

/* ---- the progress line ---- */

#define PROGRESS_AFTER_NS	(3ULL * 1000000000)	/* runs shorter than this: none */

static struct {
	bool started, tty, shown;
	uint64_t start_ns;
	unsigned int rows, row;
	const char *workload, *policy;
	unsigned int threads;
} progress;

void bench_progress_start(unsigned int rows)
{
	memset(&progress, 0, sizeof(progress));
	progress.started = true;
	progress.tty = isatty(STDERR_FILENO) == 1;
	progress.start_ns = bench_now_ns();
	progress.rows = rows;
}

static void progress_draw(unsigned int it, unsigned int iterations)
{
	char line[128];
	int n = 0;

	if (!progress.tty || !progress.policy)
		return;
	if (!progress.shown && bench_now_ns() - progress.start_ns < PROGRESS_AFTER_NS)
		return;
	if (progress.rows)
		n = snprintf(line, sizeof(line), "[%u/%u] ", progress.row, progress.rows);
	n += snprintf(line + n, sizeof(line) - (size_t)n, "%s %s threads=%u",
		      progress.workload, progress.policy, progress.threads);
	if (iterations && (size_t)n < sizeof(line))
		snprintf(line + n, sizeof(line) - (size_t)n, " iteration %u/%u",
			 it + 1, iterations);
	/* \033[K: clear what a longer line before left on the right */
	fprintf(stderr, "\r%s\033[K", line);
	fflush(stderr);
	progress.shown = true;
}

void bench_progress_row(const char *workload, const char *policy, unsigned int threads)
{
	if (!progress.started)
		bench_progress_start(0);
	progress.row++;
	progress.workload = workload;
	progress.policy = policy;
	progress.threads = threads;
	progress_draw(0, 0);
}

void bench_progress_iteration(unsigned int it, unsigned int iterations)
{
	progress_draw(it, iterations);
}

void bench_progress_end(void)
{
	if (progress.shown) {
		fprintf(stderr, "\r\033[K");
		fflush(stderr);
	}
	memset(&progress, 0, sizeof(progress));
}

/* ---- table ---- */

static void size_str(char *buf, size_t len, size_t bytes)
{
	if (bytes % (1UL << 30) == 0)
		snprintf(buf, len, "%zuG", bytes >> 30);
	else if (bytes % (1UL << 20) == 0)
		snprintf(buf, len, "%zuM", bytes >> 20);
	else if (bytes % (1UL << 10) == 0)
		snprintf(buf, len, "%zuK", bytes >> 10);
	else
		snprintf(buf, len, "%zu", bytes);
}

static void ratio_str(char *buf, size_t len, double ratio)
{
	if (isnan(ratio))
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.3f", ratio);
}

/* The first header line of a harness workload (cmd/bench/work.c): its parameters. */
static void table_work_desc(const struct bench_report *rep, const char *wl, FILE *out)
{
	const struct bench_opts *o = rep->opts;
	char size[32], size2[32], run[48];

	if (o->loops)
		snprintf(run, sizeof(run), "%" PRIu64 " loops per thread", o->loops);
	else
		snprintf(run, sizeof(run), "%.3gs per run", (double)o->duration_ns / 1e9);
	fprintf(out, "# uspf %s bench %s: ", PACKAGE_VERSION, wl);
	if (!strcmp(wl, "page_fault1")) {
		size_str(size, sizeof(size), o->map_size);
		fprintf(out, "each thread maps %s, writes every page, unmaps, loops; %s", size, run);
	} else if (!strcmp(wl, "malloc1")) {
		size_str(size, sizeof(size), o->size);
		size_str(size2, sizeof(size2), o->churn_size);
		fprintf(out, "pft on one %s region beside %u thread%s mapping and unmapping %s (churn/s: pairs)",
			size, o->churn_threads, o->churn_threads == 1 ? "" : "s", size2);
	} else if (!strcmp(wl, "spf_test")) {
		fprintf(out, "each loop maps %u regions of %u pages, writes each page, unmaps them; %s",
			o->spf_vmas, o->spf_pages, run);
	} else if (!strcmp(wl, "execl")) {
		size_str(size, sizeof(size), o->file_size);
		fprintf(out, "an address space per thread (references: a process) maps one %s file, writes %u pages, unmaps; %s",
			size, o->touch_pages, run);
	} else if (!strcmp(wl, "ebizzy")) {
		size_str(size, sizeof(size), o->chunk_size);
		size_str(size2, sizeof(size2), o->size);
		fprintf(out, "each loop maps a %s copy of a random chunk of %s, writes every page, "
			"copies, searches, unmaps; records/s: records found; %s", size, size2, run);
	} else if (!strcmp(wl, "random")) {
		size_str(size, sizeof(size), o->size);
		fprintf(out, "one %s region, each thread's slice in a random order (seed %" PRIu64 ")",
			size, o->seed);
	}
	fprintf(out, "; %u iteration%s, %u CPUs\n", o->iterations, o->iterations == 1 ? "" : "s",
		rep->cpus);
}

static void table_pft_header(const struct bench_report *rep, const char *wl, FILE *out)
{
	const struct bench_opts *o = rep->opts;
	char size[32];

	size_str(size, sizeof(size), o->size);
	if (strcmp(wl, "pft"))
		table_work_desc(rep, wl, out);
	else
		fprintf(out, "# uspf %s bench pft: one %s MAP_PRIVATE region, %zu pages, %u iteration%s, %u CPUs\n",
			PACKAGE_VERSION, size, o->size / bench_page_size(), o->iterations,
			o->iterations == 1 ? "" : "s", rep->cpus);
	fprintf(out, "# faults/s: Hmean over iterations; faults/s/cpu: Hmean / threads;\n"
		"# spread: min-max faults/s over iterations; CoV%%: their stddev / mean, in percent;\n"
		"# p50/p90/p99/max: ns per touch seen by the faulting threads;\n"
		"# vs native / vs naive: faults/s / the reference's at the same thread count;\n"
		"# counters: totals over all iterations, non-zero ones (uspf_stats; naive: its own;\n"
		"# native: getrusage minflt); --format json or csv gives every counter\n");
	if (!strcmp(wl, "pft") && o->references)
		fprintf(out, "# raw: uspf's handlers with no model; vs_raw: a policy's faults/s / raw's\n");
	if (o->cfg.folio_pages == 1)
		fprintf(out, "# uspf: one page per fault, as the kernel's anonymous faults");
	else
		fprintf(out, "# uspf: %u pages per fault, the analogue of %uK large folios (mTHP), "
			"not the kernel's one page", o->cfg.folio_pages,
			o->cfg.folio_pages * (unsigned int)(bench_page_size() / 1024));
	fprintf(out, "; handlers %u (0: one per two CPUs), intake %s, spin %u us; "
		"cpu_dma_latency %s\n", o->cfg.handlers, uspf_intake_name(o->cfg.intake),
		o->cfg.spin_us, rep->pm_qos);
	if (o->cfg.folio_pages > 1 && o->references && !strcmp(wl, "pft"))
		fprintf(out, "# native %s: %s\n", rep->native_folio_label,
			rep->native_folios ? "the kernel faults the region in folios of that size "
			"(MADV_HUGEPAGE), the row labelled so" : rep->native_folio_why);
	fprintf(out, "%-11s %-13s %7s %9s %14s %13s %23s %6s %9s %9s %9s %10s %9s %9s\n",
		"workload", "policy", "threads", "faults", "Hmean faults/s",
		"faults/s/cpu", "spread (min-max)", "CoV%", "p50 ns", "p90 ns",
		"p99 ns", "max ns", "vs native", "vs naive");
}

#define TABLE_INDENT	26	/* the lines under a row start under "faults" */

static void table_pft_row(const struct bench_pft_row *r, FILE *out)
{
	char spread[48], rn[16], rv[16];
	unsigned int i, shown;

	snprintf(spread, sizeof(spread), "%.0f-%.0f", r->min, r->max);
	ratio_str(rn, sizeof(rn), r->ratio_native);
	ratio_str(rv, sizeof(rv), r->ratio_naive);
	fprintf(out, "%-11s %-13s %7u %9" PRIu64 " %14.0f %13.0f %23s %6.1f %9" PRIu64
		" %9" PRIu64 " %9" PRIu64 " %10" PRIu64 " %9s %9s\n",
		bench_row_workload(r), r->policy, r->threads, r->faults, r->hmean,
		r->hmean / r->threads, spread, r->cov_pct, r->p50_ns, r->p90_ns,
		r->p99_ns, r->max_ns, rn, rv);
	if (r->variant || r->ops_name) {
		fprintf(out, "%*s", TABLE_INDENT - 1, "");
		if (r->variant)
			fprintf(out, " %s", r->variant);
		if (r->ops_name)
			fprintf(out, " %s/s=%.0f", r->ops_name, r->ops_per_sec);
		fprintf(out, "\n");
	}
	if (r->intake) {
		fprintf(out, "%*s handlers=%u intake=%s", TABLE_INDENT, "", r->handlers, r->intake);
		if (strcmp(r->policy, "naive"))
			fprintf(out, " spin_us=%u", r->spin_us);
		if (r->user_mode_only)
			fprintf(out, " user-mode-only");
		if (r->has_handler_lat)
			fprintf(out, " handle_p50_ns=%" PRIu64 " handle_p90_ns=%" PRIu64
				" handle_p99_ns=%" PRIu64 " handle_max_ns=%" PRIu64,
				r->handler_p50_ns, r->handler_p90_ns, r->handler_p99_ns,
				r->handler_max_ns);
		if (isfinite(r->ratio_raw))
			fprintf(out, " vs_raw=%.3f", r->ratio_raw);
		fprintf(out, "\n");
	}
	for (i = 0, shown = 0; i < r->nr_counters; i++) {
		if (!r->counters[i].value)
			continue;
		fprintf(out, "%*s %s=%" PRIu64, shown++ ? 0 : TABLE_INDENT, "",
			r->counters[i].name, r->counters[i].value);
	}
	if (shown)
		fprintf(out, "\n");
}

static void table_vmas_header(const struct bench_report *rep, FILE *out)
{
	fprintf(out, "# uspf %s bench vmas: uspf_mmap N one-page regions, then uspf_munmap each; %u CPUs\n"
		"# ns/op: wall time / N (flat across N: no quadratic cost); model vmas: uspf_stats().vmas after the maps\n",
		PACKAGE_VERSION, rep->cpus);
	fprintf(out, "%-11s %-13s %9s %13s %13s %11s\n",
		"workload", "policy", "n", "map ns/op", "unmap ns/op", "model vmas");
}

static void table_vmas_row(const struct bench_vmas_row *r, FILE *out)
{
	fprintf(out, "%-11s %-13s %9zu %13.0f %13.0f %11" PRIu64 "\n",
		"vmas", r->policy, r->n, r->map_ns, r->unmap_ns, r->model_vmas);
}

static void table_index_header(const struct bench_report *rep, FILE *out)
{
	fprintf(out, "# uspf %s bench index: the VMA index alone, n entries, seed %" PRIu64 "; ns per operation\n",
		PACKAGE_VERSION, rep->opts->seed);
	fprintf(out, "%-11s %10s %11s %11s %11s\n",
		"workload", "n", "insert ns", "lookup ns", "erase ns");
}

static void table_index_row(const struct bench_index_row *r, FILE *out)
{
	fprintf(out, "%-11s %10zu %11.1f %11.1f %11.1f\n",
		"index", r->n, r->insert_ns, r->lookup_ns, r->erase_ns);
}

/* A workload's header before its first row (rows come grouped by workload). */
static void table_group_header(const struct bench_report *rep, size_t i, FILE *out)
{
	const struct bench_row *row = &rep->rows[i], *prev = i ? &rep->rows[i - 1] : NULL;

	if (prev && prev->kind == row->kind && (row->kind != BENCH_ROW_PFT ||
	    !strcmp(bench_row_workload(&prev->pft), bench_row_workload(&row->pft))))
		return;
	if (prev)
		fprintf(out, "\n");
	switch (row->kind) {
	case BENCH_ROW_PFT:
		table_pft_header(rep, bench_row_workload(&row->pft), out);
		break;
	case BENCH_ROW_VMAS:
		table_vmas_header(rep, out);
		break;
	case BENCH_ROW_INDEX:
		table_index_header(rep, out);
		break;
	}
}

static void print_table(const struct bench_report *rep, FILE *out)
{
	size_t i;

	for (i = 0; i < rep->nr_rows; i++) {
		const struct bench_row *row = &rep->rows[i];

		table_group_header(rep, i, out);
		switch (row->kind) {
		case BENCH_ROW_PFT:
			table_pft_row(&row->pft, out);
			break;
		case BENCH_ROW_VMAS:
			table_vmas_row(&row->vmas, out);
			break;
		case BENCH_ROW_INDEX:
			table_index_row(&row->index, out);
			break;
		}
	}
}

/* ---- JSON ---- */

static void json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

static void json_num(FILE *out, double v, int decimals)
{
	if (!isfinite(v))
		fprintf(out, "null");
	else
		fprintf(out, "%.*f", decimals, v);
}

static void json_pft_row(const struct bench_pft_row *r, FILE *out)
{
	unsigned int i;

	fprintf(out, "{\"workload\": ");
	json_str(out, bench_row_workload(r));
	fprintf(out, ", \"variant\": ");
	if (r->variant)
		json_str(out, r->variant);
	else
		fprintf(out, "null");
	fprintf(out, ", \"policy\": ");
	json_str(out, r->policy);
	fprintf(out, ", \"threads\": %u, \"handlers\": %u, \"intake\": ", r->threads, r->handlers);
	if (r->intake)
		json_str(out, r->intake);
	else
		fprintf(out, "null");
	if (r->intake && strcmp(r->policy, "naive"))
		fprintf(out, ", \"spin_us\": %u", r->spin_us);
	else
		fprintf(out, ", \"spin_us\": null");
	fprintf(out, ", \"user_mode_only\": %s, \"faults\": %" PRIu64 ", \"faults_per_sec\": ",
		r->user_mode_only ? "true" : "false", r->faults);
	json_num(out, r->hmean, 1);
	fprintf(out, ", \"faults_per_sec_per_cpu\": ");
	json_num(out, r->hmean / r->threads, 1);
	fprintf(out, ", \"spread\": {\"min\": ");
	json_num(out, r->min, 1);
	fprintf(out, ", \"max\": ");
	json_num(out, r->max, 1);
	fprintf(out, ", \"stddev\": ");
	json_num(out, r->stddev, 1);
	fprintf(out, ", \"cov_pct\": ");
	json_num(out, r->cov_pct, 2);
	fprintf(out, "}, \"latency_ns\": {\"p50\": %" PRIu64 ", \"p90\": %" PRIu64
		", \"p99\": %" PRIu64 ", \"max\": %" PRIu64 "}",
		r->p50_ns, r->p90_ns, r->p99_ns, r->max_ns);
	if (r->has_handler_lat)
		fprintf(out, ", \"handler_latency_ns\": {\"p50\": %" PRIu64 ", \"p90\": %" PRIu64
			", \"p99\": %" PRIu64 ", \"max\": %" PRIu64 "}",
			r->handler_p50_ns, r->handler_p90_ns, r->handler_p99_ns,
			r->handler_max_ns);
	fprintf(out, ", \"counters\": {");
	for (i = 0; i < r->nr_counters; i++) {
		fprintf(out, "%s", i ? ", " : "");
		json_str(out, r->counters[i].name);
		fprintf(out, ": %" PRIu64, r->counters[i].value);
	}
	fprintf(out, "}, \"ratio_native\": ");
	json_num(out, r->ratio_native, 4);
	fprintf(out, ", \"ratio_naive\": ");
	json_num(out, r->ratio_naive, 4);
	fprintf(out, ", \"ratio_raw\": ");
	json_num(out, r->ratio_raw, 4);
	if (r->ops_name) {
		fprintf(out, ", \"ops_name\": ");
		json_str(out, r->ops_name);
		fprintf(out, ", \"ops_per_sec\": ");
		json_num(out, r->ops_per_sec, 1);
	}
	fprintf(out, "}");
}

static void json_vmas_row(const struct bench_vmas_row *r, FILE *out)
{
	fprintf(out, "{\"workload\": \"vmas\", \"policy\": ");
	json_str(out, r->policy);
	fprintf(out, ", \"n\": %zu, \"map_ns_per_op\": ", r->n);
	json_num(out, r->map_ns, 1);
	fprintf(out, ", \"unmap_ns_per_op\": ");
	json_num(out, r->unmap_ns, 1);
	fprintf(out, ", \"model_vmas\": %" PRIu64 "}", r->model_vmas);
}

static void json_index_row(const struct bench_index_row *r, FILE *out)
{
	fprintf(out, "{\"workload\": \"index\", \"n\": %zu, \"insert_ns\": ", r->n);
	json_num(out, r->insert_ns, 2);
	fprintf(out, ", \"lookup_ns\": ");
	json_num(out, r->lookup_ns, 2);
	fprintf(out, ", \"erase_ns\": ");
	json_num(out, r->erase_ns, 2);
	fprintf(out, "}");
}

static void json_header(const struct bench_report *rep, FILE *out)
{
	const struct bench_opts *o = rep->opts;
	bool faults = false;
	unsigned int i;

	fprintf(out, "{\"uspf_version\": ");
	json_str(out, PACKAGE_VERSION);
	fprintf(out, ", \"machine\": {\"cpus\": %u, \"page_size\": %zu}, \"workload\": \"",
		rep->cpus, bench_page_size());
	for (i = 0; i < o->nr_workloads; i++)
		fprintf(out, "%s%s", i ? "," : "", bench_workload_name(o->workloads[i]));
	fprintf(out, "\", \"workloads\": [");
	for (i = 0; i < o->nr_workloads; i++)
		fprintf(out, "%s\"%s\"", i ? ", " : "", bench_workload_name(o->workloads[i]));
	fprintf(out, "]");
	for (i = 0; i < o->nr_workloads; i++)
		faults |= o->workloads[i] != BENCH_VMAS && o->workloads[i] != BENCH_INDEX;
	if (faults)
		fprintf(out, ", \"size\": %zu, \"iterations\": %u, \"notes\": {"
			"\"faults\": \"pages touched per iteration (timed workloads: the mean)\", "
			"\"faults_per_sec\": \"harmonic mean over iterations\", "
			"\"spread\": \"min, max, sample stddev of faults_per_sec over iterations; "
			"cov_pct: stddev / arithmetic mean, in percent\", "
			"\"latency_ns\": \"per touch, seen by the faulting threads; max exact, "
			"percentiles to 1/8 of their power of two\", "
			"\"handler_latency_ns\": \"uspf: fault message read to fault resolved, "
			"log2/8 buckets, lower edge\", "
			"\"counters\": \"every counter the row's runner keeps, totals over all iterations\", "
			"\"ratio_native\": \"faults_per_sec / native's at the same threads\", "
			"\"ratio_naive\": \"faults_per_sec / naive's at the same threads\", "
			"\"ratio_raw\": \"pft uspf rows: faults_per_sec / raw's (same handlers, no model)\", "
			"\"ops_per_sec\": \"ops_name per second over the same wall time, Hmean\"}",
			o->size, o->iterations);
	fprintf(out, ", \"seed\": %" PRIu64, o->seed);
	if (faults)
		fprintf(out, ", \"params\": {\"duration_s\": %.3f, \"loops\": %" PRIu64
			", \"map_size\": %zu, \"chunk_size\": %zu, \"churn_threads\": %u, \"churn_size\": %zu"
			", \"spf_vmas\": %u, \"spf_pages\": %u, \"file_size\": %zu"
			", \"touch_pages\": %u, \"immap_reorder\": \"%s\"}",
			(double)o->duration_ns / 1e9, o->loops, o->map_size, o->chunk_size, o->churn_threads,
			o->churn_size, o->spf_vmas, o->spf_pages, o->file_size, o->touch_pages,
			o->immap == BENCH_IMMAP_BOTH ? "both" : o->immap == BENCH_IMMAP_ON ? "on" : "off");
	fprintf(out, ", \"config\": {\"handlers\": %u, \"intake\": ", o->cfg.handlers);
	json_str(out, uspf_intake_name(o->cfg.intake));
	fprintf(out, ", \"spin_us\": %u", o->cfg.spin_us);
	fprintf(out, ", \"folio_pages\": %u, \"anon_vma_at_mmap\": %s, \"wake_after_unlock\": %s, "
		"\"pm_qos_us\": %d, \"cpu_dma_latency\": ", o->cfg.folio_pages,
		o->cfg.anon_vma_at_mmap ? "true" : "false",
		o->cfg.wake_after_unlock ? "true" : "false", o->pm_qos_us);
	json_str(out, rep->pm_qos);
	fprintf(out, "}");
}

static void print_json(const struct bench_report *rep, FILE *out)
{
	size_t i;

	json_header(rep, out);
	fprintf(out, ",\n \"results\": [");
	for (i = 0; i < rep->nr_rows; i++) {
		const struct bench_row *row = &rep->rows[i];

		fprintf(out, "%s\n  ", i ? "," : "");
		switch (row->kind) {
		case BENCH_ROW_PFT:
			json_pft_row(&row->pft, out);
			break;
		case BENCH_ROW_VMAS:
			json_vmas_row(&row->vmas, out);
			break;
		case BENCH_ROW_INDEX:
			json_index_row(&row->index, out);
			break;
		}
	}
	fprintf(out, "\n ]}\n");
}

/* ---- CSV ---- */

#define CSV_MAX_COUNTERS	(2 * BENCH_MAX_COUNTERS)

static const char *const csv_pft_columns[] = {
	"workload", "policy", "variant", "threads", "handlers", "intake", "spin_us", "user_mode_only",
	"iterations", "ops_name", "ops_per_sec", "faults", "faults_per_sec", "faults_per_sec_per_cpu",
	"faults_per_sec_min", "faults_per_sec_max", "faults_per_sec_stddev",
	"faults_per_sec_cov_pct", "latency_p50_ns", "latency_p90_ns",
	"latency_p99_ns", "latency_max_ns", "handler_p50_ns", "handler_p90_ns",
	"handler_p99_ns", "handler_max_ns", "ratio_native", "ratio_naive", "ratio_raw",
};

static const char *const csv_vmas_columns[] = {
	"workload", "policy", "n", "map_ns_per_op", "unmap_ns_per_op", "model_vmas",
};

static const char *const csv_index_columns[] = {
	"workload", "n", "insert_ns", "lookup_ns", "erase_ns",
};

/* Quoted only when it has to be (RFC 4180); the names used here never are. */
static void csv_str(FILE *out, const char *s)
{
	if (!s[strcspn(s, ",\"\r\n")]) {
		fputs(s, out);
		return;
	}
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', out);
		fputc(*s, out);
	}
	fputc('"', out);
}

/* ",value", or "," alone for NaN (no such value). */
static void csv_num(FILE *out, double v, int decimals)
{
	if (isfinite(v))
		fprintf(out, ",%.*f", decimals, v);
	else
		fputc(',', out);
}

static bool csv_has(const char **names, unsigned int n, const char *name)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (!strcmp(names[i], name))
			return true;
	return false;
}

/* The counter columns for this report's fault rows; see the top of the file. */
static unsigned int csv_counter_names(const struct bench_report *rep, const char **names)
{
	unsigned int n = 0, c;
	size_t i;

	for (c = 0; c < USPF_NR_COUNTERS; c++)
		names[n++] = uspf_counter_name((enum uspf_counter)c);
	if (!csv_has(names, n, "minflt"))
		names[n++] = "minflt";
	for (i = 0; i < rep->nr_rows; i++) {
		const struct bench_pft_row *r = &rep->rows[i].pft;

		if (rep->rows[i].kind != BENCH_ROW_PFT)
			continue;
		for (c = 0; c < r->nr_counters && n < CSV_MAX_COUNTERS; c++)
			if (!csv_has(names, n, r->counters[c].name))
				names[n++] = r->counters[c].name;
	}
	return n;
}

static void csv_header(FILE *out, const char *const *cols, unsigned int n,
		       const char **counters, unsigned int nr_counters)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		fprintf(out, "%s%s", i ? "," : "", cols[i]);
	for (i = 0; i < nr_counters; i++)
		fprintf(out, ",counter_%s", counters[i]);
	fputc('\n', out);
}

static void csv_pft_row(const struct bench_report *rep, const struct bench_pft_row *r,
			const char **counters, unsigned int nr_counters, FILE *out)
{
	unsigned int i, c;

	csv_str(out, bench_row_workload(r));
	fputc(',', out);
	csv_str(out, r->policy);
	fputc(',', out);
	if (r->variant)
		csv_str(out, r->variant);
	fprintf(out, ",%u,%u,", r->threads, r->handlers);
	if (r->intake)
		csv_str(out, r->intake);
	fputc(',', out);
	if (r->intake && strcmp(r->policy, "naive"))
		fprintf(out, "%u", r->spin_us);
	fprintf(out, ",%d,%u,", r->user_mode_only, rep->opts->iterations);
	if (r->ops_name)
		csv_str(out, r->ops_name);
	if (r->ops_name)
		csv_num(out, r->ops_per_sec, 1);
	else
		fputc(',', out);
	fprintf(out, ",%" PRIu64, r->faults);
	csv_num(out, r->hmean, 1);
	csv_num(out, r->hmean / r->threads, 1);
	csv_num(out, r->min, 1);
	csv_num(out, r->max, 1);
	csv_num(out, r->stddev, 1);
	csv_num(out, r->cov_pct, 2);
	fprintf(out, ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64,
		r->p50_ns, r->p90_ns, r->p99_ns, r->max_ns);
	if (r->has_handler_lat)
		fprintf(out, ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64,
			r->handler_p50_ns, r->handler_p90_ns, r->handler_p99_ns,
			r->handler_max_ns);
	else
		fputs(",,,,", out);
	csv_num(out, r->ratio_native, 4);
	csv_num(out, r->ratio_naive, 4);
	csv_num(out, r->ratio_raw, 4);
	for (i = 0; i < nr_counters; i++) {
		fputc(',', out);
		for (c = 0; c < r->nr_counters; c++) {
			if (!strcmp(r->counters[c].name, counters[i])) {
				fprintf(out, "%" PRIu64, r->counters[c].value);
				break;
			}
		}
	}
	fputc('\n', out);
}

static void csv_vmas_row(const struct bench_vmas_row *r, FILE *out)
{
	fputs("vmas,", out);
	csv_str(out, r->policy);
	fprintf(out, ",%zu", r->n);
	csv_num(out, r->map_ns, 1);
	csv_num(out, r->unmap_ns, 1);
	fprintf(out, ",%" PRIu64 "\n", r->model_vmas);
}

static void csv_index_row(const struct bench_index_row *r, FILE *out)
{
	fprintf(out, "index,%zu", r->n);
	csv_num(out, r->insert_ns, 2);
	csv_num(out, r->lookup_ns, 2);
	csv_num(out, r->erase_ns, 2);
	fputc('\n', out);
}

#define NR(a)	(sizeof(a) / sizeof((a)[0]))

/*
 * One header: a report holds rows of one kind (that of its workload); a row
 * of another kind could not be read under that header, so none is printed.
 */
static void print_csv(const struct bench_report *rep, FILE *out)
{
	const char *counters[CSV_MAX_COUNTERS];
	enum bench_row_kind kind;
	unsigned int nr_counters = 0;
	size_t i;

	if (rep->nr_rows)
		kind = rep->rows[0].kind;
	else if (rep->opts->workload == BENCH_VMAS)
		kind = BENCH_ROW_VMAS;
	else if (rep->opts->workload == BENCH_INDEX)
		kind = BENCH_ROW_INDEX;
	else
		kind = BENCH_ROW_PFT;
	switch (kind) {
	case BENCH_ROW_PFT:
		nr_counters = csv_counter_names(rep, counters);
		csv_header(out, csv_pft_columns, NR(csv_pft_columns), counters, nr_counters);
		break;
	case BENCH_ROW_VMAS:
		csv_header(out, csv_vmas_columns, NR(csv_vmas_columns), NULL, 0);
		break;
	case BENCH_ROW_INDEX:
		csv_header(out, csv_index_columns, NR(csv_index_columns), NULL, 0);
		break;
	}
	for (i = 0; i < rep->nr_rows; i++) {
		const struct bench_row *row = &rep->rows[i];

		if (row->kind != kind)
			continue;
		switch (row->kind) {
		case BENCH_ROW_PFT:
			csv_pft_row(rep, &row->pft, counters, nr_counters, out);
			break;
		case BENCH_ROW_VMAS:
			csv_vmas_row(&row->vmas, out);
			break;
		case BENCH_ROW_INDEX:
			csv_index_row(&row->index, out);
			break;
		}
	}
}

int bench_report_print(const struct bench_report *rep, FILE *out)
{
	switch (rep->opts->format) {
	case BENCH_JSON:
		print_json(rep, out);
		break;
	case BENCH_CSV:
		print_csv(rep, out);
		break;
	case BENCH_TABLE:
		print_table(rep, out);
		break;
	}

	if (fflush(out) || ferror(out)) {
		fprintf(stderr, "uspf bench: writing the results: %s\n", strerror(errno));
		return -EIO;
	}
	return 0;
}
