// Grt: the global reference tracker of the wdk-mutex seeds, a process-wide
// registry of named mutexes.
//
// Differences from the seed crate, on purpose:
//  * Safe to use from many threads at once (a reader-writer lock guards the map).
//  * Shared ownership: a lookup returns std::shared_ptr, so a mutex obtained
//    before destroy(), or before its key is unregistered and registered again,
//    stays alive and valid for as long as the caller holds it. Nothing can dangle.
//  * Every failure is an std::expected error naming the key.
//  * Besides the named calls of the seeds (register_kmutex, get_fast_mutex,
//    ...), register_mutex<M> and get<M> take any kmlab mutex type.
#pragma once

#include <expected>
#include <memory>
#include <string>
#include <string_view>
#include <typeindex>

#include "mutexes/fast_mutex.hpp"
#include "mutexes/guarded_mutex.hpp"
#include "mutexes/kmutex.hpp"

namespace kmlab {

enum class GrtErrc { not_initialized, already_initialized, duplicate_key, unknown_key, wrong_type };

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
    static std::expected<std::shared_ptr<KMutex<T, B>>, GrtError> register_kmutex(std::string key,
                                                                                  T value) {
        return register_mutex<KMutex<T, B>>(std::move(key), std::move(value));
    }
    template <class T, backends::WaitBackend B = backends::Futex>
    static std::expected<std::shared_ptr<FastMutex<T, B>>, GrtError> register_fast_mutex(
        std::string key, T value) {
        return register_mutex<FastMutex<T, B>>(std::move(key), std::move(value));
    }
    template <class T, backends::WaitBackend B = backends::Futex>
    static std::expected<std::shared_ptr<GuardedMutex<T, B>>, GrtError> register_guarded_mutex(
        std::string key, T value) {
        return register_mutex<GuardedMutex<T, B>>(std::move(key), std::move(value));
    }

    template <class T, backends::WaitBackend B = backends::Futex>
    static std::expected<std::shared_ptr<KMutex<T, B>>, GrtError> get_kmutex(std::string_view key) {
        return get<KMutex<T, B>>(key);
    }
    template <class T, backends::WaitBackend B = backends::Futex>
    static std::expected<std::shared_ptr<FastMutex<T, B>>, GrtError> get_fast_mutex(
        std::string_view key) {
        return get<FastMutex<T, B>>(key);
    }
    template <class T, backends::WaitBackend B = backends::Futex>
    static std::expected<std::shared_ptr<GuardedMutex<T, B>>, GrtError> get_guarded_mutex(
        std::string_view key) {
        return get<GuardedMutex<T, B>>(key);
    }

    // The same for any kmlab mutex type M (KMutex<T, B>, FastMutex<T, B>, ...).
    template <class M, class T>
    static std::expected<std::shared_ptr<M>, GrtError> register_mutex(std::string key, T value) {
        auto object = std::make_shared<M>(std::move(value));
        if (auto r = insert(std::move(key), typeid(M), object); !r)
            return std::unexpected(r.error());
        return object;
    }
    template <class M>
    static std::expected<std::shared_ptr<M>, GrtError> get(std::string_view key) {
        auto r = lookup(key, typeid(M));
        if (!r) return std::unexpected(r.error());
        return std::static_pointer_cast<M>(*r);
    }

  private:
    static std::expected<void, GrtError> insert(std::string key, std::type_index type,
                                                std::shared_ptr<void> object);
    static std::expected<std::shared_ptr<void>, GrtError> lookup(std::string_view key,
                                                                 std::type_index type);
};

}  // namespace kmlab
