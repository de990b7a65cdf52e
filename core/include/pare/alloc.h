/* Allocation through one door so tests can fail the Nth allocation.
 *
 * Every core allocation goes through these calls. pare_free accepts memory
 * from any of them (including pare_alloc_aligned) and NULL.
 * Thread-safety: the failure injection counter is global and meant for
 * single-threaded tests; the allocators themselves are thread-safe. */
#ifndef PARE_ALLOC_H
#define PARE_ALLOC_H

#include <stddef.h>

void *pare_alloc(size_t size);                 /* NULL on failure */
void *pare_calloc(size_t count, size_t size);  /* zeroed; NULL on failure or overflow */
void *pare_realloc(void *ptr, size_t size);    /* on failure ptr stays valid */
void *pare_alloc_aligned(size_t size);         /* 64-byte aligned, for tensors and arenas */
void pare_free(void *ptr);
char *pare_strdup(const char *s);              /* NULL in, NULL out */
char *pare_strndup(const char *s, size_t n);

/* Tests: make the nth allocation from now fail (1 = the next one); 0 turns
 * injection off. pare_alloc_count counts allocations since start. */
void pare_alloc_fail_at(long nth);
long pare_alloc_count(void);

#endif
