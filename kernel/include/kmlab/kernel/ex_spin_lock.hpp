// EX_SPIN_LOCK (reader/writer spin lock): the type and routines with the
// WDK's names and signatures [ddi:reader-writer-spin-locks].
//
// What Windows exports (for the C face, <kmlab/wdm.h>, and its
// MmGetSystemRoutineAddress table): every routine below is an ntoskrnl
// export (the family since Windows Vista SP1 [ddi:reader-writer-spin-locks];
// the pages list Ntoskrnl.lib as their library
// [ddi:extryconvertsharedspinlockexclusive]); none is a macro or an inline
// in wdm.h.
//
// Rules (kernel/rules_rw_lock.hpp has each with its source and flavour):
// the raising forms at IRQL <= DISPATCH_LEVEL, the ...AtDpcLevel /
// ...FromDpcLevel forms and the try/convert routines at DISPATCH_LEVEL or
// above; not recursive (a recursive acquire deadlocks, as the documentation
// says); once a writer has claimed the lock (it waits for the readers to
// drain) no new reader enters (writer preference); a writer still queued
// behind another writer holds back no one (decision, kmlab). The algorithm,
// that decision and the word's layout: kernel/rw_lock_algorithm.hpp.
#pragma once

#include <kmlab/kernel/routines.hpp>

namespace kmlab::nt {

// wdm.h: `typedef volatile LONG EX_SPIN_LOCK, *PEX_SPIN_LOCK;` a 32-bit
// variable the driver initializes to zero [ddi:exacquirespinlockexclusive].
// The volatile is dropped (every access goes through std::atomic_ref, which a
// volatile object cannot take; decision, kmlab: same size and layout).
using EX_SPIN_LOCK = LONG;
using PEX_SPIN_LOCK = EX_SPIN_LOCK*;
// wdm.h: `typedef ULONG LOGICAL;`, the convert routine's result.
using LOGICAL = ULONG;

// IRQL <= DISPATCH_LEVEL; raise to DISPATCH_LEVEL and return the IRQL found.
KIRQL ExAcquireSpinLockShared(PEX_SPIN_LOCK SpinLock);
KIRQL ExAcquireSpinLockExclusive(PEX_SPIN_LOCK SpinLock);
// Release and lower the IRQL to OldIrql (what the acquire returned).
void ExReleaseSpinLockShared(PEX_SPIN_LOCK SpinLock, KIRQL OldIrql);
void ExReleaseSpinLockExclusive(PEX_SPIN_LOCK SpinLock, KIRQL OldIrql);

// IRQL >= DISPATCH_LEVEL; the IRQL is not changed.
void ExAcquireSpinLockSharedAtDpcLevel(PEX_SPIN_LOCK SpinLock);
void ExAcquireSpinLockExclusiveAtDpcLevel(PEX_SPIN_LOCK SpinLock);
void ExReleaseSpinLockSharedFromDpcLevel(PEX_SPIN_LOCK SpinLock);
void ExReleaseSpinLockExclusiveFromDpcLevel(PEX_SPIN_LOCK SpinLock);

// IRQL >= DISPATCH_LEVEL; TRUE when acquired, never spins. The shared try
// fails while a writer holds the lock or has claimed it.
LOGICAL ExTryAcquireSpinLockSharedAtDpcLevel(PEX_SPIN_LOCK SpinLock);
LOGICAL ExTryAcquireSpinLockExclusiveAtDpcLevel(PEX_SPIN_LOCK SpinLock);

// The caller holds it shared (at DISPATCH_LEVEL): TRUE, and the caller now
// holds it exclusive, only when it is the sole sharer and no writer waits;
// FALSE, and the caller still holds it shared, otherwise
// [ddi:extryconvertsharedspinlockexclusive].
LOGICAL ExTryConvertSharedSpinLockExclusive(PEX_SPIN_LOCK SpinLock);

}  // namespace kmlab::nt
