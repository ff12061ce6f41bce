"""A generated corpus of images for the image-pipeline tests (and the benchmark): every file is made here with
Pillow, so nothing binary is checked in and each case says exactly what it contains.

Big images are cached per process (`functools.cache`), so a test session builds each of them once.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from functools import cache

from PIL import Image, ImageDraw

RED = (230, 30, 30)
GREEN = (30, 200, 60)
BLUE = (30, 60, 230)
YELLOW = (240, 220, 30)
QUADRANT_COLOURS = {"top_left": RED, "top_right": GREEN, "bottom_left": BLUE, "bottom_right": YELLOW}

# How a camera stores a picture for each EXIF orientation, from the EXIF 2.32 spec's description of where the
# stored 0th row and 0th column are on the *displayed* picture. Written independently of Pillow's exif_transpose
# table, so the tests check Pillow's table instead of reusing it.
#   1: row0 top,    col0 left   -> stored as displayed
#   2: row0 top,    col0 right  -> mirrored left-right
#   3: row0 bottom, col0 right  -> rotated 180
#   4: row0 bottom, col0 left   -> mirrored top-bottom
#   5: row0 left,   col0 top    -> transposed (rows become columns)
#   6: row0 right,  col0 top    -> rotated 90 counter-clockwise (the displayed right edge is stored on top)
#   7: row0 right,  col0 bottom -> transversed
#   8: row0 left,   col0 bottom -> rotated 90 clockwise (the displayed left edge is stored on top)
STORED_AS: dict[int, Image.Transpose | None] = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,  # Pillow's ROTATE_90 is counter-clockwise
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def quadrants(width: int, height: int) -> Image.Image:
    """Four solid quadrants of different colours: any rotation or mirror moves at least two of them."""
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    hw, hh = width // 2, height // 2
    draw.rectangle((0, 0, hw - 1, hh - 1), fill=RED)
    draw.rectangle((hw, 0, width - 1, hh - 1), fill=GREEN)
    draw.rectangle((0, hh, hw - 1, height - 1), fill=BLUE)
    draw.rectangle((hw, hh, width - 1, height - 1), fill=YELLOW)
    return image


def oriented_jpeg(orientation: int, display: tuple[int, int] = (320, 240)) -> bytes:
    """A JPEG that shows `quadrants(*display)` once its EXIF `orientation` is applied."""
    shown = quadrants(*display)
    transpose = STORED_AS[orientation]
    stored = shown if transpose is None else shown.transpose(transpose)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, "JPEG", quality=95, exif=exif.tobytes())


def photo_like(width: int, height: int, seed: int = 7) -> Image.Image:
    """Smooth colour fields, hard-edged shapes, thin lines and grain: compresses and resamples like a photo."""
    rng = random.Random(seed)
    fields = [
        Image.effect_noise((width // 97 + 2, height // 97 + 2), 90).resize((width, height), Image.Resampling.BICUBIC)
        for _ in range(3)
    ]
    image = Image.merge("RGB", fields)
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x, y, size = rng.randrange(width), rng.randrange(height), rng.randrange(width // 40 + 1, width // 6 + 2)
        draw.ellipse((x, y, x + size, y + size // 2), fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    for _ in range(80):
        draw.line(
            (rng.randrange(width), rng.randrange(height), rng.randrange(width), rng.randrange(height)),
            fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)),
            width=rng.randrange(1, 6),
        )
    grain = Image.effect_noise((width, height), 12).convert("RGB")
    return Image.blend(image, grain, 0.15)


@cache
def photo_12mp_with_red_sides() -> bytes:
    """4000x3000 photo-like JPEG whose left and right 500 px are red: a centred cover crop shows no red at all."""
    image = photo_like(4000, 3000)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 499, 2999), fill=RED)
    draw.rectangle((3500, 0, 3999, 2999), fill=RED)
    return encode(image, "JPEG", quality=90)


@cache
def panorama_10000x100() -> bytes:
    """10000x100 PNG: red, with a green band 300 px wide in the middle (what a centred cover crop must show)."""
    image = Image.new("RGB", (10000, 100), RED)
    ImageDraw.Draw(image).rectangle((4850, 0, 5149, 99), fill=GREEN)
    return encode(image, "PNG")


def rgba_png() -> bytes:
    """400x200 PNG: left half fully transparent (black underneath), right half opaque blue."""
    image = Image.new("RGBA", (400, 200), (0, 0, 0, 0))
    ImageDraw.Draw(image).rectangle((200, 0, 399, 199), fill=(*BLUE, 255))
    return encode(image, "PNG")


def la_png() -> bytes:
    """Grayscale+alpha 300x300 PNG: transparent everywhere except an opaque black centre square."""
    image = Image.new("LA", (300, 300), (0, 0))
    ImageDraw.Draw(image).rectangle((100, 100, 199, 199), fill=(0, 255))
    return encode(image, "PNG")


def palette_gif(transparent: bool = False) -> bytes:
    """300x300 palette GIF: top half red, bottom half green; with `transparent`, the green index is transparent."""
    image = Image.new("P", (300, 300), 0)
    image.putpalette([*RED, *GREEN] + [0, 0, 0] * 254)
    ImageDraw.Draw(image).rectangle((0, 150, 299, 299), fill=1)
    return encode(image, "GIF", transparency=1) if transparent else encode(image, "GIF")


def animated_gif() -> bytes:
    """Three 240x240 frames: red, green, blue. The first frame is the picture."""
    frames = [Image.new("RGB", (240, 240), colour).convert("P") for colour in (RED, GREEN, BLUE)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def png_16bit(value: int = 40000) -> bytes:
    """16-bit grayscale 300x200 PNG filled with `value` (of 65535): ~61% gray, not white."""
    return encode(Image.new("I;16", (300, 200), value), "PNG")


def grayscale_jpeg() -> bytes:
    """8-bit grayscale 500x400 JPEG, dark left half and light right half."""
    image = Image.new("L", (500, 400), 40)
    ImageDraw.Draw(image).rectangle((250, 0, 499, 399), fill=220)
    return encode(image, "JPEG", quality=95)


def one_pixel_png() -> bytes:
    return encode(Image.new("RGB", (1, 1), GREEN), "PNG")


def cmyk_jpeg(icc_profile: bytes | None = None) -> bytes:
    """300x200 CMYK JPEG of pure cyan ink (255, 0, 0, 0), optionally with an embedded ICC profile."""
    image = Image.new("CMYK", (300, 200), (255, 0, 0, 0))
    return encode(image, "JPEG", quality=95, icc_profile=icc_profile) if icc_profile else encode(image, "JPEG")


def truncated_jpeg() -> bytes:
    """The first half of a valid photo-like JPEG."""
    data = encode(photo_like(640, 480), "JPEG", quality=90)
    return data[: len(data) // 2]


def text_named_jpg() -> bytes:
    return b"This is not a picture, whatever its .jpg name says.\n" * 20


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares `width`x`height` RGB pixels but carries one tiny compressed row: a decompression bomb's
    header (a real one inflates gigabytes from a few kilobytes). Only the header matters to a pixel cap."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (1 + 3 * min(width, 1000)))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def cyan_to_red_cmyk_profile() -> bytes:
    """A minimal ICC v2 CMYK input profile (lut8 A2B0 to Lab) mapping cyan ink to red and no ink to white.

    Deliberately unlike a real press profile: Pillow's plain CMYK->RGB conversion turns cyan ink into cyan, so a red
    result proves the embedded profile was used.
    """

    def s15(value: float) -> bytes:
        return struct.pack(">i", round(value * 65536))

    def lab8(lightness: float, a: float, b: float) -> bytes:
        return bytes((round(lightness * 255 / 100), round(a + 128), round(b + 128)))

    white, red = lab8(100, 0, 0), lab8(53, 80, 67)
    # 2 grid points per input channel; C varies slowest. Output depends on C only.
    clut = b"".join(red if (index >> 3) & 1 else white for index in range(16))
    identity = bytes(range(256))
    a2b0 = (
        b"mft1" + b"\0" * 4 + bytes((4, 3, 2, 0))
        + b"".join(s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
        + identity * 4 + clut + identity * 3
    )  # fmt: skip
    text = b"cyan-to-red test CMYK"
    desc = b"desc" + b"\0" * 4 + struct.pack(">I", len(text) + 1) + text + b"\0" + b"\0" * 8 + b"\0" * 3 + b"\0" * 67
    wtpt = b"XYZ " + b"\0" * 4 + s15(0.9642) + s15(1.0) + s15(0.8249)
    cprt = b"text" + b"\0" * 4 + b"public domain\0"
    tags = [(b"desc", desc), (b"wtpt", wtpt), (b"cprt", cprt), (b"A2B0", a2b0)]

    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for signature, payload in tags:
        padded = payload + b"\0" * (-len(payload) % 4)
        table += signature + struct.pack(">II", offset + len(body), len(payload))
        body += padded
    size = offset + len(body)
    header = (
        struct.pack(">I", size) + b"lcms" + bytes((2, 0x10, 0, 0)) + b"prtr" + b"CMYK" + b"Lab "
        + struct.pack(">6H", 2026, 1, 1, 0, 0, 0) + b"acsp" + b"\0" * 4 + b"\0" * 4 + b"\0" * 8 + b"\0" * 8
        + struct.pack(">I", 0) + s15(0.9642) + s15(1.0) + s15(0.8249) + b"\0" * 4 + b"\0" * 16 + b"\0" * 28
    )  # fmt: skip
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


def mpo_two_pictures() -> bytes:
    """A 2400x1600 MPO (what many phones and 3D cameras save): quadrants first, then a solid blue second picture."""
    out = io.BytesIO()
    quadrants(2400, 1600).save(out, "MPO", save_all=True, append_images=[Image.new("RGB", (2400, 1600), BLUE)])
    return out.getvalue()
