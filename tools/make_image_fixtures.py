#!/usr/bin/env python3
"""Writes the image-codec fixtures under Tests/LSTMVisionTests/Fixtures/images/ and Pillow's decoding of each.

Every input file is paired with `<name>.ref.ppm` (or `.ref.pgm`): the pixels Pillow decodes from it, written by
Pillow, after the conversion LSTMVision applies (Tests/LSTMVisionTests/ImageCodecTests.swift compares the two):
  * alpha (PNG, WebP) composited onto opaque black with `Image.alpha_composite` (sRGB values, not linear light);
  * CMYK and YCCK JPEGs converted with `Image.convert("RGB")` (Pillow reads Adobe-inverted CMYK);
  * JPEG EXIF orientation undone with `ImageOps.exif_transpose`.
Pillow reads 16-bit RGB(A) PNGs to 8 bits by keeping the high byte; for those the 16-bit source samples are also
written (`<name>.src.ppm`/`.src.pgm`, maxval 65535) so the tests can check libpng's rounding exactly.

Files Pillow cannot write are made another way:
  * 16-bit RGB and RGBA PNGs: written by hand below (chunks + zlib), since Pillow has no 16-bit RGB mode;
  * the YCCK JPEG: Pillow's encoder keeps CMYK as CMYK, so a small C program compiled against the system
    libjpeg (libjpeg-dev, which the build needs anyway) encodes the same samples with jpeg_set_colorspace(JCS_YCCK).

Run from the repository root:
  python3 -m venv .venv && .venv/bin/pip install pillow numpy && .venv/bin/python tools/make_image_fixtures.py
"""

import argparse
import os
import struct
import subprocess
import tempfile
import zlib

import numpy as np
from PIL import Image, ImageOps

W, H = 13, 7  # small, odd and not square, so that every flip and rotation is visible

YCCK_ENCODER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <jpeglib.h>
/* usage: ycck W H in.cmyk out.jpg: raw CMYK samples (Adobe-inverted, as Pillow writes them) to a YCCK JPEG */
int main(int argc, char **argv) {
    int w = atoi(argv[1]), h = atoi(argv[2]);
    unsigned char *buf = malloc((size_t)w * h * 4);
    FILE *in = fopen(argv[3], "rb");
    if (fread(buf, 1, (size_t)w * h * 4, in) != (size_t)w * h * 4) return 1;
    fclose(in);
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    FILE *out = fopen(argv[4], "wb");
    jpeg_stdio_dest(&c, out);
    c.image_width = w; c.image_height = h; c.input_components = 4; c.in_color_space = JCS_CMYK;
    jpeg_set_defaults(&c);
    jpeg_set_colorspace(&c, JCS_YCCK);   /* also makes libjpeg write the Adobe marker with transform 2 */
    jpeg_set_quality(&c, 92, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = buf + (size_t)c.next_scanline * w * 4;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    fclose(out);
    jpeg_destroy_compress(&c);
    return 0;
}
"""


def picture():
    """An asymmetric 13x7 RGB picture: smooth ramps (JPEG-friendly) plus a bright corner block."""
    y, x = np.mgrid[0:H, 0:W]
    rgb = np.stack([20 + 17 * x, 30 + 30 * y, 200 - 9 * x - 12 * y], axis=-1)
    rgb[0:2, 0:3] = [250, 240, 30]
    return rgb.clip(0, 255).astype(np.uint8)


def alpha_plane():
    """Alpha covering 0 (transparent), 255 (opaque) and values between."""
    y, x = np.mgrid[0:H, 0:W]
    a = (x * 21 + y * 9) % 256
    a[0, 0], a[0, 1], a[H - 1, W - 1] = 0, 255, 128
    return a.astype(np.uint8)


def on_black(im, grey=None):
    """Pillow's composite onto opaque black, as LSTMVision reads alpha; then RGB or L (`grey`, by default for
    grey modes: Pillow opens a 16-bit grey+alpha PNG as RGBA)."""
    grey = im.mode in ("LA", "L", "I;16", "I") if grey is None else grey
    rgba = im.convert("RGBA")
    out = Image.alpha_composite(Image.new("RGBA", im.size, (0, 0, 0, 255)), rgba)
    return out.convert("L") if grey else out.convert("RGB")


def save_ref(im, out, name):
    ext = "pgm" if im.mode == "L" else "ppm"
    im.save(os.path.join(out, f"{name}.ref.{ext}"))


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png16(path, samples, color_type):
    """A 16-bit PNG of `samples` [H, W, C] uint16 (colour type 0, 2, 4 or 6), filter 0 on every row."""
    h, w, _ = samples.shape
    raw = b"".join(b"\x00" + samples[r].astype(">u2").tobytes() for r in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(raw, 9))
                + png_chunk(b"IEND", b""))


def write_pnm16(path, samples):
    """Binary PGM/PPM with maxval 65535 (big-endian samples) of `samples` [H, W, 1 or 3]."""
    h, w, c = samples.shape
    with open(path, "wb") as f:
        f.write(f"{'P5' if c == 1 else 'P6'}\n{w} {h}\n65535\n".encode() + samples.astype(">u2").tobytes())


def samples16(channels, seed):
    """Random 16-bit samples whose low bytes matter (so that rounding and truncation differ)."""
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 65536, size=(H, W, channels), dtype=np.int64)
    s[0, 0, :] = 0
    s[0, 1, :] = 65535
    s[0, 2, :] = 32896  # 128 * 257 + 0: halfway cases
    return s.astype(np.uint16)


def make_pngs(out):
    rgb = picture()
    a = alpha_plane()
    grey = rgb[..., 1]

    g16 = samples16(1, 1)
    Image.fromarray(g16[..., 0].astype(np.uint16)).save(os.path.join(out, "png-grey16.png"))
    decoded = Image.open(os.path.join(out, "png-grey16.png"))
    assert decoded.mode == "I;16", decoded.mode
    decoded.save(os.path.join(out, "png-grey16.ref.pgm"))  # Pillow writes I;16 as a 65535-maxval PGM

    for name, channels, color_type in [("png-rgb16", 3, 2), ("png-rgba16", 4, 6), ("png-greyalpha16", 2, 4)]:
        s = samples16(channels, channels + 10)
        if channels in (2, 4):
            s[0, 0, -1] = 0
            s[0, 1, -1] = 65535
        write_png16(os.path.join(out, f"{name}.png"), s, color_type)
        save_ref(on_black(Image.open(os.path.join(out, f"{name}.png")), grey=channels <= 2), out, name)
        colour = s[..., :3] if channels >= 3 else s[..., :1]
        write_pnm16(os.path.join(out, f"{name}.src.{'ppm' if channels >= 3 else 'pgm'}"), colour)
        if channels in (2, 4):
            write_pnm16(os.path.join(out, f"{name}.alpha.pgm"), s[..., -1:])

    Image.fromarray(np.dstack([grey, a])).save(os.path.join(out, "png-greyalpha.png"))
    Image.fromarray(np.dstack([rgb, a])).save(os.path.join(out, "png-rgba.png"))
    Image.fromarray(rgb).save(os.path.join(out, "png-rgb.png"))
    Image.fromarray(grey).save(os.path.join(out, "png-grey.png"))

    # Palette of 6 colours with a tRNS alpha per entry (0, partial and 255).
    colours = np.array([[255, 0, 0], [0, 200, 0], [10, 20, 250], [255, 255, 255], [90, 60, 30], [0, 0, 0]])
    index = ((np.arange(W)[None, :] + 2 * np.arange(H)[:, None]) % 6).astype(np.uint8)
    p = Image.fromarray(index)
    p.putpalette(colours.astype(np.uint8).flatten().tolist())
    p.save(os.path.join(out, "png-palette-trns.png"), transparency=bytes([255, 0, 128, 200, 64, 255]))
    p.save(os.path.join(out, "png-palette.png"))

    for name in ["png-greyalpha", "png-rgba", "png-rgb", "png-grey", "png-palette-trns", "png-palette"]:
        save_ref(on_black(Image.open(os.path.join(out, f"{name}.png"))), out, name)


def make_webps(out):
    rgb = picture()
    rgba = np.dstack([rgb, alpha_plane()])
    Image.fromarray(rgb).save(os.path.join(out, "webp-lossy.webp"), quality=90, method=4)
    Image.fromarray(rgb).save(os.path.join(out, "webp-lossless.webp"), lossless=True)
    Image.fromarray(rgba).save(os.path.join(out, "webp-lossy-alpha.webp"), quality=90, method=4)
    Image.fromarray(rgba).save(os.path.join(out, "webp-lossless-alpha.webp"), lossless=True, exact=True)
    # Two frames: an animation, which the reader refuses (no reference).
    Image.fromarray(rgb).save(os.path.join(out, "webp-animated.webp"), save_all=True, lossless=True,
                              append_images=[Image.fromarray(255 - rgb)], duration=100)
    for name in ["webp-lossy", "webp-lossless", "webp-lossy-alpha", "webp-lossless-alpha"]:
        save_ref(on_black(Image.open(os.path.join(out, f"{name}.webp"))), out, name)


def inverted_cmyk():
    """CMYK samples as Adobe JPEGs store them (255 - ink), varying in every channel."""
    y, x = np.mgrid[0:H, 0:W]
    ink = np.stack([18 * x, 35 * y, 255 - 15 * x - 10 * y, (x * 7 + y * 11) % 120], axis=-1)
    ink[0:2, 0:3] = [0, 30, 230, 0]
    return (255 - ink.clip(0, 255)).astype(np.uint8)


def strip_segment(data, marker):
    """The JPEG `data` without its first segment of `marker` (e.g. 0xEE, APP14 'Adobe')."""
    p = 2
    while p + 4 <= len(data) and data[p] == 0xFF:
        length = struct.unpack(">H", data[p + 2:p + 4])[0]
        if data[p + 1] == marker:
            return data[:p] + data[p + 2 + length:]
        p += 2 + length
    raise ValueError("marker not found")


def make_cmyk(out, workdir):
    stored = inverted_cmyk()
    # Pillow writes CMYK images with rawmode "CMYK;I": it inverts our ink values back to the stored form.
    ink = Image.frombytes("CMYK", (W, H), (255 - stored).tobytes())
    ink.save(os.path.join(out, "jpeg-cmyk.jpg"), quality=92)
    with open(os.path.join(out, "jpeg-cmyk.jpg"), "rb") as f:
        data = f.read()
    with open(os.path.join(out, "jpeg-cmyk-noadobe.jpg"), "wb") as f:
        f.write(strip_segment(data, 0xEE))

    src, exe, raw = (os.path.join(workdir, n) for n in ("ycck.c", "ycck", "ycck.cmyk"))
    with open(src, "w") as f:
        f.write(YCCK_ENCODER)
    subprocess.run(["cc", "-O1", "-o", exe, src, "-ljpeg"], check=True)
    with open(raw, "wb") as f:
        f.write(stored.tobytes())
    subprocess.run([exe, str(W), str(H), raw, os.path.join(out, "jpeg-ycck.jpg")], check=True)

    for name in ["jpeg-cmyk", "jpeg-cmyk-noadobe", "jpeg-ycck"]:
        im = Image.open(os.path.join(out, f"{name}.jpg"))
        assert im.mode == "CMYK", (name, im.mode)
        save_ref(im.convert("RGB"), out, name)


def exif_segment(orientation, little_endian=True):
    """An APP1 Exif payload holding IFD0 with one Orientation (0x0112, SHORT) entry."""
    e = "<" if little_endian else ">"
    tiff = (b"II*\x00" if little_endian else b"MM\x00*") + struct.pack(e + "I", 8)
    tiff += struct.pack(e + "H", 1) + struct.pack(e + "HHI", 0x0112, 3, 1) + struct.pack(e + "HH", orientation, 0)
    tiff += struct.pack(e + "I", 0)
    return b"Exif\x00\x00" + tiff


def make_exif(out):
    base = Image.fromarray(picture())
    for n in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = n
        # Pillow writes a big-endian ("MM") TIFF header; orientation 6 also gets a little-endian one, by hand.
        base.save(os.path.join(out, f"exif-{n}.jpg"), quality=92, exif=exif.tobytes())
    base.save(os.path.join(out, "exif-6-intel.jpg"), quality=92, exif=exif_segment(6))
    # IFD0's offset points past the segment: the orientation cannot be read and is ignored (Pillow agrees).
    broken = exif_segment(6)[:10] + struct.pack("<I", 0x7FFF0000) + exif_segment(6)[14:]
    base.save(os.path.join(out, "exif-corrupt.jpg"), quality=92, exif=broken)
    for name in [f"exif-{n}" for n in range(1, 9)] + ["exif-6-intel", "exif-corrupt"]:
        im = Image.open(os.path.join(out, f"{name}.jpg"))
        save_ref(ImageOps.exif_transpose(im).convert("RGB"), out, name)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="Tests/LSTMVisionTests/Fixtures/images")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    make_pngs(args.out)
    make_webps(args.out)
    with tempfile.TemporaryDirectory() as workdir:
        make_cmyk(args.out, workdir)
    make_exif(args.out)


if __name__ == "__main__":
    main()
