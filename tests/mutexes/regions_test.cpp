#include <kmlab/kmlab.hpp>
#include "support.hpp"

using namespace kmlab;
using namespace kmlab::nt;
using Regions = kmlab::test::Nt;

TEST_F(Regions, CriticalAndGuardedRegionGuardsNestAndLeave) {
    PKTHREAD t = KeGetCurrentThread();
    {
        auto c = CriticalRegion::enter();
        ASSERT_TRUE(c);
        EXPECT_TRUE(KeAreApcsDisabled());
        EXPECT_FALSE(KeAreAllApcsDisabled());
        {
            auto g = GuardedRegion::enter();
            ASSERT_TRUE(g);
            EXPECT_TRUE(KeAreAllApcsDisabled());
            auto moved = std::move(*g);
            EXPECT_EQ(t->SpecialApcDisable, -1) << "moving does not leave";
        }
        EXPECT_EQ(t->SpecialApcDisable, 0);
        EXPECT_EQ(t->KernelApcDisable, -1);
    }
    EXPECT_EQ(t->CombinedApcDisable, 0u);
}

TEST_F(Regions, EnteringAboveApcLevelIsAnError) {
    KIRQL old = KeRaiseIrqlToDpcLevel();
    auto c = CriticalRegion::enter();
    KeLowerIrql(old);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().code, Errc::irql_too_high);
    EXPECT_EQ(c.error().bug_check, bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    EXPECT_EQ(KeGetCurrentThread()->CombinedApcDisable, 0u);
}
