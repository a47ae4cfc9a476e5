/* Smoke-test program for tests/slurm/smoke.sh: every rank prints "rank R of S on HOST sum=X", where X
 * is an MPI_Allreduce of 1 over MPI_COMM_WORLD: X == S proves the ranks form one world that can
 * communicate (two singletons would each print "rank 0 of 1 ... sum=1"). */
#include <mpi.h>
#include <stdio.h>
int main(int argc, char **argv) {
  int rank, size, one = 1, sum = 0, len;
  char host[MPI_MAX_PROCESSOR_NAME];
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Get_processor_name(host, &len);
  MPI_Allreduce(&one, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  printf("rank %d of %d on %s sum=%d\n", rank, size, host, sum);
  fflush(stdout);
  MPI_Finalize();
  return 0;
}
