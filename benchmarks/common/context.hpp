// What every benchmark binary records about the run (BENCHMARKING.md rule 8),
// and the parked second thread that keeps glibc on its multi-threaded paths
// (rule 1: std::mutex costs ~3 ns with one thread alive, ~15 ns with two).
#pragma once

#include <string>
#include <string_view>

namespace kmlab::bench {

// Adds machine, compiler, library and commit context to the JSON output.
void add_run_context();

// Starts a thread that sleeps until the process exits; idempotent.
void keep_second_thread_alive();

// "BM_Contended<FastMutex,futex>": the regular benchmark name. Built with
// append(): GCC 12 warns falsely (-Wrestrict) on "<" + std::string + ">".
std::string bench_name(std::string_view family, std::string_view lock);

// The main() of every benchmark binary: parse the usual Google Benchmark
// flags (an unknown one is a usage error, exit 2), keep a second thread
// alive, record the run context, register, run.
int benchmark_main(int argc, char** argv, void (*register_benchmarks)());

}  // namespace kmlab::bench
