// The guard of the non-recursive mutexes (FastMutex, GuardedMutex): holds the
// mutex and the IRQL to restore, gives access to the value, releases once.
// Mutex::release_checked(saved_irql) checks that the release is legal and
// then releases, or returns the Error and releases nothing.
#pragma once

#include <expected>
#include <utility>

#include "mutexes/error.hpp"

namespace kmlab::detail {

template <class Mutex>
class ExclusiveGuard {
  public:
    using value_type = typename Mutex::value_type;

    ExclusiveGuard(ExclusiveGuard&& o) noexcept
        : m_(std::exchange(o.m_, nullptr)), saved_irql_(o.saved_irql_) {}
    ExclusiveGuard& operator=(ExclusiveGuard&& o) noexcept {
        if (this != &o) {
            release_in_destructor();
            m_ = std::exchange(o.m_, nullptr);
            saved_irql_ = o.saved_irql_;
        }
        return *this;
    }
    ExclusiveGuard(const ExclusiveGuard&) = delete;
    ExclusiveGuard& operator=(const ExclusiveGuard&) = delete;
    ~ExclusiveGuard() { release_in_destructor(); }

    value_type& operator*() const noexcept { return m_->value_; }
    value_type* operator->() const noexcept { return &m_->value_; }
    bool owns_lock() const noexcept { return m_ != nullptr; }

    // Releases now, after checking that the release is legal; on error nothing
    // is released and the guard still holds the mutex.
    std::expected<void, Error> unlock() {
        if (m_ == nullptr)
            return std::unexpected(make_error(Errc::already_released, 0, nullptr, 0));
        if (auto e = m_->release_checked(saved_irql_)) return std::unexpected(*e);
        m_ = nullptr;
        return {};
    }

  private:
    friend Mutex;
    ExclusiveGuard(Mutex* m, nt::KIRQL saved_irql) noexcept : m_(m), saved_irql_(saved_irql) {}

    void release_in_destructor() noexcept {
        if (m_ == nullptr) return;
        if (auto e = std::exchange(m_, nullptr)->release_checked(saved_irql_)) [[unlikely]]
            report_from_destructor(*e);
    }

    Mutex* m_;
    nt::KIRQL saved_irql_;
};

}  // namespace kmlab::detail
