/*
 * pbft/api.h - what every public header of libpbft shares: the export
 * marker and the C++ guards. Include pbft/pbft.h rather than this.
 */
#ifndef PBFT_PUBLIC_API_H
#define PBFT_PUBLIC_API_H

#if defined(__GNUC__)
#define PBFT_API __attribute__((visibility("default")))
#else
#define PBFT_API
#endif

#ifdef __cplusplus
#define PBFT_BEGIN_DECLS extern "C" {
#define PBFT_END_DECLS }
#else
#define PBFT_BEGIN_DECLS
#define PBFT_END_DECLS
#endif

/* Room for an error message from any call that takes err, errlen. */
#define PBFT_ERR_LEN 512

#endif
