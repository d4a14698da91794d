// The object manager's interior, private to kernel/src: the handle table the
// Ps/Ob/Zw routines share (object_manager.cpp).
#pragma once

#include <kmlab/kernel/routines.hpp>

namespace kmlab::kernel {

// Enters `object` (a thread or an event the object manager allocated) in the
// handle table with `granted` access; the caller has taken the reference the
// handle holds. Returns the handle.
nt::HANDLE insert_handle(nt::PVOID object, nt::ACCESS_MASK granted);

// The access a kernel-mode creator is granted: what it asked for, with
// GENERIC_ALL mapped to the object type's all-access mask (the other generic
// rights are kept as given: nothing in the emulator checks access).
nt::ACCESS_MASK map_generic_all(nt::ACCESS_MASK desired, nt::ACCESS_MASK all_access) noexcept;

}  // namespace kmlab::kernel
