// Joining the MPI job this process was started in (mpirun, mpiexec, srun).
//
// MPI is confined to graphs/: this header names no MPI type. Built without
// MPI (TESSERA_MPI=OFF), or started without a launcher, join_cluster returns
// null and everything runs in this one process as before.
#pragma once

#include <memory>

#include "tessera/core/shard.hpp"

namespace tessera {

// Whether this build can run sharded over MPI.
bool mpi_available();

// Initialises MPI when the environment says a launcher started this process
// (OMPI_COMM_WORLD_SIZE, PMIX_RANK, PMI_RANK or PMI_SIZE) and the job has more
// than one rank; the Cluster finalises MPI when destroyed. Null otherwise.
// Throws Error if the environment asks for MPI and this build has none, or
// if srun started several tasks without MPI (SLURM_STEP_NUM_TASKS > 1 and
// no PMI variables: `srun` without `--mpi=pmix`), which would each run the
// whole job.
std::unique_ptr<Cluster> join_cluster(int* argc, char*** argv);

}  // namespace tessera
