// The explorer's own tests: cases its review found, where a model of spinning
// or of store buffers could be wrong without any lock test noticing.
#include <gtest/gtest.h>

#include <memory>

#include <kmlab/explore.hpp>
#include "model_program.hpp"

namespace kmlab::explore {
namespace {

// The explorer itself (from its review): a spinner whose condition became
// true between two of its reads must not be reported blocked, and a
// buffered store that drains into destroyed memory is a violation.
TEST(ModelExplorer, SpinnerSeesAWriteBetweenItsReads) {
    Config c;
    c.preemption_bound = 2;
    const Result r = explore(c, [] {
        auto x = std::make_shared<Atomic<int>>(0);
        auto y = std::make_shared<Atomic<int>>(0);
        Program p;
        p.threads.push_back([x, y] {
            Platform::spin_until([&] { return x->load() == 1 || y->load() == 1; },
                                 Deadline::never());
        });
        p.threads.push_back([x] { x->store(1); });
        return p;
    });
    EXPECT_FALSE(r.violation) << describe(r);
    EXPECT_TRUE(r.complete);
}

TEST(ModelExplorer, ABufferedStoreIntoDestroyedMemoryIsCaught) {
    Config c;
    c.memory = Memory::tso;
    c.preemption_bound = 1;
    const Result r = explore(c, [] {
        struct S {
            Atomic<int> flag{0};
            Atomic<int> stat{0};
        };
        auto s = std::make_shared<S>();
        Program p;
        // T0 publishes flag, then writes stat: under TSO both sit in its
        // buffer; T1 sees flag (after a drain), destroys, and T0's stat
        // store drains afterwards.
        p.threads.push_back([s] {
            s->flag.store(1);
            s->stat.store(1);
        });
        p.threads.push_back([s] {
            Platform::spin_until([&] { return s->flag.load() == 1; }, Deadline::never());
            destroy(s.get(), sizeof(S));
        });
        return p;
    });
    ASSERT_TRUE(r.violation);
    EXPECT_NE(r.what.find("destroyed memory"), std::string::npos) << describe(r);
}

}  // namespace
}  // namespace kmlab::explore
