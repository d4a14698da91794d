/* A kernel-mode test written as the kmtests are (kmt_test.h's macros, the
 * WDK's names, IN/OUT annotations, the thread object's fields), for the names
 * of ntdef.h, wdm.h and ntddk.h that such files use and that kmlab's C face
 * provides [kmt-KeMutex][kmt-KeEvent][kmt-KeGuardedMutex], and the lock
 * family through its C layouts (spin locks, push locks, EX_SPIN_LOCK,
 * ERESOURCE, KTIMER), raised statuses caught as kmtest catches them. Compiled as
 * gnu17 with -Wall -Werror, against <kmlab/ntddk.h> and the test shim only;
 * CTest runs it (kmt.WdkNames) and matches " 0 failures". */
#include <kmt_test.h>

#define NDEBUG
#include <debug.h>

/* ---- ntdef.h's scalar names and limits [ros-ntbasedef] ---- */
C_ASSERT(sizeof(INT) == 4 && sizeof(UINT) == 4 && sizeof(LONG) == 4 && sizeof(ULONG) == 4);
C_ASSERT(sizeof(LONG64) == 8 && sizeof(ULONG64) == 8 && sizeof(LONGLONG) == 8);
C_ASSERT(sizeof(SIZE_T) == sizeof(PVOID) && sizeof(ULONG_PTR) == sizeof(PVOID));
C_ASSERT(sizeof(CSHORT) == 2 && sizeof(LOGICAL) == 4 && sizeof(CCHAR) == 1);
C_ASSERT(MAXLONG == 0x7fffffff && (LONG)MINLONG == -MAXLONG - 1);
C_ASSERT(MAXULONG == 0xffffffffu && MAXUCHAR == 0xff && MAXUSHORT == 0xffff);
C_ASSERT(min(3, 5) == 3 && max(3, 5) == 5);
C_ASSERT(CMCI_LEVEL == 5 && DISPATCH_LEVEL < CMCI_LEVEL && CMCI_LEVEL < SYNCH_LEVEL);
C_ASSERT(RTL_FIELD_SIZE(KTHREAD, WaitBlock) == THREAD_WAIT_OBJECTS * sizeof(KWAIT_BLOCK));
C_ASSERT(FIELD_OFFSET(KMUTANT, Header) == 0 && ANYSIZE_ARRAY == 1);

/* ---- A pointer declared as the kmtests declare theirs: the full SAL 2
 * annotation of the WDK's prototype [ros-sal] ---- */
static _Must_inspect_result_ _Success_(return != FALSE) _IRQL_requires_max_(APC_LEVEL)
    _Post_satisfies_(return == 1 || return == 0) BOOLEAN(FASTCALL* pKeTryToAcquireGuardedMutex)(
        _When_(return, _Requires_lock_not_held_(*_Curr_) _Acquires_exclusive_lock_(*_Curr_))
            _Acquires_lock_(_Global_critical_region_) _Inout_ PKGUARDED_MUTEX GuardedMutex);

static _Requires_lock_held_(_Global_critical_region_) _Releases_lock_(*Mutex)
    _IRQL_requires_max_(APC_LEVEL)
        VOID(FASTCALL* pKeReleaseGuardedMutex)(_Inout_ PKGUARDED_MUTEX Mutex);

static _IRQL_requires_max_(DISPATCH_LEVEL) _IRQL_raises_(DISPATCH_LEVEL) _IRQL_saves_
    KIRQL(NTAPI* pKeRaiseIrqlToDpcLevel)(VOID);

typedef struct _WAITER {
    HANDLE Handle;
    PKTHREAD Thread;
    KEVENT Event;
    LIST_ENTRY Link;
} WAITER, *PWAITER;

static VOID NTAPI WaiterThread(IN OUT PVOID Context) {
    PWAITER Waiter = Context;
    NTSTATUS Status;
    ok_irql(PASSIVE_LEVEL);
    Status = KeWaitForSingleObject(&Waiter->Event, Executive, KernelMode, FALSE, NULL);
    ok_eq_hex(Status, STATUS_SUCCESS);
}

/* The thread's APC counters and mutant list, read as KeMutex.c and
 * KeGuardedMutex.c read them. */
static VOID TestThreadFields(IN PKTHREAD Thread) {
    KMUTEX Mutex;
    KGUARDED_MUTEX GuardedMutex;
    NTSTATUS Status;

    ok_eq_int(Thread->KernelApcDisable, 0);
    ok_eq_int(Thread->SpecialApcDisable, 0);
    ok_eq_pointer(Thread->MutantListHead.Flink, &Thread->MutantListHead);

    KeEnterCriticalRegion();
    ok_eq_int(Thread->KernelApcDisable, -1);
    ok_eq_bool(KeAreApcsDisabled(), TRUE);
    KeLeaveCriticalRegion();
    ok_eq_int(Thread->KernelApcDisable, 0);

    KeInitializeMutex(&Mutex, 0);
    Status = KeWaitForSingleObject(&Mutex, Executive, KernelMode, FALSE, NULL);
    ok_eq_hex(Status, STATUS_SUCCESS);
    ok_eq_int(Thread->KernelApcDisable, -1);
    ok_eq_pointer(Thread->MutantListHead.Flink, &Mutex.MutantListEntry);
    ok_eq_pointer(Mutex.OwnerThread, Thread);
    ok_eq_long(KeReleaseMutex(&Mutex, FALSE), 0L);
    ok_eq_pointer(Thread->MutantListHead.Flink, &Thread->MutantListHead);

    /* A release by a thread that does not own it raises
     * STATUS_MUTANT_NOT_OWNED [kmt-KeMutex]. */
    KmtStartSeh() KeReleaseMutex(&Mutex, FALSE);
    KmtEndSeh(STATUS_MUTANT_NOT_OWNED);
    ok_eq_int(Thread->KernelApcDisable, 0);

    KeInitializeGuardedMutex(&GuardedMutex);
    pKeTryToAcquireGuardedMutex = KmtGetSystemRoutineAddress(L"KeTryToAcquireGuardedMutex");
    pKeReleaseGuardedMutex = KmtGetSystemRoutineAddress(L"KeReleaseGuardedMutex");
    if (!skip(pKeTryToAcquireGuardedMutex && pKeReleaseGuardedMutex, "no guarded mutex\n")) {
        ok_bool_true(pKeTryToAcquireGuardedMutex(&GuardedMutex),
                     "KeTryToAcquireGuardedMutex returned");
        ok_eq_int(Thread->SpecialApcDisable, -1);
        ok_eq_bool(KeAreAllApcsDisabled(), TRUE);
        ok_eq_pointer(GuardedMutex.Owner, Thread);
        pKeReleaseGuardedMutex(&GuardedMutex);
        ok_eq_int(Thread->SpecialApcDisable, 0);
        ok_eq_long(GuardedMutex.Count, 1L);
    }
}

/* WaitNext and WaitIrql: a Wait = TRUE signal leaves the thread at
 * DISPATCH_LEVEL, holding the dispatcher for its next wait [kmt-KeEvent]. */
static VOID TestWaitNext(IN PKTHREAD Thread) {
    KEVENT Event;
    LONG State;
    NTSTATUS Status;

    KeInitializeEvent(&Event, NotificationEvent, FALSE);
    ok_eq_bool(Thread->WaitNext, FALSE);
    State = KeSetEvent(&Event, IO_NO_INCREMENT, TRUE);
    ok_eq_long(State, 0L);
    ok_eq_bool(Thread->WaitNext, TRUE);
    ok_eq_uint(Thread->WaitIrql, PASSIVE_LEVEL);
    ok_irql(DISPATCH_LEVEL);
    Status = KeWaitForSingleObject(&Event, Executive, KernelMode, FALSE, NULL);
    ok_eq_hex(Status, STATUS_SUCCESS);
    ok_eq_bool(Thread->WaitNext, FALSE);
    ok_irql(PASSIVE_LEVEL);
}

/* WaitBlock: a blocked waiter is found from the object's wait list with
 * CONTAINING_RECORD(Entry, KTHREAD, WaitBlock[0].WaitListEntry), as
 * KeEvent.c finds its threads. */
static VOID TestWaitBlock(VOID) {
    WAITER Waiters[3];
    LIST_ENTRY Started;
    INT i;
    LARGE_INTEGER Delay;
    LARGE_INTEGER Zero;
    KEVENT Gate;
    NTSTATUS Status;
    OBJECT_ATTRIBUTES Attributes;
    PLIST_ENTRY Entry;
    KEVENT Shared;

    Delay.QuadPart = -1 * MILLISECOND;
    Zero.QuadPart = 0;
    KeInitializeEvent(&Gate, NotificationEvent, FALSE);
    InitializeListHead(&Started);
    KeInitializeEvent(&Shared, NotificationEvent, FALSE);
    for (i = 0; i < (INT)RTL_NUMBER_OF(Waiters); ++i) {
        KeInitializeEvent(&Waiters[i].Event, NotificationEvent, FALSE);
        InitializeObjectAttributes(&Attributes, NULL, OBJ_KERNEL_HANDLE, NULL, NULL);
        Status = PsCreateSystemThread(&Waiters[i].Handle, GENERIC_ALL, &Attributes, NULL, NULL,
                                      WaiterThread, &Waiters[i]);
        ok_eq_hex(Status, STATUS_SUCCESS);
        Status = ObReferenceObjectByHandle(Waiters[i].Handle, SYNCHRONIZE, *PsThreadType,
                                           KernelMode, (PVOID*)&Waiters[i].Thread, NULL);
        ok_eq_hex(Status, STATUS_SUCCESS);
        InsertTailList(&Started, &Waiters[i].Link);
        /* Until the thread blocks on its event. The wait list is the
         * dispatcher's, so it is read under the dispatcher lock: a
         * Wait = TRUE KeSetEvent keeps the lock for the caller's next wait,
         * which gives it back (a zero timeout on the signalled Gate). */
        for (;;) {
            BOOLEAN Blocked;
            KeSetEvent(&Gate, IO_NO_INCREMENT, TRUE);
            Blocked = !IsListEmpty(&Waiters[i].Event.Header.WaitListHead);
            Status = KeWaitForSingleObject(&Gate, Executive, KernelMode, FALSE, &Zero);
            ok_eq_hex(Status, STATUS_SUCCESS);
            if (Blocked) break;
            KeDelayExecutionThread(KernelMode, FALSE, &Delay);
        }
        Entry = Waiters[i].Event.Header.WaitListHead.Flink;
        ok_eq_pointer(CONTAINING_RECORD(Entry, KTHREAD, WaitBlock[0].WaitListEntry),
                      Waiters[i].Thread);
        ok_eq_pointer(Waiters[i].Thread->WaitBlock[0].Object, &Waiters[i].Event);
        ok_eq_pointer(Entry->Flink, &Waiters[i].Event.Header.WaitListHead);
    }
    /* Release them in list order, through the list helpers. */
    while (!IsListEmpty(&Started)) {
        PWAITER Waiter = CONTAINING_RECORD(RemoveHeadList(&Started), WAITER, Link);
        KeSetEvent(&Waiter->Event, IO_NO_INCREMENT, FALSE);
        Status = KeWaitForSingleObject(Waiter->Thread, Executive, KernelMode, FALSE, NULL);
        ok_eq_hex(Status, STATUS_SUCCESS);
        ObDereferenceObject(Waiter->Thread);
        ok_eq_hex(ZwClose(Waiter->Handle), STATUS_SUCCESS);
    }
    ok_eq_long(KeReadStateEvent(&Shared), 0L);
}

static VOID TestHelpers(VOID) {
    LONG Counter = 0;
    LONG64 Wide = MAXLONG;
    PVOID Pointer = NULL;
    SINGLE_LIST_ENTRY Stack, A, B;
    KIRQL OldIrql;
    ULONG Flags = 0;

    ok_eq_long(InterlockedIncrement(&Counter), 1L);
    ok_eq_long(InterlockedCompareExchange(&Counter, 5, 1), 1L);
    ok_eq_long(InterlockedExchangeAdd(&Counter, 2), 5L);
    ok_eq_long(InterlockedDecrement(&Counter), 6L);
    ok_eq_longlong(InterlockedIncrement64(&Wide), (LONG64)MAXLONG + 1);
    ok_eq_pointer(InterlockedCompareExchangePointer(&Pointer, &Counter, NULL), NULL);
    ok_eq_pointer(Pointer, &Counter);

    Stack.Next = NULL;
    PushEntryList(&Stack, &A);
    PushEntryList(&Stack, &B);
    ok_eq_pointer(PopEntryList(&Stack), &B);
    ok_eq_pointer(PopEntryList(&Stack), &A);
    ok_eq_pointer(PopEntryList(&Stack), NULL);

    SetFlag(Flags, 0x4);
    ok_eq_bool(BooleanFlagOn(Flags, 0x4), TRUE);
    ClearFlag(Flags, 0x4);
    ok_eq_ulong(Flags, 0UL);

    ok(NT_ERROR(STATUS_MUTANT_NOT_OWNED) && !NT_SUCCESS(STATUS_MUTANT_NOT_OWNED),
       "STATUS_MUTANT_NOT_OWNED is an error\n");
    ok(NT_SUCCESS(STATUS_TIMEOUT) && !NT_ERROR(STATUS_TIMEOUT), "STATUS_TIMEOUT succeeds\n");

    pKeRaiseIrqlToDpcLevel = KmtGetSystemRoutineAddress(L"KeRaiseIrqlToDpcLevel");
    if (!skip(pKeRaiseIrqlToDpcLevel != NULL, "KeRaiseIrqlToDpcLevel unavailable\n")) {
        OldIrql = pKeRaiseIrqlToDpcLevel();
        ok_irql(DISPATCH_LEVEL);
        ok_eq_uint(OldIrql, PASSIVE_LEVEL);
        KmtSetIrql(OldIrql);
    }
    ok_irql(PASSIVE_LEVEL);
    DPRINT("not printed: NDEBUG\n");
}

/* The lock family from C: each object through its C layout and thunks. */
static VOID TestLockFamily(VOID) {
    KSPIN_LOCK SpinLock;
    KLOCK_QUEUE_HANDLE LockHandle;
    EX_PUSH_LOCK PushLock;
    EX_SPIN_LOCK ExSpinLock = 0;
    ERESOURCE Resource;
    KTIMER Timer;
    LARGE_INTEGER DueTime;
    KIRQL OldIrql;
    PKTHREAD Thread = KeGetCurrentThread();

    KeInitializeSpinLock(&SpinLock);
    ok_eq_ulongptr(SpinLock, 0UL);
    /* The ...ForDpc pair from a DPC, at DISPATCH_LEVEL: the IRQL stays. */
    OldIrql = KeRaiseIrqlToDpcLevel();
    ok_eq_uint(KeAcquireSpinLockForDpc(&SpinLock), DISPATCH_LEVEL);
    ok_bool_false(KeTestSpinLock(&SpinLock), "KeTestSpinLock on a held lock returned");
    KeReleaseSpinLockForDpc(&SpinLock, DISPATCH_LEVEL);
    ok_irql(DISPATCH_LEVEL);
    KeLowerIrql(OldIrql);
    ok_irql(PASSIVE_LEVEL);
    KeAcquireInStackQueuedSpinLock(&SpinLock, &LockHandle);
    ok_irql(DISPATCH_LEVEL);
    ok_eq_uint(LockHandle.OldIrql, PASSIVE_LEVEL);
    /* The low two bits carry the queue entry's wait and owner flags. */
    ok_eq_pointer((PVOID)((ULONG_PTR)LockHandle.LockQueue.Lock & ~(ULONG_PTR)3), &SpinLock);
    KeReleaseInStackQueuedSpinLock(&LockHandle);
    ok_irql(PASSIVE_LEVEL);
    ok_bool_true(KeTestSpinLock(&SpinLock), "KeTestSpinLock on a free lock returned");

    ExInitializePushLock(&PushLock);
    ok_eq_ulongptr(PushLock, 0UL);
    KeEnterCriticalRegion();
    ExAcquirePushLockShared(&PushLock);
    ok_bool_false(ExTryAcquirePushLockExclusive(&PushLock),
                  "an exclusive try over a sharer returned");
    ExReleasePushLockShared(&PushLock);
    ok_bool_true(ExTryAcquirePushLockExclusive(&PushLock),
                 "an exclusive try on a free lock returned");
    ExReleasePushLock(&PushLock);
    KeLeaveCriticalRegion();
    FltAcquirePushLockExclusive(&PushLock);
    ok_eq_int(Thread->KernelApcDisable, -1); /* the Flt acquire enters a critical region */
    FltReleasePushLock(&PushLock);
    ok_eq_int(Thread->KernelApcDisable, 0);
    ok_eq_ulongptr(PushLock, 0UL);

    OldIrql = ExAcquireSpinLockShared(&ExSpinLock);
    ok_irql(DISPATCH_LEVEL);
    ok_eq_ulong(ExTryConvertSharedSpinLockExclusive(&ExSpinLock), 1UL);
    ExReleaseSpinLockExclusive(&ExSpinLock, OldIrql);
    ok_irql(PASSIVE_LEVEL);
    ok_eq_long(ExSpinLock, 0L);

    /* ERESOURCE: the kmtest's reads of the fields [kmt-ExResource]; a NULL
     * resource raises STATUS_ACCESS_VIOLATION (resource.hpp). */
    ok_eq_hex(ExInitializeResourceLite(&Resource), STATUS_SUCCESS);
    ok_eq_int(Resource.ActiveCount, 0);
    KeEnterCriticalRegion();
    ok_bool_true(ExAcquireResourceSharedLite(&Resource, TRUE),
                 "ExAcquireResourceSharedLite returned");
    ok_bool_true(ExAcquireResourceSharedLite(&Resource, TRUE),
                 "a recursive shared acquire returned");
    ok_eq_ulong(ExIsResourceAcquiredSharedLite(&Resource), 2UL);
    ok_eq_int(Resource.ActiveCount, 1);
    ok_bool_false(ExAcquireResourceExclusiveLite(&Resource, FALSE),
                  "an exclusive try over a sharer returned");
    ExReleaseResourceLite(&Resource);
    ExReleaseResourceLite(&Resource);
    ok_bool_true(ExAcquireResourceExclusiveLite(&Resource, FALSE),
                 "an exclusive try on a free resource returned");
    ok_eq_uint(Resource.Flag & ResourceOwnedExclusive, ResourceOwnedExclusive);
    ok_eq_ulongptr(Resource.OwnerEntry.OwnerThread, ExGetCurrentResourceThread());
    ok_eq_ulongptr(ExGetCurrentResourceThread(), (ULONG_PTR)Thread);
    ExReleaseResourceLite(&Resource);
    KeLeaveCriticalRegion();
    ok_eq_ulong(ExIsResourceAcquiredLite(&Resource), 0UL);
    ok_eq_hex(ExDeleteResourceLite(&Resource), STATUS_SUCCESS);
    KmtStartSeh() ExInitializeResourceLite(NULL);
    KmtEndSeh(STATUS_ACCESS_VIOLATION);

    /* Due now: the timer expires inside KeSetTimer [kmt-KeTimer]. */
    KeInitializeTimerEx(&Timer, NotificationTimer);
    ok_eq_uint(Timer.Header.Type, TimerNotificationObject);
    ok_bool_false(KeReadStateTimer(&Timer), "a new timer's state");
    DueTime.QuadPart = 0;
    ok_bool_false(KeSetTimer(&Timer, DueTime, NULL), "KeSetTimer on an unset timer returned");
    ok_eq_hex(KeWaitForSingleObject(&Timer, Executive, KernelMode, FALSE, NULL), STATUS_SUCCESS);
    ok_bool_true(KeReadStateTimer(&Timer), "an expired notification timer's state");
    ok_bool_false(KeCancelTimer(&Timer), "KeCancelTimer on an expired timer returned");
    /* A negative period raises STATUS_INVALID_PARAMETER (timer.hpp); C sees
     * it as an exception. */
    KmtStartSeh() KeSetTimerEx(&Timer, DueTime, -1, NULL);
    KmtEndSeh(STATUS_INVALID_PARAMETER);
    ok_irql(PASSIVE_LEVEL);
}

START_TEST(WdkNames) {
    PKTHREAD Thread = KeGetCurrentThread();
    trace("thread %p, IRQL %u\n", (PVOID)Thread, (unsigned)KeGetCurrentIrql());
    TestThreadFields(Thread);
    TestWaitNext(Thread);
    TestWaitBlock();
    TestHelpers();
    TestLockFamily();
}
