// SEMANTICS.md 4.5 and 1.5: system threads, thread objects, handles, and the
// checks made when a thread exits.
#include <atomic>

#include "support.hpp"

using namespace kmlab::nt;
using kmlab::test::Nt;
using SystemThread = Nt;
using ThreadExit = Nt;
namespace bugcheck = kmlab::bugcheck;

namespace {
struct Probe {
    std::atomic<bool> release{false};
    KIRQL irql = 0xFF;
    BOOLEAN apcs_disabled = 2;
    BOOLEAN is_system = 2;
    PKTHREAD self = nullptr;
    bool after_terminate = false;
    NTSTATUS terminate_status = STATUS_PENDING;
};

void probe_routine(PVOID context) {
    auto* p = static_cast<Probe*>(context);
    p->irql = KeGetCurrentIrql();
    p->apcs_disabled = KeAreApcsDisabled();
    p->is_system = PsIsSystemThread(PsGetCurrentThread());
    p->self = KeGetCurrentThread();
    while (!p->release) std::this_thread::yield();
}

void terminating_routine(PVOID context) {
    auto* p = static_cast<Probe*>(context);
    PsTerminateSystemThread(STATUS_SUCCESS);
    p->after_terminate = true;  // never reached
}

// The seeds' join sequence, written as a C++ driver would.
void join(HANDLE thread_handle) {
    PVOID thread_obj = nullptr;
    NTSTATUS ref_status = ObReferenceObjectByHandle(thread_handle, THREAD_ALL_ACCESS, nullptr,
                                                    KernelMode, &thread_obj, nullptr);
    ASSERT_EQ(ZwClose(thread_handle), STATUS_SUCCESS);
    ASSERT_EQ(ref_status, STATUS_SUCCESS);
    EXPECT_EQ(KeWaitForSingleObject(thread_obj, Executive, KernelMode, FALSE, nullptr),
              STATUS_SUCCESS);
    ObfDereferenceObject(thread_obj);
}
}  // namespace

TEST_F(SystemThread, RunsAtPassiveLevelInsideACriticalRegionAndCanBeJoined) {
    Probe p;
    HANDLE h = nullptr;
    CLIENT_ID cid{};
    ASSERT_EQ(PsCreateSystemThread(&h, 0, nullptr, nullptr, &cid, &probe_routine, &p),
              STATUS_SUCCESS);
    EXPECT_NE(h, nullptr);
    EXPECT_NE(cid.UniqueThread, nullptr);
    PVOID obj = nullptr;
    ASSERT_EQ(ObReferenceObjectByHandle(h, SYNCHRONIZE, *PsThreadType, KernelMode, &obj, nullptr),
              STATUS_SUCCESS);
    LARGE_INTEGER zero;
    zero.QuadPart = 0;
    EXPECT_EQ(KeWaitForSingleObject(obj, Executive, KernelMode, FALSE, &zero), STATUS_TIMEOUT)
        << "a running thread's object is not signaled";
    EXPECT_EQ(static_cast<PKTHREAD>(obj)->Header.Type, ThreadObject);
    p.release = true;
    EXPECT_EQ(KeWaitForSingleObject(obj, Executive, KernelMode, FALSE, nullptr), STATUS_SUCCESS);
    EXPECT_EQ(KeWaitForSingleObject(obj, Executive, KernelMode, FALSE, &zero), STATUS_SUCCESS)
        << "and stays signaled";
    EXPECT_EQ(p.irql, PASSIVE_LEVEL);
    EXPECT_TRUE(p.apcs_disabled) << "[ddi:pscreatesystemthread]: inside a critical region";
    EXPECT_TRUE(p.is_system);
    EXPECT_EQ(p.self, obj);
    EXPECT_FALSE(PsIsSystemThread(PsGetCurrentThread()));
    ObDereferenceObject(obj);
    EXPECT_EQ(ZwClose(h), STATUS_SUCCESS);
}

TEST_F(SystemThread, ThreeThreadsIncrementUnderAKmutexAndAreJoinedAsInTheSeeds) {
    struct Shared {
        KMUTEX mutex;
        long counter = 0;
    } shared;
    KeInitializeMutex(&shared.mutex, 0);
    auto routine = [](PVOID ctx) {
        auto* s = static_cast<Shared*>(ctx);
        for (int i = 0; i < 1500; ++i) {
            KeWaitForSingleObject(&s->mutex, Executive, KernelMode, FALSE, nullptr);
            ++s->counter;
            KeReleaseMutex(&s->mutex, FALSE);
        }
    };
    std::vector<HANDLE> th;
    for (int i = 0; i < 3; ++i) {
        HANDLE thread_handle = nullptr;
        NTSTATUS res =
            PsCreateSystemThread(&thread_handle, 0, nullptr, nullptr, nullptr, routine, &shared);
        if (res == STATUS_SUCCESS) th.push_back(thread_handle);
    }
    ASSERT_EQ(th.size(), 3u);
    for (HANDLE thread_handle : th) {
        if (thread_handle != nullptr && KeGetCurrentIrql() <= APC_LEVEL) join(thread_handle);
    }
    EXPECT_EQ(shared.counter, 4500);
    EXPECT_EQ(KeReadStateMutex(&shared.mutex), 1);
}

TEST_F(SystemThread, EveryWaiterWakesWhenAThreadExits) {
    Probe p;
    HANDLE h;
    ASSERT_EQ(PsCreateSystemThread(&h, 0, nullptr, nullptr, nullptr, &probe_routine, &p),
              STATUS_SUCCESS);
    PVOID obj;
    ASSERT_EQ(ObReferenceObjectByHandle(h, SYNCHRONIZE, nullptr, KernelMode, &obj, nullptr),
              STATUS_SUCCESS);
    std::atomic<int> woken{0};
    std::vector<std::thread> waiters;
    for (int i = 0; i < 3; ++i) {
        waiters.emplace_back([&] {
            EXPECT_EQ(KeWaitForSingleObject(obj, Executive, KernelMode, FALSE, nullptr),
                      STATUS_SUCCESS);
            woken.fetch_add(1);
        });
    }
    ASSERT_TRUE(kmlab::test::waiters_reach(obj, 3));
    p.release = true;
    for (auto& w : waiters) w.join();
    EXPECT_EQ(woken.load(), 3);
    ObDereferenceObject(obj);
    ZwClose(h);
}

TEST_F(SystemThread, PsTerminateSystemThreadEndsOnlySystemThreads) {
    Probe p;
    HANDLE h;
    ASSERT_EQ(PsCreateSystemThread(&h, 0, nullptr, nullptr, nullptr, &terminating_routine, &p),
              STATUS_SUCCESS);
    join(h);
    EXPECT_FALSE(p.after_terminate);
    EXPECT_EQ(PsTerminateSystemThread(STATUS_SUCCESS), STATUS_INVALID_PARAMETER);
}

TEST_F(SystemThread, HandleErrors) {
    PVOID obj = nullptr;
    EXPECT_EQ(ObReferenceObjectByHandle(nullptr, SYNCHRONIZE, nullptr, KernelMode, &obj, nullptr),
              STATUS_INVALID_HANDLE);
    Probe p;
    p.release = true;
    HANDLE h;
    ASSERT_EQ(PsCreateSystemThread(&h, SYNCHRONIZE, nullptr, nullptr, nullptr, &probe_routine, &p),
              STATUS_SUCCESS);
    EXPECT_EQ(
        ObReferenceObjectByHandle(h, SYNCHRONIZE, *ExEventObjectType, KernelMode, &obj, nullptr),
        STATUS_OBJECT_TYPE_MISMATCH);
    EXPECT_EQ(
        ObReferenceObjectByHandle(h, THREAD_ALL_ACCESS, *PsThreadType, UserMode, &obj, nullptr),
        STATUS_INVALID_HANDLE)
        << "a kernel handle is not in the user-mode handle table [ros-obref]";
    join(h);
    EXPECT_EQ(ZwClose(h), STATUS_INVALID_HANDLE) << "already closed";
}

TEST_F(ThreadExit, ASystemThreadExitingInsideAnExtraCriticalRegionBugChecks0x20) {
    HANDLE h;
    auto routine = [](PVOID) { KeEnterCriticalRegion(); };
    ASSERT_EQ(PsCreateSystemThread(&h, 0, nullptr, nullptr, nullptr, routine, nullptr),
              STATUS_SUCCESS);
    join(h);
    auto fatal = kmlab::test::take_fatal_bug_checks();
    ASSERT_EQ(fatal.size(), 1u);
    EXPECT_EQ(fatal[0].code(), bugcheck::KERNEL_APC_PENDING_DURING_EXIT);
    EXPECT_EQ(fatal[0].parameter(2), 0xFFFEu) << "KernelApcDisable -2";
}

TEST_F(ThreadExit, ASystemThreadHoldingAKmutexBugChecks) {
    static KMUTEX m;
    KeInitializeMutex(&m, 0);
    HANDLE h;
    auto routine = [](PVOID) { KeWaitForSingleObject(&m, Executive, KernelMode, FALSE, nullptr); };
    ASSERT_EQ(PsCreateSystemThread(&h, 0, nullptr, nullptr, nullptr, routine, nullptr),
              STATUS_SUCCESS);
    join(h);
    auto fatal = kmlab::test::take_fatal_bug_checks();
    ASSERT_EQ(fatal.size(), 1u);
    EXPECT_EQ(fatal[0].code(), bugcheck::THREAD_TERMINATE_HELD_MUTEX);
    EXPECT_EQ(fatal[0].parameter(2), reinterpret_cast<ULONG_PTR>(&m));
}

// A thread that exits holding a FAST_MUTEX is still at APC_LEVEL: reported
// as KERNEL_APC_PENDING_DURING_EXIT with the IRQL in parameter 3 [bc:0x20].
TEST_F(ThreadExit, ASystemThreadHoldingAFastMutexBugChecks0x20AtApcLevel) {
    static FAST_MUTEX m;
    ExInitializeFastMutex(&m);
    HANDLE h;
    auto routine = [](PVOID) { ExAcquireFastMutex(&m); };
    ASSERT_EQ(PsCreateSystemThread(&h, 0, nullptr, nullptr, nullptr, routine, nullptr),
              STATUS_SUCCESS);
    join(h);
    auto fatal = kmlab::test::take_fatal_bug_checks();
    ASSERT_EQ(fatal.size(), 1u) << "a fast mutex held at thread exit went unreported";
    EXPECT_EQ(fatal[0].code(), bugcheck::KERNEL_APC_PENDING_DURING_EXIT);
    EXPECT_EQ(fatal[0].parameter(3), APC_LEVEL);
}

// A KGUARDED_MUTEX held at exit leaves the thread inside a guarded region.
TEST_F(ThreadExit, ASystemThreadHoldingAGuardedMutexBugChecks0x20) {
    static KGUARDED_MUTEX m;
    KeInitializeGuardedMutex(&m);
    HANDLE h;
    auto routine = [](PVOID) { KeAcquireGuardedMutex(&m); };
    ASSERT_EQ(PsCreateSystemThread(&h, 0, nullptr, nullptr, nullptr, routine, nullptr),
              STATUS_SUCCESS);
    join(h);
    auto fatal = kmlab::test::take_fatal_bug_checks();
    ASSERT_EQ(fatal.size(), 1u);
    EXPECT_EQ(fatal[0].code(), bugcheck::KERNEL_APC_PENDING_DURING_EXIT);
    EXPECT_EQ(fatal[0].parameter(2) >> 16, 0xFFFFu) << "SpecialApcDisable -1";
}

TEST_F(ThreadExit, AnUnhandledRaisedStatusInASystemThreadBugChecks0x7E) {
    HANDLE h;
    auto routine = [](PVOID) {
        KMUTEX m;
        KeInitializeMutex(&m, 0);
        KeReleaseMutex(&m, FALSE);  // raises STATUS_MUTANT_NOT_OWNED
    };
    ASSERT_EQ(PsCreateSystemThread(&h, 0, nullptr, nullptr, nullptr, routine, nullptr),
              STATUS_SUCCESS);
    join(h);
    auto fatal = kmlab::test::take_fatal_bug_checks();
    ASSERT_EQ(fatal.size(), 1u);
    EXPECT_EQ(fatal[0].code(), bugcheck::SYSTEM_THREAD_EXCEPTION_NOT_HANDLED);
    EXPECT_EQ(fatal[0].parameter(1), static_cast<ULONG>(STATUS_MUTANT_NOT_OWNED));
}

namespace {
KMUTEX g_late_mutex;
std::atomic<PKTHREAD> g_late_thread{nullptr};
// A thread_local whose destructor first calls into kmlab after kmlab's own
// thread-exit work has run: a late adoption of a fresh KTHREAD.
struct LateUser {
    ~LateUser() {
        g_late_thread = KeGetCurrentThread();
        KeWaitForSingleObject(&g_late_mutex, Executive, KernelMode, FALSE, nullptr);
    }  // exits holding the KMUTEX
};
}  // namespace

TEST_F(ThreadExit, ALateAdoptionByAThreadLocalDestructorStillGetsItsExitChecks) {
    KeInitializeMutex(&g_late_mutex, 0);
    std::thread([] {
        thread_local LateUser late;  // constructed before the thread's first kmlab call,
        (void)&late;                 // so destroyed after kmlab's exit work
        (void)KeGetCurrentThread();
    }).join();
    ASSERT_NE(g_late_thread.load(), nullptr);
    auto fatal = kmlab::test::take_fatal_bug_checks();
    ASSERT_EQ(fatal.size(), 1u) << "the late KTHREAD's exit checks never ran";
    EXPECT_EQ(fatal[0].code(), bugcheck::THREAD_TERMINATE_HELD_MUTEX);
    EXPECT_EQ(fatal[0].parameter(1), reinterpret_cast<ULONG_PTR>(g_late_thread.load()));
    EXPECT_EQ(fatal[0].parameter(2), reinterpret_cast<ULONG_PTR>(&g_late_mutex));
    // Abandoned when the handler returned: the next waiter gets it at once.
    LARGE_INTEGER zero{};
    EXPECT_EQ(KeWaitForSingleObject(&g_late_mutex, Executive, KernelMode, FALSE, &zero),
              STATUS_ABANDONED);
    EXPECT_EQ(KeReleaseMutex(&g_late_mutex, FALSE), 0);
}

TEST_F(ThreadExit, EachThreadHasItsOwnKthread) {
    PKTHREAD mine = KeGetCurrentThread();
    PKTHREAD other = nullptr;
    kmlab::test::on_new_thread([&] { other = KeGetCurrentThread(); });
    EXPECT_NE(mine, other);
    EXPECT_EQ(mine, KeGetCurrentThread());
}
