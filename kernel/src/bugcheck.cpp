#include <kmlab/kernel/bugcheck.hpp>

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>

#include <kmlab/kernel/thread.hpp>
#include <kmlab/kernel/verifier.hpp>

namespace kmlab {

namespace bugcheck {
const char* name(nt::ULONG code) noexcept {
    switch (code) {
        case APC_INDEX_MISMATCH:
            return "APC_INDEX_MISMATCH";
        case IRQL_NOT_DISPATCH_LEVEL:
            return "IRQL_NOT_DISPATCH_LEVEL";
        case IRQL_NOT_GREATER_OR_EQUAL:
            return "IRQL_NOT_GREATER_OR_EQUAL";
        case IRQL_NOT_LESS_OR_EQUAL:
            return "IRQL_NOT_LESS_OR_EQUAL";
        case MAXIMUM_WAIT_OBJECTS_EXCEEDED:
            return "MAXIMUM_WAIT_OBJECTS_EXCEEDED";
        case THREAD_NOT_MUTEX_OWNER:
            return "THREAD_NOT_MUTEX_OWNER";
        case KMODE_EXCEPTION_NOT_HANDLED:
            return "KMODE_EXCEPTION_NOT_HANDLED";
        case KERNEL_APC_PENDING_DURING_EXIT:
            return "KERNEL_APC_PENDING_DURING_EXIT";
        case SYSTEM_THREAD_EXCEPTION_NOT_HANDLED:
            return "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED";
        case MUTEX_ALREADY_OWNED:
            return "MUTEX_ALREADY_OWNED";
        case DRIVER_VERIFIER_DETECTED_VIOLATION:
            return "DRIVER_VERIFIER_DETECTED_VIOLATION";
        case THREAD_TERMINATE_HELD_MUTEX:
            return "THREAD_TERMINATE_HELD_MUTEX";
            // KSPIN_LOCK and queued spin locks: add names here.
        case SPIN_LOCK_ALREADY_OWNED:
            return "SPIN_LOCK_ALREADY_OWNED";
        case SPIN_LOCK_NOT_OWNED:
            return "SPIN_LOCK_NOT_OWNED";
            // Resources: add names here.
        case RESOURCE_NOT_OWNED:
            return "RESOURCE_NOT_OWNED";
            // Push locks and EX_SPIN_LOCK: add names here.
            // Timers: add names here.
        default:
            return "UNKNOWN";
    }
}
}  // namespace bugcheck

namespace {
std::string stop_message(nt::ULONG code, const std::array<nt::ULONG_PTR, 4>& p) {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "*** STOP: 0x%08" PRIX32 " (0x%016" PRIXPTR ", 0x%016" PRIXPTR ", 0x%016" PRIXPTR
                  ", 0x%016" PRIXPTR ")\n%s",
                  code, p[0], p[1], p[2], p[3], bugcheck::name(code));
    return buf;
}

void default_handler(const BugCheck& bc) {
    std::fprintf(stderr, "\n%s\n", bc.what());
    // Deadlock Detection's report, as !deadlock would show it (kernel/verifier.hpp).
    if (bc.code() == bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION &&
        ((bc.parameter(1) >= bugcheck::VERIFIER_DEADLOCK_SELF &&
          bc.parameter(1) <= bugcheck::VERIFIER_DEADLOCK_DELETED_WHILE_HELD) ||
         bc.parameter(1) == bugcheck::VERIFIER_FREE_ACTIVE_RESOURCE)) {
        if (auto r = kernel::verifier::last_report())
            std::fprintf(stderr, "\n%s", r->text().c_str());
    }
    std::fprintf(stderr, "\nkmlab: the emulated system has stopped.\n");
    std::fflush(stderr);
    std::abort();
}

std::atomic<BugCheckHandler> g_handler{&default_handler};
}  // namespace

BugCheck::BugCheck(nt::ULONG code, nt::ULONG_PTR p1, nt::ULONG_PTR p2, nt::ULONG_PTR p3,
                   nt::ULONG_PTR p4)
    : code_(code), params_{p1, p2, p3, p4}, message_(stop_message(code, params_)) {}

NtException::NtException(nt::NTSTATUS status) : status_(status) {
    char buf[128];
    const char* n = nt::status_name(status);
    std::snprintf(buf, sizeof buf, "raised status 0x%08" PRIX32 " %s",
                  static_cast<nt::ULONG>(status), n ? n : "");
    message_ = buf;
}

void raise_status(nt::NTSTATUS status) {
    kernel::before_unwind();
    throw NtException(status);
}

void bug_check(nt::ULONG code, nt::ULONG_PTR p1, nt::ULONG_PTR p2, nt::ULONG_PTR p3,
               nt::ULONG_PTR p4) {
    kernel::before_unwind();
    throw BugCheck(code, p1, p2, p3, p4);
}

BugCheckHandler set_bug_check_handler(BugCheckHandler handler) noexcept {
    return g_handler.exchange(handler ? handler : &default_handler);
}

void report_fatal_bug_check(const BugCheck& bc) noexcept {
    g_handler.load()(bc);
}

}  // namespace kmlab

namespace kmlab::nt {
const char* status_name(NTSTATUS s) noexcept {
    switch (s) {
        case STATUS_SUCCESS:
            return "STATUS_SUCCESS";
        case STATUS_ABANDONED:
            return "STATUS_ABANDONED";
        case STATUS_USER_APC:
            return "STATUS_USER_APC";
        case STATUS_KERNEL_APC:
            return "STATUS_KERNEL_APC";
        case STATUS_ALERTED:
            return "STATUS_ALERTED";
        case STATUS_TIMEOUT:
            return "STATUS_TIMEOUT";
        case STATUS_PENDING:
            return "STATUS_PENDING";
        case STATUS_UNSUCCESSFUL:
            return "STATUS_UNSUCCESSFUL";
        case STATUS_NOT_IMPLEMENTED:
            return "STATUS_NOT_IMPLEMENTED";
        case STATUS_INVALID_HANDLE:
            return "STATUS_INVALID_HANDLE";
        case STATUS_INVALID_CID:
            return "STATUS_INVALID_CID";
        case STATUS_INVALID_PARAMETER:
            return "STATUS_INVALID_PARAMETER";
        case STATUS_ACCESS_DENIED:
            return "STATUS_ACCESS_DENIED";
        case STATUS_OBJECT_TYPE_MISMATCH:
            return "STATUS_OBJECT_TYPE_MISMATCH";
        case STATUS_INVALID_PARAMETER_MIX:
            return "STATUS_INVALID_PARAMETER_MIX";
        case STATUS_MUTANT_NOT_OWNED:
            return "STATUS_MUTANT_NOT_OWNED";
        case STATUS_SEMAPHORE_LIMIT_EXCEEDED:
            return "STATUS_SEMAPHORE_LIMIT_EXCEEDED";
        case STATUS_SUSPEND_COUNT_EXCEEDED:
            return "STATUS_SUSPEND_COUNT_EXCEEDED";
        case STATUS_THREAD_IS_TERMINATING:
            return "STATUS_THREAD_IS_TERMINATING";
        case STATUS_DELETE_PENDING:
            return "STATUS_DELETE_PENDING";
        case STATUS_INSUFFICIENT_RESOURCES:
            return "STATUS_INSUFFICIENT_RESOURCES";
        case STATUS_MUTANT_LIMIT_EXCEEDED:
            return "STATUS_MUTANT_LIMIT_EXCEEDED";
        case STATUS_POSSIBLE_DEADLOCK:
            return "STATUS_POSSIBLE_DEADLOCK";
        default:
            return nullptr;
    }
}
}  // namespace kmlab::nt
