/* ubsan_defaults.c - linked into every program of the sanitize and fuzz builds (CMakeLists.txt):
 * UBSan's default options, so that its first report stops the program as ASan's does, however
 * the program is started (ctest, the fuzz stage, a worker process, or by hand).
 *
 * Why a default and not the flag: those builds compile UBSan's checks recoverable (without
 * -fno-sanitize-recover; CMakeLists.txt says why), so without halt_on_error a report would
 * print and the program would go on. UBSAN_OPTIONS in the environment still overrides these. */
const char *__ubsan_default_options(void);

__attribute__((used, visibility("default"))) const char *__ubsan_default_options(void)
{
    return "halt_on_error=1:print_stacktrace=1";
}
