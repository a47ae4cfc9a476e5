#pragma once
// Temporary outputs that must not outlive a killed process. A rank ended by SIGTERM (mpirun and srun send
// it to every rank when one fails) removes its registered temporary files and directories before it dies,
// so neither a final nor a half-written output is left behind.
#include <string>

namespace cm {

// Installs the SIGTERM / SIGINT / SIGHUP / SIGUSR1 handler (once per process). USR1 is what
// `sbatch --signal=USR1@120` sends a step before its time runs out: a job killed then resumes when requeued.
void remove_temp_files_on_signal();

void register_temp_file(const std::string& path);
void unregister_temp_file(const std::string& path);
// A directory, removed with everything in it.
void register_temp_dir(const std::string& path);
void unregister_temp_dir(const std::string& path);

}  // namespace cm
