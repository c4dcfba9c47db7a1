// Ctrl-C handling for long commands: the first SIGINT asks the work to stop cleanly.
#pragma once

namespace septa::cli {

// Installs the SIGINT handler (a second Ctrl-C kills the process at once).
void install_interrupt_handler();
// Whether Ctrl-C was pressed since install_interrupt_handler().
bool interrupted();

}  // namespace septa::cli
