#include <kmlab/kernel/thread.hpp>

#include <cxxabi.h>

#include <cstdlib>
#include <mutex>
#include <unordered_set>
#include <vector>

#include <kmlab/kernel/fast_mutex_inline.hpp>
#include <kmlab/kernel/rules.hpp>
#include <kmlab/kernel/verifier.hpp>

// This object's DSO handle, for __cxa_thread_atexit (defined by crtbegin).
extern "C" void* __dso_handle __attribute__((__visibility__("hidden")));

namespace kmlab::dispatcher {
// Thread rundown (kernel/src/dispatcher.cpp): abandons mutants, bug
// checks THREAD_TERMINATE_HELD_MUTEX, signals the thread object. Called by
// name, not through a hook that the dispatcher installs from a static
// initializer: a program linking libkmlab.a pulls dispatcher.o in through this
// reference whenever it uses thread.o, so no program can run without its
// thread-exit checks (a KMutex<T, Futex>-only program used to).
void rundown_thread(nt::PKTHREAD t);
// Gives back a Wait = TRUE hold of the dispatcher lock (dispatcher.cpp), by
// name for the same reason.
void drop_wait_next_hold(nt::PKTHREAD t) noexcept;
}  // namespace kmlab::dispatcher

namespace kmlab::kernel {

namespace {
std::atomic<std::uint64_t> g_next_thread_id{1};

// Every KTHREAD not yet freed, so that an ERESOURCE_THREAD a caller passes is
// checked before it is dereferenced (reference_thread_by_id).
std::mutex g_threads_lock;
std::unordered_set<nt::PKTHREAD>& live_threads() {
    static auto* set = new std::unordered_set<nt::PKTHREAD>;  // outlives every thread's exit
    return *set;
}
// KTHREADs never freed because an ERESOURCE has named them (ResourceHolds::
// named): an ERESOURCE_THREAD is the KTHREAD's address and may be used after
// the thread exits (ExReleaseResourceForThreadLite, an exclusive OwnerEntry
// left behind), so a new thread must never get that address. Kept here,
// reachable, for the leak checkers; guarded by g_threads_lock.
std::vector<nt::PKTHREAD>& retired_threads() {
    static auto* v = new std::vector<nt::PKTHREAD>;
    return *v;
}
// KTHREADs that exited holding FAST_MUTEXes / KGUARDED_MUTEXes
// (retire_gate_lock_holder): never freed either, since a mutex's Owner may
// name one for good, and a thread that meets that Owner asks here, by
// address, whether it names such a thread (a live owner's KTHREAD may be
// freed under the asker, so the answer is never read from the KTHREAD).
// Guarded by g_threads_lock.
std::unordered_set<nt::PKTHREAD>& gate_lock_holders_exited() {
    static auto* set = new std::unordered_set<nt::PKTHREAD>;
    return *set;
}

// Runs an attached thread's exit checks when its OS thread ends (a system
// thread's start-up code calls exit_current_thread() itself first, and this
// then finds nothing to do).
//
// Registered once per attachment with __cxa_thread_atexit, the call the
// compiler itself makes for a thread_local's destructor, and not through a
// thread_local guard object: such an object is constructed at most once per
// OS thread, so a thread_local destructor that ran after it and called into
// kmlab adopted a fresh KTHREAD whose exit checks never ran (and which was
// never freed). A registration made while the thread's thread_local
// destructors run is run after the destructor that made it (glibc's
// __call_tls_dtors loops until its list is empty), so a late adoption gets its
// checks too, on the main thread as well. Not covered: an adoption made from
// a pthread_key_create destructor, which glibc runs after every thread_local
// destructor.
void run_exit_checks(void*) noexcept {
    exit_current_thread();
}
}  // namespace

// Every emulated thread, system thread or adopted, starts where a system
// thread does: priority 8, the System process's base [kmt-KeEvent].
constexpr nt::SCHAR kInitialPriority = 8;

nt::PKTHREAD create_thread_object(bool system_thread) {
    auto* t = new nt::KTHREAD{};
    t->Header.Type = nt::ThreadObject;
    t->Header.Size = static_cast<nt::UCHAR>(sizeof(nt::KTHREAD) / sizeof(nt::ULONG));
    t->Header.SignalState = 0;
    nt::InitializeListHead(&t->Header.WaitListHead);
    nt::InitializeListHead(&t->MutantListHead);
    nt::InitializeListHead(&t->OwnedKMutexListHead);
    t->Irql = nt::PASSIVE_LEVEL;
    t->SystemThread = system_thread;
    t->Priority = kInitialPriority;
    t->BasePriority = kInitialPriority;
    t->Extra = new detail::ThreadExtra{};
    t->Extra->id = g_next_thread_id.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard g(g_threads_lock);
    // Under the lock, so that a set_flavor racing with the creation is seen
    // either here or by its set_verifier_gates (kernel/verifier.hpp).
    t->VerifierGate = kmlab::flavor() == Flavor::verifier ? 1 : 0;
    live_threads().insert(t);
    return t;
}

void detail::set_verifier_gates(bool on) noexcept {
    std::lock_guard g(g_threads_lock);
    // A relaxed byte store: each thread's fast path reads its own gate
    // without synchronization, and sees the change at its next lock call at
    // the latest (a flavour switch is meant for a quiet moment, as a test's
    // start).
    for (nt::PKTHREAD t : live_threads())
        std::atomic_ref<nt::UCHAR>(t->VerifierGate).store(on ? 1 : 0, std::memory_order_relaxed);
}

nt::PKTHREAD detail::adopt_current_thread() {
    nt::PKTHREAD t = create_thread_object(false);
    attach_current_thread(t);
    return t;
}

void attach_current_thread(nt::PKTHREAD thread) {
    if (__cxxabiv1::__cxa_thread_atexit(&run_exit_checks, nullptr, &__dso_handle) != 0)
        std::abort();  // out of memory: better than a thread without exit checks
    detail::tls_current_thread = thread;
}

void exit_current_thread() {
    nt::PKTHREAD t = detail::tls_current_thread;
    if (t == nullptr) return;
    // Driver Verifier's look first (0x100A for any lock still held), as its
    // thunks run before the kernel's own exit checks.
    if (verifier::on(t)) verifier::thread_exit(t);
    dispatcher::rundown_thread(t);
    detail::resource_thread_exit(t);
    detail::tls_current_thread = nullptr;
    detail::tls_gate_lock_thread = nullptr;  // fm: fast_mutex_inline.hpp's copy of it, with it
    dereference_thread(t);
}

// The reference count's two read-modify-writes, and the free. In the
// explorer's copy (explore/src/thread_seam.cpp), inside explore::run(): the
// count is model memory (each change a scheduling point) and a freed KTHREAD
// is marked destroyed and kept until the run is over (kernel_seam.hpp), so a
// reference dropped while another thread still uses the thread is reported.
#ifdef KMLAB_DISPATCHER_SEAM
namespace {
int add_reference(std::atomic<int>& refs, int delta, std::memory_order order) noexcept {
    return explore::kernel_seam::fetch_add(refs, delta, order);
}
void free_thread(nt::PKTHREAD thread) noexcept {
    if (explore::kernel_seam::free_thread_later(thread, thread->Extra)) return;
    delete thread->Extra;
    delete thread;
}
}  // namespace
#else
namespace {
int add_reference(std::atomic<int>& refs, int delta, std::memory_order order) noexcept {
    return refs.fetch_add(delta, order);
}
void free_thread(nt::PKTHREAD thread) noexcept {
    delete thread->Extra;
    delete thread;
}
}  // namespace
#endif

void reference_thread(nt::PKTHREAD thread) noexcept {
    add_reference(thread->Extra->references, 1, std::memory_order_relaxed);
}

void dereference_thread(nt::PKTHREAD thread) noexcept {
    // acq_rel: the last owner must see every write made through other references.
    if (add_reference(thread->Extra->references, -1, std::memory_order_acq_rel) == 1) {
        {
            std::lock_guard g(g_threads_lock);
            live_threads().erase(thread);
            if (thread->Extra->resource_holds.named()) {
                retired_threads().push_back(thread);
                return;
            }
            if (gate_lock_holders_exited().contains(thread)) return;  // kept there
        }
        free_thread(thread);
    }
}

nt::PKTHREAD reference_thread_by_id(nt::ULONG_PTR id) noexcept {
    auto* t = reinterpret_cast<nt::PKTHREAD>(id);
    std::lock_guard g(g_threads_lock);
    if (!live_threads().contains(t)) return nullptr;
    // A thread found here is not freed yet (its freer erases it under this
    // lock first), but its count may have reached 0: take a reference only
    // from a count that is not.
    auto& refs = t->Extra->references;
    int n = refs.load(std::memory_order_relaxed);
    do {
        if (n == 0) return nullptr;
    } while (!refs.compare_exchange_weak(n, n + 1, std::memory_order_relaxed));
    return t;
}

void detail::retire_gate_lock_holder(nt::PKTHREAD t) {
    std::lock_guard g(g_threads_lock);
    gate_lock_holders_exited().insert(t);
}

bool detail::exited_holding_gate_locks(nt::PKTHREAD t) noexcept {
    std::lock_guard g(g_threads_lock);
    return gate_lock_holders_exited().contains(t);
}

void detail::abandon_thread(nt::PKTHREAD t) noexcept {
    std::lock_guard g(g_threads_lock);
    live_threads().erase(t);
    t->Extra->gate_lock_wanted = 0;
    // Kept, as a retired thread is: never freed, and reachable (a leak
    // checker must not take a KTHREAD the run may still name for lost).
    retired_threads().push_back(t);
}

std::vector<nt::PKTHREAD> detail::reference_live_threads(nt::PKTHREAD except) {
    std::vector<nt::PKTHREAD> threads;
    std::lock_guard g(g_threads_lock);
    threads.reserve(live_threads().size());
    for (nt::PKTHREAD t : live_threads()) {
        if (t == except) continue;
        // As reference_thread_by_id: only from a count that is not 0.
        auto& refs = t->Extra->references;
        int n = refs.load(std::memory_order_relaxed);
        while (n != 0 && !refs.compare_exchange_weak(n, n + 1, std::memory_order_relaxed)) {
        }
        if (n != 0) threads.push_back(t);
    }
    return threads;
}

void before_unwind() noexcept {
    nt::PKTHREAD t = detail::tls_current_thread;
    if (t == nullptr || !t->WaitNext) return;
    dispatcher::drop_wait_next_hold(t);
}

void require_irql_at_most(nt::KIRQL max, const void* object) {
    enforce(check_irql_at_most(max, current_thread()->Irql, object));
}

void require_irql_documented(nt::KIRQL documented, nt::KIRQL windows, const void* object) {
    enforce_in_flavor(check_irql_documented(documented, windows, current_thread()->Irql, object));
}

}  // namespace kmlab::kernel

namespace kmlab::nt {
using kmlab::kernel::current_thread;

PKTHREAD KeGetCurrentThread() {
    return current_thread();
}
PETHREAD PsGetCurrentThread() {
    return current_thread();
}
BOOLEAN PsIsSystemThread(PETHREAD Thread) {
    return Thread->SystemThread;
}

KIRQL KeGetCurrentIrql() {
    return current_thread()->Irql;
}

KIRQL KfRaiseIrql(KIRQL NewIrql) {
    PKTHREAD t = current_thread();
    const KIRQL old = t->Irql;
    kmlab::kernel::enforce_in_flavor(kmlab::kernel::check_raise_irql(old, NewIrql));
    t->Irql = NewIrql;
    return old;
}

void KeRaiseIrql(KIRQL NewIrql, PKIRQL OldIrql) {
    *OldIrql = KfRaiseIrql(NewIrql);
}

void KfLowerIrql(KIRQL NewIrql) {
    PKTHREAD t = current_thread();
    kmlab::kernel::enforce_in_flavor(kmlab::kernel::check_lower_irql(t->Irql, NewIrql));
    t->Irql = NewIrql;
}

void KeLowerIrql(KIRQL NewIrql) {
    KfLowerIrql(NewIrql);
}
KIRQL KeRaiseIrqlToDpcLevel() {
    return KfRaiseIrql(DISPATCH_LEVEL);
}
KIRQL KeRaiseIrqlToSynchLevel() {
    return KfRaiseIrql(SYNCH_LEVEL);
}

// Documented for IRQL <= APC_LEVEL [ddi:keentercriticalregion]
// [ddi:keenterguardedregion]: the verifier flavour follows it for critical
// regions, the checked one for guarded regions (a checked build's ASSERT). Windows is
// looser, and the free flavour follows it: critical regions have no IRQL
// check at all (kmtest enters them at HIGH_LEVEL on checked builds too
// [kmt-KeApc]); guarded regions ASSERT (checked builds only [ros-kex]), and
// kmtest's free-build runs use them at DISPATCH_LEVEL and HIGH_LEVEL
// [kmt-KeGuardedMutex].
void KeEnterCriticalRegion() {
    kmlab::kernel::require_irql_documented_verifier(APC_LEVEL, HIGH_LEVEL);
    --current_thread()->KernelApcDisable;
}

void KeLeaveCriticalRegion() {
    kmlab::kernel::require_irql_documented_verifier(APC_LEVEL, HIGH_LEVEL);
    kmlab::kernel::leave_critical_region(current_thread());
}

void KeEnterGuardedRegion() {
    kmlab::kernel::require_irql_documented(APC_LEVEL, HIGH_LEVEL);
    kmlab::kernel::enter_guarded_region(current_thread());
}

void KeLeaveGuardedRegion() {
    kmlab::kernel::require_irql_documented(APC_LEVEL, HIGH_LEVEL);
    kmlab::kernel::leave_guarded_region(current_thread());
}

BOOLEAN KeAreApcsDisabled() {
    kmlab::kernel::require_irql_at_most(DISPATCH_LEVEL);
    return current_thread()->CombinedApcDisable != 0 ? TRUE : FALSE;
}

BOOLEAN KeAreAllApcsDisabled() {
    kmlab::kernel::require_irql_at_most(DISPATCH_LEVEL);
    PKTHREAD t = current_thread();
    return (t->SpecialApcDisable != 0 || t->Irql >= APC_LEVEL) ? TRUE : FALSE;
}

}  // namespace kmlab::nt

namespace kmlab::kernel::detail {
void guarded_region_mismatch(nt::PKTHREAD t) {
    enforce_in_flavor(check_region_leave(t->SpecialApcDisable, t->KernelApcDisable,
                                         static_cast<nt::SHORT>(t->SpecialApcDisable + 1)));
}
void critical_region_mismatch(nt::PKTHREAD t) {
    enforce_in_flavor(check_region_leave(t->KernelApcDisable,
                                         static_cast<nt::SHORT>(t->KernelApcDisable + 1),
                                         t->SpecialApcDisable));
}
}  // namespace kmlab::kernel::detail
