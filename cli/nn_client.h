// Pieces shared by the neural modules' commands (septa nn, septa nn vba, septa nn mt): the
// option help rows, integer options, the progress line and the exception-to-exit-code wrapper.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "septa/nn/nn.h"

namespace septa::cli {

// One option of a command itself (a method's options come from the registry's tables).
struct CommandOption {
  const char* name;   // "--data"
  const char* value;  // placeholder in the help ("DIR"); nullptr for a flag
  const char* help;
};

// Help rows "  --name VALUE   help" with the help text starting at column `width` (or one
// space after a longer left part).
void print_option_row(std::ostream& out, const std::string& left, const std::string& help,
                      std::size_t width = 26);
void print_command_options(std::ostream& out, const std::vector<CommandOption>& options);
// "--name X   help (default D, range)" for each of a method's registered options.
void print_method_options(std::ostream& out, const std::vector<nn::OptionSpec>& options,
                          std::size_t width = 26);

bool is_command_option(const std::vector<CommandOption>& options, const std::string& name);

// Option `name`'s value as an integer; throws OptionError naming the option otherwise.
int64_t parse_integer_option(const std::string& name, const std::string& text);

// Prints one progress line (util/progress_line.h) to standard output and flushes it; returns
// false once Ctrl-C was pressed (cli/interrupt.h), so that the run stops after this epoch.
bool print_epoch_progress(const nn::Progress& progress);

// Runs `body` and turns what it throws into the exit code: OptionError 2, any other error 1,
// each reported on standard error prefixed by `program` ("septa nn vba"). Only the commands'
// entry points call it.
int run_reporting_errors(const std::string& program, const std::function<int()>& body);

}  // namespace septa::cli
