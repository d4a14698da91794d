#include "common/context.hpp"

#include <benchmark/benchmark.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <mutex>
#include <thread>

#include <oneapi/tbb/version.h>

#ifndef KMLAB_GIT_COMMIT
#define KMLAB_GIT_COMMIT "unknown"
#endif

namespace kmlab::bench {

namespace {
std::string read_first_line(const char* path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    return line;
}

std::string cpu_model() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("model name", 0) == 0) {
            auto colon = line.find(':');
            return colon == std::string::npos ? line : line.substr(colon + 2);
        }
    }
    return "unknown";
}
}  // namespace

void add_run_context() {
    utsname u{};
    uname(&u);
    benchmark::AddCustomContext("kmlab_commit", KMLAB_GIT_COMMIT);
    benchmark::AddCustomContext("cpu_model", cpu_model());
    benchmark::AddCustomContext("online_cpus", std::to_string(sysconf(_SC_NPROCESSORS_ONLN)));
    benchmark::AddCustomContext("kernel", std::string(u.sysname) + " " + u.release);
    benchmark::AddCustomContext("machine", u.machine);
    benchmark::AddCustomContext("hostname", u.nodename);
    const std::string governor =
        read_first_line("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor");
    benchmark::AddCustomContext("cpu_governor", governor.empty() ? "unreadable" : governor);
    benchmark::AddCustomContext("compiler", "g++ " __VERSION__);
    benchmark::AddCustomContext("cxx_standard", std::to_string(__cplusplus));
    benchmark::AddCustomContext("onetbb_version", TBB_VERSION_STRING);
    benchmark::AddCustomContext("second_thread_alive", "yes");
}

void keep_second_thread_alive() {
    static std::once_flag once;
    std::call_once(once, [] {
        // Sleeps rather than waits on a condition variable: a static one
        // with a waiter would block exit() in its destructor.
        std::thread([] {
            for (;;) std::this_thread::sleep_for(std::chrono::hours(24));
        }).detach();
    });
}

std::string bench_name(std::string_view family, std::string_view lock) {
    std::string name;
    name.reserve(family.size() + lock.size() + 2);
    name.append(family).append("<").append(lock).append(">");
    return name;
}

int benchmark_main(int argc, char** argv, void (*register_benchmarks)()) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
    keep_second_thread_alive();
    add_run_context();
    register_benchmarks();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}

}  // namespace kmlab::bench
