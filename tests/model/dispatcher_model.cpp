#include "dispatcher_model.hpp"

#include <stdexcept>

#include "backends/dispatcher/core.hpp"
#include "explorer.hpp"
#include "kernel/thread.hpp"

namespace kmlab::model {

DispatcherUnderModel* DispatcherUnderModel::current_ = nullptr;

namespace {
std::uint32_t* raw(std::atomic<std::uint32_t>& w) {
    static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
    return reinterpret_cast<std::uint32_t*>(&w);
}

const platform::DispatcherSeam kSeam{
    // lock: test-and-test-and-set, as the dispatcher's spin lock is
    [](std::mutex& m) {
        AtomicRef<std::uint32_t> word(*DispatcherUnderModel::word_for_seam(m));
        while (word.exchange(1) != 0)
            Platform::spin_until([&] { return word.load() == 0; }, nullptr);
    },
    [](std::mutex& m) {
        AtomicRef<std::uint32_t>(*DispatcherUnderModel::word_for_seam(m)).exchange(0);
    },
    [](std::atomic<std::uint32_t>& w) { return AtomicRef<std::uint32_t>(*raw(w)).load(); },
    [](std::atomic<std::uint32_t>& w, std::uint32_t v) {
        AtomicRef<std::uint32_t>(*raw(w)).store(v, std::memory_order_release);
    },
    [](std::atomic<std::uint32_t>& w, std::uint32_t expected, const platform::deadline_t* dl) {
        return detail::futex_wait(raw(w), expected, dl != nullptr);
    },
    [](std::atomic<std::uint32_t>& w) { detail::futex_wake(raw(w), 1); },
};
}  // namespace

DispatcherUnderModel::DispatcherUnderModel() {
    if (current_ != nullptr)
        throw std::logic_error("model: the dispatcher is already under a model");
    current_ = this;
    platform::g_dispatcher_seam = &kSeam;
}

DispatcherUnderModel::~DispatcherUnderModel() {
    platform::g_dispatcher_seam = nullptr;
    current_ = nullptr;
}

std::uint32_t* DispatcherUnderModel::word_for(std::mutex& m) {
    return &current_->lock_words_[&m];  // std::map: nodes never move
}

std::vector<std::pair<void*, std::size_t>> DispatcherUnderModel::fiber_locals() {
    return {{&kernel::detail::tls_current_thread, sizeof(kernel::detail::tls_current_thread)},
            dispatcher::pending_wakes_storage()};
}

}  // namespace kmlab::model
