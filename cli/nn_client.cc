#include "nn_client.h"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <iostream>

#include "interrupt.h"
#include "septa/error.h"
#include "util/parse_int.h"
#include "util/progress_line.h"

namespace septa::cli {

void print_option_row(std::ostream& out, const std::string& left, const std::string& help,
                      std::size_t width) {
  std::string text = "  " + left;
  text.resize(std::max(text.size() + 1, width), ' ');
  out << text << help << "\n";
}

void print_command_options(std::ostream& out, const std::vector<CommandOption>& options) {
  for (const CommandOption& o : options)
    print_option_row(out, std::string(o.name) + (o.value ? std::string(" ") + o.value : ""), o.help);
}

void print_method_options(std::ostream& out, const std::vector<nn::OptionSpec>& options,
                          std::size_t width) {
  for (const nn::OptionSpec& o : options)
    print_option_row(out, "--" + o.name + " X",
                     o.help + " (default " + o.default_value + ", " + o.range() + ")", width);
}

bool is_command_option(const std::vector<CommandOption>& options, const std::string& name) {
  return std::any_of(options.begin(), options.end(),
                     [&](const CommandOption& o) { return name == o.name; });
}

int64_t parse_integer_option(const std::string& name, const std::string& text) {
  long long value = 0;
  if (util::parse_int(text, INT64_MIN, INT64_MAX, value)) return value;
  throw OptionError(name + " expects an integer, got '" + text + "'");
}

bool print_epoch_progress(const nn::Progress& p) {
  const std::string line = util::format_epoch(p.stage, p.epoch, p.epochs, p.metrics, p.seconds);
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  return !interrupted();
}

int run_reporting_errors(const std::string& program, const std::function<int()>& body) {
  try {
    return body();
  } catch (const OptionError& e) {
    std::cerr << program << ": " << e.what() << "\n";
    return 2;
  } catch (const Error& e) {
    std::cerr << program << ": " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {  // torch's c10::Error and jit::ErrorReport among them
    std::cerr << program << ": error: " << e.what() << "\n";
    return 1;
  } catch (...) {
    std::cerr << program << ": unknown error\n";
    return 1;
  }
}

}  // namespace septa::cli
