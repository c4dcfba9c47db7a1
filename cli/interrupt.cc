#include "interrupt.h"

#include <csignal>

namespace septa::cli {
namespace {

volatile std::sig_atomic_t g_interrupted = 0;  // set by the signal handler only

void on_sigint(int) {
  g_interrupted = 1;
  std::signal(SIGINT, SIG_DFL);
}

}  // namespace

void install_interrupt_handler() { std::signal(SIGINT, on_sigint); }
bool interrupted() { return g_interrupted != 0; }

}  // namespace septa::cli
