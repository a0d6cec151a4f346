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

/* slab_flags_t bits: Linux's values. Double, foreign, interior and
 * wrong-cache frees are always caught. The debug flags (Linux's slab_debug
 * letters F, Z, P, U) turn on checks for the cache; KMEM_DEBUG=FZPU[,cache,...]
 * in the environment does it for every (or the named) cache, KMEM_LEAKS=1
 * turns on U everywhere. A debug cache takes the slow path on every call;
 * a violation is reported on stderr ("kmem: BUG <cache>: ...", the object,
 * a hex dump, the allocating and freeing call sites as return addresses),
 * repaired, and the program keeps running. */
#define SLAB_CONSISTENCY_CHECKS 0x00000100u /* F: state vs freelist checks */
#define SLAB_RED_ZONE      0x00000400u /* Z: 0xbb/0xcc guard bytes around objects */
#define SLAB_POISON        0x00000800u /* P: free objects hold 0x6b..0xa5 (not with a ctor) */
#define SLAB_POISON        0x00000800u
#define SLAB_HWCACHE_ALIGN 0x00002000u
#define SLAB_STORE_USER    0x00010000u /* U: record alloc/free sites (for leak reports) */
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
/* Checks every object of a debug cache (red zones, poison) and the slab
 * lists; reports and repairs each corruption. Returns how many were found,
 * -EINVAL (reported) if `s` is not a cache. */
int kmem_cache_validate(struct kmem_cache *s);
/* Reports every object still allocated in any cache on stderr, grouped by
 * allocation site with counts and bytes (sites need SLAB_STORE_USER /
 * KMEM_DEBUG=U / KMEM_LEAKS=1). Returns the number of objects. */
size_t kmem_leak_report(void);
/* ---- genalloc: a bitmap allocator over address ranges you supply ----
 * The pool never reads or writes the memory it manages (it may be device
 * memory, SRAM, file offsets, or unmapped). Allocation and free are
 * lock-free; kmem's own algorithms search through a summary of each bitmap,
 * so their cost stays nearly flat from 1 MiB to 1 TiB chunks.
 * Bad input (NULL pool, size 0, a free outside any chunk, unaligned, not
 * allocated or running past its chunk, overlapping chunks, destroying a pool
 * with live allocations) is reported on stderr and changes nothing. */
struct gen_pool;
struct gen_pool_chunk;  /* opaque: read it with gen_pool_chunk_*() */
typedef unsigned long (*genpool_algo_t)(unsigned long *map, unsigned long size,
        unsigned long start, unsigned int nr, void *data, struct gen_pool *pool,
        unsigned long start_addr);
struct genpool_data_align { int align; };            /* for gen_pool_first_fit_align */
struct genpool_data_fixed { unsigned long offset; }; /* for gen_pool_fixed_alloc */

/* min_alloc_order: log2 of the granule (0..62); NULL if out of range. */
struct gen_pool *gen_pool_create(int min_alloc_order, int nid);
/* 0, -EINVAL (bad or overlapping range, reported) or -ENOMEM. */
int  gen_pool_add_virt(struct gen_pool *pool, unsigned long addr, phys_addr_t phys,
        size_t size, int nid);
int  gen_pool_add(struct gen_pool *pool, unsigned long addr, size_t size, int nid);
unsigned long gen_pool_alloc(struct gen_pool *pool, size_t size);   /* 0 on failure */
unsigned long gen_pool_alloc_algo(struct gen_pool *pool, size_t size,
        genpool_algo_t algo, void *data);
void gen_pool_free(struct gen_pool *pool, unsigned long addr, size_t size);
phys_addr_t gen_pool_virt_to_phys(struct gen_pool *pool, unsigned long addr); /* -1 if none */
size_t gen_pool_avail(struct gen_pool *pool);
size_t gen_pool_size(struct gen_pool *pool);
void gen_pool_set_algo(struct gen_pool *pool, genpool_algo_t algo, void *data); /* NULL: first fit */
void *gen_pool_dma_alloc(struct gen_pool *pool, size_t size, dma_addr_t *dma);
void *gen_pool_dma_alloc_algo(struct gen_pool *pool, size_t size, dma_addr_t *dma,
        genpool_algo_t algo, void *data);
void *gen_pool_dma_alloc_align(struct gen_pool *pool, size_t size, dma_addr_t *dma, int align);
bool gen_pool_has_addr(struct gen_pool *pool, unsigned long start, size_t size);
void gen_pool_for_each_chunk(struct gen_pool *pool,
        void (*func)(struct gen_pool *pool, struct gen_pool_chunk *chunk, void *data),
        void *data);
void gen_pool_destroy(struct gen_pool *pool);   /* live allocations: report, keep pool */
/* Extras: the granule order, and what a chunk covers (for for_each_chunk callbacks). */
int gen_pool_min_alloc_order(struct gen_pool *pool);
unsigned long gen_pool_chunk_start(struct gen_pool_chunk *chunk);
unsigned long gen_pool_chunk_end(struct gen_pool_chunk *chunk);    /* last byte */
phys_addr_t gen_pool_chunk_phys(struct gen_pool_chunk *chunk);
size_t gen_pool_chunk_avail(struct gen_pool_chunk *chunk);
/* The algorithms (genpool_algo_t); each returns a value >= size when nothing fits.
 * first_fit_align aligns the address (the granule index), not only the bit. */
unsigned long gen_pool_first_fit(unsigned long *map, unsigned long size, unsigned long start,
        unsigned int nr, void *data, struct gen_pool *pool, unsigned long start_addr);
unsigned long gen_pool_first_fit_align(unsigned long *map, unsigned long size, unsigned long start,
        unsigned int nr, void *data, struct gen_pool *pool, unsigned long start_addr);
unsigned long gen_pool_first_fit_order_align(unsigned long *map, unsigned long size,
        unsigned long start, unsigned int nr, void *data, struct gen_pool *pool,
        unsigned long start_addr);
unsigned long gen_pool_best_fit(unsigned long *map, unsigned long size, unsigned long start,
        unsigned int nr, void *data, struct gen_pool *pool, unsigned long start_addr);
unsigned long gen_pool_fixed_alloc(unsigned long *map, unsigned long size, unsigned long start,
        unsigned int nr, void *data, struct gen_pool *pool, unsigned long start_addr);
unsigned long gen_pool_worst_fit(unsigned long *map, unsigned long size, unsigned long start,
        unsigned int nr, void *data, struct gen_pool *pool, unsigned long start_addr);
/* ---- kmalloc: size classes kmalloc-8 16 32 64 96 128 192 256 512 1k 2k 4k 8k
 *      (slab caches); larger requests from the page layer by order, above
 *      4 MiB a mapping of their own ---- */
/* kmalloc(0) returns ZERO_SIZE_PTR: not NULL, never dereferenceable; kfree
 * and ksize accept it. Power-of-two sizes are aligned to their size. */
#define ZERO_SIZE_PTR ((void *)16)
#define ZERO_OR_NULL_PTR(x) ((unsigned long)(x) <= (unsigned long)ZERO_SIZE_PTR)
#define KMALLOC_MAX_CACHE_SIZE 8192
void *kmalloc(size_t size, gfp_t gfp);               /* size 0 -> ZERO_SIZE_PTR */
void *kzalloc(size_t size, gfp_t gfp);
void *kcalloc(size_t n, size_t size, gfp_t gfp);     /* overflow -> NULL */
void *kmalloc_array(size_t n, size_t size, gfp_t gfp); /* overflow -> NULL */
/* In place when new_size fits ksize(p); else allocates, copies, frees. NULL
 * on failure (p kept); new_size 0 frees p and gives ZERO_SIZE_PTR. */
void *krealloc(const void *p, size_t new_size, gfp_t gfp);
/* NULL, ZERO_SIZE_PTR: no-op. A pointer kmalloc never handed out, an
 * interior pointer or a double free: reported on stderr, refused. */
void  kfree(const void *p);
void  kfree_sensitive(const void *p);                /* zeroes ksize(p) bytes, then frees */
size_t ksize(const void *p);                         /* usable size; 0 for NULL/bad (reported) */
char *kstrdup(const char *s, gfp_t gfp);             /* NULL s -> NULL */
void *kmemdup(const void *src, size_t len, gfp_t gfp);

/* ---- mempool: a reserve of min_nr elements for paths that must not fail ---- */
/* Allocation asks the backend first (without waiting), then takes from the
 * reserve, then asks the backend with the caller's full flags; GFP_KERNEL
 * then waits for a mempool_free and never returns NULL; GFP_ATOMIC and
 * GFP_NOWAIT return NULL. __GFP_ZERO is refused (reported, NULL). A free
 * refills the reserve if it is below min_nr (waking waiters), else goes to
 * the backend. The kmalloc stock pool comes with the kmalloc layer. */
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
/* kmalloc objects of `size` bytes (size 0: reported, NULL); the stock pair
 * takes pool_data = (void *)size. */
mempool_t *mempool_create_kmalloc_pool(int min_nr, size_t size);
void *mempool_kmalloc(gfp_t gfp_mask, void *pool_data);
void  mempool_kfree(void *element, void *pool_data);
/* Objects of a slab cache; a pointer that is not a kmem_cache: reported, NULL. */
mempool_t *mempool_create_slab_pool(int min_nr, struct kmem_cache *cache);
/* The stock slab pair, pool_data = the struct kmem_cache *. */
void *mempool_alloc_slab(gfp_t gfp_mask, void *pool_data);
void  mempool_free_slab(void *element, void *pool_data);

/* ---- region pool: the seed's user-space memory pool (nginx's design) ----
 *
 * Small allocations (up to max = min(size, MP_PAGE_SIZE - 1) bytes) are bumped
 * from blocks of the pool's size (size plus headers, rounded up to a power of
 * two of pages). The search starts at the pool's `current` block; a block
 * passed over when a new block is added counts a failure, and the search
 * starts past a block that had already failed more than 4 times. Larger
 * allocations get their own pages and are listed; mp_free gives one back
 * early, and its list entry is reused. All memory comes from kmem's page
 * layer. Every function takes the pool's lock: a pool may be shared between
 * threads.
 *
 * Bad input never crashes: a NULL pool, size 0, a size too large, an alignment
 * that is not a power of two, or mp_free of a pointer that is not this pool's
 * gets NULL / -1 and a report on stderr naming the pool and the address.
 */
#define MP_ALIGNMENT 16
#define MP_PAGE_SIZE 4096
#define MP_MAX_ALLOC_FROM_POOL (MP_PAGE_SIZE - 1)

typedef struct mp_pool_s mp_pool_t;
typedef void (*mp_cleanup_pt)(void *data);
typedef struct mp_cleanup_s { mp_cleanup_pt handler; void *data; struct mp_cleanup_s *next; } mp_cleanup_t;

/* What each field counts (sizes are the sizes asked for; padding and the
 * pool's bookkeeping, including cleanup records and their data, are not):
 *   total_allocated   bytes of every successful allocation since creation
 *                     (never decreases, survives resets)
 *   current_allocated bytes still live: small ones since the last reset plus
 *                     large ones not freed by mp_free
 *   peak_allocated    the highest current_allocated has been (exact)
 *   allocation_count  successful allocations (mp_alloc/nalloc/calloc/memalign)
 *   free_count        allocations given back: each mp_free that returned 0,
 *                     and at each reset every allocation then live, so
 *                     allocation_count - free_count = live allocations
 *   failed_count      allocation calls that returned NULL (size 0, too large,
 *                     bad alignment, out of memory) */
struct mp_pool_stats { size_t total_allocated, current_allocated, peak_allocated, allocation_count, free_count, failed_count; };

/* A pool whose blocks hold at least `size` bytes; NULL (reported) for 0, more
 * than 2 GiB, or no memory. */
mp_pool_t *mp_create_pool(size_t size);
/* Runs the cleanup handlers (newest first), then frees everything. */
void mp_destroy_pool(mp_pool_t *pool);
/* Frees the large allocations and rewinds the blocks; cleanups stay. */
void mp_reset_pool(mp_pool_t *pool);
void *mp_alloc(mp_pool_t *pool, size_t size);                      /* MP_ALIGNMENT-aligned */
void *mp_nalloc(mp_pool_t *pool, size_t size);                     /* unaligned */
void *mp_calloc(mp_pool_t *pool, size_t size);                     /* aligned, zeroed */
void *mp_memalign(mp_pool_t *pool, size_t size, size_t alignment); /* any power of two */
/* 0: a large allocation was freed; -1: declined (NULL and small allocations
 * quietly: they go at reset; anything not this pool's with a report). */
int mp_free(mp_pool_t *pool, void *p);
/* A record with data_size bytes of 16-aligned data (data NULL if 0); set its
 * handler. It outlives resets; handlers run at destroy, newest first. */
mp_cleanup_t *mp_cleanup_add(mp_pool_t *pool, size_t data_size);
/* Fills *out (zeroes it for a NULL pool). */
void mp_pool_stats(mp_pool_t *pool, struct mp_pool_stats *out);

/* ---- introspection: same layouts as /proc/slabinfo 2.1 and /proc/buddyinfo ---- */
/* Each returns 0, or -errno if writing to fd failed. */
int kmem_buddyinfo_write(int fd);
/* /proc/slabinfo version 2.1, one row per cache, newest first. */
int kmem_slabinfo_write(int fd);
/* Page counters, kmalloc's classes and large path, the mp_pool_stats of
   pages and kmalloc, then slabinfo with the statistics columns
   (": globalstat ... : cpustat <allochit> <allocmiss> <freehit> <freemiss>"). */
int kmem_stats_print(int fd);

#ifdef __cplusplus
}
#endif

#endif /* KMEM_H */
