// Six defects of the emulated kernel and the idiomatic KMutex, each found by
// a program under the schedule explorer before it was fixed (issue 19, "Found
// by the explorer first, then fixed"). Each test failed on the code before
// its fix; the fix and the decision behind it are written beside the code
// each test names.
//
// The programs run the real kernel (kernel/src) with the dispatcher's lock
// and parking under the model (DispatcherUnderModel), one KTHREAD per fiber.
// A thread that exits calls the kernel's own exit path
// (kernel::exit_current_thread: rundown, the thread object signalled).
// Bug checks and raised statuses are C++ exceptions: each is caught inside the
// fiber that raised it, with no scheduling point inside the catch (the C++
// runtime's exception state is not swapped per fiber). Bug checks that no
// caller can catch (thread exit) go to a recording handler that returns, as a
// debugger's `g` lets Windows go on.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <kmlab/explore.hpp>
#include <kmlab/explore/dispatcher.hpp>
#include <kmlab/kernel/routines.hpp>
#include <kmlab/kmlab.hpp>
#include <kmlab/platform/deadline.hpp>
#include "dispatcher_core.hpp"
#include "model_program.hpp"

namespace kmlab::explore {
namespace {

// ---- what every program here shares ----

// Bug checks delivered to the fatal handler during the current run.
std::vector<nt::ULONG>& fatal_codes() {
    static std::vector<nt::ULONG> codes;
    return codes;
}
void record_fatal(const BugCheck& bc) {
    fatal_codes().push_back(bc.code());
}
// Installs the recording handler for one test.
struct RecordFatal {
    BugCheckHandler previous = set_bug_check_handler(&record_fatal);
    ~RecordFatal() { set_bug_check_handler(previous); }
};

// explore::fail takes a C string and ends the run inside the call: the
// message is formatted into storage that outlives it.
[[noreturn]] void failf(const char* format, unsigned long a = 0, unsigned long b = 0) {
    static char message[256];
    std::snprintf(message, sizeof message, format, a, b);
    fail(message);
}

// One KTHREAD per model thread. The state keeps a reference of its own, so
// a thread that exits (exit_current_thread drops the running thread's) is
// still readable by the final check.
struct Threads {
    std::vector<nt::PKTHREAD> t;
    explicit Threads(std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) {
            t.push_back(kernel::create_thread_object(false));
            kernel::reference_thread(t.back());
        }
    }
    ~Threads() {
        // A thread whose run ended before its exit still has the running
        // thread's reference: give it back too.
        for (auto* th : t) {
            if (!th->Terminated) {
                kernel::detail::abandon_thread(th);
                kernel::dereference_thread(th);
            }
            kernel::dereference_thread(th);
        }
    }
    void enter(std::size_t i) const { kernel::detail::tls_current_thread = t[i]; }
};

Config model_config(Memory m = Memory::sc) {
    Config c;
    c.memory = m;
    c.preemption_bound = std::max(kSanitized ? 1 : 2, bound_override());
    c.fiber_locals = DispatcherUnderModel::fiber_locals();
    return c;
}

Result run_program(const std::string& name, const Config& c, const std::function<Program()>& make) {
    fatal_codes().clear();
    const Result r = explore(c, make);
    report(name, c, r);
    return r;
}

// A relative timeout of one hour: under the model it expires only when the
// scheduler says so.
nt::LARGE_INTEGER one_hour() {
    nt::LARGE_INTEGER li{};
    li.QuadPart = -36'000'000'000LL;
    return li;
}

// Waits for thread `t` to end (its thread object signalled).
void join(nt::PKTHREAD t) {
    const nt::NTSTATUS st =
        nt::KeWaitForSingleObject(t, nt::Executive, nt::KernelMode, nt::FALSE, nullptr);
    if (st != nt::STATUS_SUCCESS) failf("the join returned 0x%lX", static_cast<nt::ULONG>(st));
}

// ---- (1) KeDelayExecutionThread inside a Wait = TRUE hold ----
// T0 sets an event with Wait = TRUE and then delays, as a driver may (the
// hold ends with the next KeWaitXxx, and KeDelayExecutionThread is one
// [ros-wait]); T1 waits on the event. The delay's IRQL rule must read the
// IRQL the thread had before the hold (WaitIrql, PASSIVE_LEVEL here), not the
// DISPATCH_LEVEL the hold raised it to.
TEST(ModelDefects, DelayInsideAWaitNextHoldChecksWaitIrql) {
    RecordFatal record;
    DispatcherUnderModel dut;
    dispatcher::set_lock_mode(dispatcher::LockMode::global);
    struct State {
        Threads threads{2};
        nt::KEVENT event;
        State() { nt::KeInitializeEvent(&event, nt::SynchronizationEvent, nt::FALSE); }
    };
    auto make = [&dut] {
        dut.reset();
        auto s = std::make_shared<State>();
        Program p;
        p.threads.push_back([s] {
            s->threads.enter(0);
            label(&s->event, sizeof s->event, "event");
            nt::LARGE_INTEGER interval = one_hour();
            nt::NTSTATUS st = nt::STATUS_PENDING;
            nt::ULONG code = 0;
            nt::KIRQL irql = 0;
            nt::KeSetEvent(&s->event, nt::IO_NO_INCREMENT, nt::TRUE);
            try {
                st = nt::KeDelayExecutionThread(nt::KernelMode, nt::FALSE, &interval);
            } catch (const BugCheck& bc) {
                code = bc.code();
                irql = static_cast<nt::KIRQL>(bc.parameter(2));
            }
            if (code != 0)
                failf(
                    "KeDelayExecutionThread after KeSetEvent(Wait = TRUE) at PASSIVE_LEVEL bug "
                    "checked 0x%lX at IRQL %lu (the hold's raised IRQL, not WaitIrql)",
                    code, irql);
            if (st != nt::STATUS_SUCCESS)
                failf("the delay returned 0x%lX, not STATUS_SUCCESS", static_cast<nt::ULONG>(st));
            if (kernel::current_thread()->Irql != nt::PASSIVE_LEVEL ||
                kernel::current_thread()->WaitNext)
                fail("the delay did not end the Wait = TRUE hold at WaitIrql");
        });
        p.threads.push_back([s] {
            s->threads.enter(1);
            const nt::NTSTATUS st = nt::KeWaitForSingleObject(&s->event, nt::Executive,
                                                              nt::KernelMode, nt::FALSE, nullptr);
            if (st != nt::STATUS_SUCCESS)
                failf("the waiter returned 0x%lX", static_cast<nt::ULONG>(st));
        });
        p.check = [] { return std::string(); };
        return p;
    };
    const Config c = model_config();
    const Result r = run_program("defect 1 KeDelayExecutionThread in a hold", c, make);
    EXPECT_FALSE(r.violation) << describe(r);
    EXPECT_TRUE(r.complete);
}

// ---- (2) a FAST_MUTEX / KGUARDED_MUTEX held at thread exit ----
// T0 acquires the mutex and exits holding it: thread exit bug checks
// KERNEL_APC_PENDING_DURING_EXIT (0x20) [bc:0x20]. Once the handler returns,
// the mutex must be free for T1, as a KMUTEX held at exit is abandoned to the
// next acquirer (kernel/src/dispatcher.cpp, rundown_thread): else T1 blocks
// forever behind a dead owner (the explorer reports the deadlock). T1 then
// joins T0 and takes the mutex once more, so that every schedule ends with an
// acquire after the exit: nothing records what a thread holds, and a mutex
// left by a dead owner is released on its behalf by its next acquirer (or by
// the rundown, for one already waiting), not at the exit itself
// (fast_mutex.cpp, "A mutex held by a thread that exits").
template <bool Guarded>
void held_at_exit_is_released() {
    RecordFatal record;
    DispatcherUnderModel dut;
    dispatcher::set_lock_mode(dispatcher::LockMode::global);
    struct State {
        Threads threads{2};
        nt::FAST_MUTEX fast;
        nt::KGUARDED_MUTEX guarded;
        bool t1_acquired = false;
        State() {
            nt::ExInitializeFastMutex(&fast);
            nt::KeInitializeGuardedMutex(&guarded);
        }
        void acquire() {
            if constexpr (Guarded) {
                nt::KeAcquireGuardedMutex(&guarded);
            } else {
                nt::ExAcquireFastMutex(&fast);
            }
        }
        void release() {
            if constexpr (Guarded) {
                nt::KeReleaseGuardedMutex(&guarded);
            } else {
                nt::ExReleaseFastMutex(&fast);
            }
        }
    };
    auto make = [&dut] {
        dut.reset();
        auto s = std::make_shared<State>();
        Program p;
        p.threads.push_back([s] {
            s->threads.enter(0);
            label(Guarded ? static_cast<void*>(&s->guarded) : static_cast<void*>(&s->fast),
                  Guarded ? sizeof s->guarded : sizeof s->fast, "mutex");
            s->acquire();
            kernel::exit_current_thread();  // still holding it
        });
        p.threads.push_back([s] {
            s->threads.enter(1);
            s->acquire();
            s->t1_acquired = true;
            s->release();
            join(s->threads.t[0]);
            s->acquire();
            s->release();
        });
        p.check = [s]() -> std::string {
            if (!s->t1_acquired) return "T1 never acquired the mutex";
            const nt::LONG count = Guarded ? s->guarded.Count : s->fast.Count;
            const nt::PKTHREAD owner = Guarded ? s->guarded.Owner : s->fast.Owner;
            if (count != nt::FM_LOCK_BIT || owner != nullptr)
                return "the mutex is not free after both threads are done";
            if (s->threads.t[1]->Irql != nt::PASSIVE_LEVEL ||
                s->threads.t[1]->CombinedApcDisable != 0)
                return "T1 was left at a raised IRQL or in a region";
            return {};
        };
        return p;
    };
    const Config c = model_config();
    const Result r = run_program(
        Guarded ? "defect 2 KGUARDED_MUTEX held at exit" : "defect 2 FAST_MUTEX held at exit", c,
        make);
    EXPECT_FALSE(r.violation) << describe(r);
    EXPECT_TRUE(r.complete);
    const auto& codes = fatal_codes();
    EXPECT_TRUE(std::all_of(codes.begin(), codes.end(), [](nt::ULONG code) {
        return code == bugcheck::KERNEL_APC_PENDING_DURING_EXIT;
    })) << "thread exit reported another bug check";
    EXPECT_FALSE(codes.empty()) << "thread exit holding the mutex reported nothing";
}
TEST(ModelDefects, FastMutexHeldAtExitIsReleasedAfterTheHandlerReturns) {
    held_at_exit_is_released<false>();
}
TEST(ModelDefects, GuardedMutexHeldAtExitIsReleasedAfterTheHandlerReturns) {
    held_at_exit_is_released<true>();
}

// Releases out of order before an exit: T0 takes A, B, C, releases B and
// then A, takes D and exits holding C and D. Both must be released on T0's
// behalf (T1 takes each after), A and B never again. (The first fix kept a
// per-thread record of the mutexes held, which this exercised; the release
// needs none now: fast_mutex.cpp, "A mutex held by a thread that exits".)
TEST(ModelDefects, FastMutexesReleasedOutOfOrderAreNotReleasedAgainAtExit) {
    RecordFatal record;
    DispatcherUnderModel dut;
    dispatcher::set_lock_mode(dispatcher::LockMode::global);
    struct State {
        Threads threads{2};
        nt::FAST_MUTEX m[4];
        State() {
            for (auto& f : m) nt::ExInitializeFastMutex(&f);
        }
    };
    auto make = [&dut] {
        dut.reset();
        auto s = std::make_shared<State>();
        Program p;
        p.threads.push_back([s] {
            s->threads.enter(0);
            nt::ExAcquireFastMutex(&s->m[0]);
            nt::ExAcquireFastMutex(&s->m[1]);
            nt::ExAcquireFastMutex(&s->m[2]);
            nt::ExReleaseFastMutex(&s->m[1]);  // out of order
            nt::ExReleaseFastMutex(&s->m[0]);
            nt::ExAcquireFastMutex(&s->m[3]);
            for (int i = 0; i < 4; ++i) {
                if ((dispatcher::load_owner(s->m[i].Owner) == s->threads.t[0]) != (i >= 2))
                    fail("T0 does not own exactly C and D before its exit");
            }
            kernel::exit_current_thread();  // holding m[2] and m[3]
        });
        p.threads.push_back([s] {
            s->threads.enter(1);
            join(s->threads.t[0]);
            for (int i : {3, 2}) {
                nt::ExAcquireFastMutex(&s->m[i]);
                nt::ExReleaseFastMutex(&s->m[i]);
            }
        });
        p.check = [s]() -> std::string {
            for (const auto& f : s->m) {
                if (f.Count != nt::FM_LOCK_BIT || f.Owner != nullptr)
                    return "a fast mutex is not free after both threads are done";
            }
            return {};
        };
        return p;
    };
    const Config c = model_config();
    const Result r = run_program("defect 2 out-of-order releases, then exit", c, make);
    EXPECT_FALSE(r.violation) << describe(r);
    EXPECT_TRUE(r.complete);
}

// ---- (2) continued: the races of releasing a dead owner's mutex ----
// Nothing records which mutexes a thread holds: at its exit the rundown
// releases the ones threads already wait for (b), and a later acquirer
// releases one on the dead owner's behalf before it blocks (c), each claim
// a compare-exchange of Owner from the dead thread to null (fast_mutex.cpp,
// "A mutex held by a thread that exits"). Each program forces one of the
// races; the final checks ask for the mutex back in its initial state.

// One FAST_MUTEX or KGUARDED_MUTEX behind one interface.
template <bool Guarded>
struct GateMutex {
    nt::FAST_MUTEX fast;
    nt::KGUARDED_MUTEX guarded;
    GateMutex() {
        nt::ExInitializeFastMutex(&fast);
        nt::KeInitializeGuardedMutex(&guarded);
    }
    void name(const char* n) {
        if constexpr (Guarded) {
            label(&guarded, sizeof guarded, n);
        } else {
            label(&fast, sizeof fast, n);
        }
    }
    void acquire() {
        if constexpr (Guarded) {
            nt::KeAcquireGuardedMutex(&guarded);
        } else {
            nt::ExAcquireFastMutex(&fast);
        }
    }
    bool try_acquire() {
        if constexpr (Guarded) {
            return nt::KeTryToAcquireGuardedMutex(&guarded) != nt::FALSE;
        } else {
            return nt::ExTryToAcquireFastMutex(&fast) != nt::FALSE;
        }
    }
    void release() {
        if constexpr (Guarded) {
            nt::KeReleaseGuardedMutex(&guarded);
        } else {
            nt::ExReleaseFastMutex(&fast);
        }
    }
    nt::LONG& count() { return Guarded ? guarded.Count : fast.Count; }
    nt::PKTHREAD owner() { return dispatcher::load_owner(Guarded ? guarded.Owner : fast.Owner); }
    std::string check_free(const char* what) {
        if (count() != nt::FM_LOCK_BIT || owner() != nullptr)
            return std::string(what) + " is not free after every thread is done";
        return {};
    }
};

// Blocks the running model thread until `m`'s Count shows a blocked waiter.
template <bool Guarded>
void wait_for_a_waiter(GateMutex<Guarded>& m) {
    AtomicRef<nt::LONG> count(m.count());
    Platform::spin_until([&] { return count.load() >= nt::FM_LOCK_WAITER_INC; }, Deadline::never());
}

// The mutants of the protocol (defined in the explorer's copy of
// fast_mutex.cpp only, which says what each breaks): 1 a claim by load and
// plain store, 2 the rundown reads a waiter's mutex unpinned, 3 no release
// by the rundown, 4 no release by a later acquirer.
}  // namespace
}  // namespace kmlab::explore
namespace kmlab::dispatcher::testing {
void set_gate_lock_mutant(int mutant) noexcept;
}  // namespace kmlab::dispatcher::testing
namespace kmlab::explore {
namespace {
struct GateLockMutant {
    explicit GateLockMutant(int mutant) { dispatcher::testing::set_gate_lock_mutant(mutant); }
    ~GateLockMutant() { dispatcher::testing::set_gate_lock_mutant(0); }
    GateLockMutant(const GateLockMutant&) = delete;
    GateLockMutant& operator=(const GateLockMutant&) = delete;
};

template <bool Guarded>
Result explore_exit_program(const std::string& name, Memory memory,
                            const std::function<Program(DispatcherUnderModel&)>& program) {
    DispatcherUnderModel dut;
    dispatcher::set_lock_mode(dispatcher::LockMode::global);
    const Config c = model_config(memory);
    return run_program(std::string(Guarded ? "KGUARDED_MUTEX " : "FAST_MUTEX ") + name +
                           (memory == Memory::tso ? " (tso)" : ""),
                       c, [&] { return program(dut); });
}

// (b): T1 blocks on the mutex before T0 exits holding it (T0 waits for T1's
// waiter mark first); T0's rundown must release it for T1.
template <bool Guarded>
Program waiter_blocked_before_the_exit(DispatcherUnderModel& dut) {
    dut.reset();
    struct State {
        Threads threads{2};
        GateMutex<Guarded> m;
        bool t1_acquired = false;
    };
    auto s = std::make_shared<State>();
    Program p;
    p.threads.push_back([s] {
        s->threads.enter(0);
        s->m.name("mutex");
        s->m.acquire();
        wait_for_a_waiter(s->m);
        kernel::exit_current_thread();  // still holding it, T1 blocked on it
    });
    p.threads.push_back([s] {
        s->threads.enter(1);
        AtomicRef<nt::LONG> count(s->m.count());
        Platform::spin_until([&] { return (count.load() & nt::FM_LOCK_BIT) == 0; },
                             Deadline::never());  // T0 holds it
        s->m.acquire();
        s->t1_acquired = true;
        s->m.release();
    });
    p.check = [s]() -> std::string {
        if (!s->t1_acquired) return "T1 never acquired the mutex";
        return s->m.check_free("the mutex");
    };
    return p;
}

// (c): T1 and, with `two`, T2 join T0 (so they come after its exit) and then
// take the mutex T0 exited holding: the first to find it releases it on
// T0's behalf; with two, exactly one of them may. T1 tries first (a try
// after the exit must succeed while nobody else holds it: T1 alone).
template <bool Guarded, bool Two>
Program acquirers_after_the_exit(DispatcherUnderModel& dut) {
    dut.reset();
    struct State {
        Threads threads{Two ? 3u : 2u};
        GateMutex<Guarded> m;
        Atomic<int> inside{0};
        int acquired = 0;
    };
    auto s = std::make_shared<State>();
    Program p;
    p.threads.push_back([s] {
        s->threads.enter(0);
        s->m.name("mutex");
        label(&s->inside, sizeof s->inside, "inside");
        s->m.acquire();
        kernel::exit_current_thread();
    });
    for (std::size_t i = 1; i < (Two ? 3u : 2u); ++i) {
        p.threads.push_back([s, i] {
            s->threads.enter(i);
            join(s->threads.t[0]);
            if (!Two) {
                if (!s->m.try_acquire())
                    fail("a try-acquire after the owner exited holding the mutex failed");
            } else {
                s->m.acquire();
            }
            if (s->inside.fetch_add(1) != 0) fail("two threads hold the mutex at once");
            ++s->acquired;
            s->inside.fetch_sub(1);
            s->m.release();
        });
    }
    p.check = [s]() -> std::string {
        if (s->acquired != (Two ? 2 : 1)) return "an acquirer never got the mutex";
        return s->m.check_free("the mutex");
    };
    return p;
}

// The windows between Count and Owner: T1 and T2 take mutex M in turn while
// T0 exits holding another one, N. T0's rundown reads M's Owner for the
// waiter of M it finds, and may find M's Count taken while Owner is still
// (or already) null: it must leave M alone (two holders of M otherwise).
template <bool Guarded>
Program exit_between_count_and_owner(DispatcherUnderModel& dut) {
    dut.reset();
    struct State {
        Threads threads{3};
        GateMutex<Guarded> m;
        GateMutex<Guarded> n;
        Atomic<int> inside{0};
        int acquired = 0;
    };
    auto s = std::make_shared<State>();
    Program p;
    p.threads.push_back([s] {
        s->threads.enter(0);
        s->m.name("M");
        s->n.name("N");
        label(&s->inside, sizeof s->inside, "inside");
        s->n.acquire();
        kernel::exit_current_thread();  // holding N
    });
    for (std::size_t i = 1; i < 3; ++i) {
        p.threads.push_back([s, i] {
            s->threads.enter(i);
            s->m.acquire();
            if (s->inside.fetch_add(1) != 0) fail("two threads hold M at once");
            ++s->acquired;
            s->inside.fetch_sub(1);
            s->m.release();
        });
    }
    p.check = [s]() -> std::string {
        if (s->acquired != 2) return "a thread never got M";
        if (s->n.owner() != s->threads.t[0]) return "N no longer names its dead owner";
        return s->m.check_free("M");
    };
    return p;
}

// A waiter that leaves its acquire while an exiting thread examines it: T2
// blocks on M while T1 holds it (each waits for the other's step first), and
// T0 exits holding N once T2 is acquiring M, so its rundown reads the mutex
// T2 is acquiring; T1 then releases M, joins T2 and destroys M. The rundown
// pins T2's word before it touches M, and T2 does not leave its acquire
// while pinned: no access to M may follow its destruction.
template <bool Guarded>
Program exit_while_a_waiter_frees_its_mutex(DispatcherUnderModel& dut) {
    dut.reset();
    struct State {
        Threads threads{3};
        GateMutex<Guarded> m;
        GateMutex<Guarded> n;
        Atomic<int> t1_released{0};
    };
    auto s = std::make_shared<State>();
    Program p;
    p.threads.push_back([s] {
        s->threads.enter(0);
        s->m.name("M");
        s->n.name("N");
        s->n.acquire();
        // T2 is acquiring M (its word names M, as the rundown reads it), or
        // was: T1 holds M until T2 waits. Neither read touches M, which T1
        // may destroy once it has released it.
        AtomicRef<std::uintptr_t> wanted(s->threads.t[2]->Extra->gate_lock_wanted);
        Platform::spin_until([&] { return s->t1_released.load() != 0 || wanted.load() != 0; },
                             Deadline::never());
        kernel::exit_current_thread();  // holding N
    });
    p.threads.push_back([s] {
        s->threads.enter(1);
        s->m.acquire();
        wait_for_a_waiter(s->m);
        s->m.release();
        s->t1_released.store(1);
        join(s->threads.t[2]);
        destroy(&s->m, sizeof s->m);  // M's last user is done
    });
    p.threads.push_back([s] {
        s->threads.enter(2);
        AtomicRef<nt::LONG> count(s->m.count());
        Platform::spin_until([&] { return (count.load() & nt::FM_LOCK_BIT) == 0; },
                             Deadline::never());  // T1 holds it
        s->m.acquire();
        s->m.release();
        kernel::exit_current_thread();  // signals its thread object for T1's join
    });
    p.check = [] { return std::string(); };
    return p;
}

template <bool Guarded>
void expect_clean(const Result& r) {
    EXPECT_FALSE(r.violation) << describe(r);
    EXPECT_TRUE(r.complete);
    const auto& codes = fatal_codes();
    EXPECT_TRUE(std::all_of(codes.begin(), codes.end(), [](nt::ULONG code) {
        return code == bugcheck::KERNEL_APC_PENDING_DURING_EXIT;
    })) << "thread exit reported another bug check";
}

TEST(ModelDefects, FastMutexWaiterBlockedBeforeTheExitIsReleasedByTheRundown) {
    RecordFatal record;
    for (Memory mem : {Memory::sc, Memory::tso})
        expect_clean<false>(explore_exit_program<false>("waiter blocked before the exit", mem,
                                                        waiter_blocked_before_the_exit<false>));
}
TEST(ModelDefects, GuardedMutexWaiterBlockedBeforeTheExitIsReleasedByTheRundown) {
    RecordFatal record;
    for (Memory mem : {Memory::sc, Memory::tso})
        expect_clean<true>(explore_exit_program<true>("waiter blocked before the exit", mem,
                                                      waiter_blocked_before_the_exit<true>));
}
TEST(ModelDefects, FastMutexTryAfterTheExitReleasesForTheDeadOwner) {
    RecordFatal record;
    for (Memory mem : {Memory::sc, Memory::tso})
        expect_clean<false>(explore_exit_program<false>("try after the exit", mem,
                                                        acquirers_after_the_exit<false, false>));
}
TEST(ModelDefects, GuardedMutexTryAfterTheExitReleasesForTheDeadOwner) {
    RecordFatal record;
    for (Memory mem : {Memory::sc, Memory::tso})
        expect_clean<true>(explore_exit_program<true>("try after the exit", mem,
                                                      acquirers_after_the_exit<true, false>));
}
TEST(ModelDefects, FastMutexTwoAcquirersAfterTheExitReleaseItOnce) {
    RecordFatal record;
    for (Memory mem : {Memory::sc, Memory::tso})
        expect_clean<false>(explore_exit_program<false>("two acquirers after the exit", mem,
                                                        acquirers_after_the_exit<false, true>));
}
TEST(ModelDefects, GuardedMutexTwoAcquirersAfterTheExitReleaseItOnce) {
    RecordFatal record;
    for (Memory mem : {Memory::sc, Memory::tso})
        expect_clean<true>(explore_exit_program<true>("two acquirers after the exit", mem,
                                                      acquirers_after_the_exit<true, true>));
}
TEST(ModelDefects, FastMutexExitBetweenAnotherThreadsCountAndOwnerLeavesItAlone) {
    RecordFatal record;
    expect_clean<false>(explore_exit_program<false>("exit between Count and Owner", Memory::sc,
                                                    exit_between_count_and_owner<false>));
}
TEST(ModelDefects, GuardedMutexExitBetweenAnotherThreadsCountAndOwnerLeavesItAlone) {
    RecordFatal record;
    expect_clean<true>(explore_exit_program<true>("exit between Count and Owner", Memory::sc,
                                                  exit_between_count_and_owner<true>));
}
TEST(ModelDefects, FastMutexExitWhileAWaiterFreesItsMutexDoesNotTouchIt) {
    RecordFatal record;
    expect_clean<false>(explore_exit_program<false>("exit while a waiter frees its mutex",
                                                    Memory::sc,
                                                    exit_while_a_waiter_frees_its_mutex<false>));
}
// The must-find mutants, each reported by the program it breaks: two
// acquirers after the exit both release the dead owner's hold (1); the
// rundown reads the mutex of a waiter that has left and destroyed it (2); a
// waiter blocked before the exit is never released (3); an acquirer after
// the exit blocks behind the dead owner (4).
void expect_found(int mutant, const char* name,
                  const std::function<Program(DispatcherUnderModel&)>& program) {
    RecordFatal record;
    GateLockMutant m(mutant);
    const Result r = explore_exit_program<false>(name, Memory::sc, program);
    EXPECT_TRUE(r.violation) << name << " went unreported";
}
TEST(ModelDefects, MutantRundownReadsAWaitersMutexUnpinnedIsFound) {
    expect_found(2, "MUTANT rundown reads unpinned", exit_while_a_waiter_frees_its_mutex<false>);
}
TEST(ModelDefects, MutantNoReleaseByTheRundownIsFound) {
    expect_found(3, "MUTANT no release by the rundown", waiter_blocked_before_the_exit<false>);
}
TEST(ModelDefects, MutantNoReleaseByALaterAcquirerIsFound) {
    expect_found(4, "MUTANT no release by a later acquirer",
                 acquirers_after_the_exit<false, false>);
}

// Last: its deadlocked run leaves threads blocked in a contended acquire,
// which a later rundown in this process would visit (see the report).
TEST(ModelDefects, MutantClaimByLoadAndStoreIsFound) {
    expect_found(1, "MUTANT claim by load and store", acquirers_after_the_exit<false, true>);
}
// ---- (3) the idiomatic lock() reports STATUS_ABANDONED ----
// Guard::abandoned() where it exists (false before the fix added it).
template <class G>
bool guard_abandoned(const G& g) {
    if constexpr (requires { g.abandoned(); }) {
        return g.abandoned();
    } else {
        return false;
    }
}

// T0 locks a KMutex and exits holding it (THREAD_TERMINATE_HELD_MUTEX to the
// handler, which returns: the mutex is abandoned). T1 locks it: when its
// acquisition follows T0's, the mutex came to it abandoned and its guard must
// say so (KeWaitForSingleObject returns STATUS_ABANDONED there
// [ros-kex][ddi:kewaitforsingleobject]); otherwise it must not.
template <class Backend>
void lock_reports_abandoned(const char* name) {
    RecordFatal record;
    DispatcherUnderModel dut;
    dispatcher::set_lock_mode(dispatcher::LockMode::global);
    using M = KMutex<int, Backend>;
    struct State {
        Threads threads{2};
        M mutex{0};
        bool t0_locked = false;
        alignas(typename M::Guard) unsigned char leaked[sizeof(typename M::Guard)];
    };
    auto make = [&dut] {
        dut.reset();
        auto s = std::make_shared<State>();
        Program p;
        p.threads.push_back([s] {
            s->threads.enter(0);
            auto g = s->mutex.lock();
            if (!g) fail("T0's lock() failed");
            s->t0_locked = true;
            new (s->leaked) typename M::Guard(std::move(*g));  // never released
            kernel::exit_current_thread();
        });
        p.threads.push_back([s] {
            s->threads.enter(1);
            auto g = s->mutex.lock();
            if (!g) fail("T1's lock() failed");
            const bool after_t0 = s->t0_locked;  // T0 never releases: then T0 has exited
            if (guard_abandoned(*g) != after_t0)
                failf(after_t0 ? "lock() after the owner exited holding the mutex did not report "
                                 "STATUS_ABANDONED (abandoned() = %lu)"
                               : "lock() of a mutex never abandoned reported STATUS_ABANDONED "
                                 "(abandoned() = %lu)",
                      guard_abandoned(*g));
        });
        p.check = [] { return std::string(); };
        return p;
    };
    const Config c = model_config();
    const Result r = run_program(name, c, make);
    EXPECT_FALSE(r.violation) << describe(r);
    EXPECT_TRUE(r.complete);
}
TEST(ModelDefects, LockReportsAbandonedOverTheDispatcher) {
    lock_reports_abandoned<backends::Dispatcher>("defect 3 KMutex<Dispatcher> lock() abandoned");
}
// The parking backends abandon the mutex themselves at thread exit
// (raw.hpp, abandon_at_exit): here over the model's Futex and Spin.
TEST(ModelDefects, LockReportsAbandonedOverFutex) {
    lock_reports_abandoned<Futex>("defect 3 KMutex<Futex> lock() abandoned");
}
TEST(ModelDefects, LockReportsAbandonedOverSpin) {
    lock_reports_abandoned<Spin>("defect 3 KMutex<Spin> lock() abandoned");
}

// ---- (4) a KMUTEX destroyed while owned ----
// T0 locks a KMutex over the dispatcher (a real KMUTEX), keeps the guard
// and destroys the mutex; T1 uses another KMutex meanwhile. The destroyed
// KMUTEX must no longer be on T0's MutantListHead: thread exit would walk
// it (and write to it) and report it as the mutex T0 holds.
TEST(ModelDefects, KMutexDestroyedWhileOwnedLeavesItsOwnersMutantList) {
    RecordFatal record;
    DispatcherUnderModel dut;
    dispatcher::set_lock_mode(dispatcher::LockMode::global);
    using M = KMutex<int, backends::Dispatcher>;
    struct State {
        Threads threads{2};
        alignas(M) unsigned char storage[sizeof(M)];
        M other{0};
        alignas(M::Guard) unsigned char leaked[sizeof(M::Guard)];
    };
    auto make = [&dut] {
        dut.reset();
        auto s = std::make_shared<State>();
        Program p;
        p.threads.push_back([s] {
            s->threads.enter(0);
            auto* m = new (s->storage) M(0);
            auto g = m->lock();
            if (!g) fail("T0's lock() failed");
            new (s->leaked) M::Guard(std::move(*g));  // kept: the mutex is destroyed owned
            m->~M();
            const nt::PLIST_ENTRY head = &s->threads.t[0]->MutantListHead;
            for (nt::PLIST_ENTRY e = head->Flink; e != head; e = e->Flink) {
                const auto* at = reinterpret_cast<const unsigned char*>(e);
                if (at >= s->storage && at < s->storage + sizeof s->storage)
                    fail("the KMUTEX destroyed while owned is still on its owner's MutantListHead");
            }
            kernel::exit_current_thread();
        });
        p.threads.push_back([s] {
            s->threads.enter(1);
            auto g = s->other.lock();
            if (!g) fail("T1's lock() failed");
        });
        p.check = [s]() -> std::string {
            if (!s->other.is_initial_state()) return "the other KMutex is not free";
            return {};
        };
        return p;
    };
    const Config c = model_config();
    const Result r = run_program("defect 4 KMUTEX destroyed while owned", c, make);
    EXPECT_FALSE(r.violation) << describe(r);
    EXPECT_TRUE(r.complete);
    for (nt::ULONG code : fatal_codes())
        EXPECT_NE(code, bugcheck::THREAD_TERMINATE_HELD_MUTEX)
            << "thread exit reported the destroyed KMUTEX as held";
}

// ---- (5) releasing a guard after its owner exited ----
// T0 locks a KMutex over the dispatcher, hands its guard over and exits
// holding the mutex (abandoned once the handler returns). T1 waits for T0's
// thread object and then unlocks the guard: it is not the owner, and the
// mutex is abandoned, so KeReleaseMutex would raise STATUS_ABANDONED
// [ros-mutex][ddi:kereleasemutex]. The guard's error must carry the same.
template <class Backend>
void releasing_a_guard_of_an_abandoned_mutex(const char* name) {
    RecordFatal record;
    DispatcherUnderModel dut;
    dispatcher::set_lock_mode(dispatcher::LockMode::global);
    using M = KMutex<int, Backend>;
    struct State {
        Threads threads{2};
        M mutex{0};
        typename M::Guard* handed = nullptr;
        alignas(typename M::Guard) unsigned char storage[sizeof(typename M::Guard)];
    };
    auto make = [&dut] {
        dut.reset();
        auto s = std::make_shared<State>();
        Program p;
        p.threads.push_back([s] {
            s->threads.enter(0);
            auto g = s->mutex.lock();
            if (!g) fail("T0's lock() failed");
            s->handed = new (s->storage) typename M::Guard(std::move(*g));  // never destroyed
            kernel::exit_current_thread();
        });
        p.threads.push_back([s] {
            s->threads.enter(1);
            nt::NTSTATUS st = nt::KeWaitForSingleObject(s->threads.t[0], nt::Executive,
                                                        nt::KernelMode, nt::FALSE, nullptr);
            if (st != nt::STATUS_SUCCESS)
                failf("the join returned 0x%lX", static_cast<nt::ULONG>(st));
            // What the kernel raises for this release, the mutex unchanged
            // (over the parking backends, what it raises for a KMUTEX in
            // that state).
            nt::NTSTATUS kernel_status = nt::STATUS_ABANDONED;
            if constexpr (std::is_same_v<Backend, backends::Dispatcher>) {
                kernel_status = nt::STATUS_SUCCESS;
                try {
                    nt::KeReleaseMutex(s->mutex.raw().native_handle(), nt::FALSE);
                } catch (const NtException& e) {
                    kernel_status = e.status();
                }
            }
            const auto r = s->handed->unlock();
            if (r) fail("a thread that does not own the mutex unlocked its guard");
            if (kernel_status != nt::STATUS_ABANDONED)
                failf("KeReleaseMutex of the abandoned KMUTEX raised 0x%lX",
                      static_cast<nt::ULONG>(kernel_status));
            if (r.error().status != kernel_status)
                failf("the guard's unlock() reported 0x%lX where KeReleaseMutex raises 0x%lX",
                      static_cast<nt::ULONG>(r.error().status),
                      static_cast<nt::ULONG>(kernel_status));
        });
        p.check = [] { return std::string(); };
        return p;
    };
    const Config c = model_config();
    const Result r = run_program(name, c, make);
    EXPECT_FALSE(r.violation) << describe(r);
    EXPECT_TRUE(r.complete);
}
TEST(ModelDefects, ReleasingAGuardOfAnAbandonedMutexReportsStatusAbandoned) {
    releasing_a_guard_of_an_abandoned_mutex<backends::Dispatcher>(
        "defect 5 KMutex<Dispatcher> guard after owner exit");
}
TEST(ModelDefects, ReleasingAGuardOfAnAbandonedFutexKMutexReportsStatusAbandoned) {
    releasing_a_guard_of_an_abandoned_mutex<Futex>("defect 5 KMutex<Futex> guard after owner exit");
}
TEST(ModelDefects, ReleasingAGuardOfAnAbandonedSpinKMutexReportsStatusAbandoned) {
    releasing_a_guard_of_an_abandoned_mutex<Spin>("defect 5 KMutex<Spin> guard after owner exit");
}

// ---- (6) KeReleaseMutant(Abandon = TRUE) by a thread that does not own it ----
// Per-object lock mode. T0 acquires mutant A and then mutant B (on another
// stripe); acquiring B links B into T0's MutantListHead under B's stripe. T1
// abandons A, which unlinks A from T0's list. The two edits of T0's list
// must exclude each other: the explorer has a scheduling point inside the
// unlink (objects.cpp), so that an edit the locks fail to order interleaves
// there. The final check walks T0's list.
std::string check_mutant_list(nt::PKTHREAD t, const std::vector<nt::PKMUTANT>& mutants) {
    const nt::PLIST_ENTRY head = &t->MutantListHead;
    std::size_t n = 0;
    for (nt::PLIST_ENTRY e = head->Flink; e != head; e = e->Flink) {
        if (e->Flink->Blink != e || ++n > mutants.size())
            return "T0's MutantListHead is torn (a link does not point back)";
        const auto* m = containing_record(e, &nt::KMUTANT::MutantListEntry);
        if (m->OwnerThread != t) return "T0's MutantListHead links a mutant T0 does not own";
    }
    if (head->Blink->Flink != head) return "T0's MutantListHead is torn at its tail";
    std::size_t owned = 0;
    for (auto* m : mutants) owned += m->OwnerThread == t ? 1 : 0;
    if (owned != n) return "a mutant T0 owns is missing from T0's MutantListHead";
    return {};
}

TEST(ModelDefects, AbandonByANonOwnerExcludesTheOwnersListEditsPerObject) {
    RecordFatal record;
    DispatcherUnderModel dut;
    dispatcher::set_lock_mode(dispatcher::LockMode::per_object);
    // At the same addresses in every run: the stripes they hash to decide
    // the order of the lock steps, which a replay must find again.
    static nt::KMUTANT pool[8];
    struct State {
        Threads threads{2};
        nt::PKMUTANT a = &pool[0];
        nt::PKMUTANT b = nullptr;
        State() {
            for (auto& m : pool) nt::KeInitializeMutant(&m, nt::FALSE);
            for (auto& m : pool) {
                if (dispatcher::stripe_index(&m) != dispatcher::stripe_index(a)) b = &m;
            }
        }
    };
    auto make = [&dut] {
        dut.reset();
        auto s = std::make_shared<State>();
        Program p;
        p.threads.push_back([s] {
            s->threads.enter(0);
            label(s->a, sizeof *s->a, "A");
            label(s->b, sizeof *s->b, "B");
            for (nt::PKMUTANT m : {s->a, s->b}) {
                const nt::NTSTATUS st =
                    nt::KeWaitForSingleObject(m, nt::Executive, nt::KernelMode, nt::FALSE, nullptr);
                if (st != nt::STATUS_SUCCESS && st != nt::STATUS_ABANDONED)
                    failf("T0's wait returned 0x%lX", static_cast<nt::ULONG>(st));
            }
        });
        p.threads.push_back([s] {
            s->threads.enter(1);
            nt::KeReleaseMutant(s->a, nt::MUTANT_INCREMENT, nt::TRUE, nt::FALSE);
        });
        p.check = [s] { return check_mutant_list(s->threads.t[0], {s->a, s->b}); };
        return p;
    };
    const Config c = model_config();
    const Result r = run_program("defect 6 KeReleaseMutant(Abandon) per-object", c, make);
    dispatcher::set_lock_mode(dispatcher::LockMode::global);
    ASSERT_NE(r.schedules, 0);
    EXPECT_FALSE(r.violation) << describe(r);
    EXPECT_TRUE(r.complete);
}

// Two threads exit at once (from a review), D1 holding A and D2 holding B,
// while W takes A and then B (its acquire of B may start before, during or
// after either rundown); another thread X takes B then A. Every mutex must
// come back free, each taken exactly once by W and X.
template <bool Guarded>
Program two_exits(DispatcherUnderModel& dut) {
    dut.reset();
    struct State {
        Threads threads{3};
        GateMutex<Guarded> a;
        GateMutex<Guarded> b;
        int w_done = 0;
    };
    auto s = std::make_shared<State>();
    Program p;
    p.threads.push_back([s] {
        s->threads.enter(0);
        s->a.name("A");
        s->b.name("B");
        s->a.acquire();
        kernel::exit_current_thread();  // holding A
    });
    p.threads.push_back([s] {
        s->threads.enter(1);
        s->b.acquire();
        kernel::exit_current_thread();  // holding B
    });
    p.threads.push_back([s] {
        s->threads.enter(2);
        s->a.acquire();
        s->b.acquire();
        ++s->w_done;
        s->b.release();
        s->a.release();
        // Lazily released: whatever a dead owner still holds goes to the
        // next acquirer, so acquire both once more after both exits.
        join(s->threads.t[0]);
        join(s->threads.t[1]);
        s->b.acquire();
        s->a.acquire();
        s->a.release();
        s->b.release();
    });
    p.check = [s]() -> std::string {
        if (s->w_done != 1) return "W never got both";
        if (auto e = s->a.check_free("A"); !e.empty()) return e;
        return s->b.check_free("B");
    };
    return p;
}
TEST(ModelDefects, FastMutexTwoExitsAtOnce) {
    RecordFatal record;
    for (Memory mem : {Memory::sc, Memory::tso})
        expect_clean<false>(
            explore_exit_program<false>("two exits at once", mem, two_exits<false>));
}
TEST(ModelDefects, GuardedMutexTwoExitsAtOnce) {
    RecordFatal record;
    for (Memory mem : {Memory::sc, Memory::tso})
        expect_clean<true>(explore_exit_program<true>("two exits at once", mem, two_exits<true>));
}
// Last: no KTHREAD left live by a run that ended early still names a mutex
// it waited for.
TEST(ModelDefects, ZNoLeftoverThreadNamesAMutex) {
    auto v = kernel::detail::reference_live_threads(nullptr);
    int wanted = 0;
    for (auto* t : v) {
        if (t->Extra->gate_lock_wanted != 0) ++wanted;
        kernel::dereference_thread(t);
    }
    EXPECT_EQ(wanted, 0);
}

}  // namespace
}  // namespace kmlab::explore
