/* The WDK's helper macros and annotations, shared by both faces: <kmlab/wdm.h>
 * (C) and <kmlab/kmlab_nt.hpp> (C++) include it, so driver code that uses
 * them compiles against either unchanged [ros-ntdef]. Each is defined only
 * where the includer has not defined it already.
 *
 * The SAL annotations (_In_, _Out_, ...) are defined away, as the WDK does
 * without /analyze. They are reserved identifiers that the standard library
 * kmlab builds with does not use (libstdc++, every header included, compiles
 * with them defined); still, including the standard headers first is the safe
 * order.
 *
 * What each face gets (decision, kmlab):
 *  - Both: the SAL 2 annotations (reserved names: _In_, _IRQL_requires_max_,
 *    _Acquires_lock_, _Post_satisfies_, ...), ntdef.h's IN / OUT / OPTIONAL /
 *    CONST, the linkage and declaration macros (NTKERNELAPI, DECLSPEC_*,
 *    FORCEINLINE, EXTERN_C) and the helper macros below. IN, OUT and OPTIONAL
 *    are plain words; no header kmlab builds with (libstdc++, GoogleTest,
 *    Google Benchmark, oneTBB) uses them outside comments.
 *  - C only: the type limits (MINLONG, MAXULONG, ...), which kmlab::nt
 *    declares as constants of the same names (a macro would rewrite
 *    kmlab::nt::MINLONG), the DDK's older annotations (__in, __drv_maxIRQL, ...)
 *    and the compiler keywords of Microsoft's C (__int64, __stdcall, ...),
 *    which are names libstdc++ uses for its own parameters and types.
 *  - min and max: in C unless NOMINMAX is defined (the WDK's own switch); in
 *    C++ only where the includer defines KMLAB_WDK_MINMAX before including,
 *    after every standard header: as function-like macros they rewrite
 *    std::min, std::max and std::numeric_limits<T>::max() in any header
 *    included after them.
 */
#ifndef KMLAB_NT_WDK_MACROS_H
#define KMLAB_NT_WDK_MACROS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Calling conventions (one on amd64) and SAL annotations: nothing. */
#ifndef NTAPI
#define NTAPI /* the one amd64 calling convention */
#endif
#ifndef FASTCALL
#define FASTCALL
#endif
#ifndef _In_
#define _In_
#endif
#ifndef _In_opt_
#define _In_opt_
#endif
#ifndef _In_z_
#define _In_z_
#endif
#ifndef _Out_
#define _Out_
#endif
#ifndef _Out_opt_
#define _Out_opt_
#endif
#ifndef _Inout_
#define _Inout_
#endif
#ifndef _Inout_opt_
#define _Inout_opt_
#endif
#ifndef _In_reads_
#define _In_reads_(n)
#endif
#ifndef _In_reads_bytes_
#define _In_reads_bytes_(n)
#endif
#ifndef _Out_writes_
#define _Out_writes_(n)
#endif
#ifndef _Out_writes_bytes_
#define _Out_writes_bytes_(n)
#endif
#ifndef _Inout_updates_
#define _Inout_updates_(n)
#endif
#ifndef _Outptr_
#define _Outptr_
#endif
#ifndef _Outptr_result_maybenull_
#define _Outptr_result_maybenull_
#endif
#ifndef _Must_inspect_result_
#define _Must_inspect_result_
#endif
#ifndef _Use_decl_annotations_
#define _Use_decl_annotations_
#endif
#ifndef _Ret_maybenull_
#define _Ret_maybenull_
#endif
#ifndef _Success_
#define _Success_(expr)
#endif
#ifndef _When_
#define _When_(cond, annotes)
#endif
#ifndef _IRQL_requires_max_
#define _IRQL_requires_max_(irql)
#endif
#ifndef _IRQL_requires_min_
#define _IRQL_requires_min_(irql)
#endif
#ifndef _IRQL_requires_
#define _IRQL_requires_(irql)
#endif
#ifndef _IRQL_requires_same_
#define _IRQL_requires_same_
#endif
#ifndef _IRQL_raises_
#define _IRQL_raises_(irql)
#endif
#ifndef _IRQL_saves_
#define _IRQL_saves_
#endif
#ifndef _IRQL_restores_
#define _IRQL_restores_
#endif
#ifndef _Function_class_
#define _Function_class_(name)
#endif
#ifndef _Dispatch_type_
#define _Dispatch_type_(type)
#endif
#ifndef _Acquires_lock_
#define _Acquires_lock_(lock)
#endif
#ifndef _Releases_lock_
#define _Releases_lock_(lock)
#endif
#ifndef _Requires_lock_held_
#define _Requires_lock_held_(lock)
#endif
#ifndef _Requires_lock_not_held_
#define _Requires_lock_not_held_(lock)
#endif
#ifndef _Guarded_by_
#define _Guarded_by_(lock)
#endif

/* The rest of the SAL 2 family the WDK's headers and driver files use
 * [ros-sal] [ros-driverspecs]: nothing, as without /analyze. */
#ifndef _In_opt_z_
#define _In_opt_z_
#endif
#ifndef _In_reads_z_
#define _In_reads_z_(s)
#endif
#ifndef _In_reads_opt_
#define _In_reads_opt_(s)
#endif
#ifndef _In_reads_bytes_opt_
#define _In_reads_bytes_opt_(s)
#endif
#ifndef _In_reads_to_ptr_
#define _In_reads_to_ptr_(p)
#endif
#ifndef _In_reads_or_z_
#define _In_reads_or_z_(s)
#endif
#ifndef _In_range_
#define _In_range_(lb, ub)
#endif
#ifndef _Out_writes_opt_
#define _Out_writes_opt_(s)
#endif
#ifndef _Out_writes_z_
#define _Out_writes_z_(s)
#endif
#ifndef _Out_writes_bytes_opt_
#define _Out_writes_bytes_opt_(s)
#endif
#ifndef _Out_writes_to_
#define _Out_writes_to_(s, c)
#endif
#ifndef _Out_writes_to_opt_
#define _Out_writes_to_opt_(s, c)
#endif
#ifndef _Out_writes_bytes_to_
#define _Out_writes_bytes_to_(s, c)
#endif
#ifndef _Out_writes_bytes_to_opt_
#define _Out_writes_bytes_to_opt_(s, c)
#endif
#ifndef _Out_writes_all_
#define _Out_writes_all_(s)
#endif
#ifndef _Out_writes_bytes_all_
#define _Out_writes_bytes_all_(s)
#endif
#ifndef _Out_writes_bytes_all_opt_
#define _Out_writes_bytes_all_opt_(s)
#endif
#ifndef _Out_range_
#define _Out_range_(lb, ub)
#endif
#ifndef _Inout_z_
#define _Inout_z_
#endif
#ifndef _Inout_opt_z_
#define _Inout_opt_z_
#endif
#ifndef _Inout_updates_opt_
#define _Inout_updates_opt_(s)
#endif
#ifndef _Inout_updates_bytes_
#define _Inout_updates_bytes_(s)
#endif
#ifndef _Inout_updates_bytes_opt_
#define _Inout_updates_bytes_opt_(s)
#endif
#ifndef _Inout_updates_z_
#define _Inout_updates_z_(s)
#endif
#ifndef _Inout_updates_to_
#define _Inout_updates_to_(s, c)
#endif
#ifndef _Inout_updates_all_
#define _Inout_updates_all_(s)
#endif
#ifndef _Outptr_opt_
#define _Outptr_opt_
#endif
#ifndef _Outptr_result_z_
#define _Outptr_result_z_
#endif
#ifndef _Outptr_opt_result_maybenull_
#define _Outptr_opt_result_maybenull_
#endif
#ifndef _Outptr_result_buffer_
#define _Outptr_result_buffer_(s)
#endif
#ifndef _Outptr_result_bytebuffer_
#define _Outptr_result_bytebuffer_(s)
#endif
#ifndef _Outptr_result_buffer_maybenull_
#define _Outptr_result_buffer_maybenull_(s)
#endif
#ifndef _Outptr_result_bytebuffer_maybenull_
#define _Outptr_result_bytebuffer_maybenull_(s)
#endif
#ifndef _Outptr_opt_result_buffer_
#define _Outptr_opt_result_buffer_(s)
#endif
#ifndef _Outptr_result_nullonfailure_
#define _Outptr_result_nullonfailure_
#endif
#ifndef _COM_Outptr_
#define _COM_Outptr_
#endif
#ifndef _Deref_out_
#define _Deref_out_
#endif
#ifndef _Deref_out_opt_
#define _Deref_out_opt_
#endif
#ifndef _Deref_out_range_
#define _Deref_out_range_(lb, ub)
#endif
#ifndef _Deref_in_range_
#define _Deref_in_range_(lb, ub)
#endif
#ifndef _Deref_inout_range_
#define _Deref_inout_range_(lb, ub)
#endif
#ifndef _Deref_pre_maybenull_
#define _Deref_pre_maybenull_
#endif
#ifndef _Deref_post_maybenull_
#define _Deref_post_maybenull_
#endif
#ifndef _Check_return_
#define _Check_return_
#endif
#ifndef _Return_type_success_
#define _Return_type_success_(e)
#endif
#ifndef _Result_nullonfailure_
#define _Result_nullonfailure_
#endif
#ifndef _Result_zeroonfailure_
#define _Result_zeroonfailure_
#endif
#ifndef _On_failure_
#define _On_failure_(a)
#endif
#ifndef _Always_
#define _Always_(a)
#endif
#ifndef _At_
#define _At_(t, a)
#endif
#ifndef _At_buffer_
#define _At_buffer_(t, i, b, a)
#endif
#ifndef _Group_
#define _Group_(a)
#endif
#ifndef _Unchanged_
#define _Unchanged_(e)
#endif
#ifndef _Pre_satisfies_
#define _Pre_satisfies_(e)
#endif
#ifndef _Post_satisfies_
#define _Post_satisfies_(e)
#endif
#ifndef _Pre_notnull_
#define _Pre_notnull_
#endif
#ifndef _Pre_maybenull_
#define _Pre_maybenull_
#endif
#ifndef _Pre_null_
#define _Pre_null_
#endif
#ifndef _Pre_valid_
#define _Pre_valid_
#endif
#ifndef _Pre_opt_valid_
#define _Pre_opt_valid_
#endif
#ifndef _Pre_invalid_
#define _Pre_invalid_
#endif
#ifndef _Pre_z_
#define _Pre_z_
#endif
#ifndef _Pre_readable_size_
#define _Pre_readable_size_(s)
#endif
#ifndef _Pre_writable_size_
#define _Pre_writable_size_(s)
#endif
#ifndef _Pre_readable_byte_size_
#define _Pre_readable_byte_size_(s)
#endif
#ifndef _Pre_writable_byte_size_
#define _Pre_writable_byte_size_(s)
#endif
#ifndef _Post_valid_
#define _Post_valid_
#endif
#ifndef _Post_invalid_
#define _Post_invalid_
#endif
#ifndef _Post_ptr_invalid_
#define _Post_ptr_invalid_
#endif
#ifndef _Post_notnull_
#define _Post_notnull_
#endif
#ifndef _Post_maybenull_
#define _Post_maybenull_
#endif
#ifndef _Post_null_
#define _Post_null_
#endif
#ifndef _Post_z_
#define _Post_z_
#endif
#ifndef _Post_readable_size_
#define _Post_readable_size_(s)
#endif
#ifndef _Post_writable_size_
#define _Post_writable_size_(s)
#endif
#ifndef _Post_readable_byte_size_
#define _Post_readable_byte_size_(s)
#endif
#ifndef _Post_writable_byte_size_
#define _Post_writable_byte_size_(s)
#endif
#ifndef _Post_equal_to_
#define _Post_equal_to_(e)
#endif
#ifndef _Pre_defensive_
#define _Pre_defensive_
#endif
#ifndef _Post_defensive_
#define _Post_defensive_
#endif
#ifndef _Ret_notnull_
#define _Ret_notnull_
#endif
#ifndef _Ret_null_
#define _Ret_null_
#endif
#ifndef _Ret_z_
#define _Ret_z_
#endif
#ifndef _Ret_valid_
#define _Ret_valid_
#endif
#ifndef _Ret_opt_valid_
#define _Ret_opt_valid_
#endif
#ifndef _Ret_writes_
#define _Ret_writes_(s)
#endif
#ifndef _Ret_writes_z_
#define _Ret_writes_z_(s)
#endif
#ifndef _Ret_writes_bytes_
#define _Ret_writes_bytes_(s)
#endif
#ifndef _Ret_writes_maybenull_
#define _Ret_writes_maybenull_(s)
#endif
#ifndef _Ret_writes_bytes_maybenull_
#define _Ret_writes_bytes_maybenull_(s)
#endif
#ifndef _Ret_range_
#define _Ret_range_(lb, ub)
#endif
#ifndef _Notnull_
#define _Notnull_
#endif
#ifndef _Maybenull_
#define _Maybenull_
#endif
#ifndef _Null_
#define _Null_
#endif
#ifndef _Null_terminated_
#define _Null_terminated_
#endif
#ifndef _NullNull_terminated_
#define _NullNull_terminated_
#endif
#ifndef _Valid_
#define _Valid_
#endif
#ifndef _Notvalid_
#define _Notvalid_
#endif
#ifndef _Readable_bytes_
#define _Readable_bytes_(s)
#endif
#ifndef _Writable_bytes_
#define _Writable_bytes_(s)
#endif
#ifndef _Readable_elements_
#define _Readable_elements_(s)
#endif
#ifndef _Writable_elements_
#define _Writable_elements_(s)
#endif
#ifndef _Field_size_
#define _Field_size_(s)
#endif
#ifndef _Field_size_opt_
#define _Field_size_opt_(s)
#endif
#ifndef _Field_size_bytes_
#define _Field_size_bytes_(s)
#endif
#ifndef _Field_size_bytes_opt_
#define _Field_size_bytes_opt_(s)
#endif
#ifndef _Field_size_part_
#define _Field_size_part_(s, c)
#endif
#ifndef _Field_size_part_opt_
#define _Field_size_part_opt_(s, c)
#endif
#ifndef _Field_size_bytes_part_
#define _Field_size_bytes_part_(s, c)
#endif
#ifndef _Field_size_bytes_part_opt_
#define _Field_size_bytes_part_opt_(s, c)
#endif
#ifndef _Field_size_full_
#define _Field_size_full_(s)
#endif
#ifndef _Field_size_bytes_full_
#define _Field_size_bytes_full_(s)
#endif
#ifndef _Field_z_
#define _Field_z_
#endif
#ifndef _Field_range_
#define _Field_range_(lb, ub)
#endif
#ifndef _Struct_size_bytes_
#define _Struct_size_bytes_(s)
#endif
#ifndef _Frees_ptr_
#define _Frees_ptr_
#endif
#ifndef _Frees_ptr_opt_
#define _Frees_ptr_opt_
#endif
#ifndef _Reserved_
#define _Reserved_
#endif
#ifndef _Const_
#define _Const_
#endif
#ifndef _Printf_format_string_
#define _Printf_format_string_
#endif
#ifndef _Scanf_format_string_
#define _Scanf_format_string_
#endif
#ifndef _Strict_type_match_
#define _Strict_type_match_
#endif
#ifndef _Points_to_data_
#define _Points_to_data_
#endif
#ifndef _Literal_
#define _Literal_
#endif
#ifndef _Notliteral_
#define _Notliteral_
#endif
#ifndef _Enum_is_bitflag_
#define _Enum_is_bitflag_
#endif
#ifndef _Analysis_assume_
#define _Analysis_assume_(e)
#endif
#ifndef _Analysis_noreturn_
#define _Analysis_noreturn_
#endif
#ifndef _Analysis_mode_
#define _Analysis_mode_(m)
#endif
#ifndef _Analysis_assume_lock_acquired_
#define _Analysis_assume_lock_acquired_(l)
#endif
#ifndef _Analysis_assume_lock_released_
#define _Analysis_assume_lock_released_(l)
#endif
#ifndef _Analysis_assume_lock_held_
#define _Analysis_assume_lock_held_(l)
#endif
#ifndef _Analysis_assume_lock_not_held_
#define _Analysis_assume_lock_not_held_(l)
#endif
#ifndef _Analysis_suppress_lock_checking_
#define _Analysis_suppress_lock_checking_(l)
#endif
#ifndef _Benign_race_begin_
#define _Benign_race_begin_
#endif
#ifndef _Benign_race_end_
#define _Benign_race_end_
#endif
#ifndef _No_competing_thread_
#define _No_competing_thread_
#endif
#ifndef _No_competing_thread_begin_
#define _No_competing_thread_begin_
#endif
#ifndef _No_competing_thread_end_
#define _No_competing_thread_end_
#endif
#ifndef _Acquires_exclusive_lock_
#define _Acquires_exclusive_lock_(l)
#endif
#ifndef _Acquires_shared_lock_
#define _Acquires_shared_lock_(l)
#endif
#ifndef _Releases_exclusive_lock_
#define _Releases_exclusive_lock_(l)
#endif
#ifndef _Releases_shared_lock_
#define _Releases_shared_lock_(l)
#endif
#ifndef _Acquires_nonreentrant_lock_
#define _Acquires_nonreentrant_lock_(l)
#endif
#ifndef _Releases_nonreentrant_lock_
#define _Releases_nonreentrant_lock_(l)
#endif
#ifndef _Requires_exclusive_lock_held_
#define _Requires_exclusive_lock_held_(l)
#endif
#ifndef _Requires_shared_lock_held_
#define _Requires_shared_lock_held_(l)
#endif
#ifndef _Requires_no_locks_held_
#define _Requires_no_locks_held_
#endif
#ifndef _Post_same_lock_
#define _Post_same_lock_(a, b)
#endif
#ifndef _Create_lock_level_
#define _Create_lock_level_(n)
#endif
#ifndef _Has_lock_kind_
#define _Has_lock_kind_(k)
#endif
#ifndef _Has_lock_level_
#define _Has_lock_level_(n)
#endif
#ifndef _Lock_level_order_
#define _Lock_level_order_(a, b)
#endif
#ifndef _Write_guarded_by_
#define _Write_guarded_by_(l)
#endif
#ifndef _Interlocked_
#define _Interlocked_
#endif
#ifndef _Interlocked_operand_
#define _Interlocked_operand_
#endif
#ifndef _IRQL_saves_global_
#define _IRQL_saves_global_(k, p)
#endif
#ifndef _IRQL_restores_global_
#define _IRQL_restores_global_(k, p)
#endif
#ifndef _IRQL_always_function_max_
#define _IRQL_always_function_max_(i)
#endif
#ifndef _IRQL_always_function_min_
#define _IRQL_always_function_min_(i)
#endif
#ifndef _IRQL_uses_cancel_
#define _IRQL_uses_cancel_
#endif
#ifndef _IRQL_is_cancel_
#define _IRQL_is_cancel_
#endif
#ifndef _Kernel_float_saved_
#define _Kernel_float_saved_
#endif
#ifndef _Kernel_float_restored_
#define _Kernel_float_restored_
#endif
#ifndef _Kernel_float_used_
#define _Kernel_float_used_
#endif
#ifndef _Kernel_clear_do_init_
#define _Kernel_clear_do_init_(y)
#endif
#ifndef _Kernel_requires_resource_held_
#define _Kernel_requires_resource_held_(k)
#endif
#ifndef _Kernel_requires_resource_not_held_
#define _Kernel_requires_resource_not_held_(k)
#endif
#ifndef _Kernel_acquires_resource_
#define _Kernel_acquires_resource_(k)
#endif
#ifndef _Kernel_releases_resource_
#define _Kernel_releases_resource_(k)
#endif
#ifndef _Kernel_IoGetDmaAdapter_
#define _Kernel_IoGetDmaAdapter_
#endif
#ifndef _Kernel_entry_
#define _Kernel_entry_
#endif
#ifndef _Kernel_release_resource_
#define _Kernel_release_resource_(k)
#endif
#ifndef _Callback_
#define _Callback_
#endif
#ifndef _Pre_
#define _Pre_
#endif
#ifndef _Post_
#define _Post_
#endif
#ifndef _Deref_pre_
#define _Deref_pre_
#endif
#ifndef _Deref_post_
#define _Deref_post_
#endif
#ifndef _Notref_
#define _Notref_
#endif

/* ntdef.h's parameter words [ros-ntdef]. */
#ifndef IN
#define IN
#endif
#ifndef OUT
#define OUT
#endif
#ifndef OPTIONAL
#define OPTIONAL
#endif
#ifndef CONST
#define CONST const
#endif

/* Linkage and declaration macros [ros-ntbasedef]. kmlab links drivers
 * statically with the emulator: nothing is imported. */
#ifndef EXTERN_C
#ifdef __cplusplus
#define EXTERN_C extern "C"
#else
#define EXTERN_C extern
#endif
#endif
#ifndef DECLSPEC_IMPORT
#define DECLSPEC_IMPORT
#endif
#ifndef DECLSPEC_EXPORT
#define DECLSPEC_EXPORT __attribute__((visibility("default")))
#endif
#ifndef NTKERNELAPI
#define NTKERNELAPI DECLSPEC_IMPORT
#endif
#ifndef NTHALAPI
#define NTHALAPI DECLSPEC_IMPORT
#endif
#ifndef NTSYSAPI
#define NTSYSAPI DECLSPEC_IMPORT
#endif
#ifndef NTSYSCALLAPI
#define NTSYSCALLAPI DECLSPEC_IMPORT
#endif
#ifndef NTAPI_INLINE
#define NTAPI_INLINE NTAPI
#endif
/* decision, kmlab: FORCEINLINE is an inline definition that is always
 * inlined; `static FORCEINLINE`, the WDK headers' own use, gives a static
 * one. */
#ifndef FORCEINLINE
#ifdef __cplusplus
#define FORCEINLINE inline __attribute__((__always_inline__))
#else
#define FORCEINLINE __inline__ __attribute__((__always_inline__))
#endif
#endif
#ifndef DECLSPEC_NOINLINE
#define DECLSPEC_NOINLINE __attribute__((__noinline__))
#endif
#ifndef DECLSPEC_NORETURN
#define DECLSPEC_NORETURN __attribute__((__noreturn__))
#endif
#ifndef DECLSPEC_ALIGN
#define DECLSPEC_ALIGN(x) __attribute__((__aligned__(x)))
#endif
#ifndef SYSTEM_CACHE_ALIGNMENT_SIZE
#define SYSTEM_CACHE_ALIGNMENT_SIZE 64 /* amd64 */
#endif
#ifndef DECLSPEC_CACHEALIGN
#define DECLSPEC_CACHEALIGN DECLSPEC_ALIGN(SYSTEM_CACHE_ALIGNMENT_SIZE)
#endif
#ifndef DECLSPEC_SELECTANY
#define DECLSPEC_SELECTANY __attribute__((__weak__))
#endif
#ifndef DECLSPEC_NOTHROW
#define DECLSPEC_NOTHROW __attribute__((__nothrow__))
#endif
#ifndef DECLSPEC_DEPRECATED
#define DECLSPEC_DEPRECATED __attribute__((__deprecated__))
#endif
#ifndef DECLSPEC_DEPRECATED_DDK
#define DECLSPEC_DEPRECATED_DDK
#endif
#ifndef DECLSPEC_ADDRSAFE
#define DECLSPEC_ADDRSAFE
#endif
#ifndef DECLSPEC_NOVTABLE
#define DECLSPEC_NOVTABLE
#endif
#ifndef DECLSPEC_UUID
#define DECLSPEC_UUID(x)
#endif
#ifndef DECLSPEC_GUARD_SUPPRESS
#define DECLSPEC_GUARD_SUPPRESS
#endif
#ifndef ANYSIZE_ARRAY
#define ANYSIZE_ARRAY 1
#endif
#ifndef UNALIGNED
#define UNALIGNED
#endif
#ifndef UNALIGNED64
#define UNALIGNED64
#endif
#ifndef RESTRICTED_POINTER
#define RESTRICTED_POINTER
#endif
#ifndef POINTER_64
#define POINTER_64
#endif
#ifndef MEMORY_ALLOCATION_ALIGNMENT
#define MEMORY_ALLOCATION_ALIGNMENT 16 /* amd64 */
#endif
/* Anonymous unions and structs are named nothing, as the WDK names them
 * without NONAMELESSUNION. */
#ifndef DUMMYUNIONNAME
#define DUMMYUNIONNAME
#define DUMMYUNIONNAME1
#define DUMMYUNIONNAME2
#define DUMMYUNIONNAME3
#define DUMMYUNIONNAME4
#define DUMMYUNIONNAME5
#endif
#ifndef DUMMYSTRUCTNAME
#define DUMMYSTRUCTNAME
#define DUMMYSTRUCTNAME1
#define DUMMYSTRUCTNAME2
#define DUMMYSTRUCTNAME3
#endif

#ifndef __cplusplus
/* C only (see the top of this file). The type limits [ros-ntbasedef]: the
 * WDK's values and types (MINLONG is 0x80000000, an unsigned int, as
 * `(LONG)MINLONG` in driver code expects). */
#ifndef MINCHAR
#define MINCHAR 0x80
#endif
#ifndef MAXCHAR
#define MAXCHAR 0x7f
#endif
#ifndef MINSHORT
#define MINSHORT 0x8000
#endif
#ifndef MAXSHORT
#define MAXSHORT 0x7fff
#endif
#ifndef MINLONG
#define MINLONG 0x80000000
#endif
#ifndef MAXLONG
#define MAXLONG 0x7fffffff
#endif
#ifndef MAXUCHAR
#define MAXUCHAR 0xff
#endif
#ifndef MAXUSHORT
#define MAXUSHORT 0xffff
#endif
#ifndef MAXULONG
#define MAXULONG 0xffffffff
#endif
#ifndef MAXLONGLONG
#define MAXLONGLONG (0x7fffffffffffffffLL)
#endif
#ifndef MAXULONGLONG
#define MAXULONGLONG (0xffffffffffffffffULL)
#endif
#ifndef MAXULONG_PTR
#define MAXULONG_PTR (~((ULONG_PTR)0))
#endif
#ifndef MAXLONG_PTR
#define MAXLONG_PTR ((LONG_PTR)(MAXULONG_PTR >> 1))
#endif
#ifndef MINLONG_PTR
#define MINLONG_PTR (~MAXLONG_PTR)
#endif
#ifndef MAXSIZE_T
#define MAXSIZE_T ((SIZE_T) ~((SIZE_T)0))
#endif
/* Microsoft C's keywords, as MinGW spells them for gcc; the calling
 * conventions are nothing on amd64, which has one. */
#ifndef __int64
#define __int64 long long
#endif
#ifndef __int32
#define __int32 int
#endif
#ifndef __int16
#define __int16 short
#endif
#ifndef __int8
#define __int8 char
#endif
#ifndef __stdcall
#define __stdcall
#endif
#ifndef __cdecl
#define __cdecl
#endif
#ifndef __fastcall
#define __fastcall
#endif
#ifndef __forceinline
#define __forceinline FORCEINLINE
#endif
/* The DDK's annotations before SAL 2 [ros-sal][ros-driverspecs]: nothing. (Not
 * __reserved: Linux's uapi headers name struct members so.) glibc names
 * prototype parameters __in and __out (<arpa/inet.h>), which these leave
 * unnamed, still valid; include the system's headers first all the same. */
#ifndef __in
#define __in
#endif
#ifndef __in_opt
#define __in_opt
#endif
#ifndef __out
#define __out
#endif
#ifndef __out_opt
#define __out_opt
#endif
#ifndef __inout
#define __inout
#endif
#ifndef __inout_opt
#define __inout_opt
#endif
#ifndef __in_z
#define __in_z
#endif
#ifndef __in_opt_z
#define __in_opt_z
#endif
#ifndef __out_z
#define __out_z
#endif
#ifndef __deref_out
#define __deref_out
#endif
#ifndef __deref_out_opt
#define __deref_out_opt
#endif
#ifndef __deref_inout
#define __deref_inout
#endif
#ifndef __in_bcount
#define __in_bcount(s)
#endif
#ifndef __in_ecount
#define __in_ecount(s)
#endif
#ifndef __out_bcount
#define __out_bcount(s)
#endif
#ifndef __out_ecount
#define __out_ecount(s)
#endif
#ifndef __inout_bcount
#define __inout_bcount(s)
#endif
#ifndef __inout_ecount
#define __inout_ecount(s)
#endif
#ifndef __in_bcount_opt
#define __in_bcount_opt(s)
#endif
#ifndef __in_ecount_opt
#define __in_ecount_opt(s)
#endif
#ifndef __out_bcount_opt
#define __out_bcount_opt(s)
#endif
#ifndef __out_ecount_opt
#define __out_ecount_opt(s)
#endif
#ifndef __out_bcount_part
#define __out_bcount_part(s, c)
#endif
#ifndef __out_ecount_part
#define __out_ecount_part(s, c)
#endif
#ifndef __checkReturn
#define __checkReturn
#endif
#ifndef __success
#define __success(e)
#endif
#ifndef __nullterminated
#define __nullterminated
#endif
#ifndef __drv_maxIRQL
#define __drv_maxIRQL(i)
#endif
#ifndef __drv_minIRQL
#define __drv_minIRQL(i)
#endif
#ifndef __drv_requiresIRQL
#define __drv_requiresIRQL(i)
#endif
#ifndef __drv_raisesIRQL
#define __drv_raisesIRQL(i)
#endif
#ifndef __drv_setsIRQL
#define __drv_setsIRQL(i)
#endif
#ifndef __drv_savesIRQL
#define __drv_savesIRQL
#endif
#ifndef __drv_restoresIRQL
#define __drv_restoresIRQL
#endif
#ifndef __drv_sameIRQL
#define __drv_sameIRQL
#endif
#ifndef __drv_savesIRQLGlobal
#define __drv_savesIRQLGlobal(k, p)
#endif
#ifndef __drv_restoresIRQLGlobal
#define __drv_restoresIRQLGlobal(k, p)
#endif
#ifndef __drv_maxFunctionIRQL
#define __drv_maxFunctionIRQL(i)
#endif
#ifndef __drv_minFunctionIRQL
#define __drv_minFunctionIRQL(i)
#endif
#ifndef __drv_useCancelIRQL
#define __drv_useCancelIRQL
#endif
#ifndef __drv_isCancelIRQL
#define __drv_isCancelIRQL
#endif
#ifndef __drv_dispatchType
#define __drv_dispatchType(t)
#endif
#ifndef __drv_dispatchType_other
#define __drv_dispatchType_other
#endif
#ifndef __drv_functionClass
#define __drv_functionClass(n)
#endif
#ifndef __drv_when
#define __drv_when(c, a)
#endif
#ifndef __drv_acquiresResource
#define __drv_acquiresResource(k)
#endif
#ifndef __drv_releasesResource
#define __drv_releasesResource(k)
#endif
#ifndef __drv_acquiresExclusiveResource
#define __drv_acquiresExclusiveResource(k)
#endif
#ifndef __drv_releasesExclusiveResource
#define __drv_releasesExclusiveResource(k)
#endif
#ifndef __drv_mustHold
#define __drv_mustHold(k)
#endif
#ifndef __drv_neverHold
#define __drv_neverHold(k)
#endif
#ifndef __drv_mustHoldCriticalRegion
#define __drv_mustHoldCriticalRegion
#endif
#ifndef __drv_mustHoldCancelSpinLock
#define __drv_mustHoldCancelSpinLock
#endif
#ifndef __drv_acquiresCriticalRegion
#define __drv_acquiresCriticalRegion
#endif
#ifndef __drv_releasesCriticalRegion
#define __drv_releasesCriticalRegion
#endif
#ifndef __drv_acquiresCancelSpinLock
#define __drv_acquiresCancelSpinLock
#endif
#ifndef __drv_releasesCancelSpinLock
#define __drv_releasesCancelSpinLock
#endif
#ifndef __drv_inTry
#define __drv_inTry
#endif
#ifndef __drv_notInTry
#define __drv_notInTry
#endif
#ifndef __drv_preferredFunction
#define __drv_preferredFunction(f, r)
#endif
#ifndef __drv_reportError
#define __drv_reportError(s)
#endif
#ifndef __drv_strictTypeMatch
#define __drv_strictTypeMatch(m)
#endif
#ifndef __drv_strictType
#define __drv_strictType(t, m)
#endif
#ifndef __drv_valueIs
#define __drv_valueIs(a)
#endif
#ifndef __drv_arg
#define __drv_arg(e, a)
#endif
#ifndef __drv_in
#define __drv_in(a)
#endif
#ifndef __drv_out
#define __drv_out(a)
#endif
#ifndef __drv_in_deref
#define __drv_in_deref(a)
#endif
#ifndef __drv_out_deref
#define __drv_out_deref(a)
#endif
#ifndef __drv_isObjectPointer
#define __drv_isObjectPointer
#endif
#ifndef __drv_constant
#define __drv_constant
#endif
#ifndef __drv_nonConstant
#define __drv_nonConstant
#endif
#ifndef __drv_interlocked
#define __drv_interlocked
#endif
#ifndef __drv_aliasesMem
#define __drv_aliasesMem
#endif
#ifndef __drv_allocatesMem
#define __drv_allocatesMem(k)
#endif
#ifndef __drv_freesMem
#define __drv_freesMem(k)
#endif
#ifndef __drv_clearDoInit
#define __drv_clearDoInit(y)
#endif
#ifndef __drv_floatSaved
#define __drv_floatSaved
#endif
#ifndef __drv_floatRestored
#define __drv_floatRestored
#endif
#ifndef __drv_floatUsed
#define __drv_floatUsed
#endif
#ifndef __drv_innerMustHoldGlobal
#define __drv_innerMustHoldGlobal(k, p)
#endif
#ifndef __drv_innerNeverHoldGlobal
#define __drv_innerNeverHoldGlobal(k, p)
#endif
#ifndef __drv_mustHoldGlobal
#define __drv_mustHoldGlobal(k, p)
#endif
#ifndef __drv_neverHoldGlobal
#define __drv_neverHoldGlobal(k, p)
#endif
#ifndef __drv_acquiresResourceGlobal
#define __drv_acquiresResourceGlobal(k, p)
#endif
#ifndef __drv_releasesResourceGlobal
#define __drv_releasesResourceGlobal(k, p)
#endif
#endif /* !__cplusplus */

/* min and max [ros-ntdef] (see the top of this file). */
#if (!defined(__cplusplus) && !defined(NOMINMAX)) || \
    (defined(__cplusplus) && defined(KMLAB_WDK_MINMAX))
#ifndef min
#define min(a, b) (((a) < (b)) ? (a) : (b))
#endif
#ifndef max
#define max(a, b) (((a) > (b)) ? (a) : (b))
#endif
#endif

/* Helpers. */
#ifndef C_ASSERT
#ifdef __cplusplus
#define C_ASSERT(e) static_assert(e, #e)
#else
#define C_ASSERT(e) _Static_assert(e, #e)
#endif
#endif
#ifndef UNREFERENCED_PARAMETER
#define UNREFERENCED_PARAMETER(P) ((void)(P))
#endif
#ifndef RTL_NUMBER_OF
#define RTL_NUMBER_OF(A) (sizeof(A) / sizeof((A)[0]))
#endif
#ifndef ARRAYSIZE
#define ARRAYSIZE(A) RTL_NUMBER_OF(A)
#endif
#ifndef FIELD_OFFSET
#define FIELD_OFFSET(type, field) offsetof(type, field)
#endif
#ifndef CONTAINING_RECORD
#ifdef __cplusplus /* the same arithmetic without C casts, for -Wold-style-cast */
#define CONTAINING_RECORD(address, type, field) \
    reinterpret_cast<type*>(reinterpret_cast<uintptr_t>(address) - offsetof(type, field))
#else
#define CONTAINING_RECORD(address, type, field) ((type*)((char*)(address)-offsetof(type, field)))
#endif
#endif
#ifndef RtlZeroMemory
#define RtlZeroMemory(Destination, Length) memset((Destination), 0, (Length))
#endif
#ifndef RtlFillMemory
#define RtlFillMemory(Destination, Length, Fill) memset((Destination), (Fill), (Length))
#endif
#ifndef RtlCopyMemory
#define RtlCopyMemory(Destination, Source, Length) memcpy((Destination), (Source), (Length))
#endif
#ifndef RtlMoveMemory
#define RtlMoveMemory(Destination, Source, Length) memmove((Destination), (Source), (Length))
#endif
#ifndef RtlEqualMemory
#define RtlEqualMemory(Destination, Source, Length) (!memcmp((Destination), (Source), (Length)))
#endif

#ifndef RTL_FIELD_SIZE
#define RTL_FIELD_SIZE(type, field) (sizeof(((type*)0)->field))
#endif
#ifndef RTL_SIZEOF_THROUGH_FIELD
#define RTL_SIZEOF_THROUGH_FIELD(type, field) \
    (FIELD_OFFSET(type, field) + RTL_FIELD_SIZE(type, field))
#endif
#ifndef RTL_NUMBER_OF_V1
#define RTL_NUMBER_OF_V1(A) RTL_NUMBER_OF(A)
#endif
#ifndef RTL_NUMBER_OF_V2
#define RTL_NUMBER_OF_V2(A) RTL_NUMBER_OF(A)
#endif
#ifndef _ARRAYSIZE
#define _ARRAYSIZE(A) RTL_NUMBER_OF(A)
#endif
#ifndef TYPE_ALIGNMENT
#define TYPE_ALIGNMENT(t) _Alignof(t)
#ifdef __cplusplus
#undef TYPE_ALIGNMENT
#define TYPE_ALIGNMENT(t) alignof(t)
#endif
#endif
#ifndef DBG_UNREFERENCED_PARAMETER
#define DBG_UNREFERENCED_PARAMETER(P) ((void)(P))
#endif
#ifndef DBG_UNREFERENCED_LOCAL_VARIABLE
#define DBG_UNREFERENCED_LOCAL_VARIABLE(L) ((void)(L))
#endif
#ifndef UNREFERENCED_LOCAL_VARIABLE
#define UNREFERENCED_LOCAL_VARIABLE(L) ((void)(L))
#endif
#ifndef FlagOn
#define FlagOn(_F, _SF) ((_F) & (_SF))
#endif
#ifndef BooleanFlagOn
#define BooleanFlagOn(F, SF) ((BOOLEAN)(((F) & (SF)) != 0))
#endif
#ifndef SetFlag
#define SetFlag(_F, _SF) ((_F) |= (_SF))
#endif
#ifndef ClearFlag
#define ClearFlag(_F, _SF) ((_F) &= ~(_SF))
#endif
#ifndef ALIGN_DOWN_BY
#define ALIGN_DOWN_BY(length, alignment) ((ULONG_PTR)(length) & ~((ULONG_PTR)(alignment)-1))
#endif
#ifndef ALIGN_UP_BY
#define ALIGN_UP_BY(length, alignment) \
    (ALIGN_DOWN_BY(((ULONG_PTR)(length) + (alignment)-1), alignment))
#endif
#ifndef Int32x32To64
#define Int32x32To64(a, b) (((long long)(int)(a)) * ((long long)(int)(b)))
#endif
#ifndef UInt32x32To64
#define UInt32x32To64(a, b) \
    ((unsigned long long)(unsigned int)(a) * (unsigned long long)(unsigned int)(b))
#endif
#ifndef DEFAULT_UNREACHABLE
#define DEFAULT_UNREACHABLE \
    default:                \
        __builtin_unreachable()
#endif
#ifndef ASSERT
#define ASSERT(exp) ((void)0) /* the free build's, as without DBG */
#endif
#ifndef ASSERTMSG
#define ASSERTMSG(msg, exp) ((void)0)
#endif
#ifndef NT_ASSERT
#define NT_ASSERT(exp) ((void)0)
#endif

#endif /* KMLAB_NT_WDK_MACROS_H */
