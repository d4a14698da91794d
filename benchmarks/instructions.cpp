// Instruction counts for S1 (BENCHMARKING.md rule 9): run under callgrind,
// which counts only inside kmlab_measure_pairs (--toggle-collect), so the
// count is exact and repeatable whatever else the machine does.
//
//   valgrind --tool=callgrind --toggle-collect='kmlab_measure_pairs*' instructions LOCK PAIRS
//
// prints the lock names with --list. scripts/lab_instructions.py runs it for
// every lock at two pair counts and reports the per-pair difference, which
// cancels the fixed cost of entering the function.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>

#include "common/context.hpp"
#include "common/locks.hpp"

namespace {
using namespace kmlab::bench;

template <class L>
[[gnu::noinline]] void kmlab_measure_pairs(L& lock, long pairs) {
    for (long i = 0; i < pairs; ++i) {
        LockAdapter<L>::lock_unlock(lock);
        asm volatile("" ::: "memory");
    }
}

[[gnu::noinline]] void kmlab_measure_pairs_floor(std::atomic<long>& word, long pairs) {
    for (long i = 0; i < pairs; ++i) word.fetch_add(1, std::memory_order_acq_rel);
}
}  // namespace

int main(int argc, char** argv) {
    std::map<std::string, std::function<void(long)>> runners;
    auto add = [&]<class L>() {
        runners[LockAdapter<L>::name()] = [](long pairs) {
            static L lock{};
            LockAdapter<L>::lock_unlock(lock);  // warm: the thread's KTHREAD exists before counting
            kmlab_measure_pairs(lock, pairs);
        };
    };
    for_each_lock(add);
    for_each_raw_lock(add);
    runners["fetch_add"] = [](long pairs) {
        static std::atomic<long> word{0};
        kmlab_measure_pairs_floor(word, pairs);
    };
    if (argc == 2 && std::strcmp(argv[1], "--list") == 0) {
        for (const auto& [name, _] : runners) std::printf("%s\n", name.c_str());
        return 0;
    }
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s LOCK PAIRS | --list\n", argv[0]);
        return 2;
    }
    auto it = runners.find(argv[1]);
    if (it == runners.end()) {
        std::fprintf(stderr, "unknown lock '%s' (see --list)\n", argv[1]);
        return 2;
    }
    char* end = nullptr;
    const long pairs = std::strtol(argv[2], &end, 10);
    if (end == argv[2] || *end != '\0' || pairs < 0) {
        std::fprintf(stderr, "PAIRS must be a non-negative integer, got '%s'\n", argv[2]);
        return 2;
    }
    kmlab::bench::keep_second_thread_alive();
    it->second(pairs);
    return 0;
}
