/* SPDX-License-Identifier: MIT */
/*
 * mm/kmem.h - the runtime's own memory, never through malloc.
 *
 * Under `uspf run` malloc itself may be served by uspf-registered memory:
 * a handler thread that touched it would wait for itself.  So everything
 * the runtime allocates comes from anonymous memory mapped with the raw
 * mmap syscall (never an interposed wrapper) and never registered.
 *
 * kmem_cache follows the kernel's slab API: fixed-size objects, a free list
 * per cache, slabs never returned until the cache is destroyed.
 * All functions are thread-safe.
 */
#ifndef USPF_KMEM_H
#define USPF_KMEM_H

#include <stdbool.h>
#include <stddef.h>

/* Map len bytes (rounded up to pages) of zeroed private memory; NULL on failure. */
void *kmem_map(size_t len);
void kmem_unmap(void *p, size_t len);

struct kmem_cache;

struct kmem_cache *kmem_cache_create(const char *name, size_t size, size_t align);
void *kmem_cache_alloc(struct kmem_cache *c);	/* zeroed; NULL on failure */
void kmem_cache_free(struct kmem_cache *c, void *obj);
/* Objects allocated and not yet freed (for leak checks). */
size_t kmem_cache_in_use(struct kmem_cache *c);
void kmem_cache_destroy(struct kmem_cache *c);
/*
 * Debug: mprotect() every slab of the cache (PROT_READ to catch writes,
 * then PROT_READ | PROT_WRITE).  No allocation or free may run meanwhile.
 */
int kmem_cache_protect(struct kmem_cache *c, int prot);
/*
 * Make fork() wait for every kmem lock, so the child finds them free.
 * Idempotent.  Prepare handlers run in reverse order of registration and
 * these must run last (after anything that may allocate or free while
 * preparing, such as liburcu's call_rcu pause): register them first.
 */
void kmem_atfork_register(void);

/*
 * True on the runtime's own threads (handlers, the call_rcu worker), for
 * their whole life: under `uspf run` whatever they allocate must not come
 * from uspf memory.
 */
extern __thread bool uspf_runtime_thread __attribute__((tls_model("initial-exec")));

#endif
