// Driver Verifier's Deadlock Detection and lock checks (kmlab/kernel/verifier.hpp).
//
// One process-wide state under one std::mutex: the verifier is a debugging
// flavour, and its hooks run only on the routines' slow paths. The handler is
// never called with that mutex held (a handler may call into kmlab).
#include <kmlab/kernel/verifier.hpp>

#include <dlfcn.h>
#include <execinfo.h>

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace kmlab::kernel {
void require_irql_documented_verifier(nt::KIRQL documented, nt::KIRQL windows, const void* object) {
    enforce_in_flavor(
        check_irql_documented_verifier(documented, windows, current_thread()->Irql, object));
}
}  // namespace kmlab::kernel

namespace kmlab::kernel::verifier {

std::atomic<bool> g_knows_locks{false};
constinit thread_local const void* tls_init_site = nullptr;

namespace {

using Stack = std::vector<void*>;
constexpr int kStackDepth = 24;

// A node of the graph (verifier.hpp, "Lock classes").
struct Class {
    LockType type;
    const void* site;  // initialization site, or nullptr
    const char* name;  // set_name's, or nullptr
};

// Why an edge exists: the first acquisition that made it.
struct Witness {
    const void* thread;
    std::uint64_t thread_id;
    const void* from_lock;
    LockType from_type;
    const void* to_lock;
    LockType to_type;
    Stack from_stack;
    Stack to_stack;
};

struct LockInfo {
    LockType type;
    std::uint32_t cls;
    const void* site = nullptr;
    const char* name = nullptr;
    bool complete = false;  // initialized while the verifier was on: its whole history seen
    std::uint32_t holders = 0;
    nt::PKTHREAD owner = nullptr;  // the last thread that acquired it
};

struct Held {
    const void* lock;
    std::uint32_t cls;
    LockType type;
    std::uint32_t count;
    Stack stack;
};

struct State {
    std::mutex m;
    std::unordered_map<const void*, LockInfo> locks;
    std::vector<Class> classes;
    std::map<std::pair<int, const void*>, std::uint32_t> site_classes;
    std::unordered_map<std::string_view, std::uint32_t> name_classes;
    std::unordered_map<const void*, std::uint32_t> address_classes;
    std::vector<std::unordered_map<std::uint32_t, Witness>> edges;  // by class
    // Edges between two locks of one class, by lock address (verifier.hpp,
    // "Lock classes"): a class edge to itself would be a cycle of one node.
    std::unordered_map<const void*, std::unordered_map<const void*, Witness>> instance_edges;
    std::unordered_map<nt::PKTHREAD, std::vector<Held>> held;
    std::optional<Report> last;
};

State& state() {
    static auto* s = new State;  // outlives every thread's exit
    return *s;
}

std::atomic<int> g_stacks{-1};  // -1: not read from the environment yet

// Records that the verifier knows a lock (forget_if_known's flag).
void knows(State& s) {
    (void)s;  // under s.m: reset() clears the flag under it too
    if (!g_knows_locks.load(std::memory_order_relaxed))
        g_knows_locks.store(true, std::memory_order_relaxed);
}

std::uint32_t new_class(State& s, LockType type, const void* site, const char* name) {
    s.classes.push_back({type, site, name});
    s.edges.emplace_back();
    return static_cast<std::uint32_t>(s.classes.size() - 1);
}

std::uint32_t address_class(State& s, const void* lock, LockType type) {
    auto [it, added] = s.address_classes.try_emplace(lock, 0);
    if (added) it->second = new_class(s, type, nullptr, nullptr);
    return it->second;
}

LockInfo& info(State& s, const void* lock, LockType type) {
    auto it = s.locks.find(lock);
    if (it != s.locks.end()) return it->second;
    knows(s);
    LockInfo li{type, address_class(s, lock, type)};
    return s.locks.emplace(lock, li).first->second;
}

std::uint64_t thread_id(nt::PKTHREAD t) {
    return t != nullptr && t->Extra != nullptr ? t->Extra->id : 0;
}

Stack capture() {
    if (!capture_stacks()) return {};
    Stack st(kStackDepth);
    const int n = ::backtrace(st.data(), kStackDepth);
    st.resize(static_cast<std::size_t>(n > 0 ? n : 0));
    return st;
}

// The frames of a captured stack, from the lock routine's caller's side:
// capture() itself and the verifier's own frames (kmlab::kernel::verifier,
// "8verifier" mangled) at the top are left out.
std::vector<std::string> symbolize(const Stack& st) {
    std::vector<std::string> out;
    if (st.empty()) return out;
    char** names = ::backtrace_symbols(st.data(), static_cast<int>(st.size()));
    bool top = true;
    for (std::size_t i = 0; i < st.size(); ++i) {
        std::string f = names != nullptr ? names[i] : "?";
        if (top && (i == 0 || f.find("8verifier") != std::string::npos)) continue;
        top = false;
        out.push_back(std::move(f));
    }
    std::free(names);
    return out;
}

std::string site_name(const void* site) {
    if (site == nullptr) return {};
    void* frame[1] = {const_cast<void*>(site)};
    char** names = ::backtrace_symbols(frame, 1);
    std::string out = names != nullptr ? names[0] : "";
    std::free(names);
    return out;
}

std::string lock_name(const State& s, const void* lock) {
    auto it = s.locks.find(lock);
    if (it != s.locks.end() && it->second.name != nullptr) return it->second.name;
    // A global with a dynamic symbol (-rdynamic), as !deadlock names
    // "dummy!GlobalLock".
    Dl_info di{};
    if (::dladdr(lock, &di) != 0 && di.dli_sname != nullptr && di.dli_saddr == lock)
        return di.dli_sname;
    return {};
}

// Builds a report's lock table entry (index) for `lock`.
std::size_t report_lock(const State& s, Report& r, const void* lock, LockType type) {
    for (std::size_t i = 0; i < r.locks.size(); ++i) {
        if (r.locks[i].address == lock) return i;
    }
    ReportLock rl;
    rl.address = lock;
    rl.type = type;
    rl.name = lock_name(s, lock);
    auto it = s.locks.find(lock);
    if (it != s.locks.end()) rl.initialized_at = site_name(it->second.site);
    r.locks.push_back(std::move(rl));
    return r.locks.size() - 1;
}

// A path of edges from class `from` to class `to` (depth first), or false.
bool find_path(const State& s, std::uint32_t from, std::uint32_t to,
               std::vector<const Witness*>& path, std::unordered_set<std::uint32_t>& seen) {
    if (from == to) return true;
    if (!seen.insert(from).second) return false;
    for (const auto& [next, w] : s.edges[from]) {
        path.push_back(&w);
        if (find_path(s, next, to, path, seen)) return true;
        path.pop_back();
    }
    return false;
}

// A path of instance edges from lock `from` to lock `to`, or false.
bool find_instance_path(const State& s, const void* from, const void* to,
                        std::vector<const Witness*>& path, std::unordered_set<const void*>& seen) {
    if (from == to) return true;
    if (!seen.insert(from).second) return false;
    auto it = s.instance_edges.find(from);
    if (it == s.instance_edges.end()) return false;
    for (const auto& [next, w] : it->second) {
        path.push_back(&w);
        if (find_instance_path(s, next, to, path, seen)) return true;
        path.pop_back();
    }
    return false;
}

bool has_instance_edge(const State& s, const void* from, const void* to) {
    auto it = s.instance_edges.find(from);
    return it != s.instance_edges.end() && it->second.contains(to);
}

// The memory of `lock` holds no lock any more, or a new one: its holds, its
// information, its instance edges and its address class's edges go.
void forget_locked(State& s, const void* lock) {
    for (auto& [thread, held] : s.held) {
        std::erase_if(held, [&](const Held& h) { return h.lock == lock; });
    }
    std::erase_if(s.held, [](const auto& kv) { return kv.second.empty(); });
    s.locks.erase(lock);
    s.instance_edges.erase(lock);
    for (auto& [from, to] : s.instance_edges) to.erase(lock);
    if (auto ac = s.address_classes.find(lock); ac != s.address_classes.end()) {
        // The class stays allocated (an index), with no edge and no lock.
        const std::uint32_t c = ac->second;
        s.edges[c].clear();
        for (auto& e : s.edges) e.erase(c);
        s.address_classes.erase(ac);
    }
}

Violation deadlock_violation(nt::ULONG_PTR subcode, const void* object, nt::ULONG_PTR p2,
                             nt::ULONG_PTR p3 = 0, nt::ULONG_PTR p4 = 0) {
    return Violation::bug_check(bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION, object, subcode, p2,
                                p3, p4);
}

nt::ULONG_PTR param(const void* p) {
    return reinterpret_cast<nt::ULONG_PTR>(p);
}

// The report of a violation that is not a cycle: the thread at fault, the
// locks it holds and the lock in question.
Report single_report(const State& s, nt::ULONG_PTR subcode, nt::PKTHREAD t, const void* lock,
                     LockType type) {
    Report r;
    r.subcode = subcode;
    ReportThread rt;
    rt.thread = t;
    rt.id = thread_id(t);
    if (auto it = s.held.find(t); it != s.held.end()) {
        for (const Held& h : it->second) {
            rt.locks.push_back(report_lock(s, r, h.lock, h.type));
            rt.stacks.push_back(symbolize(h.stack));
        }
    }
    if (lock != nullptr) {
        const std::size_t i = report_lock(s, r, lock, type);
        if (rt.locks.empty() || rt.locks.back() != i) {
            rt.locks.push_back(i);
            rt.stacks.push_back(symbolize(capture()));
        }
    }
    r.threads.push_back(std::move(rt));
    return r;
}

}  // namespace

const char* type_name(LockType type) noexcept {
    switch (type) {
        case LockType::kmutex:
            return "Mutex";
        case LockType::fast_mutex:
            return "FastMutex";
        case LockType::guarded_mutex:
            return "GuardedMutex";
        case LockType::spin_lock:
            return "Spinlock";
        case LockType::queued_spin_lock:
            return "QueuedSpinlock";
        case LockType::resource:
            return "Resource";
        case LockType::push_lock:
            return "PushLock";
        case LockType::ex_spin_lock:
            return "ExSpinLock";
        case LockType::idiomatic_kmutex:
            return "kmlab::KMutex";
        case LockType::idiomatic_fast_mutex:
            return "kmlab::FastMutex";
        case LockType::idiomatic_guarded_mutex:
            return "kmlab::GuardedMutex";
        case LockType::idiomatic_spin_lock:
            return "kmlab::SpinLock";
        case LockType::idiomatic_queued_spin_lock:
            return "kmlab::QueuedSpinLock";
        case LockType::idiomatic_resource:
            return "kmlab::Resource";
        case LockType::idiomatic_push_lock:
            return "kmlab::PushLock";
        case LockType::idiomatic_rw_spin_lock:
            return "kmlab::RwSpinLock";
    }
    return "Unknown";
}

void set_capture_stacks(bool on) noexcept {
    g_stacks.store(on ? 1 : 0, std::memory_order_relaxed);
}

bool capture_stacks() noexcept {
    int v = g_stacks.load(std::memory_order_relaxed);
    if (v < 0) {
        const char* e = std::getenv("KMLAB_VERIFIER_STACKS");
        v = e != nullptr && std::strcmp(e, "0") != 0 && *e != '\0' ? 1 : 0;
        g_stacks.store(v, std::memory_order_relaxed);
    }
    return v != 0;
}

void reset() noexcept {
    State& s = state();
    std::lock_guard g(s.m);
    s.locks.clear();
    s.classes.clear();
    s.site_classes.clear();
    s.name_classes.clear();
    s.address_classes.clear();
    s.edges.clear();
    s.instance_edges.clear();
    s.held.clear();
    s.last.reset();
    g_knows_locks.store(false, std::memory_order_relaxed);
}

void forget(const void* lock) noexcept {
    State& s = state();
    std::lock_guard g(s.m);
    forget_locked(s, lock);
}

void clear_holds() noexcept {
    State& s = state();
    std::lock_guard g(s.m);
    s.held.clear();
    for (auto& [lock, li] : s.locks) li.holders = 0;
}

void set_name(const void* lock, const char* name) noexcept {
    State& s = state();
    std::lock_guard g(s.m);
    auto it = s.locks.find(lock);
    const LockType type = it != s.locks.end() ? it->second.type : LockType::kmutex;
    auto [nc, added] = s.name_classes.try_emplace(std::string_view(name), 0);
    if (added) nc->second = new_class(s, type, nullptr, name);
    LockInfo& li = info(s, lock, type);
    li.name = name;
    li.cls = nc->second;
}

std::string Report::text() const {
    std::string out;
    char buf[512];
    auto letter = [](std::size_t i) {
        std::string l(1, static_cast<char>('A' + i % 26));
        if (i >= 26) l.append(std::to_string(i / 26));
        return l;
    };
    if (subcode == bugcheck::VERIFIER_DEADLOCK_DETECTED) {
        // By id: a KTHREAD's address may be reused by the next thread.
        std::unordered_set<std::uint64_t> distinct;
        for (const auto& t : threads) distinct.insert(t.id);
        std::snprintf(buf, sizeof buf, "Deadlock detected (%zu resources in %zu threads):\n\n",
                      locks.size(), distinct.size());
    } else {
        std::snprintf(buf, sizeof buf, "Deadlock Detection: 0xC4 subcode 0x%" PRIXPTR ":\n\n",
                      static_cast<std::uintptr_t>(subcode));
    }
    out += buf;
    for (std::size_t i = 0; i < threads.size(); ++i) {
        out.append("Thread ").append(std::to_string(i)).append(":");
        for (std::size_t l : threads[i].locks) out.append(" ").append(letter(l));
        out.append("\n");
    }
    out += "\nWhere:\n";
    for (std::size_t i = 0; i < threads.size(); ++i) {
        std::snprintf(buf, sizeof buf, "Thread %zu = %p (kmlab thread %" PRIu64 ")\n", i,
                      threads[i].thread, threads[i].id);
        out += buf;
    }
    for (std::size_t i = 0; i < locks.size(); ++i) {
        const ReportLock& l = locks[i];
        std::snprintf(buf, sizeof buf, "Lock %s = %p Type '%s'", letter(i).c_str(), l.address,
                      type_name(l.type));
        out += buf;
        if (!l.name.empty()) out.append(" Name '").append(l.name).append("'");
        if (!l.initialized_at.empty()) out.append(" initialized at ").append(l.initialized_at);
        out += "\n";
    }
    bool any_stack = false;
    for (const auto& t : threads) {
        for (const auto& st : t.stacks) any_stack = any_stack || !st.empty();
    }
    if (any_stack) {
        out += "\nAcquisition stacks (!deadlock 1):\n";
        for (std::size_t i = 0; i < threads.size(); ++i) {
            for (std::size_t k = 0; k < threads[i].locks.size() && k < threads[i].stacks.size();
                 ++k) {
                out.append("Thread ").append(std::to_string(i)).append(" acquired ");
                out.append(letter(threads[i].locks[k])).append(":\n");
                for (const auto& f : threads[i].stacks[k])
                    out.append("    ").append(f).append("\n");
            }
        }
    }
    return out;
}

std::optional<Report> last_report() {
    State& s = state();
    std::lock_guard g(s.m);
    return s.last;
}

void clear_last_report() noexcept {
    State& s = state();
    std::lock_guard g(s.m);
    s.last.reset();
}

// ---- Hooks ----

std::optional<Violation> check_initialize(nt::PKTHREAD t, const void* lock,
                                          LockType type) noexcept {
    State& s = state();
    std::lock_guard g(s.m);
    auto it = s.locks.find(lock);
    if (it == s.locks.end() || it->second.holders == 0) return std::nullopt;
    s.last = single_report(s, bugcheck::VERIFIER_DEADLOCK_MULTIPLE_INITIALIZATION, t, lock, type);
    return deadlock_violation(bugcheck::VERIFIER_DEADLOCK_MULTIPLE_INITIALIZATION, lock,
                              param(lock));
}

void note_initialize(const void* lock, LockType type, const void* site) noexcept {
    State& s = state();
    std::lock_guard g(s.m);
    knows(s);
    auto [sc, added] = s.site_classes.try_emplace({static_cast<int>(type), site}, 0);
    if (added) sc->second = new_class(s, type, site, nullptr);
    // A lock named before its initialization keeps its name and the name's
    // class (set_name: the name decides the class "whatever initialized it").
    const char* name = nullptr;
    std::uint32_t cls = sc->second;
    if (auto it = s.locks.find(lock); it != s.locks.end() && it->second.name != nullptr) {
        name = it->second.name;
        cls = it->second.cls;
    }
    // A reinitialized lock starts a new life: no holds, no instance edges,
    // the site's class (or its name's).
    forget_locked(s, lock);
    LockInfo li{type, cls};
    li.site = site;
    li.name = name;
    li.complete = true;
    s.locks.insert_or_assign(lock, li);
}

std::optional<Violation> check_delete(const void* lock) noexcept {
    State& s = state();
    std::lock_guard g(s.m);
    auto it = s.locks.find(lock);
    if (it == s.locks.end() || it->second.holders == 0) return std::nullopt;
    nt::PKTHREAD owner = it->second.owner;
    s.last = single_report(s, bugcheck::VERIFIER_DEADLOCK_DELETED_WHILE_HELD, owner, lock,
                           it->second.type);
    return deadlock_violation(bugcheck::VERIFIER_DEADLOCK_DELETED_WHILE_HELD, lock, param(lock),
                              param(owner));
}

void note_delete(const void* lock) noexcept {
    State& s = state();
    std::lock_guard g(s.m);
    for (auto& [thread, held] : s.held) {
        std::erase_if(held, [&](const Held& h) { return h.lock == lock; });
    }
    s.locks.erase(lock);
}

std::optional<Violation> check_acquire(nt::PKTHREAD t, const void* lock, LockType type) noexcept {
    State& s = state();
    std::lock_guard g(s.m);
    LockInfo& li = info(s, lock, type);
    const std::uint32_t cy = li.cls;
    auto hit = s.held.find(t);
    if (hit == s.held.end()) return std::nullopt;
    const std::vector<Held>& held = hit->second;
    for (const Held& h : held) {
        if (h.lock != lock) continue;
        if (recursive(type)) return std::nullopt;  // legal recursion: no new edge
        s.last = single_report(s, bugcheck::VERIFIER_DEADLOCK_SELF, t, lock, type);
        return deadlock_violation(bugcheck::VERIFIER_DEADLOCK_SELF, lock, param(lock));
    }
    for (const Held& h : held) {
        std::vector<const Witness*> path;
        if (h.cls == cy) {
            // Two locks of one class (decision, kmlab: lockdep reports any
            // nesting of one class without an annotation [lockdep-design];
            // kmlab orders the instances instead, so that per-object locks
            // taken in one order are silent and a real A-B / B-A between
            // two of them is reported).
            if (has_instance_edge(s, h.lock, lock)) continue;
            std::unordered_set<const void*> seen;
            if (!find_instance_path(s, lock, h.lock, path, seen)) continue;
        } else {
            if (s.edges[h.cls].contains(cy)) continue;
            std::unordered_set<std::uint32_t> seen;
            if (!find_path(s, cy, h.cls, path, seen)) continue;
        }
        // The cycle: the edges from Y's class (or Y) back to the held lock's,
        // each a thread that took two locks in that order, then this thread,
        // holding h and acquiring `lock`.
        Report r;
        r.subcode = bugcheck::VERIFIER_DEADLOCK_DETECTED;
        for (const Witness* w : path) {
            ReportThread rt;
            rt.thread = w->thread;
            rt.id = w->thread_id;
            rt.locks = {report_lock(s, r, w->from_lock, w->from_type),
                        report_lock(s, r, w->to_lock, w->to_type)};
            rt.stacks = {symbolize(w->from_stack), symbolize(w->to_stack)};
            r.threads.push_back(std::move(rt));
        }
        ReportThread rt;
        rt.thread = t;
        rt.id = thread_id(t);
        rt.locks = {report_lock(s, r, h.lock, h.type), report_lock(s, r, lock, type)};
        rt.stacks = {symbolize(h.stack), symbolize(capture())};
        r.threads.push_back(std::move(rt));
        s.last = std::move(r);
        return deadlock_violation(bugcheck::VERIFIER_DEADLOCK_DETECTED, lock, param(lock),
                                  param(h.lock));
    }
    // No cycle: the edges "held X while acquiring Y" go in now, before the
    // acquisition waits (decision, kmlab, as lockdep adds its dependency
    // before the lock is taken: lock_acquire -> __lock_acquire ->
    // validate_chain -> check_prevs_add runs before the caller's lock is
    // taken [lockdep-c]): when two threads overlap,
    // the first holds X and waits for Y, and the second, holding Y and
    // acquiring X, must see that edge to report the cycle at its closing
    // acquisition; added only once acquired, it would never appear, and the
    // two would deadlock unreported. note_acquire adds the same edges again
    // (no-ops) for the routines that record without a check.
    // An idiomatic type over a kernel object at its own address (KMutex over
    // the dispatcher: a KMUTEX its constructor initialized) is named as that
    // object, as the kernel routine's note_acquire records it.
    auto known = s.locks.find(lock);
    const LockType witness_type =
        type >= LockType::idiomatic_kmutex && known != s.locks.end() && known->second.complete
            ? known->second.type
            : type;
    Stack to_stack;
    bool captured = false;
    for (const Held& h : held) {
        const bool same = h.cls == cy;
        if (same ? has_instance_edge(s, h.lock, lock) : s.edges[h.cls].contains(cy)) continue;
        if (!captured) {
            to_stack = capture();
            captured = true;
        }
        Witness w{t, thread_id(t), h.lock, h.type, lock, witness_type, h.stack, to_stack};
        if (same)
            s.instance_edges[h.lock].emplace(lock, std::move(w));
        else
            s.edges[h.cls].emplace(cy, std::move(w));
    }
    return std::nullopt;
}

void note_acquire(nt::PKTHREAD t, const void* lock, LockType type, bool shared,
                  bool tried) noexcept {
    (void)shared;
    State& s = state();
    std::lock_guard g(s.m);
    LockInfo& li = info(s, lock, type);
    const std::uint32_t cy = li.cls;
    std::vector<Held>& held = s.held[t];
    for (Held& h : held) {
        if (h.lock == lock) {
            ++h.count;
            return;
        }
    }
    Stack stack = capture();
    if (!tried) {
        for (const Held& h : held) {
            // An edge that would close a cycle (reported by check_acquire, and
            // the handler returned) is left out: the graph stays acyclic.
            std::vector<const Witness*> path;
            Witness w{t, thread_id(t), h.lock, h.type, lock, type, h.stack, stack};
            if (h.cls == cy) {
                if (has_instance_edge(s, h.lock, lock)) continue;
                std::unordered_set<const void*> seen;
                if (find_instance_path(s, lock, h.lock, path, seen)) continue;
                s.instance_edges[h.lock].emplace(lock, std::move(w));
                continue;
            }
            if (s.edges[h.cls].contains(cy)) continue;
            std::unordered_set<std::uint32_t> seen;
            if (find_path(s, cy, h.cls, path, seen)) continue;
            s.edges[h.cls].emplace(cy, std::move(w));
        }
    }
    held.push_back({lock, cy, type, 1, std::move(stack)});
    ++li.holders;
    li.owner = t;
}

namespace {
// Drops one hold of `lock` by `who`; false if it has none.
bool drop(State& s, nt::PKTHREAD who, const void* lock) {
    auto hit = s.held.find(who);
    if (hit == s.held.end()) return false;
    auto& held = hit->second;
    for (auto it = held.begin(); it != held.end(); ++it) {
        if (it->lock != lock) continue;
        if (--it->count == 0) {
            held.erase(it);
            if (auto li = s.locks.find(lock); li != s.locks.end() && li->second.holders > 0)
                --li->second.holders;
        }
        if (held.empty()) s.held.erase(hit);
        return true;
    }
    return false;
}
}  // namespace

std::optional<Violation> check_release(nt::PKTHREAD t, const void* lock, LockType type,
                                       nt::PKTHREAD for_thread) noexcept {
    State& s = state();
    std::lock_guard g(s.m);
    nt::PKTHREAD who = for_thread != nullptr ? for_thread : t;
    if (drop(s, who, lock)) return std::nullopt;
    auto it = s.locks.find(lock);
    if (it == s.locks.end() || !it->second.complete) return std::nullopt;
    if (it->second.holders > 0) {
        nt::PKTHREAD owner = it->second.owner;
        s.last = single_report(s, bugcheck::VERIFIER_DEADLOCK_UNEXPECTED_THREAD, t, lock, type);
        return deadlock_violation(bugcheck::VERIFIER_DEADLOCK_UNEXPECTED_THREAD, lock, param(lock),
                                  param(owner), param(t));
    }
    s.last = single_report(s, bugcheck::VERIFIER_DEADLOCK_UNACQUIRED_RESOURCE, t, lock, type);
    return deadlock_violation(bugcheck::VERIFIER_DEADLOCK_UNACQUIRED_RESOURCE, lock, param(lock));
}

void note_release(nt::PKTHREAD t, const void* lock) noexcept {
    State& s = state();
    std::lock_guard g(s.m);
    (void)drop(s, t, lock);
}

void thread_exit(nt::PKTHREAD t) noexcept {
    std::optional<Violation> v;
    {
        State& s = state();
        std::lock_guard g(s.m);
        auto hit = s.held.find(t);
        if (hit == s.held.end()) return;
        if (!hit->second.empty()) {
            const Held& first = hit->second.front();
            s.last = single_report(s, bugcheck::VERIFIER_DEADLOCK_THREAD_EXIT_HOLDING, t, nullptr,
                                   first.type);
            v = deadlock_violation(bugcheck::VERIFIER_DEADLOCK_THREAD_EXIT_HOLDING, t, param(t),
                                   param(first.lock));
            for (const Held& h : hit->second) {
                if (auto li = s.locks.find(h.lock); li != s.locks.end() && li->second.holders > 0)
                    --li->second.holders;
            }
        }
        s.held.erase(hit);
    }
    if (v) report(*v);
}

std::optional<Violation> check_free(const void* block, std::size_t size) noexcept {
    State& s = state();
    std::lock_guard g(s.m);
    const auto* begin = static_cast<const char*>(block);
    auto inside = [&](const void* p) {
        const auto* c = static_cast<const char*>(p);
        return c >= begin && c < begin + size;
    };
    // Decision, kmlab: the bug check page has one subcode for a lock in a
    // freed block, 0xD2 for an ERESOURCE that was never deleted, whether or
    // not it is held [bc:0xC4]; a lock of another type still held is freed
    // with its holder still owning it, which is 0x100B's "deleted lock is
    // still owned by a thread" (lock, owner, 0). A lock that is free when its
    // memory goes needs no deletion (only ERESOURCE has a delete routine).
    std::optional<Violation> v;
    for (const auto& [lock, li] : s.locks) {
        if (!inside(lock)) continue;
        if (li.type == LockType::resource && li.complete) {
            s.last =
                single_report(s, bugcheck::VERIFIER_FREE_ACTIVE_RESOURCE, li.owner, lock, li.type);
            v = deadlock_violation(bugcheck::VERIFIER_FREE_ACTIVE_RESOURCE, lock, param(lock),
                                   param(block), size);
            break;
        }
        if (li.holders > 0 && !v) {
            s.last = single_report(s, bugcheck::VERIFIER_DEADLOCK_DELETED_WHILE_HELD, li.owner,
                                   lock, li.type);
            v = deadlock_violation(bugcheck::VERIFIER_DEADLOCK_DELETED_WHILE_HELD, lock,
                                   param(lock), param(li.owner));
        }
    }
    // Forget the block's locks, holds and edges: its memory is reused.
    std::vector<const void*> gone;
    for (const auto& [lock, li] : s.locks) {
        if (inside(lock)) gone.push_back(lock);
    }
    for (const auto& [lock, c] : s.address_classes) {
        if (inside(lock)) gone.push_back(lock);
    }
    for (auto& [thread, held] : s.held) {
        for (const Held& h : held) {
            if (inside(h.lock)) gone.push_back(h.lock);
        }
    }
    for (const void* lock : gone) forget_locked(s, lock);
    return v;
}

void report(const Violation& v) noexcept {
    const auto& p = v.parameters;
    report_fatal_bug_check(BugCheck(v.code, p[0], p[1], p[2], p[3]));
}

void on_initialize(nt::PKTHREAD t, const void* lock, LockType type, const void* site) noexcept {
    if (tls_init_site != nullptr) {  // a C entry point's caller (InitSite)
        site = tls_init_site;
        tls_init_site = nullptr;
    }
    if (!on(t)) return;
    if (auto v = check_initialize(t, lock, type)) report(*v);
    note_initialize(lock, type, site);
}

void on_acquire(nt::PKTHREAD t, const void* lock, LockType type) noexcept {
    if (!on(t)) return;
    if (auto v = check_acquire(t, lock, type)) report(*v);
}

void on_free(nt::PKTHREAD t, const void* block, std::size_t size) noexcept {
    if (!on(t)) return;
    if (auto v = check_free(block, size)) report(*v);
}

void on_release(nt::PKTHREAD t, const void* lock, LockType type, nt::PKTHREAD for_thread) noexcept {
    if (!on(t)) return;
    if (auto v = check_release(t, lock, type, for_thread)) report(*v);
}

nt::PKTHREAD adopt_if_verifying() noexcept {
    return flavor() == Flavor::verifier ? current_thread() : nullptr;
}

}  // namespace kmlab::kernel::verifier
