#include <kmlab/mutexes/grt.hpp>

#include <map>
#include <optional>
#include <shared_mutex>

namespace kmlab {

namespace {
struct Entry {
    std::type_index type;
    std::shared_ptr<void> object;
};
struct Registry {
    std::shared_mutex lock;
    // std::less<> allows lookups by string_view without building a string.
    std::optional<std::map<std::string, Entry, std::less<>>> map;
};
Registry& registry() {
    static Registry r;
    return r;
}
std::unexpected<GrtError> fail(GrtErrc code, std::string_view key = {}) {
    return std::unexpected(GrtError{code, std::string(key)});
}
}  // namespace

std::string_view GrtError::message() const noexcept {
    switch (code) {
        case GrtErrc::not_initialized:
            return "Grt is not initialized (call Grt::init() first)";
        case GrtErrc::already_initialized:
            return "Grt is already initialized";
        case GrtErrc::duplicate_key:
            return "a mutex is already registered under this key";
        case GrtErrc::unknown_key:
            return "no mutex is registered under this key";
        case GrtErrc::wrong_type:
            return "the mutex under this key has another kind, value type or backend";
        case GrtErrc::empty:
            return "no mutex is registered at all";
    }
    return "unknown Grt error";
}

std::expected<void, GrtError> Grt::init() {
    auto& r = registry();
    std::unique_lock g(r.lock);
    if (r.map) return fail(GrtErrc::already_initialized);
    r.map.emplace();
    return {};
}

std::expected<void, GrtError> Grt::destroy() {
    auto& r = registry();
    std::optional<std::map<std::string, Entry, std::less<>>> doomed;
    {
        std::unique_lock g(r.lock);
        if (!r.map) return fail(GrtErrc::not_initialized);
        doomed.swap(r.map);
    }
    // The registry's references are dropped outside the lock.
    return {};
}

bool Grt::initialized() {
    auto& r = registry();
    std::shared_lock g(r.lock);
    return r.map.has_value();
}

std::expected<std::size_t, GrtError> Grt::size() {
    auto& r = registry();
    std::shared_lock g(r.lock);
    if (!r.map) return fail(GrtErrc::not_initialized);
    return r.map->size();
}

std::expected<void, GrtError> Grt::unregister(std::string_view key) {
    auto& r = registry();
    std::shared_ptr<void> doomed;
    std::unique_lock g(r.lock);
    if (!r.map) return fail(GrtErrc::not_initialized, key);
    if (r.map->empty()) return fail(GrtErrc::empty, key);
    auto it = r.map->find(key);
    if (it == r.map->end()) return fail(GrtErrc::unknown_key, key);
    doomed = std::move(it->second.object);
    r.map->erase(it);
    g.unlock();
    return {};
}

std::expected<void, GrtError> Grt::insert(std::string key, std::type_index type,
                                          std::shared_ptr<void> object, Existing existing) {
    auto& r = registry();
    // Declared before the lock, so destroyed after it is released: a replaced
    // mutex whose last reference was the registry's ends outside the lock.
    Entry entry{type, std::move(object)};
    std::unique_lock g(r.lock);
    if (!r.map) return fail(GrtErrc::not_initialized, key);
    // try_emplace moves neither the key nor the entry when the key is in use.
    auto [it, inserted] = r.map->try_emplace(std::move(key), std::move(entry));
    if (!inserted) {
        if (existing == Existing::refuse) return fail(GrtErrc::duplicate_key, it->first);
        std::swap(it->second, entry);
    }
    return {};
}

std::expected<std::shared_ptr<void>, GrtError> Grt::lookup(std::string_view key,
                                                           std::type_index type) {
    auto& r = registry();
    std::shared_lock g(r.lock);
    if (!r.map) return fail(GrtErrc::not_initialized, key);
    if (r.map->empty()) return fail(GrtErrc::empty, key);
    auto it = r.map->find(key);
    if (it == r.map->end()) return fail(GrtErrc::unknown_key, key);
    if (it->second.type != type) return fail(GrtErrc::wrong_type, key);
    return it->second.object;
}

}  // namespace kmlab
