/*-------------------------------------------------------------------------
 *
 * filter_bench.c
 *		Benchmark driver: parse a corpus of SCIM filters with the pure C core
 *		(scim_filter_parse), each to a full AST; print filters/s.
 *
 *	 filter_bench FILTERS_FILE SECONDS		timed run
 *	 filter_bench FILTERS_FILE 0 ROUNDS		exactly ROUNDS passes over the corpus,
 *											for callgrind (no timing)
 *
 * One filter per line.  Each parse uses a fresh arena (reset after every
 * filter), as a request would.  The arena takes its chunks from an
 * allocator that keeps the last released chunk for the next request, the
 * way a PostgreSQL memory context keeps its first block across resets (the
 * backend allocator is palloc in a short-lived context).  Every parse and
 * its reset go through parse_one(), so that callgrind can count exactly
 * them (--toggle-collect=parse_one).
 *
 * A timed run measures batches of BATCH_ROUNDS passes over the corpus for
 * SECONDS and prints one line "C core<TAB>best<TAB>failed<TAB>mean": best
 * is the rate of the fastest batch (the least disturbed by other work on
 * the machine; peers_bench.mjs measures its parsers the same way), mean
 * the rate over the whole run, failed the corpus lines the parser refused.
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

#define BATCH_ROUNDS 20

#if defined(__GNUC__)
#define BENCH_NOINLINE __attribute__((noinline))
#else
#define BENCH_NOINLINE
#endif

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

/* One request: parse a filter to its AST, then release the arena. */
static int	parse_one(ScimArena *arena, const char *text, size_t len,
					  const ScimFilterLimits *limits, ScimFilterError *err) BENCH_NOINLINE;

static int
parse_one(ScimArena *arena, const char *text, size_t len,
		  const ScimFilterLimits *limits, ScimFilterError *err)
{
	int			ok = scim_filter_parse(arena, text, len, limits, err) != NULL;

	scim_arena_reset(arena);
	return ok;
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
	double		seconds;
	long		rounds = 0;
	int			failed = 0;
	ScimArena	arena;
	ScimFilterError err;
	ScimFilterLimits limits = {SCIM_FILTER_DEFAULT_MAX_LENGTH, SCIM_FILTER_DEFAULT_MAX_DEPTH};

	if ((argc != 3 && argc != 4) || (f = fopen(argv[1], "r")) == NULL)
	{
		fprintf(stderr, "usage: filter_bench FILTERS_FILE SECONDS | filter_bench FILTERS_FILE 0 ROUNDS\n");
		return 2;
	}
	seconds = atof(argv[2]);
	if (argc == 4)
		rounds = atol(argv[3]);
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
		if (!parse_one(&arena, lines[i], lens[i], &limits, &err))
		{
			fprintf(stderr, "C core refuses: %s (%s)\n", lines[i], err.message);
			failed++;
		}
	}

	if (rounds > 0)
	{
		/* fixed work, for instruction counts */
		long long	parsed = 0;

		for (long r = 0; r < rounds; r++)
			for (int i = 0; i < n; i++)
			{
				if (!parse_one(&arena, lines[i], lens[i], &limits, &err) && failed == 0)
					abort();
				parsed++;
			}
		printf("C core\tparsed %lld filters\t%d\n", parsed, failed);
	}
	else
	{
		double		start = now();
		double		best = 0;
		double		elapsed;
		long long	parsed = 0;

		do
		{
			double		t0 = now();
			double		t;

			for (int r = 0; r < BATCH_ROUNDS; r++)
				for (int i = 0; i < n; i++)
				{
					if (!parse_one(&arena, lines[i], lens[i], &limits, &err) && failed == 0)
						abort();
				}
			t = now() - t0;
			parsed += (long long) BATCH_ROUNDS * n;
			if (best == 0 || t < best)
				best = t;
			elapsed = now() - start;
		} while (elapsed < seconds);
		printf("C core\t%.0f\t%d\t%.0f\n", (double) BATCH_ROUNDS * n / best, failed,
			   parsed / elapsed);
	}
	for (int i = 0; i < n; i++)
		free(lines[i]);
	return 0;
}
