/*-------------------------------------------------------------------------
 *
 * patch_bench.c
 *		Throughput of the pure PATCH engine on the workloads of a JSON file.
 *
 * For each workload: the resource and the operations are parsed once, then
 * scim_patch_apply runs in a loop (a fresh arena per request, as the SQL
 * wrapper does) for the given number of seconds.  Prints one line per
 * workload: name<TAB>requests per second.  A workload whose patch fails is
 * reported on stderr and exits non-zero: a benchmark of errors is no
 * benchmark.
 *
 *   bench/patch/patch_bench workloads.json seconds
 *
 * bench/patch/patch_bench.c
 *
 *-------------------------------------------------------------------------
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "json.h"
#include "patch.h"

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *
read_file(const char *path, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	char	   *buf;
	long		n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
		fseek(f, 0, SEEK_SET) != 0)
	{
		perror(path);
		exit(2);
	}
	buf = malloc(n + 1);
	if (buf == NULL || fread(buf, 1, n, f) != (size_t) n)
	{
		perror(path);
		exit(2);
	}
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

int
main(int argc, char **argv)
{
	ScimArena	spec_arena;
	SjError		jerr;
	size_t		len;
	char	   *text;
	SjValue    *spec;
	SjValue    *resource;
	SjValue    *workloads;
	double		seconds;

	if (argc != 3)
	{
		fprintf(stderr, "usage: %s workloads.json seconds\n", argv[0]);
		return 2;
	}
	seconds = atof(argv[2]);
	text = read_file(argv[1], &len);
	scim_arena_init(&spec_arena, &scim_malloc_allocator);
	spec = sj_parse(&spec_arena, text, len, &jerr);
	if (spec == NULL)
	{
		fprintf(stderr, "%s: %s at byte %zu\n", argv[1], jerr.message, jerr.position);
		return 2;
	}
	resource = sj_object_get(spec, "resource", 8, false);
	workloads = sj_object_get(spec, "workloads", 9, false);
	if (resource == NULL || workloads == NULL || workloads->type != SJ_ARRAY)
	{
		fprintf(stderr, "%s: needs \"resource\" and a \"workloads\" array\n", argv[1]);
		return 2;
	}

	for (size_t w = 0; w < workloads->u.arr.count; w++)
	{
		const SjValue *wl = workloads->u.arr.items[w];
		const SjValue *name = sj_object_get(wl, "name", 4, false);
		const SjValue *ops = sj_object_get(wl, "operations", 10, false);
		long		n = 0;
		double		start;
		double		elapsed;

		start = now();
		do
		{
			for (int i = 0; i < 1000; i++)
			{
				ScimArena	a;
				ScimPatchError err;

				scim_arena_init(&a, &scim_malloc_allocator);
				if (scim_patch_apply(&a, resource, ops, "User", NULL, &err) == NULL)
				{
					fprintf(stderr, "workload \"%s\" fails: %s\n",
							name ? name->u.str.ptr : "?", err.message);
					return 1;
				}
				scim_arena_reset(&a);
			}
			n += 1000;
			elapsed = now() - start;
		} while (elapsed < seconds);
		printf("%s\t%.0f\n", name ? name->u.str.ptr : "?", n / elapsed);
	}
	scim_arena_reset(&spec_arena);
	free(text);
	return 0;
}
