/* SPDX-License-Identifier: MIT */
/*
 * bench_report.c - `uspf bench` results: the row list, the ratios to the
 * references, the latency histogram, and output as a table or as JSON.
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

#include "bench.h"

/* ---- histogram ---- */

void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
	unsigned int i;

	for (i = 0; i < BENCH_HIST_BUCKETS; i++)
		dst->bucket[i] += src->bucket[i];
	dst->count += src->count;
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

static const struct bench_pft_row *find_ref(const struct bench_report *rep,
					    const char *workload, const char *policy,
					    unsigned int threads)
{
	size_t i;

	for (i = 0; i < rep->nr_rows; i++) {
		const struct bench_pft_row *r = &rep->rows[i].pft;

		if (rep->rows[i].kind == BENCH_ROW_PFT && r->threads == threads &&
		    !strcmp(r->policy, policy) && !strcmp(bench_row_workload(r), workload))
			return r;
	}
	return NULL;
}

void bench_report_ratios(struct bench_report *rep)
{
	const struct bench_pft_row *native, *naive;
	struct bench_pft_row *r;
	size_t i;

	for (i = 0; i < rep->nr_rows; i++) {
		if (rep->rows[i].kind != BENCH_ROW_PFT)
			continue;
		r = &rep->rows[i].pft;
		native = find_ref(rep, bench_row_workload(r), "native", r->threads);
		naive = find_ref(rep, bench_row_workload(r), "naive", r->threads);
		if (native && native->hmean > 0)
			r->ratio_native = r->hmean / native->hmean;
		if (naive && naive->hmean > 0)
			r->ratio_naive = r->hmean / naive->hmean;
	}
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

/* The first header line of a harness workload (bench_work.c): its parameters. */
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
	fprintf(out, "# faults/s: Hmean over iterations; spread: min-max faults/s over iterations;\n"
		"# faults/s/cpu: Hmean / threads; p50/p99: ns per touch seen by the faulting threads;\n"
		"# vs native / vs naive: faults/s / the reference's at the same thread count;\n"
		"# counters: totals over all iterations (uspf_stats; naive: its own; native: getrusage minflt)\n");
	fprintf(out, "%-11s %-13s %7s %9s %14s %13s %23s %9s %9s %9s %9s\n",
		"workload", "policy", "threads", "faults", "Hmean faults/s",
		"faults/s/cpu", "spread (min-max)", "p50 ns", "p99 ns",
		"vs native", "vs naive");
}

static void table_pft_row(const struct bench_pft_row *r, FILE *out)
{
	char spread[48], rn[16], rv[16];
	unsigned int i;

	snprintf(spread, sizeof(spread), "%.0f-%.0f", r->min, r->max);
	ratio_str(rn, sizeof(rn), r->ratio_native);
	ratio_str(rv, sizeof(rv), r->ratio_naive);
	fprintf(out, "%-11s %-13s %7u %9" PRIu64 " %14.0f %13.0f %23s %9" PRIu64
		" %9" PRIu64 " %9s %9s\n",
		bench_row_workload(r), r->policy, r->threads, r->faults, r->hmean,
		r->hmean / r->threads, spread, r->p50_ns, r->p99_ns, rn, rv);
	if (r->variant || r->ops_name) {
		fprintf(out, "%19s", "");
		if (r->variant)
			fprintf(out, " %s", r->variant);
		if (r->ops_name)
			fprintf(out, " %s/s=%.0f", r->ops_name, r->ops_per_sec);
		fprintf(out, "\n");
	}
	if (r->intake) {
		fprintf(out, "%19s handlers=%u intake=%s%s", "", r->handlers, r->intake,
			r->user_mode_only ? " user-mode-only" : "");
		if (r->has_handler_lat)
			fprintf(out, " handle_p50_ns=%" PRIu64 " handle_p99_ns=%" PRIu64,
				r->handler_p50_ns, r->handler_p99_ns);
		fprintf(out, "\n");
	}
	if (!r->nr_counters)
		return;
	fprintf(out, "%19s", "");
	for (i = 0; i < r->nr_counters; i++)
		fprintf(out, " %s=%" PRIu64, r->counters[i].name, r->counters[i].value);
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
	fprintf(out, ", \"user_mode_only\": %s, \"faults\": %" PRIu64 ", \"faults_per_sec\": ",
		r->user_mode_only ? "true" : "false", r->faults);
	json_num(out, r->hmean, 1);
	fprintf(out, ", \"faults_per_sec_per_cpu\": ");
	json_num(out, r->hmean / r->threads, 1);
	fprintf(out, ", \"spread\": {\"min\": ");
	json_num(out, r->min, 1);
	fprintf(out, ", \"max\": ");
	json_num(out, r->max, 1);
	fprintf(out, "}, \"latency_ns\": {\"p50\": %" PRIu64 ", \"p99\": %" PRIu64 "}",
		r->p50_ns, r->p99_ns);
	if (r->has_handler_lat)
		fprintf(out, ", \"handler_latency_ns\": {\"p50\": %" PRIu64 ", \"p99\": %" PRIu64 "}",
			r->handler_p50_ns, r->handler_p99_ns);
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
			"\"spread\": \"min and max faults_per_sec over iterations\", "
			"\"latency_ns\": \"per touch, seen by the faulting threads\", "
			"\"counters\": \"totals over all iterations\", "
			"\"ratio_native\": \"faults_per_sec / native's at the same threads\", "
			"\"ratio_naive\": \"faults_per_sec / naive's at the same threads\", "
			"\"ops_per_sec\": \"ops_name per second over the same wall time, Hmean\"}",
			o->size, o->iterations);
	fprintf(out, ", \"seed\": %" PRIu64, o->seed);
	if (faults)
		fprintf(out, ", \"params\": {\"duration_s\": %.3f, \"loops\": %" PRIu64
			", \"map_size\": %zu, \"churn_threads\": %u, \"churn_size\": %zu"
			", \"spf_vmas\": %u, \"spf_pages\": %u, \"file_size\": %zu"
			", \"touch_pages\": %u, \"immap_reorder\": \"%s\"}",
			(double)o->duration_ns / 1e9, o->loops, o->map_size, o->churn_threads,
			o->churn_size, o->spf_vmas, o->spf_pages, o->file_size, o->touch_pages,
			o->immap == BENCH_IMMAP_BOTH ? "both" : o->immap == BENCH_IMMAP_ON ? "on" : "off");
	fprintf(out, ", \"config\": {\"handlers\": %u, \"intake\": ", o->cfg.handlers);
	json_str(out, uspf_intake_name(o->cfg.intake));
	fprintf(out, ", \"fault_around\": %u, \"anon_vma_at_mmap\": %s}", o->cfg.fault_around,
		o->cfg.anon_vma_at_mmap ? "true" : "false");
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

int bench_report_print(const struct bench_report *rep, FILE *out)
{
	if (rep->opts->format == BENCH_JSON)
		print_json(rep, out);
	else
		print_table(rep, out);
	if (fflush(out) || ferror(out)) {
		fprintf(stderr, "uspf bench: writing the results: %s\n", strerror(errno));
		return -EIO;
	}
	return 0;
}
