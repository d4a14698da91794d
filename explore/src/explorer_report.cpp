// The explorer's text: a schedule as it is printed (runs of one choice
// folded as "T0*3") and parsed back for Config::replay, the trace of a run's
// operations, the blocked threads a deadlock names, addresses by their labels,
// and Result::summary().
#include <errno.h>  // program_invocation_name

#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "explorer_internal.hpp"

namespace kmlab::explore::internal {

std::string Scheduler::schedule() const {
    std::ostringstream o;
    for (std::size_t i = 0; i < schedule_.size();) {
        std::size_t j = i;
        while (j < schedule_.size() && schedule_[j] == schedule_[i]) ++j;
        if (i) o << ' ';
        o << schedule_[i];
        if (j - i > 1) o << '*' << (j - i);
        i = j;
    }
    return o.str();
}

// Kernel-level when the run made notes (and not verbose), else today's raw
// trace; each line starts with its step, the number KMLAB_MODEL_BREAK takes.
std::string Scheduler::trace(std::size_t last) const {
    const bool raw = config_.verbose || !noted_;
    std::vector<const TraceLine*> shown;
    for (const auto& l : trace_) {
        const bool show_it = l.level == Level::event || l.level == Level::note ||
                             (l.level == Level::raw ? raw : !raw);
        if (show_it) shown.push_back(&l);
    }
    std::ostringstream o;
    const std::size_t from = shown.size() > last ? shown.size() - last : 0;
    if (from) o << "  ... " << from << " earlier lines\n";
    for (std::size_t i = from; i < shown.size(); ++i)
        o << "  " << shown[i]->step << ": " << shown[i]->text << '\n';
    return o.str();
}

std::string Scheduler::blocked_threads() const {
    std::ostringstream o;
    bool first = true;
    for (std::size_t i = 0; i < threads_.size(); ++i) {
        const auto& t = threads_[i];
        if (t.state == State::finished) continue;
        if (!first) o << "; ";
        first = false;
        if (g_wait_describer != nullptr) {
            const std::string d = g_wait_describer(static_cast<int>(i));
            if (!d.empty()) {
                o << d;
                continue;
            }
        }
        o << "T" << i << ' ';
        switch (t.state) {
            case State::futex:
                o << "sleeps in futex_wait on " << where(t.wait_addr);
                break;
            case State::event:
                o << "sleeps on event " << where(t.wait_addr);
                break;
            case State::spin:
                o << "spins";
                break;
            default:
                o << "runnable";
                break;
        }
    }
    return o.str();
}

std::string Scheduler::label_of(const void* p) const {
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    for (const auto& l : labels_) {
        if (a >= l.lo && a < l.hi)
            return a == l.lo ? l.name : l.name + "+" + std::to_string(a - l.lo);
    }
    return {};
}

std::string Scheduler::where(const void* p) const {
    if (std::string l = label_of(p); !l.empty()) return l;
    std::ostringstream o;
    o << p;
    return o.str();
}

std::string Scheduler::show(const void* v, std::size_t size) {
    std::uint64_t bits = 0;
    std::memcpy(&bits, v, size);
    if (size == 8 && bits > 0xffffffffull) {
        std::ostringstream o;
        o << "0x" << std::hex << bits;
        return o.str();
    }
    if (size == 4) return std::to_string(static_cast<std::int32_t>(bits));
    return std::to_string(bits);
}

void Scheduler::note(const std::string& what) {
    if (tracing_ && running_ >= 0) trace_line(running_, what, Level::raw);
}

void Scheduler::trace_line(int thread, const std::string& what, Level level) {
    if (!tracing_) return;
    trace_.push_back(
        {steps_, level, thread < 0 ? what : 'T' + std::to_string(thread) + " " + what});
}

std::vector<std::string> parse_schedule(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    std::string tok;
    while (in >> tok) {
        long n = 1;
        const auto star = tok.find('*');
        if (star != std::string::npos) {
            const std::string count = tok.substr(star + 1);
            if (count.empty() || count.find_first_not_of("0123456789") != std::string::npos ||
                count.size() > 9)
                throw std::invalid_argument("'" + tok + "' is not a choice");
            n = std::stol(count);
            tok = tok.substr(0, star);
        }
        if (tok.empty()) throw std::invalid_argument("'*' without a choice");
        const bool known = tok[0] == 'T' || tok[0] == 'X' || tok[0] == 'F' || tok[0] == 'W' ||
                           tok[0] == 'D' || tok[0] == 'R';
        if (tok.size() < 2 || !known ||
            tok.find_first_not_of("0123456789", 1) != std::string::npos || n < 1)
            throw std::invalid_argument("'" + tok + "' is not a choice");
        for (long i = 0; i < n; ++i) out.push_back(tok);
    }
    return out;
}

}  // namespace kmlab::explore::internal

namespace kmlab::explore {

std::string Result::summary() const {
    std::ostringstream o;
    o << schedules << " schedules" << (complete ? " (all within the bound)" : "") << ", longest "
      << max_steps << " steps, " << (violation ? "VIOLATION: " + what : "0 violations");
    if (violation) o << "\n  replay: " << replay_command();
    return o.str();
}

// Single quotes around the schedule: it holds spaces and '*', never a quote.
std::string Result::replay_command(const std::string& test) const {
    if (!violation) return {};
    std::string line = "KMLAB_MODEL_REPLAY='" + schedule + "' " + program_invocation_name;
    if (!test.empty()) line += " --gtest_filter=" + test;
    return line;
}

std::string Result::describe(const std::string& test) const {
    if (!violation) return "no violation";
    return what + "\n  replay: " + replay_command(test) +
           "\n  trace of its end (step: thread, operation):\n" + trace;
}

}  // namespace kmlab::explore
