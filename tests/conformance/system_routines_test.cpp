// MmGetSystemRoutineAddress: every routine <kmlab/wdm.h> declares can be
// looked up by name, and what comes back is that routine
// [ddi:mmgetsystemroutineaddress].
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "support.hpp"

using namespace kmlab::nt;
using kmlab::test::Nt;
using SystemRoutines = Nt;

namespace {
PVOID look_up(const std::wstring& name) {
    std::wstring copy = name;
    UNICODE_STRING u;
    RtlInitUnicodeString(&u, copy.c_str());
    return MmGetSystemRoutineAddress(&u);
}

// The routines wdm.h declares: a return type and a name at the start of a
// line, then '(' (typedefs and static inline definitions start otherwise).
std::set<std::string> routines_declared_in_wdm_h() {
    std::ifstream in(KMLAB_WDM_H_PATH);
    std::stringstream text;
    text << in.rdbuf();
    const std::string s = text.str();
    const std::regex declaration(R"(\n([A-Z][A-Z_]*)\s+(\w+)\()");
    std::set<std::string> names;
    for (auto it = std::sregex_iterator(s.begin(), s.end(), declaration);
         it != std::sregex_iterator(); ++it) {
        names.insert((*it)[2]);
    }
    return names;
}
}  // namespace

// Declared in wdm.h but no export of a Windows (amd64) kernel: macros or
// inline functions in the WDK only, another module's exports, and kmlab's own
// routines. A driver probing for them must get NULL. (KeWaitForMutexObject
// and ObDereferenceObject are WDK macros that the kernel exports as well.)
// The lock family's (kernel/spin_lock.hpp and friends; [ros-ntoskrnl-spec]):
// ExGetCurrentResourceThread and KeQuerySystemTime are amd64 macros; the Flt
// push-lock routines are FltMgr.sys's. (KeInitializeSpinLock is an export.)
const std::set<std::string> kNotExported = {
    "KeRaiseIrql", "ObReferenceObject", "ExInitializeFastMutex", "KmlabSetBugCheckHandler",
    "KmlabSetFlavor", "KmlabGetFlavor",
    // kmlab::explore's, not the kernel's
    "KmlabExplore", "KmlabExploreCheck", "KmlabExploreAssert", "ExGetCurrentResourceThread",
    "KeQuerySystemTime", "FltInitializePushLock", "FltDeletePushLock",
    "FltAcquirePushLockExclusive", "FltAcquirePushLockShared", "FltReleasePushLock"};

TEST_F(SystemRoutines, EveryRoutineOfTheCFaceIsFoundByNameUnlessWindowsDoesNotExportIt) {
    const auto names = routines_declared_in_wdm_h();
    ASSERT_GT(names.size(), 130u) << "wdm.h was read from " << KMLAB_WDM_H_PATH;
    ASSERT_TRUE(names.contains("KeSetEvent") && names.contains("ZwWaitForSingleObject") &&
                names.contains("RtlInitUnicodeString"));
    // One of each lock family the C face has.
    for (const char* name : {"KeAcquireSpinLockRaiseToDpc", "KeAcquireInStackQueuedSpinLock",
                             "ExAcquireResourceSharedLite", "ExAcquirePushLockExclusiveEx",
                             "ExAcquireSpinLockExclusive", "KeSetTimerEx", "KeInitializeDpc"})
        EXPECT_TRUE(names.contains(name)) << name << " is not declared in wdm.h";
    std::set<PVOID> addresses;
    std::size_t exported = 0;
    for (const std::string& name : names) {
        const PVOID p = look_up(std::wstring(name.begin(), name.end()));
        if (kNotExported.contains(name)) {
            EXPECT_EQ(p, nullptr) << name << " is not a Windows export";
            continue;
        }
        EXPECT_NE(p, nullptr) << name << " is declared in wdm.h but not found";
        addresses.insert(p);
        ++exported;
    }
    EXPECT_EQ(addresses.size(), exported) << "each name has its own address";
    for (const std::string& name : kNotExported)
        EXPECT_TRUE(names.contains(name)) << name << " is no longer declared: update the list";
}

TEST_F(SystemRoutines, TheAddressIsTheRoutineAndTheVariable) {
    using SetEvent = LONG (*)(PRKEVENT, KPRIORITY, BOOLEAN);
    auto set_event = reinterpret_cast<SetEvent>(look_up(L"KeSetEvent"));
    ASSERT_NE(set_event, nullptr);
    KEVENT e;
    KeInitializeEvent(&e, NotificationEvent, FALSE);
    EXPECT_EQ(set_event(&e, IO_NO_INCREMENT, FALSE), 0);
    EXPECT_EQ(KeReadStateEvent(&e), 1);

    auto* process = static_cast<PEPROCESS*>(look_up(L"PsInitialSystemProcess"));
    ASSERT_NE(process, nullptr);
    EXPECT_EQ(*process, PsInitialSystemProcess);
    auto* thread_type = static_cast<POBJECT_TYPE**>(look_up(L"PsThreadType"));
    ASSERT_NE(thread_type, nullptr);
    EXPECT_EQ(static_cast<void*>(**thread_type), static_cast<void*>(*PsThreadType));
}

// The lock family through the table: a spin lock taken and released through
// the addresses a driver would look up, and the wdm.h macros (inline
// functions in kmlab's C face: KeAcquireSpinLock, ExReleaseResource,
// ExAcquirePushLockExclusive) are not found, as on amd64 Windows.
TEST_F(SystemRoutines, TheLockRoutinesAreTheExportsAndTheMacrosAreNot) {
    using Acquire = KIRQL (*)(ULONG_PTR*);
    using Release = void (*)(ULONG_PTR*, KIRQL);
    auto acquire = reinterpret_cast<Acquire>(look_up(L"KeAcquireSpinLockRaiseToDpc"));
    auto release = reinterpret_cast<Release>(look_up(L"KeReleaseSpinLock"));
    ASSERT_NE(acquire, nullptr);
    ASSERT_NE(release, nullptr);
    ULONG_PTR lock = 0;
    const KIRQL old = acquire(&lock);
    EXPECT_EQ(old, PASSIVE_LEVEL);
    EXPECT_EQ(KeGetCurrentIrql(), DISPATCH_LEVEL);
    EXPECT_NE(lock, 0u) << "held";
    release(&lock, old);
    EXPECT_EQ(KeGetCurrentIrql(), PASSIVE_LEVEL);
    EXPECT_EQ(lock, 0u) << "free again";
    for (const wchar_t* name :
         {L"KeAcquireSpinLock", L"ExReleaseResource", L"ExIsResourceAcquiredLite",
          L"ExAcquirePushLockExclusive", L"ExTryAcquirePushLockShared"})
        EXPECT_EQ(look_up(name), nullptr) << "a wdm.h macro, not an export";
}

TEST_F(SystemRoutines, UnknownOrNonAsciiNamesAreNull) {
    EXPECT_EQ(look_up(L"KeSetEventX"), nullptr);
    EXPECT_EQ(look_up(L"KeSetEven"), nullptr);
    EXPECT_EQ(look_up(L""), nullptr);
    EXPECT_EQ(look_up(L"KeSetEv\u00e9nt"), nullptr);
    EXPECT_EQ(MmGetSystemRoutineAddress(nullptr), nullptr);
    UNICODE_STRING prefix;
    RtlInitUnicodeString(&prefix, L"KeSetEventsAreNice");
    prefix.Length = static_cast<USHORT>(10 * sizeof(wchar_t));  // "KeSetEvent"
    EXPECT_NE(MmGetSystemRoutineAddress(&prefix), nullptr) << "Length, not the terminator, ends it";
}

TEST_F(SystemRoutines, ThePassiveLevelRuleHolds) {
    KIRQL old;
    KeRaiseIrql(APC_LEVEL, &old);
    EXPECT_BUG_CHECK(look_up(L"KeSetEvent"), kmlab::bugcheck::IRQL_NOT_LESS_OR_EQUAL);
    KeLowerIrql(old);
}
