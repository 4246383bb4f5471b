// Open MPI's C API (pkg-config ompi-c), for the MPI trait's MPICommunicator. Open MPI's handles (MPI_COMM_WORLD,
// MPI_FLOAT, ...) are macros taking the address of a global, which Swift cannot import: these functions return them.
#include <mpi.h>

static inline MPI_Comm lv_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype lv_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype lv_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype lv_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Errhandler lv_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline int lv_mpi_success(void) { return MPI_SUCCESS; }
static inline int lv_mpi_thread_serialized(void) { return MPI_THREAD_SERIALIZED; }
static inline int lv_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
