/*-------------------------------------------------------------------------
 *
 * arena.h
 *		Bump allocator for the pure cores (JSON DOM, filter parser, PATCH).
 *
 * The pure cores never call palloc or malloc directly: every allocation goes
 * through a ScimArena, which takes its chunks from a ScimAllocator.  In the
 * backend the allocator wraps palloc in a short-lived memory context; the
 * fuzzer and the benchmarks hand it malloc/free.  Destroying the arena
 * returns every chunk at once, so the cores never free individual nodes.
 *
 * src/arena.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SCIM_ARENA_H
#define SCIM_ARENA_H

#include <stddef.h>

typedef struct ScimAllocator
{
	/* returns NULL on failure (the backend wrapper throws instead) */
	void	   *(*alloc) (void *ctx, size_t size);
	void		(*release) (void *ctx, void *ptr);
	void	   *ctx;
} ScimAllocator;

typedef struct ScimArenaChunk ScimArenaChunk;

typedef struct ScimArena
{
	ScimAllocator allocator;
	ScimArenaChunk *chunks;		/* newest first */
	char	   *cur;			/* next free byte in the newest chunk */
	size_t		left;			/* bytes left in the newest chunk */
	size_t		total;			/* bytes requested from the allocator */
	size_t		limit;			/* 0 = unlimited; else alloc fails past it */
	int			failed;			/* set once an allocation has failed */
} ScimArena;

/* A ready-made allocator over malloc/free, for fuzzers, benchmarks, tests. */
extern const ScimAllocator scim_malloc_allocator;

extern void scim_arena_init(ScimArena *arena, const ScimAllocator *allocator);
extern void *scim_arena_alloc(ScimArena *arena, size_t size);	/* 8-aligned; NULL on failure */
extern void *scim_arena_alloc0(ScimArena *arena, size_t size);
extern char *scim_arena_strndup(ScimArena *arena, const char *s, size_t len);	/* NUL-terminated */
extern void scim_arena_reset(ScimArena *arena);	/* release every chunk */

/*
 * Inline fast path of scim_arena_alloc, for hot allocation sites: a bump
 * inside the current chunk when the request fits there, else the
 * out-of-line scim_arena_alloc.  Same contract (8-aligned as in arena.c,
 * NULL on failure).
 */
static inline void *
scim_arena_alloc_inline(ScimArena *arena, size_t size)
{
	if (size != 0 && size <= arena->left)
	{
		size_t		need = (size + 7) & ~(size_t) 7;

		if (need <= arena->left)
		{
			void	   *result = arena->cur;

			arena->cur += need;
			arena->left -= need;
			return result;
		}
	}
	return scim_arena_alloc(arena, size);
}

#endif							/* SCIM_ARENA_H */
