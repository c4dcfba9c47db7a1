// "septa nn ...": hands over to septa-nn, the executable that links libtorch.
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "commands.h"

namespace septa::cli {

int exec_nn(int argc, char** argv) {
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  std::string directory = ".";
  if (n > 0) {
    self[n] = '\0';
    directory = self;
    directory = directory.substr(0, directory.find_last_of('/'));
  }
  const std::string program = directory + "/septa-nn";
  std::vector<char*> args;
  args.push_back(const_cast<char*>(program.c_str()));
  for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
  args.push_back(nullptr);
  ::execv(program.c_str(), args.data());
  std::cerr << "septa nn: cannot run " << program << ": " << std::strerror(errno)
            << "\n(septa was built without the neural modules: configure with "
               "-DSEPTA_WITH_TORCH=ON)\n";
  return 2;
}

}  // namespace septa::cli
