// How a thread that cannot proceed waits, and how it is woken.
//
// A backend is a stateless type with a printable name() (used in test and
// benchmark names) and one of two shapes:
//
//  * a parking backend (Futex, Spin): the futex contract below, over which
//    the generic lock algorithms run (ParkingBackend);
//  * a kernel-object backend (Dispatcher, `kKernelObjects = true`): the locks
//    over it are the emulated kernel's own KMUTEX / FAST_MUTEX / KGUARDED_MUTEX
//    objects, and it needs no wait/wake of its own (kernel_objects<B>).
//
// A parking backend's members:
//
//   wait(word, expected, deadline)  block while `word == expected`; returns false
//                                   only if `deadline` passed (never() does not;
//                                   poll() has: it may not block at all).
//                                   May return early (spuriously): callers re-check.
//   wake_one(word)                  wake one thread blocked in wait(word, ...) (no lock
//                                   wakes more than one per release, so there is no wake_all)
//
// and, optionally, policy that the lock algorithms read through the traits
// below:
//
//   kNeverSleeps      waiters poll instead of sleeping: a lock may release
//                     with a plain store and skip the wake
//   kSpinBeforePark   how long a lock spins on its word before it parks
//   platform          the platform/platform.hpp seam it runs on (the
//                     schedule explorer's model backends name theirs)
//
// The contract is the futex contract: the check of `word` against `expected`
// and the decision to sleep are atomic with respect to wake_*(), so a waker
// that changes `word` and then calls wake_*() can never be missed. A wake_*()
// on a word whose memory has been freed since must be harmless (a futex wake
// is only a system call on an address): the locks rely on it to be safe to
// destroy right after unlock.
// Mutex algorithms are written once against this concept (kmlab/kernel/lock_bit.hpp,
// mutexes/raw.hpp); each backend lives in its own header.
#pragma once

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <string_view>

#include <kmlab/platform/platform.hpp>

namespace kmlab::backends {

// The word type a backend waits on: its platform's atomic<uint32_t>.
template <class B>
using wait_word = typename platform::platform_of<B>::template atomic<std::uint32_t>;

template <class B>
concept NamedBackend = requires {
    { B::name() } -> std::convertible_to<std::string_view>;
};

template <class B>
concept ParkingBackend = NamedBackend<B> &&
    requires(wait_word<B>& word, std::uint32_t v, Deadline dl) {
    { B::wait(word, v, dl) } -> std::same_as<bool>;
    { B::wake_one(word) } -> std::same_as<void>;
};

// True for backends whose locks are the emulated kernel's own objects.
template <class B>
inline constexpr bool kernel_objects = requires {
    requires B::kKernelObjects;
};

template <class B>
concept WaitBackend = ParkingBackend<B> ||(NamedBackend<B>&& kernel_objects<B>);

// True for backends whose waiters poll instead of sleeping (kNeverSleeps):
// a lock over them may release with a plain store and skip the wake.
template <class B>
inline constexpr bool never_sleeps = requires {
    requires B::kNeverSleeps;
};

using platform::spin_before_park;

}  // namespace kmlab::backends
