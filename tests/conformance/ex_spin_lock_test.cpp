// EX_SPIN_LOCK routines (kernel/ex_spin_lock.hpp). Sources: the WDK pages
// [ddi:reader-writer-spin-locks], [ddi:exacquirespinlockexclusive],
// [ddi:exacquirespinlockshared], [ddi:exacquirespinlockexclusiveatdpclevel],
// [ddi:extryacquirespinlockexclusiveatdpclevel],
// [ddi:extryconvertsharedspinlockexclusive]; the IRQL checks of the HAL
// [ros-apic]. No kmtest covers EX_SPIN_LOCK. The rules: kernel/rules_rw_lock.hpp.
#include <atomic>
#include <thread>

#include "support.hpp"

using namespace kmlab::nt;
using kmlab::test::Nt;
using ExSpinLock = Nt;
namespace bugcheck = kmlab::bugcheck;

namespace {

constexpr LONG kWriter = INT32_MIN;  // bit 31

LONG word(EX_SPIN_LOCK& l) {
    return std::atomic_ref<LONG>(l).load();
}

class FlavorScope {
  public:
    explicit FlavorScope(kmlab::Flavor f) : saved_(kmlab::flavor()) { kmlab::set_flavor(f); }
    ~FlavorScope() { kmlab::set_flavor(saved_); }

  private:
    kmlab::Flavor saved_;
};

}  // namespace

// "A spin lock is a 32-bit variable of type EX_SPIN_LOCK ... initialize the
// spin lock to zero" [ddi:exacquirespinlockexclusive].
TEST_F(ExSpinLock, TypeIsA32BitWord) {
    static_assert(sizeof(EX_SPIN_LOCK) == 4);
    static_assert(sizeof(LOGICAL) == 4);
}

// The raising forms raise to DISPATCH_LEVEL and return the IRQL found; the
// releases restore it [ddi:exacquirespinlockexclusive][ddi:exacquirespinlockshared].
TEST_F(ExSpinLock, RaisingFormsRaiseToDispatchAndReturnTheOldIrql) {
    EX_SPIN_LOCK l = 0;
    KIRQL old = ExAcquireSpinLockExclusive(&l);
    EXPECT_EQ(old, PASSIVE_LEVEL);
    EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);
    EXPECT_EQ(word(l), kWriter);
    ExReleaseSpinLockExclusive(&l, old);
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
    EXPECT_EQ(word(l), 0);

    KIRQL apc;
    KeRaiseIrql(APC_LEVEL, &apc);
    old = ExAcquireSpinLockShared(&l);
    EXPECT_EQ(old, APC_LEVEL);
    EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);
    EXPECT_EQ(word(l), 1);
    KIRQL old2 = ExAcquireSpinLockShared(&l);  // readers share
    EXPECT_EQ(old2, DISPATCH_LEVEL);
    EXPECT_EQ(word(l), 2);
    ExReleaseSpinLockShared(&l, old2);
    ExReleaseSpinLockShared(&l, old);
    EXPECT_EQ(KeGetCurrentIrql(), APC_LEVEL);
    EXPECT_EQ(word(l), 0);
    KeLowerIrql(apc);
}

// The AtDpcLevel forms leave the IRQL alone [ddi:exacquirespinlockexclusiveatdpclevel].
TEST_F(ExSpinLock, AtDpcLevelFormsLeaveTheIrql) {
    EX_SPIN_LOCK l = 0;
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    ExAcquireSpinLockSharedAtDpcLevel(&l);
    ExAcquireSpinLockSharedAtDpcLevel(&l);
    EXPECT_EQ(word(l), 2);
    ExReleaseSpinLockSharedFromDpcLevel(&l);
    ExReleaseSpinLockSharedFromDpcLevel(&l);
    ExAcquireSpinLockExclusiveAtDpcLevel(&l);
    EXPECT_EQ(word(l), kWriter);
    EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);
    ExReleaseSpinLockExclusiveFromDpcLevel(&l);
    EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);
    EXPECT_EQ(word(l), 0);
    KeLowerIrql(old);
}

TEST_F(ExSpinLock, TryAcquiresNeverSpin) {
    EX_SPIN_LOCK l = 0;
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    ASSERT_TRUE(ExTryAcquireSpinLockSharedAtDpcLevel(&l));
    EXPECT_TRUE(ExTryAcquireSpinLockSharedAtDpcLevel(&l));
    EXPECT_FALSE(ExTryAcquireSpinLockExclusiveAtDpcLevel(&l)) << "readers hold it";
    EXPECT_EQ(word(l), 2) << "a failed exclusive try leaves no claim behind";
    ExReleaseSpinLockSharedFromDpcLevel(&l);
    ExReleaseSpinLockSharedFromDpcLevel(&l);
    ASSERT_TRUE(ExTryAcquireSpinLockExclusiveAtDpcLevel(&l));
    EXPECT_FALSE(ExTryAcquireSpinLockExclusiveAtDpcLevel(&l)) << "not recursive";
    EXPECT_FALSE(ExTryAcquireSpinLockSharedAtDpcLevel(&l));
    ExReleaseSpinLockExclusiveFromDpcLevel(&l);
    EXPECT_EQ(word(l), 0);
    KeLowerIrql(old);
}

// "This attempt succeeds if no readers already hold the spin lock for
// shared access, and if no writer is already waiting"
// [ddi:reader-writer-spin-locks]; the caller keeps its shared hold on
// failure; the converted lock is released as exclusive with the IRQL the
// shared acquire returned [ddi:extryconvertsharedspinlockexclusive].
TEST_F(ExSpinLock, ConvertSucceedsOnlyForTheSoleReader) {
    EX_SPIN_LOCK l = 0;
    const KIRQL old = ExAcquireSpinLockShared(&l);
    ExAcquireSpinLockSharedAtDpcLevel(&l);  // a second reader
    EXPECT_FALSE(ExTryConvertSharedSpinLockExclusive(&l));
    EXPECT_EQ(word(l), 2) << "both keep their shared holds";
    ExReleaseSpinLockSharedFromDpcLevel(&l);
    ASSERT_TRUE(ExTryConvertSharedSpinLockExclusive(&l));
    EXPECT_EQ(word(l), kWriter);
    ExReleaseSpinLockExclusive(&l, old);
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
    EXPECT_EQ(word(l), 0);
}

TEST_F(ExSpinLock, ConvertFailsWhileAWriterWaits) {
    EX_SPIN_LOCK l = 0;
    const KIRQL old = ExAcquireSpinLockShared(&l);
    std::thread writer([&] {
        const KIRQL o = ExAcquireSpinLockExclusive(&l);
        ExReleaseSpinLockExclusive(&l, o);
    });
    ASSERT_TRUE(kmlab::test::eventually([&] { return word(l) == (kWriter | 1); }));
    EXPECT_FALSE(ExTryConvertSharedSpinLockExclusive(&l));
    ExReleaseSpinLockShared(&l, old);
    writer.join();
    EXPECT_EQ(word(l), 0);
}

// "While the writer waits, no new reader threads can acquire the lock.
// Instead, a reader ... must first wait for the writer to acquire and
// release the lock" [ddi:reader-writer-spin-locks]: here the writer has
// claimed the lock and waits for the reader to drain (a writer queued
// behind another writer holds back no one: decision, kmlab,
// rw_lock_algorithm.hpp).
TEST_F(ExSpinLock, AWaitingWriterHoldsBackNewReaders) {
    EX_SPIN_LOCK l = 0;
    const KIRQL old = ExAcquireSpinLockShared(&l);
    std::atomic<int> order{0};
    std::atomic<int> writer_at{-1}, reader_at{-1};
    std::thread writer([&] {
        const KIRQL o = ExAcquireSpinLockExclusive(&l);
        writer_at = order.fetch_add(1);
        ExReleaseSpinLockExclusive(&l, o);
    });
    ASSERT_TRUE(kmlab::test::eventually([&] { return word(l) == (kWriter | 1); }));
    std::thread reader([&] {
        const KIRQL o = ExAcquireSpinLockShared(&l);
        reader_at = order.fetch_add(1);
        ExReleaseSpinLockShared(&l, o);
    });
    kmlab::test::on_new_thread([&] {
        KIRQL o;
        KeRaiseIrql(DISPATCH_LEVEL, &o);
        EXPECT_FALSE(ExTryAcquireSpinLockSharedAtDpcLevel(&l));
        KeLowerIrql(o);
    });
    EXPECT_EQ(order.load(), 0) << "neither got in while the first reader holds it";
    ExReleaseSpinLockShared(&l, old);
    writer.join();
    reader.join();
    EXPECT_EQ(writer_at.load(), 0) << "the waiting writer goes first";
    EXPECT_EQ(reader_at.load(), 1);
    EXPECT_EQ(word(l), 0);
}

TEST_F(ExSpinLock, StressWith3And5Threads) {
    for (int threads : {3, 5}) {
        EX_SPIN_LOCK l = 0;
        long a = 0, b = 0;
        std::atomic<int> bad{0};
        std::vector<std::thread> pool;
        for (int i = 0; i < threads; ++i) {
            pool.emplace_back([&, i] {
                for (int k = 0; k < 20000; ++k) {
                    if ((k + i) % 4 == 0) {
                        const KIRQL o = ExAcquireSpinLockExclusive(&l);
                        ++a;
                        ++b;
                        ExReleaseSpinLockExclusive(&l, o);
                    } else {
                        const KIRQL o = ExAcquireSpinLockShared(&l);
                        if (a != b) ++bad;
                        ExReleaseSpinLockShared(&l, o);
                    }
                }
            });
        }
        for (auto& t : pool) t.join();
        EXPECT_EQ(bad.load(), 0);
        EXPECT_EQ(a, b);
        EXPECT_EQ(word(l), 0) << threads << " threads";
    }
}

// ---- rules ----

// IRQL <= DISPATCH_LEVEL [ddi:exacquirespinlockexclusive]: above it the
// raise to DISPATCH_LEVEL lowers, which the checked HAL reports as
// IRQL_NOT_GREATER_OR_EQUAL (current, new, 0, 9) [ros-apic]; the lock is untouched.
TEST_F(ExSpinLock, RaisingAcquireAboveDispatchBugChecksInTheCheckedFlavour) {
    FlavorScope checked(kmlab::Flavor::checked);
    EX_SPIN_LOCK l = 0;
    KIRQL old;
    KeRaiseIrql(HIGH_LEVEL, &old);
    auto bc = EXPECT_BUG_CHECK(ExAcquireSpinLockExclusive(&l), bugcheck::IRQL_NOT_GREATER_OR_EQUAL);
    EXPECT_EQ(bc.parameter(1), HIGH_LEVEL);
    EXPECT_EQ(bc.parameter(2), DISPATCH_LEVEL);
    EXPECT_EQ(bc.parameter(4), 9u);
    EXPECT_BUG_CHECK(ExAcquireSpinLockShared(&l), bugcheck::IRQL_NOT_GREATER_OR_EQUAL);
    EXPECT_EQ(word(l), 0);
    EXPECT_EQ(KeGetCurrentIrql(), HIGH_LEVEL);
    KeLowerIrql(old);
}

// The AtDpcLevel forms need IRQL >= DISPATCH_LEVEL
// [ddi:exacquirespinlockexclusiveatdpclevel]; below it, decision kmlab:
// IRQL_NOT_GREATER_OR_EQUAL (IRQL, DISPATCH_LEVEL, lock, 0), checked flavour.
TEST_F(ExSpinLock, AtDpcLevelFormsBelowDispatchBugCheckInTheCheckedFlavour) {
    FlavorScope checked(kmlab::Flavor::checked);
    EX_SPIN_LOCK l = 0;
    auto bc = EXPECT_BUG_CHECK(ExAcquireSpinLockSharedAtDpcLevel(&l),
                               bugcheck::IRQL_NOT_GREATER_OR_EQUAL);
    EXPECT_EQ(bc.parameter(1), PASSIVE_LEVEL);
    EXPECT_EQ(bc.parameter(2), DISPATCH_LEVEL);
    EXPECT_EQ(bc.parameter(3), reinterpret_cast<ULONG_PTR>(&l));
    EXPECT_BUG_CHECK(ExTryAcquireSpinLockExclusiveAtDpcLevel(&l),
                     bugcheck::IRQL_NOT_GREATER_OR_EQUAL);
    EXPECT_EQ(word(l), 0);
}

TEST_F(ExSpinLock, AtDpcLevelFormsBelowDispatchProceedInTheFreeFlavour) {
    FlavorScope free_flavor(kmlab::Flavor::free);
    EX_SPIN_LOCK l = 0;
    ExAcquireSpinLockExclusiveAtDpcLevel(&l);
    EXPECT_EQ(word(l), kWriter);
    ExReleaseSpinLockExclusiveFromDpcLevel(&l);
    EXPECT_EQ(word(l), 0);
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
}

// A release that would restore a higher IRQL is KeLowerIrql's error:
// IRQL_NOT_LESS_OR_EQUAL (current, new, 0, 9) [ros-apic], checked flavour,
// checked before the lock changes.
TEST_F(ExSpinLock, ReleaseToAHigherIrqlBugChecksInTheCheckedFlavour) {
    FlavorScope checked(kmlab::Flavor::checked);
    EX_SPIN_LOCK l = 0;
    const KIRQL old = ExAcquireSpinLockExclusive(&l);
    EXPECT_BUG_CHECK(ExReleaseSpinLockExclusive(&l, HIGH_LEVEL), bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    EXPECT_EQ(word(l), kWriter) << "checked before the release: the caller still holds it";
    ExReleaseSpinLockExclusive(&l, old);
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
}

// Releasing in a mode not held, or converting without a shared hold:
// decision kmlab, a checked build's failed ASSERT (0x1E, STATUS_BREAKPOINT).
TEST_F(ExSpinLock, ReleaseNotHeldBugChecksInTheCheckedFlavour) {
    FlavorScope checked(kmlab::Flavor::checked);
    EX_SPIN_LOCK l = 0;
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    EXPECT_BUG_CHECK(ExReleaseSpinLockSharedFromDpcLevel(&l),
                     bugcheck::KMODE_EXCEPTION_NOT_HANDLED);
    EXPECT_BUG_CHECK(ExReleaseSpinLockExclusiveFromDpcLevel(&l),
                     bugcheck::KMODE_EXCEPTION_NOT_HANDLED);
    EXPECT_BUG_CHECK(ExTryConvertSharedSpinLockExclusive(&l),
                     bugcheck::KMODE_EXCEPTION_NOT_HANDLED);
    ExAcquireSpinLockSharedAtDpcLevel(&l);
    EXPECT_BUG_CHECK(ExReleaseSpinLockExclusiveFromDpcLevel(&l),
                     bugcheck::KMODE_EXCEPTION_NOT_HANDLED);
    EXPECT_EQ(word(l), 1);
    ExReleaseSpinLockSharedFromDpcLevel(&l);
    EXPECT_EQ(word(l), 0);
    KeLowerIrql(old);
}
