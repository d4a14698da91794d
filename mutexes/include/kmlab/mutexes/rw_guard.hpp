// The guards of the reader/writer locks (PushLock, RwSpinLock): one type
// per mode, so that holding the lock shared gives only const access.
//
// A Lock provides, for its guards:
//   using value_type = ...; using guard_token = ...;
//   value_type& value_ref() noexcept
//   template <bool Exclusive> std::optional<Error> release_checked(guard_token)
//       checks that the release is legal (on the acquiring thread, among
//       the lock's own rules) and then releases, or returns the Error and
//       releases nothing.
// A guard releases once: by unlock() or by its destructor, never both; a
// moved-from guard releases nothing.
#pragma once

#include <expected>
#include <iosfwd>
#include <type_traits>
#include <utility>

#include <kmlab/mutexes/error.hpp>
#include <kmlab/mutexes/guard.hpp>

namespace kmlab::detail {

template <class Lock, bool Exclusive>
class RwGuard {
  public:
    using value_type = typename Lock::value_type;
    using token_type = typename Lock::guard_token;
    // Exclusive: mutable access; shared: const access.
    using reference = std::conditional_t<Exclusive, value_type&, const value_type&>;
    using pointer = std::conditional_t<Exclusive, value_type*, const value_type*>;
    static constexpr bool exclusive = Exclusive;

    RwGuard(RwGuard&& o) noexcept : m_(std::exchange(o.m_, nullptr)), token_(o.token_) {}
    RwGuard& operator=(RwGuard&& o) noexcept {
        if (this != &o) {
            release_in_destructor();
            m_ = std::exchange(o.m_, nullptr);
            token_ = o.token_;
        }
        return *this;
    }
    RwGuard(const RwGuard&) = delete;
    RwGuard& operator=(const RwGuard&) = delete;
    ~RwGuard() { release_in_destructor(); }

    reference operator*() const noexcept { return m_->value_ref(); }
    pointer operator->() const noexcept { return &m_->value_ref(); }
    bool owns_lock() const noexcept { return m_ != nullptr; }

    template <class CharT, class Traits>
    requires requires(std::basic_ostream<CharT, Traits>& os, const value_type& v) { os << v; }
    friend std::basic_ostream<CharT, Traits>& operator<<(std::basic_ostream<CharT, Traits>& os,
                                                         const RwGuard& g) {
        if (!g.owns_lock()) return os << kReleased.data();
        return os << *g;
    }

    // Releases now, after checking that the release is legal; on error
    // nothing is released and the guard still holds the lock.
    std::expected<void, Error> unlock() {
        if (m_ == nullptr)
            return std::unexpected(make_error(Errc::already_released, 0, nullptr, 0));
        if (auto e = m_->template release_checked<Exclusive>(token_)) return std::unexpected(*e);
        m_ = nullptr;
        return {};
    }

  private:
    friend Lock;
    RwGuard(Lock* m, token_type token) noexcept : m_(m), token_(token) {}

    void release_in_destructor() noexcept {
        if (m_ == nullptr) return;
        if (auto e = std::exchange(m_, nullptr)->template release_checked<Exclusive>(token_))
            [[unlikely]]
            report_from_destructor(*e);
    }

    Lock* m_;
    token_type token_;
};

}  // namespace kmlab::detail
