// The soak's harness (soak_harness.hpp): the budgets from the environment,
// the watchdog thread, Stats, and the summary line printed when the binary's
// tests are done.
#include "soak_harness.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <utility>

using namespace std::chrono_literals;

namespace kmlab::soak {

namespace {

// ---- configuration from the environment ----

std::uint64_t env_count(const char* name, std::uint64_t fallback) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') return fallback;
    char* end = nullptr;
    const double d = std::strtod(v, &end);  // accepts 1e8 as well as 100000000
    if (end == v || *end != '\0' || !(d >= 1) || d > 1e15) {
        std::fprintf(stderr, "soak: %s='%s' is not a positive count\n", name, v);
        std::exit(2);
    }
    return static_cast<std::uint64_t>(d);
}

}  // namespace

std::uint64_t acquisitions() {
    static const std::uint64_t n = env_count("KMLAB_SOAK_ACQUISITIONS", 100'000'000);
    return n;
}

std::uint64_t nt_waits() {
    return std::max<std::uint64_t>(acquisitions() / 100, 1000);
}

namespace {

// ---- watchdog ----

// Aborts the process with a message when the current configuration made no
// progress for the limit: a lost wake-up or a deadlock fails, it does not
// stall the run until CTest's timeout.
class Watchdog {
  public:
    static Watchdog& instance() {
        static Watchdog w;
        return w;
    }
    void begin(std::string config, std::uint64_t target) {
        std::lock_guard g(m_);
        config_ = std::move(config);
        phase_ = "start";
        target_ = target;
        progress_.store(0, std::memory_order_relaxed);
        active_ = true;
        changed_ = Clock::now();
    }
    void phase(std::string p) {
        std::lock_guard g(m_);
        phase_ = std::move(p);
        changed_ = Clock::now();
    }
    void end() {
        std::lock_guard g(m_);
        active_ = false;
    }
    void advance(std::uint64_t n) noexcept { progress_.fetch_add(n, std::memory_order_relaxed); }
    std::uint64_t progress() const noexcept { return progress_.load(std::memory_order_relaxed); }

    ~Watchdog() {
        {
            std::lock_guard g(m_);
            stop_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }

  private:
    Watchdog()
        : limit_(std::chrono::seconds(env_count("KMLAB_SOAK_WATCHDOG_S", 60))),
          thread_([this] { run(); }) {}

    void run() {
        std::unique_lock g(m_);
        std::uint64_t last = 0;
        while (!stop_) {
            cv_.wait_for(g, 250ms);
            const auto now = Clock::now();
            const std::uint64_t p = progress();
            if (!active_ || p != last) {
                last = p;
                changed_ = now;
                continue;
            }
            if (now - changed_ > limit_) {
                std::fprintf(stderr,
                             "\nsoak: WATCHDOG: %s made no progress for %lld s in phase '%s' "
                             "(%llu of %llu operations done): a lost wake-up or a deadlock. "
                             "Aborting.\n",
                             config_.c_str(),
                             static_cast<long long>(
                                 std::chrono::duration_cast<std::chrono::seconds>(limit_).count()),
                             phase_.c_str(), static_cast<unsigned long long>(p),
                             static_cast<unsigned long long>(target_));
                std::fflush(stderr);
                std::fflush(stdout);
                std::abort();
            }
        }
    }

    std::mutex m_;
    std::condition_variable cv_;
    std::string config_, phase_;
    std::uint64_t target_ = 0;
    std::atomic<std::uint64_t> progress_{0};
    bool active_ = false;
    bool stop_ = false;
    Clock::time_point changed_ = Clock::now();
    Clock::duration limit_;
    std::thread thread_;  // last: starts after every other member is ready
};

// ---- per-configuration results ----

struct Totals {
    int configurations = 0;
    std::uint64_t operations = 0;
    std::uint64_t violations = 0;
    double seconds = 0;
};
Totals g_totals;

}  // namespace

Stats::Stats(std::string config, std::uint64_t target)
    : config_(std::move(config)), start_(Clock::now()) {
    Watchdog::instance().begin(config_, target);
}
Stats::~Stats() {
    Watchdog::instance().end();
}

void Stats::done(std::uint64_t n) noexcept {
    ops_.fetch_add(n, std::memory_order_relaxed);
    Watchdog::instance().advance(n);
}

void Stats::violation(const char* fmt, ...) {
    violations_.fetch_add(1);
    std::lock_guard g(m_);
    if (messages_.size() >= 8) return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    messages_.emplace_back(buf);
}

void Stats::phase(std::string p) {
    Watchdog::instance().phase(std::move(p));
}

void Stats::report(const char* unit, const std::string& detail) {
    const double s = std::chrono::duration<double>(Clock::now() - start_).count();
    const std::uint64_t n = operations();
    std::printf("soak: %-34s %s %11llu  rate %7.3f M/s  time %7.1f s  violations %llu%s%s\n",
                config_.c_str(), unit, static_cast<unsigned long long>(n),
                static_cast<double>(n) / s / 1e6, s, static_cast<unsigned long long>(violations()),
                detail.empty() ? "" : "  ", detail.c_str());
    std::fflush(stdout);
    ++g_totals.configurations;
    g_totals.operations += n;
    g_totals.violations += violations();
    g_totals.seconds += s;
    std::lock_guard g(m_);
    for (const auto& msg : messages_) ADD_FAILURE() << config_ << ": " << msg;
    EXPECT_EQ(violations(), 0u) << config_;
}

namespace {

// Prints the summary line when the binary's tests are done.
class SummaryEnvironment : public ::testing::Environment {
  public:
    void TearDown() override {
        std::printf(
            "soak: summary: %d configurations, %llu operations in %.1f s, %llu violations "
            "(KMLAB_SOAK_ACQUISITIONS=%llu)\n",
            g_totals.configurations, static_cast<unsigned long long>(g_totals.operations),
            g_totals.seconds, static_cast<unsigned long long>(g_totals.violations),
            static_cast<unsigned long long>(acquisitions()));
        std::fflush(stdout);
    }
};
[[maybe_unused]] const auto* const g_summary =
    ::testing::AddGlobalTestEnvironment(new SummaryEnvironment);

}  // namespace

}  // namespace kmlab::soak
