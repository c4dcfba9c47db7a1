// septa: the command-line tool. Turns library exceptions into exit codes (1 error, 2 usage).
#include <cstring>
#include <exception>
#include <iostream>
#include <string>

#include "arguments.h"
#include "commands.h"
#include "septa/error.h"

namespace {

void print_usage(std::ostream& out) {
  out << "usage: septa COMMAND [options]\n\n"
         "commands:\n"
         "  train   train a model (standard CRF, piecewise, separate/CR-F, MEMM)\n"
         "  tag     label sequences with a model\n"
         "  eval    chunk/entity evaluation, exactly as conlleval\n"
         "  dump    print a model as readable text\n"
         "  merge   merge checkpoints (safetensors; linear, task arithmetic, TIES, DARE,\n"
         "          SLERP, LoRA adapters), streaming, like mergekit-yaml\n"
         "  nn      neural modules: Forward-Forward and unsupervised FF cells (runs\n"
         "          septa-nn, built with -DSEPTA_WITH_TORCH=ON)\n"
         "\n'septa COMMAND --help' describes each command; 'septa --version' prints the version.\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    print_usage(argc < 2 ? std::cerr : std::cout);
    return argc < 2 ? 2 : 0;
  }
  if (std::strcmp(argv[1], "--version") == 0 || std::strcmp(argv[1], "-V") == 0) {
    std::cout << "septa " << SEPTA_VERSION << "\n";
    return 0;
  }
  const std::string command = argv[1];
  try {
    if (command == "train") return septa::cli::run_train(argc - 1, argv + 1);
    if (command == "tag") return septa::cli::run_tag(argc - 1, argv + 1);
    if (command == "eval") return septa::cli::run_eval(argc - 1, argv + 1);
    if (command == "dump") return septa::cli::run_dump(argc - 1, argv + 1);
    if (command == "merge") return septa::cli::run_merge(argc - 1, argv + 1);
    if (command == "nn") return septa::cli::exec_nn(argc - 1, argv + 1);
    std::cerr << "septa: unknown command '" << command << "'\n";
    print_usage(std::cerr);
    return 2;
  } catch (const septa::cli::UsageError& e) {
    std::cerr << "septa " << command << ": " << e.what() << "\n(see 'septa " << command
              << " --help')\n";
    return 2;
  } catch (const septa::OptionError& e) {
    std::cerr << "septa " << command << ": " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "septa " << command << ": error: " << e.what() << "\n";
    return 1;
  }
}
