/*
 * samples.h - one valid instance of every pbft message, shared by the wire
 * unit tests and the fuzz corpus generator.
 */
#ifndef PBFT_SAMPLES_H
#define PBFT_SAMPLES_H

#include "msg.h"
#include "wbuf.h"

#define SAMPLES_COUNT 16

/* Encodes sample i (0..SAMPLES_COUNT-1) as a frame into wb; 0 or -1. */
int sample_frame(int i, struct wbuf *wb);

#endif
