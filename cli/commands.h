// The septa subcommands; each returns the process exit code (0 ok, 1 error, 2 usage).
#pragma once

namespace septa::cli {

int run_train(int argc, char** argv);
int run_tag(int argc, char** argv);
int run_eval(int argc, char** argv);
int run_dump(int argc, char** argv);
#ifdef SEPTA_WITH_TORCH
int run_nn(int argc, char** argv);  // "septa nn ...": the neural modules (cli/nn_command.cc)
#endif

}  // namespace septa::cli
