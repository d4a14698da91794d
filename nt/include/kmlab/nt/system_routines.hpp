// MmGetSystemRoutineAddress for the C++ face: the routines a driver looks up
// by name at run time are the C face's (<kmlab/wdm.h>), the ones a Windows
// kernel exports, so that the pointer returned has the routine's C type.
#pragma once

#include <kmlab/kernel/routines.hpp>

namespace kmlab::nt {

// The address of the routine or exported variable of <kmlab/wdm.h> named by
// SystemRoutineName, or nullptr if there is none (or the name is not ASCII)
// [ddi:mmgetsystemroutineaddress]. PASSIVE_LEVEL. A routine's address is its
// extern "C" entry point; cast it to a pointer to the routine's type, as
// driver code does, and call it from C++ as from C.
PVOID MmGetSystemRoutineAddress(PUNICODE_STRING SystemRoutineName);

}  // namespace kmlab::nt
