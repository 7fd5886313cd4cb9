/*
 * posix/sys.h for the Windows unit build: helpers.h includes the platform's
 * call table as "posix/sys.h"; on Windows that table is win32/sys.h.  (This
 * shim directory is first on the include path of the Windows unit build.)
 */
#include "win32/sys.h"
