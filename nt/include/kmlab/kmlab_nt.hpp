// kmlab's NT face: the WDK-named routines, types and constants in namespace
// kmlab::nt, so that driver code compiles against the emulator nearly
// unchanged. Add `using namespace kmlab::nt;` after including this header.
//
// What it emulates, and how faithfully, is ../shared/design/SEMANTICS.md;
// where the emulator had to decide something the sources leave open, the
// decision is written beside the declaration.
#pragma once

#include <kmlab/kernel/bugcheck.hpp>
#include <kmlab/kernel/ntdef.hpp>
#include <kmlab/kernel/ntstatus.hpp>
#include <kmlab/kernel/objects.hpp>
#include <kmlab/kernel/routines.hpp>
#include <kmlab/kernel/thread.hpp>
#include <kmlab/kernel/time.hpp>
