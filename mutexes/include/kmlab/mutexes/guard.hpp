// The guard of every kmlab mutex: holds the mutex and a token the mutex gave
// it on acquisition (the IRQL to restore for FastMutex/GuardedMutex, the
// nesting depth for KMutex), gives access to the value, and releases once.
//
// A Mutex provides, for its Guard:
//   using guard_token = ...;
//   value_type& value_for(guard_token)        access (KMutex checks nesting here)
//   std::optional<Error> release_checked(guard_token, bool strict)
//       checks that the release is legal and then releases, or returns the
//       Error and releases nothing; `strict` is true for unlock() and false
//       for the destructor (KMutex refuses an out-of-order unlock() only).
//
// A guard prints its value, as wdk-mutex's guards Display theirs:
// `std::cout << guard` where `os << value` compiles, and std::format("{}",
// guard) with the value's format spec where the standard library has
// <format> (__cpp_lib_format). Printing reads the value as `*guard` does (an
// outer KMutex guard throws while a nested one lives); a released guard
// prints "(released)" instead.
#pragma once

#include <expected>
#include <iosfwd>
#include <string_view>
#include <utility>
#include <version>

#include <kmlab/mutexes/error.hpp>

#if defined(__cpp_lib_format)
#include <algorithm>
#include <format>
#endif

namespace kmlab::detail {

// What printing a guard that no longer holds its mutex shows.
inline constexpr std::string_view kReleased = "(released)";

template <class Mutex>
class Guard {
  public:
    using value_type = typename Mutex::value_type;
    using token_type = typename Mutex::guard_token;

    Guard(Guard&& o) noexcept : m_(std::exchange(o.m_, nullptr)), token_(o.token_) {}
    Guard& operator=(Guard&& o) noexcept {
        if (this != &o) {
            release_in_destructor();
            m_ = std::exchange(o.m_, nullptr);
            token_ = o.token_;
        }
        return *this;
    }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    ~Guard() { release_in_destructor(); }

    value_type& operator*() const { return m_->value_for(token_); }
    value_type* operator->() const { return &m_->value_for(token_); }
    bool owns_lock() const noexcept { return m_ != nullptr; }
    // KMutex: the acquisition that made this guard found the mutex abandoned
    // (its owner exited holding it), where KeWaitForSingleObject returns
    // STATUS_ABANDONED (kmutex.hpp).
    bool abandoned() const noexcept requires requires(const token_type& k) { k.abandoned; }
    { return token_.abandoned; }

    template <class CharT, class Traits>
    requires requires(std::basic_ostream<CharT, Traits>& os, const value_type& v) { os << v; }
    friend std::basic_ostream<CharT, Traits>& operator<<(std::basic_ostream<CharT, Traits>& os,
                                                         const Guard& g) {
        if (!g.owns_lock()) return os << kReleased.data();
        return os << *g;
    }

    // Releases now, after checking that the release is legal; on error nothing
    // is released and the guard still holds the mutex.
    std::expected<void, Error> unlock() {
        if (m_ == nullptr)
            return std::unexpected(make_error(Errc::already_released, 0, nullptr, 0));
        if (auto e = m_->release_checked(token_, true)) return std::unexpected(*e);
        m_ = nullptr;
        return {};
    }

  private:
    friend Mutex;
    Guard(Mutex* m, token_type token) noexcept : m_(m), token_(token) {}

    // A destructor cannot return the error: it reports what the kernel would
    // have done and keeps the lock.
    void release_in_destructor() noexcept {
        if (m_ == nullptr) return;
        if (auto e = std::exchange(m_, nullptr)->release_checked(token_, false)) [[unlikely]]
            report_from_destructor(*e);
    }

    Mutex* m_;
    token_type token_;
};

}  // namespace kmlab::detail

#if defined(__cpp_lib_format)
// Formats the guarded value with the value's own formatter (and format spec).
template <class Mutex, class CharT>
struct std::formatter<kmlab::detail::Guard<Mutex>, CharT>
    : std::formatter<typename Mutex::value_type, CharT> {
    template <class FormatContext>
    typename FormatContext::iterator format(const kmlab::detail::Guard<Mutex>& g,
                                            FormatContext& ctx) const {
        if (!g.owns_lock()) return std::ranges::copy(kmlab::detail::kReleased, ctx.out()).out;
        return std::formatter<typename Mutex::value_type, CharT>::format(*g, ctx);
    }
};
#endif
