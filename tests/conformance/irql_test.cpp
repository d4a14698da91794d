// SEMANTICS.md 5 and 3.3: virtual IRQL, critical and guarded regions.
#include "support.hpp"

using namespace kmlab::nt;
using kmlab::test::Nt;
using Irql = Nt;
using Regions = Nt;
namespace bugcheck = kmlab::bugcheck;

TEST_F(Irql, ThreadsStartAtPassiveLevelEachWithItsOwnIrql) {
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    KIRQL seen_elsewhere = 0xFF;
    kmlab::test::on_new_thread([&] { seen_elsewhere = KeGetCurrentIrql(); });
    EXPECT_EQ(seen_elsewhere, PASSIVE_LEVEL);
    EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);
    KeLowerIrql(old);
}

TEST_F(Irql, RaiseSavesAndLowerRestores) {
    KIRQL old = 0xFF;
    KeRaiseIrql(APC_LEVEL, &old);
    EXPECT_EQ(old, PASSIVE_LEVEL);
    EXPECT_EQ(KeGetCurrentIrql(), APC_LEVEL);
    KIRQL old2 = KeRaiseIrqlToDpcLevel();
    EXPECT_EQ(old2, APC_LEVEL);
    EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);
    // Raising to the current level is a no-op returning it [kmt-KeIrql].
    KIRQL same;
    KeRaiseIrql(DISPATCH_LEVEL, &same);
    EXPECT_EQ(same, DISPATCH_LEVEL);
    KeLowerIrql(old2);
    KeLowerIrql(old);
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
}

TEST_F(Irql, RaisingToALowerLevelBugChecks0x9) {
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    auto bc = EXPECT_BUG_CHECK(KeRaiseIrql(APC_LEVEL, &old), bugcheck::IRQL_NOT_GREATER_OR_EQUAL);
    EXPECT_EQ(bc.parameter(1), DISPATCH_LEVEL);
    EXPECT_EQ(bc.parameter(2), APC_LEVEL);
    EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL) << "a failed raise changes nothing";
    KeLowerIrql(PASSIVE_LEVEL);
}

TEST_F(Irql, LoweringToAHigherLevelBugChecks0xA) {
    auto bc = EXPECT_BUG_CHECK(KeLowerIrql(APC_LEVEL), bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    EXPECT_EQ(bc.parameter(1), PASSIVE_LEVEL);
    EXPECT_EQ(bc.parameter(2), APC_LEVEL);
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
}

TEST_F(Regions, CriticalRegionsNestAndDisableNormalKernelApcs) {
    PKTHREAD t = KeGetCurrentThread();
    EXPECT_FALSE(KeAreApcsDisabled());
    KeEnterCriticalRegion();
    KeEnterCriticalRegion();
    EXPECT_EQ(t->KernelApcDisable, -2);
    EXPECT_TRUE(KeAreApcsDisabled());
    EXPECT_FALSE(KeAreAllApcsDisabled()) << "special kernel APCs still run in a critical region";
    KeLeaveCriticalRegion();
    EXPECT_TRUE(KeAreApcsDisabled()) << "only the outermost leave re-enables APCs";
    KeLeaveCriticalRegion();
    EXPECT_FALSE(KeAreApcsDisabled());
}

TEST_F(Regions, GuardedRegionsDisableAllApcs) {
    PKTHREAD t = KeGetCurrentThread();
    KeEnterGuardedRegion();
    EXPECT_EQ(t->SpecialApcDisable, -1);
    EXPECT_TRUE(KeAreApcsDisabled());
    EXPECT_TRUE(KeAreAllApcsDisabled());
    EXPECT_EQ(t->CombinedApcDisable, 0xFFFF0000u) << "(SpecialApcDisable << 16) | KernelApcDisable";
    KeLeaveGuardedRegion();
    EXPECT_FALSE(KeAreAllApcsDisabled());
}

TEST_F(Regions, ApcLevelDisablesAllApcsButIsNoRegion) {
    KIRQL old;
    KeRaiseIrql(APC_LEVEL, &old);
    EXPECT_TRUE(KeAreAllApcsDisabled());
    EXPECT_FALSE(KeAreApcsDisabled()) << "KeAreApcsDisabled ignores the IRQL [ros-apc]";
    KeLowerIrql(old);
}

TEST_F(Regions, LeavingARegionNeverEnteredBugChecksApcIndexMismatch) {
    auto bc = EXPECT_BUG_CHECK(KeLeaveCriticalRegion(), bugcheck::APC_INDEX_MISMATCH);
    EXPECT_EQ(bc.parameter(3), 0x1u) << "CombinedApcDisable after the bad leave";
    bc = EXPECT_BUG_CHECK(KeLeaveGuardedRegion(), bugcheck::APC_INDEX_MISMATCH);
    EXPECT_EQ(bc.parameter(3), 0x10000u);
}

// Documented for IRQL <= APC_LEVEL; only Driver Verifier reports it (the
// checked kernel accepts it: flavor_test.cpp), so the verifier flavour.
TEST_F(Regions, EnteringAboveApcLevelBugChecks) {
    const kmlab::Flavor saved = kmlab::flavor();
    kmlab::set_flavor(kmlab::Flavor::verifier);
    KIRQL old = KeRaiseIrqlToDpcLevel();
    auto bc = EXPECT_BUG_CHECK(KeEnterCriticalRegion(), bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    EXPECT_EQ(bc.parameter(2), DISPATCH_LEVEL);
    EXPECT_BUG_CHECK(KeEnterGuardedRegion(), bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    KeLowerIrql(old);
    kmlab::set_flavor(saved);
}
