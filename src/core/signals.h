// Internal: SIGPIPE in the library's own threads.
//
// A write to a pipe or socket whose reader is gone raises SIGPIPE, which ends the process
// unless it is ignored or blocked. The library never changes the process's signal dispositions;
// instead, its own threads (the worker's processing pool) block SIGPIPE for good when they
// start, as librdkafka's threads block signals, and such a write fails with EPIPE. Code that
// writes to a child's pipe on any other thread blocks SIGPIPE around each write instead
// (ChildProcess::write_some).
#pragma once

#include <signal.h>

namespace shardline::detail {

inline thread_local bool tl_sigpipe_blocked = false;

/// Blocks SIGPIPE in the calling thread for the rest of its life. For threads the library owns.
inline void block_sigpipe_in_this_thread() noexcept {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGPIPE);
  tl_sigpipe_blocked = pthread_sigmask(SIG_BLOCK, &s, nullptr) == 0;
}

/// Whether block_sigpipe_in_this_thread() ran (and succeeded) in this thread.
inline bool sigpipe_blocked_in_this_thread() noexcept { return tl_sigpipe_blocked; }

}  // namespace shardline::detail
