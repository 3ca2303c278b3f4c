/* cuda-emu-runtime.cpp — the part of the CUDA runtime the CUDA backend calls,
 * on the host, for tests/cuda-emu.h: with it the backend's own host code
 * (planning, upload, forward, graph capture and replay, read-back) runs in
 * CI on the emulated kernels (tests/test-cuda-emu-model.c).
 *
 * Device memory is host memory; every call is synchronous, so a stream is
 * only a name, and an event is a time, unless HEARTH_CUDA_EMU_ASYNC=1 defers
 * a stream's work until the host waits for it (deferred() below). A stream between
 * cudaStreamBeginCapture and cudaStreamEndCapture records its launches,
 * copies and sets instead of running them; cudaGraphLaunch replays the
 * record in order, reading host pointers at replay time as a graph's copy
 * nodes do; a call a driver refuses during a capture stops the program
 * (capture_violation). The device reports compute capability 8.0, the memory of
 * HEARTH_CUDA_EMU_MIB (default 2048) and refuses allocations beyond it, so
 * the backend's out-of-memory paths run too. Functions are defined with the
 * toolkit's own declarations (cuda_runtime_api.h) and take the place of
 * cudart's (a test links cudart for the engine's nvcc-compiled backend; a
 * function missing here would reach it and fail with "no driver"). */
#include "cuda-emu.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <set>
#include <thread>
#include <time.h>
#ifndef __x86_64__
#include <ucontext.h>
#endif
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#endif

/* The scheduler's own code (switches, barriers, the choice of the next
 * thread) runs for every barrier of every emulated thread: uninstrumented,
 * as a test's harness needs no checking, so the sanitizers' time goes to the
 * kernels under test (their loads and stores stay checked). */
#define HREMU_SCHED __attribute__((no_sanitize("address", "undefined")))

namespace hremu {
/* Objects alive, by kind (hr_cuda_emu_objects): each struct below holds a
 * Live of its kind. */
enum { LIVE_STREAM, LIVE_EVENT, LIVE_GRAPH, LIVE_EXEC, LIVE_BLAS, LIVE_N };
std::atomic<long> g_live[LIVE_N];
template <int K> struct Live {
    Live() { g_live[K]++; }
    Live(const Live &) { g_live[K]++; }
    ~Live() { g_live[K]--; }
};
/* Whether this object's creation is the call to fail (fault injection:
 * counted with the allocations). */
bool object_fails();
}  // namespace hremu

struct CUstream_st {
    bool capturing;
    struct CUgraph_st *graph;
    bool blocking;                                /* cudaStreamCreate's kind: the legacy stream waits for it */
    std::deque<std::function<void()>> pending;    /* HEARTH_CUDA_EMU_ASYNC=1: work not run yet */
    hremu::Live<hremu::LIVE_STREAM> live;
};
struct CUgraph_st {
    std::vector<std::function<void()>> ops;
    hremu::Live<hremu::LIVE_GRAPH> live;
};
struct CUgraphExec_st {
    std::vector<std::function<void()>> ops;
    hremu::Live<hremu::LIVE_EXEC> live;
};
struct CUevent_st {
    double ms;
    cudaStream_t stream;   /* where it was last recorded (deferred: done once its turn there came) */
    bool done;
    bool captured;         /* last recorded into a capture: a node of a graph, nothing to wait for */
    hremu::Live<hremu::LIVE_EVENT> live;
};

namespace hremu {

namespace {

/* Fibers: the emulated threads of a block, each on a stack of its own,
 * switched by a few instructions (x86-64 below; ucontext elsewhere). They
 * live as long as the program and serve every launch: fiber i runs thread i
 * of each block, so a kernel's frames always return normally (what ASan's
 * stack bookkeeping needs; the switches are annotated for it). */
enum { FIBER_STACK = 256 << 10, MAX_THREADS = 1024 };

struct Fiber {
    void *sp;              /* saved stack pointer while switched out */
    char *stack;
    int tid;
    bool done;             /* finished the current launch */
    int wait;              /* 0 running, 1 at a block barrier, 2 at a warp barrier */
    unsigned long gen;     /* the barrier generation it waits to pass */
#ifndef __x86_64__
    ucontext_t uc;
#endif
};

struct Sched {
    Fiber *fibers[MAX_THREADS];
    int n_fibers;
    Fiber *cur;
    void *main_sp;
#ifndef __x86_64__
    ucontext_t main_uc;
#endif
    bool switch_from_main;
    const void *main_stack_bottom;
    size_t main_stack_size;
    const std::function<void()> *kernel;
    int nt;
    int left;              /* threads not finished with the launch */
    int block_count;
    unsigned long block_gen;
    int warp_count[MAX_THREADS / 32];
    unsigned long warp_gen[MAX_THREADS / 32];
    /* The schedule (HEARTH_CUDA_EMU_ORDER): 0 forward; 1 reverse; 2 shuffle,
     * whose threads are tried in order[] (pos[] its inverse) and whose k-th
     * block is the perm[k]-th in x, y, z order. */
    int mode;
    unsigned long seed;
    int order[MAX_THREADS], pos[MAX_THREADS];
    std::vector<unsigned> perm;
    bool poison;                 /* shared memory 0xFF before each block (HEARTH_CUDA_EMU_POISON=0: not) */
    unsigned long blocks_begun;  /* blocks of the launch whose shared memory is poisoned */
};

Sched g_sched;

#ifdef __SANITIZE_ADDRESS__
extern "C" void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom, size_t size);
extern "C" void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old, size_t *size_old);
#endif

#ifdef __x86_64__
extern "C" void hremu_switch(void **save_sp, void *to_sp);
/* Saves the callee-saved registers, MXCSR and the x87 control word on the
 * current stack, stores its pointer to *save_sp, and resumes to_sp. */
asm(R"(
    .text
    .p2align 4
    .globl hremu_switch
    .type hremu_switch, @function
hremu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size hremu_switch, .-hremu_switch
    .section .note.GNU-stack,"",@progbits
    .text
)");
#endif

#ifdef __SANITIZE_ADDRESS__
/* ASan's side of a switch, on the stack just resumed; the launching
 * thread's stack is learnt from a switch that leaves it. */
void
asan_resumed(void *fake)
{
    Sched &S = g_sched;
    if (S.switch_from_main)
        __sanitizer_finish_switch_fiber(fake, &S.main_stack_bottom, &S.main_stack_size);
    else
        __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
}
#endif

/* Switches from the running fiber (nullptr: the launching thread) to `to`
 * (nullptr: back to the launching thread). */
HREMU_SCHED void
switch_to(Fiber *from, Fiber *to)
{
    Sched &S = g_sched;
    S.cur = to;
    if (to) {
        t_thread = make_uint3((unsigned)to->tid, 0, 0);
        t_warp = to->tid / 32;
    }
#ifdef __SANITIZE_ADDRESS__
    void *fake = nullptr;
    S.switch_from_main = from == nullptr;
    __sanitizer_start_switch_fiber(&fake, to ? to->stack : S.main_stack_bottom,
                                   to ? (size_t)FIBER_STACK : S.main_stack_size);
#endif
#ifdef __x86_64__
    hremu_switch(from ? &from->sp : &S.main_sp, to ? to->sp : S.main_sp);
#else
    swapcontext(from ? &from->uc : &S.main_uc, to ? &to->uc : &S.main_uc);
#endif
#ifdef __SANITIZE_ADDRESS__
    asan_resumed(fake);
#endif
    S.cur = from;
    if (from) {
        t_thread = make_uint3((unsigned)from->tid, 0, 0);
        t_warp = from->tid / 32;
    }
}

bool released(const Fiber *f);

/* The next thread that can run, or nullptr: after tid in its own warp
 * first (a warp barrier opens when the rest of the warp arrives), then the
 * other threads in order; in reverse, the same backwards; shuffled, the next
 * in the launch's order, whatever its warp (warps then advance together from
 * one warp barrier to the next). */
HREMU_SCHED Fiber *
pick(int tid)
{
    const Sched &S = g_sched;
    const int base = tid & ~31;
    if (S.mode == 1) {   // the mirror of forward's order below
        for (int k = 1; k < 32; k++) {
            Fiber *f = S.fibers[base + ((tid - k) & 31)];
            if (!f->done && released(f))
                return f;
        }
        for (int i = base - 1; i >= 0; i--)
            if (!S.fibers[i]->done && released(S.fibers[i]))
                return S.fibers[i];
        for (int i = S.nt - 1; i >= base + 32; i--)
            if (!S.fibers[i]->done && released(S.fibers[i]))
                return S.fibers[i];
        return nullptr;
    }
    if (S.mode == 2) {   // the next in the launch's random order, whatever its warp
        for (int k = 1, p = S.pos[tid]; k < S.nt; k++) {
            Fiber *f = S.fibers[S.order[(p + k) % S.nt]];
            if (!f->done && released(f))
                return f;
        }
        return nullptr;
    }
    for (int k = 1; k < 32; k++) {
        Fiber *f = S.fibers[base + ((tid + k) & 31)];
        if (!f->done && released(f))
            return f;
    }
    for (int i = base + 32; i < S.nt; i++)
        if (!S.fibers[i]->done && released(S.fibers[i]))
            return S.fibers[i];
    for (int i = 0; i < base; i++)
        if (!S.fibers[i]->done && released(S.fibers[i]))
            return S.fibers[i];
    return nullptr;
}

[[noreturn]] void
deadlock()
{
    fprintf(stderr, "cuda-emu: deadlock: threads wait at barriers that cannot open\n");
    abort();
}

/* The running fiber waits until its barrier opens, running the others. */
HREMU_SCHED void
wait_released(Fiber *f)
{
    while (!released(f)) {
        Fiber *n = pick(f->tid);
        if (!n)
            deadlock();
        switch_to(f, n);
    }
}

/* The section of the __shared__ statics (cuda-emu.h); absent in a program
 * whose kernels declare none. */
extern "C" char __start_hremu_shared[] __attribute__((weak));
extern "C" char __stop_hremu_shared[] __attribute__((weak));

/* Sets the __shared__ statics' bytes to 0xFF, leaving alone the bytes ASan
 * keeps between them (its redzones, which catch an index past an array):
 * the spans between redzones are found once. */
void
poison_shared()
{
    char *start = __start_hremu_shared, *end = __stop_hremu_shared;
    if (!start || start >= end)
        return;
    static const std::vector<std::pair<char *, size_t>> spans = [&] {
        std::vector<std::pair<char *, size_t>> v;
#ifdef __SANITIZE_ADDRESS__
        for (char *p = start; p < end;) {
            char *bad = static_cast<char *>(__asan_region_is_poisoned(p, (size_t)(end - p)));
            if (bad != p)
                v.emplace_back(p, (size_t)((bad ? bad : end) - p));
            if (!bad)
                break;
            for (p = bad; p < end && __asan_address_is_poisoned(p); p++) {
            }
        }
#else
        v.emplace_back(start, (size_t)(end - start));
#endif
        return v;
    }();
    for (const auto &s : spans)
        memset(s.first, 0xFF, s.second);
}

/* Block b of the launch, the k-th this thread begins: the first of the
 * block's threads to begin it (the others have all passed the barrier that
 * ended the block before) poisons the shared memory first. */
void
run_block(uint3 b, unsigned long k)
{
    Sched &S = g_sched;
    if (S.poison && S.blocks_begun == k) {
        poison_shared();
        S.blocks_begun++;
    }
    t_block = b;
    (*S.kernel)();
    block_barrier();   // the next block reuses __shared__
}

[[noreturn]] void
fiber_main()
{
    Sched &S = g_sched;
#ifdef __SANITIZE_ADDRESS__
    asan_resumed(nullptr);
#endif
    for (;;) {
        Fiber *f = S.cur;
        const dim3 grid = g_grid_dim;
        const unsigned long nb = (unsigned long)grid.x * grid.y * grid.z;
        for (unsigned long k = 0; k < nb; k++) {
            const unsigned long i = S.mode == 0 ? k : S.mode == 1 ? nb - 1 - k : S.perm[k];
            run_block(make_uint3((unsigned)(i % grid.x), (unsigned)(i / grid.x % grid.y),
                                 (unsigned)(i / grid.x / grid.y)),
                      k);
        }
        f->done = true;
        Fiber *n = --S.left ? pick(f->tid) : nullptr;
        if (S.left && !n)
            deadlock();
        switch_to(f, n);   // resumed by the next launch
    }
}

#ifndef __x86_64__
void
fiber_entry_uc()
{
    fiber_main();
}
#endif

Fiber *
new_fiber(int tid)
{
    Fiber *f = new Fiber();
    f->tid = tid;
    f->stack = static_cast<char *>(aligned_alloc(64, FIBER_STACK));
#ifdef __x86_64__
    /* the frame hremu_switch pops: control words, r15..r12, rbx, rbp, then
     * the return address (fiber_main), which leaves rsp at 8 mod 16 as a
     * function's entry expects */
    uintptr_t top = ((uintptr_t)f->stack + FIBER_STACK) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)(top - 16);
    *sp = (uint64_t)(uintptr_t)&fiber_main;
    for (int i = 0; i < 6; i++)
        *--sp = 0;
    --sp;
    const uint32_t mxcsr = 0x1F80, fcw = 0x037F;
    memcpy((char *)sp, &mxcsr, 4);
    memcpy((char *)sp + 4, &fcw, 4);
    f->sp = sp;
#else
    getcontext(&f->uc);
    f->uc.uc_stack.ss_sp = f->stack;
    f->uc.uc_stack.ss_size = FIBER_STACK;
    f->uc.uc_link = nullptr;
    makecontext(&f->uc, fiber_entry_uc, 0);
#endif
    return f;
}

HREMU_SCHED bool
released(const Fiber *f)
{
    const Sched &S = g_sched;
    if (f->wait == 1)
        return S.block_gen != f->gen;
    if (f->wait == 2)
        return S.warp_gen[f->tid / 32] != f->gen;
    return true;
}

std::mutex g_launch_m;   // one launch at a time (the __shared__ statics, the globals)

/* The order of a launch's threads and blocks. A real GPU promises none: its
 * warps run in any interleaving, the threads of a warp are not in lockstep
 * (Volta and later), and blocks run in any order, at once or one after
 * another. Forward order (thread 0 first, blocks by x, y, z) hides a kernel
 * that reads what another thread or block writes without a barrier between
 * them; HEARTH_CUDA_EMU_ORDER=reverse runs the warps, the threads of a warp
 * and the blocks last to first, and shuffle[:SEED] threads and blocks in a
 * random order drawn anew for each launch (seeded, so a failure repeats), so
 * such a kernel computes something else and its test fails. Each order
 * catches what another misses: a thread 0 that reads what the other warps
 * wrote fails forward, one that overwrites what they still read fails in
 * reverse. */
void
plan_schedule(Sched &S, dim3 grid, int nt)
{
    static const int mode = [] {
        const char *e = getenv("HEARTH_CUDA_EMU_ORDER");
        if (!e || !*e || !strcmp(e, "forward"))
            return 0;
        if (!strcmp(e, "reverse"))
            return 1;
        if (!strncmp(e, "shuffle", 7)) {
            g_sched.seed = e[7] == ':' ? strtoul(e + 8, nullptr, 10) : 1;
            return 2;
        }
        fprintf(stderr, "cuda-emu: HEARTH_CUDA_EMU_ORDER=%s: forward, reverse or shuffle[:SEED]\n", e);
        abort();
    }();
    static const bool poison = [] {
        const char *e = getenv("HEARTH_CUDA_EMU_POISON");
        return !e || strcmp(e, "0") != 0;
    }();
    S.poison = poison;
    S.mode = mode;
    if (mode != 2)
        return;
    std::iota(S.order, S.order + nt, 0);
    S.perm.resize((size_t)grid.x * grid.y * grid.z);
    std::iota(S.perm.begin(), S.perm.end(), 0u);
    std::mt19937_64 r(S.seed++);
    std::shuffle(S.order, S.order + nt, r);
    std::shuffle(S.perm.begin(), S.perm.end(), r);
    for (int i = 0; i < nt; i++)
        S.pos[S.order[i]] = i;
}

}  // namespace

HREMU_SCHED void
block_barrier()
{
    Sched &S = g_sched;
    Fiber *f = S.cur;
    f->wait = 1;
    f->gen = S.block_gen;
    if (++S.block_count == S.nt) {
        S.block_count = 0;
        S.block_gen++;
    }
    wait_released(f);
    f->wait = 0;
}

HREMU_SCHED void
warp_barrier()
{
    Sched &S = g_sched;
    Fiber *f = S.cur;
    const int w = f->tid / 32;
    f->wait = 2;
    f->gen = S.warp_gen[w];
    if (++S.warp_count[w] == 32) {
        S.warp_count[w] = 0;
        S.warp_gen[w]++;
    }
    wait_released(f);
    f->wait = 0;
}

Stats &
stats()
{
    static Stats s = [] {
        Stats z = {};
        const char *e = getenv("HEARTH_CUDA_EMU_MIB");
        z.total_bytes = (size_t)(e ? atol(e) : 2048) << 20;
        return z;
    }();
    return s;
}

void
launch(dim3 grid, dim3 block, const std::function<void()> &kernel)
{
    std::lock_guard<std::mutex> one(g_launch_m);
    const int nt = (int)block.x;
    if (nt <= 0 || nt % 32 || block.y != 1 || block.z != 1 || nt > MAX_THREADS) {
        fprintf(stderr, "cuda-emu: unsupported block %ux%ux%u\n", block.x, block.y, block.z);
        abort();
    }
    /* a real device refuses these (cudaErrorInvalidConfiguration, an empty
     * grid too): say so here too */
    if (grid.x > 0x7fffffffu || grid.y > 65535u || grid.z > 65535u || grid.x == 0 || grid.y == 0 || grid.z == 0) {
        fprintf(stderr, "cuda-emu: grid %ux%ux%u past the device's limits (1..2^31-1 x 1..65535 x 1..65535)\n",
                grid.x, grid.y, grid.z);
        abort();
    }
    Sched &S = g_sched;
    plan_schedule(S, grid, nt);
    while (S.n_fibers < nt) {
        S.fibers[S.n_fibers] = new_fiber(S.n_fibers);
        S.n_fibers++;
    }
    g_block_dim = block;
    g_grid_dim = grid;
    S.kernel = &kernel;
    S.nt = nt;
    S.block_count = 0;
    for (int w = 0; w < nt / 32; w++)
        S.warp_count[w] = 0;
    for (int i = 0; i < nt; i++) {
        S.fibers[i]->done = false;
        S.fibers[i]->wait = 0;
        g_lane_parity[i] = 0;
        g_mma_parity[i] = 0;
    }
    /* Thread 0 starts; a thread that waits at a barrier, or has finished,
     * hands over to the next one that can run; the last to finish comes
     * back here. */
    S.left = nt;
    S.blocks_begun = 0;
    switch_to(nullptr, S.fibers[S.mode == 0 ? 0 : S.mode == 1 ? nt - 1 : S.order[0]]);
    S.kernel = nullptr;
}

bool
capturing(cudaStream_t s)
{
    return s && s->capturing;
}

/* HEARTH_CUDA_EMU_ASYNC=1: work on a created stream waits in its queue until
 * something makes the host wait for it (cudaStreamSynchronize, an event's
 * cudaEventSynchronize up to that event, cudaDeviceSynchronize, cudaFree,
 * cudaFreeHost, a copy to pageable host memory, work on the legacy stream for
 * a blocking stream), as a GPU runs it later than the call. A host that reads
 * a result before it waits, writes a pinned buffer an earlier copy has not
 * read yet, or relies on one stream's work before another's without an event
 * then sees what it would see on a device, and its test fails. Otherwise
 * (the default) every call runs at once. */
bool
deferred()
{
    static const bool on = [] {
        const char *e = getenv("HEARTH_CUDA_EMU_ASYNC");
        return e && *e && strcmp(e, "0") != 0;
    }();
    return on;
}

std::set<cudaStream_t> g_streams;   // the live created streams

/* Stream capture's rules. While a stream captures, a real driver refuses a
 * call that would wait for the device or use the legacy stream, and the
 * capture is invalidated: cudaMalloc, cudaFree and their pinned kin, a
 * synchronous copy or set, a device synchronize, a synchronize of the
 * capturing stream or of an event recorded into the capture, work on the
 * legacy stream while a blocking stream captures, an async copy between the
 * capturing stream and pageable memory. The backend then decodes without its
 * graph (capture() falls back), correctly and slower, and no test would see
 * it; here such a call stops the program with its name. A global-mode
 * capture restricts every thread, a thread-local one its own thread, a
 * relaxed one none; the legacy stream and the capturing stream itself are
 * out of bounds in every mode. */
struct Capture {
    cudaStream_t s;
    cudaStreamCaptureMode mode;
    std::thread::id thread;
};
std::mutex g_cap_m;
std::vector<Capture> g_captures;

[[noreturn]] void
capture_violation(const char *what, const Capture &c)
{
    fprintf(stderr, "cuda-emu: %s while a stream captures (%s mode): a device refuses it and invalidates the "
                    "capture, so the graph would be lost\n", what,
            c.mode == cudaStreamCaptureModeGlobal ? "global" :
            c.mode == cudaStreamCaptureModeThreadLocal ? "thread-local" : "relaxed");
    abort();
}

void
end_capture(cudaStream_t s)
{
    s->capturing = false;
    std::lock_guard<std::mutex> lk(g_cap_m);
    g_captures.erase(std::remove_if(g_captures.begin(), g_captures.end(), [s](const Capture &c) { return c.s == s; }),
                     g_captures.end());
}

/* A call that may wait for the device, from this thread. */
void
check_unsafe(const char *what)
{
    std::lock_guard<std::mutex> lk(g_cap_m);
    for (const Capture &c : g_captures)
        if (c.mode == cudaStreamCaptureModeGlobal ||
            (c.mode == cudaStreamCaptureModeThreadLocal && c.thread == std::this_thread::get_id()))
            capture_violation(what, c);
}

/* A wait that no capture in progress allows, whatever its mode or thread. */
void
check_any(const char *what)
{
    std::lock_guard<std::mutex> lk(g_cap_m);
    if (!g_captures.empty())
        capture_violation(what, g_captures[0]);
}

/* Work on the legacy stream, or a wait for stream s (nullptr: none). */
void
check_stream(const char *what, cudaStream_t s, bool legacy)
{
    std::lock_guard<std::mutex> lk(g_cap_m);
    for (const Capture &c : g_captures)
        if ((legacy && c.s->blocking) || (s && c.s == s))
            capture_violation(what, c);
}

void
flush_stream(cudaStream_t s, const cudaEvent_t until = nullptr)
{
    while (!s->pending.empty() && !(until && until->done)) {
        std::function<void()> op = std::move(s->pending.front());
        s->pending.pop_front();
        op();
    }
}

void
flush_all(bool blocking_only)
{
    for (cudaStream_t s : g_streams)
        if (!blocking_only || s->blocking)
            flush_stream(s);
}

/* Work on stream s: into its graph while capturing; deferred onto a created
 * stream's queue; else now (on the legacy stream, after the blocking streams'
 * work, as the legacy stream waits for theirs). */
void
submit(cudaStream_t s, std::function<void()> op)
{
    if (!s)
        check_stream("work on the legacy stream", nullptr, true);
    if (capturing(s)) {
        s->graph->ops.push_back(std::move(op));
    } else if (deferred() && s) {
        s->pending.push_back(std::move(op));
    } else {
        if (deferred() && !s)
            flush_all(true);
        op();
    }
}

/* A device failure (hr_cuda_emu_fail_launch_at): the launches run since it was set, the one that faults
 * (0: none), and the sticky error every call returns from then on, as a real context does after a kernel
 * fault, until hr_cuda_emu_reset (cudaDeviceReset's part). Nothing runs on a failed device. */
std::atomic<long> g_launches, g_fail_launch_at;
std::atomic<int> g_sticky;

void
launch_on(cudaStream_t s, dim3 grid, dim3 block, std::function<void()> kernel)
{
    submit(s, [grid, block, kernel] {
        if (g_sticky)
            return;
        if (g_fail_launch_at > 0 && ++g_launches == g_fail_launch_at) {
            g_sticky = cudaErrorLaunchFailure;
            return;
        }
        launch(grid, block, kernel);
    });
}

namespace {

struct BlasHandle {
    cudaStream_t s;
    Live<LIVE_BLAS> live;
};

float
elem(const void *p, cudaDataType t, size_t i)
{
    return t == CUDA_R_16F ? __half2float(((const __half *)p)[i]) : ((const float *)p)[i];
}

}  // namespace

cublasStatus_t
cublas_create(cublasHandle_t *h)
{
    if (object_fails()) {
        *h = nullptr;
        return CUBLAS_STATUS_ALLOC_FAILED;
    }
    *h = (cublasHandle_t) new BlasHandle();
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t
cublas_destroy(cublasHandle_t h)
{
    delete (BlasHandle *)h;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t
cublas_set_stream(cublasHandle_t h, cudaStream_t s)
{
    ((BlasHandle *)h)->s = s;
    return CUBLAS_STATUS_SUCCESS;
}

/* C = alpha op(A) op(B) + beta C, column-major, as the BLAS reference defines
 * it; FP32 output with FP32 (here double) accumulation. */
cublasStatus_t
cublas_gemm_ex(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void *alpha,
               const void *A, cudaDataType at, int lda, const void *B, cudaDataType bt, int ldb, const void *beta,
               void *C, cudaDataType ct, int ldc, cublasComputeType_t comp, cublasGemmAlgo_t algo)
{
    (void)algo;
    if (ct != CUDA_R_32F || comp != CUBLAS_COMPUTE_32F || (at != CUDA_R_16F && at != CUDA_R_32F) ||
        (bt != CUDA_R_16F && bt != CUDA_R_32F) || m < 0 || n < 0 || k < 0)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    const float a = *(const float *)alpha, b = *(const float *)beta;
    auto run = [=] {
        float *c = (float *)C;
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) {
                double acc = 0;
                for (int l = 0; l < k; l++) {
                    const size_t ia = ta == CUBLAS_OP_N ? (size_t)l * lda + i : (size_t)i * lda + l;
                    const size_t ib = tb == CUBLAS_OP_N ? (size_t)j * ldb + l : (size_t)l * ldb + j;
                    acc += (double)elem(A, at, ia) * elem(B, bt, ib);
                }
                float &o = c[(size_t)j * ldc + i];
                o = (float)(a * acc + (b != 0.0f ? (double)b * o : 0.0));
            }
    };
    submit(((BlasHandle *)h)->s, run);
    return CUBLAS_STATUS_SUCCESS;
}

}  // namespace hremu

using hremu::stats;

namespace {

std::mutex g_mem_m;
std::map<void *, size_t> g_device_allocs;

double
now_ms()
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* A copy or set on a stream: now, into its graph, or into its queue. */
cudaError_t
on_stream(cudaStream_t s, std::function<void()> op)
{
    hremu::submit(s, std::move(op));
    return cudaSuccess;
}

std::map<void *, size_t> g_pinned;   // cudaMallocHost's blocks

/* Fault injection (hr_cuda_emu_fail_alloc_at): the allocation calls counted
 * since it was set, and which one fails (0: none). */
long g_alloc_calls, g_fail_at;

/* Whether this allocation is the one to fail; under g_mem_m. */
bool
alloc_fails()
{
    return g_fail_at > 0 && ++g_alloc_calls == g_fail_at;
}

}  // namespace

bool
hremu::object_fails()
{
    std::lock_guard<std::mutex> lk(g_mem_m);
    return alloc_fails();
}

namespace {

/* Whether p lies in one of the blocks of m (base -> bytes). */
bool
in_blocks(const std::map<void *, size_t> &m, const void *p)
{
    auto it = m.upper_bound(const_cast<void *>(p));
    if (it == m.begin())
        return false;
    --it;
    return (const char *)p < (const char *)it->first + it->second;
}

}  // namespace

/* The call's result on a failed device (hremu::g_sticky): that error. */
#define STICKY()                                                                                              \
    do {                                                                                                      \
        if (hremu::g_sticky)                                                                                  \
            return (cudaError_t)hremu::g_sticky.load();                                                       \
    } while (0)
/* A call that frees or destroys: it does, and says the device failed (what the runtime reclaims on a real
 * device after that is its own affair; the tests count what the backend gave back). */
#define STICKY_RESULT() (hremu::g_sticky ? (cudaError_t)hremu::g_sticky.load() : cudaSuccess)

extern "C" {

cudaError_t CUDARTAPI
cudaGetDeviceCount(int *count)
{
    *count = 1;
    return cudaSuccess;
}

cudaError_t CUDARTAPI
cudaSetDevice(int device)
{
    STICKY();
    return device == 0 ? cudaSuccess : cudaErrorInvalidDevice;
}

cudaError_t CUDARTAPI
cudaGetDevice(int *device)
{
    *device = 0;
    return cudaSuccess;
}

cudaError_t CUDARTAPI
cudaGetDeviceProperties(cudaDeviceProp *prop, int device)
{
    if (device != 0)
        return cudaErrorInvalidDevice;
    memset(prop, 0, sizeof *prop);
    snprintf(prop->name, sizeof prop->name, "Hearth CUDA emulator (host)");
    prop->major = 8;
    prop->minor = 0;
    prop->multiProcessorCount = 4;
    prop->totalGlobalMem = stats().total_bytes;
    prop->warpSize = 32;
    prop->maxThreadsPerBlock = 1024;
    prop->sharedMemPerBlock = 48 << 10;
    prop->l2CacheSize = 4 << 20;
    prop->memoryBusWidth = 256;
    return cudaSuccess;
}

cudaError_t CUDARTAPI
cudaMemGetInfo(size_t *free_b, size_t *total_b)
{
    STICKY();
    std::lock_guard<std::mutex> lk(g_mem_m);
    *total_b = stats().total_bytes;
    *free_b = stats().total_bytes - stats().allocated_bytes;
    return cudaSuccess;
}

cudaError_t CUDARTAPI
cudaMalloc(void **p, size_t bytes)
{
    hremu::check_unsafe("cudaMalloc");
    *p = nullptr;
    STICKY();
    std::lock_guard<std::mutex> lk(g_mem_m);
    if (alloc_fails() || bytes > stats().total_bytes - stats().allocated_bytes)
        return cudaErrorMemoryAllocation;
    void *m = aligned_alloc(256, (bytes + 255) / 256 * 256 + 256);
    if (!m)
        return cudaErrorMemoryAllocation;
    memset(m, 0xA5, (bytes + 255) / 256 * 256 + 256);   // device memory starts as garbage
    g_device_allocs[m] = bytes;
    stats().allocated_bytes += bytes;
    *p = m;
    return cudaSuccess;
}

cudaError_t CUDARTAPI
cudaFree(void *p)
{
    if (!p)
        return cudaSuccess;
    hremu::check_unsafe("cudaFree");
    if (hremu::deferred())
        hremu::flush_all(false);   // cudaFree waits for the device
    std::lock_guard<std::mutex> lk(g_mem_m);
    auto it = g_device_allocs.find(p);
    if (it == g_device_allocs.end())
        return cudaErrorInvalidValue;
    stats().allocated_bytes -= it->second;
    g_device_allocs.erase(it);
    free(p);
    return STICKY_RESULT();
}

cudaError_t CUDARTAPI
cudaMallocHost(void **p, size_t bytes)
{
    hremu::check_unsafe("cudaMallocHost");
    *p = nullptr;
    STICKY();
    std::lock_guard<std::mutex> lk(g_mem_m);
    *p = alloc_fails() ? nullptr : aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!*p)
        return cudaErrorMemoryAllocation;
    g_pinned[*p] = bytes;
    return cudaSuccess;
}

cudaError_t CUDARTAPI
cudaHostAlloc(void **p, size_t bytes, unsigned int)
{
    return cudaMallocHost(p, bytes);
}

cudaError_t CUDARTAPI
cudaFreeHost(void *p)
{
    hremu::check_unsafe("cudaFreeHost");
    if (hremu::deferred())
        hremu::flush_all(false);   // as cudaFree
    {
        std::lock_guard<std::mutex> lk(g_mem_m);
        g_pinned.erase(p);
    }
    free(p);
    return STICKY_RESULT();
}

cudaError_t CUDARTAPI
cudaMemcpy(void *dst, const void *src, size_t n, enum cudaMemcpyKind)
{
    hremu::check_unsafe("cudaMemcpy");
    hremu::check_stream("cudaMemcpy (the legacy stream)", nullptr, true);
    STICKY();
    if (hremu::deferred())
        hremu::flush_all(true);   // the legacy stream's copy, after the blocking streams' work
    memmove(dst, src, n);
    return cudaSuccess;
}

/* Deferred, a copy from pageable host memory takes its bytes at the call (the
 * driver stages them before returning), and one to pageable host memory
 * returns only when done (after the stream's earlier work); pinned memory and
 * device memory are read and written when the stream gets to the copy. */
cudaError_t CUDARTAPI
cudaMemcpyAsync(void *dst, const void *src, size_t n, enum cudaMemcpyKind, cudaStream_t s)
{
    STICKY();
    if (hremu::capturing(s)) {
        std::lock_guard<std::mutex> lk(g_mem_m);
        const bool src_pageable = !in_blocks(g_device_allocs, src) && !in_blocks(g_pinned, src);
        const bool dst_pageable = !in_blocks(g_device_allocs, dst) && !in_blocks(g_pinned, dst);
        if (src_pageable || dst_pageable)
            hremu::check_stream("cudaMemcpyAsync between the capturing stream and pageable host memory", s, false);
    }
    if (!hremu::deferred() || !s || hremu::capturing(s))
        return on_stream(s, [=] { memmove(dst, src, n); });
    bool src_host, dst_host;
    {
        std::lock_guard<std::mutex> lk(g_mem_m);
        src_host = !in_blocks(g_device_allocs, src) && !in_blocks(g_pinned, src);
        dst_host = !in_blocks(g_device_allocs, dst) && !in_blocks(g_pinned, dst);
    }
    if (dst_host) {
        hremu::flush_stream(s);
        memmove(dst, src, n);
        return cudaSuccess;
    }
    if (src_host) {
        auto bytes = std::make_shared<std::vector<char>>((const char *)src, (const char *)src + n);
        return on_stream(s, [=] { memcpy(dst, bytes->data(), n); });
    }
    return on_stream(s, [=] { memmove(dst, src, n); });
}

cudaError_t CUDARTAPI
cudaMemset(void *dst, int v, size_t n)
{
    hremu::check_unsafe("cudaMemset");
    hremu::check_stream("cudaMemset (the legacy stream)", nullptr, true);
    STICKY();
    if (hremu::deferred())
        hremu::flush_all(true);
    memset(dst, v, n);
    return cudaSuccess;
}

cudaError_t CUDARTAPI
cudaMemsetAsync(void *dst, int v, size_t n, cudaStream_t s)
{
    STICKY();
    return on_stream(s, [=] { memset(dst, v, n); });
}

cudaError_t CUDARTAPI
cudaStreamCreate(cudaStream_t *s)
{
    return cudaStreamCreateWithFlags(s, cudaStreamDefault);
}

cudaError_t CUDARTAPI
cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int flags)
{
    STICKY();
    if (hremu::object_fails())
        return cudaErrorMemoryAllocation;
    *s = new CUstream_st();
    (*s)->blocking = !(flags & cudaStreamNonBlocking);
    std::lock_guard<std::mutex> lk(g_mem_m);
    hremu::g_streams.insert(*s);
    return cudaSuccess;
}

cudaError_t CUDARTAPI
cudaStreamDestroy(cudaStream_t s)
{
    if (!s)
        return cudaSuccess;
    hremu::flush_stream(s);   // its work still completes
    if (s->capturing) {
        hremu::end_capture(s);
        delete s->graph;
    }
    {
        std::lock_guard<std::mutex> lk(g_mem_m);
        hremu::g_streams.erase(s);
    }
    delete s;
    return STICKY_RESULT();
}

cudaError_t CUDARTAPI
cudaStreamSynchronize(cudaStream_t s)
{
    hremu::check_stream("cudaStreamSynchronize", s, !s);
    if (s)
        hremu::flush_stream(s);
    else if (hremu::deferred())
        hremu::flush_all(true);
    return STICKY_RESULT();
}

cudaError_t CUDARTAPI
cudaDeviceSynchronize(void)
{
    hremu::check_any("cudaDeviceSynchronize");
    hremu::flush_all(false);
    return STICKY_RESULT();
}

cudaError_t CUDARTAPI
cudaStreamBeginCapture(cudaStream_t s, enum cudaStreamCaptureMode mode)
{
    STICKY();
    if (!s || s->capturing)
        return cudaErrorIllegalState;
    s->capturing = true;
    s->graph = new CUgraph_st();
    std::lock_guard<std::mutex> lk(hremu::g_cap_m);
    hremu::g_captures.push_back({ s, mode, std::this_thread::get_id() });
    return cudaSuccess;
}

cudaError_t CUDARTAPI
cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g)
{
    if (!s || !s->capturing)
        return cudaErrorIllegalState;
    hremu::end_capture(s);
    *g = s->graph;
    s->graph = nullptr;
    if (hremu::g_sticky) {   // no graph from a failed device
        delete *g;
        *g = nullptr;
    }
    return STICKY_RESULT();
}

cudaError_t CUDARTAPI
cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t g, unsigned long long)
{
    STICKY();
    if (hremu::object_fails())
        return cudaErrorMemoryAllocation;
    *exec = new CUgraphExec_st{ g->ops, {} };
    return cudaSuccess;
}

cudaError_t CUDARTAPI
cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s)
{
    STICKY();
    if (hremu::capturing(s))
        return cudaErrorStreamCaptureUnsupported;
    if (hremu::deferred() && s) {
        hremu::submit(s, [ops = exec->ops] {   // a copy: the exec may be destroyed before it runs
            for (auto &op : ops)
                op();
        });
        return cudaSuccess;
    }
    for (auto &op : exec->ops)
        op();
    return cudaSuccess;
}

cudaError_t CUDARTAPI
cudaGraphDestroy(cudaGraph_t g)
{
    delete g;
    return cudaSuccess;
}

cudaError_t CUDARTAPI
cudaGraphExecDestroy(cudaGraphExec_t e)
{
    delete e;
    return cudaSuccess;
}

cudaError_t CUDARTAPI
cudaEventCreate(cudaEvent_t *e)
{
    STICKY();
    if (hremu::object_fails())
        return cudaErrorMemoryAllocation;
    *e = new CUevent_st{ 0.0, nullptr, true, false, {} };
    return cudaSuccess;
}

cudaError_t CUDARTAPI
cudaEventCreateWithFlags(cudaEvent_t *e, unsigned int)
{
    return cudaEventCreate(e);
}

cudaError_t CUDARTAPI
cudaEventDestroy(cudaEvent_t e)
{
    delete e;
    return cudaSuccess;
}

cudaError_t CUDARTAPI
cudaEventRecord(cudaEvent_t e, cudaStream_t s)
{
    STICKY();
    if (hremu::deferred() && s && !hremu::capturing(s)) {
        e->stream = s;
        e->done = false;
    }
    e->captured = hremu::capturing(s);
    return on_stream(s, [e] {
        e->ms = now_ms();
        e->done = true;
    });
}

cudaError_t CUDARTAPI
cudaEventSynchronize(cudaEvent_t e)
{
    if (e->captured)
        hremu::check_any("cudaEventSynchronize on an event recorded into the capture");
    if (e->stream && !e->done)
        hremu::flush_stream(e->stream, e);
    return STICKY_RESULT();
}

cudaError_t CUDARTAPI
cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b)
{
    *ms = (float)(b->ms - a->ms);
    return cudaSuccess;
}

cudaError_t CUDARTAPI
cudaGetLastError(void)
{
    return STICKY_RESULT();   // sticky: not cleared
}

const char *CUDARTAPI
cudaGetErrorString(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorMemoryAllocation: return "out of memory (emulated device)";
    case cudaErrorLaunchFailure: return "unspecified launch failure (emulated device)";
    default: return "error (emulated device)";
    }
}

}  // extern "C"

/* An nvcc-compiled kernel launched here means the engine's real backend ran
 * where the emulated one was meant to (its kernels would silently not run):
 * stop loudly. nvcc's launch stubs call __cudaLaunchKernel (CUDA 13) or
 * cudaLaunchKernel. */
[[noreturn]] static void
real_kernel_launched()
{
    fprintf(stderr, "cuda-emu: a kernel compiled by nvcc was launched: the real CUDA backend ran, not the emulated "
                    "one (hr_backend_register it, or call hr_cuda_emu_backend)\n");
    abort();
}

extern "C" cudaError_t CUDARTAPI
cudaLaunchKernel(const void *, dim3, dim3, void **, size_t, cudaStream_t)
{
    real_kernel_launched();
}

extern "C" void
__cudaLaunchKernel(void)
{
    real_kernel_launched();
}

/* Fault injection for the tests: the n-th device or pinned allocation
 * (cudaMalloc, cudaMallocHost, cudaHostAlloc) or object creation (a stream,
 * an event, a graph's instantiation, a cuBLAS handle) from now fails as out
 * of memory (n >= 1; 0: none). Returns how many allocations were made since
 * the last call. */
extern "C" long
hr_cuda_emu_fail_alloc_at(long n)
{
    std::lock_guard<std::mutex> lk(g_mem_m);
    const long made = g_alloc_calls;
    g_alloc_calls = 0;
    g_fail_at = n;
    return made;
}

/* Fault injection for the tests: the n-th kernel launch from now (run, or replayed from a graph) faults,
 * and every call after it returns cudaErrorLaunchFailure (n >= 1; 0: none), until hr_cuda_emu_reset.
 * Returns how many launches ran since the last call. */
extern "C" long
hr_cuda_emu_fail_launch_at(long n)
{
    const long ran = hremu::g_launches.exchange(0);
    hremu::g_fail_launch_at = n;
    return ran;
}

/* The device working again (what cudaDeviceReset does for a failed context). */
extern "C" void
hr_cuda_emu_reset(void)
{
    hremu::g_fail_launch_at = 0;
    hremu::g_launches = 0;
    hremu::g_sticky = 0;
}

/* Objects alive now: streams, events, graphs, graph execs and cuBLAS
 * handles, with what (when not NULL) naming them by kind. */
extern "C" long
hr_cuda_emu_objects(char *what, size_t len)
{
    static const char *const names[hremu::LIVE_N] = { "stream", "event", "graph", "graph exec", "cuBLAS handle" };
    long total = 0;
    if (what && len)
        what[0] = '\0';
    for (int k = 0; k < hremu::LIVE_N; k++) {
        const long n = hremu::g_live[k];
        total += n;
        if (n && what && len) {
            const size_t used = strlen(what);
            snprintf(what + used, len - used, "%s%ld %s", used ? ", " : "", n, names[k]);
        }
    }
    return total;
}

/* What is allocated now: device bytes and blocks, pinned blocks. */
extern "C" void
hr_cuda_emu_memory(size_t *device_bytes, size_t *device_blocks, size_t *pinned_blocks)
{
    std::lock_guard<std::mutex> lk(g_mem_m);
    *device_bytes = stats().allocated_bytes;
    *device_blocks = g_device_allocs.size();
    *pinned_blocks = g_pinned.size();
}
