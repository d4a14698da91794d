// The explorer's text: a schedule as it is printed (runs of one choice
// folded as "T0*3") and parsed back for Config::replay, the trace of a run's
// operations, the blocked threads a deadlock names, addresses by their labels,
// and Result::summary().
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

std::string Scheduler::trace(std::size_t last) const {
    std::ostringstream o;
    const std::size_t from = trace_.size() > last ? trace_.size() - last : 0;
    if (from) o << "  ... " << from << " earlier operations\n";
    for (std::size_t i = from; i < trace_.size(); ++i) o << "  " << trace_[i] << '\n';
    return o.str();
}

std::string Scheduler::blocked_threads() const {
    std::ostringstream o;
    for (std::size_t i = 0; i < threads_.size(); ++i) {
        const auto& t = threads_[i];
        if (t.state == State::finished) continue;
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
        o << "; ";
    }
    return o.str();
}

std::string Scheduler::where(const void* p) const {
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    for (const auto& l : labels_) {
        if (a >= l.lo && a < l.hi)
            return a == l.lo ? l.name : l.name + "+" + std::to_string(a - l.lo);
    }
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
    if (tracing_ && running_ >= 0) trace_line(running_, what);
}

void Scheduler::trace_line(int thread, const std::string& what) {
    if (tracing_) trace_.push_back('T' + std::to_string(thread) + " " + what);
}

std::vector<std::string> parse_schedule(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    std::string tok;
    while (in >> tok) {
        long n = 1;
        const auto star = tok.find('*');
        if (star != std::string::npos) {
            n = std::stol(tok.substr(star + 1));
            tok = tok.substr(0, star);
        }
        if (tok.size() < 2 || (tok[0] != 'T' && tok[0] != 'X' && tok[0] != 'F'))
            throw std::invalid_argument("model: bad schedule token '" + tok + "'");
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
    return o.str();
}

}  // namespace kmlab::explore
