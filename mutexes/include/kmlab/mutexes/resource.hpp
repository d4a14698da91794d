// kmlab::Resource<T>: an ERESOURCE that owns the data it guards, over the
// kernel's own algorithm (kernel/resource_algorithm.hpp) and the emulated
// dispatcher's waits, as the NT routines run it.
//
//   lock()             -> ExclusiveGuard (T&)        ExAcquireResourceExclusiveLite(TRUE)
//   try_lock()         -> ExclusiveGuard             ... (FALSE): Errc::busy
//   lock_shared()      -> SharedGuard (const T&)     ExAcquireResourceSharedLite(TRUE)
//   try_lock_shared()  -> SharedGuard                ... (FALSE): Errc::busy
// each a std::expected<Guard, Error>. A guard releases exactly once (on
// destruction, or unlock(), which reports an illegal release instead of
// making it). The kernel's semantics hold: recursion (the exclusive owner may
// lock() and lock_shared() again; a shared owner may lock_shared() again,
// even past a waiting exclusive locker), and a new shared locker waits
// behind a waiting exclusive one.
//
// Rules, checked before anything happens and returned as the Error the
// kernel's answer names (kernel/rules_resource.hpp):
//   * the caller must have normal kernel APCs disabled (a
//     kmlab::CriticalRegion or GuardedRegion, or APC_LEVEL), to acquire and
//     to release: Errc::resource_apcs_enabled (0xC4/0x37, 0x38);
//   * every acquire (the try_ forms too) at IRQL <= APC_LEVEL, the release
//     at IRQL <= DISPATCH_LEVEL: Errc::irql_too_high (0xA);
//   * lock() by a thread that holds the resource shared would wait for
//     itself: Errc::resource_upgrade (0xC4/0x1001); try_lock() is busy;
//   * a release on a thread other than the guard's (a guard moved to
//     another thread): Errc::not_owner (RESOURCE_NOT_OWNED, 0xE3), nothing
//     released, even when that thread holds the resource itself. A guard
//     records its thread (by ThreadExtra::id, unique for the process's life:
//     a KTHREAD's address is reused once its thread has exited and been
//     freed, and then names another thread) and what its acquisition added to (a shared hold,
//     or the exclusive owner's recursion: a lock_shared() by the exclusive
//     owner), and releases that, whatever else its thread holds.
// Illegal uses not checked: destroying the Resource while a guard lives.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <string_view>
#include <utility>

#include <kmlab/kernel/resource_algorithm.hpp>
#include <kmlab/kernel/rules_resource.hpp>
#include <kmlab/kernel/verifier.hpp>
#include <kmlab/mutexes/error.hpp>

namespace kmlab {

namespace detail {
using ResourceAlgorithm = resource::Algorithm<platform::Native, resource::DispatcherWaits>;

// The guard of a Resource: `Value` is T (exclusive) or const T (shared).
template <class Owner, class Value>
class ResourceGuard {
  public:
    using value_type = Value;
    ResourceGuard(ResourceGuard&& o) noexcept
        : m_(std::exchange(o.m_, nullptr)), thread_(o.thread_), exclusive_(o.exclusive_) {}
    ResourceGuard& operator=(ResourceGuard&& o) noexcept {
        if (this != &o) {
            release_in_destructor();
            m_ = std::exchange(o.m_, nullptr);
            thread_ = o.thread_;
            exclusive_ = o.exclusive_;
        }
        return *this;
    }
    ResourceGuard(const ResourceGuard&) = delete;
    ResourceGuard& operator=(const ResourceGuard&) = delete;
    ~ResourceGuard() { release_in_destructor(); }

    Value& operator*() const noexcept { return m_->value_; }
    Value* operator->() const noexcept { return &m_->value_; }
    bool owns_lock() const noexcept { return m_ != nullptr; }

    // Releases now; on error nothing is released and the guard still holds.
    std::expected<void, Error> unlock() {
        if (m_ == nullptr)
            return std::unexpected(make_error(Errc::already_released, 0, nullptr, 0));
        if (auto e = m_->release_checked(thread_, exclusive_)) return std::unexpected(*e);
        m_ = nullptr;
        return {};
    }

  private:
    friend Owner;
    // `exclusive`: the acquisition counted in the exclusive owner's
    // recursion (every ExclusiveGuard, and a SharedGuard of the exclusive
    // owner), not in the thread's shared hold.
    ResourceGuard(Owner* m, nt::PKTHREAD thread, bool exclusive) noexcept
        : m_(m), thread_(thread->Extra->id), exclusive_(exclusive) {}
    void release_in_destructor() noexcept {
        if (m_ == nullptr) return;
        if (auto e = std::exchange(m_, nullptr)->release_checked(thread_, exclusive_)) [[unlikely]]
            report_from_destructor(*e);
    }
    Owner* m_;
    std::uint64_t thread_;  // the acquiring thread's ThreadExtra::id
    bool exclusive_;
};
}  // namespace detail

template <class T>
class Resource {
  public:
    using value_type = T;
    using ExclusiveGuard = detail::ResourceGuard<Resource, T>;
    using SharedGuard = detail::ResourceGuard<Resource, const T>;
    static constexpr std::string_view kind() { return "Resource"; }
    static constexpr bool recursive = true;

    template <class... Args>
    explicit Resource(Args&&... args) : value_(std::forward<Args>(args)...) {}
    Resource(const Resource&) = delete;
    Resource& operator=(const Resource&) = delete;
    ~Resource() {
        kernel::verifier::forget_if_known(this);  // (kernel/verifier.hpp, "Address reuse")
        resource::DispatcherWaits::free_objects(&r_);
    }

    std::expected<ExclusiveGuard, Error> lock() { return acquire_exclusive(true); }
    std::expected<ExclusiveGuard, Error> try_lock() { return acquire_exclusive(false); }
    std::expected<SharedGuard, Error> lock_shared() { return acquire_shared(true); }
    std::expected<SharedGuard, Error> try_lock_shared() { return acquire_shared(false); }

    // The ERESOURCE underneath, for inspection (ActiveCount, Flag, waiters).
    const nt::ERESOURCE& native() const noexcept { return r_; }
    nt::ULONG shared_waiters() const noexcept {
        return std::atomic_ref<nt::ULONG>(r_.NumberOfSharedWaiters).load(std::memory_order_relaxed);
    }
    nt::ULONG exclusive_waiters() const noexcept {
        return std::atomic_ref<nt::ULONG>(r_.NumberOfExclusiveWaiters)
            .load(std::memory_order_relaxed);
    }
    bool is_initial_state() const noexcept { return detail::ResourceAlgorithm::is_free(&r_); }

  private:
    friend ExclusiveGuard;
    friend SharedGuard;

    // Normal kernel APCs disabled, below APC_LEVEL: the only state in which
    // no acquire or release rule can fail, tested with two loads.
    // The IRQL is read through the gate word (kernel/verifier.hpp): with the
    // verifier on, every call takes the slow paths, where its hooks are.
    static bool common_case(nt::PKTHREAD t) noexcept {
        return t->IrqlGate == nt::PASSIVE_LEVEL && t->CombinedApcDisable != 0;
    }
    static constexpr auto kVerifierType = kernel::verifier::LockType::idiomatic_resource;

    [[gnu::noinline]] std::optional<Error> acquire_error(nt::PKTHREAD t, bool wait) const {
        if (auto v = kernel::check_resource_acquire_irql(t, &r_, wait))
            return detail::from_violation(Errc::irql_too_high, *v, t->Irql);
        if (auto v = kernel::check_resource_acquire_region(t, &r_))
            return detail::from_violation(Errc::resource_apcs_enabled, *v, t->Irql);
        return std::nullopt;
    }

    std::expected<ExclusiveGuard, Error> acquire_exclusive(bool wait) {
        nt::PKTHREAD t = kernel::detail::tls_current_thread;
        if (t != nullptr && common_case(t) && detail::ResourceAlgorithm::try_exclusive_fast(&r_))
            [[likely]] {
            resource::store_count(&r_, 1);
            resource::store_owner(&r_, resource::thread_id(t));
            t->Extra->resource_holds.mark_named();
            return ExclusiveGuard(this, t, true);
        }
        return acquire_exclusive_slow(wait);
    }

    [[gnu::noinline]] std::expected<ExclusiveGuard, Error> acquire_exclusive_slow(bool wait) {
        nt::PKTHREAD t = kernel::current_thread();
        if (auto e = acquire_error(t, wait)) return std::unexpected(*e);
        if (!detail::ResourceAlgorithm::owns_exclusive(t, &r_) &&
            resource::shared_count(t, &r_) != 0) [[unlikely]] {
            if (auto v = kernel::check_resource_upgrade(true, wait, t, &r_))
                return std::unexpected(detail::from_violation(Errc::resource_upgrade, *v, t->Irql));
            return std::unexpected(
                detail::make_error(Errc::busy, t->Irql, this, nt::STATUS_TIMEOUT));
        }
        namespace verifier = kernel::verifier;
        if (wait && verifier::on(t)) {
            if (auto v = verifier::check_acquire(t, this, kVerifierType))
                return std::unexpected(detail::from_violation(Errc::deadlock, *v, t->Irql));
        }
        if (!detail::ResourceAlgorithm::acquire_exclusive(t, &r_, wait))
            return std::unexpected(
                detail::make_error(Errc::busy, t->Irql, this, nt::STATUS_TIMEOUT));
        verifier::on_acquired(t, this, kVerifierType, false, !wait);
        return ExclusiveGuard(this, t, true);
    }

    // The uncontended shared pair is one compare-exchange each way, inline;
    // everything else (rules broken, recursion, waiters, the first call of a
    // thread) goes out of line.
    std::expected<SharedGuard, Error> acquire_shared(bool wait) {
        nt::PKTHREAD t = kernel::detail::tls_current_thread;
        if (t != nullptr && common_case(t) &&
            detail::ResourceAlgorithm::acquire_shared_fast(t, &r_, resource::SharedKind::shared))
            [[likely]]
            return SharedGuard(this, t, false);
        return acquire_shared_slow(wait);
    }

    [[gnu::noinline]] std::expected<SharedGuard, Error> acquire_shared_slow(bool wait) {
        nt::PKTHREAD t = kernel::current_thread();
        if (auto e = acquire_error(t, wait)) return std::unexpected(*e);
        const bool exclusive = detail::ResourceAlgorithm::owns_exclusive(t, &r_);
        namespace verifier = kernel::verifier;
        if (wait && verifier::on(t)) {
            if (auto v = verifier::check_acquire(t, this, kVerifierType))
                return std::unexpected(detail::from_violation(Errc::deadlock, *v, t->Irql));
        }
        if (!detail::ResourceAlgorithm::acquire_shared(t, &r_, resource::SharedKind::shared, wait))
            return std::unexpected(
                detail::make_error(Errc::busy, t->Irql, this, nt::STATUS_TIMEOUT));
        verifier::on_acquired(t, this, kVerifierType, true, !wait);
        return SharedGuard(this, t, exclusive);
    }

    // A guard's release, on its own thread only, of what its acquisition
    // added to: the exclusive owner's recursion, or the thread's shared
    // hold. Checks first; on error releases nothing.
    // Inline (a guard's destructor is the shared pair's second half: out of
    // line it cost ~40 instructions more per pair).
    [[gnu::always_inline]] std::optional<Error> release_checked(std::uint64_t owner,
                                                                bool exclusive) {
        nt::PKTHREAD t = kernel::detail::tls_current_thread;
        if (t != nullptr && t->Extra->id == owner && common_case(t) &&
            (exclusive ? detail::ResourceAlgorithm::release_exclusive_fast(t, &r_)
                       : detail::ResourceAlgorithm::release_shared_fast(t, &r_))) [[likely]]
            return std::nullopt;
        return release_slow(owner, exclusive);
    }

    [[gnu::noinline]] std::optional<Error> release_slow(std::uint64_t owner, bool exclusive) {
        nt::PKTHREAD t = kernel::detail::tls_current_thread;
        if (t == nullptr || t->Extra->id != owner) return not_owner_error(kernel::current_thread());
        if (auto e = release_error(t)) return e;
        if (exclusive) {
            if (!detail::ResourceAlgorithm::owns_exclusive(t, &r_)) [[unlikely]]
                return not_owner_error(t);
            detail::ResourceAlgorithm::release_exclusive_hold(&r_);
        } else if (!detail::ResourceAlgorithm::release_shared_hold(t, &r_)) [[unlikely]] {
            return not_owner_error(t);
        }
        if (kernel::verifier::on(t)) kernel::verifier::note_release(t, this);
        return std::nullopt;
    }

    [[gnu::noinline]] std::optional<Error> release_error(nt::PKTHREAD t) {
        if (t == nullptr) return not_owner_error(kernel::current_thread());
        if (auto v = kernel::check_resource_release_irql(t, &r_))
            return detail::from_violation(Errc::irql_too_high, *v, t->Irql);
        if (auto v = kernel::check_resource_release_region(t, &r_))
            return detail::from_violation(Errc::resource_apcs_enabled, *v, t->Irql);
        return std::nullopt;
    }

    [[gnu::noinline]] Error not_owner_error(nt::PKTHREAD t) const {
        return detail::from_violation(
            Errc::not_owner, *kernel::check_resource_owner(false, &r_, resource::thread_id(t)),
            t->Irql);
    }

    mutable nt::ERESOURCE r_{};
    T value_;
};

}  // namespace kmlab
