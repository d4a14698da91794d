// The soak's harness, shared by its two halves (soak_test.cpp, the idiomatic
// mutexes; soak_nt_test.cpp, the NT face): the budgets read from the
// environment, and Stats, which counts what one configuration did, feeds the
// hang watchdog and prints the configuration's line.
//
// A hang fails instead of stalling CI: a watchdog aborts, naming the
// configuration, its phase and its progress, when no operation completed for
// KMLAB_SOAK_WATCHDOG_S seconds (default 60). Each configuration prints one
// line: `soak: <config> ... acquisitions N  rate R M/s  time T s  violations V`.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace kmlab::soak {

using Clock = std::chrono::steady_clock;

// Contended acquisitions per mutex x backend (all phases together).
std::uint64_t acquisitions();
// Waits per NT test and dispatcher lock mode.
std::uint64_t nt_waits();

// What one configuration did, and what went wrong (the first few messages).
class Stats {
  public:
    explicit Stats(std::string config, std::uint64_t target);
    ~Stats();

    void done(std::uint64_t n) noexcept;
    [[gnu::format(printf, 2, 3)]] void violation(const char* fmt, ...);
    void phase(std::string p);
    std::uint64_t violations() const noexcept { return violations_.load(); }
    std::uint64_t operations() const noexcept { return ops_.load(); }

    // Prints the configuration's line and fails the test on any violation.
    void report(const char* unit, const std::string& detail = {});

  private:
    std::string config_;
    Clock::time_point start_;
    std::atomic<std::uint64_t> ops_{0};
    std::atomic<std::uint64_t> violations_{0};
    std::mutex m_;
    std::vector<std::string> messages_;
};

}  // namespace kmlab::soak
