// Open MPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, MPI_IN_PLACE, …) are macros over addresses of globals,
// which Swift cannot import; these inline functions return them.
#ifndef GOKU_CMPI_SHIM_H
#define GOKU_CMPI_SHIM_H
#include <mpi.h>

static inline MPI_Comm goku_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm goku_mpi_comm_null(void) { return MPI_COMM_NULL; }
static inline MPI_Datatype goku_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype goku_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype goku_mpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype goku_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Op goku_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op goku_mpi_max(void) { return MPI_MAX; }
static inline MPI_Op goku_mpi_min(void) { return MPI_MIN; }
static inline void *goku_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Errhandler goku_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline int goku_mpi_undefined(void) { return MPI_UNDEFINED; }
#endif
