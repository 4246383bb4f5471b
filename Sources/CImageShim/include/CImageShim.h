#ifndef LSTMVISION_CIMAGESHIM_H
#define LSTMVISION_CIMAGESHIM_H

#include <stddef.h>

/* Result codes of lv_jpeg_decode. */
enum {
    LV_JPEG_OK = 0,         /* decoded; *pixels must be released with lv_jpeg_free */
    LV_JPEG_ERROR = 1,      /* corrupt, truncated or unsupported stream; err holds libjpeg's message */
    LV_JPEG_TOO_LARGE = 2,  /* the header exceeds the limits; *width and *height hold its size */
    LV_JPEG_TRUNCATED = 3   /* the data ends before the image does */
};

/* Decodes a JPEG held in memory to 8-bit interleaved grey (1 channel) or RGB (3 channels); CMYK and YCCK
 * JPEGs are read as Adobe-inverted CMYK and converted to RGB as Pillow does.
 * libjpeg reports errors through a handler that must not return, so this wrapper catches them with
 * setjmp/longjmp (which Swift cannot do) and also treats libjpeg warnings, such as a premature end of
 * data, as errors, so a damaged file is reported instead of decoded to grey filler.
 * The header is checked against max_width, max_height and max_pixels before the pixel buffer is allocated. */
int lv_jpeg_decode(const unsigned char *data, size_t size,
                   long max_width, long max_height, long long max_pixels,
                   unsigned char **pixels, int *width, int *height, int *channels,
                   char *err, size_t err_len);

/* Releases a buffer returned by lv_jpeg_decode. */
void lv_jpeg_free(unsigned char *pixels);

#endif
