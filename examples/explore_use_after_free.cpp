// A use after free, found by the schedule explorer where stress does not.
//
// The device extension points to a reference-counted context; the device
// holds one reference through that pointer. A request takes the pointer and
// a reference of its own; closing the device takes the pointer away and
// drops the device's reference, and whoever drops the last one frees the
// context with ExFreePoolWithTag. The request reads the pointer and takes
// its reference in two steps:
//
//     request:  ctx = ext->Context;                  // (1)
//               ReferenceContext(ctx);               // (3) BUG: ctx may be gone
//     close:    ctx = InterlockedExchangePointer(&ext->Context, NULL);
//               DereferenceContext(ctx);             // (2) 1 -> 0: freed
//
// When the close (2) falls between the request's (1) and (3), the request
// counts a reference in freed pool and serves the request with it. On real
// threads that window is a few instructions wide: 10^5 rounds, with freed
// blocks kept poisoned to catch a late write (as Driver Verifier's special
// pool does), see none. Under the explorer, ExFreePoolWithTag marks the
// freed block destroyed, and the request's access is reported as an access
// to destroyed memory, with the schedule.
//
// The fix: take the pointer and the reference under the lock that the close
// takes the pointer away under (a FAST_MUTEX here).
//
// The context's counters and the pointer go through a Platform P, as
// kmlab's lock algorithms do (platform/platform.hpp): std::atomic on real
// threads (the Interlocked routines), the explorer's memory under it, where
// each access is a scheduling point and checked against freed blocks.
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include <kmlab/kernel/pool.hpp>
#include "explore_example.hpp"

namespace {
using namespace kmlab::nt;
using example::explore::Platform;
constexpr ULONG kTag = 0x78746344;  // 'Dctx'

template <class P>
struct DeviceContext {
    typename P::template atomic<LONG> References{1};  // the device's
    typename P::template atomic<LONG> RequestsServed{0};
};

template <class P>
struct DeviceExtension {
    FAST_MUTEX ContextLock;  // the fix: Context, and a reference taken through it
    typename P::template atomic<DeviceContext<P>*> Context{nullptr};
};

template <class P>
void ReferenceContext(DeviceContext<P>* ctx) {
    ctx->References.fetch_add(1);
}

template <class P>
void DereferenceContext(DeviceContext<P>* ctx) {
    if (ctx->References.fetch_sub(1) == 1) {
        ctx->~DeviceContext<P>();
        ExFreePoolWithTag(ctx, kTag);
    }
}

// A request (a system thread): serves itself with the device's context, if
// the device is still open.
template <class P, bool Fixed>
VOID ServeRequest(PVOID Context) {
    auto* ext = static_cast<DeviceExtension<P>*>(Context);
    DeviceContext<P>* ctx;
    if constexpr (Fixed) {
        ExAcquireFastMutex(&ext->ContextLock);
        ctx = ext->Context.load();
        if (ctx != nullptr) ReferenceContext(ctx);
        ExReleaseFastMutex(&ext->ContextLock);
    } else {
        ctx = ext->Context.load();
        if (ctx != nullptr) ReferenceContext(ctx);  // BUG: a close since the load freed ctx
    }
    if (ctx != nullptr) {
        ctx->RequestsServed.fetch_add(1);
        DereferenceContext(ctx);
    }
    PsTerminateSystemThread(STATUS_SUCCESS);
}

// Closing the device: the context goes, with the device's reference.
template <class P, bool Fixed>
void CloseDevice(DeviceExtension<P>* ext) {
    DeviceContext<P>* ctx;
    if constexpr (Fixed) {
        ExAcquireFastMutex(&ext->ContextLock);
        ctx = ext->Context.exchange(nullptr);
        ExReleaseFastMutex(&ext->ContextLock);
    } else {
        ctx = ext->Context.exchange(nullptr);
    }
    if (ctx != nullptr) DereferenceContext(ctx);
}

// The test body: open the device, start a request, close the device while
// the request runs, join the request.
template <class P, bool Fixed>
void RequestRacingClose() {
    DeviceExtension<P> ext;
    ExInitializeFastMutex(&ext.ContextLock);
    void* block = ExAllocatePoolWithTag(NonPagedPool, sizeof(DeviceContext<P>), kTag);
    if (block == nullptr) std::abort();
    auto* ctx = new (block) DeviceContext<P>;
    if (kmlab::explore::active()) {
        kmlab::explore::label(ctx, sizeof *ctx, "DeviceContext");
        kmlab::explore::label(&ext.Context, sizeof ext.Context, "ext->Context");
    }
    ext.Context.store(ctx);
    PVOID request = example::StartSystemThread(ServeRequest<P, Fixed>, &ext);
    CloseDevice<P, Fixed>(&ext);
    example::JoinSystemThread(request);
}

// ---- freed pool on real threads ----

// Under the explorer, explore::run() marks each freed block destroyed
// itself (a later model access to it, or a kernel routine on an object in
// it, is a use after free). On real threads this hook does what special
// pool does: a freed block is filled with 0xDD and kept until the round
// ends; a byte changed by then is a write after free.
struct Quarantined {
    unsigned char* block;
    std::size_t size;
};
std::vector<Quarantined> g_quarantine;  // the creator frees, then checks, on one thread
bool Poison(void* block, std::size_t size) {
    if (kmlab::explore::active()) return false;  // explore::run()'s own hook decides there
    std::memset(block, 0xDD, size);
    g_quarantine.push_back({static_cast<unsigned char*>(block), size});
    return true;
}

// One stress round; true if a freed block was written.
bool StressOnce() {
    RequestRacingClose<kmlab::platform::Native, false>();
    bool written = false;
    for (const Quarantined& q : g_quarantine) {
        for (std::size_t i = 0; i < q.size; ++i) written = written || q.block[i] != 0xDD;
        kmlab::kernel::release_pool_block(q.block);
    }
    g_quarantine.clear();
    return written;
}
}  // namespace

int main() {
    example::Example ex;
    ex.name = "explore_use_after_free";
    ex.bug = "write after free";
    ex.expected = "destroyed memory";
    ex.buggy = [] { RequestRacingClose<Platform, false>(); };
    ex.fixed = [] { RequestRacingClose<Platform, true>(); };
    ex.stress_once = StressOnce;
    ex.verbose_trace = true;  // the loads and stores that lead to the free
    kmlab::kernel::set_pool_free_hook(Poison);
    const int rc = example::run_example(ex);
    kmlab::kernel::set_pool_free_hook(nullptr);
    return rc;
}
