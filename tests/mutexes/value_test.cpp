// The value itself, over every mutex type x backend: moved out with
// into_inner(), copied out with to_owned() (wdk-mutex's to_owned and
// to_owned_box), both checked as a lock is; printed through the guard
// (wdk-mutex's Display on its guards).
#include <iomanip>
#include <memory>
#include <sstream>
#include <string>
#include <version>
#if defined(__cpp_lib_format)
#include <format>
#endif

#include <kmlab/kmlab.hpp>
#include "mutex_types.hpp"
#include "support.hpp"

using namespace kmlab;
using namespace kmlab::nt;
using namespace std::chrono_literals;

namespace {
// The same mutex type and backend over another value type.
template <class M, class V>
struct Rebind;
template <class T, class B, class V>
struct Rebind<KMutex<T, B>, V> {
    using type = KMutex<V, B>;
};
template <class T, class B, class R, class V>
struct Rebind<detail::LockBitMutex<T, B, R>, V> {
    using type = detail::LockBitMutex<V, B, R>;
};
template <class M, class V>
using rebind = typename Rebind<M, V>::type;

struct Point {
    int x, y;
};
std::ostream& operator<<(std::ostream& os, const Point& p) {
    return os << '(' << p.x << ", " << p.y << ')';
}
struct Opaque {};  // neither streamable nor formattable

template <class G>
concept Streamable = requires(std::ostream& os, const G& g) {
    os << g;
};

template <class M>
concept CanIntoInnerAnLvalue = requires(M& m) {
    m.into_inner();
};
template <class M>
concept CanCopyOut = requires(M& m) {
    m.to_owned();
};
}  // namespace

template <class M>
class MutexValue : public kmlab::test::Nt {};
TYPED_TEST_SUITE(MutexValue, kmlab::test::AllMutexes, kmlab::test::MutexNames);

TYPED_TEST(MutexValue, IntoInnerMovesTheValueOutOfAFreeMutex) {
    using M = rebind<TypeParam, std::unique_ptr<long>>;
    static_assert(!CanIntoInnerAnLvalue<M>, "into_inner() consumes: std::move(m).into_inner()");
    static_assert(!CanCopyOut<M>, "to_owned() needs a copyable value");
    M m(std::make_unique<long>(42));
    {
        auto g = m.lock();
        ASSERT_TRUE(g);
        ***g += 1;
    }
    auto v = std::move(m).into_inner();
    ASSERT_TRUE(v) << v.error().message();
    ASSERT_NE(*v, nullptr);
    EXPECT_EQ(**v, 43);
    EXPECT_TRUE(m.is_initial_state()) << "taken for the move and released";
    EXPECT_EQ(*m.lock().value(), nullptr) << "left holding a moved-from value";
}

TYPED_TEST(MutexValue, IntoInnerRefusesWhileTheCallersGuardLives) {
    TypeParam m(7L);
    auto g = m.lock();
    ASSERT_TRUE(g);
    auto r = std::move(m).into_inner();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::guard_alive);
    EXPECT_EQ(r.error().mutex, &m);
    EXPECT_FALSE(r.error().is_bug_check());
    EXPECT_FALSE(r.error().message().empty());
    EXPECT_EQ(m.owner(), KeGetCurrentThread()) << "the guard still holds it";
    if constexpr (TypeParam::recursive) {
        EXPECT_EQ(m.signal_state(), 0) << "the nested acquisition was given back";
    }
    EXPECT_EQ(**g, 7) << "and its value is untouched";
    ASSERT_TRUE(g->unlock());
    EXPECT_EQ(std::move(m).into_inner().value(), 7) << "free now";
    EXPECT_TRUE(m.is_initial_state());
}

TYPED_TEST(MutexValue, IntoInnerRefusesWhileAnotherThreadsGuardLives) {
    TypeParam m(3L);
    std::atomic<bool> held{false}, done{false};
    std::thread holder([&] {
        auto g = m.lock();
        ASSERT_TRUE(g);
        held = true;
        while (!done) std::this_thread::sleep_for(1ms);
        **g = 4;
    });
    ASSERT_TRUE(kmlab::test::eventually([&] { return held.load(); }));
    auto r = std::move(m).into_inner();
    done = true;
    holder.join();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::guard_alive);
    EXPECT_EQ(r.error().irql, PASSIVE_LEVEL);
    EXPECT_EQ(std::move(m).into_inner().value(), 4) << "never waits, and nothing was taken";
}

// into_inner() answers to try_lock()'s IRQL rule, with its bug check.
TYPED_TEST(MutexValue, IntoInnerChecksTheIrqlAsTryLockDoes) {
    TypeParam m(5L);
    KIRQL old = KeRaiseIrqlToDpcLevel();
    auto tried = m.try_lock();
    const bool try_allowed = tried.has_value();
    if (tried) {
        ASSERT_TRUE(tried->unlock());
    }
    auto r = std::move(m).into_inner();
    KeLowerIrql(old);
    if (try_allowed) {  // a KMUTEX may be polled at DISPATCH_LEVEL
        EXPECT_TRUE(TypeParam::recursive);
        EXPECT_EQ(r.value(), 5);
    } else {
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, Errc::irql_too_high);
        EXPECT_EQ(r.error().irql, DISPATCH_LEVEL);
        EXPECT_EQ(r.error().bug_check, tried.error().bug_check);
        EXPECT_EQ(r.error().bug_check_parameter1, tried.error().bug_check_parameter1);
    }
    KeRaiseIrql(HIGH_LEVEL, &old);
    auto high = std::move(m).into_inner();
    KeLowerIrql(old);
    ASSERT_FALSE(high);
    EXPECT_EQ(high.error().code, Errc::irql_too_high);
    EXPECT_TRUE(high.error().is_bug_check());
    EXPECT_TRUE(m.is_initial_state());
}

TYPED_TEST(MutexValue, ToOwnedCopiesTheValueAndLeavesItInPlace) {
    using M = rebind<TypeParam, std::string>;
    M m(std::string("irp"));
    auto copy = m.to_owned();
    ASSERT_TRUE(copy);
    EXPECT_EQ(*copy, "irp");
    m.lock().value()->append("!");
    EXPECT_EQ(*copy, "irp") << "a copy, not a view";
    EXPECT_EQ(m.to_owned().value(), "irp!");
    EXPECT_TRUE(m.is_initial_state());
    // wdk-mutex's to_owned_box: the value moved straight to the heap.
    auto boxed = std::make_unique<std::string>(std::move(m).into_inner().value());
    EXPECT_EQ(*boxed, "irp!");
}

// to_owned() is a lock(): it waits for the holder and sees its writes.
TYPED_TEST(MutexValue, ToOwnedWaitsForTheHolder) {
    TypeParam m(0L);
    auto g = m.lock();
    ASSERT_TRUE(g);
    std::atomic<long> seen{-1};
    std::thread reader([&] { seen = m.to_owned().value(); });
    std::this_thread::sleep_for(20ms);
    EXPECT_EQ(seen.load(), -1) << "still waiting";
    **g = 11;
    ASSERT_TRUE(g->unlock());
    reader.join();
    EXPECT_EQ(seen.load(), 11);
    EXPECT_TRUE(m.is_initial_state());
}

TYPED_TEST(MutexValue, ToOwnedAnswersAsLockDoes) {
    TypeParam m(9L);
    {
        auto g = m.lock();
        ASSERT_TRUE(g);
        auto own = m.to_owned();
        if constexpr (TypeParam::recursive) {
            EXPECT_EQ(own.value(), 9) << "a KMUTEX owner acquires again";
            EXPECT_EQ(**g, 9) << "and its guard gives access again afterwards";
        } else {
            ASSERT_FALSE(own);
            EXPECT_EQ(own.error().code, Errc::recursive_acquire);
            EXPECT_EQ(own.error().bug_check, bugcheck::MUTEX_ALREADY_OWNED);
        }
    }
    const KIRQL old = KeRaiseIrqlToDpcLevel();
    auto high = m.to_owned();
    auto locked = m.lock();
    KeLowerIrql(old);
    ASSERT_FALSE(high);
    ASSERT_FALSE(locked);
    EXPECT_EQ(high.error().code, Errc::irql_too_high);
    EXPECT_EQ(high.error().bug_check, locked.error().bug_check);
    EXPECT_EQ(high.error().bug_check_parameter1, locked.error().bug_check_parameter1);
    EXPECT_TRUE(m.is_initial_state());
}

// The seed's "if T implements display, you do not need to dereference the
// lock to print": the guard prints as its value would, stream flags included.
TYPED_TEST(MutexValue, AGuardPrintsItsValue) {
    static_assert(Streamable<typename TypeParam::Guard>);
    static_assert(!Streamable<typename rebind<TypeParam, Opaque>::Guard>,
                  "printable only where the value is");
    TypeParam m(42L);
    auto g = m.lock().value();
    std::ostringstream os;
    os << "The value is: " << g << ';' << std::setw(5) << g;
    EXPECT_EQ(os.str(), "The value is: 42;   42");
    std::wostringstream wide;
    wide << g;
    EXPECT_EQ(wide.str(), L"42");

    rebind<TypeParam, Point> point(Point{1, 2});
    std::ostringstream ps;
    ps << point.lock().value();
    EXPECT_EQ(ps.str(), "(1, 2)");

    if constexpr (TypeParam::recursive) {
        auto inner = m.lock().value();
        std::ostringstream nested;
        EXPECT_THROW(nested << g, std::logic_error) << "an outer guard gives no access";
        nested << inner;
        EXPECT_EQ(nested.str(), "42");
    }
    ASSERT_TRUE(g.unlock());
    std::ostringstream released;
    released << g;
    EXPECT_EQ(released.str(), "(released)");
    EXPECT_TRUE(m.is_initial_state());
}

#if defined(__cpp_lib_format)
TYPED_TEST(MutexValue, AGuardFormatsItsValue) {
    using G = typename TypeParam::Guard;
    static_assert(std::is_default_constructible_v<std::formatter<G, char>>);
    static_assert(!std::is_default_constructible_v<
                      std::formatter<typename rebind<TypeParam, Opaque>::Guard, char>>,
                  "formattable only where the value is");
    TypeParam m(42L);
    auto g = m.lock().value();
    EXPECT_EQ(std::format("{}", g), "42");
    EXPECT_EQ(std::format("[{:>5}] [{:#x}]", g, g), "[   42] [0x2a]") << "the value's format spec";
    EXPECT_EQ(std::format(L"{}", g), L"42");
    ASSERT_TRUE(g.unlock());
    EXPECT_EQ(std::format("{}", g), "(released)");
    EXPECT_EQ(std::format(L"{}", g), L"(released)");
}
#else
// Said once, rather than skipping the typed test once per mutex type.
TEST(GuardFormat, NeedsTheLibrarysFormat) {
    GTEST_SKIP() << "this standard library has no <format> (__cpp_lib_format): "
                    "std::formatter for guards is not compiled, only operator<<";
}
#endif
