#include <kmlab/kernel/rules.hpp>
#include <kmlab/kernel/verifier.hpp>

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace kmlab {

namespace {
// -1 until first read: then KMLAB_FLAVOR decides, unless set_flavor came
// first. Constant-initialized, so a static initializer elsewhere may read it.
std::atomic<int> g_flavor{-1};

Flavor from_environment() noexcept {
    const char* v = std::getenv("KMLAB_FLAVOR");
    if (v != nullptr && std::strcmp(v, "free") == 0) return Flavor::free;
    if (v != nullptr && std::strcmp(v, "verifier") == 0) return Flavor::verifier;
    return Flavor::checked;
}
}  // namespace

Flavor flavor() noexcept {
    int f = g_flavor.load(std::memory_order_relaxed);
    if (f < 0) {
        int expected = -1;
        g_flavor.compare_exchange_strong(expected, static_cast<int>(from_environment()),
                                         std::memory_order_relaxed);
        f = g_flavor.load(std::memory_order_relaxed);
    }
    return static_cast<Flavor>(f);
}

void set_flavor(Flavor f) noexcept {
    const Flavor before = flavor();
    g_flavor.store(static_cast<int>(f), std::memory_order_relaxed);
    // Entering or leaving verifier: the holds it recorded go stale, as a
    // release made while it is off is unseen (kernel/verifier.hpp).
    if ((before == Flavor::verifier) != (f == Flavor::verifier)) kernel::verifier::clear_holds();
    // Every live thread's gate follows (kernel/verifier.hpp); a thread
    // created later reads flavor() as it starts.
    kernel::detail::set_verifier_gates(f == Flavor::verifier);
}

}  // namespace kmlab

namespace kmlab::kernel {

void bug_check_or_raise_in_flavor(const Violation& v) {
    const Flavor f = flavor();
    if (v.checked_only && f == Flavor::free) return;
    if (v.verifier_flavor_only && f != Flavor::verifier) return;
    bug_check_or_raise(v);
}

void bug_check_or_raise(const Violation& v) {
    if (!v.is_bug_check()) raise_status(v.status);
    const auto& p = v.parameters;
    kmlab::bug_check(v.code, p[0], p[1], p[2], p[3]);
}

}  // namespace kmlab::kernel
