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
#include "common/rw_locks.hpp"

namespace {
using namespace kmlab::bench;

template <class L>
[[gnu::noinline]] void kmlab_measure_pairs(L& lock, long pairs) {
    for (long i = 0; i < pairs; ++i) {
        LockAdapter<L>::lock_unlock(lock);
        asm volatile("" ::: "memory");
    }
}

template <class L>
[[gnu::noinline]] void kmlab_measure_pairs_shared(L& lock, long pairs) {
    for (long i = 0; i < pairs; ++i) {
        RwAdapter<L>::lock_shared_unlock(lock);
        asm volatile("" ::: "memory");
    }
}

template <class L>
[[gnu::noinline]] void kmlab_measure_pairs_shared_in_region(L& lock, long pairs) {
    for (long i = 0; i < pairs; ++i) {
        RwAdapter<L>::lock_shared_unlock_in_region(lock);
        asm volatile("" ::: "memory");
    }
}

template <class L>
[[gnu::noinline]] void kmlab_measure_pairs_exclusive(L& lock, long pairs) {
    for (long i = 0; i < pairs; ++i) {
        RwAdapter<L>::lock_unlock(lock);
        asm volatile("" ::: "memory");
    }
}

// KeEnterCriticalRegion + KeLeaveCriticalRegion, what the ERESOURCE and push
// lock pairs include besides the lock.
[[gnu::noinline]] void kmlab_measure_pairs_region(long pairs) {
    for (long i = 0; i < pairs; ++i) {
        auto r = kmlab::CriticalRegion::enter();
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
    for_each_exclusive_lock(add);
    for_each_raw_lock(add);
    // Reader/writer locks: "Resource (shared)", "Resource (exclusive)", and for
    // those that need a critical region "Resource (shared, in a region)": the
    // pair by a thread already in one.
    for_each_rw_lock([&]<class L>() {
        runners[RwAdapter<L>::name() + " (shared)"] = [](long pairs) {
            static L lock{};
            RwAdapter<L>::lock_shared_unlock(lock);
            kmlab_measure_pairs_shared(lock, pairs);
        };
        runners[RwAdapter<L>::name() + " (exclusive)"] = [](long pairs) {
            static L lock{};
            RwAdapter<L>::lock_unlock(lock);
            kmlab_measure_pairs_exclusive(lock, pairs);
        };
        if constexpr (needs_region<L>()) {
            runners[RwAdapter<L>::name() + " (shared, in a region)"] = [](long pairs) {
                static L lock{};
                auto region = kmlab::CriticalRegion::enter();
                RwAdapter<L>::lock_shared_unlock_in_region(lock);
                kmlab_measure_pairs_shared_in_region(lock, pairs);
            };
        }
    });
    runners["critical_region"] = [](long pairs) {
        { auto warm = kmlab::CriticalRegion::enter(); }
        kmlab_measure_pairs_region(pairs);
    };
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
