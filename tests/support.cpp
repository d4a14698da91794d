#include "support.hpp"

namespace kmlab::test {
namespace {
std::mutex g_lock;
std::vector<BugCheck> g_fatal;
void record(const BugCheck& bc) {
    std::lock_guard g(g_lock);
    g_fatal.push_back(bc);
}
}  // namespace

std::vector<BugCheck> take_fatal_bug_checks() {
    std::lock_guard g(g_lock);
    return std::exchange(g_fatal, {});
}

void install_recording_handler() {
    set_bug_check_handler(&record);
}

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

void Nt::TearDown() {
    using namespace kmlab::nt;
    PKTHREAD t = KeGetCurrentThread();
    EXPECT_EQ(t->Irql, PASSIVE_LEVEL) << "test left the IRQL raised";
    EXPECT_EQ(t->CombinedApcDisable, 0u) << "test left a critical or guarded region";
    EXPECT_FALSE(t->WaitNext) << "test left the dispatcher lock held";
    for (const auto& bc : take_fatal_bug_checks())
        ADD_FAILURE() << "unexpected fatal bug check: " << bc.what();
    // Leave the thread clean for the next test even after a failure.
    t->Irql = PASSIVE_LEVEL;
    t->CombinedApcDisable = 0;
}
}  // namespace kmlab::test

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    kmlab::test::install_recording_handler();
    return RUN_ALL_TESTS();
}
