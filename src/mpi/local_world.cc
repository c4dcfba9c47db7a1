// septa built without MPI: the job is always this one process.
#include "septa/communicator.h"

namespace septa {

std::unique_ptr<Communicator> make_world_communicator() {
  return std::make_unique<LocalCommunicator>();
}

}  // namespace septa
