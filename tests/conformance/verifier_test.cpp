// The verifier flavour (kernel/verifier.hpp): Driver Verifier's Deadlock
// Detection [dv-deadlock] and its lock checks, with the report !deadlock
// prints [dbg-deadlock]; and the rules that moved from checked to verifier.
//
// Every cycle here is a *potential* deadlock: the threads run one after the
// other and never overlap, and the acquisition that closes the cycle is
// reported all the same, as Deadlock Detection reports it (0xC4, parameter 1
// = 0x1001 [bc:0xC4]), through the bug-check handler; the test's recording
// handler returns, and the acquisition goes on.
#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <vector>

#include <kmlab/kernel/pool.hpp>
#include <kmlab/kernel/verifier.hpp>
#include <kmlab/kmlab.hpp>

#include "support.hpp"

using namespace kmlab::nt;
using kmlab::Flavor;
namespace bugcheck = kmlab::bugcheck;
namespace verifier = kmlab::kernel::verifier;
using verifier::LockType;

namespace {

// Each test runs in the verifier flavour with a fresh graph.
class Verifier : public kmlab::test::FlavorRestoringNt {
  protected:
    void SetUp() override {
        FlavorRestoringNt::SetUp();
        kmlab::set_flavor(Flavor::verifier);
        verifier::reset();
    }
    void TearDown() override {
        verifier::reset();
        FlavorRestoringNt::TearDown();
    }
};

// The 0xC4 bug checks the handler received, with parameter 1 `subcode`.
std::vector<kmlab::BugCheck> take(ULONG_PTR subcode) {
    std::vector<kmlab::BugCheck> out;
    for (auto& bc : kmlab::test::take_fatal_bug_checks()) {
        EXPECT_EQ(bc.code(), bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION) << bc.what();
        EXPECT_EQ(bc.parameter(1), subcode) << bc.what();
        out.push_back(bc);
    }
    return out;
}

// ---- One interface over every lock kind ----

enum class Kind {
    kmutex,
    fast_mutex,
    guarded_mutex,
    resource_exclusive,
    resource_shared,
    push_lock,
    spin_lock,
    queued_spin_lock,
    ex_spin_lock,
    // The idiomatic types, every backend:
    kmutex_futex,
    kmutex_spin,
    kmutex_dispatcher,
    fast_mutex_futex,
    fast_mutex_spin,
    fast_mutex_dispatcher,
    guarded_mutex_futex,
    guarded_mutex_spin,
    guarded_mutex_dispatcher,
    idiomatic_spin_lock,
    idiomatic_resource,
    idiomatic_push_lock,
    idiomatic_queued_spin_lock,
    idiomatic_rw_spin_lock,
};
const char* kind_name(Kind k) {
    switch (k) {
        case Kind::kmutex_futex:
            return "KMutex_Futex";
        case Kind::kmutex_spin:
            return "KMutex_Spin";
        case Kind::kmutex_dispatcher:
            return "KMutex_Dispatcher";
        case Kind::fast_mutex_futex:
            return "FastMutex_Futex";
        case Kind::fast_mutex_spin:
            return "FastMutex_Spin";
        case Kind::fast_mutex_dispatcher:
            return "FastMutex_Dispatcher";
        case Kind::guarded_mutex_futex:
            return "GuardedMutex_Futex";
        case Kind::guarded_mutex_spin:
            return "GuardedMutex_Spin";
        case Kind::guarded_mutex_dispatcher:
            return "GuardedMutex_Dispatcher";
        case Kind::idiomatic_spin_lock:
            return "SpinLock";
        case Kind::idiomatic_resource:
            return "Resource";
        case Kind::idiomatic_push_lock:
            return "PushLock";
        case Kind::idiomatic_queued_spin_lock:
            return "QueuedSpinLock";
        case Kind::idiomatic_rw_spin_lock:
            return "RwSpinLock";
        case Kind::kmutex:
            return "KMUTEX";
        case Kind::fast_mutex:
            return "FAST_MUTEX";
        case Kind::guarded_mutex:
            return "KGUARDED_MUTEX";
        case Kind::resource_exclusive:
            return "ERESOURCE_exclusive";
        case Kind::resource_shared:
            return "ERESOURCE_shared";
        case Kind::push_lock:
            return "EX_PUSH_LOCK";
        case Kind::spin_lock:
            return "KSPIN_LOCK";
        case Kind::queued_spin_lock:
            return "queued_KSPIN_LOCK";
        case Kind::ex_spin_lock:
            return "EX_SPIN_LOCK";
    }
    return "?";
}
LockType lock_type(Kind k) {
    switch (k) {
        case Kind::kmutex:
            return LockType::kmutex;
        case Kind::fast_mutex:
            return LockType::fast_mutex;
        case Kind::guarded_mutex:
            return LockType::guarded_mutex;
        case Kind::resource_exclusive:
        case Kind::resource_shared:
            return LockType::resource;
        case Kind::push_lock:
            return LockType::push_lock;
        case Kind::spin_lock:
            return LockType::spin_lock;
        case Kind::queued_spin_lock:
            return LockType::queued_spin_lock;
        case Kind::ex_spin_lock:
            return LockType::ex_spin_lock;
        case Kind::kmutex_futex:
        case Kind::kmutex_spin:
            return LockType::idiomatic_kmutex;
        // A real KMUTEX underneath, at the KMutex's own address, initialized
        // by KeInitializeMutex: the verifier names it as that KMUTEX.
        case Kind::kmutex_dispatcher:
            return LockType::kmutex;
        case Kind::fast_mutex_futex:
        case Kind::fast_mutex_spin:
        case Kind::fast_mutex_dispatcher:
            return LockType::idiomatic_fast_mutex;
        case Kind::guarded_mutex_futex:
        case Kind::guarded_mutex_spin:
        case Kind::guarded_mutex_dispatcher:
            return LockType::idiomatic_guarded_mutex;
        case Kind::idiomatic_spin_lock:
            return LockType::idiomatic_spin_lock;
        case Kind::idiomatic_resource:
            return LockType::idiomatic_resource;
        case Kind::idiomatic_push_lock:
            return LockType::idiomatic_push_lock;
        case Kind::idiomatic_queued_spin_lock:
            return LockType::idiomatic_queued_spin_lock;
        case Kind::idiomatic_rw_spin_lock:
            return LockType::idiomatic_rw_spin_lock;
    }
    return LockType::kmutex;
}
// Spin locks hold the thread at DISPATCH_LEVEL, where no other kind may be
// acquired: a cycle mixes kinds within one group only (a spin lock then a
// mutex is the IRQL rule's bug check before the verifier looks).
bool at_dispatch(Kind k) {
    return k == Kind::spin_lock || k == Kind::queued_spin_lock || k == Kind::ex_spin_lock ||
           k == Kind::idiomatic_spin_lock || k == Kind::idiomatic_queued_spin_lock ||
           k == Kind::idiomatic_rw_spin_lock;
}

// An idiomatic lock and the guard of its current hold. Its lock() refuses
// the closing acquisition with Errc::deadlock (and acquires nothing); the
// Error's bug check is what the NT face would have raised.
struct AnyIdiomatic {
    virtual ~AnyIdiomatic() = default;
    virtual const void* key() const = 0;
    virtual std::optional<kmlab::Error> lock() = 0;
    virtual void unlock() = 0;
};
// `Region`: the lock needs normal kernel APCs disabled (Resource, PushLock).
template <class M, bool Region = false>
struct Idiomatic final : AnyIdiomatic {
    using G = std::remove_cvref_t<decltype(*std::declval<M&>().lock())>;
    M m{0};
    std::optional<G> g;
    const void* key() const override { return &m; }
    std::optional<kmlab::Error> lock() override {
        if constexpr (Region) KeEnterCriticalRegion();
        auto r = m.lock();
        if (!r) {
            if constexpr (Region) KeLeaveCriticalRegion();
            return r.error();
        }
        g.emplace(std::move(*r));
        return std::nullopt;
    }
    void unlock() override {
        auto r = g->unlock();
        EXPECT_TRUE(r.has_value());
        g.reset();
        if constexpr (Region) KeLeaveCriticalRegion();
    }
};
std::unique_ptr<AnyIdiomatic> make_idiomatic(Kind k) {
    namespace b = kmlab::backends;
    switch (k) {
        case Kind::kmutex_futex:
            return std::make_unique<Idiomatic<kmlab::KMutex<int, b::Futex>>>();
        case Kind::kmutex_spin:
            return std::make_unique<Idiomatic<kmlab::KMutex<int, b::Spin>>>();
        case Kind::kmutex_dispatcher:
            return std::make_unique<Idiomatic<kmlab::KMutex<int, b::Dispatcher>>>();
        case Kind::fast_mutex_futex:
            return std::make_unique<Idiomatic<kmlab::FastMutex<int, b::Futex>>>();
        case Kind::fast_mutex_spin:
            return std::make_unique<Idiomatic<kmlab::FastMutex<int, b::Spin>>>();
        case Kind::fast_mutex_dispatcher:
            return std::make_unique<Idiomatic<kmlab::FastMutex<int, b::Dispatcher>>>();
        case Kind::guarded_mutex_futex:
            return std::make_unique<Idiomatic<kmlab::GuardedMutex<int, b::Futex>>>();
        case Kind::guarded_mutex_spin:
            return std::make_unique<Idiomatic<kmlab::GuardedMutex<int, b::Spin>>>();
        case Kind::guarded_mutex_dispatcher:
            return std::make_unique<Idiomatic<kmlab::GuardedMutex<int, b::Dispatcher>>>();
        case Kind::idiomatic_spin_lock:
            return std::make_unique<Idiomatic<kmlab::SpinLock<int>>>();
        case Kind::idiomatic_resource:
            return std::make_unique<Idiomatic<kmlab::Resource<int>, true>>();
        case Kind::idiomatic_push_lock:
            return std::make_unique<Idiomatic<kmlab::PushLock<int>, true>>();
        case Kind::idiomatic_queued_spin_lock:
            return std::make_unique<Idiomatic<kmlab::QueuedSpinLock<int>>>();
        case Kind::idiomatic_rw_spin_lock:
            return std::make_unique<Idiomatic<kmlab::RwSpinLock<int>>>();
        default:
            return nullptr;
    }
}

// A lock of one kind, initialized, acquired and released by its NT routines.
// Held in a unique_ptr: the verifier keys a lock by its address.
class Lock {
  public:
    explicit Lock(Kind k) : kind_(k), idiomatic_(make_idiomatic(k)) {
        switch (k) {
            case Kind::kmutex:
                KeInitializeMutex(&kmutex_, 0);
                break;
            case Kind::fast_mutex:
                ExInitializeFastMutex(&fast_mutex_);
                break;
            case Kind::guarded_mutex:
                KeInitializeGuardedMutex(&guarded_mutex_);
                break;
            case Kind::resource_exclusive:
            case Kind::resource_shared:
                ExInitializeResourceLite(&resource_);
                break;
            case Kind::push_lock:
                ExInitializePushLock(&push_lock_);
                break;
            case Kind::spin_lock:
            case Kind::queued_spin_lock:
                KeInitializeSpinLock(&spin_lock_);
                break;
            case Kind::ex_spin_lock:
                ex_spin_lock_ = 0;
                break;
            default:
                break;
        }
    }
    ~Lock() {
        if (kind_ == Kind::resource_exclusive || kind_ == Kind::resource_shared)
            ExDeleteResourceLite(&resource_);
    }
    const void* key() const {
        if (idiomatic_) return idiomatic_->key();
        switch (kind_) {
            case Kind::kmutex:
                return &kmutex_;
            case Kind::fast_mutex:
                return &fast_mutex_;
            case Kind::guarded_mutex:
                return &guarded_mutex_;
            case Kind::resource_exclusive:
            case Kind::resource_shared:
                return &resource_;
            case Kind::push_lock:
                return &push_lock_;
            case Kind::spin_lock:
            case Kind::queued_spin_lock:
                return &spin_lock_;
            case Kind::ex_spin_lock:
                return &ex_spin_lock_;
            default:
                break;
        }
        return nullptr;
    }
    // False if an idiomatic lock refused (its Error in `refused`).
    bool acquire() {
        if (idiomatic_) {
            refused = idiomatic_->lock();
            return !refused.has_value();
        }
        switch (kind_) {
            case Kind::kmutex:
                KeWaitForSingleObject(&kmutex_, Executive, KernelMode, FALSE, nullptr);
                break;
            case Kind::fast_mutex:
                ExAcquireFastMutex(&fast_mutex_);
                break;
            case Kind::guarded_mutex:
                KeAcquireGuardedMutex(&guarded_mutex_);
                break;
            case Kind::resource_exclusive:
                KeEnterCriticalRegion();
                ExAcquireResourceExclusiveLite(&resource_, TRUE);
                break;
            case Kind::resource_shared:
                KeEnterCriticalRegion();
                ExAcquireResourceSharedLite(&resource_, TRUE);
                break;
            case Kind::push_lock:
                KeEnterCriticalRegion();
                ExAcquirePushLockExclusiveEx(&push_lock_, 0);
                break;
            case Kind::spin_lock:
                KeAcquireSpinLock(&spin_lock_, &old_irql_);
                break;
            case Kind::queued_spin_lock:
                KeAcquireInStackQueuedSpinLock(&spin_lock_, &handle_);
                break;
            case Kind::ex_spin_lock:
                old_irql_ = ExAcquireSpinLockExclusive(&ex_spin_lock_);
                break;
            default:
                break;
        }
        return true;
    }
    void release() {
        if (idiomatic_) return idiomatic_->unlock();
        switch (kind_) {
            case Kind::kmutex:
                KeReleaseMutex(&kmutex_, FALSE);
                break;
            case Kind::fast_mutex:
                ExReleaseFastMutex(&fast_mutex_);
                break;
            case Kind::guarded_mutex:
                KeReleaseGuardedMutex(&guarded_mutex_);
                break;
            case Kind::resource_exclusive:
            case Kind::resource_shared:
                ExReleaseResourceLite(&resource_);
                KeLeaveCriticalRegion();
                break;
            case Kind::push_lock:
                ExReleasePushLockExclusiveEx(&push_lock_, 0);
                KeLeaveCriticalRegion();
                break;
            case Kind::spin_lock:
                KeReleaseSpinLock(&spin_lock_, old_irql_);
                break;
            case Kind::queued_spin_lock:
                KeReleaseInStackQueuedSpinLock(&handle_);
                break;
            case Kind::ex_spin_lock:
                ExReleaseSpinLockExclusive(&ex_spin_lock_, old_irql_);
                break;
            default:
                break;
        }
    }
    Kind kind() const { return kind_; }
    std::optional<kmlab::Error> refused;

  private:
    Kind kind_;
    std::unique_ptr<AnyIdiomatic> idiomatic_;
    KMUTEX kmutex_{};
    FAST_MUTEX fast_mutex_{};
    KGUARDED_MUTEX guarded_mutex_{};
    ERESOURCE resource_{};
    EX_PUSH_LOCK push_lock_ = 0;
    KSPIN_LOCK spin_lock_ = 0;
    KLOCK_QUEUE_HANDLE handle_{};
    EX_SPIN_LOCK ex_spin_lock_ = 0;
    KIRQL old_irql_ = PASSIVE_LEVEL;
};

// Takes `locks` in order and releases them in reverse, on a new thread. If
// `closing` is set, the handler must have received nothing before the last
// acquisition and exactly one report after it: checked on that thread.
void take_in_order(const std::vector<Lock*>& locks,
                   std::vector<kmlab::BugCheck>* closing = nullptr) {
    // An idiomatic lock's refusal counts as the report: its Error carries
    // the bug check the NT face raises (Errc::deadlock), handed to the
    // recording handler here.
    kmlab::test::on_new_thread([&] {
        std::vector<Lock*> held;
        for (std::size_t i = 0; i < locks.size(); ++i) {
            if (closing != nullptr && i + 1 == locks.size()) {
                EXPECT_TRUE(kmlab::test::take_fatal_bug_checks().empty())
                    << "reported before the closing acquisition";
            }
            if (locks[i]->acquire()) {
                held.push_back(locks[i]);
            } else {
                EXPECT_EQ(locks[i]->refused->code, kmlab::Errc::deadlock);
                kmlab::report_fatal_bug_check(locks[i]->refused->to_bug_check());
            }
        }
        if (closing != nullptr) *closing = kmlab::test::take_fatal_bug_checks();
        for (std::size_t i = held.size(); i-- > 0;) held[i]->release();
    });
}

// The report's lock letters of thread `i`, as addresses.
std::vector<const void*> thread_locks(const verifier::Report& r, std::size_t i) {
    std::vector<const void*> out;
    for (std::size_t l : r.threads.at(i).locks) out.push_back(r.locks.at(l).address);
    return out;
}

}  // namespace

// ---- Cycles across threads that never overlap ----

TEST_F(Verifier, TwoLockCycleAcrossTwoThreadsIsReportedAtTheClosingAcquisition) {
    Lock a(Kind::fast_mutex), b(Kind::fast_mutex);
    verifier::set_name(a.key(), "A");
    verifier::set_name(b.key(), "B");
    take_in_order({&a, &b});
    EXPECT_TRUE(kmlab::test::take_fatal_bug_checks().empty()) << "one order is no cycle";
    std::vector<kmlab::BugCheck> closing;
    take_in_order({&b, &a}, &closing);
    ASSERT_EQ(closing.size(), 1u);
    EXPECT_EQ(closing[0].code(), bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    EXPECT_EQ(closing[0].parameter(1), bugcheck::VERIFIER_DEADLOCK_DETECTED);
    EXPECT_EQ(closing[0].parameter(2), reinterpret_cast<ULONG_PTR>(a.key()))
        << "parameter 2: the lock whose acquisition closed the cycle";
    auto r = verifier::last_report();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->subcode, bugcheck::VERIFIER_DEADLOCK_DETECTED);
    ASSERT_EQ(r->threads.size(), 2u);
    EXPECT_EQ(thread_locks(*r, 0), (std::vector<const void*>{a.key(), b.key()}));
    EXPECT_EQ(thread_locks(*r, 1), (std::vector<const void*>{b.key(), a.key()}));
    EXPECT_NE(r->threads[0].id, r->threads[1].id);
    ASSERT_EQ(r->locks.size(), 2u);
    EXPECT_EQ(r->locks[0].name, "A");
    EXPECT_EQ(r->locks[1].name, "B");
    EXPECT_EQ(r->locks[0].type, LockType::fast_mutex);
    EXPECT_FALSE(r->locks[0].initialized_at.empty()) << "the initialization site";
    const std::string text = r->text();
    EXPECT_NE(text.find("Deadlock detected (2 resources in 2 threads)"), std::string::npos) << text;
    EXPECT_NE(text.find("Thread 0: A B"), std::string::npos) << text;
    EXPECT_NE(text.find("Thread 1: B A"), std::string::npos) << text;
    EXPECT_NE(text.find("Type 'FastMutex'"), std::string::npos) << text;
}

TEST_F(Verifier, ThreeLockCycleAcrossThreeThreadsIsReportedAtTheClosingAcquisition) {
    Lock a(Kind::kmutex), b(Kind::kmutex), c(Kind::kmutex);
    verifier::set_name(a.key(), "A");
    verifier::set_name(b.key(), "B");
    verifier::set_name(c.key(), "C");
    take_in_order({&a, &b});
    take_in_order({&b, &c});
    EXPECT_TRUE(kmlab::test::take_fatal_bug_checks().empty());
    std::vector<kmlab::BugCheck> closing;
    take_in_order({&c, &a}, &closing);
    ASSERT_EQ(closing.size(), 1u);
    EXPECT_EQ(closing[0].parameter(1), bugcheck::VERIFIER_DEADLOCK_DETECTED);
    EXPECT_EQ(closing[0].parameter(2), reinterpret_cast<ULONG_PTR>(a.key()));
    auto r = verifier::last_report();
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->threads.size(), 3u);
    EXPECT_EQ(thread_locks(*r, 0), (std::vector<const void*>{a.key(), b.key()}));
    EXPECT_EQ(thread_locks(*r, 1), (std::vector<const void*>{b.key(), c.key()}));
    EXPECT_EQ(thread_locks(*r, 2), (std::vector<const void*>{c.key(), a.key()}));
    EXPECT_NE(r->text().find("Deadlock detected (3 resources in 3 threads)"), std::string::npos)
        << r->text();
}

TEST_F(Verifier, ReportIsPrintedWithStacksWhenStacksAreOn) {
    verifier::set_capture_stacks(true);
    Lock a(Kind::guarded_mutex), b(Kind::guarded_mutex);
    verifier::set_name(a.key(), "A");
    verifier::set_name(b.key(), "B");
    take_in_order({&a, &b});
    std::vector<kmlab::BugCheck> closing;
    take_in_order({&b, &a}, &closing);
    verifier::set_capture_stacks(false);
    ASSERT_EQ(closing.size(), 1u);
    auto r = verifier::last_report();
    ASSERT_TRUE(r.has_value());
    for (const auto& t : r->threads) {
        ASSERT_EQ(t.stacks.size(), 2u);
        EXPECT_FALSE(t.stacks[0].empty());
        EXPECT_FALSE(t.stacks[1].empty());
    }
    EXPECT_NE(r->text().find("Acquisition stacks"), std::string::npos) << r->text();
}

// The same cycle for every pair of kinds that can be held together (within
// each IRQL group): A of the first kind, B of the second.
class VerifierMixed : public Verifier,
                      public ::testing::WithParamInterface<std::pair<Kind, Kind>> {};

TEST_P(VerifierMixed, TwoLockCycleIsReported) {
    const auto [ka, kb] = GetParam();
    Lock a(ka), b(kb);
    verifier::set_name(a.key(), "A");
    verifier::set_name(b.key(), "B");
    take_in_order({&a, &b});
    EXPECT_TRUE(kmlab::test::take_fatal_bug_checks().empty());
    std::vector<kmlab::BugCheck> closing;
    take_in_order({&b, &a}, &closing);
    ASSERT_EQ(closing.size(), 1u);
    EXPECT_EQ(closing[0].parameter(1), bugcheck::VERIFIER_DEADLOCK_DETECTED);
    EXPECT_EQ(closing[0].parameter(2), reinterpret_cast<ULONG_PTR>(a.key()));
    auto r = verifier::last_report();
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->threads.size(), 2u);
    EXPECT_EQ(thread_locks(*r, 0), (std::vector<const void*>{a.key(), b.key()}));
    EXPECT_EQ(thread_locks(*r, 1), (std::vector<const void*>{b.key(), a.key()}));
    EXPECT_EQ(r->locks.at(0).type, lock_type(ka));
    EXPECT_EQ(r->locks.at(1).type, lock_type(kb));
}

namespace {
std::vector<std::pair<Kind, Kind>> mixed_pairs() {
    const Kind all[] = {Kind::kmutex,
                        Kind::fast_mutex,
                        Kind::guarded_mutex,
                        Kind::resource_exclusive,
                        Kind::resource_shared,
                        Kind::push_lock,
                        Kind::spin_lock,
                        Kind::queued_spin_lock,
                        Kind::ex_spin_lock,
                        Kind::kmutex_futex,
                        Kind::kmutex_spin,
                        Kind::kmutex_dispatcher,
                        Kind::fast_mutex_futex,
                        Kind::fast_mutex_spin,
                        Kind::fast_mutex_dispatcher,
                        Kind::guarded_mutex_futex,
                        Kind::guarded_mutex_spin,
                        Kind::guarded_mutex_dispatcher,
                        Kind::idiomatic_spin_lock,
                        Kind::idiomatic_resource,
                        Kind::idiomatic_push_lock,
                        Kind::idiomatic_queued_spin_lock,
                        Kind::idiomatic_rw_spin_lock};
    std::vector<std::pair<Kind, Kind>> out;
    for (Kind x : all) {
        for (Kind y : all) {
            if (at_dispatch(x) == at_dispatch(y)) out.emplace_back(x, y);
        }
    }
    return out;
}
}  // namespace

INSTANTIATE_TEST_SUITE_P(EveryKindPair, VerifierMixed, ::testing::ValuesIn(mixed_pairs()),
                         [](const auto& param_info) {
                             return std::string(kind_name(param_info.param.first)) + "_then_" +
                                    kind_name(param_info.param.second);
                         });

// ---- No false reports ----

// 10^5 acquisitions of random subsets of 8 locks, each subset taken in one
// global order: never a report.
TEST_F(Verifier, AConsistentOrderIsNeverReported) {
    constexpr int kLocks = 8;
    std::vector<std::unique_ptr<Lock>> locks;
    for (int i = 0; i < kLocks; ++i) {
        locks.push_back(std::make_unique<Lock>(i % 2 == 0 ? Kind::guarded_mutex : Kind::kmutex));
        static const char* names[kLocks] = {"L0", "L1", "L2", "L3", "L4", "L5", "L6", "L7"};
        verifier::set_name(locks.back()->key(), names[i]);
    }
    std::mt19937 rng(12345);
    long acquisitions = 0;
    for (int thread = 0; thread < 5 && acquisitions < 100000; ++thread) {
        kmlab::test::on_new_thread([&] {
            while (acquisitions < (thread + 1) * 20000L) {
                const unsigned mask = std::uniform_int_distribution<unsigned>(1, 255)(rng);
                std::vector<Lock*> taken;
                for (int i = 0; i < kLocks; ++i) {
                    if (mask & (1u << i)) {
                        locks[static_cast<std::size_t>(i)]->acquire();
                        taken.push_back(locks[static_cast<std::size_t>(i)].get());
                        ++acquisitions;
                    }
                }
                // Out of order releases are allowed (no 0x1003); no FAST_MUTEX
                // here, whose saved OldIrql makes that order an IRQL error.
                std::shuffle(taken.begin(), taken.end(), rng);
                for (Lock* l : taken) l->release();
            }
        });
    }
    EXPECT_GE(acquisitions, 100000);
    EXPECT_TRUE(kmlab::test::take_fatal_bug_checks().empty());
    EXPECT_FALSE(verifier::last_report().has_value());
    // The graph did see the order: its reverse is a cycle.
    take_in_order({locks[7].get(), locks[0].get()});
    EXPECT_EQ(take(bugcheck::VERIFIER_DEADLOCK_DETECTED).size(), 1u);
}

// Many per-object locks of one class (one initialization site), taken in a
// consistent order (parent's lock, then child's): one edge between the two
// classes, no report, and a reversed order across classes is still reported.
TEST_F(Verifier, PerObjectLocksOfOneClassDoNotFloodTheGraph) {
    struct Object {
        FAST_MUTEX lock;
    };
    constexpr int kObjects = 200;
    std::vector<std::unique_ptr<Object>> parents, children;
    for (int i = 0; i < kObjects; ++i) {
        parents.push_back(std::make_unique<Object>());
        ExInitializeFastMutex(&parents.back()->lock);  // one site: one class
    }
    for (int i = 0; i < kObjects; ++i) {
        children.push_back(std::make_unique<Object>());
        ExInitializeFastMutex(&children.back()->lock);  // another site: another class
    }
    kmlab::test::on_new_thread([&] {
        for (int i = 0; i < kObjects; ++i) {
            ExAcquireFastMutex(&parents[static_cast<std::size_t>(i)]->lock);
            ExAcquireFastMutex(&children[static_cast<std::size_t>((i * 7) % kObjects)]->lock);
            ExReleaseFastMutex(&children[static_cast<std::size_t>((i * 7) % kObjects)]->lock);
            ExReleaseFastMutex(&parents[static_cast<std::size_t>(i)]->lock);
        }
        // Two objects of one class held together: an instance edge only
        // (kernel/verifier.hpp, "Lock classes"), no report.
        ExAcquireFastMutex(&parents[0]->lock);
        ExAcquireFastMutex(&parents[1]->lock);
        ExReleaseFastMutex(&parents[1]->lock);
        ExReleaseFastMutex(&parents[0]->lock);
    });
    EXPECT_TRUE(kmlab::test::take_fatal_bug_checks().empty());
    // A child's lock, then some parent's: the classes' order reversed.
    kmlab::test::on_new_thread([&] {
        ExAcquireFastMutex(&children[3]->lock);
        ExAcquireFastMutex(&parents[150]->lock);
        ExReleaseFastMutex(&parents[150]->lock);
        ExReleaseFastMutex(&children[3]->lock);
    });
    auto bcs = take(bugcheck::VERIFIER_DEADLOCK_DETECTED);
    ASSERT_EQ(bcs.size(), 1u);
    auto r = verifier::last_report();
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->threads.size(), 2u);
    EXPECT_EQ(thread_locks(*r, 1),
              (std::vector<const void*>{&children[3]->lock, &parents[150]->lock}));
}

// ---- The other Deadlock Detection subcodes ----

TEST_F(Verifier, SelfDeadlockIs0x1000ForANonRecursiveLock) {
    KSPIN_LOCK l;
    KeInitializeSpinLock(&l);
    KIRQL old;
    KeAcquireSpinLock(&l, &old);
    // The verifier's report first; then the kernel's own bug check.
    EXPECT_BUG_CHECK(KeAcquireSpinLockAtDpcLevel(&l), bugcheck::SPIN_LOCK_ALREADY_OWNED);
    auto bcs = take(bugcheck::VERIFIER_DEADLOCK_SELF);
    ASSERT_EQ(bcs.size(), 1u);
    EXPECT_EQ(bcs[0].parameter(2), reinterpret_cast<ULONG_PTR>(&l));
    KeReleaseSpinLock(&l, old);
}

// The idiomatic types return the verifier's answer as an Error and acquire
// nothing.
TEST_F(Verifier, IdiomaticSelfDeadlockIsAnErrorNamingTheLock) {
    kmlab::FastMutex<int> m{0};
    auto g = m.lock();
    ASSERT_TRUE(g.has_value());
    auto again = m.lock();
    ASSERT_FALSE(again.has_value());
    EXPECT_EQ(again.error().code, kmlab::Errc::deadlock);
    EXPECT_EQ(again.error().bug_check, bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    EXPECT_EQ(again.error().bug_check_parameter1, bugcheck::VERIFIER_DEADLOCK_SELF);
    EXPECT_EQ(again.error().bug_check_parameter2, reinterpret_cast<ULONG_PTR>(&m));
    EXPECT_TRUE(kmlab::test::take_fatal_bug_checks().empty()) << "no handler call: an Error";
    ASSERT_TRUE(g->unlock().has_value());
    kmlab::KMutex<int> k{0};
    auto k1 = k.lock();
    auto k2 = k.lock();  // recursion is legal: no 0x1000
    EXPECT_TRUE(k1.has_value() && k2.has_value());
}

// KMUTEX recursion is legal [ddi:kewaitforsingleobject]: no 0x1000.
TEST_F(Verifier, KmutexRecursionIsNotASelfDeadlock) {
    KMUTEX m;
    KeInitializeMutex(&m, 0);
    KeWaitForSingleObject(&m, Executive, KernelMode, FALSE, nullptr);
    KeWaitForSingleObject(&m, Executive, KernelMode, FALSE, nullptr);
    KeReleaseMutex(&m, FALSE);
    KeReleaseMutex(&m, FALSE);
    EXPECT_TRUE(kmlab::test::take_fatal_bug_checks().empty());
}

TEST_F(Verifier, ReleaseOfALockNobodyHoldsIs0x1007) {
    KMUTEX m;
    KeInitializeMutex(&m, 0);
    EXPECT_RAISES(KeReleaseMutex(&m, FALSE), STATUS_MUTANT_NOT_OWNED);
    auto bcs = take(bugcheck::VERIFIER_DEADLOCK_UNACQUIRED_RESOURCE);
    ASSERT_EQ(bcs.size(), 1u);
    EXPECT_EQ(bcs[0].parameter(2), reinterpret_cast<ULONG_PTR>(&m));
}

TEST_F(Verifier, ReleaseByAnotherThreadIs0x1004) {
    KSPIN_LOCK l;
    KeInitializeSpinLock(&l);
    KIRQL old;
    KeAcquireSpinLock(&l, &old);
    PKTHREAD owner = KeGetCurrentThread();
    PKTHREAD other = nullptr;
    kmlab::test::on_new_thread([&] {
        other = KeGetCurrentThread();
        KIRQL o;
        KeRaiseIrql(DISPATCH_LEVEL, &o);
        EXPECT_BUG_CHECK(KeReleaseSpinLock(&l, o), bugcheck::SPIN_LOCK_NOT_OWNED);
        KeLowerIrql(o);
    });
    auto bcs = take(bugcheck::VERIFIER_DEADLOCK_UNEXPECTED_THREAD);
    ASSERT_EQ(bcs.size(), 1u);
    EXPECT_EQ(bcs[0].parameter(2), reinterpret_cast<ULONG_PTR>(&l));
    EXPECT_EQ(bcs[0].parameter(3), reinterpret_cast<ULONG_PTR>(owner));
    EXPECT_EQ(bcs[0].parameter(4), reinterpret_cast<ULONG_PTR>(other));
    KeReleaseSpinLock(&l, old);
}

TEST_F(Verifier, InitializingAHeldLockAgainIs0x1005) {
    FAST_MUTEX m;
    ExInitializeFastMutex(&m);
    ExAcquireFastMutex(&m);
    FAST_MUTEX saved;
    std::memcpy(&saved, &m, sizeof m);
    ExInitializeFastMutex(&m);
    auto bcs = take(bugcheck::VERIFIER_DEADLOCK_MULTIPLE_INITIALIZATION);
    ASSERT_EQ(bcs.size(), 1u);
    EXPECT_EQ(bcs[0].parameter(2), reinterpret_cast<ULONG_PTR>(&m));
    // Put the held state back and release it as the owner.
    std::memcpy(&m, &saved, sizeof m);
    verifier::reset();
    ExReleaseFastMutex(&m);
    EXPECT_TRUE(kmlab::test::take_fatal_bug_checks().empty());
}

TEST_F(Verifier, DeletingAHeldResourceIs0x100B) {
    ERESOURCE r;
    ExInitializeResourceLite(&r);
    KeEnterCriticalRegion();
    ExAcquireResourceExclusiveLite(&r, TRUE);
    // The verifier's report, then the checked build's ASSERT.
    EXPECT_BUG_CHECK(ExDeleteResourceLite(&r), bugcheck::KMODE_EXCEPTION_NOT_HANDLED);
    auto bcs = take(bugcheck::VERIFIER_DEADLOCK_DELETED_WHILE_HELD);
    ASSERT_EQ(bcs.size(), 1u);
    EXPECT_EQ(bcs[0].parameter(2), reinterpret_cast<ULONG_PTR>(&r));
    EXPECT_EQ(bcs[0].parameter(3), reinterpret_cast<ULONG_PTR>(KeGetCurrentThread()));
    ExReleaseResourceLite(&r);
    KeLeaveCriticalRegion();
    ExDeleteResourceLite(&r);
}

TEST_F(Verifier, AThreadExitingWithALockHeldIs0x100A) {
    FAST_MUTEX m;
    ExInitializeFastMutex(&m);
    PKTHREAD exited = nullptr;
    kmlab::test::on_new_thread([&] {
        exited = KeGetCurrentThread();
        ExAcquireFastMutex(&m);
        // Leaves with it held.
        kmlab::kernel::set_irql(KeGetCurrentThread(), PASSIVE_LEVEL);
    });
    // The verifier's report comes first; the kernel's own exit checks may
    // report after it (not this test's subject).
    auto all = kmlab::test::take_fatal_bug_checks();
    ASSERT_FALSE(all.empty());
    EXPECT_EQ(all[0].code(), bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION) << all[0].what();
    EXPECT_EQ(all[0].parameter(1), bugcheck::VERIFIER_DEADLOCK_THREAD_EXIT_HOLDING);
    EXPECT_EQ(all[0].parameter(2), reinterpret_cast<ULONG_PTR>(exited));
    EXPECT_EQ(all[0].parameter(3), reinterpret_cast<ULONG_PTR>(&m));
}

// ---- The routines the first hooks left out ----

namespace {
// An acquire / release pair of KSPIN_LOCK routines for DPC-level callers.
struct DpcApi {
    void (*acquire)(PKSPIN_LOCK, PKLOCK_QUEUE_HANDLE);
    void (*release)(PKSPIN_LOCK, PKLOCK_QUEUE_HANDLE);
    LockType type;
};
const DpcApi kSpinLockForDpc{
    [](PKSPIN_LOCK l, PKLOCK_QUEUE_HANDLE h) { h->OldIrql = KeAcquireSpinLockForDpc(l); },
    [](PKSPIN_LOCK l, PKLOCK_QUEUE_HANDLE h) { KeReleaseSpinLockForDpc(l, h->OldIrql); },
    LockType::spin_lock};
const DpcApi kQueuedAtDpcLevel{
    [](PKSPIN_LOCK l, PKLOCK_QUEUE_HANDLE h) { KeAcquireInStackQueuedSpinLockAtDpcLevel(l, h); },
    [](PKSPIN_LOCK, PKLOCK_QUEUE_HANDLE h) { KeReleaseInStackQueuedSpinLockFromDpcLevel(h); },
    LockType::queued_spin_lock};
const DpcApi kQueuedForDpc{
    [](PKSPIN_LOCK l, PKLOCK_QUEUE_HANDLE h) { KeAcquireInStackQueuedSpinLockForDpc(l, h); },
    [](PKSPIN_LOCK, PKLOCK_QUEUE_HANDLE h) { KeReleaseInStackQueuedSpinLockForDpc(h); },
    LockType::queued_spin_lock};

// `first` then `second` through `api` at DISPATCH_LEVEL on a new thread; with
// `closing`, what the handler received at the second acquisition.
void dpc_in_order(const DpcApi& api, PKSPIN_LOCK first, PKSPIN_LOCK second,
                  std::vector<kmlab::BugCheck>* closing = nullptr) {
    kmlab::test::on_new_thread([&] {
        KIRQL old;
        KeRaiseIrql(DISPATCH_LEVEL, &old);
        KLOCK_QUEUE_HANDLE h1{}, h2{};
        api.acquire(first, &h1);
        EXPECT_TRUE(kmlab::test::take_fatal_bug_checks().empty());
        api.acquire(second, &h2);
        if (closing != nullptr) *closing = kmlab::test::take_fatal_bug_checks();
        api.release(second, &h2);
        api.release(first, &h1);
        KeLowerIrql(old);
    });
}

void expect_dpc_cycle(const DpcApi& api) {
    KSPIN_LOCK a, b;
    KeInitializeSpinLock(&a);
    KeInitializeSpinLock(&b);
    verifier::set_name(&a, "A");
    verifier::set_name(&b, "B");
    dpc_in_order(api, &a, &b);
    EXPECT_TRUE(kmlab::test::take_fatal_bug_checks().empty()) << "one order is no cycle";
    std::vector<kmlab::BugCheck> closing;
    dpc_in_order(api, &b, &a, &closing);
    ASSERT_EQ(closing.size(), 1u);
    EXPECT_EQ(closing[0].parameter(1), bugcheck::VERIFIER_DEADLOCK_DETECTED);
    EXPECT_EQ(closing[0].parameter(2), reinterpret_cast<ULONG_PTR>(&a));
    auto r = verifier::last_report();
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->threads.size(), 2u);
    EXPECT_EQ(thread_locks(*r, 0), (std::vector<const void*>{&a, &b}));
    EXPECT_EQ(thread_locks(*r, 1), (std::vector<const void*>{&b, &a}));
    EXPECT_EQ(r->locks.at(0).type, api.type);
    // The releases were recorded: nothing more (no 0x1007, no 0x100A).
    EXPECT_TRUE(kmlab::test::take_fatal_bug_checks().empty());
    EXPECT_EQ(a, 0u);
    EXPECT_EQ(b, 0u);
}
}  // namespace

TEST_F(Verifier, SpinLockForDpcRoutinesAreWatched) {
    expect_dpc_cycle(kSpinLockForDpc);
}

TEST_F(Verifier, InStackQueuedAtDpcLevelRoutinesAreWatched) {
    expect_dpc_cycle(kQueuedAtDpcLevel);
}

TEST_F(Verifier, InStackQueuedForDpcRoutinesAreWatched) {
    expect_dpc_cycle(kQueuedForDpc);
}

// A lock taken by ExTryAcquireSpinLock...AtDpcLevel is held: the locks taken
// under it get edges from it, and the reverse order closes a cycle at it.
TEST_F(Verifier, ExTryAcquireSpinLockAtDpcLevelRecordsTheHold) {
    for (bool shared : {false, true}) {
        SCOPED_TRACE(shared ? "shared try" : "exclusive try");
        verifier::reset();
        EX_SPIN_LOCK a = 0, b = 0;
        verifier::set_name(&a, "A");
        verifier::set_name(&b, "B");
        kmlab::test::on_new_thread([&] {
            KIRQL old;
            KeRaiseIrql(DISPATCH_LEVEL, &old);
            ASSERT_TRUE(shared ? ExTryAcquireSpinLockSharedAtDpcLevel(&a)
                               : ExTryAcquireSpinLockExclusiveAtDpcLevel(&a));
            ExAcquireSpinLockExclusiveAtDpcLevel(&b);
            ExReleaseSpinLockExclusiveFromDpcLevel(&b);
            if (shared)
                ExReleaseSpinLockSharedFromDpcLevel(&a);
            else
                ExReleaseSpinLockExclusiveFromDpcLevel(&a);
            KeLowerIrql(old);
        });
        EXPECT_TRUE(kmlab::test::take_fatal_bug_checks().empty());
        std::vector<kmlab::BugCheck> closing;
        kmlab::test::on_new_thread([&] {
            KIRQL old;
            KeRaiseIrql(DISPATCH_LEVEL, &old);
            ExAcquireSpinLockExclusiveAtDpcLevel(&b);
            ExAcquireSpinLockExclusiveAtDpcLevel(&a);
            closing = kmlab::test::take_fatal_bug_checks();
            ExReleaseSpinLockExclusiveFromDpcLevel(&a);
            ExReleaseSpinLockExclusiveFromDpcLevel(&b);
            KeLowerIrql(old);
        });
        ASSERT_EQ(closing.size(), 1u);
        EXPECT_EQ(closing[0].parameter(1), bugcheck::VERIFIER_DEADLOCK_DETECTED);
        EXPECT_EQ(closing[0].parameter(2), reinterpret_cast<ULONG_PTR>(&a));
        EXPECT_EQ(a, 0);
        EXPECT_EQ(b, 0);
    }
}

// The KeWaitForSingleObject that follows a Wait = TRUE signal (WaitNext)
// acquires a KMUTEX as any other wait does [ddi:kesetevent]: it closes the
// cycle too.
TEST_F(Verifier, AWaitAfterAWaitTrueSignalIsWatched) {
    KMUTEX a, b;
    KeInitializeMutex(&a, 0);
    KeInitializeMutex(&b, 0);
    verifier::set_name(&a, "A");
    verifier::set_name(&b, "B");
    kmlab::test::on_new_thread([&] {
        KeWaitForSingleObject(&a, Executive, KernelMode, FALSE, nullptr);
        KeWaitForSingleObject(&b, Executive, KernelMode, FALSE, nullptr);
        KeReleaseMutex(&b, FALSE);
        KeReleaseMutex(&a, FALSE);
    });
    EXPECT_TRUE(kmlab::test::take_fatal_bug_checks().empty());
    std::vector<kmlab::BugCheck> closing;
    kmlab::test::on_new_thread([&] {
        KEVENT e;
        KeInitializeEvent(&e, NotificationEvent, FALSE);
        KeWaitForSingleObject(&b, Executive, KernelMode, FALSE, nullptr);
        KeSetEvent(&e, 0, TRUE);  // returns holding the dispatcher lock
        EXPECT_TRUE(KeGetCurrentThread()->WaitNext);
        KeWaitForSingleObject(&a, Executive, KernelMode, FALSE, nullptr);
        closing = kmlab::test::take_fatal_bug_checks();
        EXPECT_FALSE(KeGetCurrentThread()->WaitNext);
        KeReleaseMutex(&a, FALSE);
        KeReleaseMutex(&b, FALSE);
    });
    ASSERT_EQ(closing.size(), 1u);
    EXPECT_EQ(closing[0].parameter(1), bugcheck::VERIFIER_DEADLOCK_DETECTED);
    EXPECT_EQ(closing[0].parameter(2), reinterpret_cast<ULONG_PTR>(&a));
    EXPECT_TRUE(kmlab::test::take_fatal_bug_checks().empty()) << "the holds were recorded";
}

// kmlab::QueuedSpinLock: its own recursion is the verifier's 0x1000, as an
// Error (the mixed-pair cycles above cover 0x1001).
TEST_F(Verifier, QueuedSpinLockSelfDeadlockIsAnError) {
    kmlab::QueuedSpinLock<int> q{0};
    auto g = q.lock();
    ASSERT_TRUE(g.has_value());
    auto again = q.lock();
    ASSERT_FALSE(again.has_value());
    EXPECT_EQ(again.error().code, kmlab::Errc::deadlock);
    EXPECT_EQ(again.error().bug_check_parameter1, bugcheck::VERIFIER_DEADLOCK_SELF);
    EXPECT_EQ(again.error().bug_check_parameter2, reinterpret_cast<ULONG_PTR>(&q));
    ASSERT_TRUE(g->unlock().has_value());
    EXPECT_TRUE(q.is_initial_state());
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
    // A try closes nothing and is recorded: released without a report.
    auto t = q.try_lock();
    ASSERT_TRUE(t.has_value());
    ASSERT_TRUE(t->unlock().has_value());
    EXPECT_TRUE(kmlab::test::take_fatal_bug_checks().empty());
}

namespace {
constexpr ULONG kTag = 0x54657374;  // 'tseT'
// Keeps every freed pool block (kernel/pool.hpp) while alive, so that a test
// can free a block the verifier reports and still clean up what is in it.
class KeepFreedBlocks {
  public:
    KeepFreedBlocks() : previous_(kmlab::kernel::set_pool_free_hook(keep)) {}
    ~KeepFreedBlocks() {
        kmlab::kernel::set_pool_free_hook(previous_);
        for (void* b : kept()) kmlab::kernel::release_pool_block(b);
        kept().clear();
    }

  private:
    static std::vector<void*>& kept() {
        static std::vector<void*> v;
        return v;
    }
    static bool keep(void* block, std::size_t) {
        kept().push_back(block);
        return true;
    }
    kmlab::kernel::PoolFreeHook previous_;
};
}  // namespace

// A lock freed with its pool block while held: 0x100B (lock, owner), as a
// delete of a held lock (decision, kmlab: verifier.hpp).
TEST_F(Verifier, FreeingAHeldLockIs0x100B) {
    KeepFreedBlocks keep;
    struct Object {
        ULONG data;
        FAST_MUTEX lock;
    };
    auto* o = static_cast<Object*>(ExAllocatePoolWithTag(NonPagedPool, sizeof(Object), kTag));
    ASSERT_NE(o, nullptr);
    ExInitializeFastMutex(&o->lock);
    ExAcquireFastMutex(&o->lock);
    ExFreePoolWithTag(o, kTag);
    auto bcs = take(bugcheck::VERIFIER_DEADLOCK_DELETED_WHILE_HELD);
    ASSERT_EQ(bcs.size(), 1u);
    EXPECT_EQ(bcs[0].parameter(2), reinterpret_cast<ULONG_PTR>(&o->lock));
    EXPECT_EQ(bcs[0].parameter(3), reinterpret_cast<ULONG_PTR>(KeGetCurrentThread()));
    // The block's locks are forgotten: the release (into kept memory) and
    // this thread's holds report nothing more.
    ExReleaseFastMutex(&o->lock);
    EXPECT_TRUE(kmlab::test::take_fatal_bug_checks().empty());
}

// An ERESOURCE freed without ExDeleteResourceLite: 0xD2 (resource, block,
// size) [bc:0xC4], held or not.
TEST_F(Verifier, FreeingAnUndeletedResourceIs0xD2) {
    KeepFreedBlocks keep;
    auto* r = static_cast<ERESOURCE*>(ExAllocatePoolWithTag(NonPagedPool, sizeof(ERESOURCE), kTag));
    ASSERT_NE(r, nullptr);
    ExInitializeResourceLite(r);
    ExFreePoolWithTag(r, kTag);
    auto bcs = take(bugcheck::VERIFIER_FREE_ACTIVE_RESOURCE);
    ASSERT_EQ(bcs.size(), 1u);
    EXPECT_EQ(bcs[0].parameter(2), reinterpret_cast<ULONG_PTR>(r));
    EXPECT_EQ(bcs[0].parameter(3), reinterpret_cast<ULONG_PTR>(r));
    EXPECT_GE(bcs[0].parameter(4), sizeof(ERESOURCE));
    ExDeleteResourceLite(r);  // off the system's resource list, in kept memory
    EXPECT_TRUE(kmlab::test::take_fatal_bug_checks().empty());
}

// What may be freed: a lock nobody holds, an ERESOURCE deleted first.
TEST_F(Verifier, FreeingAFreeLockOrADeletedResourceIsNotReported) {
    auto* m =
        static_cast<FAST_MUTEX*>(ExAllocatePoolWithTag(NonPagedPool, sizeof(FAST_MUTEX), kTag));
    ExInitializeFastMutex(m);
    ExAcquireFastMutex(m);
    ExReleaseFastMutex(m);
    ExFreePoolWithTag(m, kTag);
    auto* r = static_cast<ERESOURCE*>(ExAllocatePoolWithTag(NonPagedPool, sizeof(ERESOURCE), kTag));
    ExInitializeResourceLite(r);
    ExDeleteResourceLite(r);
    ExFreePoolWithTag(r, kTag);
    EXPECT_TRUE(kmlab::test::take_fatal_bug_checks().empty());
    EXPECT_FALSE(verifier::last_report().has_value());
}

// ---- Flavours: what moved from checked to verifier ----

namespace {
void worker(PVOID) {}
}  // namespace

using Flavors = kmlab::test::FlavorRestoringNt;

TEST_F(Flavors, CheckedInitializesAGuardedMutexAtDispatchLevelAsACheckedBuildDoes) {
    kmlab::set_flavor(Flavor::checked);
    KGUARDED_MUTEX m;
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    KeInitializeGuardedMutex(&m);  // returns normally [kmt-KeGuardedMutex]
    KeLowerIrql(old);
    EXPECT_EQ(m.Count, GM_LOCK_BIT);
}

TEST_F(Flavors, CheckedCreatesASystemThreadAtApcLevelAsACheckedBuildDoes) {
    kmlab::set_flavor(Flavor::checked);
    HANDLE h = nullptr;
    KIRQL old;
    KeRaiseIrql(APC_LEVEL, &old);
    EXPECT_EQ(
        PsCreateSystemThread(&h, THREAD_ALL_ACCESS, nullptr, nullptr, nullptr, worker, nullptr),
        STATUS_SUCCESS);
    KeLowerIrql(old);
    PVOID thread = nullptr;
    ASSERT_EQ(ObReferenceObjectByHandle(h, THREAD_ALL_ACCESS, *PsThreadType, KernelMode, &thread,
                                        nullptr),
              STATUS_SUCCESS);
    ZwClose(h);
    KeWaitForSingleObject(thread, Executive, KernelMode, FALSE, nullptr);
    ObDereferenceObject(thread);
}

TEST_F(Flavors, VerifierReportsEachRuleThatMoved) {
    kmlab::set_flavor(Flavor::verifier);
    KIRQL old;
    // check_irql_documented: KeInitializeGuardedMutex, the regions, PsCreateSystemThread.
    KGUARDED_MUTEX m;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    EXPECT_BUG_CHECK(KeInitializeGuardedMutex(&m), bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    EXPECT_BUG_CHECK(KeEnterCriticalRegion(), bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    KeLowerIrql(old);
    KeRaiseIrql(APC_LEVEL, &old);
    HANDLE h = nullptr;
    EXPECT_BUG_CHECK(
        PsCreateSystemThread(&h, THREAD_ALL_ACCESS, nullptr, nullptr, nullptr, worker, nullptr),
        bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    KeLowerIrql(old);
    // Driver Verifier's spin lock subcodes: KeReleaseSpinLock below DISPATCH_LEVEL (0x32).
    KSPIN_LOCK l;
    KeInitializeSpinLock(&l);
    KeAcquireSpinLock(&l, &old);
    kmlab::kernel::set_irql(KeGetCurrentThread(), PASSIVE_LEVEL);
    auto bc = EXPECT_BUG_CHECK(KeReleaseSpinLock(&l, PASSIVE_LEVEL),
                               bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    EXPECT_EQ(bc.parameter(1), bugcheck::VERIFIER_SPIN_LOCK_RELEASE_IRQL);
    kmlab::kernel::set_irql(KeGetCurrentThread(), DISPATCH_LEVEL);
    KeReleaseSpinLock(&l, old);
    // ERESOURCE outside a critical region (0x37).
    ERESOURCE r;
    ExInitializeResourceLite(&r);
    bc = EXPECT_BUG_CHECK(ExAcquireResourceExclusiveLite(&r, TRUE),
                          bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION);
    EXPECT_EQ(bc.parameter(1), bugcheck::VERIFIER_RESOURCE_ACQUIRE_APCS_ENABLED);
    ExDeleteResourceLite(&r);
    verifier::reset();
}

TEST_F(Flavors, CheckedDoesNotReportTheRulesThatMoved) {
    kmlab::set_flavor(Flavor::checked);
    KSPIN_LOCK l;
    KeInitializeSpinLock(&l);
    KIRQL old;
    KeAcquireSpinLock(&l, &old);
    kmlab::kernel::set_irql(KeGetCurrentThread(), PASSIVE_LEVEL);
    KeReleaseSpinLock(&l, PASSIVE_LEVEL);  // 0x32 is Driver Verifier's
    EXPECT_EQ(l, 0u);
    ERESOURCE r;
    ExInitializeResourceLite(&r);
    EXPECT_TRUE(ExAcquireResourceExclusiveLite(&r, TRUE));  // 0x37 is Driver Verifier's
    ExReleaseResourceLite(&r);
    ExDeleteResourceLite(&r);
}

TEST_F(Flavors, KmlabFlavorSelectsTheVerifier) {
    kmlab::set_flavor(Flavor::verifier);
    EXPECT_EQ(kmlab::flavor(), Flavor::verifier);
    EXPECT_NE(KeGetCurrentThread()->VerifierGate, 0);
    kmlab::test::on_new_thread([] { EXPECT_NE(KeGetCurrentThread()->VerifierGate, 0); });
    kmlab::set_flavor(Flavor::checked);
    EXPECT_EQ(KeGetCurrentThread()->VerifierGate, 0);
    verifier::reset();
}

extern "C" int kmlab_test_kmt_is_checked_build(void);

// A kmtest asks KmtIsCheckedBuild for the checked build's behaviour: the
// verifier flavour is checked plus Driver Verifier, so it is one too.
TEST_F(Flavors, KmtIsCheckedBuildInCheckedAndVerifier) {
    kmlab::set_flavor(Flavor::free);
    EXPECT_EQ(kmlab_test_kmt_is_checked_build(), 0);
    kmlab::set_flavor(Flavor::checked);
    EXPECT_EQ(kmlab_test_kmt_is_checked_build(), 1);
    kmlab::set_flavor(Flavor::verifier);
    EXPECT_EQ(kmlab_test_kmt_is_checked_build(), 1);
    verifier::reset();
}

// ---- Findings of the adversarial review (issue 21) ----

extern "C" {
extern ::KMUTEX kmlab_test_c_mutex_a, kmlab_test_c_mutex_b;
extern ::FAST_MUTEX kmlab_test_c_fast_a, kmlab_test_c_fast_b;
void kmlab_test_c_init_a(void);
void kmlab_test_c_init_b(void);
void kmlab_test_c_take_mutexes(::PKMUTEX first, ::PKMUTEX second);
void kmlab_test_c_take_fast_mutexes(::PFAST_MUTEX first, ::PFAST_MUTEX second);
}

namespace {
std::size_t count_subcode(ULONG_PTR subcode) {
    std::size_t n = 0;
    for (auto& bc : kmlab::test::take_fatal_bug_checks()) {
        if (bc.code() == bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION && bc.parameter(1) == subcode)
            ++n;
    }
    return n;
}
// One initialization site for every lock it initializes (a driver's helper).
[[gnu::noinline]] void init_device_lock(KMUTEX* m) {
    KeInitializeMutex(m, 0);
    asm volatile("" ::: "memory");  // not a tail call: the site is in here
}
}  // namespace

// Locks a C driver initializes at two sites are two classes: the C entry
// point names its caller as the site, not the C++ call inside wdm.cpp.
TEST_F(Verifier, CFaceTwoMutexCycleIsReported) {
    kmlab_test_c_init_a();
    kmlab_test_c_init_b();
    auto* a = reinterpret_cast<::PKMUTEX>(&kmlab_test_c_mutex_a);
    auto* b = reinterpret_cast<::PKMUTEX>(&kmlab_test_c_mutex_b);
    kmlab::test::on_new_thread([&] { kmlab_test_c_take_mutexes(a, b); });
    EXPECT_EQ(count_subcode(bugcheck::VERIFIER_DEADLOCK_DETECTED), 0u);
    kmlab::test::on_new_thread([&] { kmlab_test_c_take_mutexes(b, a); });
    EXPECT_EQ(count_subcode(bugcheck::VERIFIER_DEADLOCK_DETECTED), 1u)
        << "C-face KMUTEX A-B/B-A missed";
}

TEST_F(Verifier, CFaceTwoFastMutexCycleIsReported) {
    kmlab_test_c_init_a();
    kmlab_test_c_init_b();
    kmlab::test::on_new_thread(
        [] { kmlab_test_c_take_fast_mutexes(&kmlab_test_c_fast_a, &kmlab_test_c_fast_b); });
    kmlab::test::on_new_thread(
        [] { kmlab_test_c_take_fast_mutexes(&kmlab_test_c_fast_b, &kmlab_test_c_fast_a); });
    EXPECT_EQ(count_subcode(bugcheck::VERIFIER_DEADLOCK_DETECTED), 1u)
        << "C-face FAST_MUTEX A-B/B-A missed";
    auto r = verifier::last_report();
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->threads.size(), 2u);
    EXPECT_EQ(thread_locks(*r, 1),
              (std::vector<const void*>{&kmlab_test_c_fast_b, &kmlab_test_c_fast_a}));
}

// Two locks of one class (one initialization site): a consistent order is
// silent, a real A-B / B-A between the two instances is reported.
TEST_F(Verifier, TwoMutexesFromOneInitSiteCycleIsReported) {
    static KMUTEX m[2];
    init_device_lock(&m[0]);
    init_device_lock(&m[1]);
    auto take_two = [](KMUTEX* p, KMUTEX* q) {
        KeWaitForSingleObject(p, Executive, KernelMode, FALSE, nullptr);
        KeWaitForSingleObject(q, Executive, KernelMode, FALSE, nullptr);
        KeReleaseMutex(q, FALSE);
        KeReleaseMutex(p, FALSE);
    };
    kmlab::test::on_new_thread([&] { take_two(&m[0], &m[1]); });
    kmlab::test::on_new_thread([&] { take_two(&m[0], &m[1]); });
    EXPECT_EQ(count_subcode(bugcheck::VERIFIER_DEADLOCK_DETECTED), 0u) << "one order";
    kmlab::test::on_new_thread([&] { take_two(&m[1], &m[0]); });
    EXPECT_EQ(count_subcode(bugcheck::VERIFIER_DEADLOCK_DETECTED), 1u)
        << "same-site A-B/B-A missed";
    auto r = verifier::last_report();
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->threads.size(), 2u);
    EXPECT_EQ(thread_locks(*r, 0), (std::vector<const void*>{&m[0], &m[1]}));
    EXPECT_EQ(thread_locks(*r, 1), (std::vector<const void*>{&m[1], &m[0]}));
}

// A three-instance cycle of one class: A-B, B-C, then C-A.
TEST_F(Verifier, ThreeMutexesFromOneInitSiteCycleIsReported) {
    static KMUTEX m[3];
    for (auto& x : m) init_device_lock(&x);
    auto take_two = [](KMUTEX* p, KMUTEX* q) {
        KeWaitForSingleObject(p, Executive, KernelMode, FALSE, nullptr);
        KeWaitForSingleObject(q, Executive, KernelMode, FALSE, nullptr);
        KeReleaseMutex(q, FALSE);
        KeReleaseMutex(p, FALSE);
    };
    kmlab::test::on_new_thread([&] { take_two(&m[0], &m[1]); });
    kmlab::test::on_new_thread([&] { take_two(&m[1], &m[2]); });
    kmlab::test::on_new_thread([&] { take_two(&m[0], &m[2]); });  // consistent
    EXPECT_EQ(count_subcode(bugcheck::VERIFIER_DEADLOCK_DETECTED), 0u);
    kmlab::test::on_new_thread([&] { take_two(&m[2], &m[0]); });
    EXPECT_EQ(count_subcode(bugcheck::VERIFIER_DEADLOCK_DETECTED), 1u);
}

// An idiomatic lock's destructor forgets it: two new locks at the addresses
// of two dead ones, taken in a consistent order of their own, are no cycle.
TEST_F(Verifier, IdiomaticLockAddressReuseIsNotACycle) {
    using M = kmlab::FastMutex<int, kmlab::backends::Futex>;
    alignas(M) static unsigned char buf1[sizeof(M)], buf2[sizeof(M)];
    {
        auto* x = new (buf1) M(0);
        auto* y = new (buf2) M(0);
        kmlab::test::on_new_thread([&] {
            auto gx = x->lock();
            auto gy = y->lock();
            EXPECT_TRUE(gx && gy);
        });
        x->~M();
        y->~M();
    }
    auto* p = new (buf2) M(0);
    auto* q = new (buf1) M(0);
    bool refused = false;
    kmlab::test::on_new_thread([&] {
        auto gp = p->lock();
        auto gq = q->lock();
        refused = !gq.has_value();
    });
    EXPECT_EQ(count_subcode(bugcheck::VERIFIER_DEADLOCK_DETECTED), 0u);
    p->~M();
    q->~M();
    EXPECT_FALSE(refused) << "two new locks at reused addresses inherited the dead locks' edges";
}

// forget() is what a destructor calls: an EX_SPIN_LOCK has no destructor
// (kernel/verifier.hpp, "Address reuse": a known limit), so a test or a
// driver wrapper that reuses the memory calls it.
TEST_F(Verifier, ForgetDropsAnAddressKeyedLocksEdges) {
    static EX_SPIN_LOCK slot[2];
    auto take_two = [](EX_SPIN_LOCK* p, EX_SPIN_LOCK* q) {
        KIRQL o1 = ExAcquireSpinLockExclusive(p);
        KIRQL o2 = ExAcquireSpinLockExclusive(q);
        ExReleaseSpinLockExclusive(q, o2);
        ExReleaseSpinLockExclusive(p, o1);
    };
    slot[0] = slot[1] = 0;
    kmlab::test::on_new_thread([&] { take_two(&slot[0], &slot[1]); });
    verifier::forget(&slot[0]);
    verifier::forget(&slot[1]);
    slot[0] = slot[1] = 0;
    kmlab::test::on_new_thread([&] { take_two(&slot[1], &slot[0]); });
    EXPECT_EQ(count_subcode(bugcheck::VERIFIER_DEADLOCK_DETECTED), 0u);
}

// KeWaitForMultipleObjects(WaitAll) acquires its mutants at once: it orders
// none of them, so a later B then A is no cycle.
TEST_F(Verifier, WaitAllThenSingleIsNotACycle) {
    static KMUTEX a, b;
    KeInitializeMutex(&a, 0);
    KeInitializeMutex(&b, 0);
    verifier::set_name(&a, "WA");
    verifier::set_name(&b, "WB");
    kmlab::test::on_new_thread([] {
        PVOID objs[2] = {&a, &b};
        KWAIT_BLOCK wb[2];
        EXPECT_EQ(
            KeWaitForMultipleObjects(2, objs, WaitAll, Executive, KernelMode, FALSE, nullptr, wb),
            STATUS_SUCCESS);
        KeReleaseMutex(&b, FALSE);
        KeReleaseMutex(&a, FALSE);
    });
    kmlab::test::on_new_thread([] {
        KeWaitForSingleObject(&b, Executive, KernelMode, FALSE, nullptr);
        KeWaitForSingleObject(&a, Executive, KernelMode, FALSE, nullptr);
        KeReleaseMutex(&a, FALSE);
        KeReleaseMutex(&b, FALSE);
    });
    EXPECT_EQ(count_subcode(bugcheck::VERIFIER_DEADLOCK_DETECTED), 0u)
        << "WaitAll{A,B} then B->A reported as a cycle";
}

// A hold recorded in the verifier flavour does not outlive a switch out of
// it: its release there is unseen.
TEST_F(Verifier, ReleaseWhileFreeLeavesNoStaleHold) {
    static FAST_MUTEX f;
    ExInitializeFastMutex(&f);
    kmlab::test::on_new_thread([] {
        ExAcquireFastMutex(&f);
        kmlab::set_flavor(Flavor::free);
        ExReleaseFastMutex(&f);
        kmlab::set_flavor(Flavor::verifier);
    });
    EXPECT_EQ(count_subcode(bugcheck::VERIFIER_DEADLOCK_THREAD_EXIT_HOLDING), 0u)
        << "a thread that released everything reported as exiting with a lock held";
}

// set_name before the initialization routine: the name and its class stay.
TEST_F(Verifier, NameGivenBeforeInitializationSurvives) {
    static FAST_MUTEX a, b;
    verifier::set_name(&a, "NamedA");
    verifier::set_name(&b, "NamedB");
    ExInitializeFastMutex(&a);
    ExInitializeFastMutex(&b);
    kmlab::test::on_new_thread([] {
        ExAcquireFastMutex(&a);
        ExAcquireFastMutex(&b);
        ExReleaseFastMutex(&b);
        ExReleaseFastMutex(&a);
    });
    kmlab::test::on_new_thread([] {
        ExAcquireFastMutex(&b);
        ExAcquireFastMutex(&a);
        ExReleaseFastMutex(&a);
        ExReleaseFastMutex(&b);
    });
    ASSERT_EQ(count_subcode(bugcheck::VERIFIER_DEADLOCK_DETECTED), 1u);
    auto r = verifier::last_report();
    ASSERT_TRUE(r.has_value());
    // Lock A is the first thread's first lock (the report's order).
    EXPECT_EQ(r->locks.at(0).name, "NamedA") << r->text();
    EXPECT_EQ(r->locks.at(1).name, "NamedB") << r->text();
}

// The default bug-check handler prints the verifier's report for 0xD2 too
// (kernel/src/bugcheck.cpp), not only for Deadlock Detection's 0x1000-0x100B.
TEST_F(Verifier, DefaultHandlerPrintsTheReportOf0xD2) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_DEATH(
        {
            kmlab::set_bug_check_handler(nullptr);  // the default: print, abort
            auto* r = static_cast<ERESOURCE*>(
                ExAllocatePoolWithTag(NonPagedPool, sizeof(ERESOURCE), kTag));
            ExInitializeResourceLite(r);
            ExFreePoolWithTag(r, kTag);
        },
        "Deadlock Detection: 0xC4 subcode 0xD2");
}
