/* setjmp-safe libjpeg decoding for LSTMVision (see include/CImageShim.h). */
#include "CImageShim.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

struct lv_error_manager {
    struct jpeg_error_mgr base;
    jmp_buf escape;
};

static void lv_error_exit(j_common_ptr cinfo) {
    struct lv_error_manager *mgr = (struct lv_error_manager *)cinfo->err;
    longjmp(mgr->escape, 1);
}

/* Warnings (level -1) mean damaged data; escape as for errors. Trace messages are ignored. */
static void lv_emit_message(j_common_ptr cinfo, int msg_level) {
    if (msg_level < 0) lv_error_exit(cinfo);
}

static void lv_output_message(j_common_ptr cinfo) { (void)cinfo; }

/* One row of CMYK samples as Adobe JPEGs store them (inverted: 255 - ink) to RGB, with Pillow's arithmetic
 * (rawmode "CMYK;I", then cmyk2rgb: r = (255-k) - (c*(255-k))/255 rounded), so the output matches Pillow's.
 * Like Pillow, every CMYK JPEG is read with Adobe's polarity, with or without the Adobe marker. */
static void lv_cmyk_row_to_rgb(const unsigned char *in, unsigned char *out, unsigned width) {
    for (unsigned x = 0; x < width; x++, in += 4, out += 3) {
        int nk = in[3];  /* 255 - ink k */
        for (int c = 0; c < 3; c++) {
            int tmp = (255 - in[c]) * nk + 128;
            int v = nk - (((tmp >> 8) + tmp) >> 8);
            out[c] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
}

int lv_jpeg_decode(const unsigned char *data, size_t size,
                   long max_width, long max_height, long long max_pixels,
                   unsigned char **pixels, int *width, int *height, int *channels,
                   char *err, size_t err_len) {
    struct jpeg_decompress_struct cinfo;
    struct lv_error_manager jerr;
    unsigned char *volatile buffer = NULL;
    unsigned char *volatile cmyk_row = NULL;

    *pixels = NULL;
    *width = *height = *channels = 0;
    if (err_len > 0) err[0] = '\0';

    cinfo.err = jpeg_std_error(&jerr.base);
    jerr.base.error_exit = lv_error_exit;
    jerr.base.emit_message = lv_emit_message;
    jerr.base.output_message = lv_output_message;
    if (setjmp(jerr.escape)) {
        char message[JMSG_LENGTH_MAX];
        (*cinfo.err->format_message)((j_common_ptr)&cinfo, message);
        int code = cinfo.err->msg_code;
        if (err_len > 0) snprintf(err, err_len, "%s", message);
        jpeg_destroy_decompress(&cinfo);
        free(buffer);
        free(cmyk_row);
        return code == JWRN_JPEG_EOF || code == JERR_INPUT_EOF || code == JERR_INPUT_EMPTY
            ? LV_JPEG_TRUNCATED : LV_JPEG_ERROR;
    }

    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);

    *width = (int)cinfo.image_width;
    *height = (int)cinfo.image_height;
    if ((long)cinfo.image_width > max_width || (long)cinfo.image_height > max_height
        || (long long)cinfo.image_width * (long long)cinfo.image_height > max_pixels) {
        jpeg_destroy_decompress(&cinfo);
        return LV_JPEG_TOO_LARGE;
    }

    /* libjpeg turns YCCK into CMYK itself; CMYK is then converted to RGB here, row by row. */
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    cinfo.out_color_space = cmyk ? JCS_CMYK : cinfo.jpeg_color_space == JCS_GRAYSCALE ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&cinfo);

    int out_components = cmyk ? 3 : cinfo.output_components;
    size_t stride = (size_t)cinfo.output_width * (size_t)out_components;
    buffer = malloc(stride * cinfo.output_height);
    if (cmyk) cmyk_row = malloc((size_t)cinfo.output_width * 4);
    if (buffer == NULL || (cmyk && cmyk_row == NULL)) {
        if (err_len > 0) {
            snprintf(err, err_len, "out of memory for %ux%u image", cinfo.output_width, cinfo.output_height);
        }
        jpeg_destroy_decompress(&cinfo);
        free(buffer);
        free(cmyk_row);
        return LV_JPEG_ERROR;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        unsigned char *target = buffer + stride * cinfo.output_scanline;
        JSAMPROW row = cmyk ? cmyk_row : target;
        if (jpeg_read_scanlines(&cinfo, &row, 1) == 1 && cmyk) {
            lv_cmyk_row_to_rgb(cmyk_row, target, cinfo.output_width);
        }
    }
    jpeg_finish_decompress(&cinfo);

    *width = (int)cinfo.output_width;
    *height = (int)cinfo.output_height;
    *channels = out_components;
    *pixels = buffer;
    free(cmyk_row);
    jpeg_destroy_decompress(&cinfo);
    return LV_JPEG_OK;
}

void lv_jpeg_free(unsigned char *pixels) { free(pixels); }
