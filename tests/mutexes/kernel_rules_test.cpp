// The NT routines and the idiomatic types answer the same misuse the same
// way, because both ask the kernel's checks (kernel/rules.hpp): for each rule,
// the misuse through the NT routine and through the idiomatic type over every
// backend, compared as the kernel reports them (the bug-check code and its
// four parameters, or the raised status). Each side names its own object, so
// the object's address is replaced by one marker before comparing.
#include <array>
#include <expected>
#include <ostream>

#include <kmlab/kmlab.hpp>
#include "support.hpp"

using namespace kmlab;
using namespace kmlab::nt;

namespace {

struct Answer {
    bool bug_check = false;
    ULONG code = 0;
    std::array<ULONG_PTR, 4> parameters = {};
    NTSTATUS status = STATUS_SUCCESS;
    bool operator==(const Answer&) const = default;
};

void PrintTo(const Answer& a, std::ostream* os) {
    if (!a.bug_check) {
        *os << "raised status 0x" << std::hex << static_cast<ULONG>(a.status);
        return;
    }
    *os << "bug check 0x" << std::hex << a.code << " (";
    for (ULONG_PTR p : a.parameters) *os << " 0x" << p;
    *os << " )";
}

constexpr ULONG_PTR kTheObject = 0x0B1EC7;

Answer bug_check_answer(const BugCheck& bc, const void* object) {
    Answer a{true, bc.code(), bc.parameters()};
    for (ULONG_PTR& p : a.parameters) {
        if (p == reinterpret_cast<ULONG_PTR>(object)) p = kTheObject;
    }
    return a;
}

// What the NT routine did when `call` misused `object`.
template <class Call>
Answer nt_answer(const void* object, Call&& call) {
    try {
        call();
    } catch (const BugCheck& bc) {
        return bug_check_answer(bc, object);
    } catch (const NtException& e) {
        return {false, 0, {}, e.status()};
    }
    ADD_FAILURE() << "the NT routine accepted the misuse";
    return {};
}

// The idiomatic type's Error for the same misuse of `object`, as the kernel
// would report it.
void expect_same_answer(const Error& e, Errc code, const void* object, const Answer& kernel) {
    EXPECT_EQ(e.code, code) << e.message();
    EXPECT_EQ(e.mutex, object);
    EXPECT_EQ(e.irql, KeGetCurrentIrql()) << "the caller's IRQL at the misuse";
    const Answer idiomatic = e.is_bug_check() ? bug_check_answer(e.to_bug_check(), object)
                                              : Answer{false, 0, {}, e.status};
    EXPECT_EQ(idiomatic, kernel);
}
template <class T>
void expect_same_answer(const std::expected<T, Error>& r, Errc code, const void* object,
                        const Answer& kernel) {
    ASSERT_FALSE(r) << "the idiomatic type accepted the misuse";
    expect_same_answer(r.error(), code, object, kernel);
}

template <class B>
class KernelRules : public kmlab::test::Nt {};
using Backends = ::testing::Types<backends::Futex, backends::Spin, backends::Dispatcher>;
struct BackendNames {
    template <class B>
    static std::string GetName(int) {
        return std::string(B::name());
    }
};
TYPED_TEST_SUITE(KernelRules, Backends, BackendNames);

}  // namespace

// ---- FAST_MUTEX ----

TYPED_TEST(KernelRules, FastMutexAcquiredAboveApcLevel) {
    FAST_MUTEX nt;
    ExInitializeFastMutex(&nt);
    FastMutex<long, TypeParam> m(0L);
    const KIRQL old = KeRaiseIrqlToDpcLevel();
    const Answer acquire = nt_answer(&nt, [&] { ExAcquireFastMutex(&nt); });
    EXPECT_EQ(
        acquire,
        (Answer{true,
                bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
                {bugcheck::VERIFIER_FAST_MUTEX_ACQUIRE_IRQL, DISPATCH_LEVEL, kTheObject, 0}}));
    expect_same_answer(m.lock(), Errc::irql_too_high, &m, acquire);
    const Answer try_acquire = nt_answer(&nt, [&] { ExTryToAcquireFastMutex(&nt); });
    EXPECT_EQ(try_acquire, acquire);
    expect_same_answer(m.try_lock(), Errc::irql_too_high, &m, try_acquire);
    KeLowerIrql(old);
}

TYPED_TEST(KernelRules, FastMutexReleasedBelowApcLevel) {
    FAST_MUTEX nt;
    ExInitializeFastMutex(&nt);
    FastMutex<long, TypeParam> m(0L);
    KIRQL old;
    ExAcquireFastMutex(&nt);
    KeLowerIrql(PASSIVE_LEVEL);
    const Answer kernel = nt_answer(&nt, [&] { ExReleaseFastMutex(&nt); });
    EXPECT_EQ(kernel.parameters[0], bugcheck::VERIFIER_FAST_MUTEX_RELEASE_IRQL);
    KeRaiseIrql(APC_LEVEL, &old);
    ExReleaseFastMutex(&nt);

    auto g = m.lock();
    ASSERT_TRUE(g);
    KeLowerIrql(PASSIVE_LEVEL);
    expect_same_answer(g->unlock(), Errc::wrong_release_irql, &m, kernel);
    KeRaiseIrql(APC_LEVEL, &old);
    ASSERT_TRUE(g->unlock());
}

TYPED_TEST(KernelRules, FastMutexReleasedByAThreadThatDoesNotOwnIt) {
    FAST_MUTEX nt;
    ExInitializeFastMutex(&nt);
    FastMutex<long, TypeParam> m(0L);
    ExAcquireFastMutex(&nt);
    auto g = m.lock();
    ASSERT_TRUE(g);
    auto moved = std::move(*g);
    kmlab::test::on_new_thread([&] {
        // At APC_LEVEL, where the release would be legal for the owner.
        KIRQL old;
        KeRaiseIrql(APC_LEVEL, &old);
        const Answer kernel = nt_answer(&nt, [&] { ExReleaseFastMutex(&nt); });
        EXPECT_EQ(kernel.code, bugcheck::THREAD_NOT_MUTEX_OWNER);
        expect_same_answer(moved.unlock(), Errc::not_owner, &m, kernel);
        KeLowerIrql(old);
    });
    ASSERT_TRUE(moved.unlock());
    ExReleaseFastMutex(&nt);
}

TYPED_TEST(KernelRules, FastMutexAcquiredAgainByItsOwner) {
    FAST_MUTEX nt;
    ExInitializeFastMutex(&nt);
    FastMutex<long, TypeParam> m(0L);
    ExAcquireFastMutex(&nt);
    const Answer kernel = nt_answer(&nt, [&] { ExAcquireFastMutex(&nt); });
    EXPECT_EQ(kernel.code, bugcheck::MUTEX_ALREADY_OWNED);
    {
        auto g = m.lock();
        ASSERT_TRUE(g);
        expect_same_answer(m.lock(), Errc::recursive_acquire, &m, kernel);
    }
    ExReleaseFastMutex(&nt);
}

// ---- KGUARDED_MUTEX ----

TYPED_TEST(KernelRules, GuardedMutexAcquiredAboveApcLevel) {
    KGUARDED_MUTEX nt;
    KeInitializeGuardedMutex(&nt);
    GuardedMutex<long, TypeParam> m(0L);
    const KIRQL old = KeRaiseIrqlToDpcLevel();
    const Answer acquire = nt_answer(&nt, [&] { KeAcquireGuardedMutex(&nt); });
    EXPECT_EQ(acquire,
              (Answer{true, bugcheck::IRQL_NOT_LESS_OR_EQUAL, {kTheObject, DISPATCH_LEVEL, 0, 0}}));
    expect_same_answer(m.lock(), Errc::irql_too_high, &m, acquire);
    const Answer try_acquire = nt_answer(&nt, [&] { KeTryToAcquireGuardedMutex(&nt); });
    EXPECT_EQ(try_acquire, acquire);
    expect_same_answer(m.try_lock(), Errc::irql_too_high, &m, try_acquire);
    KeLowerIrql(old);
}

TYPED_TEST(KernelRules, GuardedMutexReleasedAboveApcLevel) {
    KGUARDED_MUTEX nt;
    KeInitializeGuardedMutex(&nt);
    GuardedMutex<long, TypeParam> m(0L);
    KeAcquireGuardedMutex(&nt);
    auto g = m.lock();
    ASSERT_TRUE(g);
    const KIRQL old = KeRaiseIrqlToDpcLevel();
    const Answer kernel = nt_answer(&nt, [&] { KeReleaseGuardedMutex(&nt); });
    EXPECT_EQ(kernel.code, bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    expect_same_answer(g->unlock(), Errc::irql_too_high, &m, kernel);
    KeLowerIrql(old);
    ASSERT_TRUE(g->unlock());
    KeReleaseGuardedMutex(&nt);
}

TYPED_TEST(KernelRules, GuardedMutexReleasedByAThreadThatDoesNotOwnIt) {
    KGUARDED_MUTEX nt;
    KeInitializeGuardedMutex(&nt);
    GuardedMutex<long, TypeParam> m(0L);
    KeAcquireGuardedMutex(&nt);
    auto g = m.lock();
    ASSERT_TRUE(g);
    auto moved = std::move(*g);
    kmlab::test::on_new_thread([&] {
        const Answer kernel = nt_answer(&nt, [&] { KeReleaseGuardedMutex(&nt); });
        EXPECT_EQ(kernel.code, bugcheck::THREAD_NOT_MUTEX_OWNER);
        expect_same_answer(moved.unlock(), Errc::not_owner, &m, kernel);
    });
    ASSERT_TRUE(moved.unlock());
    KeReleaseGuardedMutex(&nt);
}

TYPED_TEST(KernelRules, GuardedMutexAcquiredAgainByItsOwner) {
    KGUARDED_MUTEX nt;
    KeInitializeGuardedMutex(&nt);
    GuardedMutex<long, TypeParam> m(0L);
    KeAcquireGuardedMutex(&nt);
    const Answer kernel = nt_answer(&nt, [&] { KeAcquireGuardedMutex(&nt); });
    EXPECT_EQ(kernel.code, bugcheck::MUTEX_ALREADY_OWNED);
    {
        auto g = m.lock();
        ASSERT_TRUE(g);
        expect_same_answer(m.lock(), Errc::recursive_acquire, &m, kernel);
    }
    KeReleaseGuardedMutex(&nt);
}

// ---- KMUTEX ----

namespace {
NTSTATUS wait_forever(KMUTEX& m) {
    return KeWaitForSingleObject(&m, Executive, KernelMode, FALSE, nullptr);
}
}  // namespace

// lock() is a wait with no timeout; lock_for(0) and try_lock() have no
// timeout object whose address the kernel's 0xC4/0x3B could name.
TYPED_TEST(KernelRules, KMutexWaitedForAboveApcLevel) {
    KMUTEX nt;
    KeInitializeMutex(&nt, 0);
    KMutex<long, TypeParam> m(0L);
    for (KIRQL irql : {DISPATCH_LEVEL, HIGH_LEVEL}) {
        KIRQL old;
        KeRaiseIrql(irql, &old);
        const Answer kernel = nt_answer(&nt, [&] { wait_forever(nt); });
        EXPECT_EQ(kernel, (Answer{true,
                                  bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
                                  {bugcheck::VERIFIER_WAIT_AT_DISPATCH, irql, kTheObject, 0}}));
        expect_same_answer(m.lock(), Errc::irql_too_high, &m, kernel);
        KeLowerIrql(old);
    }
}

TYPED_TEST(KernelRules, KMutexReleasedAboveDispatchLevel) {
    KMUTEX nt;
    KeInitializeMutex(&nt, 0);
    KMutex<long, TypeParam> m(0L);
    ASSERT_EQ(wait_forever(nt), STATUS_SUCCESS);
    auto g = m.lock();
    ASSERT_TRUE(g);
    KIRQL old;
    KeRaiseIrql(HIGH_LEVEL, &old);
    const Answer kernel = nt_answer(&nt, [&] { KeReleaseMutex(&nt, FALSE); });
    EXPECT_EQ(kernel, (Answer{true, bugcheck::IRQL_NOT_LESS_OR_EQUAL, {kTheObject, HIGH_LEVEL}}));
    expect_same_answer(g->unlock(), Errc::irql_too_high, &m, kernel);
    KeLowerIrql(old);
    ASSERT_TRUE(g->unlock());
    KeReleaseMutex(&nt, FALSE);
}

TYPED_TEST(KernelRules, KMutexReleasedByAThreadThatDoesNotOwnIt) {
    KMUTEX nt;
    KeInitializeMutex(&nt, 0);
    KMutex<long, TypeParam> m(0L);
    ASSERT_EQ(wait_forever(nt), STATUS_SUCCESS);
    auto g = m.lock();
    ASSERT_TRUE(g);
    auto moved = std::move(*g);
    kmlab::test::on_new_thread([&] {
        const Answer kernel = nt_answer(&nt, [&] { KeReleaseMutex(&nt, FALSE); });
        EXPECT_EQ(kernel, (Answer{false, 0, {}, STATUS_MUTANT_NOT_OWNED}));
        expect_same_answer(moved.unlock(), Errc::not_owner, &m, kernel);
    });
    ASSERT_TRUE(moved.unlock());
    KeReleaseMutex(&nt, FALSE);
}

TYPED_TEST(KernelRules, KMutexAcquiredOnceMoreThanMinlongTimes) {
    KMUTEX nt;
    KeInitializeMutex(&nt, 0);
    KMutex<long, TypeParam> m(0L);
    ASSERT_EQ(wait_forever(nt), STATUS_SUCCESS);
    nt.Header.SignalState = MINLONG;  // as if acquired 2^31 + 1 times
    const Answer kernel = nt_answer(&nt, [&] { wait_forever(nt); });
    EXPECT_EQ(kernel, (Answer{false, 0, {}, STATUS_MUTANT_LIMIT_EXCEEDED}));
    nt.Header.SignalState = 0;
    KeReleaseMutex(&nt, FALSE);

    auto g = m.lock();
    ASSERT_TRUE(g);
    m.raw().debug_set_signal_state(MINLONG);
    expect_same_answer(m.lock(), Errc::recursion_limit, &m, kernel);
    m.raw().debug_set_signal_state(0);
    ASSERT_TRUE(g->unlock());
}
