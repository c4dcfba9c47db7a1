// septa-nn: the neural modules' command line, reached as "septa nn ...".
#include "commands.h"

int main(int argc, char** argv) { return septa::cli::run_nn(argc, argv); }
