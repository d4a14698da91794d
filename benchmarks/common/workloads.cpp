#include "common/workloads.hpp"

#include <unistd.h>

#include <algorithm>

namespace kmlab::bench {

int online_cores() {
    return static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
}

std::vector<int> sweep_thread_counts() {
    const int c = online_cores();
    std::vector<int> v{1, 2, 3, 4, 2 * c, 4 * c, 8 * c, 16 * c};
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    return v;
}

}  // namespace kmlab::bench
