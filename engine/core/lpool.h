/*
** lpool.h: size-class pools for the small blocks of one Lua state.
**
** Lua's allocator is told each block's size when the block is freed or
** resized, so pool blocks carry no header: a block of at most
** PW_LPOOL_MAX bytes comes from a 64 KiB slab of its size class (8-byte
** classes to 128 bytes, 16-byte classes to 512), the slabs from one
** region reserved per pool (committed a MiB at a time); larger blocks,
** and small ones once the region is full, come from malloc. Slabs whose
** blocks are all free go back to the kernel (madvise) once more than a
** few are empty; pw_lpool_free unmaps the region, after lua_close has
** given every block back. The caller does the accounting (memory caps).
** One pool per lua_State, used from one thread.
*/
#ifndef PW_LPOOL_H
#define PW_LPOOL_H

#include <stddef.h>

#define PW_LPOOL_MAX 512

typedef struct pw_lpool pw_lpool;

/* A pool whose region holds up to `reserve` bytes of slabs; NULL when the
** address space cannot be reserved (the caller then uses malloc). */
pw_lpool *pw_lpool_new(size_t reserve);
void pw_lpool_free(pw_lpool *p);

/* realloc with the old size known (osize is ignored when ptr is NULL);
** nsize > 0. NULL when out of memory, ptr then untouched. */
void *pw_lpool_realloc(pw_lpool *p, void *ptr, size_t osize, size_t nsize);

/* free a block of osize bytes (NULL: nothing). */
void pw_lpool_release(pw_lpool *p, void *ptr, size_t osize);

#endif
