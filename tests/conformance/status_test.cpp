// SEMANTICS.md 6: NTSTATUS values, severity predicates, bug-check reporting.
#include "support.hpp"

using namespace kmlab::nt;
using kmlab::test::Nt;
using Status = Nt;

TEST_F(Status, CodesHaveTheirRealValues) {
    EXPECT_EQ(STATUS_SUCCESS, 0);
    EXPECT_EQ(STATUS_ABANDONED_WAIT_0, 0x80);
    EXPECT_EQ(STATUS_USER_APC, 0xC0);
    EXPECT_EQ(STATUS_ALERTED, 0x101);
    EXPECT_EQ(STATUS_TIMEOUT, 0x102);
    EXPECT_EQ(static_cast<ULONG>(STATUS_MUTANT_NOT_OWNED), 0xC0000046u);
    EXPECT_EQ(static_cast<ULONG>(STATUS_SEMAPHORE_LIMIT_EXCEEDED), 0xC0000047u);
    EXPECT_EQ(static_cast<ULONG>(STATUS_MUTANT_LIMIT_EXCEEDED), 0xC0000191u);
    EXPECT_EQ(static_cast<ULONG>(STATUS_INVALID_HANDLE), 0xC0000008u);
}

TEST_F(Status, SeverityPredicates) {
    // Waits' informational results all pass NT_SUCCESS [ddi:kewaitforsingleobject].
    for (NTSTATUS s :
         {STATUS_SUCCESS, STATUS_TIMEOUT, STATUS_ALERTED, STATUS_USER_APC, STATUS_ABANDONED}) {
        EXPECT_TRUE(NT_SUCCESS(s)) << s;
        EXPECT_FALSE(NT_ERROR(s)) << s;
    }
    EXPECT_TRUE(NT_SUCCESS(ntstatus(0x40000000)));
    EXPECT_TRUE(NT_INFORMATION(ntstatus(0x40000000)));
    EXPECT_FALSE(NT_INFORMATION(STATUS_SUCCESS));
    EXPECT_TRUE(NT_WARNING(ntstatus(0x80000005)));
    EXPECT_FALSE(NT_SUCCESS(ntstatus(0x80000005)));
    EXPECT_TRUE(NT_ERROR(STATUS_MUTANT_NOT_OWNED));
    EXPECT_FALSE(NT_SUCCESS(STATUS_MUTANT_NOT_OWNED));
    EXPECT_FALSE(NT_WARNING(STATUS_MUTANT_NOT_OWNED));
}

TEST_F(Status, BugCheckCarriesCodeParametersAndAStopMessage) {
    kmlab::BugCheck bc(kmlab::bugcheck::IRQL_NOT_LESS_OR_EQUAL, 1, 2, 3, 4);
    EXPECT_EQ(bc.code(), 0xAu);
    EXPECT_EQ(bc.parameter(1), 1u);
    EXPECT_EQ(bc.parameter(4), 4u);
    EXPECT_NE(std::string(bc.what()).find("*** STOP: 0x0000000A"), std::string::npos) << bc.what();
    EXPECT_NE(std::string(bc.what()).find("IRQL_NOT_LESS_OR_EQUAL"), std::string::npos);
    kmlab::NtException e(STATUS_MUTANT_NOT_OWNED);
    EXPECT_NE(std::string(e.what()).find("STATUS_MUTANT_NOT_OWNED"), std::string::npos) << e.what();
}
