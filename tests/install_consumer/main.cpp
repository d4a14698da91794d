// A std::thread locks a kmlab::KMutex<int, B> and exits holding it: the
// emulator must report THREAD_TERMINATE_HELD_MUTEX (0x4000008A) through the
// replaceable fatal bug-check handler, whichever backend B is.
#include <kmlab/kmlab.hpp>

#include <atomic>
#include <cstdio>
#include <new>
#include <string_view>
#include <thread>

namespace {
std::atomic<unsigned long> g_code{0};
std::atomic<int> g_calls{0};

void record(const kmlab::BugCheck& bc) {
    g_code.store(bc.code());
    g_calls.fetch_add(1);
}

using Backend = kmlab::backends::KMLAB_CONSUMER_BACKEND;
using Mutex = kmlab::KMutex<int, Backend>;
}  // namespace

int main() {
    kmlab::set_bug_check_handler(&record);
    static Mutex m(0);
    bool locked = false;
    std::thread([&] {
        auto g = m.lock();
        locked = g.has_value();
        if (!locked) return;
        // Keep the guard alive past the thread's end: it exits holding the mutex.
        alignas(Mutex::Guard) static unsigned char storage[sizeof(Mutex::Guard)];
        new (storage) Mutex::Guard(std::move(*g));
    }).join();
    const bool ok = locked && g_calls.load() == 1 &&
                    g_code.load() == kmlab::bugcheck::THREAD_TERMINATE_HELD_MUTEX;
    constexpr std::string_view name = Backend::name();
    std::printf("%s: KMutex<int, %.*s> held at thread exit: %s (handler calls %d, code 0x%lX)\n",
                ok ? "PASS" : "FAIL", static_cast<int>(name.size()), name.data(),
                ok ? "THREAD_TERMINATE_HELD_MUTEX reported" : "not reported as 0x4000008A",
                g_calls.load(), g_code.load());
    return ok ? 0 : 1;
}
