/* kmem.h — the Linux kernel's memory pools in user space.
 *
 * Names and argument order follow Linux; where the kernel returns a
 * `struct page *`, kmem returns the address. Every function is thread-safe.
 * Nothing here crashes on bad input: where the kernel would BUG(), kmem reports
 * on stderr (the cache/pool name, the address, what was wrong) and returns
 * without changing state.
 *
 * Link with -lkmem (target/release/libkmem.so).
 */
#ifndef KMEM_H
#define KMEM_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef unsigned int gfp_t;
typedef unsigned int slab_flags_t;
typedef unsigned long long phys_addr_t;
typedef phys_addr_t dma_addr_t;

/* gfp_t bits: Linux's values. */
#define __GFP_HIGH           0x20u
#define __GFP_IO             0x40u
#define __GFP_FS             0x80u
#define __GFP_ZERO           0x100u
#define __GFP_DIRECT_RECLAIM 0x400u
#define __GFP_KSWAPD_RECLAIM 0x800u
#define __GFP_NOWARN         0x2000u
#define __GFP_RETRY_MAYFAIL  0x4000u
#define __GFP_NOFAIL         0x8000u
#define __GFP_NORETRY        0x10000u
#define GFP_KERNEL (__GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM | __GFP_IO | __GFP_FS) /* may wait */
#define GFP_ATOMIC (__GFP_HIGH | __GFP_KSWAPD_RECLAIM)                                /* never waits */
#define GFP_NOWAIT (__GFP_KSWAPD_RECLAIM)                                             /* never waits */

/* ---- pages: the buddy allocator (PAGE_SIZE 4096, MAX_PAGE_ORDER 10) ---- */
#define PAGE_SHIFT 12
#define PAGE_SIZE  (1UL << PAGE_SHIFT)
#define MAX_PAGE_ORDER 10

/* 2^order pages aligned to their size; 0 on failure or order > MAX_PAGE_ORDER. */
unsigned long __get_free_pages(gfp_t gfp, unsigned int order);
unsigned long get_zeroed_page(gfp_t gfp);
/* addr 0 is a no-op; an address kmem never handed out, a wrong order or a
 * double free is reported on stderr and changes nothing. */
void free_pages(unsigned long addr, unsigned int order);
void free_page(unsigned long addr);

/* ---- slab: kmem_cache (Linux's SLAB: per-thread array caches, a shared array,
 *      partial/full/free slab lists, colouring, constructors, reaping) ---- */
struct kmem_cache;

/* slab_flags_t bits: Linux's values. SLAB_POISON, SLAB_RED_ZONE and
 * SLAB_STORE_USER are accepted and recorded but do not change behaviour yet
 * (the debug checks are a later layer); double, foreign, interior and
 * wrong-cache frees are always caught. */
#define SLAB_RED_ZONE      0x00000400u
#define SLAB_POISON        0x00000800u
#define SLAB_HWCACHE_ALIGN 0x00002000u
#define SLAB_STORE_USER    0x00010000u
#define SLAB_PANIC         0x00040000u /* abort if the cache cannot be created */

/* A cache of `size`-byte objects aligned to `align` (0: word; a power of two
 * up to PAGE_SIZE). `ctor` runs once on every object when its slab is created,
 * never on reuse: give objects back in constructed state. NULL on failure. */
struct kmem_cache *kmem_cache_create(const char *name, unsigned int size,
        unsigned int align, slab_flags_t flags, void (*ctor)(void *));
void *kmem_cache_alloc(struct kmem_cache *s, gfp_t gfp);    /* NULL on failure */
void *kmem_cache_zalloc(struct kmem_cache *s, gfp_t gfp);
/* NULL: no-op. A pointer the cache did not hand out (foreign, interior,
 * another cache's, already freed) is reported on stderr and ignored. */
void  kmem_cache_free(struct kmem_cache *s, void *obj);
int   kmem_cache_alloc_bulk(struct kmem_cache *s, gfp_t gfp, size_t nr, void **p); /* nr or 0 */
void  kmem_cache_free_bulk(struct kmem_cache *s, size_t nr, void **p);
/* Releases every free slab: 0 if no slab is left, 1 if some are in use. */
int   kmem_cache_shrink(struct kmem_cache *s);
/* Drains every thread's array cache for `s` first. Live objects: reported (name
 * and count), the cache is kept and stays usable. A pointer that is not a live
 * cache (destroyed twice) is reported and ignored. As in Linux, no other thread
 * may use the cache while it is being destroyed. */
void  kmem_cache_destroy(struct kmem_cache *s);
unsigned int kmem_cache_size(struct kmem_cache *s);     /* the size asked for */

/* ---- introspection: same layouts as /proc/slabinfo 2.1 and /proc/buddyinfo ---- */
/* Each returns 0, or -errno if writing to fd failed. */
int kmem_buddyinfo_write(int fd);
/* /proc/slabinfo version 2.1, one row per cache, newest first. */
int kmem_slabinfo_write(int fd);

#ifdef __cplusplus
}
#endif

#endif /* KMEM_H */
