// Shared test support: a recording bug-check handler, a fixture that checks
// each test leaves the calling thread's kernel state as it found it, and
// helpers to wait until another thread has really blocked.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <new>
#include <thread>
#include <type_traits>
#include <vector>

#include <kmlab/kernel/dispatcher.hpp>
#include <kmlab/kmlab_nt.hpp>

namespace kmlab::test {

// Bug checks that reached the fatal handler (thread exit paths).
std::vector<BugCheck> take_fatal_bug_checks();
void install_recording_handler();

// Polls `pred` every millisecond for up to 10 s; false if it never held.
bool eventually(const std::function<bool()>& pred,
                std::chrono::milliseconds limit = std::chrono::seconds(10));

// True once `n` wait blocks are queued on `object`.
inline bool waiters_reach(void* object, unsigned n) {
    return eventually([&] { return kmlab::dispatcher::waiter_count(object) >= n; });
}

// Runs `fn` on a new OS thread (an adopted emulated thread) and joins it.
inline void on_new_thread(const std::function<void()>& fn) {
    std::thread(fn).join();
}

// Fixture: the thread starts and must end at PASSIVE_LEVEL with APCs enabled,
// and no fatal bug check may be left unexamined.
class Nt : public ::testing::Test {
  protected:
    void TearDown() override;
};

// Nt for tests that change the flavour (kmlab::set_flavor): each test runs
// in the flavour it sets, and the process's flavour is restored after it.
class FlavorRestoringNt : public Nt {
  protected:
    void SetUp() override { saved_ = kmlab::flavor(); }
    void TearDown() override {
        kmlab::set_flavor(saved_);
        Nt::TearDown();
    }

  private:
    Flavor saved_ = Flavor::checked;
};

// Expects `stmt` to bug check with `code`; evaluates to the BugCheck.
#define EXPECT_BUG_CHECK(stmt, code_)                                                    \
    [&]() -> ::kmlab::BugCheck {                                                         \
        try {                                                                            \
            stmt;                                                                        \
        } catch (const ::kmlab::BugCheck& bc_) {                                         \
            EXPECT_EQ(bc_.code(), static_cast<::kmlab::nt::ULONG>(code_)) << bc_.what(); \
            return bc_;                                                                  \
        }                                                                                \
        ADD_FAILURE() << "expected bug check 0x" << std::hex << (code_);                 \
        return ::kmlab::BugCheck(0);                                                     \
    }()

#define EXPECT_RAISES(stmt, status_)                                               \
    do {                                                                           \
        try {                                                                      \
            stmt;                                                                  \
            ADD_FAILURE() << "expected raised status 0x" << std::hex << (status_); \
        } catch (const ::kmlab::NtException& e_) {                                 \
            EXPECT_EQ(e_.status(), (status_)) << e_.what();                        \
        }                                                                          \
    } while (0)

// Moves `value` into storage that is never destroyed or freed, as a driver
// thread that forgot to release a mutex leaves its guard: static storage,
// so LeakSanitizer does not report it as a leak.
template <class T>
void keep_forever(T&& value) {
    alignas(std::max_align_t) static unsigned char arena[16 * 1024];
    static std::atomic<std::size_t> used{0};
    constexpr std::size_t size =
        (sizeof(T) + alignof(std::max_align_t) - 1) & ~(alignof(std::max_align_t) - 1);
    const std::size_t at = used.fetch_add(size);
    if (at + size > sizeof arena) std::abort();  // a test keeps too many
    new (arena + at) std::decay_t<T>(std::forward<T>(value));
}

}  // namespace kmlab::test
