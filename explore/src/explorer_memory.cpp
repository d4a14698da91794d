// The explorer's memory model and waits: what each operation of a model thread
// does to shared memory (sequentially consistent, or through x86-TSO store
// buffers, drained oldest first; the C++ memory model is explorer_c11.cpp's,
// which these operations hand over to under Memory::cxx), the
// destroyed-memory checks, futex waits and wakes, spinners that sleep until
// memory they read changes, and the synchronization events under EventGate.
#include <cstring>
#include <string>
#include <vector>

#include "explorer_internal.hpp"

namespace kmlab::explore::internal {

// Memory::cxx (explorer_c11.cpp): the operations that name no order are
// seq_cst; futex calls are full barriers; an EventGate signal releases and
// the wait it ends acquires.
void c11_load(Scheduler& s, const void* p, void* out, std::size_t size);
void c11_store(Scheduler& s, void* p, const void* in, std::size_t size);
void c11_rmw(Scheduler& s, void* p, void* old, void* out, std::size_t size,
             const std::function<bool(const void*, void*)>& update, const char* what);
void c11_fence(Scheduler& s, bool all);
void c11_futex(Scheduler& s, const void* p, bool reads_word);
void c11_event(Scheduler& s, const void* e, bool signal);
void c11_forget(Scheduler& s, const void* p, std::size_t size);

// Ending a run leaves the fibers' stacks as they are (see end_run), so
// nothing on them may own heap memory at that point: the message is
// built into violation_ in a statement of its own first.
void Scheduler::fail(const char* what) {
    prime_park();
    if (violation_.empty()) set_violation('T' + std::to_string(running_) + ": " + what);
    end_run();
}

void Scheduler::check_alive(const void* p, std::size_t size) {
    for (const auto& [lo, hi] : destroyed_) {
        const auto a = reinterpret_cast<std::uintptr_t>(p);
        if (a < hi && a + size > lo) {
            set_violation('T' + std::to_string(running_) + ": access to destroyed memory at " +
                          where(p));
            end_run();
        }
    }
}

void Scheduler::load(const void* p, void* out, std::size_t size) {
    if (c11_) return c11_load(*this, p, out, size);
    announce(Op::load, p, size);  // to the partial-order reduction (explorer_search.cpp)
    yield();
    check_alive(p, size);
    if (running_ >= 0) {
        auto& buf = threads_[running_].buffer;
        for (auto it = buf.rbegin(); it != buf.rend(); ++it) {
            if (it->addr == p) {
                std::memcpy(out, &it->bits, size);
                if (tracing_) note("load " + where(p) + " = " + show(out, size) + " (own buffer)");
                // A spinner waits on it too: once the store drains, another
                // thread's store there changes what it reads (read_changed).
                remember_read(p, out, size);
                return;
            }
        }
    }
    std::memcpy(out, p, size);
    if (tracing_) note("load " + where(p) + " = " + show(out, size));
    remember_read(p, out, size);
}

void Scheduler::store(void* p, const void* in, std::size_t size, bool seq_cst) {
    if (c11_) return c11_store(*this, p, in, size);
    announce(seq_cst ? Op::store_seq_cst : Op::store, p, size);
    yield();
    check_alive(p, size);
    if (running_ >= 0 && config_.memory == Memory::tso) {
        Store s{p, size, 0};
        std::memcpy(&s.bits, in, size);
        threads_[running_].buffer.push_back(s);
        if (tracing_)
            note("store " + where(p) + " := " + show(in, size) +
                 (seq_cst ? " (seq_cst)" : " (buffered)"));
        if (seq_cst) drain(running_, 0);
        return;
    }
    std::memcpy(p, in, size);
    if (tracing_) note("store " + where(p) + " := " + show(in, size));
    memory_written();
}

void Scheduler::rmw(void* p, void* old, void* out, std::size_t size,
                    const std::function<bool(const void*, void*)>& update, const char* what) {
    if (c11_) return c11_rmw(*this, p, old, out, size, update, what);
    announce(Op::rmw, p, size);
    yield();
    check_alive(p, size);
    const bool own_store = buffered_in(p, size);
    if (running_ >= 0) drain(running_, 0);
    std::memcpy(old, p, size);
    const bool write = update(old, out);
    // An update that writes nothing, or the value already there (a failed
    // compare-exchange, an exchange of the value held: a spinner's failed
    // test-and-set), only read, to the reduction.
    if (!own_store && (!write || std::memcmp(old, out, size) == 0)) refine(p, size, false);
    if (write) {
        std::memcpy(p, out, size);
        memory_written();
    }
    // A spinner's condition read the value: an update that wrote nothing or
    // the same value leaves it there, and the spinner sleeps until it
    // changes (one that wrote another value leaves no read: any write wakes).
    if (running_ >= 0 && (!write || std::memcmp(old, out, size) == 0)) remember_read(p, old, size);
    if (tracing_)
        note(std::string(what) + " " + where(p) + " " + show(old, size) +
             (write ? " -> " + show(out, size) : " (no write)"));
}

void Scheduler::fence(bool all) {
    if (c11_) return c11_fence(*this, all);
    if (running_ >= 0)
        announce(all ? Op::fence_all : Op::fence);  // a membarrier drains every buffer
    yield();
    if (running_ < 0) return;
    if (all) {
        for (std::size_t i = 0; i < threads_.size(); ++i) drain(static_cast<int>(i), 0);
    } else {
        drain(running_, 0);
    }
    if (tracing_) note(all ? "membarrier (every buffer drained)" : "fence");
}

bool Scheduler::futex_wait(const void* p, std::uint32_t expected, bool has_deadline) {
    announce(Op::sync, p, 4);
    yield();
    check_alive(p, 4);
    const bool own_store = buffered_in(p, 4);
    drain(running_, 0);
    if (c11_) c11_futex(*this, p, true);
    std::uint32_t v;
    std::memcpy(&v, p, 4);
    // It reads its word; only a wait that sleeps joins the queue.
    if (!own_store) refine(p, 4, false);
    if (v != expected) {
        refine(queue_of(p), 1, true);
        if (tracing_)
            note("futex_wait " + where(p) + ": value " + std::to_string(v) +
                 " != " + std::to_string(expected) + ", returns");
        return true;
    }
    if (tracing_)
        note("futex_wait " + where(p) + " (value " + std::to_string(v) + ")" +
             (has_deadline ? " with deadline" : "") + ": sleeps");
    return block(State::futex, p, has_deadline);
}

void Scheduler::futex_wake(const void* p, int count) {
    announce(Op::sync, p, 4);
    yield();
    const bool own_store = buffered_in(p, 4);
    drain(running_, 0);
    if (c11_) c11_futex(*this, p, false);
    int woken = wake(State::futex, p, count);
    // A wake reads no word, and writes the queue only where it woke someone.
    if (!own_store) refine(p, 4, true);
    if (woken == 0) refine(queue_of(p), 1, false);
    if (tracing_) note("futex_wake " + where(p) + ": woke " + std::to_string(woken));
}

// A spinner sleeps until memory it read while deciding to spin holds
// another value: spinning on unchanged memory changes nothing, so
// schedules that only re-run the check are not worth exploring, and a
// spinner nobody will release is reported as a deadlock.
bool Scheduler::spin_wait(bool has_deadline) {
    Thread& t = threads_[running_];
    // A write between two of the reads made them stale already: check
    // again at once rather than wait for a write that may never come.
    bool stale = false;
    for (const Store& r : t.reads) stale = stale || read_changed(t, r);
    if (por_) por_spin_failed();  // the iteration was a stutter (explorer_search.cpp)
    if (stale) {
        t.reads.clear();
        if (tracing_) note("spins: memory already changed, checks again");
        return true;
    }
    if (tracing_) note(std::string("spins") + (has_deadline ? " with deadline" : ""));
    const bool ok = block(State::spin, nullptr, has_deadline);
    threads_[running_].reads.clear();
    if (por_) por_spin_begin();  // the next iteration starts in the step that resumed it
    return ok;
}

void Scheduler::spin_begin() {
    if (running_ >= 0) threads_[running_].reads.clear();
    if (por_) por_spin_begin();
}

void Scheduler::event_wait(const void* e) {
    announce(Op::sync, e, 1);
    yield();
    check_alive(e, 1);
    drain(running_, 0);
    auto* signalled =
        static_cast<bool*>(const_cast<void*>(e));  // EventGate::signalled is its first member
    if (*signalled) {
        *signalled = false;
        if (c11_) c11_event(*this, e, false);
        if (tracing_) note("event_wait " + where(e) + ": signalled, consumed");
        return;
    }
    if (tracing_) note("event_wait " + where(e) + ": sleeps");
    block(State::event, e, false);
    if (c11_) c11_event(*this, e, false);
}

void Scheduler::event_signal(const void* e, bool* signalled) {
    announce(Op::sync, e, 1);
    yield();
    check_alive(e, 1);
    drain(running_, 0);
    if (c11_) c11_event(*this, e, true);
    if (wake(State::event, e, 1) == 1) {
        if (tracing_) note("event_signal " + where(e) + ": woke a waiter");
    } else {
        *signalled = true;
        if (tracing_) note("event_signal " + where(e) + ": set");
    }
}

// Freeing memory orders the thread's own earlier stores before it (the
// allocator makes locked operations): its buffer drains first.
void Scheduler::destroy(const void* p, std::size_t size) {
    if (running_ >= 0) drain(running_, 0);
    if (c11_) c11_forget(*this, p, size);
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    destroyed_.emplace_back(a, a + size);
    if (tracing_) note("destroys " + where(p));
    // A spinner that read this memory checks again, and so touches it: a
    // thread spinning on memory that is freed under it is a use after free,
    // which a spinner asleep until a write that never comes would hide (and
    // the reduction counts a failed spin iteration as a stutter only because
    // what ends the wait wakes the spinner).
    for (auto& t : threads_) {
        if (t.state != State::spin) continue;
        for (const Store& r : t.reads) {
            const auto ra = reinterpret_cast<std::uintptr_t>(r.addr);
            if (ra < a + size && ra + r.size > a) t.state = State::runnable;
        }
    }
}

void Scheduler::label(const void* p, std::size_t size, const char* name) {
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    labels_.push_back({a, a + size, name});
}

void Scheduler::flush_one(int i) {
    if (tracing_) {
        const Store st = threads_[i].buffer.front();
        trace_line(i, "buffer drains " + where(st.addr) + " := " + show(&st.bits, st.size),
                   Level::raw);
    }
    drain(i, 1);
}

bool Scheduler::block(State s, const void* addr, bool has_deadline) {
    Thread& t = threads_[running_];
    t.state = s;
    t.wait_addr = addr;
    t.has_deadline = has_deadline;
    t.timed_out = false;
    t.wait_seq = ++seq_;
    if (tracing_) {
        trace_line(running_,
                   s == State::spin    ? std::string("spins until memory it read changes")
                   : s == State::event ? "sleeps on event " + where(addr)
                                       : "sleeps in futex_wait on " + where(addr),
                   Level::quiet);
    }
    switch_to_scheduler();
    return !t.timed_out;
}

int Scheduler::wake(State s, const void* addr, int count) {
    int woken = 0;
    while (woken < count) {
        Thread* first = nullptr;
        std::size_t which = 0;
        for (std::size_t i = 0; i < threads_.size(); ++i) {
            Thread& t = threads_[i];
            if (t.state == s && t.wait_addr == addr && (!first || t.wait_seq < first->wait_seq)) {
                first = &t;
                which = i;
            }
        }
        if (!first) break;
        first->state = State::runnable;
        ++woken;
        if (tracing_) trace_line(running_, "wakes T" + std::to_string(which), Level::quiet);
    }
    return woken;
}

void Scheduler::remember_read(const void* p, const void* value, std::size_t size) {
    if (running_ < 0) return;
    Store r{const_cast<void*>(p), size, 0};
    std::memcpy(&r.bits, value, size);
    threads_[running_].reads.push_back(r);
}

// Whether thread t would now read another value than `r` recorded: its own
// newest buffered store there if it has one (as load() reads), else memory.
// (Memory alone would wake a spinner whose own store to the word is still
// buffered at every write anywhere, and miss the change once its store has
// drained and another thread's lands.)
bool Scheduler::read_changed(const Thread& t, const Store& r) const {
    for (auto it = t.buffer.rbegin(); it != t.buffer.rend(); ++it) {
        if (it->addr == r.addr) return std::memcmp(&it->bits, &r.bits, r.size) != 0;
    }
    return std::memcmp(r.addr, &r.bits, r.size) != 0;
}

void Scheduler::memory_written() {
    for (auto& t : threads_) {
        if (t.state != State::spin) continue;
        bool changed = t.reads.empty();
        for (const Store& r : t.reads) changed = changed || read_changed(t, r);
        if (changed) t.state = State::runnable;
    }
}

// Drains `n` stores (0: all) of thread i's buffer, oldest first.
// A store that reaches destroyed memory is a violation of the thread
// that made it, whenever its buffer drains (on a fiber the run ends at
// once; in the scheduler the loop sees violation_).
void Scheduler::drain(int i, std::size_t n) {
    auto& buf = threads_[i].buffer;
    if (buf.empty()) return;
    if (n == 0) n = buf.size();
    for (; n > 0 && !buf.empty(); --n) {
        const Store s = buf.front();
        buf.pop_front();
        if (destroyed(s.addr, s.size) && violation_.empty()) {
            set_violation('T' + std::to_string(i) +
                          ": a buffered store reached destroyed memory at " + where(s.addr));
            if (running_ >= 0) end_run();
            return;
        }
        std::memcpy(s.addr, &s.bits, s.size);
    }
    memory_written();
}

// "Has the deadline passed?" asked by a running thread: a step, then a
// choice between "not yet" (T<n>, free) and "yes" (D<n>, a preemption's
// cost: like a timeout while others could run, it is time passing at a
// moment the program did not wait for).
bool Scheduler::deadline_passed() {
    announce(Op::time);  // no memory: a choice of this thread's alone (explorer_search.cpp)
    yield();
    int chosen = -1;
    bool passed = false;
    {  // nothing owning memory may be alive on this stack if the run ends
        const std::vector<Option> opts{{OptKind::run, running_, 0},
                                       {OptKind::deadline, running_, 1}};
        ++steps_;
        chosen = decide_or_abort(opts);
        if (chosen >= 0) passed = opts[chosen].kind == OptKind::deadline;
    }
    if (chosen < 0) end_run();
    if (tracing_ && passed) trace_line(running_, "finds its deadline passed");
    went_on();
    return passed;
}

bool Scheduler::destroyed(const void* p, std::size_t size) const {
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    for (const auto& [lo, hi] : destroyed_) {
        if (a < hi && a + size > lo) return true;
    }
    return false;
}

}  // namespace kmlab::explore::internal
