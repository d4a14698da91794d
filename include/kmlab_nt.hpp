// kmlab's NT face: the WDK-named routines, types and constants in namespace
// kmlab::nt, so that driver code compiles against the emulator nearly
// unchanged. Add `using namespace kmlab::nt;` after including this header.
//
// What it emulates, and how faithfully, is ../shared/design/SEMANTICS.md;
// where the emulator had to decide something the sources leave open, the
// decision is written beside the declaration.
#pragma once

#include "backends/dispatcher/dispatcher.hpp"
#include "kernel/bugcheck.hpp"
#include "kernel/ntdef.hpp"
#include "kernel/ntstatus.hpp"
#include "kernel/objects.hpp"
#include "kernel/thread.hpp"
#include "kernel/time.hpp"
