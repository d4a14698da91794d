// NTSTATUS values (real codes, [wine-status]) and the severity predicates
// ([k:using-ntstatus-values]): the top two bits are the severity.
#pragma once

#include <kmlab/kernel/ntdef.hpp>

namespace kmlab::nt {

constexpr NTSTATUS ntstatus(std::uint32_t v) {
    return static_cast<NTSTATUS>(v);
}

inline constexpr NTSTATUS STATUS_SUCCESS = 0x00000000;
inline constexpr NTSTATUS STATUS_WAIT_0 = 0x00000000;
inline constexpr NTSTATUS STATUS_WAIT_1 = 0x00000001;
inline constexpr NTSTATUS STATUS_WAIT_2 = 0x00000002;
inline constexpr NTSTATUS STATUS_WAIT_3 = 0x00000003;
inline constexpr NTSTATUS STATUS_WAIT_63 = 0x0000003F;
inline constexpr NTSTATUS STATUS_ABANDONED = 0x00000080;
inline constexpr NTSTATUS STATUS_ABANDONED_WAIT_0 = 0x00000080;
inline constexpr NTSTATUS STATUS_ABANDONED_WAIT_63 = 0x000000BF;
inline constexpr NTSTATUS STATUS_USER_APC = 0x000000C0;
inline constexpr NTSTATUS STATUS_KERNEL_APC = 0x00000100;
inline constexpr NTSTATUS STATUS_ALERTED = 0x00000101;
inline constexpr NTSTATUS STATUS_TIMEOUT = 0x00000102;
inline constexpr NTSTATUS STATUS_PENDING = 0x00000103;
inline constexpr NTSTATUS STATUS_BREAKPOINT = ntstatus(0x80000003);
inline constexpr NTSTATUS STATUS_UNSUCCESSFUL = ntstatus(0xC0000001);
inline constexpr NTSTATUS STATUS_NOT_IMPLEMENTED = ntstatus(0xC0000002);
inline constexpr NTSTATUS STATUS_INVALID_HANDLE = ntstatus(0xC0000008);
inline constexpr NTSTATUS STATUS_INVALID_CID = ntstatus(0xC000000B);
inline constexpr NTSTATUS STATUS_INVALID_PARAMETER = ntstatus(0xC000000D);
inline constexpr NTSTATUS STATUS_ACCESS_DENIED = ntstatus(0xC0000022);
inline constexpr NTSTATUS STATUS_OBJECT_TYPE_MISMATCH = ntstatus(0xC0000024);
inline constexpr NTSTATUS STATUS_INVALID_PARAMETER_MIX = ntstatus(0xC0000030);
inline constexpr NTSTATUS STATUS_MUTANT_NOT_OWNED = ntstatus(0xC0000046);
inline constexpr NTSTATUS STATUS_SEMAPHORE_LIMIT_EXCEEDED = ntstatus(0xC0000047);
inline constexpr NTSTATUS STATUS_SUSPEND_COUNT_EXCEEDED = ntstatus(0xC000004A);
inline constexpr NTSTATUS STATUS_THREAD_IS_TERMINATING = ntstatus(0xC000004B);
inline constexpr NTSTATUS STATUS_DELETE_PENDING = ntstatus(0xC0000056);
inline constexpr NTSTATUS STATUS_INSUFFICIENT_RESOURCES = ntstatus(0xC000009A);
inline constexpr NTSTATUS STATUS_NOT_SUPPORTED = ntstatus(0xC00000BB);
inline constexpr NTSTATUS STATUS_MUTANT_LIMIT_EXCEEDED = ntstatus(0xC0000191);
inline constexpr NTSTATUS STATUS_POSSIBLE_DEADLOCK = ntstatus(0xC0000194);

constexpr bool NT_SUCCESS(NTSTATUS s) {
    return s >= 0;
}
constexpr bool NT_INFORMATION(NTSTATUS s) {
    return (static_cast<ULONG>(s) & 0xC0000000u) == 0x40000000u;
}
constexpr bool NT_WARNING(NTSTATUS s) {
    return (static_cast<ULONG>(s) & 0xC0000000u) == 0x80000000u;
}
constexpr bool NT_ERROR(NTSTATUS s) {
    return (static_cast<ULONG>(s) & 0xC0000000u) == 0xC0000000u;
}

// The symbolic name of a status this header knows, or nullptr.
const char* status_name(NTSTATUS s) noexcept;

}  // namespace kmlab::nt
