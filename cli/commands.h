// The septa subcommands; each returns the process exit code (0 ok, 1 error, 2 usage).
#pragma once

namespace septa::cli {

int run_train(int argc, char** argv);
int run_tag(int argc, char** argv);
int run_eval(int argc, char** argv);
int run_dump(int argc, char** argv);
int run_merge(int argc, char** argv);
int run_nn(int argc, char** argv);  // the neural modules, in the septa-nn executable only
int run_mt(int argc, char** argv);  // septa nn mt ...: translation (argv[1] == "mt")
int run_vba(int argc, char** argv);  // "septa nn vba ...", argv[0] = "vba" (septa-nn only)
// Runs the sibling executable septa-nn with the arguments after "nn"; returns only on failure.
int exec_nn(int argc, char** argv);

}  // namespace septa::cli
