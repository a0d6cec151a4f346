//! Per-thread array caches: the user-space stand-in for SLAB's per-cpu
//! `array_cache`.
//!
//! Each thread that uses a cache gets one [`ArrayCache`] for it: a LIFO stack
//! of free objects (`avail` of at most `limit`). Allocation pops; when the
//! stack is empty the slow path refills `batchcount` objects from the shared
//! array or the slab lists (Linux `cache_alloc_refill`). Free pushes; when the
//! stack is full the slow path moves `batchcount` objects to the shared array
//! or back to their slabs (Linux `cache_flusharray`).
//!
//! ## Where per-thread state lives
//!
//! A thread's array caches hang off one [`ThreadCaches`] block (kmem's own
//! pages, never the system allocator), indexed by cache id. The block is
//! reachable through a `const`-initialised TLS slot holding a plain pointer
//! (no `Drop` type, so no lazy destructor registration that could allocate),
//! and a `pthread_key_create` destructor ([`ThreadKey`]) flushes the thread's
//! caches back and frees the block when the thread exits. After that the slot
//! holds [`DEAD`] and the thread allocates straight from the node lists.
//!
//! ## Seats
//!
//! The first [`SEATS`] threads to use kmem at the same time each hold a
//! *seat*, and a seated thread's array for a cache lives in that cache's
//! descriptor ([`CacheInner::seats`]), at the seat's offset: the user-space
//! analogue of the array of per-cpu pointers in Linux's `struct kmem_cache`,
//! indexed by seat instead of by CPU. The thread's slot points to it as to
//! any array (slow paths, remote threads and the exit destructor find it
//! there). The fast path reaches it without reading the slot: the seat's
//! offset is a second TLS word ([`seat_word`]), so the array's address is
//! the cache's address plus that word, and for seat 0 — the first thread,
//! usually `main` — plus a constant (the branch that picks seat 0 is the
//! same every time for a thread, so it is predicted). An address that does
//! not wait for a chain of loads lets the core resolve the fast path's loads
//! and stores at once: the alloc + free pair went from 11.6 cycles to 7.8
//! for seat 0 and 9.6 for the other seats (docs/BENCHMARKS.md). Threads
//! without a seat read their slot as before. A seat is taken when the thread
//! makes its `ThreadCaches` and given back by its exit destructor, after
//! every array of the thread was flushed and closed again; a seat's array
//! is closed (never built: all zero, `avail = 0` and bounds `0 / 0`; freed:
//! empty, bounds closed by [`FastBounds::close`]; neither fast path passes)
//! until its thread's first slow path for the cache builds it.
//!
//! ## The fast path and remote access
//!
//! The owner's fast path takes no lock and does no atomic read-modify-write:
//! it makes the array's hit counter for the operation odd (a
//! [`HitSeq`](crate::stats::HitSeq): `2 * hits + busy`, so marking and
//! counting are the same two stores), orders that store before its load of
//! the array's fast-path bound ([`FastBounds`]: `lo` for allocations, `hi`
//! for frees — the bounds it compares `avail` with anyway, so being frozen
//! costs the fast path no extra test) with a compiler fence, works on its
//! array, then makes the counter even again (one hit more, or the same count
//! if the operation went to the slow path). A remote
//! thread that must touch another thread's arrays (the reaper, `shrink`,
//! `destroy`) takes that thread's `lock`, closes the bounds of each of its
//! arrays (`lo = u32::MAX`, `hi = 0`: no `avail` passes either), runs
//! `membarrier(2)` (every running thread executes a full barrier: the
//! asymmetric half of Dekker's protocol), then waits until the hit counters
//! of every array of the thread are even. From
//! then on the owner's fast path fails its bound check and takes its slow
//! path, which blocks on `lock` until the remote side is done. Under Miri and loom, and
//! on systems other than Linux, the owner uses a real `SeqCst` fence instead
//! (the symmetric form of the protocol, which loom checks). On a Linux kernel
//! without `membarrier` (before 4.3, or blocked by seccomp) a thread's arrays
//! are frozen for good (their bounds never open): every operation takes the
//! slow path under the thread's own lock — slower, equally correct.

use core::cell::UnsafeCell;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU8, AtomicUsize, Ordering};

use crate::cache::CacheInner;
use crate::stats::HitSeq;
use crate::sync::{AtomicU32, fence};

/// An array cache: a header and `limit` entries (Linux `struct array_cache`).
#[repr(C)]
pub(crate) struct ArrayCache {
    /// Entries in use: `entry[0..avail]` are free objects, the newest last.
    /// Only the owner touches it (or a remote thread while the owner is frozen;
    /// for the shared array: under the node lock).
    pub(crate) avail: u32,
    /// Capacity. Fixed.
    pub(crate) limit: u32,
    /// The fast paths' bounds on `avail` (closed while a remote thread works
    /// on the array).
    pub(crate) bounds: FastBounds,
    /// Objects moved per refill / flush. Fixed.
    pub(crate) batchcount: u32,
    /// Set by an allocation in the slow path (a refill) and, for the shared
    /// array, by a transfer out of it; cleared by the reaper, which only takes
    /// objects from arrays not touched since its last pass. Allocations on the
    /// fast path do not write it: they are seen as `stat.allochit` moving
    /// past `reap_mark` (see [`is_touched`](Self::is_touched)).
    pub(crate) touched: u32,
    /// The cache this array belongs to. Fixed.
    pub(crate) cache: *const CacheInner,
    /// Memo of the last slab a free validated through the page descriptors:
    /// its first object (`s_mem`; 0: none — no object lies within
    /// `slab_bytes` of address 0, so nothing matches)…
    pub(crate) memo_s_mem: usize,
    /// …its state bytes…
    pub(crate) memo_state: *const AtomicU8,
    /// …and the cache's `slab_gen` then. While the generation is unchanged no
    /// slab of the cache was destroyed, so the block is still that slab.
    pub(crate) memo_gen: usize,
    /// `stat.allochit` when the reaper last cleared `touched`. Written under
    /// the owner's lock with the owner frozen (or by the owner in its slow path).
    pub(crate) reap_mark: u64,
    /// SLAB's `cpustat` of this array: written only by the owning thread
    /// (relaxed load + store), read by `stats` under the thread-list lock,
    /// folded into the node when the array is freed (see `stats`). The two
    /// hit counters are also the fast paths' busy marks (module docs); they
    /// come first, in the header's first 64 bytes with `avail`.
    pub(crate) stat: crate::stats::CpuStat,
}

/// One cached object: its address and its state byte (so the fast path can
/// mark it allocated without finding its slab).
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub(crate) struct Entry {
    pub(crate) obj: *mut u8,
    pub(crate) state: *const AtomicU8,
}

impl ArrayCache {
    /// Bytes of an array cache with `limit` entries.
    ///
    /// Whole cache lines: the arrays of different threads sit side by side
    /// in one pool, and a line shared between one thread's last entries and
    /// the next thread's header would bounce between their CPUs on every
    /// operation (false sharing: it doubled the time of a two-thread
    /// malloc workload once the header grew past 64 bytes).
    pub(crate) const fn bytes(limit: u32) -> usize {
        (core::mem::size_of::<ArrayCache>() + limit as usize * core::mem::size_of::<Entry>())
            .next_multiple_of(kmem_platform::CACHE_LINE)
    }

    /// Builds an empty array cache in `mem`.
    ///
    /// # Safety
    ///
    /// `mem` is valid for writes of `bytes(limit)`, 16-aligned, and ours.
    pub(crate) unsafe fn init(
        mem: *mut u8,
        limit: u32,
        batchcount: u32,
        cache: *const CacheInner,
    ) -> *mut ArrayCache {
        let a = mem.cast::<ArrayCache>();
        // SAFETY: per the contract.
        unsafe {
            a.write(ArrayCache {
                avail: 0,
                limit,
                bounds: FastBounds::new(limit),
                batchcount,
                touched: 0,
                cache,
                memo_s_mem: 0,
                memo_state: ptr::null(),
                memo_gen: 0,
                reap_mark: 0,
                stat: crate::stats::CpuStat::new(),
            })
        };
        a
    }

    /// Whether the array was touched since the reaper's last pass: an
    /// allocation (fast or slow path) or, for the shared array, a transfer.
    ///
    /// # Safety
    ///
    /// `this` is live and exclusively ours (the owner in its slow path, or a
    /// remote thread with the owner frozen, or the node lock for the shared array).
    pub(crate) unsafe fn is_touched(this: *const ArrayCache) -> bool {
        // SAFETY: per the contract.
        unsafe { (*this).touched != 0 || (*this).stat.allochit.get() != (*this).reap_mark }
    }

    /// Marks the array untouched (the reaper's pass).
    ///
    /// # Safety
    ///
    /// As for [`is_touched`](Self::is_touched).
    pub(crate) unsafe fn clear_touched(this: *mut ArrayCache) {
        // SAFETY: per the contract.
        unsafe {
            (*this).touched = 0;
            (*this).reap_mark = (*this).stat.allochit.get();
        }
    }

    /// Entry `i`.
    ///
    /// # Safety
    ///
    /// `this` is live and `i < limit`.
    #[inline(always)]
    pub(crate) unsafe fn entry(this: *mut ArrayCache, i: u32) -> *mut Entry {
        // SAFETY: entries follow the header; `i < limit`.
        unsafe { this.add(1).cast::<Entry>().add(i as usize) }
    }

    /// Moves up to `max` entries from the top of `from` to the top of `to`
    /// (Linux `transfer_objects`). Returns how many moved.
    ///
    /// # Safety
    ///
    /// Both are live, distinct, and exclusively ours.
    pub(crate) unsafe fn transfer(to: *mut ArrayCache, from: *mut ArrayCache, max: u32) -> u32 {
        // SAFETY: per the contract; counts stay within both arrays' limits.
        unsafe {
            let n = max.min((*from).avail).min((*to).limit - (*to).avail);
            if n == 0 {
                return 0;
            }
            ptr::copy_nonoverlapping(
                Self::entry(from, (*from).avail - n),
                Self::entry(to, (*to).avail),
                n as usize,
            );
            (*from).avail -= n;
            (*to).avail += n;
            n
        }
    }

    /// Removes the `n` oldest entries (the bottom of the stack), shifting the
    /// rest down, after the caller has moved them elsewhere.
    ///
    /// # Safety
    ///
    /// `this` is live and exclusively ours; `n <= avail`.
    pub(crate) unsafe fn drop_bottom(this: *mut ArrayCache, n: u32) {
        // SAFETY: per the contract.
        unsafe {
            let rest = (*this).avail - n;
            ptr::copy(Self::entry(this, n), Self::entry(this, 0), rest as usize);
            (*this).avail = rest;
        }
    }
}

/// Seats: threads whose array caches live in the caches' descriptors (see
/// the module docs). At most this many threads hold one at a time.
pub const SEATS: usize = 8;

/// Bytes of one seat's array in a descriptor: an array of the largest limit.
pub(crate) const SEAT_BYTES: usize = ArrayCache::bytes(AC_LIMITS[AC_LIMITS.len() - 1]);

/// The seats' array caches inside a cache's descriptor
/// ([`CacheInner::seats`]), one per seat, [`SEAT_BYTES`] apart. Each starts
/// zeroed: `avail = 0` with bounds `0 / 0`, which both fast paths refuse.
#[repr(C, align(64))]
pub(crate) struct SeatArrays(UnsafeCell<[[u8; SEAT_BYTES]; SEATS]>);

const _: () = assert!(SEAT_BYTES.is_multiple_of(kmem_platform::CACHE_LINE));

impl SeatArrays {
    pub(crate) const fn new() -> Self {
        SeatArrays(UnsafeCell::new([[0; SEAT_BYTES]; SEATS]))
    }

    /// The array of the seat whose thread word is `word` (see
    /// [`seat_word`]): built by the seat's thread in its slow path,
    /// meaningful only to it (or to whoever holds its lock with it frozen).
    ///
    /// Seat 0 is tested for apart from the others: its array's address is
    /// then a constant offset from the descriptor's, needing no load at all
    /// (the branch is always the same way for a given thread, so it is
    /// predicted); the other seats' addresses depend on the word's load.
    ///
    /// # Safety
    ///
    /// `word` is a seat's word (not 0).
    #[inline(always)]
    pub(crate) unsafe fn get(&self, word: usize) -> *mut ArrayCache {
        debug_assert!(word == 1 || (SEAT_BYTES..SEATS * SEAT_BYTES).contains(&word));
        let base = self.0.get().cast::<u8>();
        if word == 1 {
            return opaque(base).cast();
        }
        // SAFETY: `word` is `seat * SEAT_BYTES` with `1 <= seat < SEATS`:
        // the start of that seat's array, inside the field.
        unsafe { base.add(word).cast() }
    }

    /// Whether `ac` is one of these arrays.
    fn holds(&self, ac: *mut ArrayCache) -> bool {
        (ac as usize).wrapping_sub(self.0.get() as usize) < SEATS * SEAT_BYTES
    }
}

/// `p`, through an empty `asm!` block that the compiler cannot see into: in
/// [`SeatArrays::get`] it keeps seat 0's constant address a separate branch,
/// which the compiler would otherwise fold into the other seats' arithmetic
/// (a conditional move that waits for the seat word's load, the one wait the
/// branch exists to avoid). Costs no instruction.
#[inline(always)]
fn opaque(mut p: *mut u8) -> *mut u8 {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // The block names the pointer only to hide its value, never dereferences it.
    #[allow(clippy::pointers_in_nomem_asm_block)]
    // SAFETY: an empty block: reads and writes nothing, `p` unchanged.
    unsafe {
        core::arch::asm!("/* {0} */", inout(reg) p, options(pure, nomem, nostack, preserves_flags));
    }
    p
}

/// Seats taken: bit `k` for seat `k`.
static SEATS_TAKEN: AtomicUsize = AtomicUsize::new(0);

/// The seat the calling thread holds (see the module docs, "Seats"), or
/// `None`: it holds none (all [`SEATS`] were taken when it first used kmem),
/// has not used kmem yet, or is exiting.
///
/// ```
/// let c = kmem_slab::KmemCache::new("seat_doc", 64, 0).unwrap();
/// let p = c.alloc(kmem_page::Gfp::KERNEL).unwrap(); // the thread's first use
/// unsafe { c.free(p).unwrap() };
/// if let Some(s) = kmem_slab::thread_seat() {
///     assert!(s < kmem_slab::SEATS);
/// }
/// ```
pub fn thread_seat() -> Option<usize> {
    match seat_word() {
        0 => None,
        w => Some(seat_of_word(w)),
    }
}

/// How many seats are held now, by live threads (at most [`SEATS`]).
///
/// ```
/// assert!(kmem_slab::seats_in_use() <= kmem_slab::SEATS);
/// ```
pub fn seats_in_use() -> usize {
    SEATS_TAKEN.load(Ordering::Relaxed).count_ones() as usize
}

/// A seat's thread word: 1 for seat 0, `seat * SEAT_BYTES` for the others
/// (the offset of its array in [`SeatArrays`]); 0 means no seat.
#[cfg_attr(not(feature = "std"), allow(dead_code))]
const fn word_of_seat(seat: usize) -> usize {
    if seat == 0 { 1 } else { seat * SEAT_BYTES }
}

/// The seat whose word is `word` (not 0).
const fn seat_of_word(word: usize) -> usize {
    if word == 1 { 0 } else { word / SEAT_BYTES }
}

/// Takes a free seat for a new thread (the lowest: seat 0 goes to the first
/// thread, usually `main`); its word, or 0 when every seat is taken (the
/// thread keeps its arrays in its own block, through its slots).
#[cfg_attr(not(feature = "std"), allow(dead_code))]
fn take_seat() -> usize {
    let mut taken = SEATS_TAKEN.load(Ordering::Relaxed);
    loop {
        let k = (!taken).trailing_zeros() as usize;
        if k >= SEATS {
            return 0;
        }
        match SEATS_TAKEN.compare_exchange_weak(
            taken,
            taken | 1 << k,
            Ordering::Acquire,
            Ordering::Relaxed,
        ) {
            Ok(_) => return word_of_seat(k),
            Err(now) => taken = now,
        }
    }
}

/// Gives back the seat whose word is `word` (0: none), once every array of
/// its thread was freed (closed again). Release: the next thread that takes
/// the seat sees its arrays closed.
pub(crate) fn give_back_seat(word: usize) {
    if word != 0 {
        SEATS_TAKEN.fetch_and(!(1 << seat_of_word(word)), Ordering::Release);
    }
}

/// The most caches alive at once (ids index each thread's table).
pub const MAX_CACHES: usize = 1016;

/// The fast paths' bounds on an array's `avail`, and the remote side's
/// switch of the freeze protocol (see the module docs): open, an
/// allocation may pop while `avail > lo` (`lo = 0`) and a free may push
/// while `avail < hi` (`hi = limit`); closed (`lo = u32::MAX`, `hi = 0`),
/// neither passes and the owner takes its slow path. Written only by a
/// remote thread holding the owner's lock (or by the owner under its lock,
/// when the array is made); read by the owner's fast path after
/// [`enter`].
#[repr(C)]
pub(crate) struct FastBounds {
    /// An allocation pops only if `avail > lo`.
    pub(crate) lo: AtomicU32,
    /// A free pushes only if `avail < hi`.
    pub(crate) hi: AtomicU32,
}

impl FastBounds {
    /// Open bounds for an array of `limit` entries.
    pub(crate) fn new(limit: u32) -> Self {
        FastBounds {
            lo: AtomicU32::new(0),
            hi: AtomicU32::new(limit),
        }
    }

    /// Closes the bounds (a remote thread, holding the owner's lock, before
    /// [`remote_barrier`]; for good on a system without `membarrier`; or a
    /// seat's array as it is freed, until the seat's next thread builds it).
    pub(crate) fn close(&self) {
        self.lo.store(u32::MAX, Ordering::Relaxed);
        self.hi.store(0, Ordering::Relaxed);
    }

    /// Opens them again for an array of `limit` entries: the remote thread
    /// is done, and everything it wrote is visible to an owner that sees
    /// them open (release; the owner's loads are acquire).
    pub(crate) fn open(&self, limit: u32) {
        self.hi.store(limit, Ordering::Release);
        self.lo.store(0, Ordering::Release);
    }
}

/// The owner enters a fast-path operation counted by `seq` (one of its
/// array's hit counters), which becomes odd; it then checks the array's
/// [`FastBounds`] and leaves with `seq.leave()` (served) or `seq.abort()`
/// (not served).
#[inline(always)]
pub(crate) fn enter(seq: &HitSeq) {
    seq.enter();
    // The owner's half of the asymmetric Dekker protocol: the store above
    // before the bound's load, by a compiler fence, paired with the remote
    // side's `membarrier`. Where that is not available at compile time
    // (Miri, loom, other systems), a real fence.
    if cfg!(any(miri, loom, not(target_os = "linux"))) {
        fence(Ordering::SeqCst);
    } else {
        core::sync::atomic::compiler_fence(Ordering::SeqCst);
    }
}

/// After [`remote_barrier`]: waits until the owner is outside the fast-path
/// operation that `seq` marks.
pub(crate) fn wait_idle(seq: &HitSeq) {
    let mut spins = 0u32;
    while seq.busy() {
        spins += 1;
        #[cfg(loom)]
        loom::thread::yield_now();
        #[cfg(not(loom))]
        if spins < 64 {
            core::hint::spin_loop();
        } else {
            kmem_platform::thread::yield_now();
        }
    }
    let _ = spins;
}

/// A thread's per-thread state: its array caches by cache id, and the flags
/// of the freeze protocol.
#[repr(C, align(64))]
pub(crate) struct ThreadCaches {
    /// The system has no `membarrier`: the thread's arrays are made with
    /// closed bounds and never opened (every operation takes the slow path).
    /// Fixed.
    pub(crate) slow_only: bool,
    /// Held by any remote thread touching this thread's arrays, and by the
    /// owner in a slow path that finds itself frozen (it waits here for the
    /// remote thread) or makes an array; other slow paths use the busy marks
    /// instead (see `with_own_array`). Slots change only under it.
    pub(crate) lock: kmem_platform::RawLock,
    /// Links in the list of threads. Under the thread-list lock.
    next: UnsafeCell<*mut ThreadCaches>,
    prev: UnsafeCell<*mut ThreadCaches>,
    /// The kernel's id of the owning thread (for reports).
    pub(crate) tid: u64,
    /// The thread's seat word (see [`seat_word`]; 0: no seat), as in
    /// its TLS word while it runs. Fixed from creation until the thread's
    /// exit destructor gives the seat back.
    pub(crate) seat: usize,
    /// The array cache for each cache id, or null. Written under `lock`
    /// (by the owner, or a remote thread while frozen); the owner's fast path
    /// reads it without the lock, after `enter`.
    pub(crate) slots: [AtomicPtr<ArrayCache>; MAX_CACHES],
}

// SAFETY: shared fields are atomics or protected by `lock` / the thread-list lock.
unsafe impl Sync for ThreadCaches {}

impl ThreadCaches {
    /// A remote thread, holding `lock`, closes the bounds of every array of
    /// this thread; then it runs [`remote_barrier`] and
    /// [`wait_quiescent`](Self::wait_quiescent).
    pub(crate) fn freeze(&self) {
        self.each_array(|ac| {
            // SAFETY: `each_array` passes live arrays; only the atomic field
            // is borrowed (the owner may be writing the others).
            unsafe { (*ac).bounds.close() }
        });
    }

    /// The remote thread is done: opens the bounds again (unless
    /// `slow_only`). `lock` is still held.
    pub(crate) fn thaw(&self) {
        if !self.slow_only {
            self.each_array(|ac| {
                // SAFETY: as in `freeze`; `limit` is fixed.
                unsafe { (*ac).bounds.open((*ac).limit) }
            });
        }
    }

    /// Runs `f` on every array in this thread's slots: a raw pointer, never
    /// a reference to the whole array, whose other fields the owner may be
    /// writing meanwhile.
    fn each_array(&self, mut f: impl FnMut(*mut ArrayCache)) {
        for slot in self.slots.iter() {
            // An array in a slot is live while the slot holds it; the callers
            // hold `lock` (slots change only under it).
            let ac = slot.load(Ordering::Acquire);
            if !ac.is_null() {
                f(ac);
            }
        }
    }

    /// After [`freeze`](Self::freeze) and [`remote_barrier`], with `lock` held: waits
    /// until the owner is outside every fast-path operation (the hit counters
    /// of all its arrays are even). The slots cannot change meanwhile: they
    /// are written only under `lock`.
    pub(crate) fn wait_quiescent(&self) {
        self.each_array(|ac| {
            // SAFETY: as in `freeze`: only the atomic counters are borrowed.
            unsafe {
                wait_idle(&(*ac).stat.allochit);
                wait_idle(&(*ac).stat.freehit);
            }
        });
    }
}

const _: () = assert!(core::mem::size_of::<ThreadCaches>() <= 2 * kmem_platform::PAGE_SIZE);
/// Order of a `ThreadCaches` block.
#[cfg_attr(not(feature = "std"), allow(dead_code))]
pub(crate) const TC_ORDER: u32 = 1;

/// The barrier a remote thread runs between `freeze` and `wait_quiescent`.
pub(crate) fn remote_barrier() {
    fence(Ordering::SeqCst);
    #[cfg(all(target_os = "linux", not(miri), not(loom)))]
    kmem_platform::thread::membarrier();
}

/// Pools for array caches, by limit (SLAB's limits: 1, 8, 24, 54, 120).
pub(crate) const AC_LIMITS: [u32; 5] = [1, 8, 24, 54, 120];
pub(crate) static AC_POOLS: [crate::pool::FixedPool; 5] = [
    crate::pool::FixedPool::new(ArrayCache::bytes(AC_LIMITS[0])),
    crate::pool::FixedPool::new(ArrayCache::bytes(AC_LIMITS[1])),
    crate::pool::FixedPool::new(ArrayCache::bytes(AC_LIMITS[2])),
    crate::pool::FixedPool::new(ArrayCache::bytes(AC_LIMITS[3])),
    crate::pool::FixedPool::new(ArrayCache::bytes(AC_LIMITS[4])),
];

fn ac_pool(limit: u32) -> &'static crate::pool::FixedPool {
    let i = AC_LIMITS
        .iter()
        .position(|&l| l >= limit)
        .unwrap_or(AC_LIMITS.len() - 1);
    &AC_POOLS[i]
}

/// A fresh, empty array cache for `c`, from kmem's pages.
pub(crate) fn alloc_array(c: &CacheInner) -> *mut ArrayCache {
    match ac_pool(c.limit).alloc(crate::backend::global_pages(), kmem_page::Gfp::KERNEL) {
        // SAFETY: the chunk is at least `bytes(limit)` long (pool by limit), 16-aligned and ours.
        Some(p) => unsafe { ArrayCache::init(p.as_ptr(), c.limit, c.batchcount, c) },
        None => ptr::null_mut(),
    }
}

/// Frees an array cache's memory, after folding its counters into its
/// cache's node (so they outlive the array). Called with no node lock held.
///
/// # Safety
///
/// `ac` came from [`alloc_array`] or is a seat's array built by
/// `with_own_array_locked`, is empty, and is referenced by nothing;
/// its cache is live; the thread-list lock is held if `ac` was ever in a
/// thread's slot (readers of the counters rely on it).
pub(crate) unsafe fn free_array(ac: *mut ArrayCache) {
    // SAFETY: per the contract.
    unsafe {
        crate::stats::fold_array(ac);
        let c = &*(*ac).cache;
        if c.seats.holds(ac) {
            // A seat's array, in the descriptor (empty, per the contract):
            // closed again, for the seat's next thread to build.
            (*ac).bounds.close();
            return;
        }
        let pool = ac_pool((*ac).limit);
        pool.free(
            crate::backend::global_pages(),
            ptr::NonNull::new_unchecked(ac.cast()),
        );
    }
}

/// The list of every thread's `ThreadCaches` (for the reaper, shrink and destroy).
pub(crate) struct ThreadList {
    head: *mut ThreadCaches,
}
// SAFETY: only touched under the THREADS mutex.
unsafe impl Send for ThreadList {}

pub(crate) static THREADS: kmem_platform::Mutex<ThreadList> =
    kmem_platform::Mutex::new(ThreadList {
        head: ptr::null_mut(),
    });

impl ThreadList {
    /// Iterates the registered threads.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &ThreadCaches> + '_ {
        let mut p = self.head;
        core::iter::from_fn(move || {
            // SAFETY: listed blocks are live while the list lock is held (we borrow the list).
            let t = unsafe { p.as_ref()? };
            // SAFETY: as above.
            p = unsafe { *t.next.get() };
            Some(t)
        })
    }

    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    fn push(&mut self, t: *mut ThreadCaches) {
        // SAFETY: `t` is live and unlisted; the list lock is held (`&mut self`).
        unsafe {
            *(*t).prev.get() = ptr::null_mut();
            *(*t).next.get() = self.head;
            if !self.head.is_null() {
                *(*self.head).prev.get() = t;
            }
        }
        self.head = t;
    }

    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    pub(crate) fn remove(&mut self, t: *mut ThreadCaches) {
        // SAFETY: `t` is live and listed; the list lock is held.
        unsafe {
            let (n, p) = (*(*t).next.get(), *(*t).prev.get());
            if !n.is_null() {
                *(*n).prev.get() = p;
            }
            if p.is_null() {
                self.head = n;
            } else {
                *(*p).next.get() = n;
            }
        }
    }
}

/// Runs `f` on every registered thread's caches with exclusive access: every
/// other thread is frozen (see the module docs) and every thread lock is held.
/// The calling thread must not hold its own thread lock.
pub(crate) fn for_each_thread_exclusive(mut f: impl FnMut(&ThreadCaches)) {
    let list = THREADS.lock();
    let me = current_raw();
    let mut others = false;
    for t in list.iter() {
        lock_api::RawMutex::lock(&t.lock);
        if !ptr::eq(t, me) {
            t.freeze();
            others = true;
        }
    }
    if others {
        remote_barrier();
    }
    for t in list.iter() {
        if !ptr::eq(t, me) {
            t.wait_quiescent();
        }
    }
    for t in list.iter() {
        f(t);
    }
    for t in list.iter() {
        if !ptr::eq(t, me) {
            t.thaw();
        }
        // SAFETY: locked by the first loop.
        unsafe { lock_api::RawMutex::unlock(&t.lock) };
    }
}

/// TLS slot value of a thread whose caches were torn down (it is exiting).
pub(crate) const DEAD: usize = 1;

/// Where the calling thread's `ThreadCaches` pointer is kept: the platform's
/// one-instruction slot (`kmem_platform::tls`, x86-64 Linux), else a
/// `thread_local!`. Null before first use, [`DEAD`] after the thread-exit
/// destructor ran.
#[cfg(all(
    feature = "std",
    target_arch = "x86_64",
    target_os = "linux",
    not(miri),
    not(loom)
))]
mod slot {
    use super::ThreadCaches;

    #[inline(always)]
    pub(super) fn get() -> *mut ThreadCaches {
        kmem_platform::tls::get().cast()
    }

    pub(super) fn set(p: *mut ThreadCaches) {
        kmem_platform::tls::set(p.cast());
    }

    #[inline(always)]
    pub(super) fn seat() -> usize {
        kmem_platform::tls::get_word()
    }

    pub(super) fn set_seat(w: usize) {
        kmem_platform::tls::set_word(w);
    }
}

/// See the other `slot`: the `thread_local!` form (a plain pointer,
/// const-initialised, no destructor, so a first access never allocates).
#[cfg(all(
    feature = "std",
    not(all(target_arch = "x86_64", target_os = "linux", not(miri), not(loom)))
))]
mod slot {
    use super::{DEAD, ThreadCaches};
    use core::ptr;

    std::thread_local! {
        static TC: core::cell::Cell<*mut ThreadCaches> = const { core::cell::Cell::new(ptr::null_mut()) };
        static SEAT: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
    }

    #[inline(always)]
    pub(super) fn seat() -> usize {
        SEAT.try_with(|c| c.get()).unwrap_or(0)
    }

    pub(super) fn set_seat(w: usize) {
        let _ = SEAT.try_with(|c| c.set(w));
    }

    #[inline(always)]
    pub(super) fn get() -> *mut ThreadCaches {
        TC.try_with(|c| c.get())
            .unwrap_or(ptr::without_provenance_mut(DEAD))
    }

    pub(super) fn set(p: *mut ThreadCaches) {
        let _ = TC.try_with(|c| c.set(p));
    }
}

/// The calling thread's `ThreadCaches` pointer as stored (may be null or DEAD).
#[inline(always)]
pub(crate) fn current_raw() -> *mut ThreadCaches {
    #[cfg(feature = "std")]
    {
        slot::get()
    }
    #[cfg(not(feature = "std"))]
    {
        ptr::without_provenance_mut(DEAD)
    }
}

/// The calling thread's seat word: 1 for seat 0, `seat * SEAT_BYTES` for
/// the others, 0 for none (no seat, no block yet, or exiting).
#[inline(always)]
pub(crate) fn seat_word() -> usize {
    #[cfg(feature = "std")]
    {
        slot::seat()
    }
    #[cfg(not(feature = "std"))]
    {
        0
    }
}

/// Stores the calling thread's `ThreadCaches` pointer (or [`DEAD`]).
#[cfg(feature = "std")]
fn set_current(p: *mut ThreadCaches) {
    slot::set(p);
}

#[cfg(feature = "std")]
static KEY: kmem_platform::thread::ThreadKey = kmem_platform::thread::ThreadKey::new(thread_exit);

/// The calling thread's `ThreadCaches`, created on first use; `None` if the
/// thread is exiting or there is no memory for it.
#[cold]
pub(crate) fn current_or_create() -> Option<&'static ThreadCaches> {
    let t = current_raw();
    if t as usize == DEAD {
        return None;
    }
    if !t.is_null() {
        // SAFETY: a live block until this thread's exit destructor.
        return Some(unsafe { &*t });
    }
    #[cfg(feature = "std")]
    {
        let block = crate::backend::global_pages().alloc_block(
            TC_ORDER,
            kmem_page::Gfp::KERNEL,
            kmem_page::PageKind::Pages,
        )?;
        let p = block.as_ptr().cast::<ThreadCaches>();
        let always_slow = cfg!(all(target_os = "linux", not(miri)))
            && !kmem_platform::thread::membarrier_available();
        // SAFETY: a fresh block of 2 pages, big enough (asserted above), ours.
        unsafe {
            ptr::write_bytes(p.cast::<u8>(), 0, core::mem::size_of::<ThreadCaches>());
            ptr::addr_of_mut!((*p).slow_only).write(always_slow);
            ptr::addr_of_mut!((*p).lock).write(kmem_platform::RawLock::new());
            ptr::addr_of_mut!((*p).tid).write(kmem_platform::cpu::thread_id());
        }
        if !KEY.set(p.cast()) {
            // SAFETY: the block was never published.
            unsafe {
                crate::backend::global_pages().free_block(
                    block,
                    TC_ORDER,
                    kmem_page::PageKind::Pages,
                )
            };
            return None;
        }
        let seat = {
            let mut list = THREADS.lock();
            // Under the thread-list lock, so that a `fork` (which holds it
            // across) never sees a seat taken by a thread it cannot see. A
            // thread without membarrier takes no seat: its arrays stay
            // closed for good, and a seat's array is open on the fast path
            // once built.
            let seat = if always_slow { 0 } else { take_seat() };
            // SAFETY: as above; not yet published (listed next).
            unsafe { ptr::addr_of_mut!((*p).seat).write(seat) };
            list.push(p);
            seat
        };
        set_current(p);
        slot::set_seat(seat);
        // SAFETY: initialised above; lives until thread exit.
        Some(unsafe { &*p })
    }
    #[cfg(not(feature = "std"))]
    None
}

/// The thread-exit destructor: flushes every array cache of the thread back
/// to its cache's node, frees them and the `ThreadCaches` block.
#[cfg(feature = "std")]
unsafe extern "C" fn thread_exit(v: *mut core::ffi::c_void) {
    let t = v.cast::<ThreadCaches>();
    if t.is_null() {
        return;
    }
    set_current(ptr::without_provenance_mut(DEAD));
    slot::set_seat(0);
    let mut destroy = crate::node::DestroyList::new();
    {
        let mut list = THREADS.lock();
        // SAFETY: `t` is this thread's live block.
        let tr = unsafe { &*t };
        lock_api::RawMutex::lock(&tr.lock);
        list.remove(t);
        for slot in tr.slots.iter() {
            let ac = slot.swap(ptr::null_mut(), Ordering::Relaxed);
            if ac.is_null() {
                continue;
            }
            // SAFETY: a live array of a live cache: destroy drains and clears
            // slots under THREADS, which we hold.
            unsafe {
                let c = &*(*ac).cache;
                c.node_flush_all(ac, &mut destroy);
                free_array(ac);
            }
        }
        // Every array of ours is freed (a seat's ones closed again).
        give_back_seat(tr.seat);
        // SAFETY: locked above.
        unsafe { lock_api::RawMutex::unlock(&tr.lock) };
        destroy.run();
    }
    // SAFETY: unlisted, unreachable from TLS (DEAD), no array left.
    unsafe {
        crate::backend::global_pages().free_block(
            ptr::NonNull::new_unchecked(t.cast()),
            TC_ORDER,
            kmem_page::PageKind::Pages,
        )
    };
}

/// Runs `f` with the calling thread's array cache for `c`, exclusively (the
/// slow path). `None` if the thread has no per-thread caches (exiting, or no
/// memory): the caller then uses the node directly.
///
/// Usually without the thread's lock: like the fast paths, the slow path
/// marks itself busy on the array's allocation counter and checks the
/// bounds; while they are open no remote thread touches the array until the
/// mark is cleared (a remote thread that arrives meanwhile waits, in
/// `wait_quiescent`, for `f` to finish). Only a frozen thread, one without
/// `membarrier`, or one that has no array for `c` yet takes the lock — which
/// spares every refill and flush an atomic read-modify-write on the lock
/// (41% of the slow path's samples on the 2-thread `xmalloc` workload).
pub(crate) fn with_own_array<R>(c: &CacheInner, f: impl FnOnce(*mut ArrayCache) -> R) -> Option<R> {
    let t = current_or_create()?;
    let ac = t.slots[c.id as usize].load(Ordering::Relaxed);
    if !ac.is_null() {
        // SAFETY: an array in our slot is live (as in `fast_alloc`); only
        // its atomic counter and bounds are borrowed.
        let seq = unsafe { &(*ac).stat.allochit };
        enter(seq);
        // SAFETY: as above.
        if unsafe { (*ac).bounds.lo.load(Ordering::Acquire) } == 0 {
            // The array is ours until the mark is cleared; `f` counts its
            // own hits and misses (which keep the mark's parity).
            let r = f(ac);
            seq.abort();
            return Some(r);
        }
        seq.abort();
    }
    with_own_array_locked(t, c, f)
}

/// [`with_own_array`] under the thread's lock: the thread is frozen (the lock
/// waits for the remote thread), has no `membarrier`, or has no array for `c`
/// yet (made here).
#[cold]
#[inline(never)]
fn with_own_array_locked<R>(
    t: &ThreadCaches,
    c: &CacheInner,
    f: impl FnOnce(*mut ArrayCache) -> R,
) -> Option<R> {
    lock_api::RawMutex::lock(&t.lock);
    let slot = &t.slots[c.id as usize];
    let mut ac = slot.load(Ordering::Relaxed);
    if ac.is_null() {
        ac = if t.seat != 0 {
            // SAFETY: our seat's array for `c`: closed (not in our slot),
            // touched by no one but us; `SEAT_BYTES` long and 64-aligned.
            unsafe { ArrayCache::init(c.seats.get(t.seat).cast(), c.limit, c.batchcount, c) }
        } else {
            alloc_array(c)
        };
        if ac.is_null() {
            // SAFETY: locked above.
            unsafe { lock_api::RawMutex::unlock(&t.lock) };
            return None;
        }
        if t.slow_only {
            // SAFETY: a fresh array, ours.
            unsafe { (*ac).bounds.close() };
        }
        slot.store(ac, Ordering::Release);
    }
    let r = f(ac);
    // SAFETY: locked above.
    unsafe { lock_api::RawMutex::unlock(&t.lock) };
    Some(r)
}

/// The calling thread's array cache for cache `id`, if it has one (not
/// before its first slow path, nor once the thread is exiting), without
/// creating anything: the first step of both fast paths.
///
/// A seated thread finds its array in `c`'s descriptor, at its seat's offset
/// (its thread word) from `c`, with no load on the way that depends on
/// another (see the module docs, "Seats"). Every other thread reads its slot.
#[inline(always)]
fn own_array(c: &CacheInner, id: u32) -> Option<*mut ArrayCache> {
    let seat = seat_word();
    if seat != 0 {
        // SAFETY: a seat's word (set while the thread holds the seat).
        return Some(unsafe { c.seats.get(seat) });
    }
    let t = current_raw();
    if (t as usize) <= DEAD {
        return None;
    }
    // SAFETY: a live block until this thread's exit destructor, which runs on this thread.
    let t = unsafe { &*t };
    // SAFETY: a live cache's id is below MAX_CACHES.
    let ac = unsafe { t.slots.get_unchecked(id as usize) }.load(Ordering::Relaxed);
    (!ac.is_null()).then_some(ac)
}

/// Fast path: pops an object from the calling thread's array cache for `c`.
#[inline(always)]
pub(crate) fn fast_alloc(c: &CacheInner, id: u32) -> Option<*mut u8> {
    debug_assert_eq!(id, c.id);
    let ac = own_array(c, id)?;
    // SAFETY: an array in our slot is live: it leaves the slot only when this
    // thread exits (on this thread) or when its cache is destroyed, and no
    // thread may use a cache that is being destroyed (`destroy`'s contract),
    // so not while this call runs.
    let seq = unsafe { &(*ac).stat.allochit };
    enter(seq);
    // SAFETY: the array is ours: remote threads touch it only while its
    // bounds are closed and we are outside `enter`/`leave`.
    unsafe {
        let lo = (*ac).bounds.lo.load(Ordering::Acquire);
        let n = (*ac).avail;
        if n <= lo {
            seq.abort();
            return None;
        }
        let e = *ArrayCache::entry(ac, n - 1);
        (*ac).avail = n - 1;
        (*e.state).store(crate::slab::OBJ_ALLOCATED, Ordering::Relaxed);
        seq.leave();
        Some(e.obj)
    }
}

/// What [`fast_free`] reads for a pointer that is not an allocated object
/// of the cache: a state that is never `OBJ_ALLOCATED`, so the one state
/// check refuses it (no separate null test on the fast path).
static NOT_ALLOCATED: AtomicU8 = AtomicU8::new(crate::slab::OBJ_FREE);

/// Fast path of `kmem_cache_free`: finds the object's state byte from the
/// memo of the last slab this thread freed into, or a descriptor lookup
/// (both lock-free), marks it free and pushes the object onto the thread's
/// array. `false`: the slow path must do it (bad pointer, full array,
/// frozen, no array).
#[inline(always)]
pub(crate) fn fast_free(c: &CacheInner, id: u32, addr: usize) -> bool {
    // SAFETY: the state byte comes from the memo — which describes a slab of
    // this cache that is still alive while `slab_gen` is unchanged (slabs
    // bump it before they are destroyed), so its state bytes are live and
    // the index is below `num` once the range check passed (see
    // `cache::memo_bytes` for why the low half of the product tells an
    // object's start) — or from `memo_miss`: the state byte of an object of
    // a live slab, or `NOT_ALLOCATED`.
    unsafe {
        push_free(c, id, addr, |ac| {
            let off = addr.wrapping_sub((*ac).memo_s_mem);
            let m = (off as u64).wrapping_mul(c.recip);
            if off < c.memo_bytes
                && (m as u32) < (c.recip as u32)
                && (*ac).memo_gen == c.slab_gen.load(Ordering::Acquire)
            {
                (*ac).memo_state.add((m >> 32) as usize)
            } else {
                memo_miss(c, ac, addr)
            }
        })
    }
}

/// [`fast_free`] for a caller that found the object's slab through its page
/// descriptor already (kfree): `slab` is a live slab of `c` and `colour_off`
/// its colour offset. Calls nothing: a pointer that fails the one-multiply
/// object test goes to the slow path, which decides.
#[inline(always)]
pub(crate) fn fast_free_in(
    c: &CacheInner,
    addr: usize,
    slab: *const crate::slab::Slab,
    colour_off: u32,
) -> bool {
    // The object test needs nothing of the thread's array, so it runs
    // before `push_free` enters: a pointer it refuses goes straight to the
    // slow path (no sentinel state byte, no conditional moves).
    // SAFETY: per the contract, `slab` is a live slab of `c`.
    let Some(st) = (unsafe { c.resolve_fast(addr, slab, colour_off) }) else {
        return false;
    };
    // SAFETY: `st` is the state byte of an object of `c` (above).
    unsafe { push_free(c, c.id, addr, |_| st) }
}

/// The common part of the free fast paths: enters, checks the bound, asks
/// `state` for the object's state byte (given the thread's array), and if it
/// says allocated marks it free and pushes the object.
///
/// # Safety
///
/// `state` returns a live state byte (of an object of `c`, or
/// `NOT_ALLOCATED`), and is called inside `enter`/`leave`.
#[inline(always)]
unsafe fn push_free(
    c: &CacheInner,
    id: u32,
    addr: usize,
    state: impl FnOnce(*mut ArrayCache) -> *const AtomicU8,
) -> bool {
    debug_assert_eq!(id, c.id);
    let Some(ac) = own_array(c, id) else {
        return false;
    };
    // SAFETY: as in `fast_alloc`.
    let seq = unsafe { &(*ac).stat.freehit };
    enter(seq);
    // SAFETY: the array is ours (as in `fast_alloc`); `state` per the contract.
    unsafe {
        let hi = (*ac).bounds.hi.load(Ordering::Acquire);
        let n = (*ac).avail;
        if n >= hi {
            seq.abort();
            return false;
        }
        let st = state(ac);
        if (*st).load(Ordering::Relaxed) != crate::slab::OBJ_ALLOCATED {
            seq.abort();
            return false;
        }
        (*st).store(crate::slab::OBJ_FREE, Ordering::Relaxed);
        *ArrayCache::entry(ac, n) = Entry {
            obj: addr as *mut u8,
            state: st,
        };
        (*ac).avail = n + 1;
        seq.leave();
        true
    }
}

/// The part of [`fast_free`] for an object outside the memo's slab: resolves
/// `addr` through its page descriptor (lock-free) and, if it is an object of
/// `c`, makes its slab the memo. [`NOT_ALLOCATED`] if it is not (the slow
/// path reports).
///
/// # Safety
///
/// `ac` is the calling thread's array for `c`, and the thread is inside
/// `enter`/`leave`.
#[cold]
#[inline(never)]
unsafe fn memo_miss(c: &CacheInner, ac: *mut ArrayCache, addr: usize) -> *const AtomicU8 {
    // Read before the descriptor: a slab destroyed after this bumps it, and
    // the memo stops matching.
    let slab_gen = c.slab_gen.load(Ordering::Acquire);
    let desc = match kmem_page::lookup_head(addr) {
        Some(d) => d,
        None => match kmem_page::lookup_block(addr) {
            Some(b) => b.desc,
            None => return &NOT_ALLOCATED,
        },
    };
    let Some((st, s)) = c.resolve(addr, desc) else {
        return &NOT_ALLOCATED;
    };
    // SAFETY: the array is ours (per the contract); `s` is a live slab of `c`.
    unsafe {
        (*ac).memo_s_mem = (*s).s_mem;
        (*ac).memo_state = crate::slab::Slab::state(s, 0);
        (*ac).memo_gen = slab_gen;
    }
    st
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every per-thread array occupies whole cache lines of its pool (no two
    /// threads' arrays share a line).
    #[test]
    fn arrays_are_whole_cache_lines() {
        for limit in AC_LIMITS {
            let b = ArrayCache::bytes(limit);
            assert_eq!(b % kmem_platform::CACHE_LINE, 0, "limit {limit}: {b} bytes");
            assert!(b >= core::mem::size_of::<ArrayCache>() + limit as usize * 16);
        }
        for (pool, limit) in AC_POOLS.iter().zip(AC_LIMITS) {
            assert_eq!(
                pool.chunk_size() % kmem_platform::CACHE_LINE,
                0,
                "limit {limit}"
            );
        }
    }
}
