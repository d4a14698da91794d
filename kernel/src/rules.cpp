#include <kmlab/kernel/rules.hpp>

namespace kmlab::kernel {

void bug_check_or_raise(const Violation& v) {
    if (!v.is_bug_check()) raise_status(v.status);
    const auto& p = v.parameters;
    kmlab::bug_check(v.code, p[0], p[1], p[2], p[3]);
}

}  // namespace kmlab::kernel
