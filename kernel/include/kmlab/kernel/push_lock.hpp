// EX_PUSH_LOCK: the type and routines with the WDK's names and signatures.
//
// What Windows exports (for the C face, <kmlab/wdm.h>, and its
// MmGetSystemRoutineAddress table):
//  * ntoskrnl exports (Windows 10 1809 and later [ddi:exacquirepushlockexclusive]):
//    ExInitializePushLock (documented as a function, not a macro
//    [ddi:exinitializepushlock]; decision, kmlab: listed as an export),
//    ExAcquirePushLockExclusiveEx,
//    ExAcquirePushLockSharedEx, ExReleasePushLockExclusiveEx,
//    ExReleasePushLockSharedEx, ExReleasePushLockEx,
//    ExTryAcquirePushLockExclusiveEx, ExTryAcquirePushLockSharedEx.
//  * macros in wdm.h over the ...Ex exports with EX_DEFAULT_PUSH_LOCK_FLAGS
//    (inline functions here): ExAcquirePushLockExclusive,
//    ExAcquirePushLockShared, ExReleasePushLockExclusive,
//    ExReleasePushLockShared, ExReleasePushLock,
//    ExTryAcquirePushLockExclusive, ExTryAcquirePushLockShared
//    [ddi:exacquirepushlockexclusive][ddi:extryacquirepushlockexclusive].
//  * the filter manager's (fltkernel.h; FltMgr.sys exports them, not
//    ntoskrnl, so MmGetSystemRoutineAddress does not find them):
//    FltInitializePushLock, FltDeletePushLock, FltAcquirePushLockExclusive,
//    FltAcquirePushLockShared, FltReleasePushLock. The Flt acquires enter a
//    critical region themselves and FltReleasePushLock leaves it
//    [ddi:fltacquirepushlockexclusive][ddi:fltreleasepushlock].
//
// The Ex routines' rules (kernel/rules_rw_lock.hpp has each with its source
// and flavour): IRQL <= APC_LEVEL, normal kernel APCs disabled (a critical
// or guarded region, or APC_LEVEL), not recursive (an exclusive owner that
// acquires again hangs, as the documentation says; the emulator cannot see
// it, since the lock keeps no owner), no owner tracking. Waiters sleep.
// The algorithm and the word's layout: kernel/rw_lock_algorithm.hpp.
#pragma once

#include <kmlab/kernel/routines.hpp>

namespace kmlab::nt {

// wdm.h: `#define EX_PUSH_LOCK ULONG_PTR`, `#define PEX_PUSH_LOCK PULONG_PTR`
// (which is why ReactOS's pushlock.c starts with #undef EX_PUSH_LOCK
// [ros-pushlock]); opaque to drivers, 0 when free [ddi:exinitializepushlock]
// (kmlab: and no one waits; rw_lock_algorithm.hpp has the layout).
using EX_PUSH_LOCK = ULONG_PTR;
using PEX_PUSH_LOCK = EX_PUSH_LOCK*;

// The Flags argument of the ...Ex routines; drivers pass this (0).
inline constexpr ULONG EX_DEFAULT_PUSH_LOCK_FLAGS = 0;

// Any IRQL; sets the lock to 0 (free).
void ExInitializePushLock(PEX_PUSH_LOCK PushLock);
void ExAcquirePushLockExclusiveEx(PEX_PUSH_LOCK PushLock, ULONG Flags);
void ExAcquirePushLockSharedEx(PEX_PUSH_LOCK PushLock, ULONG Flags);
void ExReleasePushLockExclusiveEx(PEX_PUSH_LOCK PushLock, ULONG Flags);
void ExReleasePushLockSharedEx(PEX_PUSH_LOCK PushLock, ULONG Flags);
// Releases whichever way the caller holds it (the lock word says which).
void ExReleasePushLockEx(PEX_PUSH_LOCK PushLock, ULONG Flags);
// Nonzero when acquired; never waits.
BOOLEAN ExTryAcquirePushLockExclusiveEx(PEX_PUSH_LOCK PushLock, ULONG Flags);
BOOLEAN ExTryAcquirePushLockSharedEx(PEX_PUSH_LOCK PushLock, ULONG Flags);

// The wdm.h macros.
inline void ExAcquirePushLockExclusive(PEX_PUSH_LOCK Lock) {
    ExAcquirePushLockExclusiveEx(Lock, EX_DEFAULT_PUSH_LOCK_FLAGS);
}
inline void ExAcquirePushLockShared(PEX_PUSH_LOCK Lock) {
    ExAcquirePushLockSharedEx(Lock, EX_DEFAULT_PUSH_LOCK_FLAGS);
}
inline void ExReleasePushLockExclusive(PEX_PUSH_LOCK Lock) {
    ExReleasePushLockExclusiveEx(Lock, EX_DEFAULT_PUSH_LOCK_FLAGS);
}
inline void ExReleasePushLockShared(PEX_PUSH_LOCK Lock) {
    ExReleasePushLockSharedEx(Lock, EX_DEFAULT_PUSH_LOCK_FLAGS);
}
inline void ExReleasePushLock(PEX_PUSH_LOCK Lock) {
    ExReleasePushLockEx(Lock, EX_DEFAULT_PUSH_LOCK_FLAGS);
}
inline BOOLEAN ExTryAcquirePushLockExclusive(PEX_PUSH_LOCK Lock) {
    return ExTryAcquirePushLockExclusiveEx(Lock, EX_DEFAULT_PUSH_LOCK_FLAGS);
}
inline BOOLEAN ExTryAcquirePushLockShared(PEX_PUSH_LOCK Lock) {
    return ExTryAcquirePushLockSharedEx(Lock, EX_DEFAULT_PUSH_LOCK_FLAGS);
}

// The filter manager's (FltMgr.sys exports): IRQL <= APC_LEVEL; the
// acquires enter a critical region (KeEnterCriticalRegion) before acquiring,
// FltReleasePushLock releases either mode and then leaves it.
// FltDeletePushLock frees nothing: the lock owns no memory (decision, kmlab).
void FltInitializePushLock(PEX_PUSH_LOCK PushLock);
void FltDeletePushLock(PEX_PUSH_LOCK PushLock);
void FltAcquirePushLockExclusive(PEX_PUSH_LOCK PushLock);
void FltAcquirePushLockShared(PEX_PUSH_LOCK PushLock);
void FltReleasePushLock(PEX_PUSH_LOCK PushLock);

}  // namespace kmlab::nt
