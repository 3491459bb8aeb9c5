/*
 * A stand-in for Windows' bcryptprimitives.dll, for running tests under Wine only.
 *
 * Rust's std (1.78 and later) takes its random numbers from ProcessPrng in
 * bcryptprimitives.dll. Wine 8 has no such DLL, so every Rust program fails to start
 * there (STATUS_DLL_NOT_FOUND). This DLL exports ProcessPrng on top of
 * BCryptGenRandom, which Wine has. It is never shipped: real Windows has the real one.
 *
 * Built by scripts/test-windows.sh:
 *   x86_64-w64-mingw32-gcc -shared -O2 -o bcryptprimitives.dll bcryptprimitives.c -lbcrypt
 */
#include <windows.h>
#include <bcrypt.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    /* BCryptGenRandom takes a ULONG length; a SIZE_T request may be larger. */
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, data, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG)))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    /* Like the real one: documented to always succeed. */
    return TRUE;
}
