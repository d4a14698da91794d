// What every benchmark binary records about the run (BENCHMARKING.md rule 8),
// and the parked second thread that keeps glibc on its multi-threaded paths
// (rule 1: std::mutex costs ~3 ns with one thread alive, ~15 ns with two).
#pragma once

#include <string>

namespace kmlab::bench {

// Adds machine, compiler, library and commit context to the JSON output.
void add_run_context();

// Starts a thread that sleeps until the process exits; idempotent.
void keep_second_thread_alive();

}  // namespace kmlab::bench
