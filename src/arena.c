/*-------------------------------------------------------------------------
 *
 * arena.c
 *		Chunked bump allocator behind the pure cores (see arena.h).
 *
 * Memory comes from the arena's ScimAllocator in chunks that grow
 * geometrically; a request larger than a quarter of the next chunk gets a
 * chunk of its own, linked behind the current one so that the free tail of
 * the current chunk is not wasted.  An optional byte limit caps what the
 * arena may ask from its allocator: past it, scim_arena_alloc returns NULL
 * and sets the failed flag, exactly as when the allocator itself fails.
 *
 * No backend headers here: the fuzzer and the unit tests link this file
 * with scim_malloc_allocator.
 *
 * src/arena.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

#define SCIM_ARENA_ALIGN		8
#define SCIM_ARENA_MIN_CHUNK	4096
#define SCIM_ARENA_MAX_CHUNK	(1024 * 1024)

/* Header in front of every chunk; padded so the payload stays aligned. */
struct ScimArenaChunk
{
	ScimArenaChunk *next;
	size_t		size;			/* payload bytes after the header */
};

#define CHUNK_HEADER_SIZE \
	((sizeof(ScimArenaChunk) + 15) & ~(size_t) 15)

static void *
malloc_alloc(void *ctx, size_t size)
{
	(void) ctx;
	return malloc(size);
}

static void
malloc_release(void *ctx, void *ptr)
{
	(void) ctx;
	free(ptr);
}

const ScimAllocator scim_malloc_allocator = {malloc_alloc, malloc_release, NULL};

void
scim_arena_init(ScimArena *arena, const ScimAllocator *allocator)
{
	arena->allocator = *allocator;
	arena->chunks = NULL;
	arena->cur = NULL;
	arena->left = 0;
	arena->total = 0;
	arena->limit = 0;
	arena->failed = 0;
}

/*
 * Ask the allocator for a chunk with room for payload bytes, honouring the
 * limit.  Returns NULL (and sets failed) when that is not possible.
 */
static ScimArenaChunk *
arena_new_chunk(ScimArena *arena, size_t payload)
{
	ScimArenaChunk *chunk;
	size_t		bytes;

	if (payload > SIZE_MAX - CHUNK_HEADER_SIZE)
	{
		arena->failed = 1;
		return NULL;
	}
	bytes = CHUNK_HEADER_SIZE + payload;
	if (arena->limit != 0 &&
		(bytes > arena->limit || arena->total > arena->limit - bytes))
	{
		arena->failed = 1;
		return NULL;
	}
	chunk = arena->allocator.alloc(arena->allocator.ctx, bytes);
	if (chunk == NULL)
	{
		arena->failed = 1;
		return NULL;
	}
	chunk->size = payload;
	chunk->next = NULL;
	arena->total += bytes;
	return chunk;
}

void *
scim_arena_alloc(ScimArena *arena, size_t size)
{
	size_t		need;
	size_t		next_size;
	ScimArenaChunk *chunk;
	void	   *result;

	if (size == 0)
		size = 1;
	if (size > SIZE_MAX - SCIM_ARENA_ALIGN)
	{
		arena->failed = 1;
		return NULL;
	}
	need = (size + SCIM_ARENA_ALIGN - 1) & ~(size_t) (SCIM_ARENA_ALIGN - 1);

	/* fast path: bump inside the current chunk */
	if (need <= arena->left)
	{
		result = arena->cur;
		arena->cur += need;
		arena->left -= need;
		return result;
	}

	/* the next regular chunk doubles the newest one, within bounds */
	next_size = SCIM_ARENA_MIN_CHUNK;
	if (arena->chunks != NULL)
	{
		next_size = arena->chunks->size * 2;
		if (next_size > SCIM_ARENA_MAX_CHUNK)
			next_size = SCIM_ARENA_MAX_CHUNK;
	}

	if (need > next_size / 4)
	{
		/* large request: a dedicated chunk, linked behind the current one */
		chunk = arena_new_chunk(arena, need);
		if (chunk == NULL)
			return NULL;
		if (arena->chunks == NULL)
		{
			/* first chunk: it becomes current, with nothing left over */
			arena->chunks = chunk;
			arena->cur = (char *) chunk + CHUNK_HEADER_SIZE + need;
			arena->left = 0;
		}
		else
		{
			chunk->next = arena->chunks->next;
			arena->chunks->next = chunk;
		}
		return (char *) chunk + CHUNK_HEADER_SIZE;
	}

	chunk = arena_new_chunk(arena, next_size);
	if (chunk == NULL)
		return NULL;
	chunk->next = arena->chunks;
	arena->chunks = chunk;
	result = (char *) chunk + CHUNK_HEADER_SIZE;
	arena->cur = (char *) result + need;
	arena->left = next_size - need;
	return result;
}

void *
scim_arena_alloc0(ScimArena *arena, size_t size)
{
	void	   *result = scim_arena_alloc(arena, size);

	if (result != NULL)
		memset(result, 0, size);
	return result;
}

char *
scim_arena_strndup(ScimArena *arena, const char *s, size_t len)
{
	char	   *result;

	if (len == SIZE_MAX)
	{
		arena->failed = 1;
		return NULL;
	}
	result = scim_arena_alloc(arena, len + 1);
	if (result == NULL)
		return NULL;
	if (len > 0)
		memcpy(result, s, len);
	result[len] = '\0';
	return result;
}

void
scim_arena_reset(ScimArena *arena)
{
	ScimArenaChunk *chunk = arena->chunks;

	while (chunk != NULL)
	{
		ScimArenaChunk *next = chunk->next;

		arena->allocator.release(arena->allocator.ctx, chunk);
		chunk = next;
	}
	arena->chunks = NULL;
	arena->cur = NULL;
	arena->left = 0;
	arena->total = 0;
	arena->failed = 0;
}
