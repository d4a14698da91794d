#include <kmlab/explore/dispatcher.hpp>

#include <atomic>
#include <stdexcept>

#include <kmlab/explore.hpp>
#include <kmlab/kernel/thread.hpp>
#include "dispatcher_core.hpp"
#include "kernel_seam.hpp"
#include "lock_seam.hpp"

namespace kmlab::explore {

DispatcherUnderModel* DispatcherUnderModel::current_ = nullptr;

namespace {
std::uint32_t* raw(std::atomic<std::uint32_t>& w) {
    static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
    return reinterpret_cast<std::uint32_t*>(&w);
}

// The model lock word holds 1 + the index of the model thread that holds
// it, so that publishing a wake can check it holds none (below).
const platform::DispatcherSeam kSeam{
    // lock: test-and-test-and-set, as the dispatcher's spin lock is
    [](const void* m) {
        AtomicRef<std::uint32_t> word(*DispatcherUnderModel::word_for_seam(m));
        const auto me = static_cast<std::uint32_t>(current_thread() + 1);
        std::uint32_t expected = 0;
        while (!word.compare_exchange_strong(expected, me)) {
            Platform::spin_until([&] { return word.load() == 0; }, Deadline::never());
            expected = 0;
        }
    },
    [](const void* m) {
        AtomicRef<std::uint32_t>(*DispatcherUnderModel::word_for_seam(m)).exchange(0);
    },
    [](std::atomic<std::uint32_t>& w) { return AtomicRef<std::uint32_t>(*raw(w)).load(); },
    // A wake is published only after the dispatcher lock is released: the
    // woken thread returns at once and may free the object it waited on
    // while the waker, still holding the lock, reads it (c5af949's bug, which
    // plain memory under the lock cannot show otherwise).
    [](std::atomic<std::uint32_t>& w, std::uint32_t v) {
        if (DispatcherUnderModel::holds_a_lock(current_thread()))
            fail("a wake published while the dispatcher lock is held");
        AtomicRef<std::uint32_t>(*raw(w)).store(v, std::memory_order_release);
    },
    [](std::atomic<std::uint32_t>& w, std::uint32_t expected, Deadline dl) {
        return detail::futex_wait(raw(w), expected, !dl.is_never());
    },
    [](std::atomic<std::uint32_t>& w) { detail::futex_wake(raw(w), 1); },
};
}  // namespace

DispatcherUnderModel::DispatcherUnderModel() {
    if (current_ != nullptr)
        throw std::logic_error("model: the dispatcher is already under a model");
    // Linked with libkmlab's own dispatcher, the seam would be ignored and
    // the first park would block the only OS thread for good.
    if (!dispatcher::built_with_model_seam())
        throw std::logic_error(
            "model: this program links libkmlab's dispatcher, not kmlab_model's");
    // The explorer's copies of the other kernel sources, pulled into every
    // link that reaches this constructor (kernel_seam.hpp).
    kernel_seam::objects_seam_marker();
    kernel_seam::fast_mutex_seam_marker();
    kernel_seam::system_thread_seam_marker();
    kernel_seam::thread_seam_marker();
    // ... and of the spin-lock family, ERESOURCE, push locks, EX_SPIN_LOCK
    // and the clocks (lock_seam.hpp).
    kernel_seam::spin_lock_seam_marker();
    kernel_seam::resource_seam_marker();
    kernel_seam::push_lock_seam_marker();
    kernel_seam::ex_spin_lock_seam_marker();
    kernel_seam::time_seam_marker();
    kernel_seam::timer_seam_marker();
    // ... and of the platform's futex calls (the idiomatic types park there).
    kernel_seam::futex_seam_marker();
    current_ = this;
    std::atomic_ref(platform::g_dispatcher_seam).store(&kSeam, std::memory_order_relaxed);
}

DispatcherUnderModel::~DispatcherUnderModel() {
    std::atomic_ref(platform::g_dispatcher_seam).store(nullptr, std::memory_order_relaxed);
    current_ = nullptr;
}

std::uint32_t* DispatcherUnderModel::word_for(const void* m) {
    return &current_->lock_words_[m];  // std::map: nodes never move
}

bool DispatcherUnderModel::holds_a_lock(int thread) {
    const auto me = static_cast<std::uint32_t>(thread + 1);
    for (const auto& [m, word] : current_->lock_words_) {
        if (word == me) return true;
    }
    return false;
}

std::vector<std::pair<void*, std::size_t>> DispatcherUnderModel::fiber_locals() {
    return {{&kernel::detail::tls_current_thread, sizeof(kernel::detail::tls_current_thread)},
            dispatcher::pending_wakes_storage()};
}

}  // namespace kmlab::explore
