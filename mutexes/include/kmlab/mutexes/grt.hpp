// Grt: the global reference tracker of the wdk-mutex seeds, a process-wide
// registry of named mutexes.
//
// Differences from the seed crate, on purpose:
//  * Safe to use from many threads at once (a reader-writer lock guards the map).
//  * Shared ownership: a lookup returns a GrtRef, a std::shared_ptr, so a
//    mutex obtained before destroy(), or before its key is unregistered and
//    registered again, stays alive and valid for as long as the caller holds
//    it. A guard taken through the handle (ref->lock(), even on a temporary
//    handle) holds a share of that ownership too. Nothing can dangle.
//  * Every failure is an std::expected error naming the key.
//  * register_kmutex, register_fast_mutex, ... refuse a key already in use
//    (wdk-mutex's register_*_checked); wdk-mutex's register_* overwrite it,
//    which here is register_or_replace_kmutex, ..., named so that nobody
//    replaces a mutex by accident. Handles to the replaced mutex stay valid.
//  * Besides the named calls of the seeds (register_kmutex, get_fast_mutex,
//    ...), register_mutex<M>, register_or_replace_mutex<M> and get<M> take
//    any kmlab mutex type.
#pragma once

#include <chrono>
#include <expected>
#include <memory>
#include <string>
#include <string_view>
#include <typeindex>

#include <kmlab/mutexes/fast_mutex.hpp>
#include <kmlab/mutexes/guarded_mutex.hpp>
#include <kmlab/mutexes/kmutex.hpp>

namespace kmlab {

// The guard of a lock taken through a GrtRef: the mutex's own guard plus a
// share of the mutex's ownership, so that the guard stays valid after the
// registry and every handle have let go (unregister(), destroy(), a lookup's
// temporary handle). The lock is released before the ownership is dropped.
template <class M>
class GrtGuard {
  public:
    using value_type = typename M::value_type;

    GrtGuard(std::shared_ptr<M> owner, typename M::Guard guard) noexcept
        : owner_(std::move(owner)), guard_(std::move(guard)) {}
    GrtGuard(GrtGuard&&) noexcept = default;
    GrtGuard& operator=(GrtGuard&& o) noexcept {
        guard_ = std::move(o.guard_);  // releases the lock held so far first,
        owner_ = std::move(o.owner_);  // then may free the mutex it was on
        return *this;
    }
    ~GrtGuard() = default;  // members in reverse order: guard_, then owner_

    value_type& operator*() const { return *guard_; }
    value_type* operator->() const { return guard_.operator->(); }
    bool owns_lock() const noexcept { return guard_.owns_lock(); }
    std::expected<void, Error> unlock() { return guard_.unlock(); }

    // Prints the value as the mutex's own guard does (guard.hpp).
    template <class CharT, class Traits>
    requires requires(std::basic_ostream<CharT, Traits>& os, const typename M::Guard& g) {
        os << g;
    }
    friend std::basic_ostream<CharT, Traits>& operator<<(std::basic_ostream<CharT, Traits>& os,
                                                         const GrtGuard& g) {
        return os << g.guard_;
    }

  private:
    std::shared_ptr<M> owner_;  // declared first: outlives guard_
    typename M::Guard guard_;
};

namespace detail {
template <class M>
concept locks_alertably = requires(M& m, Alertable a) {
    m.lock(a);
    m.lock_for(std::chrono::milliseconds(1), a);
};
template <class M>
concept copies_out = requires(M& m) {
    m.to_owned();
};
}  // namespace detail

// What Grt hands out: a std::shared_ptr to the mutex whose -> locks with a
// GrtGuard. `ref->lock()`, `ref->try_lock()` and `ref->lock_for(d)` (and the
// alertable waits and to_owned() where the mutex has them) are safe even on a
// temporary handle; the mutex itself (`*ref`, `ref.get()`) gives the plain
// guard, which must not outlive the handle.
template <class M>
class GrtRef : public std::shared_ptr<M> {
  public:
    using Guard = GrtGuard<M>;

    GrtRef() = default;
    explicit GrtRef(std::shared_ptr<M> p) noexcept : std::shared_ptr<M>(std::move(p)) {}

    std::expected<Guard, Error> lock() const { return share(this->get()->lock()); }
    std::expected<Guard, Error> try_lock() const { return share(this->get()->try_lock()); }
    template <class Rep, class Period>
    std::expected<Guard, Error> lock_for(std::chrono::duration<Rep, Period> d) const {
        return share(this->get()->lock_for(d));
    }
    // Alertable waits, where the mutex offers them (KMutex over the dispatcher).
    std::expected<Guard, Error> lock(Alertable a) const requires detail::locks_alertably<M> {
        return share(this->get()->lock(a));
    }
    template <class Rep, class Period>
    std::expected<Guard, Error> lock_for(std::chrono::duration<Rep, Period> d,
                                         Alertable a) const requires detail::locks_alertably<M> {
        return share(this->get()->lock_for(d, a));
    }
    // A copy of the value, taken under the lock, where the value copies.
    std::expected<typename M::value_type, Error> to_owned() const requires detail::copies_out<M> {
        return this->get()->to_owned();
    }
    // The handle's own lock(), try_lock() and lock_for(), not the mutex's.
    const GrtRef* operator->() const noexcept { return this; }

  private:
    std::expected<Guard, Error> share(std::expected<typename M::Guard, Error> g) const {
        if (!g) return std::unexpected(g.error());
        return Guard(*this, std::move(*g));
    }
};

enum class GrtErrc {
    not_initialized,
    already_initialized,
    duplicate_key,
    unknown_key,  // the registry has entries, none under this key
    wrong_type,
    empty,  // nothing is registered at all (wdk-mutex's GrtIsEmpty): a lookup before any register
};

struct GrtError {
    GrtErrc code;
    std::string key;
    std::string_view message() const noexcept;
};

class Grt {
  public:
    static std::expected<void, GrtError> init();
    // Drops the registry's references; mutexes still held elsewhere live on.
    static std::expected<void, GrtError> destroy();
    static bool initialized();
    static std::expected<std::size_t, GrtError> size();
    static std::expected<void, GrtError> unregister(std::string_view key);

    template <class T, backends::WaitBackend B = backends::Futex>
    static std::expected<GrtRef<KMutex<T, B>>, GrtError> register_kmutex(std::string key, T value) {
        return register_mutex<KMutex<T, B>>(std::move(key), std::move(value));
    }
    template <class T, backends::WaitBackend B = backends::Futex>
    static std::expected<GrtRef<FastMutex<T, B>>, GrtError> register_fast_mutex(std::string key,
                                                                                T value) {
        return register_mutex<FastMutex<T, B>>(std::move(key), std::move(value));
    }
    template <class T, backends::WaitBackend B = backends::Futex>
    static std::expected<GrtRef<GuardedMutex<T, B>>, GrtError> register_guarded_mutex(
        std::string key, T value) {
        return register_mutex<GuardedMutex<T, B>>(std::move(key), std::move(value));
    }

    template <class T, backends::WaitBackend B = backends::Futex>
    static std::expected<GrtRef<KMutex<T, B>>, GrtError> get_kmutex(std::string_view key) {
        return get<KMutex<T, B>>(key);
    }
    template <class T, backends::WaitBackend B = backends::Futex>
    static std::expected<GrtRef<FastMutex<T, B>>, GrtError> get_fast_mutex(std::string_view key) {
        return get<FastMutex<T, B>>(key);
    }
    template <class T, backends::WaitBackend B = backends::Futex>
    static std::expected<GrtRef<GuardedMutex<T, B>>, GrtError> get_guarded_mutex(
        std::string_view key) {
        return get<GuardedMutex<T, B>>(key);
    }

    // Registers under `key` whatever it named before (another kind, value
    // type or backend too): the registry drops its reference to the old
    // mutex, which lives on for the handles and guards still holding it.
    template <class T, backends::WaitBackend B = backends::Futex>
    static std::expected<GrtRef<KMutex<T, B>>, GrtError> register_or_replace_kmutex(std::string key,
                                                                                    T value) {
        return register_or_replace_mutex<KMutex<T, B>>(std::move(key), std::move(value));
    }
    template <class T, backends::WaitBackend B = backends::Futex>
    static std::expected<GrtRef<FastMutex<T, B>>, GrtError> register_or_replace_fast_mutex(
        std::string key, T value) {
        return register_or_replace_mutex<FastMutex<T, B>>(std::move(key), std::move(value));
    }
    template <class T, backends::WaitBackend B = backends::Futex>
    static std::expected<GrtRef<GuardedMutex<T, B>>, GrtError> register_or_replace_guarded_mutex(
        std::string key, T value) {
        return register_or_replace_mutex<GuardedMutex<T, B>>(std::move(key), std::move(value));
    }

    // The same for any kmlab mutex type M (KMutex<T, B>, FastMutex<T, B>, ...).
    template <class M, class T>
    static std::expected<GrtRef<M>, GrtError> register_mutex(std::string key, T value) {
        return add<M>(std::move(key), std::move(value), Existing::refuse);
    }
    template <class M, class T>
    static std::expected<GrtRef<M>, GrtError> register_or_replace_mutex(std::string key, T value) {
        return add<M>(std::move(key), std::move(value), Existing::replace);
    }
    template <class M>
    static std::expected<GrtRef<M>, GrtError> get(std::string_view key) {
        auto r = lookup(key, typeid(M));
        if (!r) return std::unexpected(r.error());
        return GrtRef<M>(std::static_pointer_cast<M>(std::move(*r)));
    }

  private:
    enum class Existing { refuse, replace };  // what registering does to a key in use
    template <class M, class T>
    static std::expected<GrtRef<M>, GrtError> add(std::string key, T value, Existing existing) {
        auto object = std::make_shared<M>(std::move(value));
        if (auto r = insert(std::move(key), typeid(M), object, existing); !r)
            return std::unexpected(r.error());
        return GrtRef<M>(std::move(object));
    }
    static std::expected<void, GrtError> insert(std::string key, std::type_index type,
                                                std::shared_ptr<void> object, Existing existing);
    static std::expected<std::shared_ptr<void>, GrtError> lookup(std::string_view key,
                                                                 std::type_index type);
};

}  // namespace kmlab

#if defined(__cpp_lib_format)
// Formats the guarded value as the mutex's own guard does (guard.hpp).
template <class M, class CharT>
struct std::formatter<kmlab::GrtGuard<M>, CharT> : std::formatter<typename M::value_type, CharT> {
    template <class FormatContext>
    typename FormatContext::iterator format(const kmlab::GrtGuard<M>& g, FormatContext& ctx) const {
        if (!g.owns_lock()) return std::ranges::copy(kmlab::detail::kReleased, ctx.out()).out;
        return std::formatter<typename M::value_type, CharT>::format(*g, ctx);
    }
};
#endif
