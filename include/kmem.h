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

/* ---- mempool: a reserve of min_nr elements for paths that must not fail ---- */
/* Allocation asks the backend first (without waiting), then takes from the
 * reserve, then asks the backend with the caller's full flags; GFP_KERNEL
 * then waits for a mempool_free and never returns NULL; GFP_ATOMIC and
 * GFP_NOWAIT return NULL. __GFP_ZERO is refused (reported, NULL). A free
 * refills the reserve if it is below min_nr (waking waiters), else goes to
 * the backend. Slab and kmalloc stock pools come with those layers. */
typedef void *(mempool_alloc_t)(gfp_t gfp_mask, void *pool_data);
typedef void (mempool_free_t)(void *element, void *pool_data);
typedef struct mempool_s mempool_t;

/* NULL if the reserve cannot be filled (what was got is freed again); a
 * negative min_nr or NULL function is reported and gives NULL. */
mempool_t *mempool_create(int min_nr, mempool_alloc_t *alloc_fn,
        mempool_free_t *free_fn, void *pool_data);
void *mempool_alloc(mempool_t *pool, gfp_t gfp);     /* GFP_KERNEL waits, never NULL */
/* element NULL: no-op. A bad pool, or more frees than allocations, is
 * reported and changes nothing. */
void  mempool_free(void *element, mempool_t *pool);
/* 0; -EINVAL for a bad pool or new_min_nr <= 0; -ENOMEM if the larger reserve
 * array cannot be had. Growing fills from the backend as far as it can. */
int   mempool_resize(mempool_t *pool, int new_min_nr);
/* NULL: no-op. Elements still allocated: reported, pool kept. */
void  mempool_destroy(mempool_t *pool);
/* Blocks of 2^order pages; order outside 0..MAX_PAGE_ORDER: reported, NULL. */
mempool_t *mempool_create_page_pool(int min_nr, int order);
/* The stock page pair (types mempool_alloc_t / mempool_free_t), pool_data =
 * (void *)(long)order; a wrong address or order is reported on free. */
void *mempool_alloc_pages(gfp_t gfp_mask, void *pool_data);
void  mempool_free_pages(void *element, void *pool_data);

/* ---- introspection: same layouts as /proc/slabinfo 2.1 and /proc/buddyinfo ---- */
/* Each returns 0, or -errno if writing to fd failed. */
int kmem_buddyinfo_write(int fd);

#ifdef __cplusplus
}
#endif

#endif /* KMEM_H */
