// kmlab's NT face: the WDK-named routines, types and constants in namespace
// kmlab::nt, so that driver code compiles against the emulator nearly
// unchanged. Add `using namespace kmlab::nt;` after including this header.
//
// What it emulates, and how faithfully, is ../shared/design/SEMANTICS.md;
// where the emulator had to decide something the sources leave open, the
// decision is written beside the declaration.
//
// The WDK's helper macros (NTAPI, the SAL annotations, CONTAINING_RECORD,
// RTL_NUMBER_OF, C_ASSERT, UNREFERENCED_PARAMETER, RtlZeroMemory and friends)
// come with it, from <kmlab/nt/wdk_macros.h>, as they do with <kmlab/wdm.h>.
#pragma once

#include <kmlab/nt/wdk_macros.h>
#include <kmlab/kernel/bugcheck.hpp>
#include <kmlab/kernel/ex_spin_lock.hpp>
#include <kmlab/kernel/ntdef.hpp>
#include <kmlab/kernel/ntstatus.hpp>
#include <kmlab/kernel/objects.hpp>
#include <kmlab/kernel/push_lock.hpp>
#include <kmlab/kernel/resource.hpp>
#include <kmlab/kernel/routines.hpp>
#include <kmlab/kernel/spin_lock.hpp>
#include <kmlab/kernel/thread.hpp>
#include <kmlab/kernel/time.hpp>
#include <kmlab/kernel/timer.hpp>
#include <kmlab/nt/system_routines.hpp>
