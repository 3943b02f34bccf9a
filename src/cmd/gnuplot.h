/* SPDX-License-Identifier: MIT */
/*
 * cmd/gnuplot.h - drawing with gnuplot into an SVG or a PNG (cmd/gnuplot.c):
 * what `uspf bench --plot` and `uspf compare --plot` share.
 */
#ifndef USPF_CMD_GNUPLOT_H
#define USPF_CMD_GNUPLOT_H

#include <stdbool.h>
#include <stdio.h>

#define GNUPLOT_PACKAGE	"gnuplot-nox"

/*
 * Before the work: a path that does not end in .svg or .png, a directory
 * that cannot be written or no gnuplot in PATH is one line on stderr
 * ("uspf CMD: --plot ...") and 2; -1 when all is well.
 */
int gnuplot_check(const char *cmd, const char *path);

/* Writes the script: terminal, `set output` to `output`, data and plots. */
typedef int (*gnuplot_script_fn)(FILE *f, bool svg, const char *output, const void *arg);

/*
 * Draw into path: script() writes to a temporary file next to it, renamed
 * over path once gnuplot succeeded.  -ENODATA from script() is reported as
 * `nodata`.  0, or a negative errno (reported).
 */
int gnuplot_draw(const char *cmd, const char *path, gnuplot_script_fn script, const void *arg,
		 const char *nodata);

/* A gnuplot single-quoted string. */
void gnuplot_str(FILE *f, const char *s);
/* `set terminal` for an SVG, or a PNG (pngcairo where gnuplot has it). */
void gnuplot_terminal(FILE *f, bool svg, unsigned int width, unsigned int height);

#endif
