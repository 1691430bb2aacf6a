/*-------------------------------------------------------------------------
 *
 * filter_bench.c
 *		Benchmark driver: parse a corpus of SCIM filters with the pure C core
 *		(scim_filter_parse) in a loop for a given time; print filters/s.
 *
 *	 filter_bench FILTERS_FILE SECONDS
 *
 * One filter per line.  Each parse uses a fresh arena (reset after every
 * filter), as a request would.  The arena takes its chunks from an
 * allocator that keeps the last released chunk for the next request, the
 * way a PostgreSQL memory context keeps its first block across resets (the
 * backend allocator is palloc in a short-lived context).  Prints one line "C core<TAB>filters/s<TAB>
 * failed", where failed counts corpus lines the parser refused.
 *
 * bench/filter/filter_bench.c
 *
 *-------------------------------------------------------------------------
 */
#define _POSIX_C_SOURCE 200809L	/* clock_gettime, getline */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "filter.h"

/* malloc/free, but one released chunk is kept for the next allocation of its size */
typedef struct KeepOne
{
	void	   *kept;
	size_t		kept_size;
} KeepOne;

static KeepOne keep_one;

static void *
keep_alloc(void *ctx, size_t size)
{
	KeepOne    *k = ctx;
	size_t	   *block;

	if (k->kept != NULL && k->kept_size == size)
	{
		void	   *p = k->kept;

		k->kept = NULL;
		return p;
	}
	block = malloc(size + 16);
	if (block == NULL)
		return NULL;
	block[0] = size;
	return (char *) block + 16;
}

static void
keep_release(void *ctx, void *ptr)
{
	KeepOne    *k = ctx;
	size_t		size = *(size_t *) ((char *) ptr - 16);

	if (k->kept == NULL)
	{
		k->kept = ptr;
		k->kept_size = size;
	}
	else
		free((char *) ptr - 16);
}

static const ScimAllocator keep_allocator = {keep_alloc, keep_release, &keep_one};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	FILE	   *f;
	char	   *lines[4096];
	size_t		lens[4096];
	int			n = 0;
	char	   *line = NULL;
	size_t		cap = 0;
	ssize_t		len;
	double		seconds,
				start,
				elapsed;
	long long	parsed = 0;
	int			failed = 0;
	ScimArena	arena;
	ScimFilterError err;
	ScimFilterLimits limits = {SCIM_FILTER_DEFAULT_MAX_LENGTH, SCIM_FILTER_DEFAULT_MAX_DEPTH};

	if (argc != 3 || (f = fopen(argv[1], "r")) == NULL)
	{
		fprintf(stderr, "usage: filter_bench FILTERS_FILE SECONDS\n");
		return 2;
	}
	seconds = atof(argv[2]);
	while (n < 4096 && (len = getline(&line, &cap, f)) > 0)
	{
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0)
			continue;
		lines[n] = strdup(line);
		lens[n] = (size_t) len;
		n++;
	}
	fclose(f);
	free(line);

	scim_arena_init(&arena, &keep_allocator);
	for (int i = 0; i < n; i++)
	{
		if (scim_filter_parse(&arena, lines[i], lens[i], &limits, &err) == NULL)
		{
			fprintf(stderr, "C core refuses: %s (%s)\n", lines[i], err.message);
			failed++;
		}
		scim_arena_reset(&arena);
	}

	start = now();
	do
	{
		for (int r = 0; r < 100; r++)
			for (int i = 0; i < n; i++)
			{
				if (scim_filter_parse(&arena, lines[i], lens[i], &limits, &err) == NULL && failed == 0)
					abort();
				scim_arena_reset(&arena);
				parsed++;
			}
		elapsed = now() - start;
	} while (elapsed < seconds);

	printf("C core\t%.0f\t%d\n", parsed / elapsed, failed);
	for (int i = 0; i < n; i++)
		free(lines[i]);
	return 0;
}
